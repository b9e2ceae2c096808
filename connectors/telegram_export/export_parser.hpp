// Telegram Desktop exports (result.json): single-chat files and whole-account
// files with chats.list, parsed with simdjson On-Demand into normalized events.
#pragma once

#include "pipeline/error.hpp"
#include "pipeline/event.hpp"
#include "pipeline/tz.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace replywatch::connectors::telegram_export {

struct ParseOptions {
  /// The exporting machine's zone, for messages that carry only `date` (old
  /// exports). Null: such messages are rejected with reason "no_export_timezone".
  std::shared_ptr<const pipeline::TimeZone> export_timezone;
  /// Map the file instead of reading it (several times faster on large exports).
  /// Only for files nobody is writing: a file truncated while mapped would fault.
  /// Replay maps; the daemon's directory watcher reads.
  bool map_file = false;
};

/// Receives a file's content in file order.
class Sink {
 public:
  virtual ~Sink() = default;
  /// A chat begins. `chat_id` is its Bot API id. Return false to skip its messages.
  virtual bool on_chat(std::int64_t chat_id, std::string_view name, std::string_view type) = 0;
  /// A well-formed message of the current chat.
  virtual void on_event(const pipeline::Event& event) = 0;
  /// A malformed message of the current chat, skipped; `reason` is a stable snake_case key.
  virtual void on_rejected(std::string_view reason) = 0;
};

/// Parses one export file. An error means the file as a whole is not valid JSON or
/// not a Telegram export; the message names the file and the reason. Events already
/// delivered for a file that then fails must be discarded by the caller.
Result<void> parse_file(const std::string& path, const ParseOptions& options, Sink& sink);

/// Same, on bytes already in memory; `origin` names them in errors.
Result<void> parse_bytes(std::string_view bytes, std::string_view origin,
                         const ParseOptions& options, Sink& sink);

/// Bot API id of an exported chat: bare `id` plus the export's `type`.
/// Returns false for an unknown type or an id out of range.
bool bot_api_chat_id(std::string_view type, std::int64_t bare_id, std::int64_t& out);

/// Bot API id of an author reference: "user123" → 123, "channel456" → -1000000000456,
/// "chat789" → -789. Returns false on anything else.
bool bot_api_peer_id(std::string_view from_id, std::int64_t& out);

}  // namespace replywatch::connectors::telegram_export
