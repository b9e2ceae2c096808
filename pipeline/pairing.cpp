// The rules (README "The rules") as a fold: every (citizen, thread) pair folds the
// messages that act on it — the citizen's appeals and the official answers to them —
// in message-id order. A message applied in id order extends one fold by a step; a
// message that arrives behind later ones is put where it belongs, the threads that
// hang on it are derived again, and every pair it touches is folded again from its
// base. Either way the sink hears the difference, so what it holds is always the
// rules applied to the set of messages seen.
#include "pipeline/pairing.hpp"

#include <algorithm>
#include <unordered_map>

#include "pipeline/binary.hpp"
#include "pipeline/flat_map.hpp"
#include "pipeline/id_set.hpp"

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
    case AppealStatus::withdrawn:
      return "withdrawn";
  }
  return "open";
}

bool same_outcome(const Appeal& a, const Appeal& b) {
  return same_appeal(a, b) && a.thread == b.thread && a.citizen == b.citizen &&
         a.opened_at == b.opened_at && a.kind == b.kind && a.status == b.status &&
         a.agency == b.agency && a.answer_message == b.answer_message &&
         a.answered_at == b.answered_at && a.responder == b.responder &&
         a.reply_seconds == b.reply_seconds && a.business_reply_seconds == b.business_reply_seconds;
}

std::int64_t decided_at(const Appeal& a, std::int64_t horizon_secs) {
  switch (a.status) {
    case AppealStatus::answered:
      return a.answered_at;
    case AppealStatus::unanswered:
      return a.opened_at + horizon_secs + 1;  // the first second past the horizon
    default:
      return a.opened_at;
  }
}

namespace {

constexpr int kFlagBits = 5;
constexpr std::int32_t kUnknownAccount = -2;  // look the responder up in the registry
constexpr std::uint64_t kClassMask = 7;
constexpr std::uint64_t kPendingBit = 8;
constexpr std::uint64_t kPresentBit = 16;  // a slot of MessageTable's dense window in use
// Times are packed with five flag bits; ±2^57 s is far beyond any platform's range.
constexpr std::int64_t kTimeBound = std::int64_t{1} << 57;

std::int64_t clamp_time(std::int64_t t) { return std::clamp(t, -kTimeBound, kTimeBound); }

/// One retained message: what its replies need (thread, author, class) and, when it acts
/// on a (citizen, thread) pair, which pair and the pair's previous acting message.
struct Entry {
  std::int64_t thread = 0;
  std::int64_t author = 0;
  std::int64_t target = 0;   // the citizen of the pair it acts on; 0: acts on none
  std::int64_t prev = 0;     // the pair's previous acting message; 0: none
  std::uint64_t packed = 0;  // time << 4 | pending << 3 | class

  static std::uint64_t pack(std::int64_t time, AuthorClass cls, bool pending) {
    return (static_cast<std::uint64_t>(clamp_time(time)) << kFlagBits) |
           (pending ? kPendingBit : 0) | kPresentBit | static_cast<std::uint64_t>(cls);
  }
  bool present() const { return (packed & kPresentBit) != 0; }
  std::int64_t time() const { return static_cast<std::int64_t>(packed) >> kFlagBits; }
  AuthorClass cls() const { return static_cast<AuthorClass>(packed & kClassMask); }
  /// Its thread is a missing message that may still arrive (and change the thread).
  bool pending() const { return (packed & kPendingBit) != 0; }
  void set_pending(bool on) { packed = on ? packed | kPendingBit : packed & ~kPendingBit; }
};

/// Retained messages by id. Chats number their messages one by one, so most ids fall in
/// a dense window indexed by id − base: inserting is sequential and recent parents are
/// in cache. Ids far outside it (an old message arriving late, sparse 64-bit ids) go to
/// a hash table.
class MessageTable {
 public:
  Entry* find(std::int64_t id) {
    if (in_window(id)) {
      Entry& e = window_[static_cast<std::size_t>(id - base_)];
      if (e.present()) return &e;
    }
    return overflow_.empty() ? nullptr : overflow_.find(id);
  }
  const Entry* find(std::int64_t id) const { return const_cast<MessageTable*>(this)->find(id); }

  std::pair<Entry*, bool> try_emplace(std::int64_t id, const Entry& e) {
    if (Entry* found = find(id)) return {found, false};
    if (window_.empty() && overflow_.empty()) base_ = id;
    const std::int64_t end = base_ + static_cast<std::int64_t>(window_.size());
    const std::int64_t gap =
        std::max<std::int64_t>(64, static_cast<std::int64_t>(window_.size()) / 4);
    if (in_window(id) || (id >= end && id - end <= gap && (end > base_ || id == base_))) {
      if (!in_window(id)) window_.resize(static_cast<std::size_t>(id - base_ + 1));
      Entry& slot = window_[static_cast<std::size_t>(id - base_)];
      slot = e;
      ++dense_;
      return {&slot, true};
    }
    return overflow_.try_emplace(id, e);
  }

