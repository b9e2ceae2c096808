// Consume–transform–produce for one stateful stage, exactly once. One consumer in the
// stage's group reads the input topic (read_committed); each assigned partition has its
// own task (its share of the stage's state). Everything a batch of records causes — the
// output records, the stage's checkpoints into its changelog, the input offsets — is
// written in one Kafka transaction, so it all happens or none of it does.
//
// On assignment a partition's task is restored from the latest checkpoint in its
// changelog partition and replays the input from the checkpoint's offset up to the
// committed offset silently (its outputs are already in Kafka): tasks are deterministic
// functions of their input, so the replay rebuilds the state the last owner had at its
// last commit. An aborted transaction resets every task the same way.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/kafka/client.hpp"

namespace replywatch::daemon::kafka {

/// Where a task's records go: into the running transaction.
class Output {
 public:
  virtual ~Output() = default;
  /// A record for `partition` of `topic`; a null value is a tombstone.
  virtual void send(const std::string& topic, int partition, std::string_view key,
                    const std::string* value) = 0;
};

/// One input partition's share of a stage. Its state must depend on its input records
/// alone (and on the configuration), never on timing, so that replays rebuild it.
class PartitionTask {
 public:
  virtual ~PartitionTask() = default;
  /// One record, in offset order. `out` is null while replaying what is already
  /// committed. A bad record returns an error naming what is wrong; it is skipped.
  virtual Result<void> apply(std::string_view key, std::string_view value, Output* out,
                             std::int64_t now) = 0;
  /// After each poll's records (not while replaying).
  virtual void flush(Output& out, std::int64_t now) {
    (void)out;
    (void)now;
  }
  /// Every StageSpec::periodic_ms (not while replaying).
  virtual void periodic(Output& out, std::int64_t now) {
    (void)out;
    (void)now;
  }
  virtual void reload(std::shared_ptr<const Config> config) = 0;
  virtual void serialize(std::string& out) const = 0;
};

struct StageSpec {
  std::string name;  // "pair" | "aggregate": group <group_id>.<name>, logs, metrics
  std::string input;
  std::string changelog;
  std::function<std::unique_ptr<PartitionTask>(int partition, std::shared_ptr<const Config>)> fresh;
  std::function<Result<std::unique_ptr<PartitionTask>>(int partition, std::shared_ptr<const Config>,
                                                       std::string_view state)>
      restore;
  std::int64_t periodic_ms = 0;
};

class StageRunner {
 public:
  StageRunner(std::shared_ptr<const Config> config, StageSpec spec);
  ~StageRunner();

  /// Creates the clients and starts the stage's thread.
  Result<void> start();
  /// Commits what is done, writes a last checkpoint of every task, leaves the group.
  void stop();
  /// Called (once, on the stage's thread) when the stage cannot go on: fenced by another
  /// process with the same transactional id, or a fatal client error.
  std::function<void(const std::string& why)> on_fatal;

  void reload(std::shared_ptr<const Config> config);

  /// f(partition, const Task&) for every partition this instance owns, under the stage's
  /// lock (a batch in progress finishes first).
  template <class Task, class F>
  void for_each_task(F&& f) const {
    std::lock_guard lock(mutex_);
    for (const auto& [partition, state] : partitions_) {
      if (state.task && !state.replaying()) f(partition, static_cast<const Task&>(*state.task));
    }
  }

  /// f(std::vector<const Task*>) over the same tasks at once, under the lock.
  template <class Task, class F>
  auto with_tasks(F&& f) const {
    std::lock_guard lock(mutex_);
    std::vector<const Task*> tasks;
    for (const auto& [partition, state] : partitions_) {
      if (state.task && !state.replaying()) {
        tasks.push_back(static_cast<const Task*>(state.task.get()));
      }
    }
    return f(tasks);
  }

  struct PartitionStatus {
    int partition = 0;
    std::int64_t position = -1;
    std::int64_t lag = -1;  // high watermark − position; −1 unknown
  };
  struct Status {
    bool running = false;  // transactions initialised, consuming
    std::string problem;   // for /readyz; empty when fine
    std::vector<PartitionStatus> partitions;
    std::uint64_t transactions = 0, aborts = 0, rebalances = 0, bad_records = 0, checkpoints = 0,
                  checkpoint_bytes = 0, restores = 0, replayed = 0, produced = 0, retries = 0,
                  producers_renewed = 0;
  };
  Status status() const;
  const std::string& name() const { return spec_.name; }

 private:
  struct Partition {
    std::unique_ptr<PartitionTask> task;
    std::int64_t position = -1;        // next offset to apply; -1 before the first record
    std::int64_t silent_until = -1;    // records below were committed by an earlier owner
    std::int64_t checkpointed = -1;    // input offset of the last checkpoint written
    std::int64_t last_checkpoint = 0;  // wall clock
    std::uint32_t chunks = 0;          // chunk records of the last checkpoint
    bool replaying() const { return position < silent_until; }
  };
  struct Checkpoint {
    std::string state;
    std::int64_t input_offset = -1;
    std::uint32_t chunks = 0;
    /// Read, but unusable (a damaged head, a missing chunk, a wrong checksum): reading
    /// again would give the same, so the partition is rebuilt from its input.
    std::string damage;
  };

  void run();
  bool init_transactions();
  /// Replaces a producer in a fatal state (its transaction timed out at the coordinator
  /// during an outage, say) by a new one with the same transactional id.
  bool renew_producer();
  bool replace_producer();
  void rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list);
  /// Restores every partition in `list` (setting each element's start offset).
  void prepare(rd_kafka_topic_partition_list_t* list);
  Result<Checkpoint> read_checkpoint(int partition);
  void write_checkpoint(int partition, Partition& p, Output& out, std::int64_t now);
  /// Sends the offsets and commits; on an abortable error aborts and resets every task.
  void commit();
  void reset_all();
  /// Records for one transaction: until `out` is full or `wait_ms` has passed.
  std::size_t poll_batch(std::vector<rd_kafka_message_t*>& out, int wait_ms);
  void fail(const std::string& why);
  bool handle(rd_kafka_error_t* error, const char* what);

  std::shared_ptr<const Config> config_;
  StageSpec spec_;
  std::string group_;
  std::string transactional_id_;
  ClientContext consumer_context_, producer_context_, reader_context_;
  Client consumer_, producer_, reader_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool txn_open_ = false;
  bool fatal_ = false;
  bool aborted_ = false;                // the last transaction was aborted: tasks must be reset
  bool renew_ = false;                  // the producer hit a fatal error: a new one takes over
  std::uint64_t positioning_ = 0;       // bumped whenever the consumer's positions are reset
  std::deque<std::int64_t> fenced_at_;  // steady ms of recent fencing errors
  std::int64_t last_periodic_ = 0;

  // partitions_, status_, config_; recursive: error handling inside a batch reports status.
  mutable std::recursive_mutex mutex_;
  std::map<int, Partition> partitions_;
  Status status_;
};

}  // namespace replywatch::daemon::kafka
