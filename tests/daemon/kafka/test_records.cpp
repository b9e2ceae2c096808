// The topics' JSON values: murmur2 against Kafka's own published vectors, every record type
// written and read back, and readers that name what is wrong with a bad value.
#include <doctest/doctest.h>

#include <random>

#include "daemon/config.hpp"
#include "daemon/kafka/records.hpp"

using namespace replywatch;
using namespace replywatch::daemon::kafka;
using pipeline::Appeal;
using pipeline::AppealStatus;
using pipeline::Event;

namespace {

std::shared_ptr<const pipeline::Registry> registry() {
  static const auto config = daemon::parse_config(R"(
agencies:
  - id: akimat
    name: Akimat
    timezone: Asia/Almaty
    conversations: [{source: telegram, id: -1001800004444}]
    accounts: [{source: telegram, id: 500100, role: press_secretary}]
  - id: police
    name: Police
    timezone: Europe/Moscow
    conversations: [{source: vk, id: -42}]
)",
                                                  "r.yaml");
  if (!config) FAIL(config.error().message);
  return config->registry;
}

}  // namespace

TEST_CASE("murmur2 matches Kafka's partitioner") {
  // Kafka's UtilsTest vectors (Java ints, i.e. the same 32 bits as signed).
  const std::pair<const char*, std::int32_t> vectors[] = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  for (const auto& [key, expected] : vectors) {
    CHECK(static_cast<std::int32_t>(murmur2(key)) == expected);
  }
  // Positive, modulo: every key lands in range, and the same key in the same partition.
  for (int n : {1, 3, 6, 7}) {
    CHECK(partition_for("telegram:-1001800004444", n) >= 0);
    CHECK(partition_for("telegram:-1001800004444", n) < n);
  }
}

TEST_CASE("events records round-trip, ids beyond 2^53 exactly") {
  std::vector<Event> events(3);
  events[0] = {-1001800004444,
               12,
               4,
               500201,
               1772512200,
               pipeline::Source::telegram,
               pipeline::EventKind::message,
               pipeline::AuthorHint::user};
  events[1] = {-1001800004444,
               13,
               0,
               0,
               1772512260,
               pipeline::Source::telegram,
               pipeline::EventKind::service,
               pipeline::AuthorHint::unknown};
  events[2] = {-1001800004444,
               9007199254740993,
               12,
               9007199254740995,
               1772512300,
               pipeline::Source::telegram,
               pipeline::EventKind::remove,
               pipeline::AuthorHint::automatic_forward};
  events[0].addressee = 400000001;
  std::string json;
  write_events(json, "host-a/bot", 1772600000, events);
  RecordReader reader;
  EventsRecord r;
  REQUIRE(reader.read(json, r).has_value());
  CHECK(r.type == EventsRecord::Type::events);
  CHECK(r.producer == "host-a/bot");
  CHECK(r.sent_at == 1772600000);
  REQUIRE(r.events.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(r.events[i].conversation == events[i].conversation);
    CHECK(r.events[i].message_id == events[i].message_id);
    CHECK(r.events[i].reply_to == events[i].reply_to);
    CHECK(r.events[i].author == events[i].author);
    CHECK(r.events[i].addressee == events[i].addressee);
    CHECK(r.events[i].time == events[i].time);
    CHECK(r.events[i].kind == events[i].kind);
    CHECK(r.events[i].author_hint == events[i].author_hint);
    CHECK(r.events[i].source == events[i].source);
  }

  json.clear();
  write_watermark(json, "host-a/bot", 1772600001, 1772599700);
  REQUIRE(reader.read(json, r).has_value());
  CHECK(r.type == EventsRecord::Type::watermark);
  CHECK(r.watermark == 1772599700);
  CHECK(r.events.empty());

  json.clear();
  write_migration(json, "host-a/bot", 1772600002, -4444, -1001800004444);
  REQUIRE(reader.read(json, r).has_value());
  CHECK(r.type == EventsRecord::Type::migration);
  CHECK(r.from == -4444);
  CHECK(r.to == -1001800004444);
}

TEST_CASE("events readers name what is wrong") {
  RecordReader reader;
  EventsRecord r;
  auto error = [&](std::string_view json) {
    auto got = reader.read(json, r);
    return got ? std::string() : got.error().message;
  };
  CHECK(error("{") == "events record: not JSON");
  CHECK(error("[1]") == "events record: not an object");
  CHECK(error(R"({"schema_version":2,"type":"events","producer":"a/b","events":[]})")
            .find("schema_version 2 is not supported") != std::string::npos);
  CHECK(error(R"({"schema_version":1,"type":"bogus","producer":"a/b"})") ==
        "events record: unknown type 'bogus'");
  CHECK(error(R"({"schema_version":1,"type":"watermark","producer":"a/b"})") ==
        "watermark record: field 'watermark' is missing or has the wrong type");
  CHECK(
      error(
          R"({"schema_version":1,"type":"events","producer":"a/b","events":[{"source":"telegram","conversation":"-1","message_id":"007","time":1}]})") ==
      "events record: field 'message_id' is missing or has the wrong type");
  CHECK(
      error(
          R"({"schema_version":1,"type":"events","producer":"a/b","events":[{"source":"myspace","conversation":"-1","message_id":"7","time":1}]})") ==
      "events record: field 'source' is missing or has the wrong type");
  CHECK(error(R"({"schema_version":1,"type":"events","events":[]})") ==
        "events record: field 'producer' is missing or has the wrong type");
  CHECK(error(R"({"schema_version":1,"type":"events","producer":"a/b","events":[]} x)") ==
        "events record: not JSON");
  // Fields a later schema may add are skipped.
  CHECK(
      error(
          R"({"schema_version":1,"type":"watermark","producer":"a/b","watermark":5,"extra":{"x":[1]}})")
          .empty());
}

