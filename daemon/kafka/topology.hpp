// The daemon on Kafka. Ingest: the connectors of this instance publish to <prefix>.events
// (IngestProducer). Pair and aggregate: a StageRunner each, in their consumer groups, one
// task per assigned partition. Serve: /metrics from this instance's connectors and the
// partitions it owns; /api/v1/ranking from <prefix>.agency-stats (the same on every
// instance); /api/v1/appeals from the appeals of the agencies it aggregates.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "daemon/ingest_stage.hpp"
#include "daemon/kafka/ingest_producer.hpp"
#include "daemon/kafka/stage_runner.hpp"
#include "daemon/kafka/stats_view.hpp"
#include "daemon/kafka/topics.hpp"
#include "daemon/topology.hpp"

namespace replywatch::daemon::kafka {

class KafkaTopology : public Topology {
 public:
  /// `fatal`: a stage cannot go on (called on its thread; the daemon should stop).
  KafkaTopology(boost::asio::io_context& io, std::shared_ptr<const Config> config,
                std::function<void(const std::string&)> fatal);
  ~KafkaTopology() override;

  const Config& config() const override { return *config_; }
  Bus& bus() override { return *producer_; }
  Result<void> start() override;
  void stop() override;

  bool push(EventBatch&& batch, std::int64_t now) override;
  void tick(std::int64_t now) override;
  void connector_success(const std::string& c, std::int64_t now, bool caught_up) override;
  void connector_behind(const std::string& c) override { ingest_.behind(c); }
  void connector_error(const std::string& c, const std::string& type, const std::string& message,
                       bool fatal) override {
    ingest_.error(c, type, message, fatal);
  }
  void connector_failed(const std::string& c) override { ingest_.failed(c); }
  void connector_mark_fatal(const std::string& c) override { ingest_.mark_fatal(c); }
  void serving(std::int64_t now) override { ingest_.serving(now); }
  std::map<std::string, std::string> cursors(const std::string& c) const override {
    return ingest_.cursors(c);
  }
  const std::map<std::string, ConnectorHealth>& connectors() const override {
    return ingest_.health();
  }

  void reload(std::shared_ptr<const Config> config) override;
  void reload_failed(std::int64_t now) override;

  std::string snapshot_name() const override { return "kafka-ingest.snap"; }
  std::string serialize() const override;
  Result<void> restore(std::string_view snapshot) override;
  std::string restored_summary() const override { return "connector cursors"; }
  bool durable(const std::string& connector) const override {
    return producer_ && producer_->acknowledged(connector);
  }

  std::vector<prometheus::MetricFamily> collect(std::int64_t now) const override;
  std::string ranking_json(std::size_t window, const std::string& by,
                           std::int64_t now) const override;
  std::string ranking_csv(std::size_t window, const std::string& by,
                          std::int64_t now) const override;
  Result<std::string> appeals_json(const std::string& agency, const std::string& status,
                                   std::size_t limit, const std::string& cursor) const override;
  std::vector<std::string> not_ready() const override;

 private:
  void probe_loop();

  boost::asio::io_context& io_;
  std::shared_ptr<const Config> config_;
  std::function<void(const std::string&)> fatal_;
  IngestStage ingest_;
  Layout layout_;
  std::unique_ptr<IngestProducer> producer_;
  std::unique_ptr<StageRunner> pair_, aggregate_;
  std::unique_ptr<StatsView> stats_;
  std::int64_t last_reload_ = 0;
  bool last_reload_ok_ = true;

  // Whether the brokers answer, asked every few seconds off the io thread.
  std::thread prober_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> brokers_ok_{false};
  mutable std::mutex probe_mutex_;
  std::string probe_error_ = "not contacted yet";
};

}  // namespace replywatch::daemon::kafka
