// One test per pairing rule and edge case (DESIGN.md, issue #2 "Rules").
#include "tests/support/pairing_fixture.hpp"

#include <doctest/doctest.h>

using namespace replywatch::testing;
using replywatch::pipeline::CitizenReplies;
using replywatch::pipeline::Pairing;

namespace {

constexpr std::int64_t kCitizen = 1001;
constexpr std::int64_t kOther = 1002;
constexpr std::int64_t kT0 = 1'780'000'000;

struct Run {
  explicit Run(std::shared_ptr<replywatch::pipeline::Registry> r = make_registry())
      : registry(std::move(r)), pairing(registry, sink) {}
  void feed(std::initializer_list<Event> events) {
    for (const auto& e : events) pairing.on_event(e);
  }
  std::shared_ptr<replywatch::pipeline::Registry> registry;
  Recorder sink;
  Pairing pairing;
};

}  // namespace

TEST_CASE("a citizen message opens a first appeal that an official reply answers") {
  Run run;
  run.feed({message(10, kCitizen, kT0), message(11, kPress, kT0 + 300, 10)});
  REQUIRE(run.sink.opened.size() == 1);
  CHECK(run.sink.opened[0].kind == AppealKind::first);
  REQUIRE(run.sink.closed.size() == 1);
  const Appeal& a = run.sink.closed[0];
  CHECK(a.status == AppealStatus::answered);
  CHECK(a.citizen == kCitizen);
  CHECK(a.thread == 10);
  CHECK(a.opened_message == 10);
  CHECK(a.answer_message == 11);
  CHECK(a.responder == kPress);
  CHECK(a.responder_account == 1);
  CHECK(a.reply_seconds == 300);
  CHECK(run.pairing.open_appeals() == 0);
}

TEST_CASE("thread: a reply chain resolves to the first message without a parent") {
  Run run;
  // 1 is the channel's post; 2 replies to it, 3 replies to 2, the citizen replies to 3.
  run.feed({message(1, kAlphaChannel, kT0), message(2, kOther, kT0 + 1, 1),
            message(3, kPress, kT0 + 2, 2), message(4, kCitizen, kT0 + 3, 3)});
  const auto it = std::find_if(run.sink.opened.begin(), run.sink.opened.end(),
                               [](const Appeal& a) { return a.citizen == kCitizen; });
  REQUIRE(it != run.sink.opened.end());
  CHECK(it->thread == 1);
}

TEST_CASE("thread: a reply to a parent missing from the data threads on the parent's id") {
  Run run;
  run.feed({message(50, kCitizen, kT0, 42), message(51, kCitizen, kT0 + 5, 50)});
  REQUIRE(run.sink.opened.size() == 1);  // 51 joins the appeal opened by 50
  CHECK(run.sink.opened[0].thread == 42);
}

TEST_CASE("officials: an anonymous admin posting as the group answers") {
  Run run;
  run.feed({message(10, kCitizen, kT0), message(11, kAlphaChat, kT0 + 60, 10)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].status == AppealStatus::answered);
  CHECK(run.sink.closed[0].responder == kAlphaChat);
  CHECK(run.sink.closed[0].responder_account == -1);
}

TEST_CASE("officials: the agency's channel answers") {
  Run run;
  run.feed({message(10, kCitizen, kT0), message(11, kAlphaChannel, kT0 + 60, 10)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].responder == kAlphaChannel);
  CHECK(run.sink.closed[0].responder_account == 0);
}

TEST_CASE("officials of another agency are neither citizens nor answers") {
  Run run;
  run.feed({message(10, kBetaPress, kT0), message(11, kCitizen, kT0 + 1),
            message(12, kBetaPress, kT0 + 60, 11)});
  REQUIRE(run.sink.opened.size() == 1);  // only the citizen's message
  CHECK(run.sink.opened[0].citizen == kCitizen);
  CHECK(run.sink.closed.empty());  // beta's reply does not answer in alpha's chat
}

TEST_CASE("ignore_accounts and platform bots neither appeal nor answer") {
  Run run;
  run.feed({message(10, kIgnoredBot, kT0), message(11, kCitizen, kT0 + 1),
            message(12, kIgnoredBot, kT0 + 2, 11),
            message(13, 424242, kT0 + 3, 0, kAlphaChat, EventKind::message, AuthorHint::bot)});
  REQUIRE(run.sink.opened.size() == 1);
  CHECK(run.sink.opened[0].citizen == kCitizen);
  CHECK(run.sink.closed.empty());
}

TEST_CASE("service messages are skipped") {
  Run run;
  run.feed({message(10, kCitizen, kT0, 0, kAlphaChat, EventKind::service)});
  CHECK(run.sink.opened.empty());
}