  /// Forgets every message with an id below `bound`.
  void erase_below(std::int64_t bound) {
    if (bound > base_ && !window_.empty()) {
      const auto n = static_cast<std::size_t>(
          std::min<std::int64_t>(bound - base_, static_cast<std::int64_t>(window_.size())));
      for (std::size_t i = 0; i < n; ++i) dense_ -= window_[i].present();
      window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(n));
      base_ += static_cast<std::int64_t>(n);
    }
    std::vector<std::int64_t> old;
    overflow_.for_each([&](std::int64_t id, const Entry&) {
      if (id < bound) old.push_back(id);
    });
    for (const std::int64_t id : old) overflow_.erase(id);
  }

  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < window_.size(); ++i) {
      if (window_[i].present()) f(base_ + static_cast<std::int64_t>(i), window_[i]);
    }
    overflow_.for_each(f);
  }

  std::size_t size() const { return dense_ + overflow_.size(); }
  std::size_t memory_bytes() const {
    return window_.capacity() * sizeof(Entry) + overflow_.memory_bytes();
  }
  void shrink() {
    window_.shrink_to_fit();
    overflow_.shrink();
  }

 private:
  bool in_window(std::int64_t id) const {
    return id >= base_ && id - base_ < static_cast<std::int64_t>(window_.size());
  }

  std::int64_t base_ = 0;
  std::vector<Entry> window_;  // [base_, base_ + size()); absent slots have packed == 0
  std::size_t dense_ = 0;      // present slots of the window
  FlatMap<std::int64_t, Entry> overflow_;
};

struct OpenAppeal {
  std::int64_t opened_at = 0;
  std::uint64_t packed = 0;  // opened message << 1 | kind
  static OpenAppeal make(std::int64_t opened_at, std::int64_t message, AppealKind kind) {
    return {opened_at,
            (static_cast<std::uint64_t>(message) << 1) | static_cast<std::uint64_t>(kind)};
  }
  std::int64_t message() const { return static_cast<std::int64_t>(packed >> 1); }
  AppealKind kind() const { return static_cast<AppealKind>(packed & 1); }
};

// PairState flags.
constexpr std::uint8_t kOpen = 1;      // the fold ends with an open appeal
constexpr std::uint8_t kSeen = 2;      // the pair has appealed (the next opening is a follow-up)
constexpr std::uint8_t kBaseSeen = 4;  // it had appealed before its first retained message
constexpr std::uint8_t kBaseOpen = 8;  // an appeal was open at its first retained message

/// A pair's fold: where it ends (for the next in-order step) and its retained chain.
/// The base (before the chain) lives in the flags and, when an appeal spans it, in
/// Conversation::base_open.
struct PairState {
  OpenAppeal open;        // valid with kOpen
  std::int64_t last = 0;  // newest acting message, 0: none retained
  std::uint8_t flags = 0;
};

/// A message acting on a pair, as the fold sees it.
struct Act {
  std::int64_t id = 0;
  std::int64_t time = 0;
  std::int64_t author = 0;
  bool answer = false;
  std::int32_t account = kUnknownAccount;  // the responder's account, when already known
};

struct Fold {
  bool open = false;
  bool seen = false;
  std::int64_t opened_at = 0;
  std::int64_t opened_message = 0;
  AppealKind kind = AppealKind::first;
};

/// Members whose thread is a missing message id: direct replies to it, and replies to
/// those (deep). When the message arrives they take its thread.
struct Pending {
  std::vector<std::int64_t> direct;
  std::vector<std::int64_t> deep;
};

constexpr std::uint32_t kPairingMagic = 0x52575032;  // "RWP2"
constexpr std::uint32_t kPairingVersion = 2;

}  // namespace

struct Pairing::Conversation {
  std::int64_t id = 0;
  Source source = Source::telegram;
  std::int32_t agency = -1;
  std::int64_t frontier = 0;  // the largest message id applied
  std::int64_t boundary = 0;  // messages below this id are forgotten
  std::int64_t clock = kNoClock;
  std::int64_t forgot_at = kNoClock;  // the cutoff of the last forgetting pass
  IdSet ids;                          // every message id ever applied (or recorded as too old)
  IdSet deleted;                      // ids named by deletions
  IdSet forgotten_roots;              // forgotten messages whose replies pair exactly without them
  MessageTable messages;
  FlatMap<PairKey, PairState> pairs;       // (citizen, thread)
  FlatMap<PairKey, OpenAppeal> base_open;  // appeals open across a pair's base
  FlatMap<PairKey, Empty> seen_only;       // pairs whose only remaining state is "appealed"
  std::unordered_map<std::int64_t, Pending> pending;
};

namespace {

using Conv = Pairing::Conversation;

}  // namespace

/// Buffers the folds reuse from event to event: allocating them per event would cost
/// more than the fold itself.
struct Pairing::Scratch {
  std::vector<Act> acts;
  std::vector<Appeal> before, after;
};

namespace {

/// The rule machinery over one conversation; short-lived, one per call.
class Folder {
 public:
  Folder(const Registry& registry, AppealSink& sink, PairingCounters& counters, Conv& c,
         Pairing::Scratch& scratch)
      : registry_(registry),
        sink_(sink),
        counters_(counters),
        c_(c),
        horizon_(registry.horizon_secs),
        acts_(scratch.acts),
        before_(scratch.before),
        after_(scratch.after) {}

  AuthorClass classify(const Event& e, std::int32_t& account) const {
    account = -1;
    if (e.kind == EventKind::service) return AuthorClass::service;
    const AccountLookup found = registry_.lookup_account(e.source, e.author);
    if (found.ignored) return AuthorClass::ignored;
    if (found.agency == c_.agency) {
      account = found.account;
      return AuthorClass::official;
    }
    // Anonymous admins post as the group itself.
    if (e.author == c_.id) return AuthorClass::official;
    if (found.agency != AccountLookup::kNone) return AuthorClass::foreign_official;
    if (e.author_hint == AuthorHint::bot) return AuthorClass::ignored;
    // A channel post mirrored into the group is never an appeal, whoever owns the channel.
    if (e.author_hint == AuthorHint::automatic_forward) return AuthorClass::ignored;
    if (e.author == 0) return AuthorClass::ignored;
    return AuthorClass::citizen;
  }

