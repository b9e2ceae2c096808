// simdjson On-Demand over VK's JSON. Objects are read field by field in whatever order VK
// writes them; a reply nested in `thread.items` takes its wall and post from its parent
// when it does not name them itself.
#include "connectors/vk/vk_parser.hpp"

#include <simdjson.h>

#include <array>
#include <optional>
#include <utility>

#include "connectors/json_scan.hpp"

namespace replywatch::connectors::vk {

namespace {

namespace od = simdjson::ondemand;
using json_scan::kEndTime;
using json_scan::kFirstTime;
using pipeline::AuthorHint;
using pipeline::Event;
using pipeline::EventKind;

constexpr std::string_view kNotAnObject = "not_an_object";
constexpr std::string_view kBadId = "bad_id";
constexpr std::string_view kMissingOwner = "missing_owner";
constexpr std::string_view kBadOwner = "bad_owner";
constexpr std::string_view kBadFromId = "bad_from_id";
constexpr std::string_view kMissingTime = "missing_time";
constexpr std::string_view kTimeOutOfRange = "time_out_of_range";
constexpr std::string_view kBadReply = "bad_reply";
constexpr std::string_view kBadField = "bad_field";
constexpr std::string_view kApiError = "api_error";
constexpr std::string_view kUnknownPush = "unknown_push";

constexpr std::array<std::string_view, 11> kReasons = {
    kNotAnObject,    kBadId,    kMissingOwner, kBadOwner, kBadFromId,   kMissingTime,
    kTimeOutOfRange, kBadReply, kBadField,     kApiError, kUnknownPush,
};

// Nested replies deeper than this are VK's own limit many times over: hostile input.
constexpr int kMaxDepth = 8;

/// One post or comment as read, before its wall and post are known for certain.
struct Item {
  std::int64_t id = 0, owner = 0, from = 0, date = 0, post = 0, reply_to_comment = 0;
  std::int64_t last_parent = 0;  // parents_stack's last element: the nearest ancestor
  std::int64_t reply_to_user = 0;
  std::int64_t thread_count = -1, comments_count = -1;  // `thread.count`, `comments.count`
  bool has_id = false, has_owner = false, has_from = false, has_date = false, has_post = false,
       deleted = false, is_post = false;
  std::string_view reject;  // empty: good so far
  std::vector<Item> replies;
};

bool get_int(od::value v, std::int64_t& out) {
  // VK writes ids as numbers; a string of digits is taken too (execute() and some
  // libraries' archives stringify them).
  od::json_type type;
  if (v.type().get(type)) return false;
  if (type == od::json_type::number) return !v.get_int64().get(out);
  if (type != od::json_type::string) return false;
  std::string_view s;
  if (v.get_string().get(s) || s.empty()) return false;
  return json_scan::token_to_int(s, out);
}

/// A count's value into `slot` (-1 when it is no number); false when it is not JSON.
template <class Field>
bool read_count(Field& field, std::int64_t& slot) {
  od::value v;
  if (field.value().get(v)) return false;
  if (!get_int(v, slot)) slot = -1;
  return true;
}

class Reader {
 public:
  explicit Reader(Parsed& out, std::int64_t received_at) : out_(out), received_at_(received_at) {}

  void reject(std::string_view reason) { ++out_.rejected[std::string(reason)]; }

  /// A post or a comment (or anything else VK put in `items`).
  bool read_item(od::value value, Item& item, int depth) {
    od::object object;
    if (value.get_object().get(object)) {
      item.reject = kNotAnObject;
      return true;
    }
    for (auto field : object) {
      std::string_view key;
      if (field.unescaped_key().get(key)) return false;
      od::value v;
      if (field.value().get(v)) return false;
      if (!read_field(key, v, item, depth)) return false;
    }
    return true;
  }

