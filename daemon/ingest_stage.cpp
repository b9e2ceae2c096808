// Connector health and progress; the watermarks it keeps are the connectors' own.
#include "daemon/ingest_stage.hpp"

#include "pipeline/binary.hpp"

namespace replywatch::daemon {

namespace {

using pipeline::BinaryReader;
using pipeline::BinaryWriter;
using prometheus::MetricType;

constexpr std::uint32_t kMagic = 0x52574947;  // "RWIG"
constexpr std::uint32_t kVersion = 1;

std::vector<ConnectorProgress::Connector> progress_of(const Config& config) {
  std::vector<ConnectorProgress::Connector> list;
  for (const auto& c : config.connectors) {
    ConnectorProgress::Connector w;
    w.name = c.name;
    w.push = c.pushes();
    list.push_back(std::move(w));
  }
  return list;
}

}  // namespace

IngestStage::IngestStage(std::shared_ptr<const Config> config)
    : config_(std::move(config)),
      progress_(config_->daemon.lateness_secs),
      serving_since_(connectors::wall_now()) {
  progress_.configure(progress_of(*config_));
  for (const auto& c : config_->connectors) health_[c.name];
}

void IngestStage::reload(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  for (const auto& c : config_->connectors) health_[c.name];
}

void IngestStage::account(EventBatch& batch) {
  const auto& bounds = reply_buckets();
  for (const auto& e : batch.events) {
    // An event stamped in the future (clock skew) counts as no lag.
    ingest_lag_.observe(static_cast<double>(std::max<std::int64_t>(0, batch.received_at - e.time)),
                        bounds);
  }
  for (const auto& [reason, n] : batch.rejected) rejected_[reason] += n;
  health_[batch.connector].events += batch.events.size();
  for (auto& c : batch.cursors) cursors_[batch.connector][c.key] = std::move(c.value);
  batch.cursors.clear();
}

void IngestStage::take_cursors(const std::string& connector, std::vector<CursorUpdate>& cursors) {
  for (auto& c : cursors) cursors_[connector][c.key] = std::move(c.value);
  cursors.clear();
}

bool IngestStage::success(const std::string& connector, std::int64_t now, bool caught_up) {
  auto& h = health_[connector];
  h.last_success = now;
  h.fatal = false;  // it works again (the token was fixed, the server came back)
  h.up = true;
  h.last_error.clear();
  const std::size_t index = progress_.index(connector);
  if (!caught_up) {
    progress_.behind(index);
    return false;
  }
  return progress_.caught_up(index, now);
}

void IngestStage::behind(const std::string& connector) {
  progress_.behind(progress_.index(connector));
}

void IngestStage::error(const std::string& connector, const std::string& error_type,
                        const std::string& message, bool fatal) {
  auto& h = health_[connector];
  ++h.errors[error_type];
  h.last_error = message;
  // An erroring connector may hold input it has not delivered: its watermark holds.
  progress_.behind(progress_.index(connector));
  if (fatal) {
    h.fatal = true;
    h.up = false;
  }
}

void IngestStage::failed(const std::string& connector) {
  health_[connector].up = false;
  progress_.behind(progress_.index(connector));
}

void IngestStage::mark_fatal(const std::string& connector) {
  auto& h = health_[connector];
  h.fatal = true;
  h.up = false;
}

std::map<std::string, std::string> IngestStage::cursors(const std::string& connector) const {
  const auto it = cursors_.find(connector);
  return it == cursors_.end() ? std::map<std::string, std::string>{} : it->second;
}

void IngestStage::collect(std::int64_t now, Families& out) const {
  auto received = family("replywatch_connector_events_received_total",
                         "Events a connector delivered to the pipeline.", MetricType::Counter);
  auto errors =
      family("replywatch_connector_errors_total", "Connector errors by type.", MetricType::Counter);
  auto last =
      family("replywatch_connector_last_success_timestamp_seconds",
             "When a connector last completed a poll or delivery successfully.", MetricType::Gauge);
  auto up = family("replywatch_connector_up", "1 when the connector is working, 0 when failed.",
                   MetricType::Gauge);
  auto info = family("replywatch_connector_info",
                     "A configured connector (type, and mode: poll or webhook); always 1.",
                     MetricType::Gauge);
  auto lag = family("replywatch_connector_watermark_lag_seconds",
                    "Wall clock minus the connector's watermark: how far behind expiry and "
                    "final counts run for the conversations it delivers.",
                    MetricType::Gauge);
  for (const auto& c : config_->connectors) {
    // Files are polled; the platforms' connectors name their mode (poll, webhook, callback).
    add_value(info,
              {label("connector", c.name), label("mode", c.mode.empty() ? "poll" : c.mode),
               label("type", c.type)},
              1);
    // A connector that has not caught up once since the start is behind by at least
    // the time the daemon has been serving.
    auto l = progress_.lag(progress_.index(c.name), now);
    if (l < 0) l = std::max<std::int64_t>(0, now - serving_since_);
    add_value(lag, {label("connector", c.name)}, static_cast<double>(l));
  }
  for (const auto& [name, h] : health_) {
    add_value(received, {label("connector", name)}, static_cast<double>(h.events));
    for (const auto& [type, n] : h.errors) {
      add_value(errors, {label("connector", name), label("error_type", type)},
                static_cast<double>(n));
    }
    add_value(last, {label("connector", name)}, static_cast<double>(h.last_success));
    add_value(up, {label("connector", name)}, h.up ? 1 : 0);
  }
  out.push_back(std::move(received));
  out.push_back(std::move(errors));
  out.push_back(std::move(last));
  out.push_back(std::move(up));
  out.push_back(std::move(info));
  out.push_back(std::move(lag));

  auto rejected = family("replywatch_events_rejected_total",
                         "Malformed messages or events skipped, by reason.", MetricType::Counter);
  for (const auto& [reason, n] : rejected_) {
    add_value(rejected, {label("reason", reason)}, static_cast<double>(n));
  }
  out.push_back(std::move(rejected));
  auto ingest = family("replywatch_ingest_lag_seconds",
                       "Receive time minus event time of ingested events.", MetricType::Histogram);
  add_histogram(ingest, {}, ingest_lag_);
  out.push_back(std::move(ingest));
}

void IngestStage::serialize(std::string& out) const {
  BinaryWriter w(out);
  w.put(kMagic);
  w.put(kVersion);
  std::string progress;
  progress_.serialize(progress);
  w.put_bytes(progress);
  w.put(static_cast<std::uint64_t>(rejected_.size()));
  for (const auto& [reason, n] : rejected_) {
    w.put_bytes(reason);
    w.put(n);
  }
  put_histogram(w, ingest_lag_);
  w.put(static_cast<std::uint64_t>(health_.size()));
  for (const auto& [name, h] : health_) {
    w.put_bytes(name);
    w.put(h.events);
    w.put(h.last_success);
    w.put(static_cast<std::uint64_t>(h.errors.size()));
    for (const auto& [type, n] : h.errors) {
      w.put_bytes(type);
      w.put(n);
    }
  }
  w.put(static_cast<std::uint64_t>(cursors_.size()));
  for (const auto& [connector, entries] : cursors_) {
    w.put_bytes(connector);
    w.put(static_cast<std::uint64_t>(entries.size()));
    for (const auto& [k, v] : entries) {
      w.put_bytes(k);
      w.put_bytes(v);
    }
  }
}

Result<void> IngestStage::restore(std::string_view in) {
  BinaryReader r(in);
  auto damaged = [&](const std::string& what) {
    return make_error("ingest state: damaged " + what + " at byte " + std::to_string(r.position()));
  };
  std::uint32_t magic = 0, version = 0;
  std::string_view progress_blob;
  if (!r.get(magic) || magic != kMagic || !r.get(version) || version != kVersion ||
      !r.get_bytes(progress_blob)) {
    return damaged("header");
  }
  ConnectorProgress progress = progress_;
  if (auto ok = progress.restore(progress_blob); !ok) return ok.error();
  decltype(rejected_) rejected;
  decltype(health_) health;
  decltype(cursors_) cursors;
  Histogram lag;
  std::uint64_t n = 0;
  if (!r.get_count(n, 16)) return damaged("rejection counters");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string reason;
    std::uint64_t count = 0;
    if (!r.get_string(reason) || !r.get(count)) return damaged("rejection counters");
    rejected[reason] = count;
  }
  if (!get_histogram(r, lag)) return damaged("ingest lag");
  if (!r.get_count(n, 32)) return damaged("connector health");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string name;
    ConnectorHealth h;
    std::uint64_t errors = 0;
    if (!r.get_string(name) || !r.get(h.events) || !r.get(h.last_success) ||
        !r.get_count(errors, 16)) {
      return damaged("connector health");
    }
    for (std::uint64_t k = 0; k < errors; ++k) {
      std::string type;
      std::uint64_t count = 0;
      if (!r.get_string(type) || !r.get(count)) return damaged("connector errors");
      h.errors[type] = count;
    }
    health[name] = std::move(h);
  }
  if (!r.get_count(n, 16)) return damaged("cursors");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string connector;
    std::uint64_t entries = 0;
    if (!r.get_string(connector) || !r.get_count(entries, 16)) return damaged("cursors");
    for (std::uint64_t k = 0; k < entries; ++k) {
      std::string key, value;
      if (!r.get_string(key) || !r.get_string(value)) return damaged("cursors");
      cursors[connector][key] = std::move(value);
    }
  }
  if (!r.at_end()) return damaged("trailer");
  progress_ = std::move(progress);
  rejected_ = std::move(rejected);
  ingest_lag_ = std::move(lag);
  for (auto& [name, h] : health) health_[name] = std::move(h);
  cursors_ = std::move(cursors);
  return {};
}

}  // namespace replywatch::daemon
