// Tests of the VK parser on payloads in the shapes VK's API and Callback API return:
// posts, comments with nested replies, whole responses, pushes, errors, and hostile input.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "connectors/vk/vk_parser.hpp"

namespace replywatch::connectors::vk {
namespace {

using pipeline::AuthorHint;
using pipeline::Event;
using pipeline::EventKind;
using pipeline::Source;

constexpr std::int64_t kNow = 1780000000;

Parsed parse(const std::string& json) {
  Parser parser;
  Parsed out;
  auto ok = parser.parse(json, kNow, out);
  REQUIRE_MESSAGE(ok.has_value(), (ok ? "" : ok.error().message));
  return out;
}

// wall.getComments for post 100 of community 123456, with a reply thread (extended=0,
// thread_items_count=10): the shapes of VK's documentation, fields in VK's own order.
const std::string kComments = R"({"response":{"count":2,"items":[
 {"id":101,"from_id":500001,"date":1779990000,"text":"Когда починят дорогу?","post_id":100,
  "owner_id":-123456,"parents_stack":[],"thread":{"count":2,"items":[
   {"id":103,"from_id":-123456,"date":1779993600,"text":"Завтра.","post_id":100,
    "owner_id":-123456,"parents_stack":[101],"reply_to_user":500001,"reply_to_comment":101},
   {"id":104,"from_id":500002,"date":1779994000,"text":"+1","post_id":100,
    "owner_id":-123456,"parents_stack":[101]}],
  "can_post":true,"show_reply_button":true,"groups_can_post":true}},
 {"id":102,"from_id":500003,"date":1779991000,"text":"А свет?","post_id":100,
  "owner_id":-123456,"parents_stack":[],"thread":{"count":0,"items":[]}}],
 "current_level_count":2,"can_post":1,"show_reply_button":1,"groups_can_post":true}})";

const Event* find(const Parsed& p, std::int64_t id) {
  for (const auto& e : p.events)
    if (e.message_id == id) return &e;
  return nullptr;
}

TEST_CASE("wall.getComments: comments and their nested replies become events") {
  const Parsed p = parse(kComments);
  CHECK(p.rejected.empty());
  REQUIRE(p.events.size() == 4);
  const Event* top = find(p, 101);
  REQUIRE(top);
  CHECK(top->source == Source::vk);
  CHECK(top->conversation == -123456);
  CHECK(top->reply_to == 100);  // a top-level comment replies to its post
  CHECK(top->author == 500001);
  CHECK(top->author_hint == AuthorHint::user);
  CHECK(top->time == 1779990000);
  CHECK(top->kind == EventKind::message);
  const Event* answer = find(p, 103);
  REQUIRE(answer);
  CHECK(answer->reply_to == 101);  // reply_to_comment
  CHECK(answer->author == -123456);
  CHECK(answer->author_hint == AuthorHint::chat);  // the community itself
  const Event* in_thread = find(p, 104);
  REQUIRE(in_thread);
  CHECK(in_thread->reply_to == 101);  // no reply_to_comment: the nearest parent
  CHECK(find(p, 102)->reply_to == 100);
  CHECK(answer->addressee == 500001);  // reply_to_user
  CHECK(top->addressee == 0);
}

TEST_CASE("a top-level official comment names whom it answers by reply_to_user") {
  const Parsed p = parse(R"({"id":112,"from_id":-9,"date":1779990000,"post_id":5,)"
                         R"("owner_id":-9,"parents_stack":[],"reply_to_user":500007})");
  REQUIRE(p.events.size() == 1);
  CHECK(p.events[0].reply_to == 5);
  CHECK(p.events[0].addressee == 500007);
}

TEST_CASE("a reply nested without owner_id and post_id takes its parent's") {
  const Parsed p = parse(R"({"response":{"items":[{"id":7,"from_id":1,"date":1779990000,)"
                         R"("post_id":5,"owner_id":-9,"thread":{"items":[)"
                         R"({"id":8,"from_id":-9,"date":1779990100,"parents_stack":[7]}]}}]}})");
  REQUIRE(p.events.size() == 2);
  CHECK(find(p, 8)->conversation == -9);
  CHECK(find(p, 8)->reply_to == 7);
}

