// Maps Bot API Update objects to normalized events in one forward pass with simdjson
// On-Demand; the rules are in update_parser.hpp and in the comments on each decision.
#include "connectors/telegram/update_parser.hpp"

#include "connectors/json_scan.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <new>
#include <system_error>
#include <utility>

namespace replywatch::connectors::telegram {

namespace {

using json_scan::key_is;
using json_scan::token_to_int;
using json_scan::kFirstTime;
using json_scan::kEndTime;

namespace od = simdjson::ondemand;
using pipeline::AuthorHint;
using pipeline::EventKind;
using simdjson::error_code;

// The Bot API promises that user and chat ids fit in 52 bits; anything larger is not
// from Telegram, and keeping offset = update_id + 1 far from overflow needs a bound too.
constexpr std::int64_t kMaxId = (std::int64_t{1} << 52) - 1;
// Descriptions end up in logs; Telegram's are one line.
constexpr std::size_t kMaxDescription = 1024;
// A getUpdates body holds at most 100 updates (well under a megabyte in practice); after
// a freak body, give the memory back rather than pin it for the life of the daemon.
constexpr std::size_t kKeptCapacity = std::size_t{8} << 20;

bool valid_user_id(std::int64_t id) { return id > 0 && id <= kMaxId; }
bool valid_chat_id(std::int64_t id) { return id != 0 && id >= -kMaxId && id <= kMaxId; }

// The four update kinds that carry a Message; every other kind is counted and skipped.
enum class Payload : std::uint8_t {
  none,
  message,
  edited_message,
  channel_post,
  edited_channel_post
};

bool is_edit(Payload p) {
  return p == Payload::edited_message || p == Payload::edited_channel_post;
}
bool is_channel(Payload p) {
  return p == Payload::channel_post || p == Payload::edited_channel_post;
}

enum class UpdateKey : std::uint8_t { other, update_id, payload };

UpdateKey classify_update_key(const char* raw, Payload& payload) {
  switch (raw[0]) {
    case 'u':
      if (key_is(raw, "update_id")) return UpdateKey::update_id;
      break;
    case 'm':
      if (key_is(raw, "message")) {
        payload = Payload::message;
        return UpdateKey::payload;
      }
      break;
    case 'e':
      if (key_is(raw, "edited_message")) {
        payload = Payload::edited_message;
        return UpdateKey::payload;
      }
      if (key_is(raw, "edited_channel_post")) {
        payload = Payload::edited_channel_post;
        return UpdateKey::payload;
      }
      break;
    case 'c':
      if (key_is(raw, "channel_post")) {
        payload = Payload::channel_post;
        return UpdateKey::payload;
      }
      break;
    default:
      break;
  }
  return UpdateKey::other;
}

enum class MessageKey : std::uint8_t {
  other,
  message_id,
  from,
  sender_chat,
  chat,
  date,
  edit_date,
  automatic_forward,
  reply_to,
  external_reply,
  migrate_to,
  migrate_from,
  service,  // the key's presence makes the message a service message
};

struct KnownKey {
  std::string_view name;
  MessageKey key;
};

// Message keys we act on, grouped by first letter (the lookup relies on it), the common
// ones first in their group. The service keys are the Bot API's "Service message: ..."
// fields up to 9.x plus the pre-6.0 and legacy spellings a server may still send; an
// unlisted future service kind reads as a message by its `from`, which at worst opens an
// appeal that no official answers.
constexpr KnownKey kMessageKeys[] = {
    {"boost_added", MessageKey::service},
    {"chat", MessageKey::chat},
    {"channel_chat_created", MessageKey::service},
    {"chat_background_set", MessageKey::service},
    {"chat_shared", MessageKey::service},
    {"checklist_tasks_added", MessageKey::service},
    {"checklist_tasks_done", MessageKey::service},
    {"connected_website", MessageKey::service},
    {"date", MessageKey::date},
    {"delete_chat_photo", MessageKey::service},
    {"direct_message_price_changed", MessageKey::service},
    {"edit_date", MessageKey::edit_date},
    {"external_reply", MessageKey::external_reply},
    {"from", MessageKey::from},
    {"forum_topic_created", MessageKey::service},
    {"forum_topic_edited", MessageKey::service},
    {"forum_topic_closed", MessageKey::service},
    {"forum_topic_reopened", MessageKey::service},
    {"group_chat_created", MessageKey::service},
    {"general_forum_topic_hidden", MessageKey::service},
    {"general_forum_topic_unhidden", MessageKey::service},
    {"gift", MessageKey::service},
    {"giveaway_created", MessageKey::service},
    {"giveaway_completed", MessageKey::service},
    {"is_automatic_forward", MessageKey::automatic_forward},
    {"left_chat_member", MessageKey::service},
    {"left_chat_participant", MessageKey::service},
    {"message_id", MessageKey::message_id},
    {"migrate_to_chat_id", MessageKey::migrate_to},
    {"migrate_from_chat_id", MessageKey::migrate_from},
    {"message_auto_delete_timer_changed", MessageKey::service},
    {"new_chat_members", MessageKey::service},
    {"new_chat_member", MessageKey::service},
    {"new_chat_participant", MessageKey::service},
    {"new_chat_title", MessageKey::service},
    {"new_chat_photo", MessageKey::service},
    {"pinned_message", MessageKey::service},
    {"paid_message_price_changed", MessageKey::service},
    {"passport_data", MessageKey::service},
    {"proximity_alert_triggered", MessageKey::service},
    {"reply_to_message", MessageKey::reply_to},
    {"refunded_payment", MessageKey::service},
    {"sender_chat", MessageKey::sender_chat},
    {"supergroup_chat_created", MessageKey::service},
    {"successful_payment", MessageKey::service},
    {"suggested_post_approved", MessageKey::service},
    {"suggested_post_approval_failed", MessageKey::service},
    {"suggested_post_declined", MessageKey::service},
    {"suggested_post_paid", MessageKey::service},
    {"suggested_post_refunded", MessageKey::service},
    {"unique_gift", MessageKey::service},
    {"users_shared", MessageKey::service},
    {"user_shared", MessageKey::service},
    {"video_chat_scheduled", MessageKey::service},
    {"video_chat_started", MessageKey::service},
    {"video_chat_ended", MessageKey::service},
    {"video_chat_participants_invited", MessageKey::service},
    {"voice_chat_scheduled", MessageKey::service},
    {"voice_chat_started", MessageKey::service},
    {"voice_chat_ended", MessageKey::service},
    {"voice_chat_participants_invited", MessageKey::service},
    {"web_app_data", MessageKey::service},
    {"write_access_allowed", MessageKey::service},
};

constexpr std::size_t kKeyCount = std::size(kMessageKeys);

// Where each first letter's group starts in kMessageKeys: group c is [start[c], start[c+1]).
constexpr std::array<std::uint8_t, 27> make_key_groups() {
  std::array<std::uint8_t, 27> start{};
  std::size_t i = 0;
  for (int letter = 0; letter < 26; ++letter) {
    start[static_cast<std::size_t>(letter)] = static_cast<std::uint8_t>(i);
    while (i < kKeyCount && kMessageKeys[i].name[0] == 'a' + letter) ++i;
  }
  start[26] = static_cast<std::uint8_t>(i);
  return start;
}

constexpr std::array<std::uint8_t, 27> kKeyGroups = make_key_groups();
static_assert(kKeyGroups[26] == kKeyCount, "kMessageKeys must be grouped by first letter");

MessageKey classify_message_key(const char* raw) {
  const char first = raw[0];
  if (first < 'a' || first > 'z') return MessageKey::other;
  const auto letter = static_cast<std::size_t>(first - 'a');
  for (std::size_t i = kKeyGroups[letter]; i < kKeyGroups[letter + 1]; ++i) {
    if (key_is(raw, kMessageKeys[i].name)) return kMessageKeys[i].key;
  }
  return MessageKey::other;
}

// What a Message object said; turned into an event, or a rejection, once it is all read.
struct MessageFacts {
  const char* reason = nullptr;
  std::int64_t chat = 0;
  std::int64_t message_id = 0;
  std::int64_t date = 0;
  std::int64_t edit_date = 0;
  std::int64_t from = 0;
  std::int64_t sender_chat = 0;
  std::int64_t reply_to = 0;
  std::int64_t external_chat = 0;
  std::int64_t external_message_id = 0;
  std::int64_t migrate_to = 0;
  std::int64_t migrate_from = 0;
  bool has_chat = false;
  bool has_message_id = false;
  bool has_date = false;
  bool has_edit_date = false;
  bool has_from = false;
  bool from_is_bot = false;
  bool has_sender_chat = false;
  bool automatic_forward = false;
  bool service = false;
};

// One pass over a body. Methods return false only on a JSON error (the body is then
// rejected as a whole); a bad update is counted under its reason and skipped.
class Reader {
 public:
  explicit Reader(Updates& out) : out_(out) {}