  bool read_field(std::string_view key, od::value v, Item& item, int depth) {
    auto number = [&](std::int64_t& slot, bool* has, std::string_view reason) {
      std::int64_t n = 0;
      if (!get_int(v, n)) {
        if (item.reject.empty()) item.reject = reason;
        return;
      }
      slot = n;
      if (has) *has = true;
    };
    if (key == "id") {
      number(item.id, &item.has_id, kBadId);
    } else if (key == "owner_id" || key == "post_owner_id" || key == "to_id") {
      // to_id: the wall's id in older API versions' posts.
      if (!item.has_owner) number(item.owner, &item.has_owner, kBadOwner);
    } else if (key == "from_id") {
      number(item.from, &item.has_from, kBadFromId);
    } else if (key == "date") {
      number(item.date, &item.has_date, kMissingTime);
    } else if (key == "post_id") {
      number(item.post, &item.has_post, kBadReply);
    } else if (key == "reply_to_comment") {
      number(item.reply_to_comment, nullptr, kBadReply);
    } else if (key == "reply_to_user") {
      number(item.reply_to_user, nullptr, kBadReply);
    } else if (key == "post_type") {
      item.is_post = true;
    } else if (key == "deleted") {
      bool b = false;
      if (!v.get_bool().get(b)) item.deleted = b;
    } else if (key == "parents_stack") {
      od::array stack;
      if (v.get_array().get(stack)) {
        if (item.reject.empty()) item.reject = kBadReply;
        return true;
      }
      for (auto element : stack) {
        od::value e;
        std::int64_t n = 0;
        if (element.get(e)) return false;
        if (!get_int(e, n)) {
          if (item.reject.empty()) item.reject = kBadReply;
          continue;
        }
        item.last_parent = n;
      }
    } else if (key == "comments") {
      od::object comments;
      if (v.get_object().get(comments)) return true;  // a post's comments: {count, ...}
      for (auto field : comments) {
        std::string_view k;
        if (field.unescaped_key().get(k)) return false;
        if (k == "count" && !read_count(field, item.comments_count)) return false;
      }
    } else if (key == "thread") {
      od::object thread;
      if (v.get_object().get(thread)) return true;  // not the replies we know: ignore
      for (auto field : thread) {
        std::string_view k;
        if (field.unescaped_key().get(k)) return false;
        if (k == "count") {
          if (!read_count(field, item.thread_count)) return false;
          continue;
        }
        if (k != "items") continue;
        od::value items_value;
        od::array items;
        if (field.value().get(items_value) || items_value.get_array().get(items)) continue;
        if (depth >= kMaxDepth) {
          if (item.reject.empty()) item.reject = kBadField;
          continue;
        }
        for (auto element : items) {
          od::value e;
          if (element.get(e)) return false;
          item.replies.emplace_back();
          if (!read_item(e, item.replies.back(), depth + 1)) return false;
        }
      }
    }
    return true;
  }

  /// Emits an item read, and its nested replies, taking the wall and post from `parent`.
  void emit(Item& item, const Item* parent, EventKind kind) {
    ++out_.objects;
    if (parent) {
      if (!item.has_owner && parent->has_owner) {
        item.owner = parent->owner;
        item.has_owner = true;
      }
      if (!item.has_post) {
        item.post = parent->is_post ? parent->id : parent->post;
        item.has_post = parent->is_post ? parent->has_id : parent->has_post;
      }
    }
    // A post has no post_id; a comment always has one.
    const bool is_post = item.is_post || (!item.has_post && !parent);
    std::string_view reason = item.reject;
    if (reason.empty()) {
      if (!item.has_id || item.id <= 0) {
        reason = kBadId;
      } else if (!item.has_owner) {
        reason = kMissingOwner;
      } else if (item.owner == 0) {
        reason = kBadOwner;
      } else if (kind == EventKind::message && !item.deleted) {
        if (!item.has_from || item.from == 0) {
          reason = kBadFromId;
        } else if (!item.has_date) {
          reason = kMissingTime;
        } else if (item.date < kFirstTime || item.date >= kEndTime) {
          reason = kTimeOutOfRange;
        }
      }
    }
    if (!reason.empty()) {
      reject(reason);
    } else {
      Event e;
      e.source = pipeline::Source::vk;
      e.conversation = item.owner;
      e.message_id = item.id;
      e.kind = item.deleted ? EventKind::remove : kind;
      e.time = item.has_date && kind == EventKind::message ? item.date : received_at_;
      e.author = item.from;
      // The wall's own id posts as the community: official, like an anonymous admin.
      e.author_hint = item.from < 0 ? AuthorHint::chat : AuthorHint::user;
      if (!is_post) {
        // The user a comment answers, as VK names it: for an official's comment, whom
        // it answers even at the top level, without reply_to_comment.
        if (item.reply_to_user > 0) e.addressee = item.reply_to_user;
        if (item.reply_to_comment > 0) {
          e.reply_to = item.reply_to_comment;
        } else if (item.last_parent > 0) {
          e.reply_to = item.last_parent;
        } else {
          e.reply_to = item.post;
        }
      }
      out_.events.push_back(e);
    }
    for (Item& reply : item.replies) emit(reply, &item, EventKind::message);
  }

