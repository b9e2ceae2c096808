// The pairing engine: turns normalized events into appeals and their first
// official answers. Its appeals are a function of the *set* of events received
// and of each conversation's clock: any order, any duplicates, any split into
// batches gives the same appeals as the events sorted by message id. Events that
// arrive out of order re-pair the threads they touch and report the corrections.
// State is kept per conversation only, so conversation-keyed partitions can
// split the work; nothing here reads another conversation.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "pipeline/error.hpp"
#include "pipeline/event.hpp"
#include "pipeline/registry.hpp"

namespace replywatch::pipeline {

enum class AppealKind : std::uint8_t { first, followup };
enum class AppealStatus : std::uint8_t { open, answered, unanswered, withdrawn };

std::string_view to_string(AppealKind k);
std::string_view to_string(AppealStatus s);

/// One appeal. Its identity is (source, conversation, opened_message): the message
/// that opened it; every other field is what the rules say about it now.
struct Appeal {
  std::int64_t conversation = 0;
  std::int64_t thread = 0;
  std::int64_t citizen = 0;
  std::int64_t opened_message = 0;
  std::int64_t opened_at = 0;
  // Set when answered.
  std::int64_t answer_message = 0;
  std::int64_t answered_at = 0;
  std::int64_t responder = 0;
  std::int64_t reply_seconds = 0;
  std::int64_t business_reply_seconds = 0;
  std::int32_t agency = -1;
  std::int32_t responder_account = -1;  // index in the agency's accounts; -1: the conversation
  Source source = Source::telegram;
  AppealKind kind = AppealKind::first;
  AppealStatus status = AppealStatus::open;
};

/// The same appeal (identity), whatever its status.
inline bool same_appeal(const Appeal& a, const Appeal& b) {
  return a.source == b.source && a.conversation == b.conversation &&
         a.opened_message == b.opened_message;
}
/// An appeal's identity as a hash key (FlatMap): the message that opened it.
struct AppealId {
  std::int64_t conversation = 0;
  std::int64_t message = 0;
  Source source = Source::telegram;
  friend bool operator==(const AppealId&, const AppealId&) = default;
  friend auto operator<=>(const AppealId&, const AppealId&) = default;
  static AppealId of(const Appeal& a) { return {a.conversation, a.opened_message, a.source}; }
  static constexpr AppealId flat_empty() {
    return {std::numeric_limits<std::int64_t>::min(), 0, Source::telegram};
  }
};
struct AppealIdHash {
  std::uint64_t operator()(const AppealId& id) const {
    return mix_hash(static_cast<std::uint64_t>(id.conversation) * 0xC2B2AE3D27D4EB4Full ^
                    static_cast<std::uint64_t>(id.message) ^
                    (static_cast<std::uint64_t>(id.source) << 59));
  }
};

/// Everything the rules decide (the responder's account index is a registry lookup,
/// not a rule, and is left out).
bool same_outcome(const Appeal& a, const Appeal& b);

/// The time an appeal's status was decided: answered_at, the end of the horizon for
/// an unanswered one, the opening for the others.
std::int64_t decided_at(const Appeal& a, std::int64_t horizon_secs);

/// Receives every change to the set of appeals. The appeals a sink has been told of
/// are at every moment exactly the rules applied to the events applied so far.
class AppealSink {
 public:
  virtual ~AppealSink() = default;
  /// `before` null: a new appeal. `after` null: an appeal that no longer exists (a late
  /// message re-paired its thread). Both: the same appeal (same_appeal) changed.
  virtual void on_appeal(const Appeal* before, const Appeal* after) = 0;
  /// A deletion named a message whose thread state is forgotten: if it opened an
  /// appeal the sink still holds, and that appeal is not answered, it is withdrawn.
  virtual void on_forgotten_deletion(Source source, std::int64_t conversation,
                                     std::int64_t message) {
    (void)source;
    (void)conversation;
    (void)message;
  }
};

/// How the engine classified an author within one conversation.
enum class AuthorClass : std::uint8_t { citizen, official, foreign_official, ignored, service };

/// What one event did.
enum class Applied : std::uint8_t {
  paired,            // applied in message order
  repaired,          // applied behind later messages of its conversation: threads re-paired
  duplicate,         // already applied (message id seen before): changed nothing
  unowned,           // no agency owns the conversation
  edit,              // counted, never pairs
  deletion,          // recorded; withdraws the appeal the message opened, if unanswered
  parent_forgotten,  // paired, but its parent is forgotten: treated as missing (may differ
                     // from the rules)
  before_retention,  // older than the retained state: recorded as seen, not paired
};

struct PairingCounters {
  std::uint64_t events = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t unowned = 0;  // events of conversations no agency owns
  std::uint64_t edits = 0;
  std::uint64_t removals = 0;
  std::uint64_t citizen_to_citizen = 0;  // replies ignored under citizen_replies_to_citizens
  std::uint64_t repaired = 0;
  std::uint64_t parent_forgotten = 0;
  std::uint64_t before_retention = 0;
};

class Pairing {
 public:
  static constexpr std::int64_t kNoClock = std::numeric_limits<std::int64_t>::min();

