// The daemon's engine: counters and gauges, expiry held back by a backlog,
// snapshot round trips, the appeals API paging, and snapshot files on disk.
#include "daemon/engine.hpp"
#include "daemon/snapshot_file.hpp"
#include "tests/support/pairing_fixture.hpp"

#include <doctest/doctest.h>
#include <prometheus/text_serializer.h>

#include <filesystem>
#include <fstream>

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

daemon::EventBatch batch(std::vector<Event> events, bool caught_up = true) {
  daemon::EventBatch b;
  b.connector = "exports";
  b.events = std::move(events);
  b.received_at = kNow;
  b.caught_up = caught_up;
  return b;
}

std::string metrics_text(const daemon::Engine& e, std::int64_t now) {
  return prometheus::TextSerializer().Serialize(e.collect(now));
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("engine: counters, open backlog and quantile gauges follow the appeals") {
  daemon::Engine engine(make_config());
  engine.apply(batch({message(10, 1001, kNow - 600), message(11, kPress, kNow - 300, 10),
                      message(12, 1002, kNow - 200)}),
               kNow);
  const std::string text = metrics_text(engine, kNow);
  CHECK(has_line(text, "replywatch_appeals_opened_total{agency=\"alpha\",source=\"telegram\",kind=\"first\"} 2"));
  CHECK(has_line(text, "replywatch_appeals_answered_total{agency=\"alpha\",source=\"telegram\",kind=\"first\"} 1"));
  CHECK(has_line(text, "replywatch_appeals_open{agency=\"alpha\",source=\"telegram\"} 1"));
  CHECK(has_line(text, "replywatch_oldest_open_appeal_age_seconds{agency=\"alpha\"} 200"));
  CHECK(has_line(text, "replywatch_connector_events_received_total{connector=\"exports\"} 3"));
  // One answer of 300 s: every quantile of the 1h window is 300 within 1%.
  const auto at = text.find("replywatch_reply_quantile_seconds{agency=\"alpha\",kind=\"first\",window=\"1h\",quantile=\"0.5\"} ");
  REQUIRE(at != std::string::npos);
  const double median = std::stod(text.substr(text.find("} ", at) + 2));
  CHECK(median == doctest::Approx(300).epsilon(0.01));
  CHECK(has_line(text, "replywatch_reply_seconds_bucket{agency=\"alpha\",source=\"telegram\",kind=\"first\",le=\"480\"} 1"));
  CHECK(has_line(text, "replywatch_reply_seconds_bucket{agency=\"alpha\",source=\"telegram\",kind=\"first\",le=\"240\"} 0"));
}

TEST_CASE("engine: a connector's backlog holds wall-clock expiry back") {
  daemon::Engine engine(make_config());
  // An old appeal arrives while the connector still has more to deliver.
  engine.apply(batch({message(10, 1001, kNow - 10'000)}, false), kNow);
  engine.tick(kNow);
  CHECK(engine.pairing().open_appeals() == 1);  // its answer may be in the next batch
  engine.apply(batch({message(11, kPress, kNow - 9'000, 10)}, true), kNow);
  CHECK(engine.pairing().open_appeals() == 0);
  const std::string text = metrics_text(engine, kNow);
  CHECK(has_line(text, "replywatch_appeals_answered_total{agency=\"alpha\",source=\"telegram\",kind=\"first\"} 1"));

  engine.apply(batch({message(12, 1002, kNow - 10'000)}, true), kNow);
  engine.tick(kNow);  // caught up: the wall clock rules, and 10'000 s > the 3600 s horizon
  CHECK(engine.pairing().open_appeals() == 0);
  CHECK(has_line(metrics_text(engine, kNow),
                 "replywatch_appeals_unanswered_total{agency=\"alpha\",source=\"telegram\",kind=\"first\"} 1"));
}

TEST_CASE("engine: a restored snapshot serves the same numbers and dedupes redeliveries") {
  daemon::Engine a(make_config());
  const std::vector<Event> first = {message(10, 1001, kNow - 600), message(11, kPress, kNow - 300, 10),
                                    message(12, 1002, kNow - 200)};
  auto b1 = batch(first);
  b1.cursors.push_back({"/exports/a.json", "123:456"});
  b1.rejected["bad_id"] = 2;
  a.apply(std::move(b1), kNow);
  const std::string snapshot = a.serialize();

  daemon::Engine b(make_config());
  REQUIRE(b.restore(snapshot).has_value());
  CHECK(metrics_text(b, kNow) == metrics_text(a, kNow));
  CHECK(b.cursors("exports").at("/exports/a.json") == "123:456");
  // The same file delivered again after a crash counts nothing twice.
  b.apply(batch(first), kNow);
  a.apply(batch(first), kNow);
  CHECK(metrics_text(b, kNow) == metrics_text(a, kNow));
  CHECK(b.serialize() == a.serialize());
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
  CHECK(std::count(answered->begin(), answered->end(), '{') == 1 + 9 * 2);  // page, appeals, responders
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
