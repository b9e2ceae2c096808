// The pairing rules (DESIGN.md, "Measurement semantics"), applied event by event.
#include "pipeline/pairing.hpp"

#include <algorithm>

namespace replywatch::pipeline {

std::string_view to_string(AppealKind k) { return k == AppealKind::first ? "first" : "followup"; }

std::string_view to_string(AppealStatus s) {
  switch (s) {
    case AppealStatus::open:
      return "open";
    case AppealStatus::answered:
      return "answered";
    case AppealStatus::unanswered:
      return "unanswered";
  }
  return "open";
}

Pairing::Pairing(std::shared_ptr<const Registry> registry, AppealSink& sink)
    : registry_(std::move(registry)), sink_(sink) {}

Pairing::~Pairing() = default;

Pairing::Conversation* Pairing::conversation_for(const Event& e) {
  if (last_ && last_->id == e.conversation && last_->source == e.source) return last_;
  const PairKey key{static_cast<std::int64_t>(e.source), e.conversation};
  if (const auto* found = index_.find(key)) {
    last_ = conversations_[*found].get();
    return last_;
  }
  const std::int32_t agency = registry_->agency_of_conversation(e.source, e.conversation);
  if (agency < 0) return nullptr;
  auto conv = std::make_unique<Conversation>();
  conv->id = e.conversation;
  conv->source = e.source;
  conv->agency = agency;
  index_.try_emplace(key, static_cast<std::uint32_t>(conversations_.size()));
  conversations_.push_back(std::move(conv));
  last_ = conversations_.back().get();
  return last_;
}

AuthorClass Pairing::classify(const Conversation& c, const Event& e, std::int32_t& account) const {
  account = -1;
  if (e.kind == EventKind::service) return AuthorClass::service;
  const AccountLookup found = registry_->lookup_account(e.source, e.author);
  if (found.ignored) return AuthorClass::ignored;
  if (found.agency == c.agency) {
    account = found.account;
    return AuthorClass::official;
  }
  // Anonymous admins post as the group itself.
  if (e.author == c.id) return AuthorClass::official;
  if (found.agency != AccountLookup::kNone) return AuthorClass::foreign_official;
  if (e.author_hint == AuthorHint::bot) return AuthorClass::ignored;
  // A channel post mirrored into the group is never an appeal, whoever owns the channel.
  if (e.author_hint == AuthorHint::automatic_forward) return AuthorClass::ignored;
  if (e.author == 0) return AuthorClass::ignored;
  return AuthorClass::citizen;
}

void Pairing::on_event(const Event& e) {
  ++counters_.events;
  Conversation* c = conversation_for(e);
  if (!c) {
    ++counters_.unowned;
    return;
  }
  if (e.kind == EventKind::edit) {
    ++counters_.edits;
    return;
  }
  if (e.kind == EventKind::remove) {
    ++counters_.removals;
    return;
  }
  const MessageInfo* parent = e.reply_to != 0 ? c->messages.find(e.reply_to) : nullptr;
  // A reply whose parent is not in the data: the parent's id is the thread.
  const std::int64_t thread = e.reply_to == 0 ? e.message_id
                              : parent        ? parent->thread
                                              : e.reply_to;
  std::int32_t account = -1;
  const AuthorClass cls = classify(*c, e, account);
  // Copy the parent before inserting: the insert may move the table.
  const bool has_parent = parent != nullptr;
  const MessageInfo parent_copy = has_parent ? *parent : MessageInfo{};
  const auto [info, inserted] =
      c->messages.try_emplace(e.message_id, MessageInfo{thread, e.author, cls});
  (void)info;
  if (!inserted) {
    ++counters_.duplicates;
    return;
  }
  if (cls == AuthorClass::citizen) {
    on_citizen(*c, e, thread, has_parent ? &parent_copy : nullptr);
  } else if (cls == AuthorClass::official) {
    on_official(*c, e, account, has_parent ? &parent_copy : nullptr);
  }
}

void Pairing::on_citizen(Conversation& c, const Event& e, std::int64_t thread,
                         const MessageInfo* parent) {
  if (parent && parent->cls == AuthorClass::citizen && parent->author != e.author &&
      registry_->citizen_replies_to_citizens == CitizenReplies::ignore) {
    ++counters_.citizen_to_citizen;
    return;
  }
  const PairKey key{e.author, thread};
  if (OpenAppeal* open = c.open.find(key)) {
    if (e.time <= open->opened_at + registry_->horizon_secs) return;  // joins the open appeal
    Appeal expired = make_appeal(c, key, *open);
    expired.status = AppealStatus::unanswered;
    c.open.erase(key);
    sink_.on_closed(expired);
  }
  const bool first = c.seen.try_emplace(key, 1).second;
  const OpenAppeal open{e.time, e.message_id, first ? AppealKind::first : AppealKind::followup};
  c.open.try_emplace(key, open);
  sink_.on_opened(make_appeal(c, key, open));
}

void Pairing::on_official(Conversation& c, const Event& e, std::int32_t account,
                          const MessageInfo* parent) {
  if (!parent || parent->cls != AuthorClass::citizen) return;
  const PairKey key{parent->author, parent->thread};
  OpenAppeal* open = c.open.find(key);
  if (!open) return;
  Appeal appeal = make_appeal(c, key, *open);
  if (e.time > open->opened_at + registry_->horizon_secs) {
    appeal.status = AppealStatus::unanswered;  // the answer came after the horizon
  } else {
    appeal.status = AppealStatus::answered;
    appeal.answer_message = e.message_id;
    appeal.answered_at = e.time;
    appeal.responder = e.author;
    appeal.responder_account = account;
    // Message order is authoritative; a clock that runs backwards yields 0, not a negative time.
    appeal.reply_seconds = std::max<std::int64_t>(0, e.time - open->opened_at);
    const auto& calendar = registry_->agencies[static_cast<std::size_t>(c.agency)].calendar;
    appeal.business_reply_seconds =
        calendar ? calendar->business_seconds(open->opened_at, std::max(e.time, open->opened_at))
                 : appeal.reply_seconds;
  }
  c.open.erase(key);
  sink_.on_closed(appeal);
}

Appeal Pairing::make_appeal(const Conversation& c, const PairKey& key,
                            const OpenAppeal& open) const {
  Appeal a;
  a.conversation = c.id;
  a.source = c.source;
  a.agency = c.agency;
  a.citizen = key.a;
  a.thread = key.b;
  a.opened_at = open.opened_at;
  a.opened_message = open.opened_message;
  a.kind = open.kind;
  a.status = AppealStatus::open;
  return a;
}

void Pairing::expire(std::int64_t clock) {
  std::vector<PairKey> expired;
  for (const auto& c : conversations_) {
    expired.clear();
    c->open.for_each([&](const PairKey& key, const OpenAppeal& open) {
      if (clock > open.opened_at + registry_->horizon_secs) expired.push_back(key);
    });
    for (const auto& key : expired) {
      Appeal a = make_appeal(*c, key, *c->open.find(key));
      a.status = AppealStatus::unanswered;
      c->open.erase(key);
      sink_.on_closed(a);
    }
  }
}

std::size_t Pairing::open_appeals() const {
  std::size_t n = 0;
  for (const auto& c : conversations_) n += c->open.size();
  return n;
}

std::size_t Pairing::memory_bytes() const {
  std::size_t n = index_.memory_bytes();
  for (const auto& c : conversations_) {
    n += sizeof(Conversation) + c->messages.memory_bytes() + c->open.memory_bytes() +
         c->seen.memory_bytes();
  }
  return n;
}

}  // namespace replywatch::pipeline
