// Event-time progress: each connector's watermark (every message it will deliver
// later is newer, unless late), and from those the clock of each conversation — the
// earliest watermark of the connectors that deliver it. Expiry and finality run on
// these clocks, so neither runs ahead of input a connector still has to deliver.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/event.hpp"
#include "pipeline/flat_map.hpp"
#include "pipeline/pairing.hpp"

namespace replywatch::daemon {

class Watermarks {
 public:
  static constexpr std::int64_t kNoClock = pipeline::Pairing::kNoClock;
  static constexpr std::size_t kMaxConnectors = 64;  // owners are a bit mask

  struct Connector {
    std::string name;
    bool push = false;  // pushes (webhook): caught up whenever the daemon serves
    std::int64_t watermark = kNoClock;
    bool caught_up = false;  // its last poll left nothing pending (false until then)
  };

  explicit Watermarks(std::int64_t lateness_secs = 300) : lateness_(lateness_secs) {}

  /// The configured connectors, in order; keeps the progress of those it already knew.
  void configure(std::vector<Connector> connectors);
  /// Index of a connector by name, or kMaxConnectors when unknown.
  std::size_t index(std::string_view name) const;
  const std::vector<Connector>& connectors() const { return connectors_; }

  /// The connector delivered a message of this conversation.
  void delivered(std::size_t connector, pipeline::Source source, std::int64_t conversation);
  /// A poll ended with nothing pending at wall time `now`: everything older than
  /// now − lateness is in. Pushes advance on tick() alone. True if the watermark moved.
  bool caught_up(std::size_t connector, std::int64_t now);
  /// A backlog, an error, a backoff: the watermark stays where it is.
  void behind(std::size_t connector);
  /// Pushes advance with the wall clock once the daemon has served for `lateness`
  /// (pushes that queued up while it was down arrive first). A polling connector that
  /// stays behind holds its watermark for as long as it stays behind: expiry never runs
  /// ahead of input it may still deliver.
  void tick(std::int64_t now, std::int64_t serving_since);

  /// The conversation's clock: the earliest watermark among the connectors that
  /// delivered it (all connectors, for one none has delivered).
  std::int64_t clock_of(pipeline::Source source, std::int64_t conversation) const;
  std::int64_t lag(std::size_t connector, std::int64_t now) const;
  std::int64_t lateness() const { return lateness_; }

  void serialize(std::string& out) const;
  Result<void> restore(std::string_view in);

 private:
  std::int64_t min_of(std::uint64_t mask) const;

  std::int64_t lateness_;
  std::vector<Connector> connectors_;
  pipeline::FlatMap<pipeline::PairKey, std::uint64_t> owners_;  // (source, conversation) → mask
};

}  // namespace replywatch::daemon
