// watermark_cost: what order-independent pairing costs — the id record's bytes per
// message (dense and sparse ids), the pairing state per retained message and per
// (citizen, thread) pair, the appeal store per appeal, how long until a number is final
// with a given lateness and poll interval, and the price of out-of-order delivery.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "daemon/engine.hpp"
#include "pipeline/id_set.hpp"
#include "pipeline/pairing.hpp"

namespace replywatch::bench {
namespace {

constexpr const char* kHelp = R"(Usage:
  watermark_cost [--messages N] [--seed S] [--runs R]

1. The id record (pipeline::IdSet, CRoaring): bytes per message id for N ids that are
   dense with small gaps (Telegram, VK: per-chat counters, a few deleted) and sparse
   (Mastodon, X: 64-bit time-ordered snowflakes), in memory and serialized.
2. A synthetic stream through pipeline::Pairing (one chat; a citizen asks, an official
   answers after a log-normal delay, some never): Pairing::memory() per retained message,
   per (citizen, thread) pair, and the id record per message; then the daemon's
   AppealStore per appeal.
3. Delay until final: the daemon's Engine fed the stream live by a polling connector
   (poll interval 10 s, lateness 300 s): for each answered appeal, when its answer was
   counted minus the answer's time.
4. Out-of-order delivery: Pairing throughput (events/s) on the stream in id order, with
   neighbours swapped (as parallel webhook pushes do), and fully shuffled; median of R runs.
)";

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void id_record(std::size_t n, std::mt19937_64& rng) {
  std::printf("1. id record, %zu ids\n", n);
  struct Case {
    const char* name;
    std::function<std::int64_t(std::size_t, std::int64_t)> next;
  };
  const Case cases[] = {
      {"dense, 2% gaps (Telegram)",
       [&](std::size_t, std::int64_t prev) {
         return prev + 1 + (rng() % 50 == 0 ? 1 + static_cast<std::int64_t>(rng() % 3) : 0);
       }},
      {"dense, no gaps", [](std::size_t, std::int64_t prev) { return prev + 1; }},
      {"sparse snowflakes, 1/min",
       [&](std::size_t, std::int64_t prev) {
         // Mastodon: milliseconds << 16 | sequence; a status a minute, give or take.
         const std::int64_t ms = (prev >> 16) + 30'000 + static_cast<std::int64_t>(rng() % 60'000);
         return (ms << 16) | static_cast<std::int64_t>(rng() % 1000);
       }},
  };
  for (const Case& c : cases) {
    pipeline::IdSet set;
    std::int64_t id = c.name[0] == 's' ? (std::int64_t{1'700'000'000'000} << 16) : 1;
    for (std::size_t i = 0; i < n; ++i) {
      set.insert(id);
      id = c.next(i, id);
    }
    const double before = static_cast<double>(set.memory_bytes()) / static_cast<double>(n);
    set.optimize();
    std::string bytes;
    set.serialize(bytes);
    std::printf("   %-28s in memory %7.3f B/id (%7.3f after optimize), serialized %7.3f B/id\n",
                c.name, before, static_cast<double>(set.memory_bytes()) / static_cast<double>(n),
                static_cast<double>(bytes.size()) / static_cast<double>(n));
  }
}

constexpr std::int64_t kChat = -1001800004444;
constexpr std::int64_t kPress = 500201;

std::shared_ptr<pipeline::Registry> registry() {
  auto r = std::make_shared<pipeline::Registry>();
  pipeline::Agency a;
  a.id = "bench";
  a.name = "Bench";
  a.conversations = {{pipeline::Source::telegram, kChat}};
  a.accounts = {{pipeline::Source::telegram, kPress, "press_office", "", ""}};
  r->agencies = {a};
  r->horizon_secs = 7 * 86400;
  r->index();
  return r;
}

/// One chat: appeals every `gap` seconds on average, answered after a log-normal delay
/// (median 2 h) unless never (15%); follow-ups now and then. In id (= time) order.
std::vector<pipeline::Event> stream(std::size_t appeals, std::int64_t start, std::mt19937_64& rng) {
  std::lognormal_distribution<double> delay(std::log(7200.0), 1.2);
  std::vector<pipeline::Event> out;
  std::vector<std::pair<std::int64_t, std::int64_t>> answers;  // time, parent id
  std::int64_t t = start;
  std::int64_t id = 0;
  auto push = [&](std::int64_t time, std::int64_t author, std::int64_t reply_to) {
    pipeline::Event e;
    e.conversation = kChat;
    e.message_id = ++id;
    e.author = author;
    e.time = time;
    e.reply_to = reply_to;
    out.push_back(e);
    return e.message_id;
  };
  std::size_t next_answer = 0;
  for (std::size_t i = 0; i < appeals; ++i) {
    t += 1 + static_cast<std::int64_t>(rng() % 120);
    std::sort(answers.begin() + static_cast<std::ptrdiff_t>(next_answer), answers.end());
    while (next_answer < answers.size() && answers[next_answer].first <= t) {
      push(answers[next_answer].first, kPress, answers[next_answer].second);
      ++next_answer;
    }
    const std::int64_t citizen = 1'000'000 + static_cast<std::int64_t>(rng() % (appeals / 3 + 1));
    const std::int64_t ask = push(t, citizen, 0);
    if (rng() % 100 >= 15) {
      answers.push_back({t + static_cast<std::int64_t>(delay(rng)), ask});
    }
  }
  return out;
}

