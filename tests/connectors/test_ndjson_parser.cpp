// Tests of the generic ingest format: every field form and rejection reason, RFC 3339
// times, the tailing file reader, and hostile lines that must be rejected, never crash.
#include "connectors/ndjson/ndjson_parser.hpp"

#include <doctest/doctest.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace replywatch::connectors::ndjson {
namespace {

using pipeline::AuthorHint;
using pipeline::Event;
using pipeline::EventKind;
using pipeline::Source;

// The example of the documentation, which every field test varies.
const std::string kExample =
    R"({"source":"telegram","conversation":"-1001800004444","message_id":12,"reply_to":4,)"
    R"("author":"500201","author_kind":"user","time":1772512200,"kind":"message"})";

// A valid line with the required fields and `extra` spliced in at the end, so that a test
// names only the field it is about; `without` leaves one required field out.
std::string line_with(const std::string& extra, std::string_view without = "") {
  std::string line = "{";
  auto add = [&](std::string_view key, std::string_view value) {
    if (key == without) return;
    if (line.size() > 1) line += ",";
    line += "\"" + std::string(key) + "\":" + std::string(value);
  };
  add("source", R"("telegram")");
  add("conversation", "-1001800004444");
  add("message_id", "12");
  add("author", "500201");
  add("time", "1772512200");
  if (!extra.empty()) {
    if (line.size() > 1) line += ",";
    line += extra;
  }
  return line + "}";
}

// The reason a line is rejected for, "" when it yields an event.
std::string verdict(std::string_view line) {
  Parser parser;
  Event event;
  return std::string(parser.parse_line(line, event));
}

Event parsed(std::string_view line) {
  Parser parser;
  Event event;
  const std::string_view reason = parser.parse_line(line, event);
  REQUIRE_MESSAGE(reason.empty(), "rejected as ", std::string(reason), ": ", line);
  return event;
}

bool known_outcome(std::string_view reason) {
  if (reason.empty() || reason == kSkip) return true;
  const auto reasons = rejection_reasons();
  return std::find(reasons.begin(), reasons.end(), reason) != reasons.end();
}

TEST_CASE("ndjson: the documented example line") {
  const Event e = parsed(kExample);
  CHECK(e.source == Source::telegram);
  CHECK(e.conversation == -1001800004444);
  CHECK(e.message_id == 12);
  CHECK(e.reply_to == 4);
  CHECK(e.author == 500201);
  CHECK(e.author_hint == AuthorHint::user);
  CHECK(e.time == 1772512200);
  CHECK(e.kind == EventKind::message);
}

TEST_CASE("ndjson: defaults of the optional fields") {
  const Event e = parsed(line_with(""));
  CHECK(e.reply_to == 0);
  CHECK(e.author_hint == AuthorHint::user);
  CHECK(e.kind == EventKind::message);
  // null is the same as absent
  const Event n = parsed(line_with(R"("reply_to":null,"author_kind":null,"kind":null)"));
  CHECK(n.reply_to == 0);
  CHECK(n.author_hint == AuthorHint::user);
  CHECK(n.kind == EventKind::message);
}

TEST_CASE("ndjson: sources") {
  const std::pair<const char*, Source> names[] = {
      {"telegram", Source::telegram}, {"vk", Source::vk},
      {"facebook", Source::facebook}, {"instagram", Source::instagram},
      {"mastodon", Source::mastodon}, {"x", Source::x}};
  for (const auto& [name, source] : names) {
    const std::string shown = name;
    CAPTURE(shown);
    const std::string value = "\"" + std::string(name) + "\"";
    CHECK(parsed(line_with(R"("source":)" + value, "source")).source == source);
  }
  CHECK(parsed(line_with(R"("source":"v\u006b")", "source")).source == Source::vk);
  for (std::string bad : {R"("Telegram")", R"("")", R"("twitter")", R"(" vk")", "5", "true", "[]",
                          "{}", R"(["vk"])"}) {
    CAPTURE(bad);
    CHECK(verdict(line_with(R"("source":)" + bad, "source")) == "bad_source");
  }
  CHECK(verdict(line_with("", "source")) == "missing_source");
  CHECK(verdict(line_with(R"("source":null)", "source")) == "missing_source");
}

TEST_CASE("ndjson: conversation and author ids as numbers and strings") {
  struct Case {
    const char* json;
    std::int64_t value;
  };
  const Case good[] = {
      {"-1001800004444", -1001800004444},
      {R"("-1001800004444")", -1001800004444},
      {"7", 7},
      {R"("7")", 7},
      {"-7", -7},
      // Beyond 2^53: exact as strings, and as numbers too since digits are read directly.
      {R"("9007199254740993")", 9007199254740993},
      {"9007199254740993", 9007199254740993},
      {R"("9223372036854775807")", INT64_MAX},
      {R"("-9223372036854775808")", INT64_MIN},
      {"9223372036854775807 ", INT64_MAX},
  };
  for (const Case& c : good) {
    const std::string shown = c.json;
    CAPTURE(shown);
    CHECK(parsed(line_with(R"("conversation":)" + std::string(c.json), "conversation"))
              .conversation == c.value);
    CHECK(parsed(line_with(R"("author":)" + std::string(c.json), "author")).author == c.value);
  }
  const char* const bad_ids[] = {"0", R"("0")", "-0", R"("-0")", R"("007")", "1.0", "1.5", "1e3",
                                 "1E3", R"("1.0")", R"("")", R"(" 1")", R"("1 ")", R"("+1")",
                                 R"("0x10")", R"("-")", "true", "false", "[1]", R"({"id":1})",
                                 R"("user1")",
                                 // just outside 64 bits
                                 "9223372036854775808", R"("9223372036854775808")",
                                 R"("-9223372036854775809")", "99999999999999999999"};
  for (const std::string bad : bad_ids) {
    CAPTURE(bad);
    CHECK(verdict(line_with(R"("conversation":)" + bad, "conversation")) == "bad_conversation");
    CHECK(verdict(line_with(R"("author":)" + bad, "author")) == "bad_author");
  }
  CHECK(verdict(line_with("", "conversation")) == "missing_conversation");
  CHECK(verdict(line_with(R"("conversation":null)", "conversation")) == "missing_conversation");
}

TEST_CASE("ndjson: message ids and replies") {
  CHECK(parsed(line_with(R"("message_id":"12")", "message_id")).message_id == 12);
  CHECK(parsed(line_with(R"("message_id":9223372036854775807)", "message_id")).message_id ==
        INT64_MAX);
  for (std::string bad : {"0", "-1", R"("-1")", R"("0")", "1.5", R"("")", "[]", "false"}) {
    CAPTURE(bad);
    CHECK(verdict(line_with(R"("message_id":)" + bad, "message_id")) == "bad_message_id");
  }
  // A mangled atom is not JSON, rather than a missing field.
  CHECK(verdict(line_with(R"("message_id":nulll)", "message_id")) == "not_json");
  CHECK(verdict(line_with("", "message_id")) == "missing_message_id");
  CHECK(verdict(line_with(R"("message_id":null)", "message_id")) == "missing_message_id");

  CHECK(parsed(line_with(R"("addressee":"500001")")).addressee == 500001);
  CHECK(parsed(line_with("")).addressee == 0);
  for (std::string bad : {"0", R"("0")", "4.5", R"("x")", "[4]"}) {
    CAPTURE(bad);
    CHECK(verdict(line_with(R"("addressee":)" + bad)) == "bad_addressee");
  }

  CHECK(parsed(line_with(R"("reply_to":4)")).reply_to == 4);
  CHECK(parsed(line_with(R"("reply_to":"4")")).reply_to == 4);
  CHECK(parsed(line_with(R"("reply_to":"9007199254740993")")).reply_to == 9007199254740993);
  for (std::string bad : {"0", "-4", R"("0")", "4.0", "true", R"("x")", "[4]"}) {
    CAPTURE(bad);
    CHECK(verdict(line_with(R"("reply_to":)" + bad)) == "bad_reply_to");
  }
}

TEST_CASE("ndjson: authors are required except on service events") {
  for (std::string kind : {"message", "edit", "delete"}) {
    CAPTURE(kind);
    const std::string field = R"("kind":")" + kind + "\"";
    CHECK(verdict(line_with(field, "author")) == "missing_author");
    CHECK(verdict(line_with(field + R"(,"author":null)", "author")) == "missing_author");
  }
  const Event service = parsed(line_with(R"("kind":"service")", "author"));
  CHECK(service.kind == EventKind::service);
  CHECK(service.author == 0);
  CHECK(service.author_hint == AuthorHint::unknown);
  // A kind given about nobody is still checked, then dropped.
  const Event hinted = parsed(line_with(R"("author_kind":"bot","kind":"service")", "author"));
  CHECK(hinted.author_hint == AuthorHint::unknown);
  CHECK(verdict(line_with(R"("author_kind":"robot","kind":"service")", "author")) ==
        "bad_author_kind");
  // A service event that names its actor keeps it.
  const Event acted = parsed(line_with(R"("kind":"service","author_kind":"chat")"));
  CHECK(acted.author == 500201);
  CHECK(acted.author_hint == AuthorHint::chat);
}

