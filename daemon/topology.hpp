// What the serving side (daemon/server.cpp: HTTP, connectors' threads, timers, signals)
// needs of the stages, however they are wired: in one process (InProcessTopology, the
// default) or through Kafka (kafka::KafkaTopology). Every method runs on the io thread
// unless it says otherwise.
#pragma once

#include <prometheus/metric_family.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/bus.hpp"
#include "daemon/config.hpp"
#include "daemon/engine.hpp"
#include "daemon/ingest_stage.hpp"

namespace replywatch::daemon {

class Topology {
 public:
  virtual ~Topology() = default;

  virtual const Config& config() const = 0;
  /// Where connectors publish (from their own threads).
  virtual Bus& bus() = 0;
  /// After the local snapshot is restored, before connectors start. An error stops the
  /// daemon.
  virtual Result<void> start() { return {}; }
  /// At shutdown, after the connectors stopped: drain what is in flight.
  virtual void stop() {}

  /// A webhook push. False when it cannot be taken now (the caller answers 503).
  virtual bool push(EventBatch&& batch, std::int64_t now) = 0;
  virtual void tick(std::int64_t now) = 0;

  virtual void connector_success(const std::string& connector, std::int64_t now,
                                 bool caught_up) = 0;
  virtual void connector_behind(const std::string& connector) = 0;
  virtual void connector_error(const std::string& connector, const std::string& error_type,
                               const std::string& message, bool fatal) = 0;
  virtual void connector_failed(const std::string& connector) = 0;
  virtual void connector_mark_fatal(const std::string& connector) = 0;
  virtual void serving(std::int64_t now) = 0;
  virtual std::map<std::string, std::string> cursors(const std::string& connector) const = 0;
  virtual const std::map<std::string, ConnectorHealth>& connectors() const = 0;

  virtual void reload(std::shared_ptr<const Config> config) = 0;
  virtual void reload_failed(std::int64_t now) = 0;

  /// The local snapshot: its file name in the data directory, its content.
  virtual std::string snapshot_name() const = 0;
  virtual std::string serialize() const = 0;
  virtual Result<void> restore(std::string_view snapshot) = 0;
  /// A line for the log after a restore.
  virtual std::string restored_summary() const = 0;
  /// A snapshot is on disk: what it holds is durable.
  virtual void snapshot_written() {}
  /// Whether everything the connector published is durable without the local snapshot's
  /// journal (in process: the snapshot is all there is; on Kafka: acknowledged).
  virtual bool durable(const std::string& connector) const {
    (void)connector;
    return true;
  }

  virtual std::vector<prometheus::MetricFamily> collect(std::int64_t now) const = 0;
  virtual std::string ranking_json(std::size_t window, const std::string& by,
                                   std::int64_t now) const = 0;
  virtual std::string ranking_csv(std::size_t window, const std::string& by,
                                  std::int64_t now) const = 0;
  virtual Result<std::string> appeals_json(const std::string& agency, const std::string& status,
                                           std::size_t limit, const std::string& cursor) const = 0;
  /// Why the daemon is not ready, beyond its connectors (one line each).
  virtual std::vector<std::string> not_ready() const { return {}; }
};

/// The default: the stages wired directly on the io thread (Engine), behind a bounded
/// in-process bus; state is the snapshot.
class InProcessTopology : public Topology {
 public:
  /// `sync_applied`: a batch whose source forgets what it confirmed was applied (a
  /// snapshot should follow soon).
  InProcessTopology(boost::asio::io_context& io, std::shared_ptr<const Config> config,
                    std::function<void()> sync_applied);

  const Config& config() const override { return engine_.config(); }
  Bus& bus() override { return bus_; }
  void stop() override { bus_.close(); }
  bool push(EventBatch&& batch, std::int64_t now) override {
    engine_.apply(std::move(batch), now);
    return true;
  }
  void tick(std::int64_t now) override { engine_.tick(now); }
  void connector_success(const std::string& c, std::int64_t now, bool caught_up) override {
    engine_.connector_success(c, now, caught_up);
  }
  void connector_behind(const std::string& c) override { engine_.connector_behind(c); }
  void connector_error(const std::string& c, const std::string& type, const std::string& message,
                       bool fatal) override {
    engine_.connector_error(c, type, message, fatal);
  }
  void connector_failed(const std::string& c) override { engine_.connector_failed(c); }
  void connector_mark_fatal(const std::string& c) override { engine_.connector_mark_fatal(c); }
  void serving(std::int64_t now) override { engine_.serving(now); }
  std::map<std::string, std::string> cursors(const std::string& c) const override {
    return engine_.cursors(c);
  }
  const std::map<std::string, ConnectorHealth>& connectors() const override {
    return engine_.connectors();
  }
  void reload(std::shared_ptr<const Config> config) override { engine_.reload(std::move(config)); }
  void reload_failed(std::int64_t now) override { engine_.reload_failed(now); }
  std::string snapshot_name() const override { return "state.snap"; }
  std::string serialize() const override { return engine_.serialize(); }
  Result<void> restore(std::string_view snapshot) override { return engine_.restore(snapshot); }
  std::string restored_summary() const override;
  void snapshot_written() override { bus_.snapshot_written(); }
  std::vector<prometheus::MetricFamily> collect(std::int64_t now) const override {
    return engine_.collect(now);
  }
  std::string ranking_json(std::size_t window, const std::string& by,
                           std::int64_t now) const override {
    return engine_.ranking_json(window, by, now);
  }
  std::string ranking_csv(std::size_t window, const std::string& by,
                          std::int64_t now) const override {
    return engine_.ranking_csv(window, by, now);
  }
  Result<std::string> appeals_json(const std::string& agency, const std::string& status,
                                   std::size_t limit, const std::string& cursor) const override {
    return engine_.appeals_json(agency, status, limit, cursor);
  }

 private:
  Engine engine_;
  InProcessBus bus_;
};

/// The topology `config.bus` asks for.
std::unique_ptr<Topology> make_topology(boost::asio::io_context& io,
                                        std::shared_ptr<const Config> config,
                                        std::function<void()> sync_applied,
                                        std::function<void(const std::string&)> fatal);

}  // namespace replywatch::daemon