  /// {"response": ...}: an object with `items` (wall.get, wall.getComments) or an array
  /// of objects (wall.getById, execute).
  bool read_response(od::value v) {
    od::json_type type;
    if (v.type().get(type)) return false;
    if (type == od::json_type::array) return read_items(v);
    if (type != od::json_type::object) {
      reject(kNotAnObject);
      return true;
    }
    od::object object;
    if (v.get_object().get(object)) return false;
    Page page;
    bool has_items = false;
    for (auto field : object) {
      std::string_view key;
      if (field.unescaped_key().get(key)) return false;
      if (key == "count" || key == "current_level_count") {
        if (!read_count(field, key == "count" ? page.count : page.level_count)) return false;
        continue;
      }
      if (key != "items") continue;
      od::value items;
      if (field.value().get(items)) return false;
      has_items = true;
      if (!read_items(items, &page)) return false;
    }
    if (has_items) out_.pages.push_back(std::move(page));
    return true;
  }

  bool read_items(od::value v, Page* page = nullptr) {
    od::array items;
    if (v.get_array().get(items)) {
      reject(kNotAnObject);
      return true;
    }
    for (auto element : items) {
      od::value e;
      if (element.get(e)) return false;
      Item item;
      if (!read_item(e, item, 0)) return false;
      if (page) note(*page, item);
      emit(item, nullptr, EventKind::message);
    }
    return true;
  }

  static void note(Page& page, const Item& item) {
    ++page.items;
    if (item.has_id) page.last_id = item.id;
    if (item.is_post || item.comments_count >= 0) {
      page.posts.push_back({item.id, item.comments_count});
    } else if (item.thread_count > static_cast<std::int64_t>(item.replies.size())) {
      page.partial_threads.push_back(
          {item.id, item.thread_count, static_cast<std::uint64_t>(item.replies.size())});
    }
  }

  bool read_error(od::value v) {
    ApiError error;
    od::object object;
    if (!v.get_object().get(object)) {
      for (auto field : object) {
        std::string_view key;
        if (field.unescaped_key().get(key)) return false;
        od::value value;
        if (field.value().get(value)) return false;
        std::int64_t code = 0;
        std::string_view message;
        if (key == "error_code" && get_int(value, code)) {
          error.code = static_cast<int>(code);
        } else if (key == "error_msg" && !value.get_string().get(message)) {
          error.message = std::string(message);
        }
      }
    }
    out_.errors.push_back(std::move(error));
    reject(kApiError);
    return true;
  }

  /// A Callback API push. `object` may come before `type`: it is read into an Item and
  /// judged once the whole push is read.
  bool read_push(od::object root) {
    CallbackInfo info;
    Item item;
    bool has_object = false;
    for (auto field : root) {
      std::string_view key;
      if (field.unescaped_key().get(key)) return false;
      od::value v;
      if (field.value().get(v)) return false;
      std::string_view s;
      std::int64_t n = 0;
      if (key == "type") {
        if (!v.get_string().get(s)) info.type = std::string(s);
      } else if (key == "event_id") {
        if (!v.get_string().get(s)) info.event_id = std::string(s);
      } else if (key == "secret") {
        if (!v.get_string().get(s)) info.secret = std::string(s);
      } else if (key == "group_id") {
        if (get_int(v, n)) info.group_id = n;
      } else if (key == "object") {
        has_object = true;
        if (!read_item(v, item, 0)) return false;
      }
    }
    const std::string type = info.type;
    out_.callbacks.push_back(std::move(info));
    if (type == "confirmation") return true;
    if (!has_object) {
      reject(kUnknownPush);
      return true;
    }
    // A community's Callback API reports walls by the group's id; comments name it
    // through post_owner_id / owner_id, which are negative for a community.
    if (!item.has_owner && out_.callbacks.back().group_id > 0) {
      item.owner = -out_.callbacks.back().group_id;
      item.has_owner = true;
    }
    if (type == "wall_reply_new" || type == "wall_reply_restore") {
      emit(item, nullptr, EventKind::message);
    } else if (type == "wall_reply_edit") {
      emit(item, nullptr, EventKind::edit);
    } else if (type == "wall_reply_delete") {
      item.deleted = true;
      emit(item, nullptr, EventKind::remove);
    } else if (type == "wall_post_new" || type == "wall_repost") {
      item.is_post = true;
      emit(item, nullptr, EventKind::message);
    } else {
      reject(kUnknownPush);
    }
    return true;
  }

