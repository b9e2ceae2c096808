// Metamorphic property of the daemon's engine: the appeals are a function of the set of
// messages and the clock, whatever the delivery. Each random history is spread over three
// connectors (two polling, one pushing), some messages through two of them, delivered in
// random chunks with random delays (some past the lateness bound), with connectors
// catching up, falling behind, failing and being rate limited at random, and the engine
// snapshotted and restored (with the last batches delivered again, as connectors resume
// from their cursors). Once every connector has caught up, the engine must hold exactly
// the brute-force reading of the rules at the conversations' clock, and its counters,
// less their corrections, must count exactly those appeals.
#include <doctest/doctest.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/engine.hpp"
#include "daemon/replay.hpp"
#include "tests/support/pairing_reference.hpp"

using namespace replywatch;
using namespace replywatch::testing;

namespace {

constexpr std::int64_t kHorizon = 1000;
constexpr std::int64_t kLateness = 60;
const char* const kConnectors[] = {"files_a", "files_b", "hook"};

std::shared_ptr<const daemon::Config> make_config(std::int64_t retention,
                                                  pipeline::CitizenReplies mode) {
  auto c = std::make_shared<daemon::Config>();
  c->registry = make_registry(kHorizon, mode);
  c->daemon.lateness_secs = kLateness;
  c->daemon.message_retention_secs = retention;
  for (const char* name : kConnectors) {
    daemon::ConnectorConfig connector;
    connector.name = name;
    connector.type = std::string(name) == "hook" ? "telegram" : "ndjson";
    connector.mode = std::string(name) == "hook" ? "webhook" : "";
    c->connectors.push_back(connector);
  }
  return c;
}

struct Delivery {
  std::int64_t at;  // wall time it reaches the daemon
  std::size_t connector;
  Event event;
};

/// Counter value of one series in the exposition text (0 when absent).
double series(const std::string& text, const std::string& name_and_labels) {
  const auto at = text.find("\n" + name_and_labels + " ");
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + name_and_labels.size() + 2));
}

struct Outcome {
  std::vector<Appeal> appeals;
  std::string metrics;
  std::uint64_t late = 0;
  std::uint64_t inexact = 0;  // parent_forgotten + before_retention
};