/// The resident set, from /proc/self/statm.
long resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f && std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  if (f) std::fclose(f);
  return rss * 4096;
}

struct NullSink : pipeline::AppealSink {
  std::uint64_t changes = 0;
  void on_appeal(const pipeline::Appeal*, const pipeline::Appeal*) override { ++changes; }
};

void state_per_message(std::size_t appeals, std::mt19937_64& rng) {
  const auto events = stream(appeals, 1'780'000'000, rng);
  auto reg = registry();
  NullSink sink;
  pipeline::Pairing pairing(reg, sink);
  for (const auto& e : events) pairing.on_event(e);
  const auto m = pairing.memory();
  // Every appeal is its own thread here: one (citizen, thread) pair each.
  const std::size_t pairs = appeals;
  std::printf("2. pairing state, %zu messages (%zu appeals), nothing forgotten\n", events.size(),
              appeals);
  std::printf("   id record      %8.2f B per message\n",
              static_cast<double>(m.ids) / static_cast<double>(events.size()));
  std::printf("   thread details %8.2f B per retained message\n",
              static_cast<double>(m.messages) / static_cast<double>(pairing.retained_messages()));
  std::printf("   pair state     %8.2f B per (citizen, thread) pair\n",
              static_cast<double>(m.appeals) / static_cast<double>(pairs));
  // After forgetting everything older than the horizon + lateness (the minimum retention).
  pairing.set_retention(7 * 86400 + 300);
  pairing.expire(events.back().time + 30 * 86400);
  const auto f = pairing.memory();
  std::printf(
      "   after every message is forgotten: id record %.2f B per message; pairs left "
      "as \"appealed\" %.2f B each\n",
      static_cast<double>(f.ids) / static_cast<double>(events.size()),
      static_cast<double>(f.appeals) / static_cast<double>(pairs));

  daemon::AppealStore store(reg);
  struct StoreSink : pipeline::AppealSink {
    daemon::AppealStore& s;
    explicit StoreSink(daemon::AppealStore& st) : s(st) {}
    void on_appeal(const pipeline::Appeal* b, const pipeline::Appeal* a) override {
      const pipeline::Appeal* old =
          b ? s.find(b->source, b->conversation, b->opened_message) : nullptr;
      std::optional<pipeline::Appeal> copy;
      if (old) copy = *old;
      s.apply(copy ? &*copy : nullptr, a);
    }
  } store_sink(store);
  const long rss_before = resident_bytes();
  pipeline::Pairing feeding(reg, store_sink);
  for (const auto& e : events) feeding.on_event(e);
  const long rss_after = resident_bytes();
  std::printf(
      "   appeal store: %zu appeals; pairing + store grew the resident set by %.1f B per "
      "appeal (%.1f B per message)\n",
      store.size(), static_cast<double>(rss_after - rss_before) / static_cast<double>(store.size()),
      static_cast<double>(rss_after - rss_before) / static_cast<double>(events.size()));
}

/// Fixed cost of a conversation: many conversations of one message each.
void per_conversation(std::size_t conversations) {
  auto r = std::make_shared<pipeline::Registry>();
  pipeline::Agency a;
  a.id = "bench";
  a.name = "Bench";
  for (std::size_t i = 0; i < conversations; ++i) {
    a.conversations.push_back({pipeline::Source::telegram, kChat - static_cast<std::int64_t>(i)});
  }
  r->agencies = {a};
  r->index();
  NullSink sink;
  pipeline::Pairing one(r, sink);
  pipeline::Event e;
  e.message_id = 1;
  e.author = 1'000'001;
  e.time = 1'780'000'000;
  for (std::size_t i = 0; i < conversations; ++i) {
    e.conversation = kChat - static_cast<std::int64_t>(i);
    one.on_event(e);
  }
  const auto m = one.memory();
  std::printf("   per conversation (%zu conversations, one appeal each): %.0f B\n", conversations,
              static_cast<double>(m.total()) / static_cast<double>(conversations));
}

void delay_until_final(std::size_t appeals, std::mt19937_64& rng) {
  constexpr std::int64_t kPoll = 10, kLateness = 300;
  auto config = std::make_shared<daemon::Config>();
  config->registry = registry();
  config->daemon.lateness_secs = kLateness;
  daemon::ConnectorConfig c;
  c.name = "events";
  c.type = "ndjson";
  config->connectors = {c};
  daemon::Engine engine(config);
  const std::int64_t start = 1'780'000'000;
  engine.serving(start);
  const auto events = stream(appeals, start, rng);
  // Answered appeals: answer time per opened message, to compare with when it was counted.
  std::vector<double> delays;
  std::uint64_t answered_before = 0;
  std::size_t next = 0;
  std::vector<std::int64_t> answer_times;  // answers delivered, waiting to be counted
  for (std::int64_t now = start; next < events.size(); now += kPoll) {
    daemon::EventBatch b;
    b.connector = "events";
    b.received_at = now;
    for (; next < events.size() && events[next].time <= now; ++next) {
      b.events.push_back(events[next]);
      if (events[next].reply_to != 0) answer_times.push_back(events[next].time);
    }
    engine.apply(std::move(b), now);
    engine.connector_success("events", now, true);
    std::uint64_t answered = 0;
    for (const auto& [k, v] : engine.appeals().counts()) answered += v.answered;
    // Answers counted in this poll: the oldest delivered ones (counting follows the clock).
    std::sort(answer_times.begin(), answer_times.end());
    for (std::uint64_t i = answered_before; i < answered && !answer_times.empty(); ++i) {
      delays.push_back(static_cast<double>(now - answer_times.front()));
      answer_times.erase(answer_times.begin());
    }
    answered_before = answered;
  }
  std::sort(delays.begin(), delays.end());
  if (delays.empty()) return;
  std::printf(
      "3. delay until an answer is final (poll every %lld s, lateness %lld s), %zu answers: "
      "median %.0f s, p99 %.0f s, max %.0f s\n",
      static_cast<long long>(kPoll), static_cast<long long>(kLateness), delays.size(),
      delays[delays.size() / 2], delays[delays.size() * 99 / 100], delays.back());
}

void out_of_order(std::size_t appeals, int runs, std::mt19937_64& rng) {
  auto sorted = stream(appeals, 1'780'000'000, rng);
  auto swapped = sorted;
  for (std::size_t i = 0; i + 1 < swapped.size(); i += 2) {
    if (rng() % 4 == 0) std::swap(swapped[i], swapped[i + 1]);
  }
  auto shuffled = sorted;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  auto reg = registry();
  std::printf("4. pairing throughput, %zu events, median of %d runs\n", sorted.size(), runs);
  double in_order = 0;
  for (const std::vector<replywatch::pipeline::Event>* input : {&sorted, &swapped, &shuffled}) {
    std::vector<double> rates;
    std::uint64_t changes = 0;
    for (int r = 0; r < runs; ++r) {
      NullSink sink;
      pipeline::Pairing pairing(reg, sink);
      const auto t0 = Clock::now();
      for (const auto& e : *input) pairing.on_event(e);
      rates.push_back(static_cast<double>(input->size()) / seconds_since(t0));
      changes = sink.changes;
    }
    const double rate = median(rates);
    if (input == &sorted) in_order = rate;
    std::printf("   %-40s %12.0f events/s (%.2f× in order), %llu appeal changes reported\n",
                input == &sorted    ? "in id order"
                : input == &swapped ? "a quarter of neighbours swapped"
                                    : "fully shuffled",
                rate, rate / in_order, static_cast<unsigned long long>(changes));
  }
}

}  // namespace
}  // namespace replywatch::bench

int main(int argc, char** argv) {
  using namespace replywatch::bench;
  std::size_t messages = 1'000'000;
  std::uint64_t seed = 1;
  int runs = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(1);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--messages") {
      messages = static_cast<std::size_t>(std::stod(value()));
    } else if (a == "--seed") {
      seed = std::stoull(value());
    } else if (a == "--runs") {
      runs = std::stoi(value());
    } else {
      std::fprintf(stderr, "unknown flag %s (see --help)\n", a.c_str());
      return 1;
    }
  }
  std::mt19937_64 rng(seed);
  id_record(messages, rng);
  state_per_message(messages / 2, rng);
  per_conversation(10'000);
  delay_until_final(20'000, rng);
  out_of_order(messages / 2, runs, rng);
  return 0;
}
