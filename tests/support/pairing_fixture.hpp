// Shared helpers for pairing tests: a two-agency registry and a recording sink.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "pipeline/pairing.hpp"
#include "pipeline/registry.hpp"

namespace replywatch::testing {

using pipeline::Appeal;
using pipeline::AppealKind;
using pipeline::AppealStatus;
using pipeline::AuthorHint;
using pipeline::Event;
using pipeline::EventKind;

// Agency "alpha" owns conversation kAlphaChat; its officials are kPress and its
// channel kAlphaChannel. Agency "beta" owns kBetaChat with official kBetaPress.
constexpr std::int64_t kAlphaChat = -1001800004444;
constexpr std::int64_t kAlphaChannel = -1001700002222;
constexpr std::int64_t kPress = 500201;
constexpr std::int64_t kBetaChat = -1009900001111;
constexpr std::int64_t kBetaPress = 600301;
constexpr std::int64_t kIgnoredBot = 7000001;

inline std::shared_ptr<pipeline::Registry> make_registry(
    std::int64_t horizon = 1000, pipeline::CitizenReplies mode = pipeline::CitizenReplies::ignore) {
  auto r = std::make_shared<pipeline::Registry>();
  r->horizon_secs = horizon;
  r->citizen_replies_to_citizens = mode;
  pipeline::Agency alpha;
  alpha.id = "alpha";
  alpha.name = "Alpha";
  alpha.conversations = {{pipeline::Source::telegram, kAlphaChat}};
  alpha.accounts = {{pipeline::Source::telegram, kAlphaChannel, "channel", "", ""},
                    {pipeline::Source::telegram, kPress, "press_office", "Press", "central"}};
  pipeline::Agency beta;
  beta.id = "beta";
  beta.name = "Beta";
  beta.conversations = {{pipeline::Source::telegram, kBetaChat}};
  beta.accounts = {{pipeline::Source::telegram, kBetaPress, "press_office", "", ""}};
  r->agencies = {alpha, beta};
  r->ignore_accounts = {{pipeline::Source::telegram, kIgnoredBot}};
  r->index();
  return r;
}

inline Event message(std::int64_t id, std::int64_t author, std::int64_t time,
                     std::int64_t reply_to = 0, std::int64_t chat = kAlphaChat,
                     EventKind kind = EventKind::message, AuthorHint hint = AuthorHint::user) {
  Event e;
  e.conversation = chat;
  e.message_id = id;
  e.author = author;
  e.time = time;
  e.reply_to = reply_to;
  e.kind = kind;
  e.author_hint = hint;
  return e;
}

/// Keeps the appeals the engine reports, as they are now, plus the history of
/// appearances (`opened`) and of closings (`closed`: open → any other status).
class Recorder : public pipeline::AppealSink {
 public:
  void on_appeal(const Appeal* before, const Appeal* after) override {
    ++changes;
    if (before && after && !pipeline::same_appeal(*before, *after)) ++mismatched;
    if (!before) opened.push_back(*after);
    if (after && after->status != AppealStatus::open &&
        (!before || before->status == AppealStatus::open)) {
      closed.push_back(*after);
    }
    if (before && (!after || before->status != AppealStatus::open)) ++corrections;
    const auto& id = after ? *after : *before;
    if (after) {
      current[{id.conversation, id.opened_message}] = *after;
    } else {
      current.erase({id.conversation, id.opened_message});
    }
  }
  void on_forgotten_deletion(pipeline::Source, std::int64_t conversation,
                             std::int64_t message) override {
    auto it = current.find({conversation, message});
    if (it != current.end() && it->second.status != AppealStatus::answered) {
      it->second.status = AppealStatus::withdrawn;
    }
  }
  /// Every appeal as it stands, ordered by (conversation, opened message).
  std::vector<Appeal> all() const {
    std::vector<Appeal> out;
    for (const auto& [k, a] : current) out.push_back(a);
    return out;
  }
  std::vector<Appeal> with(AppealStatus s) const {
    std::vector<Appeal> out;
    for (const auto& [k, a] : current) {
      if (a.status == s) out.push_back(a);
    }
    return out;
  }
  std::vector<Appeal> opened;
  std::vector<Appeal> closed;
  std::map<std::pair<std::int64_t, std::int64_t>, Appeal> current;
  int changes = 0;
  int corrections = 0;  // changes to an appeal already closed, and disappearances
  int mismatched = 0;   // a change whose before and after are different appeals: a bug
};

}  // namespace replywatch::testing