Outcome run(const std::vector<Event>& history, std::shared_ptr<const daemon::Config> config,
            std::int64_t end, std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  const std::int64_t start = history.empty() ? end : max_time(history) - 20'000;
  std::vector<Delivery> plan;
  for (const Event& e : history) {
    const std::int64_t delay = pick(10) == 0 ? 100 + pick(1500) : pick(40);
    const std::size_t c = static_cast<std::size_t>(pick(3));
    plan.push_back({std::max(start, e.time + delay), c, e});
    if (pick(6) == 0) {  // the same message through a second connector, later
      plan.push_back({std::max(start, e.time + delay + pick(300)), (c + 1) % 3, e});
    }
  }
  std::shuffle(plan.begin(), plan.end(), rng);
  std::stable_sort(plan.begin(), plan.end(),
                   [](const Delivery& a, const Delivery& b) { return a.at < b.at; });

  auto engine = std::make_unique<daemon::Engine>(config);
  engine->serving(start);
  std::vector<daemon::EventBatch> recent;  // for redelivery after a restart
  std::size_t next = 0;
  for (std::int64_t now = start; now <= end; now += 30 + pick(300)) {
    // What reached the daemon by now, per connector, in random chunks.
    std::array<std::vector<Event>, 3> due;
    for (; next < plan.size() && plan[next].at <= now; ++next) {
      due[plan[next].connector].push_back(plan[next].event);
    }
    for (std::size_t c = 0; c < 3; ++c) {
      std::shuffle(due[c].begin(), due[c].end(), rng);
      for (std::size_t i = 0; i < due[c].size();) {
        daemon::EventBatch b;
        b.connector = kConnectors[c];
        b.received_at = now;
        const std::size_t n = 1 + static_cast<std::size_t>(pick(10));
        for (std::size_t k = 0; k < n && i < due[c].size(); ++k, ++i) b.events.push_back(due[c][i]);
        recent.push_back(b);
        if (recent.size() > 4) recent.erase(recent.begin());
        engine->apply(std::move(b), now);
      }
      // The polling connectors report how their poll went; a connector with messages
      // still planned may be behind, erroring or rate limited.
      if (c == 2) continue;
      const int roll = pick(10);
      if (roll == 0) {
        engine->connector_error(kConnectors[c], "http_5xx", "server error", false);
        engine->connector_failed(kConnectors[c]);
      } else if (roll == 1) {
        engine->connector_behind(kConnectors[c]);  // rate limited
      } else {
        // Caught up only if nothing more is planned for it before now (else: a backlog).
        bool backlog = false;
        for (std::size_t k = next; k < plan.size() && plan[k].at <= now + 1; ++k) {
          backlog = backlog || plan[k].connector == c;
        }
        engine->connector_success(kConnectors[c], now, !backlog);
      }
    }
    if (pick(2) == 0) engine->tick(now);
    if (pick(15) == 0) {
      const std::string snapshot = engine->serialize();
      engine = std::make_unique<daemon::Engine>(config);
      REQUIRE(engine->restore(snapshot).has_value());
      engine->serving(now);
      for (auto b : recent) engine->apply(std::move(b), now);  // resumed from cursors
    }
  }
  // Everyone caught up at end + 2 × lateness (past the pushes' grace after a restart):
  // every conversation's clock is end + lateness.
  const std::int64_t last = end + 2 * kLateness;
  engine->tick(last);
  for (const char* name : {kConnectors[0], kConnectors[1]})
    engine->connector_success(name, last, true);
  engine->tick(last);

  Outcome out;
  engine->appeals().for_each([&](const Appeal& a) { out.appeals.push_back(a); });
  out.metrics = prometheus::TextSerializer().Serialize(engine->collect(end));
  for (const auto& [name, late] : engine->late()) {
    out.late += late[0];
    out.inexact += late[1] + late[2];
  }
  return out;
}

/// `replywatch replay` on the history written as a normalized-event file, at `clock`.
std::vector<Appeal> replay_of(const std::vector<Event>& history,
                              std::shared_ptr<const daemon::Config> config, std::int64_t clock,
                              int round) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("replywatch_engine_metamorphic_" + std::to_string(::getpid()) + "_" +
                     std::to_string(round) + ".ndjson");
  {
    std::ofstream out(path);
    for (const Event& e : history) {
      const char* kind = e.kind == EventKind::service  ? "service"
                         : e.kind == EventKind::edit   ? "edit"
                         : e.kind == EventKind::remove ? "delete"
                                                       : "message";
      const char* hint = e.author_hint == AuthorHint::bot                 ? "bot"
                         : e.author_hint == AuthorHint::automatic_forward ? "automatic_forward"
                         : e.author_hint == AuthorHint::chat              ? "chat"
                                                                          : "user";
      out << "{\"source\":\"telegram\",\"conversation\":\"" << e.conversation
          << "\",\"message_id\":" << e.message_id << ",\"author\":\"" << e.author
          << "\",\"author_kind\":\"" << hint << "\",\"time\":" << e.time << ",\"kind\":\"" << kind
          << "\"";
      if (e.reply_to != 0) out << ",\"reply_to\":" << e.reply_to;
      if (e.addressee != 0) out << ",\"addressee\":" << e.addressee;
      out << "}\n";
    }
  }
  daemon::ReplayOptions options;
  options.inputs = {path.string()};
  options.clock = clock;
  options.keep_appeals = true;
  std::ostringstream progress;
  auto result = daemon::run_replay(config->registry, options, progress);
  std::filesystem::remove(path);
  REQUIRE(result.rejected_files.empty());
  return result.appeals;
}

