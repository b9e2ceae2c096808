// update_parse_bench: updates per second of connectors::telegram::UpdateParser (parse +
// mapping to events) on generated getUpdates bodies shaped like a busy discussion group.
#include "connectors/telegram/update_parser.hpp"

#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace replywatch::bench {
namespace {

constexpr const char* kHelp = R"(Usage: update_parse_bench [flags]

Generates getUpdates response bodies (100 updates each) from one agency's discussion
group, as the Bot API server writes them (minified, non-ASCII as \u escapes), then times
UpdateParser::parse_response over all of them, --passes times per run, --runs runs.
Single-threaded: the figures are per core.

The mix per 100 updates (seeded): 45 comments on the channel post (reply_to_message holds
the whole post), 24 replies to comments, 8 top-level messages, 10 official answers (named,
as the channel, anonymous admin), 5 edits, 3 joins/leaves, 2 mirrored channel posts, 3
other update kinds. Comments 150-300 bytes of UTF-8, posts 400-1400.

Flags:
  --responses N   Bodies to generate (default 200)
  --passes P      Passes over all bodies per run (default 25)
  --runs R        Timed runs (default 7)
  --seed S        Generator seed (default 1)
  --raw-utf8      Write text as raw UTF-8 instead of \u escapes
  --in-place      Bodies keep 64 spare bytes; time parse_response_in_place (no copy)
  --cpu C         Pin the process to CPU C
  --target UPS    Updates per second to compare the median against (default 1000000)
  -h, --help      Show this help
)";

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kGroup = -1001987654321;
constexpr std::int64_t kChannel = -1001876543210;
constexpr std::int64_t kOfficial = 298765432;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Writes bodies the way the Bot API server does: minified, fields in its order.
class Generator {
 public:
  Generator(std::uint32_t seed, bool raw_utf8) : random_(seed), raw_utf8_(raw_utf8) {
    for (int i = 0; i < 600; ++i) citizens_.push_back(400000000 + random_() % 6000000000ULL);
    post_ = text(400, 1400);
  }

  std::string response(std::size_t updates) {
    std::string body = R"({"ok":true,"result":[)";
    for (std::size_t i = 0; i < updates; ++i) {
      if (i) body += ',';
      update(body);
    }
    body += "]}";
    return body;
  }

 private:
  std::uint64_t pick(std::uint64_t n) { return random_() % n; }

  // Cyrillic words with Latin digits and punctuation, `min`-`max` bytes of UTF-8.
  std::string text(std::size_t min, std::size_t max) {
    static const char* const kWords[] = {
        "когда",  "откроют", "дорогу",    "по",        "улице",      "Абая",      "и",
        "почему", "до",      "сих",       "пор",       "нет",        "света",     "во",
        "дворе",  "дома",    "ремонт",    "остановка", "автобус",    "мусор",     "вывоз",
        "заявка", "номер",   "спасибо",   "ответьте",  "пожалуйста", "уже",       "неделю",
        "жильцы", "акимат",  "подрядчик", "сроки",     "вода",       "отопление", "школа",
        "12",     "45",      "2026",      "—",         "?",          "!",         "😡"};
    const std::size_t target = min + pick(max - min + 1);
    std::string out;
    while (out.size() < target) {
      if (!out.empty()) out += ' ';
      out += kWords[pick(std::size(kWords))];
    }
    return out;
  }

