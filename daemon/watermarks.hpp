// Event-time progress, in two halves. The ingest side: each connector's watermark
// (every message it will deliver later is newer, unless late). The pair side: the
// clock of each conversation — the earliest watermark of the producers that deliver
// it. In one process the producers are the connectors; on Kafka they are connectors of
// named instances, whose watermarks arrive as records in the events topic. Expiry and
// finality run on these clocks, so neither runs ahead of input still to come.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/event.hpp"
#include "pipeline/flat_map.hpp"
#include "pipeline/pairing.hpp"

namespace replywatch::daemon {

inline constexpr std::int64_t kNoClock = pipeline::Pairing::kNoClock;

/// The ingest side: the configured connectors' progress.
class ConnectorProgress {
 public:
  struct Connector {
    std::string name;
    bool push = false;  // pushes (webhook): caught up whenever the daemon serves
    std::int64_t watermark = kNoClock;
    bool caught_up = false;  // its last poll left nothing pending (false until then)
  };

  explicit ConnectorProgress(std::int64_t lateness_secs = 300) : lateness_(lateness_secs) {}

  /// The configured connectors, in order; keeps the progress of those it already knew.
  void configure(std::vector<Connector> connectors);
  /// Index of a connector by name, or connectors().size() when unknown.
  std::size_t index(std::string_view name) const;
  const std::vector<Connector>& connectors() const { return connectors_; }

  /// A poll ended with nothing pending at wall time `now`: everything older than
  /// now − lateness is in. Pushes advance on tick() alone. True if the watermark moved.
  bool caught_up(std::size_t connector, std::int64_t now);
  /// A backlog, an error, a backoff: the watermark stays where it is, as long as it lasts.
  void behind(std::size_t connector);
  /// Pushes advance with the wall clock once the daemon has served for `lateness`
  /// (pushes that queued up while it was down arrive first).
  void tick(std::int64_t now, std::int64_t serving_since);
  /// now − watermark; −1 without a watermark.
  std::int64_t lag(std::size_t connector, std::int64_t now) const;
  std::int64_t lateness() const { return lateness_; }

  void serialize(std::string& out) const;
  Result<void> restore(std::string_view in);

 private:
  std::int64_t lateness_;
  std::vector<Connector> connectors_;
};

/// The pair side: producers' watermarks and which producers deliver each conversation.
class Clocks {
 public:
  static constexpr std::size_t kMaxProducers = 64;  // owners are a bit mask

  /// The producer's index (registered on first use; beyond kMaxProducers, the last).
  std::size_t producer(std::string_view name);
  /// The producer's watermark moves to `watermark` (never back).
  void set_watermark(std::size_t producer, std::int64_t watermark);
  /// The producer no longer holds anything back (gone for good): it leaves every min.
  void retire(std::size_t producer);
  /// The producer is back (a record from it after it was retired).
  void unretire(std::size_t producer);
  /// The producers that delivered the conversation, as a mask of their indexes.
  std::uint64_t owners(pipeline::Source source, std::int64_t conversation) const {
    const std::uint64_t* mask = owners_.find({static_cast<std::int64_t>(source), conversation});
    return mask ? *mask : 0;
  }
  /// The producer delivered a message of this conversation.
  void delivered(std::size_t producer, pipeline::Source source, std::int64_t conversation);
  /// The earliest watermark among the live producers that delivered the conversation
  /// (among all live producers, for one none has delivered); kNoClock while one of them
  /// has no watermark yet.
  std::int64_t clock_of(pipeline::Source source, std::int64_t conversation) const;

  struct Producer {
    std::string name;
    std::int64_t watermark = kNoClock;
    bool retired = false;
  };
  const std::vector<Producer>& producers() const { return producers_; }

  void serialize(std::string& out) const;
  Result<void> restore(std::string_view in);

 private:
  std::int64_t min_of(std::uint64_t mask) const;

  std::vector<Producer> producers_;
  pipeline::FlatMap<pipeline::PairKey, std::uint64_t> owners_;  // (source, conversation) → mask
};

}  // namespace replywatch::daemon
