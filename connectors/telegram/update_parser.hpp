// Telegram Bot API updates (getUpdates responses and webhook pushes) parsed with
// simdjson On-Demand into normalized events, chat migrations and the update cursor.
#pragma once

#include "pipeline/error.hpp"
#include "pipeline/event.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace replywatch::connectors::telegram {

/// A Bot API error response ({"ok":false,...}). Branch on the parameters: a 429 carries
/// retry_after, a request to a group that became a supergroup carries migrate_to_chat_id.
struct ApiError {
  std::int64_t error_code = 0;
  std::string description;                         // as sent, cut to at most 1024 bytes
  std::optional<std::int64_t> retry_after;         // seconds, >= 0
  std::optional<std::int64_t> migrate_to_chat_id;  // the supergroup's Bot API id
};

/// A basic group that became a supergroup: events of `from_chat` now belong to `to_chat`.
/// Reported once per migration service message, so usually twice (once from each chat).
struct Migration {
  std::int64_t from_chat = 0;
  std::int64_t to_chat = 0;
};

struct Updates {
  /// In update order: message, channel_post → message or service; edited_* → edit.
  std::vector<pipeline::Event> events;
  std::vector<Migration> migrations;
  /// Malformed updates by snake_case reason; they still advance max_update_id when their
  /// update_id was readable, so a poison update is confirmed rather than fetched forever.
  std::map<std::string, std::uint64_t> rejected;
  /// The highest readable update_id: confirm with offset = max_update_id + 1.
  std::optional<std::int64_t> max_update_id;
  /// Well-formed updates of kinds we do not map (callback_query, my_chat_member, ...).
  std::uint64_t ignored = 0;
  /// Set for {"ok":false,...}; then nothing else is.
  std::optional<ApiError> error;
  /// Update objects seen: events (one per update) + rejected + ignored.
  std::uint64_t updates = 0;
};

/// Maps Update objects to events:
/// - message, channel_post → EventKind::message, or ::service when the message carries a
///   service field (new_chat_members, pinned_message, migrate_*_chat_id, forum_topic_*,
///   video_chat_*, ...); edited_message, edited_channel_post → ::edit, time = edit_date
///   (else date). Every other kind is counted in `ignored`.
/// - conversation = chat.id, message_id, time = date (2013-08-01 <= time < 2100-01-01).
/// - author: sender_chat.id with AuthorHint::chat when sender_chat is present (the
///   placeholder `from` and its is_bot are then ignored), ::automatic_forward when
///   is_automatic_forward; else from.id with ::bot or ::user; a channel post with neither
///   is the channel's; a service message with neither has author 0, ::unknown.
/// - reply_to = reply_to_message.message_id; else external_reply.message_id when it
///   names this chat (a reply into another forum topic); replies into other chats, quote
///   and message_thread_id set nothing.
/// Holds simdjson buffers reused from one body to the next: one instance per thread
/// (or per connector), not shared.
class UpdateParser {
 public:
  UpdateParser();
  ~UpdateParser();
  UpdateParser(const UpdateParser&) = delete;
  UpdateParser& operator=(const UpdateParser&) = delete;

  /// A getUpdates response body: {"ok":true,"result":[Update...]} or {"ok":false,...}.
  /// Error: not JSON / not a Bot API response (the message says why, never includes the
  /// body). Nothing of a body that fails is returned, so nothing of it is confirmed.
  Result<Updates> parse_response(std::string_view body);

  /// Same, reading `body` where it is instead of copying it first, when it has at least
  /// 64 bytes of spare capacity (simdjson reads past the end; reserve them while
  /// receiving). Without the spare capacity it is copied like parse_response's.
  Result<Updates> parse_response_in_place(const std::string& body);

  /// One Update object (a webhook push).
  Result<Updates> parse_update(std::string_view body);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace replywatch::connectors::telegram