  /// Which pair a message of class `cls` by `author` acts on, given its parent. An official
  /// message that names the citizen it addresses (`addressee`) acts on that citizen's pair,
  /// whatever it replies to.
  std::int64_t target_of(AuthorClass cls, std::int64_t author, const Entry* parent,
                         std::int64_t addressee = 0) const {
    if (cls == AuthorClass::official && addressee != 0) return addressee;
    if (cls == AuthorClass::citizen) {
      if (parent && parent->cls() == AuthorClass::citizen && parent->author != author &&
          registry_.citizen_replies_to_citizens == CitizenReplies::ignore) {
        return 0;  // a reply to another citizen
      }
      return author;
    }
    if (cls == AuthorClass::official && parent && parent->cls() == AuthorClass::citizen) {
      return parent->author;
    }
    return 0;
  }

  // ---- chains: a pair's acting messages, newest first through Entry::prev ----

  const Entry* entry(std::int64_t id) const {
    return id >= c_.boundary && id != 0 ? c_.messages.find(id) : nullptr;
  }
  Entry* entry(std::int64_t id) {
    return id >= c_.boundary && id != 0 ? c_.messages.find(id) : nullptr;
  }

  Act act_of(std::int64_t id, const Entry& e) const {
    return {id, e.time(), e.author, e.cls() == AuthorClass::official};
  }

  /// The retained chain of a pair, oldest first.
  void collect(const PairState& st, std::vector<Act>& out) const {
    out.clear();
    for (std::int64_t id = st.last; const Entry* e = entry(id); id = e->prev)
      out.push_back(act_of(id, *e));
    std::reverse(out.begin(), out.end());
  }

  void chain_insert(PairState& st, std::int64_t id, Entry* e = nullptr) {
    if (!e) e = entry(id);
    if (st.last < id) {
      e->prev = st.last;  // 0, or a retained message (forgetting clears it otherwise)
      st.last = id;
      return;
    }
    // Walk back to the newest member older than `id`.
    Entry* after = entry(st.last);
    while (after) {
      Entry* before = entry(after->prev);
      if (!before || after->prev < id) break;
      after = before;
    }
    e->prev = after && entry(after->prev) ? after->prev : 0;
    if (after) after->prev = id;
  }

  void chain_remove(PairState& st, std::int64_t id) {
    Entry* e = entry(id);
    const std::int64_t prev = e && entry(e->prev) ? e->prev : 0;
    if (st.last == id) {
      st.last = prev;
      return;
    }
    for (Entry* cur = entry(st.last); cur; cur = entry(cur->prev)) {
      if (cur->prev == id) {
        cur->prev = prev;
        return;
      }
    }
  }

  // ---- the fold ----

  Fold base_of(const PairKey& key, const PairState& st) const {
    Fold f;
    f.seen = (st.flags & kBaseSeen) != 0;
    if (st.flags & kBaseOpen) {
      if (const OpenAppeal* o = c_.base_open.find(key)) {
        f.open = true;
        f.opened_at = o->opened_at;
        f.opened_message = o->message();
        f.kind = o->kind();
      }
    }
    return f;
  }

  static Fold current_of(const PairState& st) {
    Fold f;
    f.seen = (st.flags & kSeen) != 0;
    if (st.flags & kOpen) {
      f.open = true;
      f.opened_at = st.open.opened_at;
      f.opened_message = st.open.message();
      f.kind = st.open.kind();
    }
    return f;
  }

  static void set_current(PairState& st, const Fold& f) {
    st.flags = static_cast<std::uint8_t>(st.flags & ~(kOpen | kSeen));
    if (f.seen) st.flags |= kSeen;
    if (f.open) {
      st.flags |= kOpen;
      st.open = OpenAppeal::make(f.opened_at, f.opened_message, f.kind);
    }
  }

  Appeal record(const PairKey& key, const Fold& f, AppealStatus status) const {
    Appeal a;
    a.conversation = c_.id;
    a.source = c_.source;
    a.agency = c_.agency;
    a.citizen = key.a;
    a.thread = key.b;
    a.opened_at = f.opened_at;
    a.opened_message = f.opened_message;
    a.kind = f.kind;
    a.status = status;
    // A deletion withdraws the appeal its message opened, unless it was answered.
    if (status != AppealStatus::answered && c_.deleted.contains(f.opened_message)) {
      a.status = AppealStatus::withdrawn;
    }
    return a;
  }

  Appeal answered(const PairKey& key, const Fold& f, const Act& answer) const {
    Appeal a = record(key, f, AppealStatus::answered);
    a.answer_message = answer.id;
    a.answered_at = answer.time;
    a.responder = answer.author;
    if (answer.account != kUnknownAccount) {
      a.responder_account = answer.account;
    } else {
      const AccountLookup found = registry_.lookup_account(c_.source, answer.author);
      a.responder_account = found.agency == c_.agency ? found.account : -1;
    }
    // Message order is authoritative; a clock that runs backwards yields 0, not a negative time.
    a.reply_seconds = std::max<std::int64_t>(0, answer.time - f.opened_at);
    const auto& calendar = registry_.agencies[static_cast<std::size_t>(c_.agency)].calendar;
    a.business_reply_seconds =
        calendar ? calendar->business_seconds(f.opened_at, std::max(answer.time, f.opened_at))
                 : a.reply_seconds;
    return a;
  }

