// Connector `telegram` in poll mode: getUpdates long polling for one bot. The
// offset moves on (confirming updates to Telegram) only after the batch that
// carries them is in a snapshot on disk, so a crash never loses an update;
// redeliveries after a crash are duplicates, which pairing ignores.
#pragma once

#include "connectors/connector.hpp"
#include "connectors/telegram/bot_api_client.hpp"
#include "connectors/telegram/update_parser.hpp"

#include <optional>
#include <string>

namespace replywatch::connectors::telegram {

struct PollerOptions {
  std::string name;
  std::string api_base_url;
  std::string token;
  std::string ca_file;
  std::int64_t poll_timeout_secs = 25;
};

/// The batch for parsed updates, as a poll or a webhook push delivers them; the caller
/// adds what depends on how they came (cursor, backlog, durability).
Batch to_batch(const std::string& connector, Updates&& updates);

class Poller : public Connector {
 public:
  /// `restored`: the cursors of the last snapshot ("offset" → next update id).
  Poller(PollerOptions options, CursorMap restored);
  const std::string& name() const override { return options_.name; }
  PollOutcome poll(Output& out, const std::atomic<bool>& stop) override;
  std::optional<std::chrono::milliseconds> requested_delay() const override { return delay_; }
  bool long_polls() const override { return true; }
  bool pending() const override { return pending_; }

  /// The query getUpdates is sent with (for tests).
  std::string query() const;

 private:
  PollOutcome on_api_error(Output& out, const ApiError& e, int http_status);

  PollerOptions options_;
  BotApiClient client_;
  UpdateParser parser_;
  std::int64_t offset_ = 0;  // next update id to ask for; 0: whatever Telegram has
  std::optional<std::chrono::milliseconds> delay_;
  bool pending_ = false;  // the last page was full: more updates are waiting
  static constexpr std::size_t kPageSize = 100;  // getUpdates' maximum
  static constexpr int kUnparsableRetries = 3;
  std::size_t page_size_ = kPageSize;
  int unparsable_ = 0;  // consecutive bodies that were not valid JSON
};

}  // namespace replywatch::connectors::telegram