TEST_CASE("an automatic forward of a channel post is never an appeal") {
  Run run;
  run.feed({message(10, -1005550000000, kT0, 0, kAlphaChat, EventKind::message,
                    AuthorHint::automatic_forward)});
  CHECK(run.sink.opened.empty());
}

TEST_CASE("later messages of the same citizen in the thread join the open appeal") {
  Run run;
  run.feed({message(10, kCitizen, kT0), message(11, kCitizen, kT0 + 100, 10),
            message(12, kCitizen, kT0 + 200), message(13, kPress, kT0 + 400, 11)});
  // 10 and 11 share thread 10; 12 is a thread of its own.
  REQUIRE(run.sink.opened.size() == 2);
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].opened_message == 10);
  CHECK(run.sink.closed[0].reply_seconds == 400);  // waiting since the first message
}

TEST_CASE("after an answer the next appeal in the thread is a followup") {
  Run run;
  run.feed({message(10, kCitizen, kT0), message(11, kPress, kT0 + 10, 10),
            message(12, kCitizen, kT0 + 20, 11), message(13, kPress, kT0 + 50, 12)});
  REQUIRE(run.sink.closed.size() == 2);
  CHECK(run.sink.closed[0].kind == AppealKind::first);
  CHECK(run.sink.closed[1].kind == AppealKind::followup);
  CHECK(run.sink.closed[1].reply_seconds == 30);
}

TEST_CASE("a citizen replying to another citizen: ignored by default") {
  Run run;
  run.feed({message(10, kOther, kT0), message(11, kCitizen, kT0 + 5, 10)});
  REQUIRE(run.sink.opened.size() == 1);
  CHECK(run.sink.opened[0].citizen == kOther);
}

TEST_CASE("a citizen replying to another citizen: an appeal under 'appeal'") {
  Run run(make_registry(1000, CitizenReplies::appeal));
  run.feed({message(10, kOther, kT0), message(11, kCitizen, kT0 + 5, 10)});
  REQUIRE(run.sink.opened.size() == 2);
  CHECK(run.sink.opened[1].citizen == kCitizen);
  CHECK(run.sink.opened[1].thread == 10);
}

TEST_CASE("an ignored citizen-to-citizen reply does not join an open appeal either") {
  Run run;
  run.feed({message(10, kOther, kT0), message(11, kCitizen, kT0 + 5),
            message(12, kCitizen, kT0 + 6, 10)});
  REQUIRE(run.sink.opened.size() == 2);  // 10 (other) and 11 (citizen, own thread)
  CHECK(run.sink.opened[1].thread == 11);
}

TEST_CASE("a citizen replying to their own message keeps appealing") {
  Run run;
  run.feed({message(10, kCitizen, kT0), message(11, kPress, kT0 + 5, 10),
            message(12, kCitizen, kT0 + 9, 10)});
  REQUIRE(run.sink.opened.size() == 2);
  CHECK(run.sink.opened[1].kind == AppealKind::followup);
}

TEST_CASE("official posts that reply to no citizen answer nothing") {
  Run run;
  run.feed({message(1, kAlphaChannel, kT0), message(2, kCitizen, kT0 + 1, 1),
            message(3, kPress, kT0 + 2), message(4, kPress, kT0 + 3, 1)});
  CHECK(run.sink.closed.empty());
  CHECK(run.pairing.open_appeals() == 1);
}

TEST_CASE("an answer to citizen D does not answer citizen C in the same thread") {
  Run run;
  run.feed({message(1, kAlphaChannel, kT0), message(2, kCitizen, kT0 + 1, 1),
            message(3, kOther, kT0 + 2, 1), message(4, kPress, kT0 + 60, 3)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].citizen == kOther);
  CHECK(run.pairing.open_appeals() == 1);
}

TEST_CASE("further official messages after the answer change nothing") {
  Run run;
  run.feed({message(10, kCitizen, kT0), message(11, kPress, kT0 + 10, 10),
            message(12, kAlphaChat, kT0 + 20, 10)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].answer_message == 11);
}

TEST_CASE("edits never answer") {
  Run run;
  run.feed({message(10, kCitizen, kT0),
            message(11, kPress, kT0 + 10, 10, kAlphaChat, EventKind::edit)});
  CHECK(run.sink.closed.empty());
  CHECK(run.pairing.counters().edits == 1);
}

TEST_CASE("horizon: an answer exactly at the horizon counts, one second later does not") {
  Run on_time(make_registry(1000));
  on_time.feed({message(10, kCitizen, kT0), message(11, kPress, kT0 + 1000, 10)});
  REQUIRE(on_time.sink.closed.size() == 1);
  CHECK(on_time.sink.closed[0].status == AppealStatus::answered);

  Run late(make_registry(1000));
  late.feed({message(10, kCitizen, kT0), message(11, kPress, kT0 + 1001, 10)});
  REQUIRE(late.sink.closed.size() == 1);
  CHECK(late.sink.closed[0].status == AppealStatus::unanswered);
  CHECK(late.sink.closed[0].answer_message == 0);
}

