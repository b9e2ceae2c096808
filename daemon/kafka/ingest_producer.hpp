// The ingest side on Kafka: connectors' batches become records of <prefix>.events, keyed
// by conversation, through one idempotent producer (acks=all, retried without limit).
// A batch's cursors are kept, and a sync batch is durable, only once every record of it
// and of the connector's batches before it is acknowledged by the brokers. Watermarks go
// to every partition, after the events they cover.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/bus.hpp"
#include "daemon/config.hpp"
#include "daemon/kafka/client.hpp"
#include "daemon/watermarks.hpp"

namespace replywatch::daemon::kafka {

class IngestProducer : public Bus {
 public:
  struct Hooks {
    /// A batch was handed to Kafka (its events and rejections, cursors taken out); called
    /// on the publishing thread: post it where the ingest stage lives.
    std::function<void(EventBatch&&)> accounted;
    /// The cursors of a connector's batches that are now all acknowledged, in order;
    /// called on the producer's poll thread.
    std::function<void(const std::string& connector, std::vector<CursorUpdate>&&)> durable;
    /// The producer cannot go on (librdkafka's fatal error, e.g. fenced by another producer
    /// with the same id): nothing more becomes durable; the daemon should stop.
    std::function<void(const std::string& reason)> fatal;
  };

  IngestProducer(const Config& config, int events_partitions, Hooks hooks);
  ~IngestProducer() override;

  Result<void> start();
  /// Blocks while librdkafka's queue is full (the brokers are away), until close().
  void publish(EventBatch batch) override;
  /// For webhook pushes, on the io thread: false when the queue is full (answer 503).
  bool try_publish(EventBatch& batch);
  bool wait_durable(const std::string& connector, const std::atomic<bool>& stop) override;
  /// Whether every batch the connector published so far is acknowledged.
  bool acknowledged(const std::string& connector) const;
  void close() override;
  /// Waits up to `timeout_ms` for every record to be acknowledged, then stops polling.
  void shutdown(int timeout_ms);

  /// Each connector's watermark, as "<instance>/<connector>", to every partition.
  void send_watermarks(const ConnectorProgress& progress, std::int64_t now);
  std::string producer_name(const std::string& connector) const {
    return instance_ + "/" + connector;
  }

  struct Stats {
    std::uint64_t records = 0, delivered = 0, errors = 0, retries = 0;
    std::uint64_t queued = 0;    // batches not yet acknowledged
    std::uint64_t retrying = 0;  // records refused, produced again after a pause
    std::int64_t oldest_unacknowledged_ms = 0;
  };
  Stats stats() const;

 private:
  struct Pending;  // one published batch, until all its records are acknowledged
  struct Channel;  // one connector's batches, in publish order
  Channel& channel(const std::string& connector);
  /// Produces one record; false when the queue is full and `block` is false.
  bool produce(int partition, const std::string& key, std::string& value, Pending* pending,
               bool block);
  bool send(EventBatch& batch, bool block);
  void delivered(const rd_kafka_message_t& m);
  /// A record of `pending` Kafka refused: produced again after a pause, as long as it takes
  /// (its batch, and every later one of its connector, stays unacknowledged meanwhile).
  void retry_later(int partition, std::string key, std::string value, Pending* pending);
  void produce_retries();
  bool check_fatal();
  void poll_loop();

  BusSettings bus_;
  std::string topic_;
  std::string instance_;
  int partitions_;
  Hooks hooks_;
  ClientContext context_;
  Client client_;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> closed_{false};

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<Channel>> channels_;
  struct Retry {
    int partition;
    std::string key, value;
    Pending* pending;
    std::int64_t due_ms;
  };
  std::deque<Retry> retries_due_;  // guarded by mutex_
  std::atomic<bool> fatal_{false};
  std::atomic<std::uint64_t> records_{0}, delivered_{0}, errors_{0}, retries_{0};
};

}  // namespace replywatch::daemon::kafka
