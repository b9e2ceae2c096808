// The ingest stage: what the connectors deliver and how they are doing — health, their
// progress (watermarks), rejected input, ingest lag, and the cursors they resume from.
// The same in both buses; only where its batches and watermarks go differs.
#pragma once

#include <map>
#include <string>

#include "daemon/appeal_store.hpp"
#include "daemon/bus.hpp"
#include "daemon/config.hpp"
#include "daemon/metric_families.hpp"
#include "daemon/watermarks.hpp"

namespace replywatch::daemon {

struct ConnectorHealth {
  std::uint64_t events = 0;
  std::map<std::string, std::uint64_t> errors;  // error_type → count
  std::int64_t last_success = 0;                // unix seconds; 0 never
  bool up = true;                               // the last poll succeeded
  bool fatal = false;      // cannot work as configured (bad token, no such path)
  std::string last_error;  // for /readyz; never holds secrets
};

class IngestStage {
 public:
  explicit IngestStage(std::shared_ptr<const Config> config);

  /// Reload: new connectors get health entries (settings change at the next restart).
  void reload(std::shared_ptr<const Config> config);

  /// Accounts a batch before it goes on: health, rejections, ingest lag; takes its cursors.
  void account(EventBatch& batch);
  /// Cursors of a connector's batch that is now durable elsewhere (on Kafka: delivered),
  /// for a bus that accounts a batch before its cursors may be kept.
  void take_cursors(const std::string& connector, std::vector<CursorUpdate>& cursors);

  /// A poll that ended well; `caught_up`: nothing left pending. True if a watermark moved.
  bool success(const std::string& connector, std::int64_t now, bool caught_up);
  void behind(const std::string& connector);
  void error(const std::string& connector, const std::string& error_type,
             const std::string& message, bool fatal);
  void failed(const std::string& connector);
  void mark_fatal(const std::string& connector);
  /// Webhook routes serve from `now`; pushes' watermarks follow the wall clock from then.
  void serving(std::int64_t now) { serving_since_ = now; }
  std::int64_t serving_since() const { return serving_since_; }
  void tick(std::int64_t now) { progress_.tick(now, serving_since_); }

  const ConnectorProgress& progress() const { return progress_; }
  const std::map<std::string, ConnectorHealth>& health() const { return health_; }
  std::map<std::string, std::string> cursors(const std::string& connector) const;

  /// Connector health, progress, rejections, ingest lag.
  void collect(std::int64_t now, Families& out) const;

  void serialize(std::string& out) const;
  Result<void> restore(std::string_view in);

 private:
  std::shared_ptr<const Config> config_;
  ConnectorProgress progress_;
  std::int64_t serving_since_;
  std::map<std::string, std::uint64_t> rejected_;
  Histogram ingest_lag_;
  std::map<std::string, ConnectorHealth> health_;
  std::map<std::string, std::map<std::string, std::string>> cursors_;
};

}  // namespace replywatch::daemon
