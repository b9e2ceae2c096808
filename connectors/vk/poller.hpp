// Connector `vk` in poll mode: wall.get for the newest posts of each wall, then
// wall.getComments for every post whose comment count moved since it was last read in
// full (and, in rotation, one post per poll regardless: a deletion and a new comment
// between two polls leave the count as it was). Threads longer than the replies
// getComments nests are read through `comment_id`. VK keeps everything it served, so
// the cursors (each wall's posts and their counts) only save requests: a restart without
// them reads the walls again, and pairing drops the duplicates. A comment that disappears
// while the poller runs is deleted (see compare()); one deleted while it was stopped is
// not noticed.
#pragma once

#include "connectors/connector.hpp"
#include "connectors/http/http_client.hpp"
#include "connectors/vk/vk_parser.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace replywatch::connectors::vk {

struct PollerOptions {
  std::string name;
  std::string api_base_url = "https://api.vk.com/method";
  std::string api_version = "5.199";
  std::string token;
  std::string ca_file;
  std::vector<std::int64_t> walls;  // owner ids, negative for communities
  int posts_lookback = 50;
  double requests_per_second = 3;   // VK's limit for a user token
};

class Poller : public Connector {
 public:
  /// `restored`: the cursors of the last snapshot ("wall/<owner>" → "post:count,...").
  Poller(PollerOptions options, CursorMap restored);
  const std::string& name() const override { return options_.name; }
  PollOutcome poll(Output& out, const std::atomic<bool>& stop) override;
  std::optional<std::chrono::milliseconds> requested_delay() const override { return delay_; }
  bool pending() const override { return pending_; }
  std::optional<std::int64_t> seen_as_of() const override { return started_at_; }

  /// The cursor value for a wall's posts and comment counts, and back (for tests).
  static std::string format_counts(const std::map<std::int64_t, std::int64_t>& counts);
  static std::map<std::int64_t, std::int64_t> parse_counts(std::string_view text);

 private:
  enum class Step { ok, skip, stop };
  struct Call {
    Step step = Step::ok;
    PollOutcome outcome = PollOutcome::ok;  // when step is stop
  };

  /// One API call: paced, its errors mapped onto outcomes; the parsed page in `out`.
  Call call(Output& out, const std::string& method, const std::string& params,
            const std::atomic<bool>& stop, Parsed& parsed);
  Call on_api_error(Output& out, const std::string& method, const ApiError& e);
  /// Every comment of one post (threads included) into `parsed`.
  Call read_post(Output& out, std::int64_t wall, std::int64_t post, const std::atomic<bool>& stop,
                 Parsed& parsed);
  Call read_pages(Output& out, const std::string& params, const std::atomic<bool>& stop,
                  Parsed& parsed, Page* first_page);
  Call poll_wall(Output& out, std::int64_t wall, const std::atomic<bool>& stop);
  void deliver(Output& out, std::int64_t wall, Parsed&& parsed);
  std::string redact(std::string text) const;

  PollerOptions options_;
  http::Client client_;
  Parser parser_;
  std::map<std::int64_t, std::map<std::int64_t, std::int64_t>> counts_;  // wall → post → count
  std::map<std::int64_t, std::size_t> rotation_;  // wall → next post re-read regardless
  /// The comments each post showed at its last complete read, and those missing once.
  struct Seen {
    std::vector<std::int64_t> ids;       // sorted
    std::vector<std::int64_t> suspects;  // missing from the last read: deleted if again
  };
  std::map<std::int64_t, std::map<std::int64_t, Seen>> seen_;  // wall → post → comments
  /// Deletions: a comment seen before and missing from two complete reads in a row (one
  /// read can miss a comment when another is deleted between its pages) is removed.
  void compare(std::int64_t wall, std::int64_t post, Parsed& comments);
  std::optional<std::chrono::milliseconds> delay_;
  std::optional<std::int64_t> started_at_;
  std::chrono::steady_clock::time_point last_call_{};
  bool pending_ = true;  // nothing read yet
  static constexpr int kPageSize = 100;     // wall.get and wall.getComments' maximum
  static constexpr int kThreadItems = 10;   // thread_items_count's maximum
};

}  // namespace replywatch::connectors::vk
