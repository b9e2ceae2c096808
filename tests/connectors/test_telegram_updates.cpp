// Tests of the Bot API update parser: one case per mapping rule, recorded-style
// fixtures, the same history as updates and as a Desktop export, and hostile input.
#include "connectors/telegram/update_parser.hpp"

#include "connectors/telegram_export/export_parser.hpp"
#include "pipeline/pairing.hpp"
#include "tests/support/pairing_fixture.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// CMake defines the fixture folder; a direct compile from the source root finds it here.
#ifndef REPLYWATCH_FIXTURES
#define REPLYWATCH_FIXTURES "tests/fixtures"
#endif

namespace replywatch::connectors::telegram {
namespace {

using pipeline::Appeal;
using pipeline::AppealKind;
using pipeline::AppealStatus;
using pipeline::AuthorHint;
using pipeline::Event;
using pipeline::EventKind;

const std::string kFixtures = std::string(REPLYWATCH_FIXTURES) + "/telegram/";

// The history fixtures: agency X's channel, its discussion group and the people in it.
constexpr std::int64_t kT0 = 1782968400;  // 2026-07-02T05:00:00Z
constexpr std::int64_t kGroup = -1001987654321;
constexpr std::int64_t kChannel = -1001876543210;
constexpr std::int64_t kAigerim = 412345678;
constexpr std::int64_t kErlan = 523456789;
constexpr std::int64_t kMarat = 6345678901;  // above 2^32
constexpr std::int64_t kSaule = 734567890;
constexpr std::int64_t kDana = 298765432;  // the named official
constexpr std::int64_t kHelperBot = 5012345678;

constexpr std::int64_t kMaxId = (std::int64_t{1} << 52) - 1;

std::string read_fixture(const std::string& name) {
  std::ifstream in(kFixtures + name, std::ios::binary);
  REQUIRE_MESSAGE(in, name);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// The raw text of each element of a top-level JSON array (the pages of a recorded poll),
// kept byte for byte so the parser sees the \u escapes Telegram sends.
std::vector<std::string> split_array(const std::string& text) {
  std::vector<std::string> parts;
  int depth = 0;
  bool in_string = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (depth++ == 1) start = i;
    } else if (c == '}' || c == ']') {
      if (--depth == 1) parts.push_back(text.substr(start, i + 1 - start));
    }
  }
  return parts;
}

std::vector<std::string> history_pages() {
  auto pages = split_array(read_fixture("history_updates.json"));
  REQUIRE(pages.size() == 3);
  return pages;
}

Updates parse_ok(UpdateParser& parser, std::string_view body) {
  auto result = parser.parse_response(body);
  REQUIRE_MESSAGE(result.has_value(), result.error().message);
  return std::move(*result);
}

Updates parse_ok(std::string_view body) {
  UpdateParser parser;
  return parse_ok(parser, body);
}

std::string error_of(std::string_view body) {
  UpdateParser parser;
  auto result = parser.parse_response(body);
  REQUIRE_FALSE(result.has_value());
  return result.error().message;
}

std::uint64_t total_rejected(const Updates& u) {
  std::uint64_t n = 0;
  for (const auto& [reason, count] : u.rejected) n += count;
  return n;
}

// Every Update object ends up in exactly one of the three places.
void check_accounting(const Updates& u) {
  CHECK(u.updates == u.events.size() + total_rejected(u) + u.ignored);
}

std::string response_of(const std::vector<std::string>& updates) {
  std::string body = R"({"ok":true,"result":[)";
  for (std::size_t i = 0; i < updates.size(); ++i) body += (i ? "," : "") + updates[i];
  return body + "]}";
}

const std::string kCitizen = R"({"id":412345678,"is_bot":false,"first_name":"A"})";
const std::string kGroupChat = R"({"id":-1001987654321,"title":"G","type":"supergroup"})";

// A well-formed group message from a citizen, with `extra` fields spliced in at the end.
std::string message_fields(const std::string& extra = "") {
  std::string m = R"("message_id":1202,"from":)" + kCitizen + R"(,"chat":)" + kGroupChat +
                  R"(,"date":1782968700,"text":"q")";
  if (!extra.empty()) m += "," + extra;
  return m;
}

std::string update_of(std::int64_t id, std::string_view kind, const std::string& fields) {
  return R"({"update_id":)" + std::to_string(id) + R"(,")" + std::string(kind) + R"(":{)" + fields +
         "}}";
}

// What became of one update: its event, or the reason it was rejected ("" when mapped),
// or "ignored".
struct Verdict {
  std::string outcome;
  Event event;
  std::optional<std::int64_t> max_update_id;
};

Verdict verdict_of(const std::string& update) {
  const Updates u = parse_ok(response_of({update}));
  check_accounting(u);
  REQUIRE(u.updates == 1);
  Verdict v;
  v.max_update_id = u.max_update_id;
  if (!u.rejected.empty()) {
    v.outcome = u.rejected.begin()->first;
  } else if (u.ignored == 1) {
    v.outcome = "ignored";
  } else {
    REQUIRE(u.events.size() == 1);
    v.event = u.events[0];
  }
  return v;
}

Verdict message_verdict(const std::string& fields, std::string_view kind = "message") {
  return verdict_of(update_of(700, kind, fields));
}

// A group message with everything but the named fields, to probe one field at a time.
std::string fields_without(std::initializer_list<std::string_view> dropped,
                           const std::string& extra = "") {
  std::vector<std::pair<std::string_view, std::string>> all = {
      {"message_id", R"("message_id":1202)"},
      {"from", R"("from":)" + kCitizen},
      {"chat", R"("chat":)" + kGroupChat},
      {"date", R"("date":1782968700)"}};
  std::string out;
  for (const auto& [name, text] : all) {
    if (std::find(dropped.begin(), dropped.end(), name) != dropped.end()) continue;
    out += (out.empty() ? "" : ",") + text;
  }
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out;
}

TEST_CASE("a citizen's message maps to a message event") {
  const Verdict v = message_verdict(message_fields());
  REQUIRE(v.outcome.empty());
  CHECK(v.event.source == pipeline::Source::telegram);
  CHECK(v.event.kind == EventKind::message);
  CHECK(v.event.conversation == kGroup);
  CHECK(v.event.message_id == 1202);
  CHECK(v.event.time == 1782968700);
  CHECK(v.event.author == kAigerim);
  CHECK(v.event.author_hint == AuthorHint::user);
  CHECK(v.event.reply_to == 0);
  CHECK(v.max_update_id == 700);
}

TEST_CASE("update kinds: message, channel_post, edits, and the kinds we ignore") {
  const std::string channel_post =
      R"("message_id":58,"sender_chat":{"id":-1001876543210,"type":"channel"},)"
      R"("chat":{"id":-1001876543210,"type":"channel"},"date":1782968400,"text":"post")";
  SUBCASE("channel_post") {
    const Verdict v = message_verdict(channel_post, "channel_post");
    REQUIRE(v.outcome.empty());
    CHECK(v.event.kind == EventKind::message);
    CHECK(v.event.conversation == kChannel);
    CHECK(v.event.author == kChannel);
    CHECK(v.event.author_hint == AuthorHint::chat);
  }
  SUBCASE("edited_message takes edit_date as its time") {
    const Verdict v =
        message_verdict(message_fields(R"("edit_date":1782969000)"), "edited_message");
    REQUIRE(v.outcome.empty());
    CHECK(v.event.kind == EventKind::edit);
    CHECK(v.event.message_id == 1202);
    CHECK(v.event.time == 1782969000);
  }
  SUBCASE("an edit without edit_date keeps date") {
    const Verdict v = message_verdict(message_fields(), "edited_message");
    REQUIRE(v.outcome.empty());
    CHECK(v.event.kind == EventKind::edit);
    CHECK(v.event.time == 1782968700);
  }
  SUBCASE("edited_channel_post") {
    const Verdict v =
        message_verdict(channel_post + R"(,"edit_date":1782968460)", "edited_channel_post");
    REQUIRE(v.outcome.empty());
    CHECK(v.event.kind == EventKind::edit);
    CHECK(v.event.time == 1782968460);
    CHECK(v.event.author == kChannel);
  }
  SUBCASE("a new message's stray edit_date does not move its time") {
    const Verdict v = message_verdict(message_fields(R"("edit_date":1782969000)"));
    CHECK(v.event.time == 1782968700);
  }
  SUBCASE("an edited service message is an edit") {
    const Verdict v = message_verdict(message_fields(R"("new_chat_title":"t")"), "edited_message");
    CHECK(v.event.kind == EventKind::edit);
  }
  SUBCASE("other kinds are counted and still confirmed") {
    for (const char* kind :
         {"callback_query", "my_chat_member", "chat_member", "chat_join_request",
          "message_reaction", "message_reaction_count", "inline_query", "poll", "poll_answer",
          "chat_boost", "removed_chat_boost", "business_message", "deleted_business_messages",
          "purchased_paid_media", "some_future_kind"}) {
      CAPTURE(kind);
      const Verdict v = verdict_of(R"({"update_id":812,")" + std::string(kind) +
                                   R"(":{"id":"4382","from":)" + kCitizen + "}}");
      CHECK(v.outcome == "ignored");
      CHECK(v.max_update_id == 812);
    }
    // An update with nothing in it is nothing we map either.
    CHECK(verdict_of(R"({"update_id":813})").outcome == "ignored");
  }
}