  void string_value(std::string& out, std::string_view utf8) {
    out += '"';
    for (std::size_t i = 0; i < utf8.size();) {
      const auto c = static_cast<unsigned char>(utf8[i]);
      if (c < 0x80 || raw_utf8_) {
        if (c == '"' || c == '\\') out += '\\';
        out += static_cast<char>(c);
        ++i;
        continue;
      }
      std::uint32_t cp = 0;
      std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
      cp = c & (0xFF >> (len + 1));
      for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (utf8[i + k] & 0x3F);
      i += len;
      char buf[16];
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                      0xDC00 + (cp & 0x3FF));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      }
      out += buf;
    }
    out += '"';
  }

  void user(std::string& out, std::int64_t id, bool bot, std::string_view first) {
    out += R"({"id":)" + std::to_string(id) + R"(,"is_bot":)" + (bot ? "true" : "false") +
           R"(,"first_name":)";
    string_value(out, first);
    if (!bot) {
      out += R"(,"last_name":)";
      string_value(out, "Нурланова");
      out += R"(,"username":"user_)" + std::to_string(id % 100000) + R"(","language_code":"ru")";
    }
    out += '}';
  }

  void group_chat(std::string& out) {
    out += R"("chat":{"id":)" + std::to_string(kGroup) + R"(,"title":)";
    string_value(out, "Акимат города — обсуждения");
    out += R"(,"username":"akimat_city_chat","type":"supergroup"})";
  }

  void channel_chat(std::string& out, std::string_view key) {
    out += '"';
    out += key;
    out += R"(":{"id":)" + std::to_string(kChannel) + R"(,"title":)";
    string_value(out, "Акимат города");
    out += R"(,"username":"akimat_city","type":"channel"})";
  }

  void entities(std::string& out) {
    if (pick(4) != 0) return;
    out += R"(,"entities":[{"offset":0,"length":5,"type":"bold"},)"
           R"({"offset":12,"length":9,"type":"hashtag"}])";
  }

  // The mirrored post as it sits in reply_to_message or arrives on its own.
  void forward(std::string& out, std::int64_t id, std::int64_t date) {
    out += R"({"message_id":)" + std::to_string(id) + R"(,"from":)";
    user(out, 777000, false, "Telegram");
    out += ',';
    channel_chat(out, "sender_chat");
    out += ',';
    group_chat(out);
    out += R"(,"date":)" + std::to_string(date) + R"(,"forward_origin":{"type":"channel",)";
    channel_chat(out, "chat");
    out += R"(,"message_id":)" + std::to_string(post_id_) + R"(,"date":)" + std::to_string(date) +
           R"(},"is_automatic_forward":true,"text":)";
    string_value(out, post_);
    out += R"(,"entities":[{"offset":0,"length":24,"type":"bold"}]})";
  }

  // A plain comment object; `parent` is written as its reply_to_message when not empty.
  void comment(std::string& out, std::int64_t id, std::int64_t author, std::int64_t date,
               const std::string& parent, std::string_view body, bool edit = false) {
    out += R"({"message_id":)" + std::to_string(id) + R"(,"from":)";
    user(out, author, false, "Айгерим");
    out += ',';
    group_chat(out);
    out += R"(,"date":)" + std::to_string(date);
    if (edit) out += R"(,"edit_date":)" + std::to_string(date + 120);
    if (!parent.empty()) {
      out += R"(,"message_thread_id":)" + std::to_string(thread_) + R"(,"reply_to_message":)";
      out += parent;
    }
    out += R"(,"text":)";
    string_value(out, body);
    entities(out);
    out += '}';
  }

  std::string recent_comment() {
    std::string parent;
    const std::int64_t id = next_message_ - 1 - static_cast<std::int64_t>(pick(40));
    comment(parent, id, citizens_[pick(citizens_.size())], now_ - 600, "", text(150, 300));
    return parent;
  }

  void update(std::string& out) {
    ++update_id_;
    now_ += 1 + static_cast<std::int64_t>(pick(40));
    out += R"({"update_id":)" + std::to_string(update_id_) + ',';
    const std::uint64_t roll = pick(100);
    const std::int64_t id = next_message_++;
    const std::int64_t citizen = citizens_[pick(citizens_.size())];
    if (roll < 45) {
      std::string parent;
      forward(parent, thread_, post_date_);
      out += R"("message":)";
      comment(out, id, citizen, now_, parent, text(150, 300));
    } else if (roll < 69) {
      out += R"("message":)";
      comment(out, id, citizen, now_, recent_comment(), text(150, 300));
    } else if (roll < 77) {
      out += R"("message":)";
      comment(out, id, citizen, now_, "", text(150, 300));
    } else if (roll < 87) {
      out += R"("message":{"message_id":)" + std::to_string(id) + R"(,"from":)";
      const std::uint64_t who = pick(10);
      if (who < 6) {
        user(out, kOfficial, false, "Дана");
      } else if (who < 8) {
        user(out, 136817688, true, "Channel");
        out += ',';
        channel_chat(out, "sender_chat");
      } else {
        user(out, 1087968824, true, "Group");
        out += R"(,"sender_chat":{"id":)" + std::to_string(kGroup) + R"(,"type":"supergroup"})";
      }
      out += ',';
      group_chat(out);
      out += R"(,"date":)" + std::to_string(now_) + R"(,"message_thread_id":)" +
             std::to_string(thread_) + R"(,"reply_to_message":)" + recent_comment() + R"(,"text":)";
      string_value(out, text(150, 300));
      out += '}';
    } else if (roll < 92) {
      out += R"("edited_message":)";
      comment(out, id - 5, citizen, now_ - 300, recent_comment(), text(150, 300), true);
    } else if (roll < 95) {
      out += R"("message":{"message_id":)" + std::to_string(id) + R"(,"from":)";
      user(out, citizen, false, "Сауле");
      out += ',';
      group_chat(out);
      out += R"(,"date":)" + std::to_string(now_) + R"(,"new_chat_participant":)";
      user(out, citizen, false, "Сауле");
      out += R"(,"new_chat_member":)";
      user(out, citizen, false, "Сауле");
      out += R"(,"new_chat_members":[)";
      user(out, citizen, false, "Сауле");
      out += "]}";
    } else if (roll < 97) {
      thread_ = id;
      post_date_ = now_;
      ++post_id_;
      post_ = text(400, 1400);
      out += R"("message":)";
      forward(out, id, now_);
    } else {
      out += R"("message_reaction_count":{"chat":{"id":)" + std::to_string(kGroup) +
             R"(,"type":"supergroup"},"message_id":)" + std::to_string(id - 3) + R"(,"date":)" +
             std::to_string(now_) +
             R"(,"reactions":[{"type":{"type":"emoji","emoji":"\ud83d\udc4d"},"total_count":4}]})";
    }
    out += '}';
  }

  std::mt19937_64 random_;
  bool raw_utf8_;
  std::vector<std::int64_t> citizens_;
  std::string post_;
  std::int64_t update_id_ = 846200000;
  std::int64_t next_message_ = 1201;
  std::int64_t thread_ = 1200;
  std::int64_t post_id_ = 57;
  std::int64_t now_ = 1782968400;
  std::int64_t post_date_ = 1782968400;
};

