// A brute-force reading of the pairing rules on a *set* of events (every conversation
// sorted by message id, linear scans), and a generator of random histories for the
// metamorphic tests of the pipeline and the daemon.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <tuple>

#include "tests/support/pairing_fixture.hpp"

namespace replywatch::testing {

enum class Cls { citizen, official, foreign, ignored, service };

/// The rules read as plainly as possible, on the set of events.
struct Reference {
  std::int64_t horizon;
  bool ignore_citizen_replies;

  static int agency_of(std::int64_t chat) {
    return chat == kAlphaChat ? 0 : chat == kBetaChat ? 1 : -1;
  }

  static Cls classify(const Event& e) {
    if (e.kind == EventKind::service) return Cls::service;
    if (e.author == kIgnoredBot) return Cls::ignored;
    const int agency = agency_of(e.conversation);
    const bool alpha_official = e.author == kPress || e.author == kAlphaChannel;
    const bool beta_official = e.author == kBetaPress;
    if ((agency == 0 && alpha_official) || (agency == 1 && beta_official)) return Cls::official;
    if (e.author == e.conversation) return Cls::official;
    if (alpha_official || beta_official) return Cls::foreign;
    if (e.author_hint == AuthorHint::bot || e.author_hint == AuthorHint::automatic_forward) {
      return Cls::ignored;
    }
    return Cls::citizen;
  }