TEST_CASE("authors: sender_chat speaks for the chat, and its placeholder is_bot is ignored") {
  SUBCASE("a named user") {
    const Verdict v = message_verdict(message_fields());
    CHECK(v.event.author == kAigerim);
    CHECK(v.event.author_hint == AuthorHint::user);
  }
  SUBCASE("a bot") {
    const Verdict v = message_verdict(fields_without(
        {"from"}, R"("from":{"id":5012345678,"is_bot":true,"first_name":"Helper"})"));
    CHECK(v.event.author == kHelperBot);
    CHECK(v.event.author_hint == AuthorHint::bot);
  }
  SUBCASE("an anonymous admin posts as the group itself") {
    const Verdict v = message_verdict(
        fields_without({"from"}, R"("from":{"id":1087968824,"is_bot":true,"first_name":"Group",)"
                                 R"("username":"GroupAnonymousBot"},"sender_chat":)" +
                                     kGroupChat));
    REQUIRE(v.outcome.empty());
    CHECK(v.event.author == kGroup);
    CHECK(v.event.author_hint == AuthorHint::chat);
  }
  SUBCASE("an admin writing as the linked channel") {
    const Verdict v = message_verdict(
        fields_without({"from"}, R"("from":{"id":136817688,"is_bot":true,"first_name":"Channel",)"
                                 R"("username":"Channel_Bot"},"sender_chat":{"id":-1001876543210,)"
                                 R"("title":"C","type":"channel"},"author_signature":"Press")"));
    CHECK(v.event.author == kChannel);
    CHECK(v.event.author_hint == AuthorHint::chat);
  }
  SUBCASE("the channel post mirrored into the discussion group") {
    const Verdict v = message_verdict(
        fields_without({"from"}, R"("from":{"id":777000,"is_bot":false,"first_name":"Telegram"},)"
                                 R"("sender_chat":{"id":-1001876543210,"type":"channel"},)"
                                 R"("is_automatic_forward":true)"));
    CHECK(v.event.author == kChannel);
    CHECK(v.event.author_hint == AuthorHint::automatic_forward);
  }
  SUBCASE("sender_chat before from, and is_automatic_forward before both") {
    const Verdict v = message_verdict(
        R"("is_automatic_forward":true,"message_id":1201,"sender_chat":{"id":-1001876543210},)"
        R"("from":{"id":777000,"is_bot":false},"chat":)" +
        kGroupChat + R"(,"date":1782968401)");
    CHECK(v.event.author == kChannel);
    CHECK(v.event.author_hint == AuthorHint::automatic_forward);
  }
  SUBCASE("is_automatic_forward false changes nothing") {
    const Verdict v = message_verdict(message_fields(R"("is_automatic_forward":false)"));
    CHECK(v.event.author_hint == AuthorHint::user);
  }
  SUBCASE("an automatic forward without sender_chat is still never an appeal") {
    const Verdict v = message_verdict(fields_without(
        {"from"}, R"("from":{"id":777000,"is_bot":false},"is_automatic_forward":true)"));
    CHECK(v.event.author == 777000);
    CHECK(v.event.author_hint == AuthorHint::automatic_forward);
  }
  SUBCASE("a channel post without sender_chat (older servers): the channel speaks") {
    const Verdict v = message_verdict(
        R"("message_id":9,"chat":{"id":-1001876543210,"type":"channel"},"date":1782968400)",
        "channel_post");
    REQUIRE(v.outcome.empty());
    CHECK(v.event.author == kChannel);
    CHECK(v.event.author_hint == AuthorHint::chat);
  }
  SUBCASE("a group message without any author is rejected") {
    CHECK(message_verdict(fields_without({"from"})).outcome == "missing_author");
  }
  SUBCASE("a service message without any author has author 0") {
    const Verdict v = message_verdict(fields_without({"from"}, R"("group_chat_created":true)"));
    REQUIRE(v.outcome.empty());
    CHECK(v.event.kind == EventKind::service);
    CHECK(v.event.author == 0);
    CHECK(v.event.author_hint == AuthorHint::unknown);
  }
  SUBCASE("is_bot may be missing; it then reads as a person") {
    const Verdict v = message_verdict(fields_without({"from"}, R"("from":{"id":5})"));
    CHECK(v.event.author == 5);
    CHECK(v.event.author_hint == AuthorHint::user);
  }
  SUBCASE("from with is_bot first and the id later") {
    const Verdict v = message_verdict(
        fields_without({"from"}, R"("from":{"is_bot":true,"first_name":"x","id":77})"));
    CHECK(v.event.author == 77);
    CHECK(v.event.author_hint == AuthorHint::bot);
  }
}

TEST_CASE("replies: reply_to_message sets reply_to; quote and other chats' messages do not") {
  const std::string parent =
      R"("reply_to_message":{"message_id":1201,"from":{"id":777000,"is_bot":false},)"
      R"("sender_chat":{"id":-1001876543210},"chat":)" +
      kGroupChat + R"(,"date":1782968401,"is_automatic_forward":true,"text":"post"})";
  CHECK(message_verdict(message_fields(parent)).event.reply_to == 1201);
  // The parent's own fields (author, chat, date) never leak into the reply's event.
  const Verdict v = message_verdict(message_fields(parent));
  CHECK(v.event.author == kAigerim);
  CHECK(v.event.author_hint == AuthorHint::user);
  CHECK(v.event.time == 1782968700);

  const std::string external =
      R"("external_reply":{"origin":{"type":"channel","chat":{"id":-1001444333222,)"
      R"("type":"channel"},"message_id":99,"date":1782900000},"chat":{"id":-1001444333222,)"
      R"("type":"channel"},"message_id":99})";
  const std::string quote = R"("quote":{"text":"part","position":3,"is_manual":true})";
  CHECK(message_verdict(message_fields(external)).event.reply_to == 0);
  // external_reply within this chat (another forum topic) is a reply, as in an export;
  // reply_to_message, when there too, wins.
  const std::string same_chat =
      R"("external_reply":{"origin":{"type":"user","sender_user":{"id":5,"is_bot":false},)"
      R"("date":1782900000},"chat":)" +
      kGroupChat + R"(,"message_id":1190})";
  CHECK(message_verdict(message_fields(same_chat)).event.reply_to == 1190);
  CHECK(message_verdict(message_fields(same_chat + "," + parent)).event.reply_to == 1201);
  CHECK(message_verdict(message_fields(parent + "," + same_chat)).event.reply_to == 1201);
  CHECK(message_verdict(R"("external_reply":{"message_id":1190,"chat":{"id":-1001987654321}},)" +
                        message_fields())
            .event.reply_to == 1190);
  // A malformed external_reply is informative only: ignored, never a rejection.
  for (const char* bad :
       {R"("external_reply":5)", R"("external_reply":{"chat":5,"message_id":1190})",
        R"("external_reply":{"chat":{"id":-1001987654321},"message_id":"1190"})",
        R"("external_reply":{"chat":{"id":-1001987654321},"message_id":-4})",
        R"("external_reply":{"chat":{"id":-1001987654321}})"}) {
    CAPTURE(bad);
    const Verdict v = message_verdict(message_fields(bad));
    CHECK(v.outcome.empty());
    CHECK(v.event.reply_to == 0);
  }
  CHECK(message_verdict(message_fields(external + "," + quote)).event.reply_to == 0);
  CHECK(message_verdict(message_fields(quote + "," + parent)).event.reply_to == 1201);
  CHECK(message_verdict(message_fields(R"("reply_to_story":{"chat":)" + kGroupChat + R"(,"id":4})"))
            .event.reply_to == 0);
  // message_thread_id is not a reply: the thread comes from the reply chain.
  CHECK(message_verdict(message_fields(R"("message_thread_id":1201)")).event.reply_to == 0);
  // The parent's message_id is found wherever it sits in the parent.
  CHECK(message_verdict(message_fields(R"("reply_to_message":{"chat":)" + kGroupChat +
                                       R"(,"date":1782968401,"message_id":1199})"))
            .event.reply_to == 1199);
}

