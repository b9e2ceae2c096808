// The bus between connectors and the pipeline. In-process by default; a Kafka
// implementation keys events by conversation so pairing stays partition-local.
#pragma once

#include "connectors/connector.hpp"

#include <boost/asio/io_context.hpp>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace replywatch::daemon {

using EventBatch = connectors::Batch;
using CursorUpdate = connectors::CursorUpdate;

class Bus {
 public:
  virtual ~Bus() = default;
  /// Thread-safe. May block the producer while the consumer is behind.
  virtual void publish(EventBatch batch) = 0;
};

/// Hands batches to `consumer` on the io_context's thread, in publish order.
class InProcessBus : public Bus {
 public:
  InProcessBus(boost::asio::io_context& io, std::function<void(EventBatch&&)> consumer,
               std::size_t max_in_flight = 64);
  void publish(EventBatch batch) override;
  /// Wakes blocked producers for shutdown; later publishes are dropped.
  void close();

 private:
  boost::asio::io_context& io_;
  std::function<void(EventBatch&&)> consumer_;
  std::size_t max_in_flight_;
  std::mutex mutex_;
  std::condition_variable drained_;
  std::size_t in_flight_ = 0;
  bool closed_ = false;
};

}  // namespace replywatch::daemon