  bool expired(std::int64_t opened_at, std::int64_t clock) const {
    return clock != Pairing::kNoClock && clock > opened_at + horizon_;
  }

  /// Folds `acts` onto `s`; appends the appeals it decides, then the one left open.
  void fold(const PairKey& key, Fold s, const std::vector<Act>& acts, std::vector<Appeal>* out,
            Fold* end) const {
    for (const Act& act : acts) {
      if (!act.answer) {
        if (s.open && act.time <= s.opened_at + horizon_) continue;  // joins the open appeal
        if (s.open && out) out->push_back(record(key, s, AppealStatus::unanswered));
        s.open = true;
        s.opened_at = act.time;
        s.opened_message = act.id;
        s.kind = s.seen ? AppealKind::followup : AppealKind::first;
        s.seen = true;
      } else if (s.open) {
        if (out) {
          out->push_back(act.time > s.opened_at + horizon_
                             ? record(key, s, AppealStatus::unanswered)  // after the horizon
                             : answered(key, s, act));
        }
        s.open = false;
      }
    }
    if (s.open && out) {
      out->push_back(record(
          key, s, expired(s.opened_at, c_.clock) ? AppealStatus::unanswered : AppealStatus::open));
    }
    if (end) *end = s;
  }

  /// Every appeal of a pair, from its base over its retained chain.
  void records_of(const PairKey& key, std::vector<Appeal>& out, Fold* end = nullptr) {
    const PairState* st = c_.pairs.find(key);
    if (!st) {
      if (end) *end = Fold{};
      return;
    }
    collect(*st, acts_);
    fold(key, base_of(key, *st), acts_, &out, end);
  }

  /// The pair's state, created on first use (remembering whether it appealed before).
  PairState& pair(const PairKey& key) {
    auto [st, inserted] = c_.pairs.try_emplace(key, PairState{});
    if (inserted && c_.seen_only.erase(key)) st->flags = kSeen | kBaseSeen;
    return *st;
  }

  /// Tells the sink how `after` differs from `before` (both about the same pairs).
  void emit(std::vector<Appeal>& before, std::vector<Appeal>& after) {
    auto by_id = [](const Appeal& x, const Appeal& y) {
      return x.opened_message < y.opened_message;
    };
    std::sort(before.begin(), before.end(), by_id);
    std::sort(after.begin(), after.end(), by_id);
    std::size_t i = 0, j = 0;
    while (i < before.size() || j < after.size()) {
      if (j == after.size() ||
          (i < before.size() && before[i].opened_message < after[j].opened_message)) {
        sink_.on_appeal(&before[i++], nullptr);
      } else if (i == before.size() || after[j].opened_message < before[i].opened_message) {
        sink_.on_appeal(nullptr, &after[j++]);
      } else {
        if (!same_outcome(before[i], after[j])) sink_.on_appeal(&before[i], &after[j]);
        ++i;
        ++j;
      }
    }
  }

  // ---- applying a message ----

  struct Derived {
    std::int64_t thread = 0;
    std::int64_t target = 0;
    bool pending = false;  // inherits a missing thread that may still arrive
    bool orphan = false;   // replies to a missing message that may still arrive
    bool parent_forgotten = false;
  };

  Derived derive(std::int64_t id, std::int64_t reply_to, AuthorClass cls, std::int64_t author,
                 std::int64_t addressee) const {
    Derived d;
    const Entry* parent = nullptr;
    if (reply_to == 0) {
      d.thread = id;
    } else if (reply_to < id && (parent = entry(reply_to))) {
      d.thread = parent->thread;
      d.pending = parent->pending();
    } else {
      // A parent not in the data (or not earlier than the reply): its id is the thread.
      d.thread = reply_to;
      if (reply_to < id) {
        const bool gone = reply_to < c_.boundary || c_.ids.contains(reply_to);
        if (!gone) {
          d.orphan = d.pending = true;
        } else if (!c_.forgotten_roots.contains(reply_to)) {
          d.parent_forgotten = true;
        }
      }
    }
    d.target = target_of(cls, author, parent, addressee);
    return d;
  }

  Applied apply(const Event& e) {
    std::int32_t account = -1;
    const AuthorClass cls = classify(e, account);
    const Derived d = derive(e.message_id, e.reply_to, cls, e.author, e.addressee);
    if (cls == AuthorClass::citizen && d.target == 0) ++counters_.citizen_to_citizen;
    Entry en;
    en.thread = d.thread;
    en.author = e.author;
    en.target = d.target;
    en.packed = Entry::pack(e.time, cls, d.pending);
    Entry* stored = c_.messages.try_emplace(e.message_id, en).first;
    const bool in_order = e.message_id > c_.frontier;
    c_.frontier = std::max(c_.frontier, e.message_id);
    if (in_order) {
      register_pending(e.message_id, e.reply_to, d);
      if (d.target != 0) step({d.target, d.thread}, e.message_id, stored, account);
    } else {
      repair(e.message_id, e.reply_to, d);
    }
    if (d.parent_forgotten) {
      ++counters_.parent_forgotten;
      return Applied::parent_forgotten;
    }
    if (!in_order) ++counters_.repaired;
    return in_order ? Applied::paired : Applied::repaired;
  }

  void register_pending(std::int64_t id, std::int64_t reply_to, const Derived& d) {
    if (d.orphan) {
      c_.pending[reply_to].direct.push_back(id);
    } else if (d.pending) {
      c_.pending[d.thread].deep.push_back(id);
    }
  }