TEST_CASE("forum topics change nothing: a topic message replies to the topic's creation") {
  const Updates u = parse_ok(read_fixture("forum_topic.json"));
  check_accounting(u);
  CHECK(u.rejected.empty());
  REQUIRE(u.events.size() == 7);
  const std::int64_t forum = -1001555444333;
  for (const Event& e : u.events) CHECK(e.conversation == forum);
  CHECK(u.events[0].message_id == 40);
  CHECK(u.events[0].kind == EventKind::service);  // forum_topic_created
  CHECK(u.events[0].reply_to == 0);
  CHECK(u.events[1].message_id == 41);
  CHECK(u.events[1].kind == EventKind::message);
  CHECK(u.events[1].reply_to == 40);
  CHECK(u.events[2].message_id == 42);  // a reply with a quote, inside the topic
  CHECK(u.events[2].reply_to == 41);
  CHECK(u.events[2].author == 833445566);
  CHECK(u.events[3].message_id == 43);  // the General topic
  CHECK(u.events[3].reply_to == 0);
  CHECK(u.events[4].message_id == 44);  // external_reply + quote
  CHECK(u.events[4].reply_to == 0);
  CHECK(u.events[5].message_id == 45);
  CHECK(u.events[5].kind == EventKind::service);  // forum_topic_closed
  CHECK(u.events[5].reply_to == 40);
  CHECK(u.events[6].message_id == 46);  // a reply into another topic of the same chat
  CHECK(u.events[6].reply_to == 41);
}

TEST_CASE("service messages and chat migrations") {
  const Updates u = parse_ok(read_fixture("service_messages.json"));
  check_accounting(u);
  CHECK(u.rejected.empty());
  REQUIRE(u.events.size() == 12);
  for (std::size_t i = 0; i + 1 < u.events.size(); ++i) {
    CAPTURE(u.events[i].message_id);
    CHECK(u.events[i].kind == EventKind::service);
  }
  CHECK(u.events[0].conversation == -987654321);
  CHECK(u.events[1].conversation == -1001987654322);
  CHECK(u.events[10].conversation == -1001876543299);  // channel_chat_created
  CHECK(u.events[10].author == -1001876543299);
  // The pinned message inside pinned_message is not an event of its own.
  CHECK(u.events[2].message_id == 6);
  CHECK(u.events[2].author == 811223344);
  const Event& after = u.events[11];
  CHECK(after.kind == EventKind::message);
  CHECK(after.reply_to == 5);
  REQUIRE(u.migrations.size() == 2);
  CHECK(u.migrations[0].from_chat == -987654321);
  CHECK(u.migrations[0].to_chat == -1001987654322);
  CHECK(u.migrations[1].from_chat == -987654321);
  CHECK(u.migrations[1].to_chat == -1001987654322);
  CHECK(u.max_update_id == 512000112);
}

TEST_CASE("every service field makes a service message") {
  const std::pair<const char*, const char*> fields[] = {
      {"new_chat_members", R"([{"id":5,"is_bot":false,"first_name":"n"}])"},
      {"new_chat_member", R"({"id":5,"is_bot":false,"first_name":"n"})"},
      {"new_chat_participant", R"({"id":5,"is_bot":false,"first_name":"n"})"},
      {"left_chat_member", R"({"id":5,"is_bot":false,"first_name":"n"})"},
      {"left_chat_participant", R"({"id":5,"is_bot":false,"first_name":"n"})"},
      {"new_chat_title", R"("t")"},
      {"new_chat_photo", R"([{"file_id":"f","file_unique_id":"u","width":1,"height":1}])"},
      {"delete_chat_photo", "true"},
      {"group_chat_created", "true"},
      {"supergroup_chat_created", "true"},
      {"channel_chat_created", "true"},
      {"message_auto_delete_timer_changed", R"({"message_auto_delete_time":86400})"},
      {"pinned_message", R"({"message_id":3,"chat":{"id":-5,"type":"group"},"date":0})"},
      {"forum_topic_created", R"({"name":"n","icon_color":7322096})"},
      {"forum_topic_edited", R"({"name":"m"})"},
      {"forum_topic_closed", "{}"},
      {"forum_topic_reopened", "{}"},
      {"general_forum_topic_hidden", "{}"},
      {"general_forum_topic_unhidden", "{}"},
      {"video_chat_scheduled", R"({"start_date":1782968400})"},
      {"video_chat_started", "{}"},
      {"video_chat_ended", R"({"duration":5})"},
      {"video_chat_participants_invited", R"({"users":[]})"},
      {"voice_chat_started", "{}"},
      {"voice_chat_ended", R"({"duration":5})"},
      {"voice_chat_scheduled", R"({"start_date":1782968400})"},
      {"voice_chat_participants_invited", R"({"users":[]})"},
      {"proximity_alert_triggered", "{}"},
      {"boost_added", R"({"boost_count":1})"},
      {"chat_background_set", "{}"},
      {"write_access_allowed", "{}"},
      {"users_shared", "{}"},
      {"user_shared", "{}"},
      {"chat_shared", "{}"},
      {"connected_website", R"("example.org")"},
      {"successful_payment", "{}"},
      {"refunded_payment", "{}"},
      {"giveaway_created", "{}"},
      {"giveaway_completed", "{}"},
      {"gift", "{}"},
      {"unique_gift", "{}"},
      {"paid_message_price_changed", "{}"},
      {"direct_message_price_changed", "{}"},
      {"checklist_tasks_done", "{}"},
      {"checklist_tasks_added", "{}"},
      {"suggested_post_approved", "{}"},
      {"suggested_post_approval_failed", "{}"},
      {"suggested_post_declined", "{}"},
      {"suggested_post_paid", "{}"},
      {"suggested_post_refunded", "{}"},
      {"web_app_data", R"({"data":"d","button_text":"b"})"},
      {"passport_data", "{}"},
      {"migrate_to_chat_id", "-1001987654322"},
      {"migrate_from_chat_id", "-987654321"},
  };
  for (const auto& field : fields) {
    const std::string name = field.first;
    CAPTURE(name);
    const Verdict v = message_verdict(message_fields("\"" + name + "\":" + field.second));
    REQUIRE(v.outcome.empty());
    CHECK(v.event.kind == EventKind::service);
    CHECK(v.event.author == kAigerim);
  }
  // Content that merely looks like a service field by its prefix stays content.
  for (const char* name : {"chat_x", "gifts", "giveaway", "giveaway_winners", "pinned", "new_chat",
                           "date_x", "from_x", "text", "photo", "poll"}) {
    CAPTURE(name);
    const Verdict v = message_verdict(message_fields("\"" + std::string(name) + "\":{}"));
    REQUIRE(v.outcome.empty());
    CHECK(v.event.kind == EventKind::message);
  }
}