  Pairing(std::shared_ptr<const Registry> registry, AppealSink& sink);
  ~Pairing();
  Pairing(const Pairing&) = delete;
  Pairing& operator=(const Pairing&) = delete;

  /// Any order; repeats of a (conversation, message id) change nothing.
  Applied on_event(const Event& event);

  /// Moves each conversation's clock forward to clock_of(source, conversation) (clocks
  /// never go back) and closes as unanswered every open appeal with clock > opened_at +
  /// horizon. Then, with a retention set, forgets what no message can change any more.
  void advance(const std::function<std::int64_t(Source, std::int64_t)>& clock_of);
  /// One clock for every conversation (replay).
  void expire(std::int64_t clock) {
    advance([clock](Source, std::int64_t) { return clock; });
  }
  /// The conversation's clock (kNoClock before the first advance, or unknown).
  std::int64_t clock(Source source, std::int64_t conversation) const;

  /// Thread details of messages older than clock − `secs` are forgotten at advance();
  /// a message that old arriving later is recorded, not paired (before_retention).
  /// 0 (the default) keeps everything.
  void set_retention(std::int64_t secs) { retention_ = secs; }

  /// Visits every appeal whose status is open.
  template <class F>
  void for_each_open(F&& f) const;

  std::size_t open_appeals() const;
  std::size_t conversations() const { return conversations_.size(); }
  const PairingCounters& counters() const { return counters_; }
  const Registry& registry() const { return *registry_; }

  /// Bytes held by pairing state, for memory benchmarks.
  struct Memory {
    std::size_t ids = 0;       // the id record (every message ever applied)
    std::size_t messages = 0;  // retained thread details
    std::size_t appeals = 0;   // per (citizen, thread) fold state
    std::size_t other = 0;
    std::size_t total() const { return ids + messages + appeals + other; }
  };
  Memory memory() const;
  std::size_t memory_bytes() const { return memory().total(); }
  std::uint64_t retained_messages() const;

  /// A chat moved to a new id (a Telegram group became a supergroup): the new id
  /// belongs to whichever agency owns the old one.
  void add_migration(Source source, std::int64_t from, std::int64_t to);

  /// Configuration reload: conversations keep their state; ownership is looked
  /// up again (a conversation no agency owns any more stops pairing).
  void set_registry(std::shared_ptr<const Registry> registry);

  /// The whole state, for snapshots. restore() replaces the state; on an error the
  /// engine is left empty.
  void serialize(std::string& out) const;
  Result<void> restore(std::string_view in);

  struct Conversation;  // defined in pairing.cpp
  struct Scratch;

 private:
  Conversation* conversation_for(const Event& event);
  std::int32_t owner(Source source, std::int64_t conversation) const;
  void visit_open(void (*f)(void*, const Appeal&), void* ctx) const;

  std::shared_ptr<const Registry> registry_;
  AppealSink& sink_;
  std::int64_t retention_ = 0;
  FlatMap<PairKey, std::uint32_t> index_;         // (source, conversation) → conversations_
  FlatMap<PairKey, std::int64_t> migrated_from_;  // (source, new id) → old id
  std::vector<std::unique_ptr<Conversation>> conversations_;
  Conversation* last_ = nullptr;  // events come in runs of one conversation
  PairingCounters counters_;
  std::unique_ptr<Scratch> scratch_;
};

template <class F>
void Pairing::for_each_open(F&& f) const {
  using Fn = std::remove_reference_t<F>;
  visit_open([](void* ctx, const Appeal& a) { (*static_cast<Fn*>(ctx))(a); },
             const_cast<void*>(static_cast<const void*>(std::addressof(f))));
}

}  // namespace replywatch::pipeline