TEST_CASE("wall.get: posts root their threads; fields in any order") {
  const Parsed p = parse(
      R"({"response":{"count":2,"items":[)"
      R"({"inner_type":"wall_wallpost","comments":{"count":3},"date":1779980000,"from_id":-123456,)"
      R"("id":100,"owner_id":-123456,"post_type":"post","text":"Ремонт дорог"},)"
      R"({"id":99,"owner_id":-123456,"from_id":500009,"date":1779970000,"post_type":"post"}]}})");
  REQUIRE(p.events.size() == 2);
  CHECK(find(p, 100)->reply_to == 0);
  CHECK(find(p, 100)->author_hint == AuthorHint::chat);
  CHECK(find(p, 99)->author == 500009);  // a citizen's post on an open wall
  CHECK(find(p, 99)->reply_to == 0);
}

TEST_CASE("Callback API pushes: new, edit, delete, restore, confirmation") {
  Parser parser;
  Parsed p;
  auto push = [&](const std::string& json) {
    auto ok = parser.parse(json, kNow, p);
    REQUIRE(ok.has_value());
  };
  push(
      R"({"group_id":123456,"type":"wall_reply_new","event_id":"a1","v":"5.199",)"
      R"("object":{"id":105,"from_id":500004,"date":1779995000,"text":"?","post_owner_id":-123456,)"
      R"("post_id":100},"secret":"s3cret"})");
  push(R"({"type":"wall_reply_edit","object":{"id":105,"from_id":500004,"date":1779995000,)"
       R"("post_owner_id":-123456,"post_id":100},"group_id":123456,"event_id":"a2"})");
  push(R"({"type":"wall_reply_delete","object":{"owner_id":-123456,"id":105,"deleter_id":1,)"
       R"("post_id":100},"group_id":123456,"event_id":"a3"})");
  push(R"({"type":"confirmation","group_id":123456})");
  push(R"({"object":{"id":106,"from_id":500004,"date":1779996000,"post_id":100},)"
       R"("type":"wall_reply_new","group_id":123456,"event_id":"a4"})");
  REQUIRE(p.callbacks.size() == 5);
  CHECK(p.callbacks[0].type == "wall_reply_new");
  CHECK(p.callbacks[0].event_id == "a1");
  CHECK(p.callbacks[0].secret == "s3cret");
  CHECK(p.callbacks[0].group_id == 123456);
  CHECK(p.callbacks[3].type == "confirmation");
  REQUIRE(p.events.size() == 4);
  CHECK(p.events[0].kind == EventKind::message);
  CHECK(p.events[0].reply_to == 100);
  CHECK(p.events[1].kind == EventKind::edit);
  CHECK(p.events[1].time == kNow);  // VK sends no edit time
  CHECK(p.events[2].kind == EventKind::remove);
  CHECK(p.events[2].message_id == 105);
  CHECK(p.events[2].conversation == -123456);
  // No post_owner_id: the wall is the group the push came for.
  CHECK(p.events[3].conversation == -123456);
  CHECK(p.rejected.empty());
}

TEST_CASE("a deleted comment in a thread is a deletion") {
  const Parsed p = parse(R"({"response":{"items":[{"id":7,"deleted":true,"post_id":5,)"
                         R"("owner_id":-9,"thread":{"items":[{"id":8,"from_id":2,)"
                         R"("date":1779990100,"parents_stack":[7]}]}}]}})");
  REQUIRE(p.events.size() == 2);
  CHECK(find(p, 7)->kind == EventKind::remove);
  CHECK(find(p, 8)->reply_to == 7);  // a deleted message still threads its replies
}

TEST_CASE("bad objects are counted by reason and the rest is kept") {
  const Parsed p = parse(R"({"response":{"items":[)"
                         R"({"id":"x","from_id":1,"date":1779990000,"post_id":5,"owner_id":-9},)"
                         R"({"id":2,"from_id":1,"date":1779990000,"post_id":5},)"
                         R"({"id":3,"from_id":0,"date":1779990000,"post_id":5,"owner_id":-9},)"
                         R"({"id":4,"from_id":1,"post_id":5,"owner_id":-9},)"
                         R"({"id":5,"from_id":1,"date":1779990000000,"post_id":5,"owner_id":-9},)"
                         R"({"id":6,"from_id":1,"date":1779990000,"post_id":5,"owner_id":-9,)"
                         R"("reply_to_comment":"zz"},)"
                         R"(17,)"
                         R"({"id":7,"from_id":1,"date":1779990000,"post_id":5,"owner_id":-9}]}})");
  CHECK(p.rejected.at("bad_id") == 1);
  CHECK(p.rejected.at("missing_owner") == 1);
  CHECK(p.rejected.at("bad_from_id") == 1);
  CHECK(p.rejected.at("missing_time") == 1);
  CHECK(p.rejected.at("time_out_of_range") == 1);
  CHECK(p.rejected.at("bad_reply") == 1);
  CHECK(p.rejected.at("not_an_object") == 1);
  REQUIRE(p.events.size() == 1);
  CHECK(p.events[0].message_id == 7);
}