TEST_CASE("migrations: migrate_to in the old chat, migrate_from in the new one") {
  Updates u = parse_ok(response_of(
      {update_of(1, "message",
                 R"("message_id":310,"from":{"id":5,"is_bot":false},"chat":{"id":-987654321,)"
                 R"("type":"group"},"date":1783152000,"migrate_to_chat_id":-1001987654322)"),
       update_of(2, "message",
                 R"("message_id":1,"from":{"id":5,"is_bot":false},"chat":{"id":-1001987654322,)"
                 R"("type":"supergroup"},"date":1783152000,"migrate_from_chat_id":-987654321)"),
       // An edit repeats content already reported.
       update_of(3, "edited_message",
                 R"("message_id":310,"from":{"id":5,"is_bot":false},"chat":{"id":-987654321},)"
                 R"("date":1783152000,"migrate_to_chat_id":-1001987654322)")}));
  REQUIRE(u.migrations.size() == 2);
  CHECK(u.migrations[0].from_chat == -987654321);
  CHECK(u.migrations[0].to_chat == -1001987654322);
  CHECK(u.migrations[1].from_chat == -987654321);
  CHECK(u.migrations[1].to_chat == -1001987654322);
  REQUIRE(u.events.size() == 3);
  CHECK(u.events[0].kind == EventKind::service);
  CHECK(u.events[1].kind == EventKind::service);

  for (const char* bad : {"0", "\"-100\"", "1.5", "null", "4503599627370496", "{}"}) {
    CAPTURE(bad);
    const Verdict v = message_verdict(message_fields("\"migrate_to_chat_id\":" + std::string(bad)));
    CHECK(v.outcome == "bad_migration");
  }
}

TEST_CASE("error responses fill Updates.error and nothing else") {
  SUBCASE("429 with retry_after") {
    const Updates u = parse_ok(read_fixture("error_429.json"));
    REQUIRE(u.error);
    CHECK(u.error->error_code == 429);
    CHECK(u.error->description == "Too Many Requests: retry after 14");
    CHECK(u.error->retry_after == 14);
    CHECK_FALSE(u.error->migrate_to_chat_id);
    CHECK(u.events.empty());
    CHECK_FALSE(u.max_update_id);
    CHECK(u.updates == 0);
  }
  SUBCASE("the group became a supergroup") {
    const Updates u = parse_ok(read_fixture("error_migrated.json"));
    REQUIRE(u.error);
    CHECK(u.error->error_code == 400);
    CHECK(u.error->migrate_to_chat_id == -1001987654322);
    CHECK_FALSE(u.error->retry_after);
  }
  SUBCASE("409 conflict and 401 carry no parameters") {
    const Updates conflict = parse_ok(read_fixture("error_conflict.json"));
    REQUIRE(conflict.error);
    CHECK(conflict.error->error_code == 409);
    CHECK(contains(conflict.error->description, "terminated by other getUpdates request"));
    CHECK_FALSE(conflict.error->retry_after);
    const Updates unauthorized = parse_ok(read_fixture("error_unauthorized.json"));
    REQUIRE(unauthorized.error);
    CHECK(unauthorized.error->error_code == 401);
  }
  SUBCASE("parameters decide, whatever the error_code says") {
    const Updates u = parse_ok(
        R"({"ok":false,"error_code":400,"description":"x","parameters":{"retry_after":3}})");
    REQUIRE(u.error);
    CHECK(u.error->retry_after == 3);
  }
  SUBCASE("parameters before ok, unknown parameters, wrong-typed details dropped") {
    const Updates u =
        parse_ok(R"({"parameters":{"retry_after":"14","migrate_to_chat_id":0,"flood":1},)"
                 R"("description":5,"error_code":"429","ok":false})");
    REQUIRE(u.error);
    CHECK(u.error->error_code == 0);
    CHECK(u.error->description.empty());
    CHECK_FALSE(u.error->retry_after);
    CHECK_FALSE(u.error->migrate_to_chat_id);
    const Updates negative =
        parse_ok(R"({"ok":false,"parameters":{"retry_after":-1,"migrate_to_chat_id":1.5}})");
    REQUIRE(negative.error);
    CHECK_FALSE(negative.error->retry_after);
    CHECK_FALSE(negative.error->migrate_to_chat_id);
    CHECK(parse_ok(R"({"ok":false,"parameters":[1]})").error);
  }
  SUBCASE("a result in an error response is disregarded") {
    for (const char* body :
         {R"({"ok":false,"result":[{"update_id":5,"message":{}}],"error_code":500})",
          R"({"result":[{"update_id":5,"callback_query":{}}],"ok":false,"error_code":500})",
          R"({"ok":false,"result":7})"}) {
      CAPTURE(body);
      const Updates u = parse_ok(body);
      REQUIRE(u.error);
      CHECK(u.updates == 0);
      CHECK(u.ignored == 0);
      CHECK(u.rejected.empty());
      CHECK_FALSE(u.max_update_id);
    }
  }
  SUBCASE("a long description is cut at a character boundary") {
    std::string text;
    while (text.size() < 3000) text += "\u0416";  // two bytes each, so 1024 splits none
    text += "x";
    std::string odd = "x" + text;  // shifted by one byte, so 1024 would split one
    for (const std::string& description : {text, odd}) {
      const Updates u =
          parse_ok(R"({"ok":false,"error_code":400,"description":")" + description + "\"}");
      REQUIRE(u.error);
      CHECK(u.error->description.size() <= 1024);
      CHECK(u.error->description.size() >= 1022);
      CHECK(description.compare(0, u.error->description.size(), u.error->description) == 0);
      CHECK(simdjson::validate_utf8(u.error->description.data(), u.error->description.size()));
    }
    const Updates escaped =
        parse_ok(R"({"ok":false,"description":"Bad Request: \"chat\" \u043d\u0435\u0442"})");
    CHECK(escaped.error->description == "Bad Request: \"chat\" \u043d\u0435\u0442");
  }
}

TEST_CASE("bodies that are not Bot API responses are errors that never quote the body") {
  const std::string secret = "123456:AAE-token-like-secret";
  const std::pair<std::string, std::string> cases[] = {
      {"", "not valid JSON"},
      {"   ", "not valid JSON"},
      {"<html><body>502 Bad Gateway " + secret + "</body></html>", "not valid JSON"},
      {R"({"ok":true,"result":[)" + secret, "not valid JSON"},
      {"[]", "the top level is not an object"},
      {"\"" + secret + "\"", "the top level is not an object"},
      {"null", "the top level is not an object"},
      {"42", "the top level is not an object"},
      {R"({"result":[]})", "no boolean 'ok'"},
      {R"({"ok":"true","result":[]})", "'ok' is not a single boolean"},
      {R"({"ok":1,"result":[]})", "'ok' is not a single boolean"},
      {R"({"ok":true,"ok":true,"result":[]})", "'ok' is not a single boolean"},
      {R"({"ok":true})", "'ok' is true but there is no 'result'"},
      {R"({"ok":true,"result":{"update_id":1}})", "'result' is not an array"},
      {R"({"ok":true,"result":null})", "'result' is not an array"},
      {R"({"ok":true,"result":[],"result":[]})", "'result' appears twice"},
      {R"({"ok":true,"result":[]} {"ok":true,"result":[]})", "not valid JSON"},
      {R"({"ok":true,"result":[]}])", "not valid JSON"},
      {R"({"ok":true,"result":[]}x)", "not valid JSON"},
      {"{\"ok\":true,\"result\":[],\"description\":\"\xff" + secret + "\"}", "not valid JSON"},
  };
  for (const auto& one : cases) {
    const std::string& body = one.first;
    CAPTURE(body);
    const std::string message = error_of(body);
    CHECK(contains(message, "getUpdates response ("));
    CHECK(contains(message, one.second));
    CHECK_FALSE(contains(message, secret));
  }
  // Whitespace around the document is fine.
  CHECK(parse_ok(" \n\t{\"ok\":true,\"result\":[]}\r\n ").updates == 0);
  CHECK_FALSE(parse_ok(read_fixture("empty.json")).max_update_id);
}

