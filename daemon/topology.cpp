// The in-process topology and the choice between the two.
#include "daemon/topology.hpp"

#include "daemon/kafka/topology.hpp"

namespace replywatch::daemon {

InProcessTopology::InProcessTopology(boost::asio::io_context& io,
                                     std::shared_ptr<const Config> config,
                                     std::function<void()> sync_applied)
    : engine_(config), bus_(io, [this, sync_applied = std::move(sync_applied)](EventBatch&& b) {
        const bool sync = b.sync;
        engine_.apply(std::move(b), connectors::wall_now());
        if (sync && sync_applied) sync_applied();
      }) {}

std::string InProcessTopology::restored_summary() const {
  return std::to_string(engine_.pairing().open_appeals()) + " open appeals";
}

std::unique_ptr<Topology> make_topology(boost::asio::io_context& io,
                                        std::shared_ptr<const Config> config,
                                        std::function<void()> sync_applied,
                                        std::function<void(const std::string&)> fatal) {
  if (config->bus.kafka()) {
    return std::make_unique<kafka::KafkaTopology>(io, std::move(config), std::move(fatal));
  }
  return std::make_unique<InProcessTopology>(io, std::move(config), std::move(sync_applied));
}

}  // namespace replywatch::daemon
