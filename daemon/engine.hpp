// The daemon's state on the pipeline thread: pairing, rolling statistics, the
// counters behind /metrics, the appeal log behind /api/v1/appeals, connector
// health and cursors. Everything here is snapshotted and restored as one.
#pragma once

#include "daemon/bus.hpp"
#include "daemon/config.hpp"
#include "pipeline/pairing.hpp"
#include "pipeline/rolling.hpp"

#include <prometheus/metric_family.h>

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace replywatch::daemon {

/// Log-spaced histogram bounds: 30 s doubling to ~23 days, then 30 days.
const std::vector<double>& reply_buckets();

struct Histogram {
  // Per bucket (not cumulative), plus +Inf last.
  std::vector<std::uint64_t> counts = std::vector<std::uint64_t>(reply_buckets().size() + 1);
  double sum = 0;
  std::uint64_t count = 0;
  void observe(double v, const std::vector<double>& bounds);
};

struct ConnectorHealth {
  std::uint64_t events = 0;
  std::map<std::string, std::uint64_t> errors;  // error_type → count
  std::int64_t last_success = 0;                // unix seconds; 0 never
  bool up = true;      // the last poll succeeded
  bool fatal = false;  // stopped for good (bad credentials): /readyz fails
  bool caught_up = true;
  std::string last_error;  // for /readyz; never holds secrets
};

class Engine : private pipeline::AppealSink {
 public:
  explicit Engine(std::shared_ptr<const Config> config);
  ~Engine() override;

  /// A batch from the bus, at wall-clock `now`.
  void apply(EventBatch&& batch, std::int64_t now);
  /// Expiry by wall clock, and housekeeping. While a connector is still delivering
  /// a backlog (including before its first poll after a start), expiry and the
  /// forgetting of old messages wait, so an answer a few batches behind its
  /// appeal is never beaten by the clock.
  void tick(std::int64_t now);

  void connector_success(const std::string& connector, std::int64_t now, bool caught_up);
  void connector_error(const std::string& connector, const std::string& error_type,
                       const std::string& message, bool fatal);
  /// A poll that failed (after its errors were reported): the connector is down.
  void connector_failed(const std::string& connector);
  /// The connector cannot work as configured (bad token): /readyz reports it.
  void connector_mark_fatal(const std::string& connector);

  /// Configuration reload; the registry changes apply at once.
  void reload(std::shared_ptr<const Config> config);
  void reload_failed(std::int64_t now);

  /// Cursors restored from the snapshot, for a connector to resume from.
  std::map<std::string, std::string> cursors(const std::string& connector) const;

  std::string serialize() const;
  Result<void> restore(std::string_view snapshot);

  std::vector<prometheus::MetricFamily> collect(std::int64_t now) const;

  /// /api/v1/ranking. `by`: agency | responder | branch. Empty optional: bad parameter.
  std::string ranking_json(std::size_t window, const std::string& by, std::int64_t now) const;
  std::string ranking_csv(std::size_t window, const std::string& by, std::int64_t now) const;
  /// /api/v1/appeals: filtered, oldest first, `limit` per page, `cursor` from the
  /// previous page's next_cursor. Returns an error text for a bad cursor.
  Result<std::string> appeals_json(const std::string& agency, const std::string& status,
                                   std::size_t limit, const std::string& cursor) const;

  const Config& config() const { return *config_; }
  const pipeline::Pairing& pairing() const { return *pairing_; }
  std::int64_t last_reload() const { return last_reload_; }
  bool last_reload_ok() const { return last_reload_ok_; }
  const std::map<std::string, ConnectorHealth>& connectors() const { return health_; }

 private:
  pipeline::AppealSink& sink() { return *this; }
  void expire(std::int64_t now);
  bool backlog() const;
  void on_opened(const pipeline::Appeal& a) override;
  void on_closed(const pipeline::Appeal& a) override;

  struct Row;  // one ranking row
  std::vector<Row> ranking_rows(std::size_t window, const std::string& by, std::int64_t now) const;
  /// Ages at `now` of the open appeals, per agency and kind, in one pass.
  std::vector<std::array<pipeline::QuantileSketch, 2>> open_ages(std::int64_t now) const;

  std::shared_ptr<const Config> config_;
  std::unique_ptr<pipeline::Pairing> pairing_;
  std::unique_ptr<pipeline::RollingStats> rolling_;
  std::int64_t now_ = 0;  // the clock of the batch or tick being processed
  std::int64_t max_event_time_ = 0;

  // Counters keyed by label values; agency ids, not indexes, so reloads are safe.
  using AppealKey = std::tuple<std::string, std::string, std::string>;  // agency, source, kind
  std::map<AppealKey, std::array<std::uint64_t, 3>> appeals_;  // opened, answered, unanswered
  std::map<AppealKey, Histogram> reply_;
  std::map<AppealKey, Histogram> business_;
  std::map<std::pair<std::string, int>, std::pair<std::uint64_t, double>> hour_of_week_;
  std::map<std::string, std::uint64_t> rejected_;
  Histogram ingest_lag_;
  std::map<std::string, ConnectorHealth> health_;
  std::map<std::string, std::map<std::string, std::string>> cursors_;

  struct Logged {
    pipeline::Appeal appeal;
    std::string agency;  // by id: indexes move on reload
    std::int64_t closed_at;
  };
  std::deque<Logged> log_;  // closed appeals, in closing order

  std::int64_t last_reload_ = 0;
  bool last_reload_ok_ = true;
};

}  // namespace replywatch::daemon