  error_code json_error() const { return json_error_; }

  bool read_result(od::value& value) {
    od::array updates;
    if (error_code e = value.get_array().get(updates)) return fail(e);
    for (auto element : updates) {
      od::value update;
      if (error_code e = std::move(element).get(update)) return fail(e);
      od::json_type type;
      if (error_code e = update.type().get(type)) return fail(e);
      if (type != od::json_type::object) {
        ++out_.updates;
        reject("not_an_object");
        continue;
      }
      od::object fields;
      if (error_code e = update.get_object().get(fields)) return fail(e);
      if (!read_update(fields)) return false;
    }
    return true;
  }

  bool read_update(od::object& fields) {
    ++out_.updates;
    enum class Id : std::uint8_t { missing, bad, ok } id_state = Id::missing;
    std::int64_t update_id = 0;
    Payload payload = Payload::none;
    bool ambiguous = false;
    MessageFacts facts;
    for (auto result : fields) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return fail(e);
      Payload kind = Payload::none;
      switch (classify_update_key(field.key().raw(), kind)) {
        case UpdateKey::update_id: {
          od::json_type type;
          if (error_code e = field.value().type().get(type)) return fail(e);
          // A repeated update_id leaves us not knowing which one to confirm.
          const bool ok = id_state == Id::missing && type == od::json_type::number &&
                          token_to_int(field.value().raw_json_token(), update_id) &&
                          update_id >= 0 && update_id <= kMaxId;
          id_state = ok ? Id::ok : Id::bad;
          break;
        }
        case UpdateKey::payload:
          if (payload != Payload::none) {
            ambiguous = true;  // "at most one of the optional parameters can be present"
            break;
          }
          payload = kind;
          if (!read_message(field.value(), facts)) return false;
          break;
        case UpdateKey::other:
          break;
      }
    }

