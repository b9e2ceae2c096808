// The pairing rules (DESIGN.md, "Measurement semantics"), applied event by event.
#include "pipeline/pairing.hpp"

#include "pipeline/binary.hpp"

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
  const std::int32_t agency = owner(e.source, e.conversation);
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

std::int32_t Pairing::owner(Source source, std::int64_t conversation) const {
  // Follow migrations back (bounded: a chat migrates at most once in practice).
  for (int hops = 0; hops < 8; ++hops) {
    const std::int32_t agency = registry_->agency_of_conversation(source, conversation);
    if (agency >= 0) return agency;
    const auto* from = migrated_from_.find(PairKey{static_cast<std::int64_t>(source), conversation});
    if (!from) return -1;
    conversation = *from;
  }
  return -1;
}

void Pairing::add_migration(Source source, std::int64_t from, std::int64_t to) {
  if (from == to) return;
  migrated_from_.try_emplace(PairKey{static_cast<std::int64_t>(source), to}, from);
  if (auto* index = index_.find(PairKey{static_cast<std::int64_t>(source), to})) {
    conversations_[*index]->agency = owner(source, to);
  }
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
  if (!c || c->agency < 0) {
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
  const MessageInfo parent_copy = has_parent ? *parent : MessageInfo{0, 0, 0};
  const auto [info, inserted] =
      c->messages.try_emplace(e.message_id, MessageInfo::make(thread, e.author, e.time, cls));
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
  if (parent && parent->cls() == AuthorClass::citizen && parent->author != e.author &&
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
  const bool first = c.seen.try_emplace(key, Empty{}).second;
  const OpenAppeal open =
      OpenAppeal::make(e.time, e.message_id, first ? AppealKind::first : AppealKind::followup);
  c.open.try_emplace(key, open);
  sink_.on_opened(make_appeal(c, key, open));
}

void Pairing::on_official(Conversation& c, const Event& e, std::int32_t account,
                          const MessageInfo* parent) {
  if (!parent || parent->cls() != AuthorClass::citizen) return;
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
  a.opened_message = open.opened_message();
  a.kind = open.kind();
  a.status = AppealStatus::open;
  return a;
}

void Pairing::expire(std::int64_t clock) {
  std::vector<PairKey> expired;
  for (const auto& c : conversations_) {
    if (c->agency < 0) continue;
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

std::size_t Pairing::forget_messages_before(std::int64_t before) {
  std::size_t forgotten = 0;
  std::vector<std::int64_t> old;
  for (const auto& c : conversations_) {
    old.clear();
    c->messages.for_each([&](std::int64_t id, const MessageInfo& m) {
      if (m.time() < before) old.push_back(id);
    });
    for (const auto id : old) c->messages.erase(id);
    forgotten += old.size();
  }
  return forgotten;
}

void Pairing::set_registry(std::shared_ptr<const Registry> registry) {
  registry_ = std::move(registry);
  for (auto& c : conversations_) c->agency = owner(c->source, c->id);
  // Conversations first seen after the reload are looked up as usual; the cached
  // pointer may refer to a conversation whose owner just changed, which is fine.
}

namespace {
constexpr std::uint32_t kPairingMagic = 0x52575031;  // "RWP1"
constexpr std::uint32_t kPairingVersion = 1;
}  // namespace

void Pairing::serialize(std::string& out) const {
  BinaryWriter w(out);
  w.put(kPairingMagic);
  w.put(kPairingVersion);
  w.put(counters_.events);
  w.put(counters_.duplicates);
  w.put(counters_.unowned);
  w.put(counters_.edits);
  w.put(counters_.removals);
  w.put(counters_.citizen_to_citizen);
  w.put(static_cast<std::uint64_t>(migrated_from_.size()));
  migrated_from_.for_each([&](const PairKey& k, std::int64_t from) {
    w.put(k.a);
    w.put(k.b);
    w.put(from);
  });
  w.put(static_cast<std::uint64_t>(conversations_.size()));
  for (const auto& c : conversations_) {
    w.put(c->id);
    w.put(c->source);
    w.put(static_cast<std::uint64_t>(c->messages.size()));
    c->messages.for_each([&](std::int64_t id, const MessageInfo& m) {
      w.put(id);
      w.put(m.thread);
      w.put(m.author);
      w.put(m.time());
      w.put(m.cls());
    });
    w.put(static_cast<std::uint64_t>(c->open.size()));
    c->open.for_each([&](const PairKey& k, const OpenAppeal& o) {
      w.put(k.a);
      w.put(k.b);
      w.put(o.opened_at);
      w.put(o.opened_message());
      w.put(o.kind());
    });
    w.put(static_cast<std::uint64_t>(c->seen.size()));
    c->seen.for_each([&](const PairKey& k, Empty) {
      w.put(k.a);
      w.put(k.b);
    });
  }
}

Result<void> Pairing::restore(std::string_view in) {
  index_.clear();
  conversations_.clear();
  last_ = nullptr;
  counters_ = {};
  BinaryReader r(in);
  std::uint32_t magic = 0, version = 0;
  if (!r.get(magic) || magic != kPairingMagic) return make_error("pairing state: not a pairing snapshot");
  if (!r.get(version) || version != kPairingVersion) {
    return make_error("pairing state: unsupported version " + std::to_string(version));
  }
  PairingCounters counters;
  std::uint64_t n_conversations = 0, n_migrations = 0;
  bool header_ok = r.get(counters.events) && r.get(counters.duplicates) &&
                   r.get(counters.unowned) && r.get(counters.edits) && r.get(counters.removals) &&
                   r.get(counters.citizen_to_citizen) && r.get_count(n_migrations, 24);
  migrated_from_.clear();
  for (std::uint64_t i = 0; header_ok && i < n_migrations; ++i) {
    PairKey k;
    std::int64_t from = 0;
    header_ok = r.get(k.a) && r.get(k.b) && r.get(from);
    if (header_ok) migrated_from_.try_emplace(k, from);
  }
  header_ok = header_ok && r.get_count(n_conversations, 9);
  auto damaged = [&](const char* what) {
    index_.clear();
    conversations_.clear();
    migrated_from_.clear();
    return make_error(std::string("pairing state: damaged ") + what + " at byte " +
                      std::to_string(r.position()));
  };
  if (!header_ok) return damaged("header");
  for (std::uint64_t i = 0; i < n_conversations; ++i) {
    auto c = std::make_unique<Conversation>();
    std::uint64_t n = 0;
    if (!r.get(c->id) || !r.get(c->source) ||
        static_cast<std::uint8_t>(c->source) > static_cast<std::uint8_t>(Source::x)) {
      return damaged("conversation");
    }
    if (!r.get_count(n, 33)) return damaged("message table");
    for (std::uint64_t k = 0; k < n; ++k) {
      std::int64_t id = 0;
      std::int64_t thread = 0, author = 0, time = 0;
      AuthorClass cls{};
      if (!r.get(id) || !r.get(thread) || !r.get(author) || !r.get(time) || !r.get(cls) ||
          static_cast<std::uint8_t>(cls) > static_cast<std::uint8_t>(AuthorClass::service)) {
        return damaged("message");
      }
      c->messages.try_emplace(id, MessageInfo::make(thread, author, time, cls));
    }
    if (!r.get_count(n, 33)) return damaged("open appeals");
    for (std::uint64_t k = 0; k < n; ++k) {
      PairKey key;
      std::int64_t opened_at = 0, opened_message = 0;
      AppealKind kind{};
      if (!r.get(key.a) || !r.get(key.b) || !r.get(opened_at) || !r.get(opened_message) ||
          !r.get(kind) || static_cast<std::uint8_t>(kind) > 1 || opened_message <= 0) {
        return damaged("open appeal");
      }
      c->open.try_emplace(key, OpenAppeal::make(opened_at, opened_message, kind));
    }
    if (!r.get_count(n, 16)) return damaged("appeal history");
    for (std::uint64_t k = 0; k < n; ++k) {
      PairKey key;
      if (!r.get(key.a) || !r.get(key.b)) return damaged("appeal history");
      c->seen.try_emplace(key, Empty{});
    }
    c->agency = owner(c->source, c->id);
    const PairKey key{static_cast<std::int64_t>(c->source), c->id};
    if (!index_.try_emplace(key, static_cast<std::uint32_t>(conversations_.size())).second) {
      return damaged("conversation (repeated)");
    }
    conversations_.push_back(std::move(c));
  }
  if (!r.at_end()) return damaged("trailer");
  counters_ = counters;
  return {};
}

}  // namespace replywatch::pipeline
