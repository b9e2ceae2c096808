// The daemon's engine: counters and gauges, expiry held back by a backlog,
// snapshot round trips, the appeals API paging, and snapshot files on disk.
#include <doctest/doctest.h>
#include <prometheus/text_serializer.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "daemon/engine.hpp"
#include "daemon/snapshot_file.hpp"
#include "tests/support/pairing_fixture.hpp"

using namespace replywatch;
using namespace replywatch::testing;

namespace {

constexpr std::int64_t kNow = 1'790'000'000;

std::shared_ptr<const daemon::Config> make_config() {
  auto c = std::make_shared<daemon::Config>();
  c->registry = make_registry(3600);
  daemon::ConnectorConfig connector;
  connector.name = "exports";
  connector.type = "telegram_export";
  c->connectors = {connector};
  return c;
}

daemon::EventBatch batch(std::vector<Event> events) {
  daemon::EventBatch b;
  b.connector = "exports";
  b.events = std::move(events);
  b.received_at = kNow;
  return b;
}

std::string metrics_text(const daemon::Engine& e, std::int64_t now) {
  return prometheus::TextSerializer().Serialize(e.collect(now));
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

const std::string kAlpha = "agency=\"alpha\",source=\"telegram\",kind=\"first\"";

}  // namespace

TEST_CASE("engine: counters count appeals once final; gauges and windows at once") {
  daemon::Engine engine(make_config());
  engine.apply(batch({message(10, 1001, kNow - 600), message(11, kPress, kNow - 300, 10),
                      message(12, 1002, kNow - 200)}),
               kNow);
  std::string text = metrics_text(engine, kNow);
  // The connector has not caught up yet: nothing is final, but the live views know.
  CHECK(has_line(text, "replywatch_appeals_opened_total{" + kAlpha + "} 0"));
  CHECK(has_line(text, "replywatch_appeals_open{agency=\"alpha\",source=\"telegram\"} 1"));
  CHECK(has_line(text, "replywatch_oldest_open_appeal_age_seconds{agency=\"alpha\"} 200"));
  CHECK(has_line(text, "replywatch_connector_events_received_total{connector=\"exports\"} 3"));
  CHECK(has_line(
      text, "replywatch_window_answered_appeals{agency=\"alpha\",kind=\"first\",window=\"1h\"} 1"));
  // One answer of 300 s: every quantile of the 1h window is 300 within the sketch's error.
  const auto at = text.find(
      "replywatch_reply_quantile_seconds{agency=\"alpha\",kind=\"first\",window=\"1h\",q=\"0.5\"}"
      " ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(text.substr(text.find("} ", at) + 2)) == doctest::Approx(300).epsilon(0.01));

  // Caught up at kNow: the watermark is kNow − 300 (lateness), which has passed the
  // first appeal and its answer (at kNow − 300) but not the second appeal.
  engine.connector_success("exports", kNow, true);
  text = metrics_text(engine, kNow);
  CHECK(has_line(text, "replywatch_appeals_opened_total{" + kAlpha + "} 1"));
  CHECK(has_line(text, "replywatch_appeals_answered_total{" + kAlpha + "} 1"));
  CHECK(has_line(text, "replywatch_reply_seconds_bucket{" + kAlpha + ",le=\"480\"} 1"));
  CHECK(has_line(text, "replywatch_reply_seconds_bucket{" + kAlpha + ",le=\"240\"} 0"));
  CHECK(has_line(text, "replywatch_connector_watermark_lag_seconds{connector=\"exports\"} 300"));
  engine.connector_success("exports", kNow + 200, true);
  CHECK(has_line(metrics_text(engine, kNow + 200),
                 "replywatch_appeals_opened_total{" + kAlpha + "} 2"));
}

TEST_CASE("engine: a backlog, an error or a rate limit holds expiry back") {
  daemon::Engine engine(make_config());
  engine.connector_success("exports", kNow - 20'000, true);  // caught up once, long ago
  // An old appeal arrives while the connector still has more to deliver.
  engine.apply(batch({message(10, 1001, kNow - 10'000)}), kNow);
  engine.connector_success("exports", kNow, false);
  engine.tick(kNow);
  CHECK(engine.pairing().open_appeals() == 1);  // its answer may be in the next batch
  engine.connector_error("exports", "rate_limited", "429", false);
  engine.tick(kNow + 60);
  CHECK(engine.pairing().open_appeals() == 1);
  engine.apply(batch({message(11, kPress, kNow - 9'000, 10)}), kNow);
  engine.connector_success("exports", kNow + 120, true);
  CHECK(engine.pairing().open_appeals() == 0);
  std::string text = metrics_text(engine, kNow + 120);
  CHECK(has_line(text, "replywatch_appeals_answered_total{" + kAlpha + "} 1"));
  CHECK(has_line(text, "replywatch_appeals_unanswered_total{" + kAlpha + "} 0"));

  // Older than the clock (late) but within the retention (2 × 3600 s): paired, and since
  // the clock is past its horizon (3600 s), unanswered and final at once.
  engine.apply(batch({message(12, 1002, kNow - 5'000)}), kNow + 120);
  engine.connector_success("exports", kNow + 130, true);
  CHECK(engine.pairing().open_appeals() == 0);
  text = metrics_text(engine, kNow + 130);
  CHECK(has_line(text, "replywatch_appeals_unanswered_total{" + kAlpha + "} 1"));
  CHECK(has_line(
      text, "replywatch_late_messages_total{connector=\"exports\",reason=\"behind_watermark\"} 1"));
}

TEST_CASE("engine: a late answer corrects a final unanswered appeal; counters never go down") {
  daemon::Engine engine(make_config());
  engine.apply(batch({message(10, 1001, kNow - 5000)}), kNow);
  engine.connector_success("exports", kNow, true);
  std::string text = metrics_text(engine, kNow);
  CHECK(has_line(text, "replywatch_appeals_unanswered_total{" + kAlpha + "} 1"));
  // The answer, within the horizon, arrives long after: the rules say answered.
  engine.apply(batch({message(11, kPress, kNow - 2000, 10)}), kNow + 10);
  engine.tick(kNow + 10);
  text = metrics_text(engine, kNow + 10);
  CHECK(has_line(text, "replywatch_appeals_unanswered_total{" + kAlpha + "} 1"));
  CHECK(has_line(text, "replywatch_appeals_answered_total{" + kAlpha + "} 1"));
  CHECK(
      has_line(text, "replywatch_appeals_corrected_total{" + kAlpha + ",status=\"unanswered\"} 1"));
  CHECK(has_line(text, "replywatch_appeals_corrected_total{" + kAlpha + ",status=\"opened\"} 0"));
  auto all = engine.appeals_json("alpha", "", 10, "");
  REQUIRE(all.has_value());
  CHECK(all->find("\"status\":\"answered\"") != std::string::npos);
  CHECK(all->find("\"reply_seconds\":3000") != std::string::npos);
}

TEST_CASE("engine: a deletion withdraws an unanswered appeal from every statistic") {
  daemon::Engine engine(make_config());
  Event del = message(10, 1001, kNow - 100, 0, kAlphaChat, EventKind::remove);
  engine.apply(batch({message(10, 1001, kNow - 900), message(12, 1002, kNow - 800), del}), kNow);
  engine.connector_success("exports", kNow, true);
  const std::string text = metrics_text(engine, kNow);
  CHECK(has_line(text, "replywatch_appeals_withdrawn_total{" + kAlpha + "} 1"));
  CHECK(has_line(text, "replywatch_appeals_open{agency=\"alpha\",source=\"telegram\"} 1"));
  auto withdrawn = engine.appeals_json("alpha", "withdrawn", 10, "");
  REQUIRE(withdrawn.has_value());
  CHECK(withdrawn->find("\"opened_message\":10") != std::string::npos);
  const std::string ranking = engine.ranking_json(1, "agency", kNow);
  CHECK(ranking.find("\"open\":1,\"sample_size\":1") != std::string::npos);
}

TEST_CASE("engine: a restored snapshot serves the same numbers and dedupes redeliveries") {
  daemon::Engine a(make_config());
  const std::vector<Event> first = {message(10, 1001, kNow - 600),
                                    message(11, kPress, kNow - 300, 10),
                                    message(12, 1002, kNow - 200)};
  auto b1 = batch(first);
  b1.cursors.push_back({"/exports/a.json", "123:456"});
  b1.rejected["bad_id"] = 2;
  a.apply(std::move(b1), kNow);
  a.connector_success("exports", kNow, true);
  const std::string snapshot = a.serialize();

  daemon::Engine b(make_config());
  REQUIRE(b.restore(snapshot).has_value());
  CHECK(metrics_text(b, kNow) == metrics_text(a, kNow));
  CHECK(b.cursors("exports").at("/exports/a.json") == "123:456");
  // The same file delivered again after a crash counts nothing twice.
  b.apply(batch(first), kNow);
  a.apply(batch(first), kNow);
  b.connector_success("exports", kNow + 500, true);
  a.connector_success("exports", kNow + 500, true);
  CHECK(metrics_text(b, kNow + 500) == metrics_text(a, kNow + 500));
  CHECK(*b.appeals_json("", "", 100, "") == *a.appeals_json("", "", 100, ""));
}

TEST_CASE("engine: a damaged snapshot is refused and the state is left alone") {
  daemon::Engine a(make_config());
  a.apply(batch({message(10, 1001, kNow - 600)}), kNow);
  const std::string snapshot = a.serialize();
  for (std::size_t cut = 0; cut < snapshot.size(); cut += 3) {
    daemon::Engine b(make_config());
    b.apply(batch({message(20, 1003, kNow - 100)}), kNow);
    CHECK_FALSE(b.restore(std::string_view(snapshot).substr(0, cut)).has_value());
    CHECK(b.pairing().open_appeals() == 1);
  }
}

TEST_CASE("engine: the appeals API pages through every appeal exactly once") {
  daemon::Engine engine(make_config());
  std::vector<Event> events;
  for (int i = 0; i < 25; ++i) {
    events.push_back(message(100 + 2 * i, 2000 + i, kNow - 3000 + i));
    if (i % 3 == 0) events.push_back(message(101 + 2 * i, kPress, kNow - 2000 + i, 100 + 2 * i));
  }
  engine.apply(batch(events), kNow);
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  for (;; ++pages) {
    REQUIRE(pages < 20);
    auto page = engine.appeals_json("alpha", "", 7, cursor);
    REQUIRE(page.has_value());
    const std::string& body = *page;
    for (std::size_t at = body.find("\"opened_message\":"); at != std::string::npos;
         at = body.find("\"opened_message\":", at + 1)) {
      CHECK(seen.insert(body.substr(at, body.find(',', at) - at)).second);
    }
    const auto next = body.find("\"next_cursor\":\"");
    if (next == std::string::npos) break;
    const auto start = next + 15;
    cursor = body.substr(start, body.find('"', start) - start);
  }
  CHECK(seen.size() == 25);
  CHECK(pages == 3);
  auto answered = engine.appeals_json("alpha", "answered", 100, "");
  REQUIRE(answered.has_value());
  CHECK(std::count(answered->begin(), answered->end(), '{') ==
        1 + 9 * 2);  // page, appeals, responders
  CHECK_FALSE(engine.appeals_json("alpha", "", 10, "garbage").has_value());
}

TEST_CASE("snapshot files: round trip, and truncation or damage is detected") {
  const auto dir = std::filesystem::temp_directory_path() / "replywatch_snapshot_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "state.snap").string();
  auto missing = daemon::read_snapshot_file(path);
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->has_value());

  const std::string payload(100000, 'x');
  REQUIRE(daemon::write_snapshot_file(path, payload).has_value());
  auto back = daemon::read_snapshot_file(path);
  REQUIRE(back.has_value());
  CHECK(**back == payload);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  std::filesystem::resize_file(path, 5000);
  auto truncated = daemon::read_snapshot_file(path);
  REQUIRE_FALSE(truncated.has_value());
  CHECK(truncated.error().message.find("truncated") != std::string::npos);

  REQUIRE(daemon::write_snapshot_file(path, payload).has_value());
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('y');
  }
  auto damaged = daemon::read_snapshot_file(path);
  REQUIRE_FALSE(damaged.has_value());
  CHECK(damaged.error().message.find("checksum") != std::string::npos);
  std::filesystem::remove_all(dir);
}