TEST_CASE("ndjson: author kinds and event kinds") {
  const std::pair<const char*, AuthorHint> hints[] = {
      {"user", AuthorHint::user},
      {"chat", AuthorHint::chat},
      {"bot", AuthorHint::bot},
      {"automatic_forward", AuthorHint::automatic_forward}};
  for (const auto& [name, hint] : hints) {
    const std::string shown = name;
    CAPTURE(shown);
    CHECK(parsed(line_with(R"("author_kind":")" + std::string(name) + "\"")).author_hint == hint);
  }
  for (std::string bad : {R"("unknown")", R"("User")", R"("")", "1", "true", "[]"}) {
    CAPTURE(bad);
    CHECK(verdict(line_with(R"("author_kind":)" + bad)) == "bad_author_kind");
  }
  const std::pair<const char*, EventKind> kinds[] = {{"message", EventKind::message},
                                                     {"service", EventKind::service},
                                                     {"edit", EventKind::edit},
                                                     {"delete", EventKind::remove}};
  for (const auto& [name, kind] : kinds) {
    const std::string shown = name;
    CAPTURE(shown);
    CHECK(parsed(line_with(R"("kind":")" + std::string(name) + "\"")).kind == kind);
  }
  for (std::string bad : {R"("remove")", R"("Message")", R"("")", "0", "{}"}) {
    CAPTURE(bad);
    CHECK(verdict(line_with(R"("kind":)" + bad)) == "bad_kind");
  }
}

