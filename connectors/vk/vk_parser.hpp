// VK objects as the API hands them out, as normalized events: wall posts (wall.get),
// comments (wall.getComments, with the replies nested in `thread.items`), whole API
// responses, and Callback API pushes. One wall is one conversation (`owner_id`, negative
// for a community), a post roots its comments' thread, and ids are VK's own: posts and
// comments of one wall share one id sequence, so a reply's parent always has a smaller id.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/error.hpp"
#include "pipeline/event.hpp"

namespace replywatch::connectors::vk {

/// Every reason an object can be rejected for; for registering metric labels up front.
std::span<const std::string_view> rejection_reasons();

/// What a Callback API push carried besides its object (for the push route's checks).
struct CallbackInfo {
  std::string type;      // "wall_reply_new", "confirmation", ...
  std::string event_id;  // VK's id of the push: a resent push has the same one
  std::string secret;    // the `secret` field, compared by the route
  std::int64_t group_id = 0;
};

/// An API error body: {"error": {"error_code": N, "error_msg": "..."}}.
struct ApiError {
  int code = 0;
  std::string message;
};

/// What a page of wall.get or wall.getComments says about paging: its top-level items,
/// the threads whose replies it does not all carry, and each post's comment count.
struct Page {
  std::int64_t count = -1;        // `count`: all items (getComments: replies included)
  std::int64_t level_count = -1;  // getComments' `current_level_count`: this level's
  std::uint64_t items = 0;  // top-level items on this page
  std::int64_t last_id = 0;
  struct Thread {
    std::int64_t comment = 0;  // the top-level comment the thread hangs from
    std::int64_t count = 0;    // `thread.count`: its replies
    std::uint64_t items = 0;   // of which on this page
  };
  std::vector<Thread> partial_threads;
  struct Post {
    std::int64_t id = 0;
    std::int64_t comments = -1;  // `comments.count` (replies in threads included)
  };
  std::vector<Post> posts;
};

struct Parsed {
  std::vector<pipeline::Event> events;
  std::map<std::string, std::uint64_t> rejected;  // reason → objects
  std::vector<CallbackInfo> callbacks;            // one per push document
  std::vector<ApiError> errors;                   // one per error document
  std::vector<Page> pages;                        // one per response with `items`
  std::uint64_t objects = 0;                      // posts and comments read, good or not
};

class Parser {
 public:
  Parser();
  ~Parser();
  Parser(Parser&&) noexcept;
  Parser& operator=(Parser&&) noexcept;

  /// Parses one JSON document: {"response": ...} (an object with `items`, or an array of
  /// objects), {"error": ...}, a Callback API push {type, object, group_id, event_id,
  /// secret}, a post, or a comment. `received_at` stands for the time of what carries none
  /// (a deletion, an edit). Appends to `out`; an error only when the document is not JSON
  /// or not an object (nothing of it is kept then).
  Result<void> parse(std::string_view json, std::int64_t received_at, Parsed& out);

  /// A file of such documents, one after another (one per line, or pretty-printed).
  /// Stops at the first document that is not JSON, naming its byte offset.
  Result<void> parse_many(std::string_view text, std::int64_t received_at, Parsed& out);

 private:
  /// One object already delimited (by `parse` or `parse_many`'s scan): parsed and mapped.
  Result<void> parse_object(std::string_view object, std::int64_t received_at, Parsed& out);

  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace replywatch::connectors::vk