TEST_CASE("appeal records round-trip with agency and responder looked up again") {
  const auto reg = registry();
  Appeal open;
  open.source = pipeline::Source::telegram;
  open.conversation = -1001800004444;
  open.thread = 12;
  open.citizen = 500201;
  open.opened_message = 12;
  open.opened_at = 1772512200;
  open.agency = reg->agency_index("akimat");
  Appeal answered = open;
  answered.status = AppealStatus::answered;
  answered.answer_message = 15;
  answered.answered_at = 1772512800;
  answered.responder = 500100;
  answered.reply_seconds = 600;
  answered.business_reply_seconds = 540;
  answered.responder_account = 0;

  std::string json;
  write_appeal(json, 3, *reg, &open, &answered);
  RecordReader reader;
  AppealsRecord r;
  REQUIRE(reader.read(json, *reg, r).has_value());
  CHECK(r.type == AppealsRecord::Type::appeal);
  CHECK(r.pair_partition == 3);
  REQUIRE(r.before);
  REQUIRE(r.after);
  CHECK(change_of(&*r.before, &*r.after) == "answered");
  const Appeal& a = *r.after;
  CHECK(a.agency == answered.agency);
  CHECK(a.responder_account == 0);
  CHECK(a.status == AppealStatus::answered);
  for (auto [got, want] : {std::pair{a.conversation, answered.conversation},
                           {a.thread, answered.thread},
                           {a.citizen, answered.citizen},
                           {a.opened_message, answered.opened_message},
                           {a.opened_at, answered.opened_at},
                           {a.answer_message, answered.answer_message},
                           {a.answered_at, answered.answered_at},
                           {a.responder, answered.responder},
                           {a.reply_seconds, answered.reply_seconds},
                           {a.business_reply_seconds, answered.business_reply_seconds}}) {
    CHECK(got == want);
  }

  json.clear();
  write_appeal(json, 0, *reg, nullptr, &open);
  REQUIRE(reader.read(json, *reg, r).has_value());
  CHECK(!r.before);
  CHECK(change_of(nullptr, &*r.after) == "opened");
  CHECK(json.find(R"("change":"opened")") != std::string::npos);

  Appeal expired = open;
  expired.status = AppealStatus::unanswered;
  CHECK(change_of(&open, &expired) == "expired");
  CHECK(change_of(&answered, &expired) == "corrected");
  CHECK(change_of(&answered, nullptr) == "removed");

  json.clear();
  write_conversation(json, 2, pipeline::Source::vk, -42, {"a/vk", "b/vk"});
  REQUIRE(reader.read(json, *reg, r).has_value());
  CHECK(r.type == AppealsRecord::Type::conversation);
  CHECK(r.source == pipeline::Source::vk);
  CHECK(r.conversation == -42);
  CHECK(r.producers == std::vector<std::string>{"a/vk", "b/vk"});

  json.clear();
  write_clock(json, 1, 1772600000,
              {{"a/vk", 1772599000, false}, {"b/vk", pipeline::Pairing::kNoClock, true}});
  REQUIRE(reader.read(json, *reg, r).has_value());
  CHECK(r.type == AppealsRecord::Type::clock);
  CHECK(r.sent_at == 1772600000);
  REQUIRE(r.clock.size() == 2);
  CHECK(r.clock[0].watermark == 1772599000);
  CHECK_FALSE(r.clock[0].retired);
  CHECK(r.clock[1].watermark == pipeline::Pairing::kNoClock);
  CHECK(r.clock[1].retired);

  json.clear();
  write_forgotten_deletion(json, 4, pipeline::Source::telegram, -1001800004444, 77);
  REQUIRE(reader.read(json, *reg, r).has_value());
  CHECK(r.type == AppealsRecord::Type::forgotten_deletion);
  CHECK(r.message == 77);

  auto bad = reader.read(
      R"({"schema_version":1,"type":"appeal","pair_partition":0,"before":null,"after":{"agency":"akimat"}})",
      *reg, r);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message == "appeals record: field 'after' is missing or has the wrong type");
}

TEST_CASE("agency-stats records round-trip every number") {
  AgencyStats s;
  s.agency = "akimat";
  s.window = "7d";
  s.computed_at = 1772600000;
  s.row.agency = "akimat";
  s.row.agency_name = "Akimat \"city\"";
  s.row.s.answered = 7;
  s.row.s.unanswered = 2;
  s.row.s.open = 1;
  s.row.s.median = 1234.5;
  s.row.s.answer_rate = 7.0 / 9.0;
  s.row.s.km_median_seconds = 0.1 + 0.2;
  daemon::RankingRow responder = s.row;
  responder.responder_id = "500100";
  responder.role = "press_secretary";
  s.responders.push_back(responder);
  std::string json;
  write_agency_stats(json, s);
  RecordReader reader;
  AgencyStats back;
  REQUIRE(reader.read(json, back).has_value());
  CHECK(back.agency == "akimat");
  CHECK(back.window == "7d");
  CHECK(back.computed_at == 1772600000);
  CHECK(back.row.agency_name == s.row.agency_name);
  CHECK(back.row.s.answered == 7);
  CHECK(back.row.s.median == s.row.s.median);
  CHECK(back.row.s.answer_rate == s.row.s.answer_rate);
  CHECK(back.row.s.km_median_seconds == s.row.s.km_median_seconds);
  REQUIRE(back.responders.size() == 1);
  CHECK(back.responders[0].role == "press_secretary");
  CHECK(back.branches.empty());
  // The same rows render the same league table as the originals.
  CHECK(daemon::ranking_json({back.row}, "7d", "agency", 1) ==
        daemon::ranking_json({s.row}, "7d", "agency", 1));
}