TEST_CASE("ndjson: times as unix seconds") {
  auto timed = [](const std::string& value) { return line_with(R"("time":)" + value, "time"); };
  CHECK(parsed(timed("1772512200")).time == 1772512200);
  CHECK(parsed(timed("1375315200")).time == 1375315200);
  CHECK(parsed(timed("4102444799")).time == 4102444799);
  CHECK(verdict(timed("1375315199")) == "time_out_of_range");
  CHECK(verdict(timed("4102444800")) == "time_out_of_range");
  CHECK(verdict(timed("0")) == "time_out_of_range");
  CHECK(verdict(timed("-1772512200")) == "time_out_of_range");
  CHECK(verdict(timed("1772512200123")) == "time_out_of_range");  // milliseconds by mistake
  for (std::string bad : {"1772512200.5", "1.7725122e9", R"("1772512200")", R"("")", "true", "[]",
                          "99999999999999999999"}) {
    CAPTURE(bad);
    CHECK(verdict(timed(bad)) == "bad_time");
  }
  CHECK(verdict(line_with("", "time")) == "missing_time");
  CHECK(verdict(timed("null")) == "missing_time");
}

TEST_CASE("ndjson: times in RFC 3339") {
  // Expected values from `date -u -d <text> +%s`.
  struct Case {
    const char* text;
    std::int64_t seconds;
  };
  const Case good[] = {
      {"2026-03-02T09:10:00Z", 1772442600},
      {"2026-03-02T14:10:00+05:00", 1772442600},
      {"2026-03-01T23:40:00-09:30", 1772442600},
      {"2026-03-02T09:10:00+00:00", 1772442600},
      {"2026-03-02T09:10:00-00:00", 1772442600},
      {"2026-03-02t09:10:00z", 1772442600},
      {"2026-03-02T09:10:00.999Z", 1772442600},  // fractions are truncated, not rounded
      {"2026-03-02T09:10:00.000000001+00:00", 1772442600},
      {"2026-01-01T02:59:59.5+03:00", 1767225599},
      {"2026-12-31T23:30:00-14:00", 1798810200},
      {"2028-02-29T12:00:00+00:00", 1835438400},
      {"2013-08-01T00:00:00Z", 1375315200},
      {"2099-12-31T23:59:59Z", 4102444799},
      {"2016-12-31T23:59:60Z", 1483228800},  // a leap second counts as the next second
  };
  for (const Case& c : good) {
    const std::string shown = c.text;
    CAPTURE(shown);
    CHECK(parsed(line_with(R"("time":")" + std::string(c.text) + "\"", "time")).time == c.seconds);
  }
  for (std::string out :
       {"2100-01-01T00:00:00Z", "2013-07-31T23:59:59Z", "2013-08-01T05:59:59+06:00",
        "1970-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"}) {
    CAPTURE(out);
    CHECK(verdict(line_with(R"("time":")" + std::string(out) + "\"", "time")) ==
          "time_out_of_range");
  }
  const char* const bad_times[] = {"2026-03-02T09:10:00",       "2026-03-02 09:10:00Z",
                                   "2026-03-02T09:10Z",         "2026-03-02",
                                   "2026-3-2T09:10:00Z",        "2026-03-02T9:10:00Z",
                                   "2026-02-29T09:10:00Z",      "2026-13-02T09:10:00Z",
                                   "2026-00-02T09:10:00Z",      "2026-03-00T09:10:00Z",
                                   "2026-04-31T09:10:00Z",      "2026-03-02T24:00:00Z",
                                   "2026-03-02T09:60:00Z",      "2026-03-02T09:10:61Z",
                                   "2026-03-02T09:10:00.Z",     "2026-03-02T09:10:00.5",
                                   "2026-03-02T09:10:00+05",    "2026-03-02T09:10:00+0500",
                                   "2026-03-02T09:10:00+24:00", "2026-03-02T09:10:00+05:60",
                                   "2026-03-02T09:10:00+5:00",  "2026-03-02T09:10:00Z ",
                                   " 2026-03-02T09:10:00Z",     "2026-03-02T09:10:00ZZ",
                                   "2026-03-02T09:10:00UTC",    "+2026-03-02T09:10:00Z",
                                   "2026-03-02T09:10:00,5Z",    "2026-03-02T09:10:00.5.5Z",
                                   "Mon, 02 Mar 2026"};
  for (const std::string bad : bad_times) {
    CAPTURE(bad);
    CHECK(verdict(line_with(R"("time":")" + bad + "\"", "time")) == "bad_time");
  }
  CHECK(verdict(line_with(R"("time":"")", "time")) == "bad_time");
}

