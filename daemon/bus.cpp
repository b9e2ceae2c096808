// In-process bus: a bounded hand-off onto the pipeline's thread.
#include "daemon/bus.hpp"

#include <boost/asio/post.hpp>

#include <memory>

namespace replywatch::daemon {

InProcessBus::InProcessBus(boost::asio::io_context& io,
                           std::function<void(EventBatch&&)> consumer, std::size_t max_in_flight)
    : io_(io), consumer_(std::move(consumer)), max_in_flight_(max_in_flight) {}

void InProcessBus::publish(EventBatch batch) {
  {
    std::unique_lock lock(mutex_);
    drained_.wait(lock, [&] { return closed_ || in_flight_ < max_in_flight_; });
    if (closed_) return;
    ++in_flight_;
  }
  auto shared = std::make_shared<EventBatch>(std::move(batch));
  boost::asio::post(io_, [this, shared] {
    consumer_(std::move(*shared));
    {
      std::lock_guard lock(mutex_);
      --in_flight_;
    }
    drained_.notify_all();
  });
}

void InProcessBus::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  drained_.notify_all();
}

}  // namespace replywatch::daemon