  /// In message order: one step of one pair's fold.
  void step(const PairKey& key, std::int64_t id, Entry* e, std::int32_t account) {
    PairState& st = pair(key);
    Fold s = current_of(st);
    Act act = act_of(id, *e);
    act.account = account;
    // The common steps that change no appeal: a message joining the open appeal, an
    // official reply with none open. Only the chain grows.
    const bool joins = !act.answer && s.open && act.time <= s.opened_at + horizon_;
    if (joins || (act.answer && !s.open)) {
      chain_insert(st, id, e);
      return;
    }
    before_.clear();
    after_.clear();
    acts_.clear();
    if (s.open) fold(key, s, acts_, &before_, nullptr);
    acts_.push_back(act);
    Fold end;
    fold(key, s, acts_, &after_, &end);
    chain_insert(st, id, e);
    set_current(st, end);
    emit(before_, after_);
  }

  /// Behind later messages: re-derive what hangs on this one and refold every pair touched.
  void repair(std::int64_t id, std::int64_t reply_to, const Derived& d) {
    struct Change {
      std::int64_t id;
      PairKey from, to;  // target 0: acts on no pair
      bool pending;
    };
    std::vector<Change> changes;
    std::vector<PairKey> touched;
    auto touch = [&](const PairKey& k) {
      if (k.a != 0 && std::find(touched.begin(), touched.end(), k) == touched.end())
        touched.push_back(k);
    };
    if (d.target != 0) touch({d.target, d.thread});

    Pending members;
    if (auto it = c_.pending.find(id); it != c_.pending.end()) {
      members = std::move(it->second);
      c_.pending.erase(it);
    }
    const Entry* self = entry(id);
    for (const auto* list : {&members.direct, &members.deep}) {
      const bool direct = list == &members.direct;
      for (const std::int64_t m : *list) {
        const Entry* en = entry(m);
        if (!en || !en->pending()) continue;
        Change ch{m, {en->target, en->thread}, {en->target, d.thread}, d.pending};
        // A direct reply waited for this parent, so an official one acting on a pair
        // already got it from its addressee, which the parent does not change.
        const bool addressed = en->cls() == AuthorClass::official && en->target != 0;
        if (direct && !addressed) ch.to.a = target_of(en->cls(), en->author, self);
        changes.push_back(ch);
        if (!(ch.from == ch.to)) {
          touch(ch.from);
          touch(ch.to);
        }
      }
    }

    before_.clear();
    for (const PairKey& k : touched) records_of(k, before_);

    for (const Change& ch : changes) {
      Entry* en = entry(ch.id);
      if (!(ch.from == ch.to)) {
        if (ch.from.a != 0) {
          if (PairState* st = c_.pairs.find(ch.from)) chain_remove(*st, ch.id);
        }
        if (en->cls() == AuthorClass::citizen) {
          if (ch.from.a == 0 && ch.to.a != 0) --counters_.citizen_to_citizen;
          if (ch.from.a != 0 && ch.to.a == 0) ++counters_.citizen_to_citizen;
        }
        en = entry(ch.id);
        en->thread = ch.to.b;
        en->target = ch.to.a;
        if (ch.to.a != 0) chain_insert(pair(ch.to), ch.id);
        en = entry(ch.id);
      }
      en->set_pending(ch.pending);
      if (ch.pending) c_.pending[d.thread].deep.push_back(ch.id);
    }
    if (d.target != 0) chain_insert(pair({d.target, d.thread}), id);
    register_pending(id, reply_to, d);

    after_.clear();
    for (const PairKey& k : touched) {
      Fold end;
      records_of(k, after_, &end);
      if (PairState* st = c_.pairs.find(k)) set_current(*st, end);
    }
    emit(before_, after_);
  }

  /// A deletion: the appeal its message opened, if unanswered, is withdrawn.
  void remove(std::int64_t id) {
    if (c_.deleted.contains(id)) return;
    const Entry* en = entry(id);
    std::vector<PairKey> keys;
    if (en && en->cls() == AuthorClass::citizen && en->target != 0) {
      keys.push_back({en->target, en->thread});
    } else if (id < c_.boundary || (c_.ids.contains(id) && !en)) {
      // Forgotten: an appeal still open across a pair's base may be the one.
      c_.base_open.for_each([&](const PairKey& k, const OpenAppeal& o) {
        if (o.message() == id) keys.push_back(k);
      });
      if (keys.empty()) {
        c_.deleted.insert(id);
        sink_.on_forgotten_deletion(c_.source, c_.id, id);
        return;
      }
    }
    before_.clear();
    for (const PairKey& k : keys) records_of(k, before_);
    c_.deleted.insert(id);
    after_.clear();
    for (const PairKey& k : keys) records_of(k, after_);
    emit(before_, after_);
  }

  /// The clock moved to `clock`: appeals past their horizon are unanswered now.
  void expire(std::int64_t previous, std::int64_t clock) {
    before_.clear();
    after_.clear();
    c_.pairs.for_each([&](const PairKey& key, const PairState& st) {
      if (!(st.flags & kOpen)) return;
      const std::int64_t at = st.open.opened_at;
      if (!expired(at, clock) || expired(at, previous)) return;
      if (c_.deleted.contains(st.open.message())) return;  // withdrawn either way
      Fold f = current_of(st);
      before_.push_back(record(key, f, AppealStatus::open));
      after_.push_back(record(key, f, AppealStatus::unanswered));
    });
    for (std::size_t i = 0; i < before_.size(); ++i) sink_.on_appeal(&before_[i], &after_[i]);
  }