TEST_CASE("ndjson: unknown keys, raw payloads, escaped keys and field order") {
  const std::string raw =
      R"("raw":{"text":"Когда починят свет? \ud83d\udca1","nested":[[[{"a":null}]]],"n":1e400},)"
      R"("extra_future_field":[1,2,3],"Source":"nonsense","time_ms":5)";
  CHECK(parsed(line_with(raw)).message_id == 12);
  // A JSON library may escape any character of a key.
  const Event escaped = parsed(R"({"\u0073ource":"vk","conversation":1,"message_\u0069d":2,)"
                               R"("author":3,"time":1772512200})");
  CHECK(escaped.source == Source::vk);
  CHECK(escaped.message_id == 2);
  // Order does not matter, and whitespace around tokens is JSON's business.
  const Event reordered = parsed(
      " {\t\"time\" : \"2026-03-02T09:10:00Z\" , \"kind\":\"edit\", \"author\": 9 ,"
      "\"message_id\":3,\"conversation\":\"5\",\"source\":\"mastodon\"}\t ");
  CHECK(reordered.source == Source::mastodon);
  CHECK(reordered.kind == EventKind::edit);
  CHECK(reordered.time == 1772442600);
  // Windows line ends leave a '\r' before the newline.
  CHECK(parsed(kExample + "\r").message_id == 12);
}

TEST_CASE("ndjson: duplicate fields and the first problem in line order") {
  CHECK(verdict(line_with(R"("message_id":13)")) == "duplicate_field");
  CHECK(verdict(line_with(R"("source":"vk")")) == "duplicate_field");
  CHECK(verdict(line_with(R"("kind":"edit","kind":"edit")")) == "duplicate_field");
  CHECK(verdict(line_with(R"("raw":1,"raw":2)")).empty());  // ignored keys are not checked
  CHECK(verdict(R"({"kind":"x","source":"y"})") == "bad_kind");
  CHECK(verdict(R"({"source":"y","kind":"x"})") == "bad_source");
  // Missing fields are reported in the documented order once every present field passed.
  CHECK(verdict("{}") == "missing_source");
  CHECK(verdict(R"({"source":"vk"})") == "missing_conversation");
  CHECK(verdict(R"({"source":"vk","conversation":1})") == "missing_message_id");
  CHECK(verdict(R"({"source":"vk","conversation":1,"message_id":1})") == "missing_author");
  CHECK(verdict(R"({"source":"vk","conversation":1,"message_id":1,"author":1})") == "missing_time");
}

TEST_CASE("ndjson: lines that are not JSON objects") {
  for (std::string bad : {"{", "}", R"({"source":})", R"({"source":"telegram")",
                          R"({"source" "vk"})", R"({source:"vk"})", "{'source':'vk'}",
                          R"({"a":1,})", "not json", "\x01", R"({"source":"tele)"}) {
    CAPTURE(bad);
    CHECK(verdict(bad) == "not_json");
  }
  // After a whole valid object: trailing text, or a second object on the same line.
  CHECK(verdict(kExample + " x") == "not_json");
  CHECK(verdict(kExample + kExample) == "not_json");
  CHECK(verdict(kExample + ",") == "not_json");
  // Invalid UTF-8 anywhere, even in an ignored value, and bad escapes in a read value.
  CHECK(verdict(line_with("\"raw\":\"\xC3\x28\"")) == "not_json");
  CHECK(verdict(line_with("\"raw\":\"\xED\xA0\x80\"")) == "not_json");  // a UTF-16 surrogate
  CHECK(verdict(line_with("\"raw\":\"\xFF\"")) == "not_json");
  CHECK(verdict(line_with(R"("source":"\x")", "source")) == "not_json");
  CHECK(verdict(line_with(R"("source":"\ud800")", "source")) == "not_json");
  CHECK(verdict(line_with("\"source\":\"vk\x01\"", "source")) == "not_json");
  CHECK(verdict(line_with(R"("reply_to":nul)")) == "not_json");
  // Ignored values are checked too: all of a line must be JSON.
  for (std::string raw :
       {"tru",     "nul",   "01",   "1.",   ".5",       "-",           "1e",         "+1",
        R"("\q")", "[1 2]", "[1,]", "[,1]", R"({"a"})", R"({"a":1,})", R"({"a" 1})", "{1:2}",
        "]",       "[}]",   "}",    "[[]",  "'x'",      "NaN",         "Infinity",   "\"\x01\""}) {
    CAPTURE(raw);
    CHECK(verdict(line_with("\"raw\":" + raw)) == "not_json");
    CHECK(verdict("{\"raw\":" + raw + "," + line_with("").substr(1)) == "not_json");
  }
  CHECK(verdict(line_with(R"("r\qaw":1)")) == "not_json");
  CHECK(verdict(line_with(R"("raw":[-0.5e+7,1E-2,0,1e400,"\u00e9\n",{},[],true,false,null])"))
            .empty());

  for (std::string scalar : {"[]", "[1,2]", "5", "-1.5e3", R"("text")", "null", "true", "false"}) {
    CAPTURE(scalar);
    CHECK(verdict(scalar) == "not_an_object");
  }
  for (std::string bad : {"nope", "tru", "5x", "--1", R"("unclosed)", "5 6", "null null"}) {
    CAPTURE(bad);
    CHECK(verdict(bad) == "not_json");
  }
}