struct Flags {
  std::size_t responses = 200;
  int passes = 25;
  int runs = 7;
  std::uint32_t seed = 1;
  bool raw_utf8 = false;
  bool in_place = false;
  int cpu = -1;
  double target = 1e6;
};

bool parse_flags(int argc, char** argv, Flags& flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kHelp, stdout);
      std::exit(0);
    } else if (arg == "--raw-utf8") {
      flags.raw_utf8 = true;
    } else if (arg == "--in-place") {
      flags.in_place = true;
    } else if (arg == "--responses" && (v = value())) {
      flags.responses = std::strtoull(v, nullptr, 10);
    } else if (arg == "--passes" && (v = value())) {
      flags.passes = std::atoi(v);
    } else if (arg == "--runs" && (v = value())) {
      flags.runs = std::atoi(v);
    } else if (arg == "--seed" && (v = value())) {
      flags.seed = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (arg == "--cpu" && (v = value())) {
      flags.cpu = std::atoi(v);
    } else if (arg == "--target" && (v = value())) {
      flags.target = std::strtod(v, nullptr);
    } else {
      std::fprintf(stderr, "update_parse_bench: bad argument '%s'\n%s", argv[i], kHelp);
      return false;
    }
  }
  return flags.responses > 0 && flags.passes > 0 && flags.runs > 0;
}