TEST_CASE("each rejection reason rejects only its update, which is still confirmed") {
  struct Case {
    const char* reason;
    std::string update;
    bool confirmed;  // its update_id was readable
  };
  const std::string ok_message = R"("message":{)" + message_fields() + "}";
  const std::vector<Case> cases = {
      {"not_an_object", "[1]", false},
      {"not_an_object", "\"update\"", false},
      {"missing_update_id", "{" + ok_message + "}", false},
      {"bad_update_id", R"({"update_id":"900",)" + ok_message + "}", false},
      {"bad_update_id", R"({"update_id":-1,)" + ok_message + "}", false},
      {"bad_update_id", R"({"update_id":900.0,)" + ok_message + "}", false},
      {"bad_update_id", R"({"update_id":9e2,)" + ok_message + "}", false},
      {"bad_update_id", R"({"update_id":4503599627370496,)" + ok_message + "}", false},
      {"bad_update_id", R"({"update_id":null,)" + ok_message + "}", false},
      {"bad_update_id", R"({"update_id":900,"update_id":901,)" + ok_message + "}", false},
      {"ambiguous_update",
       R"({"update_id":900,)" + ok_message + R"(,"edited_message":{)" + message_fields() + "}}",
       true},
      {"payload_not_an_object", R"({"update_id":900,"message":null})", true},
      {"payload_not_an_object", R"({"update_id":900,"channel_post":[]})", true},
      {"missing_chat", update_of(900, "message", fields_without({"chat"})), true},
      {"bad_chat_id", update_of(900, "message", fields_without({"chat"}, R"("chat":5)")), true},
      {"bad_chat_id", update_of(900, "message", fields_without({"chat"}, R"("chat":{})")), true},
      {"bad_chat_id",
       update_of(900, "message", fields_without({"chat"}, R"("chat":{"id":"-100"})")), true},
      {"bad_chat_id", update_of(900, "message", fields_without({"chat"}, R"("chat":{"id":0})")),
       true},
      {"bad_chat_id",
       update_of(900, "message", fields_without({"chat"}, R"("chat":{"id":-4503599627370496})")),
       true},
      {"missing_message_id", update_of(900, "message", fields_without({"message_id"})), true},
      {"bad_message_id",
       update_of(900, "message", fields_without({"message_id"}, R"("message_id":0)")), true},
      {"bad_message_id",
       update_of(900, "message", fields_without({"message_id"}, R"("message_id":-3)")), true},
      {"bad_message_id",
       update_of(900, "message", fields_without({"message_id"}, R"("message_id":"3")")), true},
      {"bad_message_id",
       update_of(900, "message", fields_without({"message_id"}, R"("message_id":3.5)")), true},
      {"missing_date", update_of(900, "message", fields_without({"date"})), true},
      {"bad_date", update_of(900, "message", fields_without({"date"}, R"("date":"1782968700")")),
       true},
      {"bad_date", update_of(900, "message", fields_without({"date"}, R"("date":null)")), true},
      {"bad_edit_date", update_of(900, "edited_message", message_fields(R"("edit_date":true)")),
       true},
      {"time_out_of_range", update_of(900, "message", fields_without({"date"}, R"("date":0)")),
       true},
      {"time_out_of_range",
       update_of(900, "edited_message", message_fields(R"("edit_date":4102444800)")), true},
      {"missing_author", update_of(900, "message", fields_without({"from"})), true},
      {"bad_author", update_of(900, "message", fields_without({"from"}, R"("from":5)")), true},
      {"bad_author", update_of(900, "message", fields_without({"from"}, R"("from":{})")), true},
      {"bad_author",
       update_of(900, "message", fields_without({"from"}, R"("from":{"id":0,"is_bot":false})")),
       true},
      {"bad_author",
       update_of(900, "message", fields_without({"from"}, R"("from":{"id":-7,"is_bot":false})")),
       true},
      {"bad_author",
       update_of(900, "message", fields_without({"from"}, R"("from":{"id":7,"is_bot":"no"})")),
       true},
      {"bad_author", update_of(900, "message", message_fields(R"("sender_chat":{"id":0})")), true},
      {"bad_author", update_of(900, "message", message_fields(R"("sender_chat":null)")), true},
      {"bad_author", update_of(900, "message", message_fields(R"("is_automatic_forward":1)")),
       true},
      {"bad_reply_to", update_of(900, "message", message_fields(R"("reply_to_message":5)")), true},
      {"bad_reply_to", update_of(900, "message", message_fields(R"("reply_to_message":{})")), true},
      {"bad_reply_to",
       update_of(900, "message", message_fields(R"("reply_to_message":{"message_id":0})")), true},
      {"bad_reply_to",
       update_of(900, "message", message_fields(R"("reply_to_message":{"message_id":"1"})")), true},
      {"bad_migration", update_of(900, "message", message_fields(R"("migrate_to_chat_id":"x")")),
       true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.reason);
    CAPTURE(c.update);
    // Between two good updates, to show that the bad one spoils nothing around it.
    const Updates u = parse_ok(response_of({update_of(899, "message", message_fields()), c.update,
                                            update_of(898, "channel_post", message_fields())}));
    check_accounting(u);
    REQUIRE(u.rejected.size() == 1);
    CHECK(u.rejected.begin()->first == c.reason);
    CHECK(u.rejected.begin()->second == 1);
    CHECK(u.events.size() == 2);
    CHECK(u.max_update_id == (c.confirmed ? 900 : 899));
  }
  // The time window's edges.
  CHECK(message_verdict(fields_without({"date"}, R"("date":1375315199)")).outcome ==
        "time_out_of_range");
  CHECK(message_verdict(fields_without({"date"}, R"("date":1375315200)")).outcome.empty());
  CHECK(message_verdict(fields_without({"date"}, R"("date":4102444799)")).outcome.empty());
  CHECK(message_verdict(fields_without({"date"}, R"("date":4102444800)")).outcome ==
        "time_out_of_range");
}

TEST_CASE("a poison update alone in a response is still confirmed") {
  const Updates u = parse_ok(R"({"ok":true,"result":[{"update_id":846209999,"message":7}]})");
  CHECK(u.events.empty());
  CHECK(u.rejected.at("payload_not_an_object") == 1);
  CHECK(u.max_update_id == 846209999);
}

TEST_CASE("field order and layout do not matter") {
  const std::string scrambled = R"({
      "message" : {
        "text" : "q" ,
        "reply_to_message" : { "text" : "p" , "chat" : {"id" : -1001987654321} ,
                               "message_id" : 1201 } ,
        "date" : 1782968700 ,
        "chat" : { "type" : "supergroup" , "title" : "G" , "id" : -1001987654321 } ,
        "from" : { "first_name" : "A" , "is_bot" : false , "id" : 412345678 } ,
        "message_id" : 1202
      } ,
      "update_id" : 846201003
    })";
  const Updates u = parse_ok("{ \"result\" : [ " + scrambled + " ] , \"ok\" : true }");
  REQUIRE(u.events.size() == 1);
  const Event& e = u.events[0];
  CHECK(e.conversation == kGroup);
  CHECK(e.message_id == 1202);
  CHECK(e.reply_to == 1201);
  CHECK(e.author == kAigerim);
  CHECK(e.time == 1782968700);
  CHECK(u.max_update_id == 846201003);
  // An update_id after a malformed payload still confirms the update.
  const Updates late = parse_ok(R"({"ok":true,"result":[{"message":{"chat":5},"update_id":77}]})");
  CHECK(late.rejected.at("bad_chat_id") == 1);
  CHECK(late.max_update_id == 77);
}

