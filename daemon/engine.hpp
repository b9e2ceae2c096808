// The daemon on the in-process bus: the ingest, pair and aggregate stages wired
// directly, on the io_context thread. Everything here is snapshotted and restored as one.
// (On Kafka the same stages are wired through topics: daemon/kafka_bus.*.)
#pragma once

#include <prometheus/metric_family.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/aggregate_stage.hpp"
#include "daemon/bus.hpp"
#include "daemon/config.hpp"
#include "daemon/ingest_stage.hpp"
#include "daemon/pair_stage.hpp"

namespace replywatch::daemon {

class Engine {
 public:
  explicit Engine(std::shared_ptr<const Config> config);
  ~Engine();

  /// A batch from the bus, at wall-clock `now`.
  void apply(EventBatch&& batch, std::int64_t now);
  /// Watermarks, expiry on the conversations' clocks, final counts, housekeeping.
  void tick(std::int64_t now);

  /// A poll that ended well; `caught_up`: nothing left pending at the source.
  void connector_success(const std::string& connector, std::int64_t now, bool caught_up);
  /// The connector is behind its source (a backlog, a rate limit): its watermark holds.
  void connector_behind(const std::string& connector);
  void connector_error(const std::string& connector, const std::string& error_type,
                       const std::string& message, bool fatal);
  /// A poll that failed (after its errors were reported): the connector is down.
  void connector_failed(const std::string& connector);
  /// The connector cannot work as configured (bad token, missing path): /readyz reports it.
  void connector_mark_fatal(const std::string& connector);
  /// Webhook routes are serving from `now` (their watermark starts a lateness later).
  void serving(std::int64_t now) { ingest_.serving(now); }

  /// Configuration reload; the registry changes apply at once.
  void reload(std::shared_ptr<const Config> config);
  void reload_failed(std::int64_t now);

  /// Cursors restored from the snapshot, for a connector to resume from.
  std::map<std::string, std::string> cursors(const std::string& connector) const {
    return ingest_.cursors(connector);
  }

  std::string serialize() const;
  Result<void> restore(std::string_view snapshot);

  std::vector<prometheus::MetricFamily> collect(std::int64_t now) const;

  /// /api/v1/ranking. `by`: agency | responder | branch.
  std::string ranking_json(std::size_t window, const std::string& by, std::int64_t now) const;
  std::string ranking_csv(std::size_t window, const std::string& by, std::int64_t now) const;
  /// /api/v1/appeals: filtered, oldest first, `limit` per page, `cursor` from the
  /// previous page's next_cursor. Returns an error text for a bad cursor.
  Result<std::string> appeals_json(const std::string& agency, const std::string& status,
                                   std::size_t limit, const std::string& cursor) const {
    return aggregate_.appeals_json(agency, status, limit, cursor);
  }

  const Config& config() const { return *config_; }
  const pipeline::Pairing& pairing() const { return pair_.pairing(); }
  const AppealStore& appeals() const { return aggregate_.appeals(); }
  /// The clock expiry and finality use for a conversation.
  std::int64_t clock_of(pipeline::Source source, std::int64_t conversation) const {
    return pair_.clock_of(source, conversation);
  }
  std::int64_t last_reload() const { return last_reload_; }
  bool last_reload_ok() const { return last_reload_ok_; }
  const std::map<std::string, ConnectorHealth>& connectors() const { return ingest_.health(); }
  /// Late messages by connector.
  const std::map<std::string, LateCounts>& late() const { return pair_.late(); }

 private:
  /// Producers of the pair stage: the configured connectors (the others retired).
  void register_producers();

  std::shared_ptr<const Config> config_;
  IngestStage ingest_;
  AggregateStage aggregate_;
  PairStage pair_;  // after aggregate_: it reports to it
  std::int64_t last_reload_ = 0;
  bool last_reload_ok_ = true;
};

}  // namespace replywatch::daemon
