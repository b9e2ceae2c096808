// Reads Telegram Desktop exports (result.json) in one forward pass with simdjson
// On-Demand and hands each message to a Sink as a normalized event.
#include "connectors/telegram_export/export_parser.hpp"

#include "connectors/json_scan.hpp"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <system_error>
#include <utility>

namespace replywatch::connectors::telegram_export {

namespace {

using json_scan::trim_json_space;
using json_scan::key_is;
using json_scan::token_to_int;
using json_scan::kFirstTime;
using json_scan::kEndTime;

namespace od = simdjson::ondemand;
using simdjson::error_code;

// Bot API encodes channels and supergroups as -(10^12 + bare id); bare ids at or above
// 10^12 would make that encoding ambiguous, so they cannot come from a real export.
constexpr std::int64_t kChannelBase = 1000000000000;
constexpr std::int64_t kMaxGroupId = kChannelBase - 1;
// The Bot API promises user ids fit in 52 bits.
constexpr std::int64_t kMaxUserId = (std::int64_t{1} << 52) - 1;

// A thread keeps at most this much parser memory between files, so that one huge
// export does not pin gigabytes in a long-running daemon.
constexpr std::size_t kKeptParserCapacity = std::size_t{64} << 20;

std::string_view error_name(error_code error) {
  switch (error) {
    case simdjson::SUCCESS: return "SUCCESS";
    case simdjson::CAPACITY: return "CAPACITY";
    case simdjson::MEMALLOC: return "MEMALLOC";
    case simdjson::TAPE_ERROR: return "TAPE_ERROR";
    case simdjson::DEPTH_ERROR: return "DEPTH_ERROR";
    case simdjson::STRING_ERROR: return "STRING_ERROR";
    case simdjson::T_ATOM_ERROR: return "T_ATOM_ERROR";
    case simdjson::F_ATOM_ERROR: return "F_ATOM_ERROR";
    case simdjson::N_ATOM_ERROR: return "N_ATOM_ERROR";
    case simdjson::NUMBER_ERROR: return "NUMBER_ERROR";
    case simdjson::UTF8_ERROR: return "UTF8_ERROR";
    case simdjson::UNINITIALIZED: return "UNINITIALIZED";
    case simdjson::EMPTY: return "EMPTY";
    case simdjson::UNESCAPED_CHARS: return "UNESCAPED_CHARS";
    case simdjson::UNCLOSED_STRING: return "UNCLOSED_STRING";
    case simdjson::UNSUPPORTED_ARCHITECTURE: return "UNSUPPORTED_ARCHITECTURE";
    case simdjson::INCORRECT_TYPE: return "INCORRECT_TYPE";
    case simdjson::NUMBER_OUT_OF_RANGE: return "NUMBER_OUT_OF_RANGE";
    case simdjson::INDEX_OUT_OF_BOUNDS: return "INDEX_OUT_OF_BOUNDS";
    case simdjson::NO_SUCH_FIELD: return "NO_SUCH_FIELD";
    case simdjson::IO_ERROR: return "IO_ERROR";
    case simdjson::INVALID_JSON_POINTER: return "INVALID_JSON_POINTER";
    case simdjson::INVALID_URI_FRAGMENT: return "INVALID_URI_FRAGMENT";
    case simdjson::UNEXPECTED_ERROR: return "UNEXPECTED_ERROR";
    case simdjson::PARSER_IN_USE: return "PARSER_IN_USE";
    case simdjson::OUT_OF_ORDER_ITERATION: return "OUT_OF_ORDER_ITERATION";
    case simdjson::INSUFFICIENT_PADDING: return "INSUFFICIENT_PADDING";
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT: return "INCOMPLETE_ARRAY_OR_OBJECT";
    case simdjson::SCALAR_DOCUMENT_AS_VALUE: return "SCALAR_DOCUMENT_AS_VALUE";
    case simdjson::OUT_OF_BOUNDS: return "OUT_OF_BOUNDS";
    case simdjson::TRAILING_CONTENT: return "TRAILING_CONTENT";
    default: return "ERROR";
  }
}

bool decimal_to_int(std::string_view digits, std::int64_t& out) {
  if (digits.empty() || digits.front() < '0' || digits.front() > '9') return false;
  const char* end = digits.data() + digits.size();
  auto [ptr, ec] = std::from_chars(digits.data(), end, out);
  return ec == std::errc{} && ptr == end;
}

// A string value without copying when it has no escapes (the fields we read never do in
// real exports); escaped text goes through simdjson so that \u sequences count.
error_code read_string(od::value& value, std::string_view& out) {
  const std::string_view token = trim_json_space(value.raw_json_token());
  if (token.size() >= 2 && token.back() == '"') {
    std::string_view body = token.substr(1, token.size() - 2);
    if (body.find('\\') == std::string_view::npos) {
      out = body;
      return simdjson::SUCCESS;
    }
  }
  return value.get_string().get(out);
}

bool valid_bare_id(std::int64_t bare, std::int64_t max) { return bare > 0 && bare <= max; }

// "YYYY-MM-DDTHH:MM:SS" as seconds since 1970-01-01T00:00 on the same wall clock.
bool parse_local_date(std::string_view text, std::int64_t& local_seconds) {
  if (text.size() != 19 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
      text[13] != ':' || text[16] != ':') {
    return false;
  }
  auto number = [&](std::size_t pos, std::size_t len, int& out) {
    out = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day) ||
      !number(11, 2, hour) || !number(14, 2, minute) || !number(17, 2, second)) {
    return false;
  }
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok() || hour > 23 || minute > 59 || second > 59) return false;
  const std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  local_seconds = days * 86400 + hour * 3600 + minute * 60 + second;
  return true;
}

