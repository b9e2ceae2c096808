// The stages as partition tasks of the Kafka topology.
//
// Pair (one per <prefix>.events partition): the same PairStage as in one process, fed
// with the partition's records. Producers' watermarks arrive as records, so expiry and
// forgetting run when the records say, never on a timer: replays rebuild the state
// exactly. Its appeal changes go to <prefix>.appeals keyed by agency; the producers of
// each conversation and their watermarks (which make its clock) follow them there, so
// the aggregate stage judges finality on the same clocks.
//
// Aggregate (one per <prefix>.appeals partition): the AggregateStage of the agencies
// that hash to the partition, the clocks of the pair partitions, and the rows it
// publishes to <prefix>.agency-stats.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "daemon/aggregate_stage.hpp"
#include "daemon/kafka/client.hpp"
#include "daemon/kafka/records.hpp"
#include "daemon/kafka/stage_runner.hpp"
#include "daemon/kafka/topics.hpp"
#include "daemon/pair_stage.hpp"
#include "pipeline/flat_map.hpp"

namespace replywatch::daemon::kafka {

class PairTask : public PartitionTask, private pipeline::AppealSink {
 public:
  PairTask(int partition, std::shared_ptr<const Config> config, const Layout& layout);

  Result<void> apply(std::string_view key, std::string_view value, Output* out,
                     std::int64_t now) override;
  void flush(Output& out, std::int64_t now) override;
  void reload(std::shared_ptr<const Config> config) override;
  void serialize(std::string& out) const override;
  Result<void> restore(std::string_view in);

  const PairStage& stage() const { return stage_; }

 private:
  void on_appeal(const pipeline::Appeal* before, const pipeline::Appeal* after) override;
  void on_forgotten_deletion(pipeline::Source source, std::int64_t conversation,
                             std::int64_t message) override;
  void broadcast(const std::string& value);
  /// Producers silent for producer_timeout_secs (on the records' clock) are retired.
  void retire_silent();

  int partition_;
  std::shared_ptr<const Config> config_;
  Layout layout_;
  TopicNames topics_;
  PairStage stage_;
  RecordReader reader_;
  EventsRecord record_;
  Output* out_ = nullptr;  // during apply; null while replaying
  std::string buffer_;
  // Deterministic state besides the stage's: the records' clock and each producer's last.
  std::int64_t records_time_ = 0;
  std::map<std::string, std::int64_t> last_seen_;
  bool clocks_changed_ = true;  // broadcast at the next flush (always after a restore)
};

class AggregateTask : public PartitionTask {
 public:
  AggregateTask(int partition, std::shared_ptr<const Config> config, const Layout& layout);

  Result<void> apply(std::string_view key, std::string_view value, Output* out,
                     std::int64_t now) override;
  void periodic(Output& out, std::int64_t now) override;
  void reload(std::shared_ptr<const Config> config) override;
  void serialize(std::string& out) const override;
  Result<void> restore(std::string_view in);

  const AggregateStage& stage() const { return stage_; }
  int partition() const { return partition_; }
  /// Rows for <prefix>.agency-stats: every owned agency in every window, at `now`.
  std::vector<AgencyStats> stats(std::int64_t now) const;

 private:
  std::int64_t clock_of(pipeline::Source source, std::int64_t conversation) const;

  int partition_;
  std::shared_ptr<const Config> config_;
  Layout layout_;
  TopicNames topics_;
  AggregateStage stage_;
  RecordReader reader_;
  AppealsRecord record_;
  std::map<int, Clocks> clocks_;                                      // by pair partition
  pipeline::FlatMap<pipeline::PairKey, std::int32_t> conversations_;  // → pair partition
  std::int64_t settled_epoch_ = 0;  // finality is judged once per expiry tick of clock time
};

}  // namespace replywatch::daemon::kafka