TEST_CASE("horizon: a citizen message after the horizon opens a followup") {
  Run run(make_registry(1000));
  run.feed({message(10, kCitizen, kT0), message(11, kCitizen, kT0 + 1500, 10)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].status == AppealStatus::unanswered);
  REQUIRE(run.sink.opened.size() == 2);
  CHECK(run.sink.opened[1].kind == AppealKind::followup);
  CHECK(run.sink.opened[1].opened_at == kT0 + 1500);
}

TEST_CASE("horizon: expiry by clock marks only appeals the clock has passed") {
  Run run(make_registry(1000));
  run.feed({message(10, kCitizen, kT0), message(20, kOther, kT0 + 500)});
  run.pairing.expire(kT0 + 1000);  // not past 10's horizon yet
  CHECK(run.sink.closed.empty());
  run.pairing.expire(kT0 + 1001);
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].opened_message == 10);
  CHECK(run.sink.closed[0].status == AppealStatus::unanswered);
  std::vector<Appeal> open;
  run.pairing.for_each_open([&](const Appeal& a) { open.push_back(a); });
  REQUIRE(open.size() == 1);
  CHECK(open[0].opened_message == 20);
  CHECK(open[0].status == AppealStatus::open);
}

TEST_CASE("duplicates change nothing") {
  Run run;
  const Event appeal = message(10, kCitizen, kT0);
  const Event answer = message(11, kPress, kT0 + 30, 10);
  run.feed({appeal, appeal, answer, appeal, answer});
  CHECK(run.sink.opened.size() == 1);
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.pairing.counters().duplicates == 3);
  CHECK(run.pairing.open_appeals() == 0);
}

TEST_CASE("a duplicate id with a different author is still a duplicate") {
  Run run;
  run.feed({message(10, kCitizen, kT0), message(10, kPress, kT0 + 1),
            message(11, kPress, kT0 + 30, 10)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].reply_seconds == 30);
}

TEST_CASE("conversations no agency owns are ignored") {
  Run run;
  run.feed({message(10, kCitizen, kT0, 0, -100123), message(11, kPress, kT0 + 1, 10, -100123)});
  CHECK(run.sink.opened.empty());
  CHECK(run.pairing.counters().unowned == 2);
}

TEST_CASE("message ids are per conversation") {
  Run run;
  run.feed({message(10, kCitizen, kT0, 0, kAlphaChat), message(10, kCitizen, kT0, 0, kBetaChat),
            message(11, kBetaPress, kT0 + 70, 10, kBetaChat)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].agency == 1);
  CHECK(run.pairing.open_appeals() == 1);  // alpha's appeal is still waiting
}

TEST_CASE("a parent timestamped after its reply gives a reply time of zero, not negative") {
  Run run;
  run.feed({message(10, kCitizen, kT0 + 100), message(11, kPress, kT0 + 40, 10)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].reply_seconds == 0);
  CHECK(run.sink.closed[0].business_reply_seconds == 0);
}

TEST_CASE("the same citizen in two threads has two appeals") {
  Run run;
  run.feed({message(1, kAlphaChannel, kT0), message(2, kAlphaChannel, kT0 + 1),
            message(3, kCitizen, kT0 + 2, 1), message(4, kCitizen, kT0 + 3, 2),
            message(5, kPress, kT0 + 9, 4)});
  CHECK(run.sink.opened.size() == 2);
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].thread == 2);
  CHECK(run.pairing.open_appeals() == 1);
}

TEST_CASE("an official reply to a citizen's non-appeal message answers their open appeal") {
  Run run;
  // 4 replies to another citizen and is ignored, yet it is the citizen's message: the
  // official reply to it answers the citizen's open appeal in that thread.
  run.feed({message(1, kAlphaChannel, kT0), message(2, kCitizen, kT0 + 1, 1),
            message(3, kOther, kT0 + 2, 1), message(4, kCitizen, kT0 + 3, 3),
            message(5, kPress, kT0 + 10, 4)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].citizen == kCitizen);
  CHECK(run.sink.closed[0].opened_message == 2);
}