TEST_CASE("an API error is reported with its code") {
  const Parsed p = parse(R"({"error":{"error_code":6,"error_msg":"Too many requests per second",)"
                         R"("request_params":[{"key":"method","value":"wall.getComments"}]}})");
  REQUIRE(p.errors.size() == 1);
  CHECK(p.errors[0].code == 6);
  CHECK(p.errors[0].message == "Too many requests per second");
  CHECK(p.rejected.at("api_error") == 1);
}

TEST_CASE("parse_many: one document per line or pretty-printed; a broken one is named") {
  Parser parser;
  Parsed p;
  const std::string text = kComments + "\n" +
                           "{\n  \"id\": 200,\n  \"owner_id\": -123456,\n  \"from_id\": 5,\n"
                           "  \"date\": 1779999999,\n  \"post_id\": 100,\n  \"text\": \"}{\"\n}\n";
  REQUIRE(parser.parse_many(text, kNow, p).has_value());
  CHECK(p.events.size() == 5);
  Parsed q;
  auto bad = parser.parse_many(text + "{\"id\": 1,", kNow, q);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("byte " + std::to_string(text.size())) != std::string::npos);
}

TEST_CASE("hostile input: never a crash, never an event from a broken document") {
  Parser parser;
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> pick(0, kComments.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 3000; ++round) {
    std::string s = kComments;
    for (int k = 0; k < 1 + round % 4; ++k) s[pick(rng)] = static_cast<char>(byte(rng));
    if (round % 5 == 0) s.resize(pick(rng));
    Parsed p;
    auto ok = parser.parse(s, kNow, p);
    if (!ok) CHECK(p.events.empty());
    for (const auto& e : p.events) {
      CHECK(e.message_id > 0);
      CHECK(e.conversation != 0);
    }
  }
  // Deep nesting is refused, not recursed into without bound.
  std::string deep = R"({"id":1,"from_id":1,"date":1779990000,"post_id":5,"owner_id":-9)";
  for (int i = 0; i < 100; ++i) deep += R"(,"thread":{"items":[{"id":2,"from_id":1)";
  Parsed p;
  (void)parser.parse(deep, kNow, p);
}

}  // namespace
}  // namespace replywatch::connectors::vk

namespace replywatch::connectors::vk {

TEST_CASE("paging: what a page says about its items, threads and posts") {
  Parser parser;
  Parsed out;
  const std::string page = R"({"response":{"count":14,"current_level_count":2,"items":[
    {"id":11,"from_id":5,"date":1780000100,"post_id":10,"owner_id":-1,
     "thread":{"count":12,"items":[{"id":12,"from_id":6,"date":1780000200,"parents_stack":[11]}]}},
    {"id":20,"from_id":7,"date":1780000300,"post_id":10,"owner_id":-1,"thread":{"count":0,"items":[]}}]}})";
  REQUIRE(parser.parse(page, 1780000999, out).has_value());
  REQUIRE(out.pages.size() == 1);
  const Page& p = out.pages.front();
  CHECK(p.count == 14);
  CHECK(p.level_count == 2);
  CHECK(p.items == 2);
  CHECK(p.last_id == 20);
  REQUIRE(p.partial_threads.size() == 1);  // 12 replies, one on the page
  CHECK(p.partial_threads[0].comment == 11);
  CHECK(p.partial_threads[0].count == 12);
  CHECK(p.partial_threads[0].items == 1);
  CHECK(p.posts.empty());

  Parsed posts;
  REQUIRE(parser.parse(R"({"response":{"count":1,"items":[{"id":10,"owner_id":-1,"from_id":-1,
      "date":1780000000,"post_type":"post","comments":{"count":13,"can_post":1}}]}})",
                       1780000999, posts).has_value());
  REQUIRE(posts.pages.size() == 1);
  REQUIRE(posts.pages[0].posts.size() == 1);
  CHECK(posts.pages[0].posts[0].id == 10);
  CHECK(posts.pages[0].posts[0].comments == 13);
}

}  // namespace replywatch::connectors::vk
