// What every connector is: a poll step that turns its cursor into normalized
// events. The shared runner (daemon/) owns the thread, the interval, backoff,
// cancellation and the standard metrics.
#pragma once

#include "pipeline/event.hpp"

#include <atomic>
#include <chrono>
#include <optional>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace replywatch::connectors {

/// A connector's cursor change, applied together with the batch that carries it so
/// a snapshot never holds a cursor ahead of the state it describes.
struct CursorUpdate {
  std::string key;    // e.g. a file path
  std::string value;  // connector-specific
};

struct Batch {
  std::string connector;
  std::vector<pipeline::Event> events;
  std::map<std::string, std::uint64_t> rejected;  // reason → count
  std::vector<CursorUpdate> cursors;
  std::int64_t received_at = 0;  // wall clock, unix seconds
  /// The source forgets what it delivered once we confirm it (Telegram offsets):
  /// snapshot soon, and let the connector wait_durable() before confirming.
  bool sync = false;
  /// Chats that moved (a Telegram group became a supergroup): old id → new id.
  std::vector<std::pair<std::int64_t, std::int64_t>> migrations;
};

/// Where a poll step sends its results; implemented by the daemon.
class Output {
 public:
  virtual ~Output() = default;
  virtual void deliver(Batch&& batch) = 0;
  /// A recoverable problem (bad file, remote error): counted under `error_type`.
  virtual void error(const std::string& error_type, const std::string& message) = 0;
  /// Blocks until every batch delivered so far with `sync` is in a snapshot on disk,
  /// or `stop`. False when stopped first.
  virtual bool wait_durable(const std::atomic<bool>& stop) {
    (void)stop;
    return true;
  }
};

/// ok: poll again (after the interval when caught up); retry_later: the remote asked
/// us to wait (requested_delay), not a failure; failed: back off; fatal: the
/// connector cannot work as configured (bad token) and is marked failed.
enum class PollOutcome { ok, retry_later, failed, fatal };

class Connector {
 public:
  virtual ~Connector() = default;
  virtual const std::string& name() const = 0;
  /// One poll: deliver what is new. `stop` turns true at shutdown; return soon after.
  virtual PollOutcome poll(Output& out, const std::atomic<bool>& stop) = 0;
  /// True while the connector knows of input it has not delivered yet (a file still
  /// settling, a backlog). After a poll that leaves it false the connector's watermark
  /// moves to the wall clock less the lateness bound; while it is true (and after an
  /// error or a rate limit) the watermark holds, and so do expiry and final counts.
  virtual bool pending() const { return false; }
  /// A wait the remote asked for (Retry-After), taking precedence over backoff.
  virtual std::optional<std::chrono::milliseconds> requested_delay() const { return std::nullopt; }
  /// Polling is long polling: no interval between polls that returned data or timed out.
  virtual bool long_polls() const { return false; }
  /// The wall clock as of which the last poll saw everything: when it started, for a
  /// poll of many requests (a post read first may have a new comment by the last one).
  /// The watermark moves from here. Nullopt: when the poll returned.
  virtual std::optional<std::int64_t> seen_as_of() const { return std::nullopt; }
};

using CursorMap = std::map<std::string, std::string>;

/// The wall clock in unix seconds: Batch::received_at, connector health, expiry.
inline std::int64_t wall_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace replywatch::connectors
