// Tests of the Telegram Desktop export parser: fixtures for each export shape and
// rejection reason, and generated hostile input that must end in an error, not a crash.
#include "connectors/telegram_export/export_parser.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace replywatch::connectors::telegram_export {
namespace {

using pipeline::AuthorHint;
using pipeline::Event;
using pipeline::EventKind;

const std::string kExports = std::string(REPLYWATCH_FIXTURES) + "/exports/";

struct Recorder : Sink {
  struct Chat {
    std::int64_t id;
    std::string name;
    std::string type;
  };
  std::vector<Chat> chats;
  std::vector<Event> events;
  std::vector<std::string> rejected;
  std::set<std::int64_t> skip;  // chats whose messages are declined

  bool on_chat(std::int64_t chat_id, std::string_view name, std::string_view type) override {
    chats.push_back({chat_id, std::string(name), std::string(type)});
    return skip.count(chat_id) == 0;
  }
  void on_event(const Event& event) override { events.push_back(event); }
  void on_rejected(std::string_view reason) override { rejected.emplace_back(reason); }
};

std::string read_fixture(const std::string& name) {
  std::ifstream in(kExports + name, std::ios::binary);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Result<void> parse_text(std::string_view json, Recorder& sink, const ParseOptions& options = {}) {
  return parse_bytes(json, "test.json", options, sink);
}

std::shared_ptr<const pipeline::TimeZone> berlin() {
  auto zone = pipeline::TimeZone::load("Europe/Berlin");
  REQUIRE(zone.has_value());
  return *zone;
}

// One chat holding the given message objects, for message-level cases.
std::string chat_with(const std::string& messages) {
  return R"({"name":"t","type":"personal_chat","id":7,"messages":[)" + messages + "]}";
}

// A well-formed regular message with one extra field spliced in at the end.
std::string message_with(const std::string& extra) {
  std::string m = R"({"id":2,"type":"message","date_unixtime":"1782900000","from_id":"user5")";
  if (!extra.empty()) m += "," + extra;
  return m + "}";
}

// The reason one message is rejected for, or "" when it is accepted.
std::string verdict(const std::string& message, const ParseOptions& options = {}) {
  Recorder sink;
  auto result = parse_text(chat_with(message), sink, options);
  REQUIRE_MESSAGE(result.has_value(), result.error().message);
  REQUIRE(sink.events.size() + sink.rejected.size() == 1);
  return sink.rejected.empty() ? std::string() : sink.rejected[0];
}

std::string error_of(std::string_view json) {
  Recorder sink;
  auto result = parse_text(json, sink);
  REQUIRE_FALSE(result.has_value());
  return result.error().message;
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST_CASE("bot_api_chat_id maps export types to Bot API ids") {
  std::int64_t id = 0;
  CHECK(bot_api_chat_id("personal_chat", 222, id));
  CHECK(id == 222);
  CHECK(bot_api_chat_id("bot_chat", 93372553, id));
  CHECK(id == 93372553);
  CHECK(bot_api_chat_id("saved_messages", 333, id));
  CHECK(id == 333);
  CHECK(bot_api_chat_id("replies", 1271266957, id));
  CHECK(id == 1271266957);
  CHECK(bot_api_chat_id("private_group", 789, id));
  CHECK(id == -789);
  for (auto type : {"private_supergroup", "public_supergroup", "private_channel",
                    "public_channel"}) {
    CHECK(bot_api_chat_id(type, 456, id));
    CHECK(id == -1000000000456);
  }
  CHECK_FALSE(bot_api_chat_id("secret_chat", 1, id));
  CHECK_FALSE(bot_api_chat_id("", 1, id));
  CHECK_FALSE(bot_api_chat_id("personal_chat", 0, id));
  CHECK_FALSE(bot_api_chat_id("personal_chat", -5, id));
  CHECK_FALSE(bot_api_chat_id("public_channel", 1000000000000, id));
  CHECK_FALSE(bot_api_chat_id("private_group", INT64_MAX, id));
  CHECK_FALSE(bot_api_chat_id("personal_chat", INT64_MAX, id));
}

TEST_CASE("bot_api_peer_id parses user, channel and chat references") {
  std::int64_t id = 0;
  CHECK(bot_api_peer_id("user123", id));
  CHECK(id == 123);
  CHECK(bot_api_peer_id("channel456", id));
  CHECK(id == -1000000000456);
  CHECK(bot_api_peer_id("chat789", id));
  CHECK(id == -789);
  for (auto bad : {"", "user", "channel", "chat", "user-1", "user+1", "user 1", "user1 ",
                   "xuser1", " user1", "user0", "user1x", "User1", "channel1000000000000",
                   "user99999999999999999999999", "peer1", "chat-789", "user0x10"}) {
    CAPTURE(bad);
    CHECK_FALSE(bot_api_peer_id(bad, id));
  }
}

TEST_CASE("single-chat export of a discussion group") {
  Recorder sink;
  auto result = parse_file(kExports + "single_supergroup.json", {}, sink);
  REQUIRE_MESSAGE(result.has_value(), result.error().message);
  REQUIRE(sink.chats.size() == 1);
  CHECK(sink.chats[0].id == -1001500000001);
  CHECK(sink.chats[0].name == "Akimat Q&A");
  CHECK(sink.chats[0].type == "public_supergroup");
  CHECK(sink.rejected.empty());
  REQUIRE(sink.events.size() == 7);
  for (const Event& e : sink.events) {
    CHECK(e.conversation == -1001500000001);
    CHECK(e.source == pipeline::Source::telegram);
  }
  const Event& service = sink.events[0];
  CHECK(service.message_id == 1);
  CHECK(service.kind == EventKind::service);
  CHECK(service.author == 333);
  CHECK(service.author_hint == AuthorHint::user);
  CHECK(service.time == 1782900000);

  const Event& forward = sink.events[1];
  CHECK(forward.message_id == 2);
  CHECK(forward.kind == EventKind::message);
  CHECK(forward.author == -1001400000002);
  CHECK(forward.author_hint == AuthorHint::chat);
  CHECK(forward.reply_to == 0);
  CHECK(forward.time == 1782900060);

  const Event& question = sink.events[2];  // text as an array of strings and objects
  CHECK(question.message_id == 3);
  CHECK(question.author == 222);
  CHECK(question.author_hint == AuthorHint::user);
  CHECK(question.reply_to == 2);
  CHECK(question.time == 1782900300);

  const Event& answer = sink.events[3];
  CHECK(answer.message_id == 4);
  CHECK(answer.author == 333);
  CHECK(answer.reply_to == 3);
  CHECK(answer.time == 1782903600);  // the send time, not the edit time

  CHECK(sink.events[4].message_id == 5);  // replies into another chat: no reply here
  CHECK(sink.events[4].reply_to == 0);

  CHECK(sink.events[5].message_id == 6);  // via_bot keeps the human author
  CHECK(sink.events[5].author == 444);
  CHECK(sink.events[5].author_hint == AuthorHint::user);

  CHECK(sink.events[6].message_id == 7);
  CHECK(sink.events[6].kind == EventKind::service);  // "unsupported"
}

TEST_CASE("whole-account export reads chats.list and left_chats.list") {
  Recorder sink;
  auto result = parse_file(kExports + "account.json", {}, sink);
  REQUIRE_MESSAGE(result.has_value(), result.error().message);
  REQUIRE(sink.chats.size() == 3);
  CHECK(sink.chats[0].id == 222);
  CHECK(sink.chats[0].type == "personal_chat");
  CHECK(sink.chats[1].id == -1001500000009);
  CHECK(sink.chats[1].name == "City Akimat Chat");
  CHECK(sink.chats[2].id == -1001300000003);
  CHECK(sink.chats[2].type == "public_channel");
  CHECK(sink.rejected.empty());
  REQUIRE(sink.events.size() == 5);
  CHECK(sink.events[0].conversation == 222);
  CHECK(sink.events[0].message_id == 100);
  CHECK(sink.events[1].conversation == 222);
  CHECK(sink.events[1].reply_to == 100);
  CHECK(sink.events[1].time == 1782901800);
  CHECK(sink.events[2].conversation == -1001500000009);
  CHECK(sink.events[2].kind == EventKind::service);
  CHECK(sink.events[3].conversation == -1001500000009);
  CHECK(sink.events[3].author == 444);
  CHECK(sink.events[4].conversation == -1001300000003);
  CHECK(sink.events[4].author == -1001300000003);
  CHECK(sink.events[4].author_hint == AuthorHint::chat);
  CHECK(sink.events[4].time == 1782799200);
}

TEST_CASE("a declined chat's messages are skipped, the next chat still read") {
  Recorder sink;
  sink.skip = {222, -1001300000003};
  auto result = parse_file(kExports + "account.json", {}, sink);
  REQUIRE(result.has_value());
  CHECK(sink.chats.size() == 3);
  REQUIRE(sink.events.size() == 2);
  CHECK(sink.events[0].conversation == -1001500000009);
  CHECK(sink.events[1].conversation == -1001500000009);
}

TEST_CASE("old export without date_unixtime needs the export timezone") {
  SUBCASE("with Europe/Berlin") {
    Recorder sink;
    ParseOptions options;
    options.export_timezone = berlin();
    auto result = parse_file(kExports + "old_export.json", options, sink);
    REQUIRE_MESSAGE(result.has_value(), result.error().message);
    REQUIRE(sink.chats.size() == 1);
    CHECK(sink.chats[0].id == -4000001);
    REQUIRE(sink.events.size() == 2);
    CHECK(sink.events[0].time == 1782900000);  // 2026-07-01T12:00:00 CEST
    CHECK(sink.events[1].time == 1782900330);
    CHECK(sink.events[1].reply_to == 10);
  }
  SUBCASE("without a timezone every message is rejected") {
    Recorder sink;
    auto result = parse_file(kExports + "old_export.json", {}, sink);
    REQUIRE(result.has_value());
    CHECK(sink.events.empty());
    CHECK(sink.rejected == std::vector<std::string>{"no_export_timezone", "no_export_timezone"});
  }
}

TEST_CASE("each rejection reason rejects only its message") {
  for (const char* reason :
       {"not_an_object", "missing_id", "bad_id", "bad_type", "no_export_timezone",
        "missing_time", "bad_time", "time_out_of_range", "bad_from_id", "missing_author",
        "bad_reply_to", "bad_text"}) {
    CAPTURE(reason);
    Recorder sink;
    auto result = parse_file(kExports + "rejects/" + reason + ".json", {}, sink);
    REQUIRE_MESSAGE(result.has_value(), result.error().message);
    CHECK(sink.rejected == std::vector<std::string>{reason});
    REQUIRE(sink.events.size() == 2);
    CHECK(sink.events[0].message_id == 1);
    CHECK(sink.events[1].message_id == 3);
    CHECK(sink.events[1].reply_to == 1);
  }
}

TEST_CASE("message ids") {
  CHECK(verdict(R"({"type":"message","date_unixtime":"1782900000","from_id":"user5"})") ==
        "missing_id");
  for (auto id : {"0", "-1", "1.5", "1e3", "99999999999999999999", "null", "true", "[1]",
                  "{}", "\"2\"", "-0"}) {
    CAPTURE(id);
    CHECK(verdict(R"({"id":)" + std::string(id) +
                  R"(,"type":"message","date_unixtime":"1782900000","from_id":"user5"})") ==
          "bad_id");
  }
  Recorder sink;
  REQUIRE(parse_text(chat_with(R"({"id": 9007199254740993 ,"date_unixtime":"1782900000",)"
                               R"("from_id":"user5"})"),
                     sink)
              .has_value());
  REQUIRE(sink.events.size() == 1);
  CHECK(sink.events[0].message_id == 9007199254740993);
}

TEST_CASE("message types") {
  CHECK(verdict(R"({"id":2,"date_unixtime":"1782900000","from_id":"user5"})").empty());
  CHECK(verdict(message_with(R"("type":"sticker")")) == "bad_type");
  CHECK(verdict(message_with(R"("type":"")")) == "bad_type");
  CHECK(verdict(message_with(R"("type":1)")) == "bad_type");
  CHECK(verdict(message_with(R"("type":null)")) == "bad_type");
  Recorder sink;
  // Escapes are honoured in values we compare.
  REQUIRE(parse_text(chat_with(message_with(R"("type":"serv\u0069ce")")), sink).has_value());
  REQUIRE(sink.events.size() == 1);
  CHECK(sink.events[0].kind == EventKind::service);
}

TEST_CASE("message times") {
  auto timed = [](const std::string& time_fields) {
    return R"({"id":2,"type":"message",)" + time_fields + R"(,"from_id":"user5"})";
  };
  CHECK(verdict(timed(R"("date_unixtime":1782900000)")).empty());
  CHECK(verdict(timed(R"("date_unixtime":"")")) == "bad_time");
  CHECK(verdict(timed(R"("date_unixtime":"-1782900000")")) == "bad_time");
  CHECK(verdict(timed(R"("date_unixtime":" 1782900000")")) == "bad_time");
  CHECK(verdict(timed(R"("date_unixtime":"99999999999999999999999")")) == "bad_time");
  CHECK(verdict(timed(R"("date_unixtime":1782900000.5)")) == "bad_time");
  CHECK(verdict(timed(R"("date_unixtime":null)")) == "bad_time");
  CHECK(verdict(timed(R"("date_unixtime":"1375315199")")) == "time_out_of_range");
  CHECK(verdict(timed(R"("date_unixtime":"1375315200")")).empty());
  CHECK(verdict(timed(R"("date_unixtime":"4102444799")")).empty());
  CHECK(verdict(timed(R"("date_unixtime":"4102444800")")) == "time_out_of_range");
  CHECK(verdict(timed(R"("date_unixtime":-5)")) == "time_out_of_range");
  CHECK(verdict(timed(R"("date":5)")) == "bad_time");
  CHECK(verdict(R"({"id":2,"type":"message","from_id":"user5"})") == "missing_time");

  ParseOptions options;
  options.export_timezone = berlin();
  CHECK(verdict(timed(R"("date":"2026-07-01T12:00:00")")) == "no_export_timezone");
  CHECK(verdict(timed(R"("date":"2026-07-01T12:00:00")"), options).empty());
  for (auto bad : {"2026-07-01 12:00:00", "2026-07-01T12:00", "2026-07-01T12:00:00Z",
                   "2026-13-01T12:00:00", "2026-02-29T12:00:00", "2026-07-01T24:00:00",
                   "2026-07-01T12:60:00", "2026-07-01T12:00:60", "2026-07-00T12:00:00",
                   "+026-07-01T12:00:00", ""}) {
    CAPTURE(bad);
    CHECK(verdict(timed(R"("date":")" + std::string(bad) + "\""), options) == "bad_time");
  }
  CHECK(verdict(timed(R"("date":"2012-07-01T12:00:00")"), options) == "time_out_of_range");

  {
    // Winter time is UTC+1 in Berlin (date -d: 2026-01-15T12:00:00 CET = 1768474800).
    Recorder sink;
    REQUIRE(parse_text(chat_with(timed(R"("date":"2026-01-15T12:00:00")")), sink, options)
                .has_value());
    REQUIRE(sink.events.size() == 1);
    CHECK(sink.events[0].time == 1768474800);
  }

  // date_unixtime wins over date, whichever comes first.
  Recorder sink;
  const std::string both = R"("date_unixtime":"1782900000","date":"2026-07-01T13:00:00")";
  REQUIRE(parse_text(chat_with(timed(both)), sink, options).has_value());
  REQUIRE(sink.events.size() == 1);
  CHECK(sink.events[0].time == 1782900000);
}

TEST_CASE("message authors") {
  auto authored = [](const std::string& type, const std::string& fields) {
    std::string m = R"({"id":2,"type":")" + type + R"(","date_unixtime":"1782900000")";
    if (!fields.empty()) m += "," + fields;
    return m + "}";
  };
  CHECK(verdict(authored("message", "")) == "missing_author");
  CHECK(verdict(authored("message", R"("from_id":null)")) == "missing_author");
  CHECK(verdict(authored("message", R"("from_id":"user-1")")) == "bad_from_id");
  CHECK(verdict(authored("message", R"("from_id":5)")) == "bad_from_id");
  CHECK(verdict(authored("message", R"("from_id":"bot5")")) == "bad_from_id");
  CHECK(verdict(authored("service", R"("actor_id":"user")")) == "bad_from_id");
  CHECK(verdict(authored("message", R"("actor_id":"user5")")).empty());

  Recorder sink;
  REQUIRE(parse_text(chat_with(authored("service", R"("actor":null,"actor_id":null)") + "," +
                               authored("service", "") + "," +
                               authored("message", R"("from_id":"chat789")")),
                     sink)
              .has_value());
  CHECK(sink.rejected.empty());
  REQUIRE(sink.events.size() == 3);
  CHECK(sink.events[0].author == 0);
  CHECK(sink.events[0].author_hint == AuthorHint::unknown);
  CHECK(sink.events[1].author == 0);
  CHECK(sink.events[2].author == -789);
  CHECK(sink.events[2].author_hint == AuthorHint::chat);
}

TEST_CASE("replies and text shapes") {
  CHECK(verdict(message_with(R"("reply_to_message_id":0)")) == "bad_reply_to");
  CHECK(verdict(message_with(R"("reply_to_message_id":-3)")) == "bad_reply_to");
  CHECK(verdict(message_with(R"("reply_to_message_id":1.0)")) == "bad_reply_to");
  CHECK(verdict(message_with(R"("reply_to_message_id":"1")")) == "bad_reply_to");
  CHECK(verdict(message_with(R"("text":"plain")")).empty());
  CHECK(verdict(message_with(R"("text":[])")).empty());
  CHECK(verdict(message_with(R"("text":["a",{"type":"link","text":"b"},"c"])")).empty());
  CHECK(verdict(message_with(R"("text":null)")) == "bad_text");
  CHECK(verdict(message_with(R"("text":{"type":"bold","text":"b"})")) == "bad_text");
  CHECK(verdict(message_with(R"("text":["a",5])")) == "bad_text");
  CHECK(verdict(message_with(R"("text":["a",["b"]])")) == "bad_text");
  // Fields we do not read may hold anything.
  CHECK(verdict(message_with(R"("text_entities":5,"from":null,"poll":{"a":[[{}]]})")).empty());

  Recorder sink;
  const std::string messages =
      message_with(R"("reply_to_message_id":44)") + "," +
      message_with(R"("reply_to_peer_id":"channel9","reply_to_message_id":44)") + "," +
      message_with(R"("reply_to_message_id":44,"reply_to_peer_id":"user9")");
  REQUIRE(parse_text(chat_with(messages), sink).has_value());
  REQUIRE(sink.events.size() == 3);
  CHECK(sink.events[0].reply_to == 44);
  CHECK(sink.events[1].reply_to == 0);
  CHECK(sink.events[2].reply_to == 0);
}

TEST_CASE("chat header fields may come after the messages") {
  SUBCASE("single chat") {
    Recorder sink;
    auto result = parse_text(R"({"messages":[)" + message_with("") +
                                 R"(],"id":5,"type":"private_channel","name":"late"})",
                             sink);
    REQUIRE_MESSAGE(result.has_value(), result.error().message);
    REQUIRE(sink.chats.size() == 1);
    CHECK(sink.chats[0].id == -1000000000005);
    CHECK(sink.chats[0].name == "late");
    REQUIRE(sink.events.size() == 1);
    CHECK(sink.events[0].conversation == -1000000000005);
  }
  SUBCASE("in a chat list, with a nameless chat") {
    Recorder sink;
    auto result = parse_text(R"({"chats":{"list":[{"type":"saved_messages","id":9,"messages":[)" +
                                 message_with("") + R"(]},{"messages":[)" + message_with("") +
                                 R"(],"type":"bot_chat","id":10}]}})",
                             sink);
    REQUIRE_MESSAGE(result.has_value(), result.error().message);
    REQUIRE(sink.chats.size() == 2);
    CHECK(sink.chats[0].id == 9);
    CHECK(sink.chats[0].name.empty());
    CHECK(sink.chats[1].id == 10);
    REQUIRE(sink.events.size() == 2);
    CHECK(sink.events[0].conversation == 9);
    CHECK(sink.events[1].conversation == 10);
  }
}

TEST_CASE("files that are not Telegram exports") {
  CHECK(error_of("[]") == "test.json: not a Telegram export: the top level is not an object");
  CHECK(contains(error_of("42"), "not a Telegram export"));
  CHECK(contains(error_of(R"("text")"), "not a Telegram export"));
  CHECK(error_of("{}") == "test.json: not a Telegram export: no 'messages' or 'chats.list'");
  CHECK(contains(error_of(R"({"name":"x","type":"personal_chat","id":1})"),
                 "no 'messages' or 'chats.list'"));
  CHECK(contains(error_of(R"({"chats":{"about":"x"}})"), "no 'messages' or 'chats.list'"));
  CHECK(contains(error_of(R"({"messages":[]})"), "the chat has no usable 'id' and 'type'"));
  CHECK(contains(error_of(R"({"type":"secret","id":1,"messages":[]})"), "no usable"));
  CHECK(contains(error_of(R"({"type":"personal_chat","id":"1","messages":[]})"), "no usable"));
  CHECK(contains(error_of(R"({"type":"personal_chat","id":1.5,"messages":[]})"), "no usable"));
  CHECK(contains(error_of(R"({"type":"public_channel","id":99999999999999999999,"messages":[]})"),
                 "no usable"));
  CHECK(contains(error_of(R"({"type":"personal_chat","id":1,"messages":{}})"),
                 "'messages' of the chat is not an array"));
  CHECK(contains(error_of(R"({"chats":{"list":[{"type":"personal_chat","id":1,"messages":[]},)"
                          R"({"name":"x","messages":[]}]}})"),
                 "chats.list[1] has no usable 'id' and 'type'"));
  CHECK(contains(error_of(R"({"left_chats":{"list":[5]}})"),
                 "left_chats.list[0] is not an object"));
  CHECK(contains(error_of(R"({"chats":{"list":{}}})"), "'chats.list' is not an array"));
  CHECK(contains(error_of(R"({"chats":[]})"), "'chats' is not an object"));
}

TEST_CASE("invalid JSON is an error naming the file and the reason") {
  CHECK(contains(error_of(""), "test.json: not valid JSON (EMPTY: "));
  CHECK(contains(error_of("   \n"), "not valid JSON (EMPTY"));
  CHECK(contains(error_of(R"({"messages":[)"), "test.json: not valid JSON ("));
  CHECK(contains(error_of(R"({"a":"unclosed})"), "not valid JSON ("));
  CHECK(contains(error_of("{\"name\":\"\xff\xfe\",\"type\":\"personal_chat\"}"),
                 "not valid JSON (UTF8_ERROR"));
  CHECK(contains(error_of("{\"a\":\"\xc0\xaf\"}"), "UTF8_ERROR"));
  CHECK(contains(error_of("{\"a\":\"\xed\xa0\x80\"}"), "UTF8_ERROR"));  // encoded surrogate
  CHECK(contains(error_of(R"({"type":"personal_chat","id":1,"messages":[]} {})"),
                 "not valid JSON (TRAILING_CONTENT"));
  CHECK(contains(error_of(R"({"type":"personal_chat" "id":1,"messages":[]})"), "not valid JSON"));
  CHECK(contains(error_of(R"({"type":"personal_chat","id":1,"messages":[{"id":1,}]})"),
                 "not valid JSON"));
  CHECK(contains(error_of(R"({"type":"personal_chat","id":1,"messages":[{"id":1 "x":2}]})"),
                 "not valid JSON"));
  CHECK(contains(error_of(chat_with(R"({"id":1,"type":"\ud800"})")), "not valid JSON"));
  CHECK(contains(error_of(R"({"type":"personal_chat","id":1,"messages":[{"id":}]})"),
                 "not valid JSON"));
  CHECK(contains(error_of("{\"a\":\"tab\there\"}"), "not valid JSON"));
}

TEST_CASE("events delivered before a JSON error belong to a failed file") {
  Recorder sink;
  auto result = parse_text(chat_with(message_with("") + "," + R"({"id":3 "type":"message"})"),
                           sink);
  REQUIRE_FALSE(result.has_value());
  CHECK(contains(result.error().message, "test.json: not valid JSON ("));
  // The caller is told to discard these; the parser cannot take them back.
  CHECK(sink.events.size() == 1);
}

TEST_CASE("file errors name the path and the reason") {
  Recorder sink;
  auto missing = parse_file(kExports + "no_such_file.json", {}, sink);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message ==
        kExports + "no_such_file.json: cannot read: No such file or directory");
  auto directory = parse_file(kExports + "rejects", {}, sink);
  REQUIRE_FALSE(directory.has_value());
  CHECK(directory.error().message == kExports + "rejects: cannot read: Is a directory");
  auto empty_path = parse_file("", {}, sink);
  CHECK_FALSE(empty_path.has_value());
  CHECK(sink.chats.empty());
}

TEST_CASE("every truncation of an export fails cleanly") {
  const std::string full = read_fixture("single_supergroup.json");
  const std::size_t complete = full.find_last_of('}') + 1;
  for (std::size_t n = 0; n < full.size(); ++n) {
    Recorder sink;
    auto result = parse_text(std::string_view(full).substr(0, n), sink);
    if (n < complete) {
      CAPTURE(n);
      REQUIRE_FALSE(result.has_value());
      REQUIRE(contains(result.error().message, "test.json: "));
    } else {
      REQUIRE(result.has_value());
    }
  }
}

TEST_CASE("random garbage and mutated exports never crash") {
  std::mt19937 random(20260701);
  const std::string alphabet = "{}[]\":,\\ \n0123456789-.eEtruefalsnl\"idtypemsg";
  int errors = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bytes(random() % 300, '\0');
    for (char& c : bytes) {
      c = random() % 4 == 0 ? static_cast<char>(random() % 256)
                            : alphabet[random() % alphabet.size()];
    }
    Recorder sink;
    errors += parse_text(bytes, sink).has_value() ? 0 : 1;
  }
  CHECK(errors > 2900);

  const std::string fixtures[] = {read_fixture("single_supergroup.json"),
                                  read_fixture("account.json")};
  for (const std::string& original : fixtures) {
    for (int round = 0; round < 3000; ++round) {
      std::string bytes = original;
      for (int edits = 1 + static_cast<int>(random() % 4); edits > 0; --edits) {
        std::size_t at = random() % bytes.size();
        switch (random() % 3) {
          case 0: bytes[at] = alphabet[random() % alphabet.size()]; break;
          case 1: bytes.erase(at, 1 + random() % 8); break;
          default: bytes.insert(at, 1, static_cast<char>(random() % 256)); break;
        }
        if (bytes.empty()) bytes = "{";
      }
      Recorder sink;
      (void)parse_text(bytes, sink);
    }
  }
}

TEST_CASE("deep nesting is skipped or reported, never recursed into") {
  const std::string open(100000, '['), close(100000, ']');
  CHECK(contains(error_of(open + close), "not a Telegram export"));
  CHECK(contains(error_of(open), "test.json: "));
  CHECK(contains(error_of(R"({"a":)" + open + "}"), "test.json: "));

  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(100000, '}');
  CHECK(verdict(message_with(R"("junk":)" + open + close)).empty());
  CHECK(verdict(message_with(R"("junk":)" + objects)).empty());
  CHECK(verdict(message_with(R"("text":)" + open + close)) == "bad_text");
  CHECK(verdict(message_with(R"("text":[)" + objects + "]")).empty());

  Recorder sink;
  auto result = parse_text(R"({"junk":)" + open + close + R"(,"type":"personal_chat","id":1,)" +
                               R"("messages":[)" + message_with("") + "]}",
                           sink);
  REQUIRE_MESSAGE(result.has_value(), result.error().message);
  CHECK(sink.events.size() == 1);
  // Unbalanced nesting inside a message surfaces as an error.
  CHECK(contains(error_of(chat_with(message_with(R"("junk":)" + open))), "test.json: "));
}

TEST_CASE("huge numbers are wrong-typed fields, not crashes") {
  const std::string huge(5000, '9');
  CHECK(verdict(message_with(R"("reply_to_message_id":)" + huge)) == "bad_reply_to");
  CHECK(verdict(R"({"id":)" + huge + R"(,"date_unixtime":"1782900000","from_id":"user5"})") ==
        "bad_id");
  CHECK(verdict(R"({"id":2,"date_unixtime":)" + huge + R"(,"from_id":"user5"})") == "bad_time");
  CHECK(verdict(R"({"id":2,"date_unixtime":"1782900000","from_id":"user)" + huge + "\"}") ==
        "bad_from_id");
  CHECK(verdict(message_with(R"("junk":1e999999)")).empty());
}

}  // namespace
}  // namespace replywatch::connectors::telegram_export
