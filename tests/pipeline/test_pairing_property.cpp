// Property test: the engine against a brute-force reference of the same rules on
// many random histories (replies to missing parents, duplicates, edits, bots,
// foreign officials, horizon crossings, both citizen-reply modes).
#include "tests/support/pairing_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <tuple>

using namespace replywatch::testing;
using replywatch::pipeline::CitizenReplies;
using replywatch::pipeline::Pairing;

namespace {

enum class Cls { citizen, official, foreign, ignored, service };

/// The rules restated as plainly as possible: linear scans, no indexes.
struct Reference {
  std::int64_t horizon;
  bool ignore_citizen_replies;

  struct Seen {
    Event e;
    std::int64_t thread;
    Cls cls;
  };

  Cls classify(const Event& e) const {
    if (e.kind == EventKind::service) return Cls::service;
    if (e.author == kIgnoredBot) return Cls::ignored;
    if (e.author == kPress || e.author == kAlphaChannel || e.author == kAlphaChat) {
      return Cls::official;
    }
    if (e.author == kBetaPress) return Cls::foreign;
    if (e.author_hint == AuthorHint::bot || e.author_hint == AuthorHint::automatic_forward) {
      return Cls::ignored;
    }
    return Cls::citizen;
  }

  std::vector<Appeal> run(const std::vector<Event>& input) const {
    std::vector<Seen> seen;
    std::vector<Appeal> appeals;
    std::int64_t clock = 0;
    for (const Event& e : input) {
      clock = std::max(clock, e.time);
      if (e.kind == EventKind::edit) continue;
      bool duplicate = false;
      for (const auto& s : seen) duplicate = duplicate || s.e.message_id == e.message_id;
      if (duplicate) continue;
      const Seen* parent = nullptr;
      for (const auto& s : seen) {
        if (e.reply_to != 0 && s.e.message_id == e.reply_to) parent = &s;
      }
      const std::int64_t thread = e.reply_to == 0 ? e.message_id
                                  : parent        ? parent->thread
                                                  : e.reply_to;
      const Cls cls = classify(e);
      const bool has_parent = parent != nullptr;
      const Seen parent_copy = has_parent ? *parent : Seen{};
      seen.push_back({e, thread, cls});

      auto find_open = [&](std::int64_t citizen, std::int64_t t) -> Appeal* {
        for (auto& a : appeals) {
          if (a.citizen == citizen && a.thread == t && a.status == AppealStatus::open) return &a;
        }
        return nullptr;
      };
      if (cls == Cls::citizen) {
        if (has_parent && parent_copy.cls == Cls::citizen &&
            parent_copy.e.author != e.author && ignore_citizen_replies) {
          continue;
        }
        if (Appeal* open = find_open(e.author, thread)) {
          if (e.time <= open->opened_at + horizon) continue;
          open->status = AppealStatus::unanswered;
        }
        bool before = false;
        for (const auto& a : appeals) before = before || (a.citizen == e.author && a.thread == thread);
        Appeal a;
        a.conversation = kAlphaChat;
        a.agency = 0;
        a.citizen = e.author;
        a.thread = thread;
        a.opened_at = e.time;
        a.opened_message = e.message_id;
        a.kind = before ? AppealKind::followup : AppealKind::first;
        appeals.push_back(a);
      } else if (cls == Cls::official && has_parent && parent_copy.cls == Cls::citizen) {
        Appeal* open = find_open(parent_copy.e.author, parent_copy.thread);
        if (!open) continue;
        if (e.time > open->opened_at + horizon) {
          open->status = AppealStatus::unanswered;
        } else {
          open->status = AppealStatus::answered;
          open->answer_message = e.message_id;
          open->answered_at = e.time;
          open->responder = e.author;
          open->reply_seconds = std::max<std::int64_t>(0, e.time - open->opened_at);
        }
      }
    }
    for (auto& a : appeals) {
      if (a.status == AppealStatus::open && clock > a.opened_at + horizon) {
        a.status = AppealStatus::unanswered;
      }
    }
    return appeals;
  }
};

std::vector<Event> random_history(std::mt19937_64& rng) {
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
    if (who < 12) e.author = kPress;
    else if (who < 17) e.author = kAlphaChannel;
    else if (who < 21) e.author = kAlphaChat;
    else if (who < 26) e.author = kBetaPress;
    else if (who < 30) e.author = kIgnoredBot;
    else if (who < 33) e.author_hint = AuthorHint::bot;
    else if (who < 36) e.author_hint = AuthorHint::automatic_forward;
    else if (who < 40) e.kind = EventKind::service;
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

auto key(const Appeal& a) {
  return std::make_tuple(a.opened_message, a.citizen, a.thread, a.opened_at, a.kind, a.status,
                         a.answer_message, a.answered_at, a.responder, a.reply_seconds);
}

}  // namespace

TEST_CASE("property: the engine agrees with a brute-force reference on random histories") {
  std::mt19937_64 rng(20261127);
  constexpr std::int64_t kHorizon = 1000;
  int compared_appeals = 0;
  for (int round = 0; round < 4000; ++round) {
    const auto mode = round % 2 == 0 ? CitizenReplies::ignore : CitizenReplies::appeal;
    const auto history = random_history(rng);
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
    std::vector<Appeal> want = ref.run(history);

    auto by_key = [](const Appeal& a, const Appeal& b) { return key(a) < key(b); };
    std::sort(got.begin(), got.end(), by_key);
    std::sort(want.begin(), want.end(), by_key);
    REQUIRE_MESSAGE(got.size() == want.size(), "round " << round);
    for (std::size_t i = 0; i < got.size(); ++i) {
      REQUIRE_MESSAGE(key(got[i]) == key(want[i]), "round " << round << " appeal " << i);
    }
    compared_appeals += static_cast<int>(got.size());
  }
  CHECK(compared_appeals > 10000);  // the generator really produces appeals
}