TEST_CASE("ndjson: blank lines, comments and a byte order mark are skipped") {
  for (std::string line : {"", " ", "\t", "\r", "  \t\r", "#", "# comment {\"source\":\"vk\"}",
                           "   # indented", "\xEF\xBB\xBF", "\xEF\xBB\xBF# after a BOM"}) {
    CAPTURE(line);
    CHECK(verdict(line) == kSkip);
  }
  CHECK(verdict("\xEF\xBB\xBF" + kExample).empty());
  CHECK(verdict("x# not a comment") == "not_json");
}

TEST_CASE("ndjson: line length limit") {
  // Padding inside an ignored string makes lines of exact lengths.
  auto of_length = [](std::size_t length) {
    std::string line = line_with(R"("raw":"")");
    line.insert(line.size() - 2, length - line.size(), 'a');
    return line;
  };
  const std::string at_limit = of_length(kMaxLineBytes);
  REQUIRE(at_limit.size() == kMaxLineBytes);
  CHECK(verdict(at_limit).empty());
  CHECK(verdict(of_length(kMaxLineBytes + 1)) == "line_too_long");
  CHECK(verdict(std::string(2 << 20, '{')) == "line_too_long");
  CHECK(verdict(std::string(2 << 20, ' ')) == "line_too_long");
}

TEST_CASE("ndjson: a rejected line leaves the event untouched, and the parser is reusable") {
  Parser parser;
  Event event;
  REQUIRE(parser.parse_line(kExample, event).empty());
  const std::vector<std::string> rejected = {line_with(R"("kind":"bad")"), "{", "[]",
                                             line_with("", "time"), std::string(3 << 20, 'x')};
  for (const std::string& line : rejected) {
    CHECK_FALSE(parser.parse_line(line, event).empty());
    CHECK(event.message_id == 12);
    CHECK(event.conversation == -1001800004444);
    CHECK(event.reply_to == 4);
  }
  // A short line after a long one must not see the long one's leftover bytes.
  CHECK(parser.parse_line(std::string(1000, ' ') + "{", event) == "not_json");
  CHECK(parser.parse_line(R"({"source":"x"})", event) == "missing_conversation");
  Parser moved = std::move(parser);
  CHECK(moved.parse_line(line_with(R"("message_id":77)", "message_id"), event).empty());
  CHECK(event.message_id == 77);
}

TEST_CASE("ndjson: every documented reason has a line that produces it") {
  const std::pair<std::string, std::string> examples[] = {
      {"line_too_long", std::string(kMaxLineBytes + 1, ' ')},
      {"not_json", "{"},
      {"not_an_object", "[]"},
      {"duplicate_field", line_with(R"("author":1)")},
      {"missing_source", line_with("", "source")},
      {"bad_source", line_with(R"("source":"icq")", "source")},
      {"missing_conversation", line_with("", "conversation")},
      {"bad_conversation", line_with(R"("conversation":"0")", "conversation")},
      {"missing_message_id", line_with("", "message_id")},
      {"bad_message_id", line_with(R"("message_id":-1)", "message_id")},
      {"bad_reply_to", line_with(R"("reply_to":0)")},
      {"bad_addressee", line_with(R"("addressee":"x")")},
      {"missing_author", line_with("", "author")},
      {"bad_author", line_with(R"("author":"")", "author")},
      {"missing_time", line_with("", "time")},
      {"bad_time", line_with(R"("time":"yesterday")", "time")},
      {"time_out_of_range", line_with(R"("time":1)", "time")},
      {"bad_author_kind", line_with(R"("author_kind":"admin")")},
      {"bad_kind", line_with(R"("kind":"reaction")")},
  };
  const auto reasons = rejection_reasons();
  REQUIRE(reasons.size() == std::size(examples));
  for (std::size_t i = 0; i < reasons.size(); ++i) {
    CAPTURE(examples[i].first);
    CHECK(reasons[i] == examples[i].first);  // the documentation's table order
    CHECK(verdict(examples[i].second) == examples[i].first);
  }
}