  /// Forgets thread details of messages older than `cutoff` (as an id prefix, so each
  /// pair's base stays a prefix of its fold) and pairs no message can change any more.
  void forget(std::int64_t cutoff) {
    std::int64_t bound = c_.frontier + 1;
    c_.messages.for_each([&](std::int64_t id, const Entry& e) {
      if (e.time() >= cutoff) bound = std::min(bound, id);
    });
    if (bound <= c_.boundary) return;

    std::vector<PairKey> drop;
    std::vector<std::pair<PairKey, Fold>> rebased;
    c_.pairs.for_each([&](const PairKey& key, const PairState& st) {
      collect(st, acts_);
      std::size_t n = 0;
      while (n < acts_.size() && acts_[n].id < bound) ++n;
      if (n > 0) {
        Fold base;
        acts_.resize(n);
        fold(key, base_of(key, st), acts_, nullptr, &base);
        rebased.emplace_back(key, base);
      }
    });
    for (const auto& [key, base] : rebased) {
      PairState* st = c_.pairs.find(key);
      st->flags = static_cast<std::uint8_t>(st->flags & ~(kBaseSeen | kBaseOpen));
      if (base.seen) st->flags |= kBaseSeen;
      c_.base_open.erase(key);
      if (base.open) {
        st->flags |= kBaseOpen;
        c_.base_open.try_emplace(key,
                                 OpenAppeal::make(base.opened_at, base.opened_message, base.kind));
      }
      if (st->last < bound) st->last = 0;
    }
    c_.pairs.for_each([&](const PairKey& key, const PairState& st) {
      if (st.last != 0) return;
      // Nothing retained acts on it: keep it only while an open appeal could still be answered.
      const OpenAppeal* open = (st.flags & kBaseOpen) ? c_.base_open.find(key) : nullptr;
      if (open && !(open->opened_at + horizon_ < cutoff)) return;
      drop.push_back(key);
    });
    for (const PairKey& key : drop) {
      if (c_.pairs.find(key)->flags & kBaseSeen) c_.seen_only.try_emplace(key, Empty{});
      c_.pairs.erase(key);
      c_.base_open.erase(key);
    }

    std::vector<std::int64_t> old;
    c_.messages.for_each([&](std::int64_t id, const Entry& e) {
      if (id >= bound) return;
      old.push_back(id);
      // A reply to it later pairs exactly without it: a root that is no citizen's message.
      if (e.thread == id && e.cls() != AuthorClass::citizen) c_.forgotten_roots.insert(id);
    });
    c_.messages.erase_below(bound);
    // One past the last id forgotten, not `bound`: ids between were never seen, and such
    // a message arriving later still pairs exactly (no base holds anything after it).
    if (!old.empty()) c_.boundary = *std::max_element(old.begin(), old.end()) + 1;
    bound = c_.boundary;

    for (auto it = c_.pending.begin(); it != c_.pending.end();) {
      auto gone = [&](std::int64_t id) { return id < bound; };
      auto& p = it->second;
      p.direct.erase(std::remove_if(p.direct.begin(), p.direct.end(), gone), p.direct.end());
      p.deep.erase(std::remove_if(p.deep.begin(), p.deep.end(), gone), p.deep.end());
      // A missing message below the boundary can no longer arrive to be paired.
      if (it->first < bound || (p.direct.empty() && p.deep.empty())) {
        for (const auto* list : {&p.direct, &p.deep}) {
          for (const std::int64_t id : *list) {
            if (Entry* e = entry(id)) e->set_pending(false);
          }
        }
        it = c_.pending.erase(it);
      } else {
        ++it;
      }
    }
    c_.ids.optimize();
    c_.forgotten_roots.optimize();
    // Tables never shrink by themselves: give back what the forgotten entries held.
    c_.messages.shrink();
    c_.pairs.shrink();
    c_.base_open.shrink();
  }

  /// A message that arrived too late to pair: the missing-parent threads waiting for it
  /// keep its id for good.
  void settle_pending(std::int64_t id) {
    const auto it = c_.pending.find(id);
    if (it == c_.pending.end()) return;
    for (const auto* list : {&it->second.direct, &it->second.deep}) {
      for (const std::int64_t m : *list) {
        if (Entry* e = entry(m)) e->set_pending(false);
      }
    }
    c_.pending.erase(it);
  }

 private:
  const Registry& registry_;
  AppealSink& sink_;
  PairingCounters& counters_;
  Conv& c_;
  std::int64_t horizon_;
  std::vector<Act>& acts_;
  std::vector<Appeal>& before_;
  std::vector<Appeal>& after_;
};

}  // namespace

Pairing::Pairing(std::shared_ptr<const Registry> registry, AppealSink& sink)
    : registry_(std::move(registry)), sink_(sink), scratch_(std::make_unique<Scratch>()) {}

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
    const auto* from =
        migrated_from_.find(PairKey{static_cast<std::int64_t>(source), conversation});
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

Applied Pairing::on_event(const Event& e) {
  ++counters_.events;
  Conversation* c = conversation_for(e);
  if (!c || c->agency < 0) {
    ++counters_.unowned;
    return Applied::unowned;
  }
  Folder folder(*registry_, sink_, counters_, *c, *scratch_);
  if (e.kind == EventKind::edit) {
    ++counters_.edits;
    return Applied::edit;
  }
  if (e.kind == EventKind::remove) {
    ++counters_.removals;
    folder.remove(e.message_id);
    return Applied::deletion;
  }
  if (!c->ids.insert(e.message_id)) {
    ++counters_.duplicates;
    return Applied::duplicate;
  }
  const bool too_old = e.message_id < c->boundary ||
                       (retention_ > 0 && c->clock != kNoClock && e.time < c->clock - retention_);
  if (too_old) {
    ++counters_.before_retention;
    folder.settle_pending(e.message_id);
    return Applied::before_retention;
  }
  return folder.apply(e);
}