TEST_CASE("snapshot: a restored engine continues exactly where the original was") {
  Run original;
  original.feed({message(10, kCitizen, kT0), message(11, kOther, kT0 + 5, 10),
                 message(12, kCitizen, kT0 + 6), message(13, kPress, kT0 + 9, 12)});
  std::string state;
  original.pairing.serialize(state);

  Run restored;
  REQUIRE(restored.pairing.restore(state).has_value());
  CHECK(restored.pairing.open_appeals() == original.pairing.open_appeals());
  // A redelivered message is still a duplicate, and the answer pairs with the old appeal.
  restored.feed({message(12, kCitizen, kT0 + 6), message(14, kPress, kT0 + 60, 10),
                 message(15, kCitizen, kT0 + 70, 14)});
  original.feed({message(12, kCitizen, kT0 + 6), message(14, kPress, kT0 + 60, 10),
                 message(15, kCitizen, kT0 + 70, 14)});
  REQUIRE(restored.sink.closed.size() == 1);
  CHECK(restored.sink.closed[0].opened_message == 10);
  CHECK(restored.sink.closed[0].reply_seconds == 60);
  REQUIRE(restored.sink.opened.size() == 1);
  CHECK(restored.sink.opened[0].kind == AppealKind::followup);
  CHECK(restored.pairing.counters().duplicates == original.pairing.counters().duplicates);
  std::string again, original_again;
  restored.pairing.serialize(again);
  original.pairing.serialize(original_again);
  CHECK(again.size() == original_again.size());
}

TEST_CASE("snapshot: damaged state is an error, never a crash") {
  Run original;
  original.feed({message(10, kCitizen, kT0), message(11, kPress, kT0 + 5, 10),
                 message(12, kCitizen, kT0 + 6)});
  std::string state;
  original.pairing.serialize(state);
  for (std::size_t cut = 0; cut < state.size(); ++cut) {
    Run r;
    CHECK_FALSE(r.pairing.restore(std::string_view(state).substr(0, cut)).has_value());
  }
  std::string flipped = state;
  for (std::size_t i = 0; i < flipped.size(); i += 7) {
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5A);
    Run r;
    (void)r.pairing.restore(flipped);  // any outcome but a crash
  }
  std::string huge_count = state.substr(0, 8 + 6 * 8);
  huge_count.append(8, '\xff');
  Run r;
  CHECK_FALSE(r.pairing.restore(huge_count).has_value());
}

TEST_CASE("forgetting: old thread details go, and a reply to them is said to be inexact") {
  Run run;
  run.pairing.set_retention(1500);
  run.feed({message(10, kCitizen, kT0), message(11, kOther, kT0 + 1400)});
  run.pairing.expire(kT0 + 1600);  // cutoff kT0 + 100: message 10 goes, 11 stays
  CHECK(run.pairing.retained_messages() == 1);
  CHECK(run.pairing.open_appeals() == 1);  // 10's appeal expired (horizon 1000), 11's waits
  // The reply's parent is forgotten: no answer can be attributed, and that is reported.
  CHECK(run.pairing.on_event(message(12, kPress, kT0 + 1601, 10)) ==
        replywatch::pipeline::Applied::parent_forgotten);
  CHECK(run.sink.with(AppealStatus::answered).empty());
  // Older than clock − retention: recorded as seen, not paired, and said.
  CHECK(run.pairing.on_event(message(5, kCitizen, kT0 + 50)) ==
        replywatch::pipeline::Applied::before_retention);
  CHECK(run.pairing.on_event(message(5, kCitizen, kT0 + 50)) ==
        replywatch::pipeline::Applied::duplicate);
  CHECK(run.sink.all().size() == 2);
}

TEST_CASE("reload: a conversation that changes owner stops or starts pairing") {
  Run run;
  run.feed({message(10, kCitizen, kT0)});
  auto moved = make_registry();
  moved->agencies[0].conversations.clear();
  moved->index();
  run.pairing.set_registry(moved);
  run.feed({message(11, kCitizen, kT0 + 1)});
  CHECK(run.sink.opened.size() == 1);
  int open = 0;
  run.pairing.for_each_open([&](const Appeal&) { ++open; });
  CHECK(open == 0);
  run.pairing.set_registry(make_registry());
  run.feed({message(12, kCitizen, kT0 + 2)});
  CHECK(run.sink.opened.size() == 2);
}

TEST_CASE("a migrated chat keeps its agency under the new id, across a snapshot") {
  Run run;
  constexpr std::int64_t kNewChat = -1009999999999;
  run.feed({message(10, kCitizen, kT0, 0, kNewChat)});
  CHECK(run.sink.opened.empty());  // not owned yet
  run.pairing.add_migration(replywatch::pipeline::Source::telegram, kAlphaChat, kNewChat);
  run.feed({message(11, kCitizen, kT0 + 1, 0, kNewChat), message(12, kPress, kT0 + 9, 11, kNewChat)});
  REQUIRE(run.sink.closed.size() == 1);
  CHECK(run.sink.closed[0].agency == 0);
  CHECK(run.sink.closed[0].conversation == kNewChat);
  std::string state;
  run.pairing.serialize(state);
  Run restored;
  REQUIRE(restored.pairing.restore(state).has_value());
  restored.feed({message(13, kOther, kT0 + 20, 0, kNewChat)});
  CHECK(restored.sink.opened.size() == 1);
}
