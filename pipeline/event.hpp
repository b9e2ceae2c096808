// The normalized event: one schema for every source, produced by connectors.
#pragma once

#include <cstdint>
#include <string_view>

namespace replywatch::pipeline {

enum class Source : std::uint8_t { telegram, vk, facebook, instagram, mastodon, x };

std::string_view to_string(Source s);
/// Parses a source name as written in configuration ("telegram", "vk", ...).
bool parse_source(std::string_view text, Source& out);

enum class EventKind : std::uint8_t {
  message,  // a post or comment
  service,  // joins, pins, title changes: moves the clock, never pairs
  edit,     // counted, never pairs
  remove,   // a deletion, where the source reports one
};

/// What the connector knows about the author before the registry is consulted.
enum class AuthorHint : std::uint8_t {
  user,               // a person's account (Telegram `from` without `sender_chat`)
  chat,               // a chat or channel posting as itself (`sender_chat`, `from_id: channel…`)
  bot,                // an account the platform marks as a bot
  automatic_forward,  // a channel post mirrored into its discussion group
  unknown,
};

/// Ids are the platform's API ids (for Telegram: Bot API ids, -100… for supergroups).
/// Message identity is (source, conversation, message_id).
struct Event {
  std::int64_t conversation = 0;
  std::int64_t message_id = 0;
  std::int64_t reply_to = 0;  // 0: replies to nothing
  std::int64_t author = 0;    // 0: unknown (service messages may have none)
  std::int64_t time = 0;      // platform event time, unix seconds
  Source source = Source::telegram;
  EventKind kind = EventKind::message;
  AuthorHint author_hint = AuthorHint::user;
  /// The citizen a message names as the one it answers, where the platform says so apart
  /// from the reply (VK `reply_to_user`); 0: none. Only an official message's counts.
  std::int64_t addressee = 0;
};

}  // namespace replywatch::pipeline