bool parse_peer(std::string_view text, std::int64_t& out, pipeline::AuthorHint& hint) {
  std::int64_t bare = 0;
  if (text.starts_with("user")) {
    if (!decimal_to_int(text.substr(4), bare) || !valid_bare_id(bare, kMaxUserId)) return false;
    out = bare;
    hint = pipeline::AuthorHint::user;
    return true;
  }
  if (text.starts_with("channel")) {
    if (!decimal_to_int(text.substr(7), bare) || !valid_bare_id(bare, kMaxGroupId)) return false;
    out = -(kChannelBase + bare);
    hint = pipeline::AuthorHint::chat;
    return true;
  }
  if (text.starts_with("chat")) {
    if (!decimal_to_int(text.substr(4), bare) || !valid_bare_id(bare, kMaxGroupId)) return false;
    out = -bare;
    hint = pipeline::AuthorHint::chat;
    return true;
  }
  return false;
}

// Where a chat sits in the file, for error messages.
struct ChatPlace {
  std::string_view list;  // "chats" or "left_chats"; empty: the file's single chat
  std::size_t index = 0;

  std::string describe() const {
    if (list.empty()) return "the chat";
    return std::string(list) + ".list[" + std::to_string(index) + "]";
  }
};

// What a chat object has said about itself so far.
struct ChatState {
  std::string_view name;  // valid while the document lives
  std::string_view type;
  std::int64_t bare_id = 0;
  bool seen_name = false;
  bool seen_type = false;
  bool seen_id = false;
  bool type_ok = false;
  bool id_ok = false;
  bool started = false;  // on_chat was called
  bool wanted = false;   // on_chat returned true
  std::int64_t chat_id = 0;

  // Real exports write name, type and id before messages; anything else takes a rewind.
  bool ready() const { return seen_name && seen_type && seen_id; }
};

class ExportReader {
 public:
  ExportReader(std::string_view origin, const ParseOptions& options, Sink& sink)
      : origin_(origin), options_(options), sink_(sink) {}

  Result<void> run(od::parser& parser, simdjson::padded_string_view json) {
    od::document doc;
    if (error_code e = parser.iterate(json).get(doc)) return json_failure(e);
    od::json_type type;
    if (error_code e = doc.type().get(type)) return json_failure(e);
    if (type != od::json_type::object) {
      return export_failure("the top level is not an object");
    }
    od::object root;
    if (error_code e = doc.get_object().get(root)) return json_failure(e);
    if (!read_chat(root, ChatPlace{}, true)) return failure();
    // On-Demand stops at the end of the root object; text after it is still invalid JSON.
    if (!doc.current_location().error()) return json_failure(simdjson::TRAILING_CONTENT);
    return {};
  }

 private:
  bool fail_json(error_code error) {
    json_error_ = error;
    return false;
  }
  bool fail_export(std::string problem) {
    problem_ = std::move(problem);
    return false;
  }