void Pairing::advance(const std::function<std::int64_t(Source, std::int64_t)>& clock_of) {
  for (auto& conv : conversations_) {
    Conversation& c = *conv;
    const std::int64_t clock = clock_of(c.source, c.id);
    if (clock == kNoClock) continue;
    Folder folder(*registry_, sink_, counters_, c, *scratch_);
    if (clock > c.clock) {
      const std::int64_t previous = c.clock;
      c.clock = clock;
      if (c.agency >= 0) folder.expire(previous, clock);
    }
    // Forgetting in steps of a few minutes keeps its full passes rare.
    if (retention_ > 0 && c.clock != kNoClock) {
      const std::int64_t cutoff = c.clock - retention_;
      if (c.forgot_at == kNoClock || cutoff - c.forgot_at >= 300) {
        folder.forget(cutoff);
        c.forgot_at = cutoff;
      }
    }
  }
}

std::int64_t Pairing::clock(Source source, std::int64_t conversation) const {
  const auto* found = index_.find(PairKey{static_cast<std::int64_t>(source), conversation});
  return found ? conversations_[*found]->clock : kNoClock;
}

void Pairing::visit_open(void (*f)(void*, const Appeal&), void* ctx) const {
  for (const auto& conv : conversations_) {
    const Conversation& c = *conv;
    if (c.agency < 0) continue;  // no longer owned after a reload
    c.pairs.for_each([&](const PairKey& key, const PairState& st) {
      if (!(st.flags & kOpen)) return;
      if (c.clock != kNoClock && c.clock > st.open.opened_at + registry_->horizon_secs) return;
      if (c.deleted.contains(st.open.message())) return;
      Appeal a;
      a.conversation = c.id;
      a.source = c.source;
      a.agency = c.agency;
      a.citizen = key.a;
      a.thread = key.b;
      a.opened_at = st.open.opened_at;
      a.opened_message = st.open.message();
      a.kind = st.open.kind();
      f(ctx, a);
    });
  }
}

std::size_t Pairing::open_appeals() const {
  std::size_t n = 0;
  for_each_open([&](const Appeal&) { ++n; });
  return n;
}

std::uint64_t Pairing::retained_messages() const {
  std::uint64_t n = 0;
  for (const auto& c : conversations_) n += c->messages.size();
  return n;
}

Pairing::Memory Pairing::memory() const {
  Memory m;
  m.other = index_.memory_bytes() + migrated_from_.memory_bytes() +
            conversations_.capacity() * sizeof(void*);
  for (const auto& c : conversations_) {
    m.ids += c->ids.memory_bytes() + c->deleted.memory_bytes() + c->forgotten_roots.memory_bytes();
    m.messages += c->messages.memory_bytes();
    m.appeals +=
        c->pairs.memory_bytes() + c->base_open.memory_bytes() + c->seen_only.memory_bytes();
    m.other += sizeof(Conversation);
    for (const auto& [id, p] : c->pending) {
      m.other += 48 + (p.direct.capacity() + p.deep.capacity()) * sizeof(std::int64_t);
    }
  }
  return m;
}

void Pairing::set_registry(std::shared_ptr<const Registry> registry) {
  registry_ = std::move(registry);
  for (auto& c : conversations_) c->agency = owner(c->source, c->id);
  // Conversations first seen after the reload are looked up as usual; the cached
  // pointer may refer to a conversation whose owner just changed, which is fine.
}

// ---- snapshot ----
//
// Version 2, little endian: magic, version, counters, migrations, then per
// conversation: id, source, frontier, boundary, clock, forgot_at, the three id sets,
// messages, pairs, base-open appeals, seen-only pairs, pending threads.

void Pairing::serialize(std::string& out) const {
  BinaryWriter w(out);
  w.put(kPairingMagic);
  w.put(kPairingVersion);
  for (const std::uint64_t v :
       {counters_.events, counters_.duplicates, counters_.unowned, counters_.edits,
        counters_.removals, counters_.citizen_to_citizen, counters_.repaired,
        counters_.parent_forgotten, counters_.before_retention}) {
    w.put(v);
  }
  w.put(static_cast<std::uint64_t>(migrated_from_.size()));
  migrated_from_.for_each([&](const PairKey& k, std::int64_t from) {
    w.put(k.a);
    w.put(k.b);
    w.put(from);
  });
  w.put(static_cast<std::uint64_t>(conversations_.size()));
  for (const auto& conv : conversations_) {
    const Conversation& c = *conv;
    w.put(c.id);
    w.put(c.source);
    w.put(c.frontier);
    w.put(c.boundary);
    w.put(c.clock);
    w.put(c.forgot_at);
    c.ids.serialize(out);
    c.deleted.serialize(out);
    c.forgotten_roots.serialize(out);
    w.put(static_cast<std::uint64_t>(c.messages.size()));
    c.messages.for_each([&](std::int64_t id, const Entry& e) {
      w.put(id);
      w.put(e.thread);
      w.put(e.author);
      w.put(e.target);
      w.put(e.prev);
      w.put(e.packed);
    });
    w.put(static_cast<std::uint64_t>(c.pairs.size()));
    c.pairs.for_each([&](const PairKey& k, const PairState& st) {
      w.put(k.a);
      w.put(k.b);
      w.put(st.open.opened_at);
      w.put(st.open.packed);
      w.put(st.last);
      w.put(st.flags);
    });
    w.put(static_cast<std::uint64_t>(c.base_open.size()));
    c.base_open.for_each([&](const PairKey& k, const OpenAppeal& o) {
      w.put(k.a);
      w.put(k.b);
      w.put(o.opened_at);
      w.put(o.packed);
    });
    w.put(static_cast<std::uint64_t>(c.seen_only.size()));
    c.seen_only.for_each([&](const PairKey& k, Empty) {
      w.put(k.a);
      w.put(k.b);
    });
    w.put(static_cast<std::uint64_t>(c.pending.size()));
    for (const auto& [missing, p] : c.pending) {
      w.put(missing);
      for (const auto* list : {&p.direct, &p.deep}) {
        w.put(static_cast<std::uint64_t>(list->size()));
        for (const std::int64_t id : *list) w.put(id);
      }
    }
  }
}

