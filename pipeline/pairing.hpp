// The pairing engine: turns normalized events into appeals and their first
// official answers. State is kept per conversation only, so conversation-keyed
// partitions can split the work; nothing here reads another conversation.
#pragma once

#include "pipeline/error.hpp"
#include "pipeline/event.hpp"
#include "pipeline/flat_map.hpp"
#include "pipeline/registry.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace replywatch::pipeline {

enum class AppealKind : std::uint8_t { first, followup };
enum class AppealStatus : std::uint8_t { open, answered, unanswered };

std::string_view to_string(AppealKind k);
std::string_view to_string(AppealStatus s);

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

/// Receives appeals as their status becomes final. Every appeal is reported to
/// on_closed exactly once, unless it is still open when the caller stops.
class AppealSink {
 public:
  virtual ~AppealSink() = default;
  virtual void on_opened(const Appeal&) {}
  virtual void on_closed(const Appeal& appeal) = 0;
};

/// How the engine classified an author within one conversation.
enum class AuthorClass : std::uint8_t { citizen, official, foreign_official, ignored, service };

struct PairingCounters {
  std::uint64_t events = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t unowned = 0;  // events of conversations no agency owns
  std::uint64_t edits = 0;
  std::uint64_t removals = 0;
  std::uint64_t citizen_to_citizen = 0;  // replies ignored under citizen_replies_to_citizens
};

class Pairing {
 public:
  Pairing(std::shared_ptr<const Registry> registry, AppealSink& sink);
  ~Pairing();
  Pairing(const Pairing&) = delete;
  Pairing& operator=(const Pairing&) = delete;

  /// Events of one conversation must arrive in message order (ids ascending);
  /// repeats of a (conversation, message id) change nothing.
  void on_event(const Event& event);

  /// Closes as unanswered every open appeal with clock > opened_at + horizon.
  void expire(std::int64_t clock);

  /// Visits every open appeal (status open).
  template <class F>
  void for_each_open(F&& f) const;

  std::size_t open_appeals() const;
  const PairingCounters& counters() const { return counters_; }
  const Registry& registry() const { return *registry_; }

  /// Bytes held by pairing state (tables only), for memory benchmarks.
  std::size_t memory_bytes() const;

  /// Forgets messages older than `before` (thread and parent lookups of very late
  /// replies then fall back to the parent's id). Open appeals are unaffected.
  /// Returns the number of messages forgotten.
  std::size_t forget_messages_before(std::int64_t before);

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

 private:
  // Packed: the thread map holds one of these per message, the open table one per
  // open appeal, and both dominate memory. Times fit in 61 bits and message ids are
  // positive, which leaves room for the class and the kind.
  struct MessageInfo {
    std::int64_t thread;
    std::int64_t author;
    std::uint64_t packed;  // time << 3 | class
    static MessageInfo make(std::int64_t thread, std::int64_t author, std::int64_t time,
                            AuthorClass cls) {
      return {thread, author,
              (static_cast<std::uint64_t>(time) << 3) | static_cast<std::uint64_t>(cls)};
    }
    std::int64_t time() const { return static_cast<std::int64_t>(packed) >> 3; }
    AuthorClass cls() const { return static_cast<AuthorClass>(packed & 7); }
  };
  struct OpenAppeal {
    std::int64_t opened_at;
    std::uint64_t packed;  // opened message id << 1 | kind
    static OpenAppeal make(std::int64_t opened_at, std::int64_t opened_message, AppealKind kind) {
      return {opened_at, (static_cast<std::uint64_t>(opened_message) << 1) |
                             static_cast<std::uint64_t>(kind)};
    }
    std::int64_t opened_message() const { return static_cast<std::int64_t>(packed >> 1); }
    AppealKind kind() const { return static_cast<AppealKind>(packed & 1); }
  };
  struct Conversation {
    std::int64_t id = 0;
    Source source = Source::telegram;
    std::int32_t agency = -1;
    FlatMap<std::int64_t, MessageInfo> messages;
    FlatMap<PairKey, OpenAppeal> open;  // (citizen, thread) → waiting since
    FlatMap<PairKey, Empty> seen;  // (citizen, thread) pairs that ever appealed
  };

  Conversation* conversation_for(const Event& event);
  std::int32_t owner(Source source, std::int64_t conversation) const;
  AuthorClass classify(const Conversation& c, const Event& e, std::int32_t& account) const;
  void on_citizen(Conversation& c, const Event& e, std::int64_t thread, const MessageInfo* parent);
  void on_official(Conversation& c, const Event& e, std::int32_t account,
                   const MessageInfo* parent);
  Appeal make_appeal(const Conversation& c, const PairKey& key, const OpenAppeal& open) const;

  std::shared_ptr<const Registry> registry_;
  AppealSink& sink_;
  FlatMap<PairKey, std::uint32_t> index_;  // (source, conversation) → conversations_
  FlatMap<PairKey, std::int64_t> migrated_from_;  // (source, new id) → old id
  std::vector<std::unique_ptr<Conversation>> conversations_;
  Conversation* last_ = nullptr;  // events come in runs of one conversation
  PairingCounters counters_;
};

template <class F>
void Pairing::for_each_open(F&& f) const {
  for (const auto& c : conversations_) {
    if (c->agency < 0) continue;  // no longer owned after a reload
    c->open.for_each([&](const PairKey& key, const OpenAppeal& open) {
      f(make_appeal(*c, key, open));
    });
  }
}

}  // namespace replywatch::pipeline