void check_counters(const Outcome& got, const std::vector<Appeal>& want) {
  for (const char* agency : {"alpha", "beta"}) {
    for (const auto kind : {AppealKind::first, AppealKind::followup}) {
      std::map<std::string, double> expected;
      for (const Appeal& a : want) {
        if (a.agency != (std::string(agency) == "alpha" ? 0 : 1) || a.kind != kind) continue;
        expected["opened"] += 1;
        if (a.status != AppealStatus::open)
          expected[std::string(pipeline::to_string(a.status))] += 1;
      }
      const std::string labels = std::string("agency=\"") + agency +
                                 "\",source=\"telegram\",kind=\"" +
                                 std::string(pipeline::to_string(kind)) + "\"";
      for (const char* status : {"opened", "answered", "unanswered", "withdrawn"}) {
        const double counted = series(
            got.metrics, std::string("replywatch_appeals_") + status + "_total{" + labels + "}");
        const double corrected = series(got.metrics, "replywatch_appeals_corrected_total{" +
                                                         labels + ",status=\"" + status + "\"}");
        CHECK_MESSAGE(counted - corrected == expected[status], agency << " " << status);
      }
      // The 30d window holds every decided appeal of the cohort (all of them here).
      const double window_answered =
          series(got.metrics, std::string("replywatch_window_answered_appeals{agency=\"") + agency +
                                  "\",kind=\"" + std::string(pipeline::to_string(kind)) +
                                  "\",window=\"30d\"}");
      CHECK(window_answered == expected["answered"]);
    }
  }
}

}  // namespace

TEST_CASE("engine metamorphic: any delivery through connectors gives the rules' appeals") {
  std::mt19937_64 rng(20261208);
  int compared = 0, late_runs = 0;
  for (int round = 0; round < 400; ++round) {
    const auto mode =
        round % 3 == 0 ? pipeline::CitizenReplies::appeal : pipeline::CitizenReplies::ignore;
    const auto history = random_history(rng);
    const std::int64_t end = max_time(history) + 3000;
    // A retention far beyond any delay: every delivery must be exact.
    const auto got = run(history, make_config(10'000'000, mode), end, rng);
    const auto want =
        sorted_appeals(Reference{kHorizon, mode == pipeline::CitizenReplies::ignore}.run(
            history, end + kLateness));
    const auto have = sorted_appeals(got.appeals);
    REQUIRE_MESSAGE(have.size() == want.size(), "round " << round);
    for (std::size_t i = 0; i < have.size(); ++i) {
      REQUIRE_MESSAGE(appeal_key(have[i]) == appeal_key(want[i]),
                      "round " << round << " appeal " << i);
    }
    // And `replay` on the same messages, with the same clock, says the same.
    const auto replayed =
        sorted_appeals(replay_of(history, make_config(10'000'000, mode), end + kLateness, round));
    REQUIRE_MESSAGE(replayed.size() == have.size(), "round " << round);
    for (std::size_t i = 0; i < have.size(); ++i) {
      REQUIRE_MESSAGE(appeal_key(have[i]) == appeal_key(replayed[i]),
                      "round " << round << " appeal " << i);
    }
    check_counters(got, want);
    compared += static_cast<int>(want.size());
    late_runs += got.late > 0;
  }
  CHECK(compared > 4000);
  CHECK(late_runs > 50);  // deliveries really came in behind the watermark
}

TEST_CASE("engine metamorphic: with the default retention, what is not exact is counted") {
  std::mt19937_64 rng(99);
  int exact = 0, counted = 0;
  for (int round = 0; round < 300; ++round) {
    const auto history = random_history(rng);
    const std::int64_t end = max_time(history) + 3000;
    const auto got = run(history, make_config(0, pipeline::CitizenReplies::ignore), end, rng);
    if (got.inexact > 0) {
      ++counted;
      continue;
    }
    const auto want = sorted_appeals(Reference{kHorizon, true}.run(history, end + kLateness));
    const auto have = sorted_appeals(got.appeals);
    REQUIRE_MESSAGE(have.size() == want.size(), "round " << round);
    for (std::size_t i = 0; i < have.size(); ++i) {
      REQUIRE_MESSAGE(appeal_key(have[i]) == appeal_key(want[i]),
                      "round " << round << " appeal " << i);
    }
    check_counters(got, want);
    ++exact;
  }
  CHECK(exact > 30);     // the history's delays often exceed the 2000 s retention...
  CHECK(counted > 100);  // ...and each time that is counted
}