// docs/ingest-format.md, found from this file's path so that both the CMake build (absolute
// paths) and a direct compiler run from the repository root (relative paths) find it.
std::string read_format_doc() {
  std::string path = __FILE__;
  const std::string_view self = "tests/connectors/test_ndjson_parser.cpp";
  REQUIRE(std::string_view(path).ends_with(self));
  path.resize(path.size() - self.size());
  path += "docs/ingest-format.md";
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot open ", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_CASE("ndjson: the examples and the reasons table of the documentation") {
  const std::string doc = read_format_doc();
  std::istringstream lines(doc);
  std::string line;
  std::string section;
  bool in_json = false;
  std::vector<Event> examples;
  std::vector<std::string> table;  // reasons in the order the table lists them
  while (std::getline(lines, line)) {
    if (line.starts_with("```")) {
      in_json = line == "```json";
      continue;
    }
    if (line.starts_with("## ")) section = line;
    if (in_json) {
      CAPTURE(line);
      examples.push_back(parsed(line));
    } else if (section == "## Rejections" && line.starts_with("| `")) {
      table.push_back(line.substr(3, line.find('`', 3) - 3));
    }
  }
  CHECK(examples.size() >= 10);
  const auto reasons = rejection_reasons();
  CHECK(table == std::vector<std::string>(reasons.begin(), reasons.end()));

  // The values the text promises.
  auto find = [&](Source source, std::int64_t message_id) {
    const auto it = std::find_if(examples.begin(), examples.end(), [&](const Event& e) {
      return e.source == source && e.message_id == message_id;
    });
    REQUIRE(it != examples.end());
    return *it;
  };
  CHECK(find(Source::x, 1765000000000000123).time == 1772442600);
  CHECK(find(Source::x, 1765000000000000123).reply_to == 1765000000000000000);
  CHECK(find(Source::telegram, 13).time == 1772513700);  // date -d 2026-03-03T09:55:00+05:00
  CHECK(find(Source::instagram, 18031000000000002).time == 1772442600);
}

// Random damage to a valid line: every outcome must be an event or a known reason, and the
// parser must stay usable. ASan and UBSan builds turn memory errors into failures.
TEST_CASE("ndjson: mutated and hostile lines never crash") {
  Parser parser;
  Event event;
  std::mt19937 random(20260302);
  const std::string seeds[] = {
      kExample,
      line_with(R"("raw":{"a":[1,2,{"b":"\u00e9\"x"}],"c":null},"time":"2026-03-02T09:10:00Z")",
                "time"),
      line_with(R"("kind":"service","reply_to":"4","author_kind":"automatic_forward")"),
  };
  const char interesting[] = {'{', '}', '[', ']',  '"',    '\\',   ',', ':', '0', '-',
                              'e', '.', ' ', '\0', '\x80', '\xff', 'n', 't', '#', '\r'};
  std::size_t events = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string line = seeds[static_cast<std::size_t>(round) % std::size(seeds)];
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits && !line.empty(); ++e) {
      const std::size_t at = random() % line.size();
      switch (random() % 6) {
        case 0: line[at] = static_cast<char>(random() % 256); break;
        case 1: line[at] = interesting[random() % sizeof interesting]; break;
        case 2: line.insert(at, 1, interesting[random() % sizeof interesting]); break;
        case 3: line.erase(at, 1 + random() % 8); break;
        case 4: line.resize(at); break;
        default: line.insert(at, line.substr(random() % line.size(), random() % 16)); break;
      }
    }
    const std::string_view reason = parser.parse_line(line, event);
    CAPTURE(line);
    REQUIRE(known_outcome(reason));
    if (!reason.empty()) continue;
    // Whatever got through must still keep the format's promises.
    ++events;
    REQUIRE(event.conversation != 0);
    REQUIRE(event.message_id > 0);
    REQUIRE(event.reply_to >= 0);
    REQUIRE((event.author != 0 || event.kind == EventKind::service));
    REQUIRE(event.time >= 1375315200);
    REQUIRE(event.time < 4102444800);
  }
  CHECK(events > 0);  // some mutations land in ignored places
  CHECK(parser.parse_line(kExample, event).empty());

  // Lines nest up to 1000 levels, counting the line's object as the first.
  auto nested = [](std::size_t levels, std::string_view close) {
    std::string raw(levels - 1, '[');
    for (std::size_t i = 1; i < levels; ++i) raw += close;
    return line_with("\"raw\":" + raw);
  };
  CHECK(parser.parse_line(nested(1000, "]"), event).empty());
  CHECK(parser.parse_line(nested(1001, "]"), event) == "not_json");
  CHECK(parser.parse_line(nested(1000, "}"), event) == "not_json");
  CHECK(parser.parse_line(nested(1000, ""), event) == "not_json");
  CHECK(parser.parse_line(std::string(1000, '[') + std::string(1000, ']'), event) ==
        "not_an_object");
  CHECK(parser.parse_line(std::string(1001, '[') + std::string(1001, ']'), event) == "not_json");
  // Brackets inside strings do not count.
  CHECK(parser.parse_line(line_with("\"raw\":\"" + std::string(5000, '[') + "\\\"]\""), event)
            .empty());

  // Nesting far beyond simdjson's depth limit, in ignored and in read fields, balanced or not.
  const std::size_t depth = 200000;
  const std::string open(depth, '['), close(depth, ']');
  for (const std::string& line :
       {open + close, open, close, std::string(depth, '{'), line_with("\"raw\":" + open + close),
        line_with("\"raw\":" + open), line_with("\"conversation\":" + open + close, "conversation"),
        line_with("\"raw\":" + std::string(depth / 2, '{') + "}")}) {
    REQUIRE(known_outcome(parser.parse_line(line, event)));
  }
  CHECK(parser.parse_line(kExample, event).empty());
}

