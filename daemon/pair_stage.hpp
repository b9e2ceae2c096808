// The pair stage: events → appeal changes. The pairing engine, the clocks of the
// conversations (from the watermarks of the producers that deliver them), and the
// messages that could not simply be applied in order. In one process the producers are
// the connectors; on Kafka, connectors of named instances, and one stage per partition.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/log.hpp"
#include "daemon/metric_families.hpp"
#include "daemon/watermarks.hpp"
#include "pipeline/pairing.hpp"

namespace replywatch::daemon {

/// Why a message could not simply be applied in order, as metric label values.
inline constexpr std::array<std::string_view, 3> kLateReasons = {
    "behind_watermark",  // older than its conversation's clock: re-paired exactly
    "parent_forgotten",  // replies to a forgotten message: paired as if the parent were missing
    "before_retention",  // older than message_retention_secs: recorded, not paired
};
using LateCounts = std::array<std::uint64_t, kLateReasons.size()>;

class PairStage {
 public:
  PairStage(std::shared_ptr<const Config> config, pipeline::AppealSink& out);

  /// Events delivered by `producer`, in any order; `now` for log rate limits. Returns
  /// what was late among them.
  LateCounts apply(const std::string& producer, const std::vector<pipeline::Event>& events,
                   const std::vector<std::pair<std::int64_t, std::int64_t>>& migrations,
                   std::int64_t now);
  /// The producer's watermark moved (never back).
  void set_watermark(const std::string& producer, std::int64_t watermark);
  /// The producer is gone for good: it holds nothing back any more.
  void retire(const std::string& producer);
  /// The producer's index in clocks() (registered on first use).
  std::size_t producer(const std::string& name) { return clocks_.producer(name); }
  /// Conversations' clocks move to their producers' watermarks: expiry, forgetting.
  void advance();
  std::int64_t clock_of(pipeline::Source source, std::int64_t conversation) const {
    return clocks_.clock_of(source, conversation);
  }

  const pipeline::Pairing& pairing() const { return *pairing_; }
  const Clocks& clocks() const { return clocks_; }
  const std::map<std::string, LateCounts>& late() const { return late_; }

  void reload(std::shared_ptr<const Config> config);
  /// replywatch_late_messages_total.
  void collect(Families& out) const;

  void serialize(std::string& out) const;
  /// On an error the stage is left as it was.
  Result<void> restore(std::string_view in);

 private:
  std::shared_ptr<const Config> config_;
  pipeline::AppealSink& out_;
  std::unique_ptr<pipeline::Pairing> pairing_;
  Clocks clocks_;
  std::map<std::string, LateCounts> late_;  // by producer
  LogLimiter late_log_{5, 60};
};

}  // namespace replywatch::daemon