  std::vector<Appeal> run(const std::vector<Event>& input, std::int64_t clock) const {
    std::vector<Appeal> all;
    std::set<std::int64_t> chats;
    for (const Event& e : input) chats.insert(e.conversation);
    for (const std::int64_t chat : chats) {
      if (agency_of(chat) < 0) continue;
      // The set of messages: first copy of each id; deletions by id.
      std::map<std::int64_t, Event> messages;
      std::set<std::int64_t> deleted;
      for (const Event& e : input) {
        if (e.conversation != chat) continue;
        if (e.kind == EventKind::remove) deleted.insert(e.message_id);
        if (e.kind == EventKind::message || e.kind == EventKind::service) {
          messages.try_emplace(e.message_id, e);
        }
      }
      struct Seen {
        Event e;
        std::int64_t thread;
        Cls cls;
      };
      std::vector<Seen> seen;
      std::vector<Appeal> appeals;
      auto find_open = [&](std::int64_t citizen, std::int64_t t) -> Appeal* {
        for (auto& a : appeals) {
          if (a.citizen == citizen && a.thread == t && a.status == AppealStatus::open) return &a;
        }
        return nullptr;
      };
      for (const auto& [id, e] : messages) {  // ascending id
        const Seen* parent = nullptr;
        for (const auto& s : seen) {
          if (e.reply_to != 0 && s.e.message_id == e.reply_to) parent = &s;
        }
        const std::int64_t thread = e.reply_to == 0 ? id : parent ? parent->thread : e.reply_to;
        const Cls cls = classify(e);
        const std::optional<Seen> p = parent ? std::optional<Seen>(*parent) : std::nullopt;
        seen.push_back({e, thread, cls});
        if (cls == Cls::citizen) {
          if (p && p->cls == Cls::citizen && p->e.author != e.author && ignore_citizen_replies) {
            continue;
          }
          if (Appeal* open = find_open(e.author, thread)) {
            if (e.time <= open->opened_at + horizon) continue;
            open->status = AppealStatus::unanswered;
          }
          bool before = false;
          for (const auto& a : appeals)
            before = before || (a.citizen == e.author && a.thread == thread);
          Appeal a;
          a.conversation = chat;
          a.agency = agency_of(chat);
          a.citizen = e.author;
          a.thread = thread;
          a.opened_at = e.time;
          a.opened_message = id;
          a.kind = before ? AppealKind::followup : AppealKind::first;
          appeals.push_back(a);
        } else if (cls == Cls::official && (e.addressee != 0 || (p && p->cls == Cls::citizen))) {
          // The citizen it names, or else the author of the citizen message it replies to.
          Appeal* open = find_open(e.addressee != 0 ? e.addressee : p->e.author, thread);
          if (!open) continue;
          if (e.time > open->opened_at + horizon) {
            open->status = AppealStatus::unanswered;
          } else {
            open->status = AppealStatus::answered;
            open->answer_message = id;
            open->answered_at = e.time;
            open->responder = e.author;
            open->reply_seconds = std::max<std::int64_t>(0, e.time - open->opened_at);
            open->business_reply_seconds = open->reply_seconds;
          }
        }
      }
      for (auto& a : appeals) {
        if (a.status == AppealStatus::open && clock > a.opened_at + horizon) {
          a.status = AppealStatus::unanswered;
        }
        if (a.status != AppealStatus::answered && deleted.count(a.opened_message)) {
          a.status = AppealStatus::withdrawn;
        }
        all.push_back(a);
      }
    }
    return all;
  }
};

/// Several conversations, chains of replies, replies to parents that never arrive and to
/// parents with larger ids, officials naming the citizen they answer, deletions (some
/// before the message), edits.
inline std::vector<Event> random_history(std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  std::vector<Event> out;
  std::map<std::int64_t, std::int64_t> next_id = {{kAlphaChat, 0}, {kBetaChat, 0}};
  std::int64_t time = 1'780'000'000;
  const int n = 1 + pick(90);
  const std::int64_t citizens[] = {1001, 1002, 1003, 1004, 1005};
  for (int i = 0; i < n; ++i) {
    const std::int64_t chat = pick(4) == 0 ? kBetaChat : kAlphaChat;
    std::int64_t& id = next_id[chat];
    const int roll = pick(100);
    if (roll < 5 && !out.empty()) {  // an edit of an earlier message
      Event e = out[static_cast<std::size_t>(pick(static_cast<int>(out.size())))];
      e.kind = EventKind::edit;
      e.time = time;
      out.push_back(e);
      continue;
    }
    if (roll < 10 && id > 0) {  // a deletion, of a message seen or not (yet)
      Event e = message(1 + pick(static_cast<int>(id + 3)), citizens[pick(5)], time, 0, chat,
                        EventKind::remove);
      out.push_back(e);
      continue;
    }
    id += 1 + (pick(4) == 0 ? 1 + pick(3) : 0);  // gaps: parents missing from the data
    time += pick(8) == 0 ? 700 + pick(900) : pick(240);
    const std::int64_t t = pick(20) == 0 ? time - pick(400) : time;  // a clock that wobbles
    Event e = message(id, citizens[pick(5)], t, 0, chat);
    const int who = pick(100);
    const bool alpha = chat == kAlphaChat;
    if (who < 16)
      e.author = alpha ? kPress : kBetaPress;
    else if (who < 21)
      e.author = alpha ? kAlphaChannel : kBetaPress;
    else if (who < 25)
      e.author = chat;  // an anonymous admin
    else if (who < 29)
      e.author = alpha ? kBetaPress : kPress;  // another agency's official
    else if (who < 32)
      e.author = kIgnoredBot;
    else if (who < 34)
      e.author_hint = AuthorHint::bot;
    else if (who < 37)
      e.author_hint = AuthorHint::automatic_forward;
    else if (who < 40)
      e.kind = EventKind::service;
    // An official naming the citizen it answers (VK's reply_to_user), with or without a
    // reply: sometimes the citizen of its parent, sometimes another.
    if (who < 25 && pick(4) == 0) e.addressee = citizens[pick(5)];
    const int reply = pick(100);
    if (reply < 55 && id > 1) {
      e.reply_to = std::max<std::int64_t>(
          1, id - 1 - pick(static_cast<int>(std::min<std::int64_t>(id - 1, 8))));
    } else if (reply < 62 && id > 1) {
      e.reply_to = 1 + pick(static_cast<int>(id - 1));  // further back
    } else if (reply < 66) {
      e.reply_to = id + 1 + pick(4);  // a parent with a larger id: missing by the rules
    }
    out.push_back(e);
  }
  return out;
}

inline auto appeal_key(const Appeal& a) {
  return std::make_tuple(a.conversation, a.opened_message, a.citizen, a.thread, a.opened_at, a.kind,
                         a.status, a.answer_message, a.answered_at, a.responder, a.reply_seconds,
                         a.agency);
}

inline std::vector<Appeal> sorted_appeals(std::vector<Appeal> v) {
  std::sort(v.begin(), v.end(),
            [](const Appeal& a, const Appeal& b) { return appeal_key(a) < appeal_key(b); });
  return v;
}

inline std::int64_t max_time(const std::vector<Event>& events) {
  std::int64_t clock = 0;
  for (const auto& e : events) clock = std::max(clock, e.time);
  return clock;
}

}  // namespace replywatch::testing