// A private directory under the system temp directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ndjson-test-XXXXXX");
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void append(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  REQUIRE(out);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out);
}

std::string numbered(int message_id) {
  return line_with(R"("message_id":)" + std::to_string(message_id), "message_id") + "\n";
}

// Collects what one or more reads delivered.
struct Tail {
  std::vector<Event> events;
  std::vector<std::pair<std::string, std::uint64_t>> rejected;
  FileCursor cursor;

  Result<ReadSummary> read(const std::string& path, std::size_t max_bytes = 64 << 20) {
    return read_new_lines(
        path, cursor, max_bytes, [this](const Event& e) { events.push_back(e); },
        [this](std::string_view reason, std::uint64_t offset) {
          rejected.emplace_back(std::string(reason), offset);
        });
  }

  ReadSummary read_ok(const std::string& path, std::size_t max_bytes = 64 << 20) {
    auto result = read(path, max_bytes);
    REQUIRE_MESSAGE(result.has_value(), result.error().message);
    return *result;
  }

  std::vector<std::int64_t> ids() const {
    std::vector<std::int64_t> out;
    for (const Event& e : events) out.push_back(e.message_id);
    return out;
  }
};

TEST_CASE("ndjson reader: a file appended in pieces, with a partial last line") {
  TempDir dir;
  const std::string path = dir.file("events.ndjson");
  append(path, "");
  Tail tail;
  ReadSummary s = tail.read_ok(path);
  CHECK(s.lines == 0);
  CHECK(s.at_end);
  CHECK(tail.cursor.offset == 0);

  const std::string first = numbered(1);
  const std::string second = numbered(2);
  append(path, first + "# a comment\n\n" + second.substr(0, 30));
  s = tail.read_ok(path);
  CHECK(tail.ids() == std::vector<std::int64_t>{1});
  CHECK(s.lines == 3);
  CHECK(s.events == 1);
  CHECK(s.skipped == 2);
  CHECK(s.at_end);
  const std::uint64_t after_first = first.size() + 13;
  CHECK(tail.cursor.offset == after_first);
  CHECK(s.bytes == after_first);

  // Nothing new: the partial line stays where it is.
  s = tail.read_ok(path);
  CHECK(s.lines == 0);
  CHECK(tail.cursor.offset == after_first);

  append(path, second.substr(30, 10));
  CHECK(tail.read_ok(path).lines == 0);
  append(path, second.substr(40) + "{oops}\n" + numbered(3));
  s = tail.read_ok(path);
  CHECK(tail.ids() == std::vector<std::int64_t>{1, 2, 3});
  CHECK(s.events == 2);
  CHECK(s.rejected == 1);
  REQUIRE(tail.rejected.size() == 1);
  CHECK(tail.rejected[0].first == "not_json");
  CHECK(tail.rejected[0].second == after_first + second.size());
  CHECK(tail.cursor.offset == std::filesystem::file_size(path));
  CHECK_FALSE(s.truncated);
  CHECK_FALSE(s.replaced);

  // A cursor restored without the file identity resumes without a false rotation alarm.
  Tail restored;
  restored.cursor.offset = tail.cursor.offset;
  append(path, numbered(4));
  s = restored.read_ok(path);
  CHECK_FALSE(s.replaced);
  CHECK(restored.ids() == std::vector<std::int64_t>{4});
}

TEST_CASE("ndjson reader: CRLF line ends and events across many chunks") {
  TempDir dir;
  const std::string path = dir.file("events.ndjson");
  std::string content;
  for (int i = 1; i <= 3000; ++i) {
    std::string line = numbered(i);
    if (i % 2 == 0) line.insert(line.size() - 1, "\r");
    content += line;
  }
  append(path, content);
  Tail tail;
  const ReadSummary s = tail.read_ok(path, 100 << 20);
  CHECK(s.events == 3000);
  CHECK(s.rejected == 0);
  CHECK(s.bytes == content.size());
  REQUIRE(tail.events.size() == 3000);
  CHECK(tail.events.back().message_id == 3000);
}

TEST_CASE("ndjson reader: max_bytes bounds one call but always makes progress") {
  TempDir dir;
  const std::string path = dir.file("events.ndjson");
  const std::string line = numbered(1);
  for (int i = 1; i <= 5; ++i) append(path, numbered(i));
  Tail tail;
  ReadSummary s = tail.read_ok(path, 1);
  CHECK(s.lines == 1);
  CHECK_FALSE(s.at_end);
  s = tail.read_ok(path, 0);
  CHECK(s.lines == 1);
  s = tail.read_ok(path, line.size() + 1);  // the line reaching the budget is the last
  CHECK(s.lines == 2);
  CHECK_FALSE(s.at_end);
  s = tail.read_ok(path, 1 << 20);
  CHECK(s.lines == 1);
  CHECK(s.at_end);
  CHECK(tail.ids() == std::vector<std::int64_t>{1, 2, 3, 4, 5});
}