  Error json_failure(error_code error) const {
    std::string message(origin_);
    if (error == simdjson::CAPACITY) {
      message += ": too large to parse (";
    } else if (error == simdjson::MEMALLOC) {
      message += ": out of memory while parsing (";
    } else {
      message += ": not valid JSON (";
    }
    message += error_name(error);
    message += ": ";
    message += simdjson::error_message(error);
    message += ")";
    return make_error(std::move(message));
  }
  Error export_failure(std::string_view problem) const {
    return make_error(std::string(origin_) + ": not a Telegram export: " + std::string(problem));
  }
  Error failure() const {
    return json_error_ != simdjson::SUCCESS ? json_failure(json_error_) : export_failure(problem_);
  }

  // A chat object; at the root it may instead (or also) hold the whole-account lists.
  bool read_chat(od::object& chat, const ChatPlace& place, bool root) {
    ChatState state;
    bool messages_seen = false;
    bool deferred = false;
    bool lists_seen = false;
    for (auto result : chat) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return fail_json(e);
      const char* key = field.key().raw();
      od::value& value = field.value();
      switch (key[0]) {
        case 'n':
          if (key_is(key, "name")) {
            if (!read_chat_name(value, state)) return false;
          }
          break;
        case 't':
          if (key_is(key, "type")) {
            if (!read_chat_type(value, state)) return false;
          }
          break;
        case 'i':
          if (key_is(key, "id")) {
            if (!read_chat_id(value, state)) return false;
          }
          break;
        case 'm':
          if (key_is(key, "messages")) {
            messages_seen = true;
            if (deferred) break;
            if (!state.started) {
              if (!state.ready()) {
                // Leave the array to the iterator, which skips it; the rewind below reads it.
                deferred = true;
                break;
              }
              if (!start_chat(state, place)) return false;
            }
            if (state.wanted && !read_messages(value, state.chat_id, place)) return false;
          }
          break;
        case 'c':
          if (root && key_is(key, "chats")) {
            if (!read_chat_list(value, "chats", lists_seen)) return false;
          }
          break;
        case 'l':
          if (root && key_is(key, "left_chats")) {
            if (!read_chat_list(value, "left_chats", lists_seen)) return false;
          }
          break;
        default:
          break;
      }
    }
    if (root && !messages_seen) {
      return lists_seen || fail_export("no 'messages' or 'chats.list'");
    }
    if (!state.started && !start_chat(state, place)) return false;
    if (deferred && state.wanted) {
      bool not_empty = false;
      if (error_code e = chat.reset().get(not_empty)) return fail_json(e);
      for (auto result : chat) {
        od::field field;
        if (error_code e = std::move(result).get(field)) return fail_json(e);
        if (key_is(field.key().raw(), "messages") &&
            !read_messages(field.value(), state.chat_id, place)) {
          return false;
        }
      }
    }
    return true;
  }

  bool read_chat_name(od::value& value, ChatState& state) {
    state.seen_name = true;
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail_json(e);
    // The name is informational: a null (deleted account) or odd name is just empty.
    state.name = {};
    if (type == od::json_type::string) {
      if (error_code e = value.get_string().get(state.name)) return fail_json(e);
    }
    return true;
  }

  bool read_chat_type(od::value& value, ChatState& state) {
    state.seen_type = true;
    state.type_ok = false;
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail_json(e);
    if (type == od::json_type::string) {
      if (error_code e = value.get_string().get(state.type)) return fail_json(e);
      state.type_ok = true;
    }
    return true;
  }

  bool read_chat_id(od::value& value, ChatState& state) {
    state.seen_id = true;
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail_json(e);
    state.id_ok =
        type == od::json_type::number && token_to_int(value.raw_json_token(), state.bare_id);
    return true;
  }

  bool start_chat(ChatState& state, const ChatPlace& place) {
    if (!state.type_ok || !state.id_ok ||
        !bot_api_chat_id(state.type, state.bare_id, state.chat_id)) {
      return fail_export(place.describe() + " has no usable 'id' and 'type'");
    }
    state.started = true;
    state.wanted = sink_.on_chat(state.chat_id, state.name, state.type);
    return true;
  }

  bool read_chat_list(od::value& value, std::string_view list_name, bool& lists_seen) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail_json(e);
    if (type != od::json_type::object) {
      // Appended piecewise: GCC 12 at -O3 misreads the concatenation (-Wrestrict).
      std::string message(1, '\'');
      message.append(list_name).append("' is not an object");
      return fail_export(message);
    }
    od::object holder;
    if (error_code e = value.get_object().get(holder)) return fail_json(e);
    for (auto result : holder) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return fail_json(e);
      if (!key_is(field.key().raw(), "list")) continue;
      od::value& list_value = field.value();
      if (error_code e = list_value.type().get(type)) return fail_json(e);
      if (type != od::json_type::array) {
        return fail_export("'" + std::string(list_name) + ".list' is not an array");
      }
      lists_seen = true;
      od::array list;
      if (error_code e = list_value.get_array().get(list)) return fail_json(e);
      ChatPlace place{list_name, 0};
      for (auto element : list) {
        od::value chat_value;
        if (error_code e = std::move(element).get(chat_value)) return fail_json(e);
        if (error_code e = chat_value.type().get(type)) return fail_json(e);
        if (type != od::json_type::object) {
          return fail_export(place.describe() + " is not an object");
        }
        od::object chat;
        if (error_code e = chat_value.get_object().get(chat)) return fail_json(e);
        if (!read_chat(chat, place, false)) return false;
        ++place.index;
      }
    }
    return true;
  }

  bool read_messages(od::value& value, std::int64_t chat_id, const ChatPlace& place) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail_json(e);
    if (type != od::json_type::array) {
      return fail_export("'messages' of " + place.describe() + " is not an array");
    }
    od::array messages;
    if (error_code e = value.get_array().get(messages)) return fail_json(e);
    for (auto element : messages) {
      od::value message;
      if (error_code e = std::move(element).get(message)) return fail_json(e);
      if (error_code e = message.type().get(type)) return fail_json(e);
      if (type != od::json_type::object) {
        sink_.on_rejected("not_an_object");
        continue;
      }
      od::object fields;
      if (error_code e = message.get_object().get(fields)) return fail_json(e);
      if (!read_message(fields, chat_id)) return false;
    }
    return true;
  }

  // Returns false only on a JSON error; a bad message is reported to the sink. Reading
  // stops at the first bad field: the enclosing array iterator skips the rest.
  bool read_message(od::object& fields, std::int64_t chat_id) {
    pipeline::Event event;
    event.conversation = chat_id;
    event.source = pipeline::Source::telegram;
    event.author_hint = pipeline::AuthorHint::unknown;
    bool has_id = false;
    bool has_unixtime = false;
    bool has_date = false;
    bool has_author = false;
    bool foreign_reply = false;
    std::string_view date;
    const char* reason = nullptr;

    for (auto result : fields) {
      od::field field;
      if (error_code e = std::move(result).get(field)) return fail_json(e);
      const char* key = field.key().raw();
      od::value& value = field.value();
      od::json_type type;
      switch (key[0]) {
        case 'i':
          if (!key_is(key, "id")) break;
          if (error_code e = value.type().get(type)) return fail_json(e);
          has_id = true;
          if (type != od::json_type::number ||
              !token_to_int(value.raw_json_token(), event.message_id) || event.message_id <= 0) {
            reason = "bad_id";
          }
          break;
        case 't':
          if (key_is(key, "type")) {
            if (error_code e = value.type().get(type)) return fail_json(e);
            std::string_view kind;
            if (type != od::json_type::string) {
              reason = "bad_type";
            } else if (error_code e = read_string(value, kind)) {
              return fail_json(e);
            } else if (kind == "message") {
              event.kind = pipeline::EventKind::message;
            } else if (kind == "service" || kind == "unsupported") {
              event.kind = pipeline::EventKind::service;
            } else {
              reason = "bad_type";
            }
          } else if (key_is(key, "text")) {
            if (!check_text(value, reason)) return false;
          }
          break;
        case 'd':
          if (key_is(key, "date_unixtime")) {
            if (error_code e = value.type().get(type)) return fail_json(e);
            std::string_view digits;
            bool ok = false;
            if (type == od::json_type::string) {
              if (error_code e = read_string(value, digits)) return fail_json(e);
              ok = decimal_to_int(digits, event.time);
            } else if (type == od::json_type::number) {
              ok = token_to_int(value.raw_json_token(), event.time);
            }
            if (!ok) reason = "bad_time";
            has_unixtime = true;
          } else if (key_is(key, "date")) {
            // Parsed after the loop, and only if date_unixtime (which follows) is absent.
            if (error_code e = value.type().get(type)) return fail_json(e);
            if (type != od::json_type::string) {
              reason = "bad_time";
            } else if (error_code e = read_string(value, date)) {
              return fail_json(e);
            }
            has_date = true;
          }
          break;
        case 'f':
          if (key_is(key, "from_id")) {
            if (!read_author(value, event, has_author, reason)) return false;
          }
          break;
        case 'a':
          if (key_is(key, "actor_id")) {
            if (!read_author(value, event, has_author, reason)) return false;
          }
          break;
        case 'r':
          if (key_is(key, "reply_to_message_id")) {
            if (error_code e = value.type().get(type)) return fail_json(e);
            if (type != od::json_type::number ||
                !token_to_int(value.raw_json_token(), event.reply_to) || event.reply_to <= 0) {
              reason = "bad_reply_to";
            }
          } else if (key_is(key, "reply_to_peer_id")) {
            if (error_code e = value.type().get(type)) return fail_json(e);
            foreign_reply = type != od::json_type::null;
          }
          break;
        default:
          break;
      }
      if (reason != nullptr) break;
    }

    if (reason == nullptr) reason = finish_message(event, has_id, has_unixtime, has_date, date,
                                                   has_author);
    if (reason != nullptr) {
      sink_.on_rejected(reason);
      return true;
    }
    // A reply into another chat points at a message id of that chat, not of this one.
    if (foreign_reply) event.reply_to = 0;
    sink_.on_event(event);
    return true;
  }

  const char* finish_message(pipeline::Event& event, bool has_id, bool has_unixtime,
                             bool has_date, std::string_view date, bool has_author) const {
    if (!has_id) return "missing_id";
    if (!has_unixtime) {
      if (!has_date) return "missing_time";
      if (!options_.export_timezone) return "no_export_timezone";
      std::int64_t local = 0;
      if (!parse_local_date(date, local)) return "bad_time";
      event.time = options_.export_timezone->to_utc(local);
    }
    if (event.time < kFirstTime || event.time >= kEndTime) return "time_out_of_range";
    if (!has_author) {
      if (event.kind == pipeline::EventKind::message) return "missing_author";
      event.author = 0;
      event.author_hint = pipeline::AuthorHint::unknown;
    }
    return nullptr;
  }

  // from_id or actor_id: the first non-null one names the author. A null one is legal
  // only on service messages, which is decided once the message's type is known.
  bool read_author(od::value& value, pipeline::Event& event, bool& has_author,
                   const char*& reason) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail_json(e);
    if (type == od::json_type::null) return true;
    if (type != od::json_type::string) {
      reason = "bad_from_id";
      return true;
    }
    std::string_view text;
    if (error_code e = read_string(value, text)) return fail_json(e);
    std::int64_t author = 0;
    pipeline::AuthorHint hint = pipeline::AuthorHint::unknown;
    if (!parse_peer(text, author, hint)) {
      reason = "bad_from_id";
      return true;
    }
    if (!has_author) {
      event.author = author;
      event.author_hint = hint;
      has_author = true;
    }
    return true;
  }

  // The text is never kept; only its shape is checked, without unescaping anything.
  bool check_text(od::value& value, const char*& reason) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return fail_json(e);
    if (type == od::json_type::string) return true;
    if (type != od::json_type::array) {
      reason = "bad_text";
      return true;
    }
    od::array parts;
    if (error_code e = value.get_array().get(parts)) return fail_json(e);
    for (auto element : parts) {
      od::value part;
      if (error_code e = std::move(element).get(part)) return fail_json(e);
      if (error_code e = part.type().get(type)) return fail_json(e);
      if (type != od::json_type::string && type != od::json_type::object) {
        reason = "bad_text";
        return true;
      }
    }
    return true;
  }

  std::string_view origin_;
  const ParseOptions& options_;
  Sink& sink_;
  error_code json_error_ = simdjson::SUCCESS;
  std::string problem_;
};