  /// The root object: what it is shows in its keys.
  Result<void> read_document(od::document_reference doc) {
    od::object root;
    if (doc.get_object().get(root)) return make_error("not a JSON object");
    // One pass to tell the kinds apart; On-Demand rewinds an object only as a whole.
    bool response = false, error = false, push = false;
    for (auto field : root) {
      std::string_view key;
      if (field.unescaped_key().get(key)) return make_error("not valid JSON");
      if (key == "response") response = true;
      if (key == "error") error = true;
      if (key == "type" || key == "event_id") push = true;
    }
    if (root.reset().error()) return make_error("not valid JSON");
    if (response || error) {
      for (auto field : root) {
        std::string_view key;
        od::value v;
        if (field.unescaped_key().get(key) || field.value().get(v)) {
          return make_error("not valid JSON");
        }
        if (key == "response" && !read_response(v)) return make_error("not valid JSON");
        if (key == "error" && !read_error(v)) return make_error("not valid JSON");
      }
      return {};
    }
    if (push) {
      if (!read_push(root)) return make_error("not valid JSON");
      return {};
    }
    Item item;
    for (auto field : root) {
      std::string_view key;
      od::value v;
      if (field.unescaped_key().get(key) || field.value().get(v)) {
        return make_error("not valid JSON");
      }
      if (!read_field(key, v, item, 0)) return make_error("not valid JSON");
    }
    emit(item, nullptr, EventKind::message);
    return {};
  }

 private:
  Parsed& out_;
  std::int64_t received_at_;
};

}  // namespace

std::span<const std::string_view> rejection_reasons() { return kReasons; }

struct Parser::State {
  od::parser parser;
  simdjson::padded_string buffer;
};

Parser::Parser() : state_(std::make_unique<State>()) {}
Parser::~Parser() = default;
Parser::Parser(Parser&&) noexcept = default;
Parser& Parser::operator=(Parser&&) noexcept = default;

namespace {

/// One past the end of the JSON object starting at `pos` (a brace scan that honours strings
/// and escapes), or npos when it never ends.
std::size_t object_end(std::string_view text, std::size_t pos) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

std::size_t skip_space(std::string_view text, std::size_t pos) {
  while (pos < text.size() && json_scan::is_json_space(text[pos])) ++pos;
  return pos;
}

}  // namespace

Result<void> Parser::parse(std::string_view json, std::int64_t received_at, Parsed& out) {
  const std::size_t start = skip_space(json, 0);
  if (start == json.size() || json[start] != '{') return make_error("not a JSON object");
  const std::size_t end = object_end(json, start);
  if (end == std::string_view::npos) return make_error("not valid JSON (a truncated object)");
  if (skip_space(json, end) != json.size()) {
    return make_error("not valid JSON (text after the object)");
  }
  return parse_object(json.substr(start, end - start), received_at, out);
}

Result<void> Parser::parse_object(std::string_view object, std::int64_t received_at, Parsed& out) {
  // Parse into a copy first: a document that turns out not to be JSON adds nothing.
  Parsed local;
  state_->buffer = simdjson::padded_string(object);
  od::document doc;
  if (state_->parser.iterate(state_->buffer).get(doc)) return make_error("not valid JSON");
  Reader reader(local, received_at);
  if (auto ok = reader.read_document(doc); !ok) return ok;
  out.events.insert(out.events.end(), local.events.begin(), local.events.end());
  for (auto& [reason, n] : local.rejected) out.rejected[reason] += n;
  for (auto& c : local.callbacks) out.callbacks.push_back(std::move(c));
  for (auto& e : local.errors) out.errors.push_back(std::move(e));
  for (auto& page : local.pages) out.pages.push_back(std::move(page));
  out.objects += local.objects;
  return {};
}

Result<void> Parser::parse_many(std::string_view text, std::int64_t received_at, Parsed& out) {
  // Documents are split at their top-level boundaries, so one broken document is named by
  // its offset and nothing after it is read.
  for (std::size_t pos = skip_space(text, 0); pos < text.size(); pos = skip_space(text, pos)) {
    if (text[pos] != '{') {
      return make_error("byte " + std::to_string(pos) + ": expected a JSON object");
    }
    const std::size_t end = object_end(text, pos);
    if (end == std::string_view::npos) {
      return make_error("byte " + std::to_string(pos) + ": a JSON object that never ends");
    }
    if (auto ok = parse_object(text.substr(pos, end - pos), received_at, out); !ok) {
      return make_error("byte " + std::to_string(pos) + ": " + ok.error().message);
    }
    pos = end;
  }
  return {};
}

}  // namespace replywatch::connectors::vk
