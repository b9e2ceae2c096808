// The in-process wiring: ingest accounts a batch and the pair stage applies it, reporting
// every appeal change straight to the aggregate stage; a tick hands the connectors'
// watermarks to the pair stage, whose conversation clocks then drive expiry and finality.
// Single-threaded by design: every method runs on the io_context thread.
#include "daemon/engine.hpp"

#include <algorithm>

#include "pipeline/binary.hpp"

namespace replywatch::daemon {

namespace {

constexpr std::uint32_t kSnapshotMagic = 0x52575331;  // "RWS1"
constexpr std::uint32_t kSnapshotVersion = 3;

}  // namespace

Engine::Engine(std::shared_ptr<const Config> config)
    : config_(config),
      ingest_(config),
      aggregate_(config),
      pair_(config, aggregate_),
      last_reload_(connectors::wall_now()) {
  register_producers();
}

Engine::~Engine() = default;

void Engine::register_producers() {
  // A conversation no connector has delivered yet waits for every configured one.
  for (const auto& c : config_->connectors) pair_.set_watermark(c.name, kNoClock);
  for (const auto& p : pair_.clocks().producers()) {
    const bool configured = std::any_of(config_->connectors.begin(), config_->connectors.end(),
                                        [&](const ConnectorConfig& c) { return c.name == p.name; });
    if (!configured) pair_.retire(p.name);
  }
}

void Engine::apply(EventBatch&& batch, std::int64_t now) {
  ingest_.account(batch);
  aggregate_.set_now(now);
  pair_.apply(batch.connector, batch.events, batch.migrations, now);
}

void Engine::tick(std::int64_t now) {
  ingest_.tick(now);
  for (const auto& c : ingest_.progress().connectors()) {
    if (c.watermark != kNoClock) pair_.set_watermark(c.name, c.watermark);
  }
  aggregate_.set_now(now);
  pair_.advance();
  aggregate_.tick(now, [this](pipeline::Source s, std::int64_t c) { return pair_.clock_of(s, c); });
}

void Engine::connector_success(const std::string& connector, std::int64_t now, bool caught_up) {
  // A connector that just caught up may have delivered old appeals: age them now rather
  // than at the next tick, so the numbers are right as soon as ingest ends.
  if (ingest_.success(connector, now, caught_up)) tick(now);
}

void Engine::connector_behind(const std::string& connector) { ingest_.behind(connector); }

void Engine::connector_error(const std::string& connector, const std::string& error_type,
                             const std::string& message, bool fatal) {
  ingest_.error(connector, error_type, message, fatal);
}

void Engine::connector_failed(const std::string& connector) { ingest_.failed(connector); }

void Engine::connector_mark_fatal(const std::string& connector) { ingest_.mark_fatal(connector); }

void Engine::reload(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  ingest_.reload(config_);
  pair_.reload(config_);
  aggregate_.reload(config_);
  last_reload_ = connectors::wall_now();
  last_reload_ok_ = true;
}

void Engine::reload_failed(std::int64_t now) {
  last_reload_ = now;
  last_reload_ok_ = false;
}

std::string Engine::serialize() const {
  std::string out;
  pipeline::BinaryWriter w(out);
  w.put(kSnapshotMagic);
  w.put(kSnapshotVersion);
  std::string ingest, pair, aggregate;
  ingest_.serialize(ingest);
  pair_.serialize(pair);
  aggregate_.serialize(aggregate);
  w.put_bytes(ingest);
  w.put_bytes(pair);
  w.put_bytes(aggregate);
  return out;
}

Result<void> Engine::restore(std::string_view snapshot) {
  pipeline::BinaryReader r(snapshot);
  std::uint32_t magic = 0, version = 0;
  if (!r.get(magic) || magic != kSnapshotMagic) return make_error("not a replywatch snapshot");
  if (!r.get(version) || version != kSnapshotVersion) {
    return make_error("snapshot version " + std::to_string(version) +
                      " is not supported (this build reads version " +
                      std::to_string(kSnapshotVersion) + ")");
  }
  std::string_view ingest_blob, pair_blob, aggregate_blob;
  if (!r.get_bytes(ingest_blob) || !r.get_bytes(pair_blob) || !r.get_bytes(aggregate_blob) ||
      !r.at_end()) {
    return make_error("snapshot damaged (header at byte " + std::to_string(r.position()) + ")");
  }
  // Each stage restores into a copy and swaps only when all of it parsed; the pair stage
  // restores quietly (its appeals are already in the aggregate's store).
  IngestStage ingest(config_);
  if (auto ok = ingest.restore(ingest_blob); !ok) return ok.error();
  AggregateStage aggregate(config_);
  if (auto ok = aggregate.restore(aggregate_blob); !ok) return ok.error();
  {  // parse the pair state before touching anything
    AggregateStage scratch(config_);
    PairStage probe(config_, scratch);
    if (auto ok = probe.restore(pair_blob); !ok) return ok.error();
  }
  ingest_ = std::move(ingest);
  aggregate_ = std::move(aggregate);
  if (auto ok = pair_.restore(pair_blob); !ok) return ok.error();
  register_producers();
  return {};
}

std::vector<prometheus::MetricFamily> Engine::collect(std::int64_t now) const {
  Families out;
  aggregate_.collect(now, out);
  ingest_.collect(now, out);
  pair_.collect(out);
  auto reload_ok =
      family("replywatch_config_last_reload_success", "1 if the last configuration load succeeded.",
             prometheus::MetricType::Gauge);
  add_value(reload_ok, {}, last_reload_ok_ ? 1 : 0);
  out.push_back(std::move(reload_ok));
  auto reload_at = family("replywatch_config_last_reload_timestamp_seconds",
                          "When the configuration was last loaded or a reload attempted.",
                          prometheus::MetricType::Gauge);
  add_value(reload_at, {}, static_cast<double>(last_reload_));
  out.push_back(std::move(reload_at));
  return out;
}

std::string Engine::ranking_json(std::size_t window, const std::string& by,
                                 std::int64_t now) const {
  return daemon::ranking_json(aggregate_.ranking_rows(window, by, now),
                              pipeline::kWindows[window].name, by, now);
}

std::string Engine::ranking_csv(std::size_t window, const std::string& by, std::int64_t now) const {
  return daemon::ranking_csv(aggregate_.ranking_rows(window, by, now), by);
}

}  // namespace replywatch::daemon
