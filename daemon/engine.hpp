// The daemon's state on the pipeline thread: pairing, the appeal store and its final
// counters, rolling windows, watermarks, connector health and cursors. Everything
// here is snapshotted and restored as one.
#pragma once

#include <prometheus/metric_family.h>

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/appeal_store.hpp"
#include "daemon/bus.hpp"
#include "daemon/config.hpp"
#include "daemon/log.hpp"
#include "daemon/watermarks.hpp"
#include "pipeline/pairing.hpp"
#include "pipeline/rolling.hpp"

namespace replywatch::daemon {

/// Why a message could not simply be applied in order, as metric label values.
inline constexpr std::array<std::string_view, 3> kLateReasons = {
    "behind_watermark",  // older than its conversation's clock: re-paired exactly
    "parent_forgotten",  // replies to a forgotten message: paired as if the parent were missing
    "before_retention",  // older than message_retention_secs: recorded, not paired
};

struct ConnectorHealth {
  std::uint64_t events = 0;
  std::map<std::string, std::uint64_t> errors;  // error_type → count
  std::array<std::uint64_t, kLateReasons.size()> late{};
  std::int64_t last_success = 0;  // unix seconds; 0 never
  bool up = true;                 // the last poll succeeded
  bool fatal = false;             // cannot work as configured (bad token, no such path)
  std::string last_error;         // for /readyz; never holds secrets
};

class Engine : private pipeline::AppealSink {
 public:
  explicit Engine(std::shared_ptr<const Config> config);
  ~Engine() override;

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
  void serving(std::int64_t now);

  /// Configuration reload; the registry changes apply at once.
  void reload(std::shared_ptr<const Config> config);
  void reload_failed(std::int64_t now);

  /// Cursors restored from the snapshot, for a connector to resume from.
  std::map<std::string, std::string> cursors(const std::string& connector) const;

  std::string serialize() const;
  Result<void> restore(std::string_view snapshot);

  std::vector<prometheus::MetricFamily> collect(std::int64_t now) const;

  /// /api/v1/ranking. `by`: agency | responder | branch.
  std::string ranking_json(std::size_t window, const std::string& by, std::int64_t now) const;
  std::string ranking_csv(std::size_t window, const std::string& by, std::int64_t now) const;
  /// /api/v1/appeals: filtered, oldest first, `limit` per page, `cursor` from the
  /// previous page's next_cursor. Returns an error text for a bad cursor.
  Result<std::string> appeals_json(const std::string& agency, const std::string& status,
                                   std::size_t limit, const std::string& cursor) const;

  const Config& config() const { return *config_; }
  const pipeline::Pairing& pairing() const { return *pairing_; }
  const AppealStore& appeals() const { return store_; }
  const Watermarks& watermarks() const { return watermarks_; }
  /// The clock expiry and finality use for a conversation.
  std::int64_t clock_of(pipeline::Source source, std::int64_t conversation) const {
    return watermarks_.clock_of(source, conversation);
  }
  std::int64_t last_reload() const { return last_reload_; }
  bool last_reload_ok() const { return last_reload_ok_; }
  const std::map<std::string, ConnectorHealth>& connectors() const { return health_; }

 private:
  pipeline::AppealSink& sink() { return *this; }
  void on_appeal(const pipeline::Appeal* before, const pipeline::Appeal* after) override;
  void on_forgotten_deletion(pipeline::Source source, std::int64_t conversation,
                             std::int64_t message) override;
  void configure_watermarks();

  struct Row;  // one ranking row
  std::vector<Row> ranking_rows(std::size_t window, const std::string& by, std::int64_t now) const;
  /// Ages at `now` of the open appeals in each window's cohort, per agency, kind and window.
  using OpenAges =
      std::vector<std::array<std::array<pipeline::QuantileSketch, pipeline::kWindows.size()>, 2>>;
  OpenAges open_ages(std::int64_t now) const;

  std::shared_ptr<const Config> config_;
  AppealStore store_;
  std::unique_ptr<pipeline::Pairing> pairing_;
  std::unique_ptr<pipeline::RollingStats> rolling_;
  Watermarks watermarks_;
  std::int64_t now_ = 0;  // the clock of the batch or tick being processed
  std::int64_t serving_since_ = connectors::wall_now();

  std::map<std::string, std::uint64_t> rejected_;
  Histogram ingest_lag_;
  std::map<std::string, ConnectorHealth> health_;
  std::map<std::string, std::map<std::string, std::string>> cursors_;
  LogLimiter late_log_{5, 60};

  std::int64_t last_reload_ = 0;
  bool last_reload_ok_ = true;
};

}  // namespace replywatch::daemon