    if (id_state == Id::missing) return reject("missing_update_id");
    if (id_state == Id::bad) return reject("bad_update_id");
    if (!out_.max_update_id || *out_.max_update_id < update_id) out_.max_update_id = update_id;
    if (ambiguous) return reject("ambiguous_update");
    if (payload == Payload::none) {
      ++out_.ignored;
      return true;
    }
    if (facts.reason == nullptr) finish(payload, facts);
    if (facts.reason != nullptr) return reject(facts.reason);
    return true;
  }

 private:
  bool fail(error_code error) {
    json_error_ = error;
    return false;
  }

  bool reject(std::string_view reason) {
    ++out_.rejected[std::string(reason)];
    return true;
  }

  // Reading stops at the first bad field; the enclosing iterator skips the rest.
  bool read_message(od::value& value, MessageFacts& m) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail(e);
    if (type != od::json_type::object) {
      m.reason = "payload_not_an_object";
      return true;
    }
    od::object fields;
    if (error_code e = value.get_object().get(fields)) return fail(e);
    for (auto result : fields) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return fail(e);
      od::value& v = field.value();
      bool ok = true;
      switch (classify_message_key(field.key().raw())) {
        case MessageKey::other:
          break;
        case MessageKey::message_id:
          m.has_message_id = true;
          if (!read_int(v, m.message_id, ok)) return false;
          if (!ok || m.message_id <= 0) m.reason = "bad_message_id";
          break;
        case MessageKey::chat:
          m.has_chat = true;
          if (!read_object_id(v, "id", m.chat, ok)) return false;
          if (!ok || !valid_chat_id(m.chat)) m.reason = "bad_chat_id";
          break;
        case MessageKey::date:
          m.has_date = true;
          if (!read_int(v, m.date, ok)) return false;
          if (!ok) m.reason = "bad_date";
          break;
        case MessageKey::edit_date:
          m.has_edit_date = true;
          if (!read_int(v, m.edit_date, ok)) return false;
          if (!ok) m.reason = "bad_edit_date";
          break;
        case MessageKey::from:
          m.has_from = true;
          if (!read_from(v, m, ok)) return false;
          if (!ok) m.reason = "bad_author";
          break;
        case MessageKey::sender_chat:
          m.has_sender_chat = true;
          if (!read_object_id(v, "id", m.sender_chat, ok)) return false;
          if (!ok || !valid_chat_id(m.sender_chat)) m.reason = "bad_author";
          break;
        case MessageKey::automatic_forward:
          if (!read_bool(v, m.automatic_forward, ok)) return false;
          if (!ok) m.reason = "bad_author";
          break;
        case MessageKey::reply_to:
          // reply_to_message is a whole Message of the same chat; its id is all we need.
          if (!read_object_id(v, "message_id", m.reply_to, ok)) return false;
          if (!ok || m.reply_to <= 0) m.reason = "bad_reply_to";
          break;
        case MessageKey::external_reply:
          if (!read_external_reply(v, m)) return false;
          break;
        case MessageKey::migrate_to:
          m.service = true;
          if (!read_int(v, m.migrate_to, ok)) return false;
          if (!ok || !valid_chat_id(m.migrate_to)) m.reason = "bad_migration";
          break;
        case MessageKey::migrate_from:
          m.service = true;
          if (!read_int(v, m.migrate_from, ok)) return false;
          if (!ok || !valid_chat_id(m.migrate_from)) m.reason = "bad_migration";
          break;
        case MessageKey::service:
          m.service = true;
          break;
      }
      if (m.reason != nullptr) break;
    }
    return true;
  }

  // `ok` is false when the value is not an integer; the return value is false only on a
  // JSON error.
  bool read_int(od::value& value, std::int64_t& out, bool& ok) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail(e);
    ok = type == od::json_type::number && token_to_int(value.raw_json_token(), out);
    return true;
  }

  bool read_bool(od::value& value, bool& out, bool& ok) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail(e);
    ok = type == od::json_type::boolean;
    if (ok) {
      if (error_code e = value.get_bool().get(out)) return fail(e);
    }
    return true;
  }

  // The integer `name` of an object (chat.id, sender_chat.id, reply_to_message.message_id).
  // Telegram writes it first, so the rest of the object is left to the skipper.
  bool read_object_id(od::value& value, std::string_view name, std::int64_t& out, bool& ok) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail(e);
    ok = false;
    if (type != od::json_type::object) return true;
    od::object fields;
    if (error_code e = value.get_object().get(fields)) return fail(e);
    for (auto result : fields) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return fail(e);
      if (key_is(field.key().raw(), name)) return read_int(field.value(), out, ok);
    }
    return true;
  }

  // external_reply names a message of another chat, or of another forum topic of this
  // chat (reply_to_message covers only the same topic). Only the latter is a reply here,
  // as it is in an export; the rest of it is informative and never rejects the message.
  bool read_external_reply(od::value& value, MessageFacts& m) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail(e);
    if (type != od::json_type::object) return true;
    od::object fields;
    if (error_code e = value.get_object().get(fields)) return fail(e);
    for (auto result : fields) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return fail(e);
      const char* key = field.key().raw();
      bool ok = true;
      if (key_is(key, "chat")) {
        if (!read_object_id(field.value(), "id", m.external_chat, ok)) return false;
        if (!ok) m.external_chat = 0;
      } else if (key_is(key, "message_id")) {
        if (!read_int(field.value(), m.external_message_id, ok)) return false;
        if (!ok) m.external_message_id = 0;
      }
    }
    return true;
  }

  bool read_from(od::value& value, MessageFacts& m, bool& ok) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail(e);
    ok = false;
    if (type != od::json_type::object) return true;
    od::object fields;
    if (error_code e = value.get_object().get(fields)) return fail(e);
    bool has_id = false;
    bool has_is_bot = false;
    for (auto result : fields) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return fail(e);
      const char* key = field.key().raw();
      bool field_ok = true;
      if (key_is(key, "id")) {
        has_id = true;
        if (!read_int(field.value(), m.from, field_ok)) return false;
        if (!field_ok || !valid_user_id(m.from)) return true;
      } else if (key_is(key, "is_bot")) {
        has_is_bot = true;
        if (!read_bool(field.value(), m.from_is_bot, field_ok)) return false;
        if (!field_ok) return true;
      }
      if (has_id && has_is_bot) break;  // both come first; skip the names
    }
    // is_bot is required by the Bot API; a missing one is read as a person.
    ok = has_id;
    return true;
  }

  void finish(Payload payload, MessageFacts& m) {
    if (!m.has_chat) {
      m.reason = "missing_chat";
      return;
    }
    if (!m.has_message_id) {
      m.reason = "missing_message_id";
      return;
    }
    if (!m.has_date) {
      m.reason = "missing_date";
      return;
    }
    pipeline::Event event;
    event.source = pipeline::Source::telegram;
    event.conversation = m.chat;
    event.message_id = m.message_id;
    event.reply_to = m.reply_to;
    if (event.reply_to == 0 && m.external_chat == m.chat && m.external_message_id > 0) {
      event.reply_to = m.external_message_id;
    }
    const bool edit = is_edit(payload);
    event.kind = edit ? EventKind::edit : m.service ? EventKind::service : EventKind::message;
    event.time = edit && m.has_edit_date ? m.edit_date : m.date;
    if (event.time < kFirstTime || event.time >= kEndTime) {
      m.reason = "time_out_of_range";
      return;
    }
    // sender_chat names who spoke when a chat speaks (the channel, the group for its
    // anonymous admins); `from` then holds a placeholder user marked is_bot that says
    // nothing about the author.
    if (m.automatic_forward && (m.has_sender_chat || m.has_from)) {
      event.author = m.has_sender_chat ? m.sender_chat : m.from;
      event.author_hint = AuthorHint::automatic_forward;
    } else if (m.has_sender_chat) {
      event.author = m.sender_chat;
      event.author_hint = AuthorHint::chat;
    } else if (m.has_from) {
      event.author = m.from;
      event.author_hint = m.from_is_bot ? AuthorHint::bot : AuthorHint::user;
    } else if (is_channel(payload)) {
      // Channel posts from before sender_chat existed name no sender: the channel speaks.
      event.author = m.chat;
      event.author_hint = AuthorHint::chat;
    } else if (m.service) {
      event.author = 0;
      event.author_hint = AuthorHint::unknown;
    } else {
      m.reason = "missing_author";
      return;
    }
    out_.events.push_back(event);
    // An edit repeats the message's content; the migration was reported with the original.
    if (!edit && m.migrate_to != 0) out_.migrations.push_back({m.chat, m.migrate_to});
    if (!edit && m.migrate_from != 0) out_.migrations.push_back({m.migrate_from, m.chat});
  }

  Updates& out_;
  error_code json_error_ = simdjson::SUCCESS;
};

