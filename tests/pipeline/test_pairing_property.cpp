// Property test: the engine against a brute-force reference of the same rules on
// many random histories (replies to missing parents, duplicates, edits, bots,
// foreign officials, horizon crossings, both citizen-reply modes).
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <tuple>

#include "tests/support/pairing_reference.hpp"

using namespace replywatch::testing;
using replywatch::pipeline::CitizenReplies;
using replywatch::pipeline::Pairing;

namespace {

// Histories of one conversation, in id order with redeliveries and edits; the metamorphic
// tests (test_pairing_metamorphic.cpp) deliver richer ones in every order.
std::vector<Event> one_chat_history(std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  const int n = 1 + pick(60);
  std::vector<Event> out;
  std::int64_t id = 0, time = 1'780'000'000;
  for (int i = 0; i < n; ++i) {
    const int roll = pick(100);
    if (roll < 4 && !out.empty()) {  // redelivery of an earlier message
      out.push_back(out[static_cast<std::size_t>(pick(static_cast<int>(out.size())))]);
      continue;
    }
    if (roll < 7 && !out.empty()) {  // an edit of an earlier message, later
      Event e = out[static_cast<std::size_t>(pick(static_cast<int>(out.size())))];
      e.kind = EventKind::edit;
      e.time = time;
      out.push_back(e);
      continue;
    }
    id += 1 + pick(3);  // gaps: parents that are missing from the data
    time += pick(10) == 0 ? 900 + pick(800) : pick(300);
    Event e = message(id, 1 + pick(4), time);
    const int who = pick(100);
    if (who < 12)
      e.author = kPress;
    else if (who < 17)
      e.author = kAlphaChannel;
    else if (who < 21)
      e.author = kAlphaChat;
    else if (who < 26)
      e.author = kBetaPress;
    else if (who < 30)
      e.author = kIgnoredBot;
    else if (who < 33)
      e.author_hint = AuthorHint::bot;
    else if (who < 36)
      e.author_hint = AuthorHint::automatic_forward;
    else if (who < 40)
      e.kind = EventKind::service;
    const int reply = pick(100);
    if (reply < 60 && id > 1) {
      e.reply_to = 1 + pick(static_cast<int>(id - 1));
    } else if (reply < 65) {
      e.reply_to = id + 1 + pick(5);  // a parent the engine has not seen
    }
    out.push_back(e);
  }
  return out;
}

}  // namespace

TEST_CASE("property: the engine agrees with a brute-force reference on random histories") {
  std::mt19937_64 rng(20261127);
  constexpr std::int64_t kHorizon = 1000;
  int compared_appeals = 0;
  for (int round = 0; round < 4000; ++round) {
    const auto mode = round % 2 == 0 ? CitizenReplies::ignore : CitizenReplies::appeal;
    const auto history = one_chat_history(rng);
    auto registry = make_registry(kHorizon, mode);

    Recorder sink;
    Pairing pairing(registry, sink);
    std::int64_t clock = 0;
    for (const auto& e : history) {
      pairing.on_event(e);
      clock = std::max(clock, e.time);
    }
    pairing.expire(clock);
    std::vector<Appeal> got = sink.all();
    REQUIRE(sink.mismatched == 0);

    const Reference ref{kHorizon, mode == CitizenReplies::ignore};
    const std::vector<Appeal> want = sorted_appeals(ref.run(history, clock));
    got = sorted_appeals(got);
    REQUIRE_MESSAGE(got.size() == want.size(), "round " << round);
    for (std::size_t i = 0; i < got.size(); ++i) {
      REQUIRE_MESSAGE(appeal_key(got[i]) == appeal_key(want[i]),
                      "round " << round << " appeal " << i);
    }
    compared_appeals += static_cast<int>(got.size());
  }
  CHECK(compared_appeals > 10000);  // the generator really produces appeals
}