int run(int argc, char** argv) {
  Flags flags;
  if (!parse_flags(argc, argv, flags)) return 2;
  if (flags.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(flags.cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) std::perror("sched_setaffinity");
  }

  Generator generator(flags.seed, flags.raw_utf8);
  std::vector<std::string> bodies;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < flags.responses; ++i) {
    bodies.push_back(generator.response(100));
    if (flags.in_place) bodies.back().reserve(bodies.back().size() + 64);
    bytes += bodies.back().size();
  }

  // One untimed pass checks what the bodies hold: a bench that rejected everything
  // would otherwise look fast.
  connectors::telegram::UpdateParser parser;
  std::uint64_t updates = 0, events = 0, ignored = 0, rejected = 0, edits = 0, services = 0;
  for (const std::string& body : bodies) {
    auto result = parser.parse_response(body);
    if (!result) {
      std::fprintf(stderr, "update_parse_bench: %s\n", result.error().message.c_str());
      return 1;
    }
    updates += result->updates;
    events += result->events.size();
    ignored += result->ignored;
    for (const auto& [reason, n] : result->rejected) rejected += n;
    for (const auto& e : result->events) {
      edits += e.kind == pipeline::EventKind::edit;
      services += e.kind == pipeline::EventKind::service;
    }
  }
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 0) load[0] = load[1] = load[2] = -1;
  std::printf("bodies: %zu x 100 updates, %.1f MB, %.0f bytes/update (%s), %s\n", bodies.size(),
              static_cast<double>(bytes) / 1e6,
              static_cast<double>(bytes) / static_cast<double>(updates),
              flags.raw_utf8 ? "raw UTF-8" : "\\u escapes, as the Bot API server writes",
              flags.in_place ? "parse_response_in_place" : "parse_response (copies the body)");
  std::printf("mapped: %llu events (%llu edits, %llu service), %llu ignored, %llu rejected\n",
              static_cast<unsigned long long>(events), static_cast<unsigned long long>(edits),
              static_cast<unsigned long long>(services), static_cast<unsigned long long>(ignored),
              static_cast<unsigned long long>(rejected));
  std::printf("load average before: %.2f %.2f %.2f\n", load[0], load[1], load[2]);

  std::vector<double> wall_rates, cpu_rates, mb_rates;
  std::uint64_t sink = 0;
  for (int r = 0; r < flags.runs; ++r) {
    const double cpu_start = cpu_seconds();
    const auto start = Clock::now();
    for (int p = 0; p < flags.passes; ++p) {
      for (const std::string& body : bodies) {
        auto result =
            flags.in_place ? parser.parse_response_in_place(body) : parser.parse_response(body);
        sink += result ? result->events.size() : 0;
      }
    }
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = cpu_seconds() - cpu_start;
    const double n = static_cast<double>(updates) * flags.passes;
    wall_rates.push_back(n / wall);
    cpu_rates.push_back(n / cpu);
    mb_rates.push_back(static_cast<double>(bytes) * flags.passes / wall / 1e6);
    std::printf(
        "run %d: %.3f s wall, %.3f s CPU, %.0f updates/s, %.0f updates per CPU s, "
        "%.0f MB/s\n",
        r + 1, wall, cpu, wall_rates.back(), cpu_rates.back(), mb_rates.back());
  }
  const double med = median(wall_rates);
  std::printf(
      "median: %.0f updates/s (%.0f per CPU second, %.0f MB/s) over %d runs of %llu "
      "updates; target %.0f: %s\n",
      med, median(cpu_rates), median(mb_rates), flags.runs,
      static_cast<unsigned long long>(updates * static_cast<std::uint64_t>(flags.passes)),
      flags.target, med >= flags.target ? "met" : "missed");
  return sink == events * static_cast<std::uint64_t>(flags.passes) * flags.runs ? 0 : 1;
}

}  // namespace
}  // namespace replywatch::bench

int main(int argc, char** argv) { return replywatch::bench::run(argc, argv); }