// The description as sent, cut at a character boundary (simdjson has validated UTF-8).
std::string bounded_description(std::string_view text) {
  if (text.size() <= kMaxDescription) return std::string(text);
  std::size_t size = kMaxDescription;
  while (size > 0 && (static_cast<unsigned char>(text[size]) & 0xC0) == 0x80) --size;
  return std::string(text.substr(0, size));
}

}  // namespace

class UpdateParser::Impl {
 public:
  Result<Updates> response(std::string_view body, std::size_t capacity) {
    simdjson::padded_string_view json;
    if (capacity >= body.size() + simdjson::SIMDJSON_PADDING) {
      // The padding's content does not matter: nothing we match can run into it.
      json = simdjson::padded_string_view(body.data(), body.size(), capacity);
    } else if (!pad(body, json)) {
      return out_of_memory("getUpdates response", body);
    }
    Result<Updates> result = run_response(json, body);
    release();
    return result;
  }

  Result<Updates> update(std::string_view body) {
    simdjson::padded_string_view json;
    if (!pad(body, json)) return out_of_memory("webhook update", body);
    Result<Updates> result = run_update(json, body);
    release();
    return result;
  }

 private:
  // simdjson reads up to SIMDJSON_PADDING bytes past the end; the caller's body has no
  // such guarantee, so it is copied into a buffer kept from one call to the next.
  bool pad(std::string_view body, simdjson::padded_string_view& json) {
    const std::size_t needed = body.size() + simdjson::SIMDJSON_PADDING;
    if (needed > capacity_) {
      buffer_.reset(new (std::nothrow) char[needed]);
      capacity_ = buffer_ ? needed : 0;
      if (!buffer_) return false;
    }
    if (!body.empty()) std::memcpy(buffer_.get(), body.data(), body.size());
    std::memset(buffer_.get() + body.size(), 0, simdjson::SIMDJSON_PADDING);
    json = simdjson::padded_string_view(buffer_.get(), body.size(), capacity_);
    return true;
  }