// One parser per thread: its buffers are reused across files. A sink that parses
// another file from inside a callback gets a fresh parser instead of corrupting this one.
struct ThreadParser {
  od::parser parser;
  bool busy = false;
};

Result<void> parse_padded(simdjson::padded_string_view json, std::string_view origin,
                          const ParseOptions& options, Sink& sink) {
  ExportReader reader(origin, options, sink);
  thread_local ThreadParser slot;
  if (slot.busy) {
    od::parser nested;
    return reader.run(nested, json);
  }
  struct Release {
    ThreadParser& slot;
    ~Release() {
      slot.busy = false;
      if (slot.parser.capacity() > kKeptParserCapacity) slot.parser = od::parser{};
    }
  } release{slot};
  slot.busy = true;
  return reader.run(slot.parser, json);
}

}  // namespace

bool bot_api_chat_id(std::string_view type, std::int64_t bare_id, std::int64_t& out) {
  if (type == "personal_chat" || type == "bot_chat" || type == "saved_messages" ||
      type == "replies") {
    if (!valid_bare_id(bare_id, kMaxUserId)) return false;
    out = bare_id;
    return true;
  }
  if (type == "private_group") {
    if (!valid_bare_id(bare_id, kMaxGroupId)) return false;
    out = -bare_id;
    return true;
  }
  if (type == "private_supergroup" || type == "public_supergroup" ||
      type == "private_channel" || type == "public_channel") {
    if (!valid_bare_id(bare_id, kMaxGroupId)) return false;
    out = -(kChannelBase + bare_id);
    return true;
  }
  return false;
}