TEST_CASE("ndjson reader: truncation and rotation restart at the beginning") {
  TempDir dir;
  const std::string path = dir.file("events.ndjson");
  for (int i = 1; i <= 3; ++i) append(path, numbered(i));
  Tail tail;
  tail.read_ok(path);
  REQUIRE(tail.ids() == std::vector<std::int64_t>{1, 2, 3});

  SUBCASE("copytruncate: the same file, shorter") {
    std::filesystem::resize_file(path, 0);
    append(path, numbered(10));
    const ReadSummary s = tail.read_ok(path);
    CHECK(s.truncated);
    CHECK_FALSE(s.replaced);
    CHECK(tail.ids() == std::vector<std::int64_t>{1, 2, 3, 10});
    CHECK(tail.cursor.offset == numbered(10).size());
    CHECK_FALSE(tail.read_ok(path).truncated);  // said once
  }
  SUBCASE("rename and create: another file, even one longer than the cursor") {
    std::filesystem::rename(path, dir.file("events.ndjson.1"));
    for (int i = 20; i <= 24; ++i) append(path, numbered(i));
    const ReadSummary s = tail.read_ok(path);
    CHECK(s.replaced);
    CHECK_FALSE(s.truncated);
    CHECK(tail.ids() == std::vector<std::int64_t>{1, 2, 3, 20, 21, 22, 23, 24});
    CHECK_FALSE(tail.read_ok(path).replaced);
  }
}

TEST_CASE("ndjson reader: lines over the limit are rejected and skipped") {
  TempDir dir;
  const std::string path = dir.file("events.ndjson");
  const std::string huge = line_with("\"raw\":\"" + std::string(2 << 20, 'a') + "\"");

  SUBCASE("a complete 2 MiB line between two good ones") {
    append(path, numbered(1) + huge + "\n" + numbered(2));
    Tail tail;
    const ReadSummary s = tail.read_ok(path);
    CHECK(tail.ids() == std::vector<std::int64_t>{1, 2});
    REQUIRE(tail.rejected.size() == 1);
    CHECK(tail.rejected[0].first == "line_too_long");
    CHECK(tail.rejected[0].second == numbered(1).size());
    CHECK(s.lines == 3);
    CHECK(s.rejected == 1);
    CHECK(tail.cursor.offset == std::filesystem::file_size(path));
    CHECK_FALSE(tail.cursor.in_long_line);
  }
  SUBCASE("a 2 MiB line still being written is rejected once, its end skipped") {
    append(path, numbered(1) + huge.substr(0, huge.size() - 100));
    Tail tail;
    ReadSummary s = tail.read_ok(path);
    CHECK(tail.ids() == std::vector<std::int64_t>{1});
    REQUIRE(tail.rejected.size() == 1);
    CHECK(tail.rejected[0] ==
          std::pair<std::string, std::uint64_t>{"line_too_long", numbered(1).size()});
    CHECK(tail.cursor.in_long_line);
    CHECK(tail.cursor.offset == std::filesystem::file_size(path));
    append(path, huge.substr(huge.size() - 100, 50));
    s = tail.read_ok(path);
    CHECK(s.lines == 0);
    CHECK(tail.cursor.in_long_line);
    append(path, huge.substr(huge.size() - 50) + "\n" + numbered(2));
    s = tail.read_ok(path);
    CHECK(tail.ids() == std::vector<std::int64_t>{1, 2});
    CHECK(tail.rejected.size() == 1);
    CHECK(s.lines == 1);
    CHECK_FALSE(tail.cursor.in_long_line);
  }
  SUBCASE("a small budget skips a long line over several calls") {
    append(path, huge + "\n" + numbered(5));
    Tail tail;
    int calls = 0;
    while (tail.events.empty() && calls < 1000) {
      tail.read_ok(path, 64 << 10);
      ++calls;
    }
    CHECK(calls > 10);
    CHECK(tail.ids() == std::vector<std::int64_t>{5});
    CHECK(tail.rejected.size() == 1);
  }
}

TEST_CASE("ndjson reader: errors name the path") {
  TempDir dir;
  Tail tail;
  const std::string missing = dir.file("missing.ndjson");
  auto result = tail.read(missing);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().message.find(missing) != std::string::npos);
  CHECK(result.error().message.find("No such file") != std::string::npos);

  const std::string directory = dir.file("a_directory");
  std::filesystem::create_directory(directory);
  result = tail.read(directory);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().message.find(directory) != std::string::npos);
  CHECK(result.error().message.find("directory") != std::string::npos);

  const std::string fifo = dir.file("a_fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  result = tail.read(fifo);  // must return, not wait for a writer
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().message.find("not a regular file") != std::string::npos);

  const std::string locked = dir.file("locked.ndjson");
  append(locked, numbered(1));
  REQUIRE(::chmod(locked.c_str(), 0) == 0);
  if (::geteuid() == 0) {
    MESSAGE("running as root: the permission check cannot fail here");
  } else {
    result = tail.read(locked);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().message.find(locked) != std::string::npos);
    CHECK(result.error().message.find("Permission denied") != std::string::npos);
  }
  CHECK(tail.events.empty());
}

}  // namespace
}  // namespace replywatch::connectors::ndjson