  void release() {
    if (capacity_ > kKeptCapacity) {
      buffer_.reset();
      capacity_ = 0;
    }
    if (parser_.capacity() > kKeptCapacity) parser_ = od::parser{};
  }

  static std::string describe(std::string_view origin, std::string_view body) {
    return std::string(origin) + " (" + std::to_string(body.size()) + " bytes)";
  }
  static Error out_of_memory(std::string_view origin, std::string_view body) {
    return make_error(describe(origin, body) + ": out of memory");
  }
  static Error json_failure(std::string_view origin, std::string_view body, error_code e) {
    return make_error(describe(origin, body) + ": not valid JSON (" + simdjson::error_message(e) +
                      ")");
  }
  static Error shape_failure(std::string_view origin, std::string_view body,
                             std::string_view problem) {
    return make_error(describe(origin, body) + ": not a Bot API response: " + std::string(problem));
  }

  // On-Demand stops at the end of the root value; text after it is still invalid JSON.
  static bool at_end(od::document& doc) { return doc.current_location().error() != 0; }

  Result<Updates> run_response(simdjson::padded_string_view json, std::string_view body) {
    constexpr std::string_view origin = "getUpdates response";
    od::document doc;
    if (error_code e = parser_.iterate(json).get(doc)) return json_failure(origin, body, e);
    od::json_type type;
    if (error_code e = doc.type().get(type)) return json_failure(origin, body, e);
    if (type != od::json_type::object) {
      return shape_failure(origin, body, "the top level is not an object");
    }
    od::object root;
    if (error_code e = doc.get_object().get(root)) return json_failure(origin, body, e);

    Updates updates;
    Reader reader(updates);
    ApiError api;
    std::optional<bool> ok;
    bool has_result = false;
    for (auto result : root) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return json_failure(origin, body, e);
      const char* key = field.key().raw();
      od::value& value = field.value();
      if (error_code e = value.type().get(type)) return json_failure(origin, body, e);
      if (key_is(key, "ok")) {
        if (type != od::json_type::boolean || ok) {
          return shape_failure(origin, body, "'ok' is not a single boolean");
        }
        bool flag = false;
        if (error_code e = value.get_bool().get(flag)) return json_failure(origin, body, e);
        ok = flag;
      } else if (key_is(key, "result")) {
        if (has_result) return shape_failure(origin, body, "'result' appears twice");
        has_result = true;
        if (ok == false) continue;  // an error response's result, if any, means nothing
        if (type != od::json_type::array) {
          return shape_failure(origin, body, "'result' is not an array");
        }
        if (!reader.read_result(value)) return json_failure(origin, body, reader.json_error());
      } else if (key_is(key, "error_code")) {
        // Error details are best effort: a wrong-typed one is dropped, and the caller
        // falls back to its own backoff.
        if (type == od::json_type::number) {
          std::int64_t code = 0;
          if (token_to_int(value.raw_json_token(), code)) api.error_code = code;
        }
      } else if (key_is(key, "description")) {
        if (type == od::json_type::string) {
          std::string_view text;
          if (error_code e = value.get_string().get(text)) return json_failure(origin, body, e);
          api.description = bounded_description(text);
        }
      } else if (key_is(key, "parameters")) {
        if (type == od::json_type::object) {
          if (error_code e = read_parameters(value, api)) return json_failure(origin, body, e);
        }
      }
    }
    if (!at_end(doc)) return json_failure(origin, body, simdjson::TRAILING_CONTENT);
    if (!ok) return shape_failure(origin, body, "no boolean 'ok'");
    if (!*ok) {
      Updates failed;
      failed.error = std::move(api);
      return failed;
    }
    if (!has_result) return shape_failure(origin, body, "'ok' is true but there is no 'result'");
    return updates;
  }

  static error_code read_parameters(od::value& value, ApiError& api) {
    od::object fields;
    if (error_code e = value.get_object().get(fields)) return e;
    for (auto result : fields) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return e;
      const char* key = field.key().raw();
      od::json_type type;
      if (error_code e = field.value().type().get(type)) return e;
      if (type != od::json_type::number) continue;
      std::int64_t number = 0;
      if (!token_to_int(field.value().raw_json_token(), number)) continue;
      if (key_is(key, "retry_after")) {
        if (number >= 0) api.retry_after = number;
      } else if (key_is(key, "migrate_to_chat_id")) {
        if (valid_chat_id(number)) api.migrate_to_chat_id = number;
      }
    }
    return simdjson::SUCCESS;
  }

  Result<Updates> run_update(simdjson::padded_string_view json, std::string_view body) {
    constexpr std::string_view origin = "webhook update";
    od::document doc;
    if (error_code e = parser_.iterate(json).get(doc)) return json_failure(origin, body, e);
    od::json_type type;
    if (error_code e = doc.type().get(type)) return json_failure(origin, body, e);
    if (type != od::json_type::object) {
      return shape_failure(origin, body, "the top level is not an Update object");
    }
    od::object root;
    if (error_code e = doc.get_object().get(root)) return json_failure(origin, body, e);
    Updates updates;
    Reader reader(updates);
    if (!reader.read_update(root)) return json_failure(origin, body, reader.json_error());
    if (!at_end(doc)) return json_failure(origin, body, simdjson::TRAILING_CONTENT);
    return updates;
  }

  od::parser parser_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
};

UpdateParser::UpdateParser() : impl_(std::make_unique<Impl>()) {}

UpdateParser::~UpdateParser() = default;

Result<Updates> UpdateParser::parse_response(std::string_view body) {
  return impl_->response(body, 0);
}

Result<Updates> UpdateParser::parse_response_in_place(const std::string& body) {
  return impl_->response(body, body.capacity());
}

Result<Updates> UpdateParser::parse_update(std::string_view body) { return impl_->update(body); }

}  // namespace replywatch::connectors::telegram