bool bot_api_peer_id(std::string_view from_id, std::int64_t& out) {
  pipeline::AuthorHint hint;
  return parse_peer(from_id, out, hint);
}

Result<void> parse_bytes(std::string_view bytes, std::string_view origin,
                         const ParseOptions& options, Sink& sink) {
  // The caller's bytes carry no padding guarantee; simdjson reads past the end.
  simdjson::padded_string padded(bytes);
  if (padded.data() == nullptr) {
    return make_error(std::string(origin) + ": out of memory while copying the input");
  }
  return parse_padded(padded, origin, options, sink);
}

Result<void> parse_file(const std::string& path, const ParseOptions& options, Sink& sink) {
  auto cannot_read = [&](std::string_view reason) {
    return make_error(path + ": cannot read: " + std::string(reason));
  };
  // Checked first because simdjson's loader would try to size a directory or wait on a FIFO.
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return cannot_read(std::generic_category().message(errno));
  }
  if (S_ISDIR(info.st_mode)) return cannot_read(std::generic_category().message(EISDIR));
  if (!S_ISREG(info.st_mode)) return cannot_read("not a regular file");
  if (!options.map_file) {
    errno = 0;
    simdjson::padded_string contents;
    if (error_code e = simdjson::padded_string::load(path).get(contents)) {
      if (errno != 0) return cannot_read(std::generic_category().message(errno));
      return cannot_read(std::string(error_name(e)) + ": " + simdjson::error_message(e));
    }
    return parse_padded(contents, path, options, sink);
  }
  // Map the file instead of reading it: copying a multi-gigabyte export into a fresh
  // buffer costs more (page faults on first touch) than parsing it. The mapping sits
  // at the start of a larger anonymous reservation, so the padding simdjson reads
  // past the end is always mapped.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cannot_read(std::generic_category().message(errno));
  const auto size = static_cast<std::size_t>(info.st_size);
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t reserved = (size + simdjson::SIMDJSON_PADDING + page - 1) / page * page;
  void* base = ::mmap(nullptr, reserved, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    ::close(fd);
    return cannot_read(std::generic_category().message(errno));
  }
  if (size > 0 &&
      ::mmap(base, size, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, fd, 0) == MAP_FAILED) {
    const int err = errno;
    ::munmap(base, reserved);
    ::close(fd);
    return cannot_read(std::generic_category().message(err));
  }
  ::close(fd);
  // A file that grows while mapped is read up to the size it had: the caller sees
  // a consistent (possibly truncated, then rejected) document, never a crash.
  auto result = parse_padded(simdjson::padded_string_view(static_cast<const char*>(base), size,
                                                          reserved),
                             path, options, sink);
  ::munmap(base, reserved);
  return result;
}

}  // namespace replywatch::connectors::telegram_export
