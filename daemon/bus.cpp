// In-process bus: a bounded hand-off onto the pipeline's thread.
#include "daemon/bus.hpp"

#include <boost/asio/post.hpp>
#include <chrono>
#include <memory>

namespace replywatch::daemon {

InProcessBus::InProcessBus(boost::asio::io_context& io, std::function<void(EventBatch&&)> consumer,
                           std::size_t max_in_flight)
    : io_(io), consumer_(std::move(consumer)), max_in_flight_(max_in_flight) {}

void InProcessBus::publish(EventBatch batch) {
  {
    std::unique_lock lock(mutex_);
    drained_.wait(lock, [&] { return closed_ || in_flight_ < max_in_flight_; });
    if (closed_) return;
    ++in_flight_;
    if (batch.sync) ++published_[batch.connector];
  }
  auto shared = std::make_shared<EventBatch>(std::move(batch));
  boost::asio::post(io_, [this, shared] {
    const bool sync = shared->sync;
    const std::string connector = sync ? shared->connector : std::string();
    consumer_(std::move(*shared));
    {
      std::lock_guard lock(mutex_);
      --in_flight_;
      if (sync) ++applied_[connector];
    }
    drained_.notify_all();
  });
}

bool InProcessBus::wait_durable(const std::string& connector, const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  const std::uint64_t want = published_[connector];
  while (durable_[connector] < want) {
    if (stop || closed_) return false;
    durable_cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  return true;
}

void InProcessBus::snapshot_written() {
  {
    std::lock_guard lock(mutex_);
    durable_ = applied_;
  }
  durable_cv_.notify_all();
}

void InProcessBus::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  drained_.notify_all();
  durable_cv_.notify_all();
}

}  // namespace replywatch::daemon
