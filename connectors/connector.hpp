// What every connector is: a poll step that turns its cursor into normalized
// events. The shared runner (daemon/) owns the thread, the interval, backoff,
// cancellation and the standard metrics.
#pragma once

#include "pipeline/event.hpp"

#include <atomic>
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
  bool caught_up = false;        // nothing more pending after this batch
};

/// Where a poll step sends its results; implemented by the daemon.
class Output {
 public:
  virtual ~Output() = default;
  virtual void deliver(Batch&& batch) = 0;
  /// A recoverable problem (bad file, remote error): counted under `error_type`.
  virtual void error(const std::string& error_type, const std::string& message) = 0;
};

enum class PollOutcome { ok, failed, fatal };

class Connector {
 public:
  virtual ~Connector() = default;
  virtual const std::string& name() const = 0;
  /// One poll: deliver what is new. `stop` turns true at shutdown; return soon after.
  virtual PollOutcome poll(Output& out, const std::atomic<bool>& stop) = 0;
  /// True while the connector knows of input it has not delivered yet (a file still
  /// settling, a backlog): the pipeline then holds wall-clock expiry back.
  virtual bool pending() const { return false; }
};

using CursorMap = std::map<std::string, std::string>;

}  // namespace replywatch::connectors
