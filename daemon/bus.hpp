// The bus between connectors and the pipeline. In-process by default; on Kafka
// (daemon/kafka/ingest_producer.*) events are keyed by conversation so pairing stays
// partition-local.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "connectors/connector.hpp"

namespace replywatch::daemon {

using EventBatch = connectors::Batch;
using CursorUpdate = connectors::CursorUpdate;

class Bus {
 public:
  virtual ~Bus() = default;
  /// Thread-safe. May block the producer while the consumer is behind.
  virtual void publish(EventBatch batch) = 0;
  /// Blocks until every batch with `sync` the connector published so far is durable, or
  /// `stop`; false when stopped first. A connector confirms to its source only after it.
  virtual bool wait_durable(const std::string& connector, const std::atomic<bool>& stop) = 0;
  /// Wakes blocked producers for shutdown; later publishes are dropped.
  virtual void close() = 0;
};

/// Hands batches to `consumer` on the io_context's thread, in publish order. A batch is
/// durable once a snapshot that holds it is on disk (snapshot_written).
class InProcessBus : public Bus {
 public:
  InProcessBus(boost::asio::io_context& io, std::function<void(EventBatch&&)> consumer,
               std::size_t max_in_flight = 64);
  void publish(EventBatch batch) override;
  bool wait_durable(const std::string& connector, const std::atomic<bool>& stop) override;
  void close() override;
  /// On the io thread, after a snapshot: everything applied so far is durable.
  void snapshot_written();

 private:
  boost::asio::io_context& io_;
  std::function<void(EventBatch&&)> consumer_;
  std::size_t max_in_flight_;
  std::mutex mutex_;
  std::condition_variable drained_;
  std::condition_variable durable_cv_;
  std::size_t in_flight_ = 0;
  bool closed_ = false;
  // Sync batches by connector: published, applied, in a snapshot.
  std::map<std::string, std::uint64_t> published_, applied_, durable_;
};

}  // namespace replywatch::daemon