TEST_CASE("keys are matched as Telegram writes them: an escaped key is an unknown key") {
  // Telegram never escapes ASCII in keys; we do not unescape them, so "\u006d" is not "m".
  const Verdict v = message_verdict(fields_without({"message_id"}, R"("\u006dessage_id":5)"));
  CHECK(v.outcome == "missing_message_id");
  // Escapes inside values are fine: values we compare are numbers and booleans.
  CHECK(message_verdict(message_fields(R"("text":"\"\\\u0416\ud83d\ude21")")).outcome.empty());
}

TEST_CASE("max_update_id is the highest, whatever the order") {
  const Updates u = parse_ok(response_of(
      {update_of(30, "message", message_fields()), update_of(10, "message", message_fields()),
       R"({"update_id":50,"poll":{}})", R"({"update_id":20,"message":5})"}));
  CHECK(u.max_update_id == 50);
  CHECK(u.events.size() == 2);
  CHECK(u.ignored == 1);
  CHECK(u.updates == 4);
  const Updates zero = parse_ok(response_of({R"({"update_id":0,"poll":{}})"}));
  CHECK(zero.max_update_id == 0);
  const Updates top = parse_ok(response_of({R"({"update_id":4503599627370495,"poll":{}})"}));
  CHECK(top.max_update_id == kMaxId);
}

TEST_CASE("webhook pushes: one Update object") {
  UpdateParser parser;
  auto pushed = parser.parse_update(read_fixture("webhook_channel_post.json"));
  REQUIRE_MESSAGE(pushed.has_value(), pushed.error().message);
  REQUIRE(pushed->events.size() == 1);
  CHECK(pushed->events[0].conversation == kChannel);
  CHECK(pushed->events[0].message_id == 58);
  CHECK(pushed->events[0].author == kChannel);
  CHECK(pushed->events[0].author_hint == AuthorHint::chat);
  CHECK(pushed->max_update_id == 512000777);
  CHECK(pushed->updates == 1);

  auto rejected = parser.parse_update(R"({"update_id":9,"message":{"chat":{"id":-5}}})");
  REQUIRE(rejected.has_value());
  CHECK(rejected->rejected.at("missing_message_id") == 1);
  CHECK(rejected->max_update_id == 9);

  auto ignored = parser.parse_update(R"({"update_id":10,"callback_query":{"id":"1"}})");
  REQUIRE(ignored.has_value());
  CHECK(ignored->ignored == 1);

  for (const char* body : {"", "[]", R"({"ok":true,"result":[]} 1)", "{\"update_id\":1",
                           R"([{"update_id":1}])", "7"}) {
    CAPTURE(body);
    auto failed = parser.parse_update(body);
    REQUIRE_FALSE(failed.has_value());
    CHECK(contains(failed.error().message, "webhook update ("));
  }
  // A getUpdates envelope pushed by mistake is an object without update_id.
  auto envelope = parser.parse_update(read_fixture("empty.json"));
  REQUIRE(envelope.has_value());
  CHECK(envelope->rejected.at("missing_update_id") == 1);
}

TEST_CASE("one parser serves many bodies, large and small, in any order") {
  UpdateParser parser;
  std::vector<std::string> updates;
  const std::string long_text(4000, 'x');
  for (int i = 0; i < 3000; ++i) {
    updates.push_back(update_of(i, "message", message_fields("\"caption\":\"" + long_text + "\"")));
  }
  const std::string big = response_of(updates);
  REQUIRE(big.size() > (std::size_t{8} << 20));  // beyond what the parser keeps
  const auto pages = history_pages();
  for (int round = 0; round < 3; ++round) {
    CHECK(parse_ok(parser, big).events.size() == 3000);
    CHECK(parse_ok(parser, pages[0]).max_update_id == 846201006);
    CHECK_FALSE(parser.parse_response(pages[1].substr(0, 100)).has_value());
    CHECK(parse_ok(parser, pages[1]).max_update_id == 846201012);
    auto pushed = parser.parse_update(read_fixture("webhook_channel_post.json"));
    CHECK(pushed.has_value());
  }
}

TEST_CASE("parse_response_in_place gives what parse_response gives, with or without room") {
  UpdateParser parser;
  for (const std::string& page : history_pages()) {
    std::string roomy = page;
    roomy.reserve(page.size() + 64);
    std::string tight = page;
    tight.shrink_to_fit();
    for (const std::string* body : {&roomy, &tight}) {
      const Updates copied = parse_ok(parser, *body);
      auto in_place = parser.parse_response_in_place(*body);
      REQUIRE(in_place.has_value());
      CHECK(in_place->events.size() == copied.events.size());
      CHECK(in_place->max_update_id == copied.max_update_id);
      CHECK(*body == page);  // read, never written
    }
  }
  // The spare capacity may hold anything; a prefix of a longer string still ends there.
  std::string body = read_fixture("error_429.json");
  const std::size_t size = body.size();
  body += std::string(200, '}');
  body.resize(size);
  auto result = parser.parse_response_in_place(body);
  REQUIRE(result.has_value());
  CHECK(result->error->retry_after == 14);
  std::string truncated = history_pages()[0];
  truncated.resize(truncated.size() / 2);
  CHECK_FALSE(parser.parse_response_in_place(truncated).has_value());
}

// ---- The same history as Bot API updates and as a Desktop export ----

struct ExportEvents : telegram_export::Sink {
  std::vector<Event> events;
  std::vector<std::string> rejected;
  bool on_chat(std::int64_t, std::string_view, std::string_view) override { return true; }
  void on_event(const Event& event) override { events.push_back(event); }
  void on_rejected(std::string_view reason) override { rejected.emplace_back(reason); }
};

std::vector<Event> bot_api_history(std::vector<std::string> pages = history_pages()) {
  UpdateParser parser;
  std::vector<Event> events;
  std::int64_t last_confirmed = 0;
  for (const std::string& page : pages) {
    const Updates u = parse_ok(parser, page);
    check_accounting(u);
    CHECK(u.rejected.empty());
    REQUIRE(u.max_update_id);
    CHECK(*u.max_update_id > last_confirmed);
    last_confirmed = *u.max_update_id;
    events.insert(events.end(), u.events.begin(), u.events.end());
  }
  return events;
}

std::vector<Event> export_history() {
  ExportEvents sink;
  auto result = telegram_export::parse_file(kFixtures + "history_export.json", {}, sink);
  REQUIRE_MESSAGE(result.has_value(), result.error().message);
  CHECK(sink.rejected.empty());
  return sink.events;
}

// Agency X owns the discussion group. What the registry must say for the two forms to
// agree (each point is shown by the next test case):
// - its channel is an official account. Assumed: the Desktop export writes the channel
//   post mirrored into the group as from_id "channel<bare id>" (with forwarded_from), and
//   an admin writing as the channel the same way; the Bot API marks the mirror with
//   is_automatic_forward. Unlisted, the export's mirror would be a citizen and every
//   comment on the post a reply between citizens.
// - the helper bot is under ignore_accounts: an export does not say who is a bot, and the
//   Bot API never delivers another bot's messages (Bots FAQ), so only the registry can
//   tell the export that "user5012345678" is not a citizen.
// Also assumed: an anonymous admin appears in the export as from_id "channel<group's bare
// id>", which the export parser maps to the group's Bot API id, as sender_chat gives it.
std::shared_ptr<pipeline::Registry> history_registry(bool list_channel = true,
                                                     bool ignore_helper_bot = true) {
  auto r = std::make_shared<pipeline::Registry>();
  pipeline::Agency x;
  x.id = "akimat";
  x.name = "City akimat";
  x.conversations = {{pipeline::Source::telegram, kGroup}};
  if (list_channel) x.accounts.push_back({pipeline::Source::telegram, kChannel, "channel", "", ""});
  x.accounts.push_back({pipeline::Source::telegram, kDana, "press_office", "Dana", "central"});
  r->agencies = {x};
  if (ignore_helper_bot) r->ignore_accounts = {{pipeline::Source::telegram, kHelperBot}};
  r->index();
  return r;
}

struct Paired {
  std::vector<Appeal> appeals;  // closed, in closing order, then the open ones by message
  pipeline::PairingCounters counters;
};

Paired pair_history(const std::vector<Event>& events,
                    std::shared_ptr<const pipeline::Registry> registry) {
  replywatch::testing::Recorder recorder;
  pipeline::Pairing pairing(std::move(registry), recorder);
  for (const Event& e : events) pairing.on_event(e);
  Paired out;
  out.appeals = recorder.closed;
  std::vector<Appeal> open;
  pairing.for_each_open([&](const Appeal& a) { open.push_back(a); });
  std::sort(open.begin(), open.end(),
            [](const Appeal& a, const Appeal& b) { return a.opened_message < b.opened_message; });
  out.appeals.insert(out.appeals.end(), open.begin(), open.end());
  out.counters = pairing.counters();
  return out;
}

std::string describe(const Appeal& a) {
  std::ostringstream s;
  s << to_string(a.status) << ' ' << to_string(a.kind) << " conversation " << a.conversation
    << " thread " << a.thread << " citizen " << a.citizen << " opened " << a.opened_message << '@'
    << a.opened_at << " answer " << a.answer_message << '@' << a.answered_at << " by "
    << a.responder << " account " << a.responder_account << " reply " << a.reply_seconds
    << " business " << a.business_reply_seconds << " agency " << a.agency;
  return s.str();
}

std::vector<std::string> describe(const std::vector<Appeal>& appeals) {
  std::vector<std::string> out;
  for (const Appeal& a : appeals) out.push_back(describe(a));
  return out;
}

Appeal expected(AppealStatus status, AppealKind kind, std::int64_t thread, std::int64_t citizen,
                std::int64_t opened, std::int64_t opened_at, std::int64_t answer = 0,
                std::int64_t answered_at = 0, std::int64_t responder = 0,
                std::int32_t account = -1) {
  Appeal a;
  a.conversation = kGroup;
  a.agency = 0;
  a.status = status;
  a.kind = kind;
  a.thread = thread;
  a.citizen = citizen;
  a.opened_message = opened;
  a.opened_at = opened_at;
  if (status == AppealStatus::answered) {
    a.answer_message = answer;
    a.answered_at = answered_at;
    a.responder = responder;
    a.responder_account = account;
    a.reply_seconds = answered_at - opened_at;
    a.business_reply_seconds = a.reply_seconds;
  }
  return a;
}

TEST_CASE("the same history as Bot API updates and as a Desktop export gives the same appeals") {
  const std::vector<Event> updates = bot_api_history();
  const std::vector<Event> exported = export_history();
  const auto registry = history_registry();
  const Paired from_updates = pair_history(updates, registry);
  const Paired from_export = pair_history(exported, registry);

  const std::vector<Appeal> want = {
      // Aigerim's comment on the post, answered by an anonymous admin (the group itself).
      expected(AppealStatus::answered, AppealKind::first, 1201, kAigerim, 1202, kT0 + 300, 1205,
               kT0 + 3900, kGroup),
      // Erlan's comment, answered by the named official (account 1: the channel is 0).
      expected(AppealStatus::answered, AppealKind::first, 1201, kErlan, 1203, kT0 + 420, 1209,
               kT0 + 7200, kDana, 1),
      // Saule's question under the helper bot's greeting, answered by an admin as the channel.
      expected(AppealStatus::answered, AppealKind::first, 1207, kSaule, 1208, kT0 + 5400, 1210,
               kT0 + 9000, kChannel, 0),
      // Erlan's reply to a message neither form holds: that message's id is the thread.
      expected(AppealStatus::answered, AppealKind::first, 1150, kErlan, 1212, kT0 + 10800, 1213,
               kT0 + 90000, kDana, 1),
      // Aigerim's follow-up on the answer she got, and Marat's late comment: still open.
      expected(AppealStatus::open, AppealKind::followup, 1201, kAigerim, 1211, kT0 + 9600),
      expected(AppealStatus::open, AppealKind::first, 1201, kMarat, 1214, kT0 + 93600),
  };
  CHECK(describe(from_updates.appeals) == describe(want));
  CHECK(describe(from_export.appeals) == describe(want));
  CHECK(describe(from_updates.appeals) == describe(from_export.appeals));

  // Marat's reply to Aigerim is the reply between citizens in both.
  CHECK(from_updates.counters.citizen_to_citizen == 1);
  CHECK(from_export.counters.citizen_to_citizen == 1);
  // The Bot API adds the edit event (the export folds it into the message) and the channel's
  // own post, in a conversation no agency owns here.
  CHECK(from_updates.counters.edits == 1);
  CHECK(from_export.counters.edits == 0);
  CHECK(from_updates.counters.unowned == 1);
  CHECK(from_export.counters.unowned == 0);
}

TEST_CASE("the history's messages map to the same events in both forms") {
  // Per message of the group: kind, reply, author and time agree. The hints differ where
  // the export cannot know (the mirror is "chat" there), and the helper bot's greeting is
  // only in the export.
  struct Row {
    std::int64_t id, reply_to, author, time;
    EventKind kind;
    bool operator==(const Row&) const = default;
  };
  auto rows = [](const std::vector<Event>& events) {
    std::vector<Row> out;
    for (const Event& e : events) {
      if (e.conversation != kGroup || e.kind == EventKind::edit) continue;
      out.push_back({e.message_id, e.reply_to, e.author, e.time, e.kind});
    }
    return out;
  };
  const std::vector<Event> updates = bot_api_history();
  std::vector<Row> from_updates = rows(updates);
  std::vector<Row> from_export = rows(export_history());
  REQUIRE(from_export.size() == 14);
  const auto greeting = std::find_if(from_export.begin(), from_export.end(),
                                     [](const Row& r) { return r.id == 1207; });
  REQUIRE(greeting != from_export.end());
  CHECK(greeting->author == kHelperBot);
  from_export.erase(greeting);
  CHECK(from_updates == from_export);

  // The hints the Bot API gives for the special authors.
  auto event_of = [&](std::int64_t id) {
    return *std::find_if(updates.begin(), updates.end(), [&](const Event& e) {
      return e.conversation == kGroup && e.message_id == id && e.kind != EventKind::edit;
    });
  };
  CHECK(event_of(1201).author_hint == AuthorHint::automatic_forward);
  CHECK(event_of(1205).author_hint == AuthorHint::chat);
  CHECK(event_of(1210).author_hint == AuthorHint::chat);
  CHECK(event_of(1209).author_hint == AuthorHint::user);
  CHECK(event_of(1206).kind == EventKind::service);
  const auto edit = std::find_if(updates.begin(), updates.end(),
                                 [](const Event& e) { return e.kind == EventKind::edit; });
  REQUIRE(edit != updates.end());
  CHECK(edit->message_id == 1209);
  CHECK(edit->time == kT0 + 7500);
}

TEST_CASE("what the registry must list for the two forms to agree") {
  const std::vector<Event> updates = bot_api_history();
  const std::vector<Event> exported = export_history();
  SUBCASE("without the channel, the export reads the mirrored post as a citizen's") {
    const auto registry = history_registry(false, true);
    const auto a = describe(pair_history(updates, registry).appeals);
    const auto b = describe(pair_history(exported, registry).appeals);
    CHECK(a != b);
    CHECK(std::any_of(b.begin(), b.end(), [](const std::string& s) {
      return contains(s, "citizen " + std::to_string(kChannel) + " opened 1201@");
    }));
  }
  SUBCASE("without the bot ignored, the export reads the greeting as a citizen's") {
    const auto registry = history_registry(true, false);
    const auto a = describe(pair_history(updates, registry).appeals);
    const auto b = describe(pair_history(exported, registry).appeals);
    CHECK(a == describe(pair_history(updates, history_registry()).appeals));
    CHECK(a != b);
    CHECK(std::any_of(b.begin(), b.end(), [](const std::string& s) {
      return contains(s, "citizen " + std::to_string(kHelperBot));
    }));
  }
}

TEST_CASE("the history parses the same pretty-printed, minified and with raw UTF-8") {
  const std::vector<Event> pretty = bot_api_history();
  std::vector<std::string> minified;
  simdjson::dom::parser dom;
  for (const std::string& page : history_pages()) {
    simdjson::dom::element element;
    REQUIRE(dom.parse(page).get(element) == simdjson::SUCCESS);
    minified.push_back(simdjson::minify(element));  // writes UTF-8 instead of \u escapes
  }
  REQUIRE(minified[0].find("\\u04") == std::string::npos);
  const std::vector<Event> compact = bot_api_history(minified);
  REQUIRE(compact.size() == pretty.size());
  for (std::size_t i = 0; i < pretty.size(); ++i) {
    CHECK(compact[i].message_id == pretty[i].message_id);
    CHECK(compact[i].author == pretty[i].author);
    CHECK(compact[i].reply_to == pretty[i].reply_to);
    CHECK(compact[i].time == pretty[i].time);
    CHECK(compact[i].kind == pretty[i].kind);
    CHECK(compact[i].author_hint == pretty[i].author_hint);
  }
}

// ---- Hostile input ----

std::vector<std::string> hostile_seeds() {
  std::vector<std::string> seeds = history_pages();
  for (const char* name : {"service_messages.json", "forum_topic.json", "error_429.json"}) {
    seeds.push_back(read_fixture(name));
  }
  return seeds;
}

TEST_CASE("every truncation of a response fails cleanly") {
  UpdateParser parser;
  for (std::string full : hostile_seeds()) {
    while (!full.empty() && std::isspace(static_cast<unsigned char>(full.back()))) full.pop_back();
    for (std::size_t n = 0; n < full.size(); ++n) {
      auto result = parser.parse_response(std::string_view(full).substr(0, n));
      if (result.has_value()) {
        CAPTURE(n);
        FAIL_CHECK("a truncated body parsed");
      }
    }
    CHECK(parser.parse_response(full).has_value());
  }
}

TEST_CASE("random mutations never crash and keep the accounting") {
  std::mt19937 random(20260702);
  const std::string alphabet = "{}[]\":,\\ \n0123456789-.eEtruefalsnl_idatemsgfrom";
  UpdateParser parser;
  int parsed = 0;
  for (const std::string& original : hostile_seeds()) {
    for (int round = 0; round < 2500; ++round) {
      std::string bytes = original;
      for (int edits = 1 + static_cast<int>(random() % 4); edits > 0; --edits) {
        const std::size_t at = random() % bytes.size();
        switch (random() % 5) {
          case 0:
            bytes[at] = alphabet[random() % alphabet.size()];
            break;
          case 1:
            bytes.erase(at, 1 + random() % 8);
            break;
          case 2:
            bytes.insert(at, 1, static_cast<char>(random() % 256));
            break;
          case 3:
            bytes.insert(at, bytes.substr(random() % bytes.size(), random() % 64));
            break;
          default:  // a digit run: ids and dates grow or shrink
            if (std::isdigit(static_cast<unsigned char>(bytes[at]))) {
              bytes.insert(at, std::string(random() % 30, '9'));
            }
            break;
        }
        if (bytes.empty()) bytes = "{";
      }
      auto result = round % 2 ? parser.parse_response(bytes) : parser.parse_update(bytes);
      if (!result.has_value()) continue;
      ++parsed;
      const Updates& u = *result;
      check_accounting(u);
      if (u.max_update_id) CHECK((*u.max_update_id >= 0 && *u.max_update_id <= kMaxId));
      for (const Event& e : u.events) {
        CHECK(e.message_id > 0);
        CHECK(e.conversation != 0);
        CHECK(e.time >= 1375315200);
        CHECK(e.time < 4102444800);
        CHECK(e.reply_to >= 0);
      }
    }
  }
  CHECK(parsed > 0);
}

TEST_CASE("updates: deep nesting is skipped or reported, never recursed into") {
  const std::string open(100000, '['), close(100000, ']');
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(100000, '}');

  CHECK(contains(error_of(open + close), "not an object"));
  CHECK(contains(error_of(open), "getUpdates response"));
  CHECK(contains(error_of(R"({"ok":true,"result":)" + open), "not valid JSON"));
  // Deep values in fields we never read are skipped whole.
  for (const std::string& junk : {open + close, objects}) {
    CHECK(message_verdict(message_fields("\"junk\":" + junk)).outcome.empty());
    CHECK(message_verdict(
              message_fields("\"reply_to_message\":{\"message_id\":7,\"x\":" + junk + "}"))
              .event.reply_to == 7);
    const Updates u = parse_ok(R"({"junk":)" + junk + R"(,"ok":true,"result":[)" +
                               update_of(5, "message", message_fields()) + "]}");
    CHECK(u.events.size() == 1);
  }
  // Deep values where we expect an id are wrong-typed fields.
  CHECK(message_verdict(fields_without({"from"}, "\"from\":" + open + close)).outcome ==
        "bad_author");
  CHECK(message_verdict(fields_without({"chat"}, "\"chat\":{\"id\":" + objects + "}")).outcome ==
        "bad_chat_id");
  CHECK(verdict_of(R"({"update_id":)" + open + close + "}").outcome == "bad_update_id");
  // Unbalanced nesting inside an update is an error for the whole body.
  CHECK(contains(error_of(response_of({update_of(5, "message", message_fields("\"x\":" + open))})),
                 "not valid JSON"));
}

TEST_CASE("invalid UTF-8 anywhere fails the body; valid oddities do not") {
  for (const char* bad :
       {"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf"}) {
    CAPTURE(std::string(bad).size());
    const std::string body = response_of(
        {update_of(5, "message", message_fields("\"caption\":\"" + std::string(bad) + "\""))});
    CHECK(contains(error_of(body), "not valid JSON"));
  }
  // A lone surrogate escape in a field we skip is left alone.
  CHECK(message_verdict(message_fields(R"("caption":"\ud83d x")")).outcome.empty());
  // NUL and control bytes inside strings are invalid JSON.
  CHECK(
      contains(error_of(response_of({update_of(
                   5, "message", message_fields(std::string("\"caption\":\"a") + '\0' + "b\""))})),
               "not valid JSON"));
}

TEST_CASE("updates: huge numbers are wrong-typed fields, not crashes") {
  const std::string huge(5000, '9');
  CHECK(verdict_of(R"({"update_id":)" + huge + "}").outcome == "bad_update_id");
  CHECK(verdict_of(R"({"update_id":1e400})").outcome == "bad_update_id");
  CHECK(verdict_of(R"({"update_id":-0.0})").outcome == "bad_update_id");
  CHECK(message_verdict(fields_without({"message_id"}, "\"message_id\":" + huge)).outcome ==
        "bad_message_id");
  CHECK(message_verdict(fields_without({"date"}, "\"date\":" + huge)).outcome == "bad_date");
  CHECK(message_verdict(fields_without({"date"}, R"("date":-9223372036854775808)")).outcome ==
        "time_out_of_range");
  CHECK(message_verdict(fields_without({"chat"}, "\"chat\":{\"id\":-" + huge + "}")).outcome ==
        "bad_chat_id");
  CHECK(message_verdict(fields_without({"from"}, "\"from\":{\"id\":" + huge + "}")).outcome ==
        "bad_author");
  CHECK(message_verdict(message_fields("\"reply_to_message\":{\"message_id\":" + huge + "}"))
            .outcome == "bad_reply_to");
  CHECK(message_verdict(message_fields("\"junk\":" + huge + ",\"more\":1e999999")).outcome.empty());
  CHECK(parse_ok(R"({"ok":false,"error_code":)" + huge + R"(,"parameters":{"retry_after":)" + huge +
                 "}}")
            .error->error_code == 0);
  // The largest id the Bot API allows, and one past it.
  CHECK(
      message_verdict(fields_without({"from"}, R"("from":{"id":4503599627370495})")).event.author ==
      kMaxId);
  CHECK(message_verdict(fields_without({"from"}, R"("from":{"id":4503599627370496})")).outcome ==
        "bad_author");
}

}  // namespace
}  // namespace replywatch::connectors::telegram