Result<void> Pairing::restore(std::string_view in) {
  index_.clear();
  conversations_.clear();
  migrated_from_.clear();
  last_ = nullptr;
  counters_ = {};
  BinaryReader r(in);
  std::uint32_t magic = 0, version = 0;
  if (!r.get(magic) || magic != kPairingMagic) {
    return make_error("pairing state: not a pairing snapshot (or one from before version 2)");
  }
  if (!r.get(version) || version != kPairingVersion) {
    return make_error("pairing state: unsupported version " + std::to_string(version));
  }
  auto damaged = [&](const std::string& what) {
    index_.clear();
    conversations_.clear();
    migrated_from_.clear();
    return make_error("pairing state: damaged " + what + " at byte " +
                      std::to_string(r.position()));
  };
  PairingCounters counters;
  for (std::uint64_t* v :
       {&counters.events, &counters.duplicates, &counters.unowned, &counters.edits,
        &counters.removals, &counters.citizen_to_citizen, &counters.repaired,
        &counters.parent_forgotten, &counters.before_retention}) {
    if (!r.get(*v)) return damaged("header");
  }
  std::uint64_t n = 0;
  if (!r.get_count(n, 24)) return damaged("migrations");
  for (std::uint64_t i = 0; i < n; ++i) {
    PairKey k;
    std::int64_t from = 0;
    if (!r.get(k.a) || !r.get(k.b) || !r.get(from)) return damaged("migrations");
    migrated_from_.try_emplace(k, from);
  }
  if (!r.get_count(n, 41)) return damaged("conversation count");
  for (std::uint64_t i = 0; i < n; ++i) {
    auto c = std::make_unique<Conversation>();
    if (!r.get(c->id) || !r.get(c->source) ||
        static_cast<std::uint8_t>(c->source) > static_cast<std::uint8_t>(Source::x) ||
        !r.get(c->frontier) || !r.get(c->boundary) || !r.get(c->clock) || !r.get(c->forgot_at)) {
      return damaged("conversation");
    }
    std::string_view rest = r.rest();
    const std::size_t before = rest.size();
    for (IdSet* set : {&c->ids, &c->deleted, &c->forgotten_roots}) {
      auto read = IdSet::deserialize(rest);
      if (!read) return damaged(read.error().message);
      *set = std::move(*read);
    }
    r.skip(before - rest.size());
    std::uint64_t m = 0;
    if (!r.get_count(m, 48)) return damaged("messages");
    for (std::uint64_t k = 0; k < m; ++k) {
      std::int64_t id = 0;
      Entry e;
      if (!r.get(id) || !r.get(e.thread) || !r.get(e.author) || !r.get(e.target) ||
          !r.get(e.prev) || !r.get(e.packed) ||
          (e.packed & kClassMask) > static_cast<std::uint64_t>(AuthorClass::service)) {
        return damaged("message");
      }
      c->messages.try_emplace(id, e);
    }
    if (!r.get_count(m, 41)) return damaged("pairs");
    for (std::uint64_t k = 0; k < m; ++k) {
      PairKey key;
      PairState st;
      if (!r.get(key.a) || !r.get(key.b) || !r.get(st.open.opened_at) || !r.get(st.open.packed) ||
          !r.get(st.last) || !r.get(st.flags) || st.flags > 15) {
        return damaged("pair");
      }
      c->pairs.try_emplace(key, st);
    }
    if (!r.get_count(m, 32)) return damaged("open bases");
    for (std::uint64_t k = 0; k < m; ++k) {
      PairKey key;
      OpenAppeal o;
      if (!r.get(key.a) || !r.get(key.b) || !r.get(o.opened_at) || !r.get(o.packed)) {
        return damaged("open base");
      }
      c->base_open.try_emplace(key, o);
    }
    if (!r.get_count(m, 16)) return damaged("appeal history");
    for (std::uint64_t k = 0; k < m; ++k) {
      PairKey key;
      if (!r.get(key.a) || !r.get(key.b)) return damaged("appeal history");
      c->seen_only.try_emplace(key, Empty{});
    }
    if (!r.get_count(m, 24)) return damaged("pending threads");
    for (std::uint64_t k = 0; k < m; ++k) {
      std::int64_t missing = 0;
      if (!r.get(missing)) return damaged("pending thread");
      Pending& p = c->pending[missing];
      for (auto* list : {&p.direct, &p.deep}) {
        std::uint64_t count = 0;
        if (!r.get_count(count, 8)) return damaged("pending thread");
        list->resize(static_cast<std::size_t>(count));
        for (auto& id : *list) {
          if (!r.get(id)) return damaged("pending thread");
        }
      }
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
