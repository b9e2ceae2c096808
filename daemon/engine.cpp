// The daemon's pipeline-thread state. Single-threaded by design: every method
// runs on the io_context thread, so nothing here locks.
#include "daemon/engine.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>

#include "daemon/json_writer.hpp"
#include "daemon/report.hpp"
#include "pipeline/binary.hpp"

namespace replywatch::daemon {

namespace {

using pipeline::Appeal;
using pipeline::AppealKind;
using pipeline::AppealStatus;
using pipeline::Applied;
using pipeline::BinaryReader;
using pipeline::BinaryWriter;

constexpr std::uint32_t kSnapshotMagic = 0x52575331;  // "RWS1"
constexpr std::uint32_t kSnapshotVersion = 2;

std::string kind_label(AppealKind k) { return std::string(pipeline::to_string(k)); }

void put_string(BinaryWriter& w, const std::string& s) { w.put_bytes(s); }
bool get_string(BinaryReader& r, std::string& s) { return r.get_string(s); }

prometheus::ClientMetric::Label label(std::string name, std::string value) {
  prometheus::ClientMetric::Label l;
  l.name = std::move(name);
  l.value = std::move(value);
  return l;
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_value(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
               double v) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f.metric.push_back(std::move(m));
}

void add_histogram(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
                   const Histogram& h) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum;
  const auto& bounds = reply_buckets();
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += h.counts[i];
    prometheus::ClientMetric::Bucket b;
    b.upper_bound = bounds[i];
    b.cumulative_count = cumulative;
    m.histogram.bucket.push_back(b);
  }
  prometheus::ClientMetric::Bucket inf;
  inf.upper_bound = std::numeric_limits<double>::infinity();
  inf.cumulative_count = h.count;
  m.histogram.bucket.push_back(inf);
  f.metric.push_back(std::move(m));
}

}  // namespace

Engine::Engine(std::shared_ptr<const Config> config)
    : config_(std::move(config)),
      store_(config_->registry),
      pairing_(std::make_unique<pipeline::Pairing>(config_->registry, sink())),
      rolling_(std::make_unique<pipeline::RollingStats>(config_->registry)),
      watermarks_(config_->daemon.lateness_secs),
      last_reload_(connectors::wall_now()) {
  pairing_->set_retention(message_retention(config_->daemon, config_->registry->horizon_secs));
  configure_watermarks();
  for (const auto& c : config_->connectors) health_[c.name];
}

Engine::~Engine() = default;

void Engine::configure_watermarks() {
  std::vector<Watermarks::Connector> list;
  for (const auto& c : config_->connectors) {
    Watermarks::Connector w;
    w.name = c.name;
    w.push = c.type == "telegram" && c.mode == "webhook";
    list.push_back(std::move(w));
  }
  watermarks_.configure(std::move(list));
}

void Engine::apply(EventBatch&& batch, std::int64_t now) {
  now_ = now;
  for (const auto& [from, to] : batch.migrations) {
    pairing_->add_migration(pipeline::Source::telegram, from, to);
  }
  const auto& bounds = reply_buckets();
  const std::size_t connector = watermarks_.index(batch.connector);
  std::array<std::uint64_t, kLateReasons.size()> late{};
  for (const auto& e : batch.events) {
    if (batch.received_at >= e.time) {
      ingest_lag_.observe(static_cast<double>(batch.received_at - e.time), bounds);
    } else {
      ingest_lag_.observe(0, bounds);  // an event stamped in the future: clock skew
    }
    const std::int64_t clock = pairing_->clock(e.source, e.conversation);
    const Applied applied = pairing_->on_event(e);
    if (applied == Applied::unowned) continue;
    watermarks_.delivered(connector, e.source, e.conversation);
    if (applied == Applied::parent_forgotten) {
      ++late[1];
    } else if (applied == Applied::before_retention) {
      ++late[2];
    } else if ((applied == Applied::paired || applied == Applied::repaired) &&
               clock != pipeline::Pairing::kNoClock && e.time <= clock) {
      ++late[0];
    }
  }
  for (const auto& [reason, n] : batch.rejected) rejected_[reason] += n;
  auto& health = health_[batch.connector];
  health.events += batch.events.size();
  for (auto& c : batch.cursors) cursors_[batch.connector][c.key] = std::move(c.value);
  if (late[0] + late[1] + late[2] > 0) {
    for (std::size_t i = 0; i < late.size(); ++i) health.late[i] += late[i];
    long long suppressed = 0;
    if (late_log_.allow(now, suppressed)) {
      log_warn(
          "connector " + batch.connector + ": " + std::to_string(late[0] + late[1] + late[2]) +
          " of " + std::to_string(batch.events.size()) +
          " messages late: " + std::to_string(late[0]) +
          " behind the watermark (re-paired exactly), " + std::to_string(late[1]) +
          " replying to a forgotten message (paired as if the parent were missing), " +
          std::to_string(late[2]) + " older than message_retention_secs (not paired)" +
          (suppressed ? " (" + std::to_string(suppressed) + " similar lines suppressed)" : ""));
    }
  }
}

void Engine::on_appeal(const Appeal* before, const Appeal* after) {
  const Appeal& id = after ? *after : *before;
  // What the windows hold is what was last reported, not the pairing's recomputation
  // (a reload may have changed calendars since).
  std::optional<Appeal> old;
  if (const Appeal* stored = store_.find(id.source, id.conversation, id.opened_message)) {
    old = *stored;
  }
  if (old) rolling_->remove(*old, now_);
  if (after) rolling_->add(*after, now_);
  if (!old && before) {
    store_.reappear(*before, after);
    return;
  }
  store_.apply(old ? &*old : nullptr, after);
}

void Engine::on_forgotten_deletion(pipeline::Source source, std::int64_t conversation,
                                   std::int64_t message) {
  const Appeal* stored = store_.find(source, conversation, message);
  if (!stored || stored->status == AppealStatus::answered ||
      stored->status == AppealStatus::withdrawn) {
    return;
  }
  Appeal after = *stored;
  after.status = AppealStatus::withdrawn;
  on_appeal(stored, &after);
}

void Engine::tick(std::int64_t now) {
  now_ = now;
  watermarks_.tick(now, serving_since_);
  const auto clock_of = [this](pipeline::Source s, std::int64_t c) {
    return watermarks_.clock_of(s, c);
  };
  pairing_->advance(clock_of);
  store_.settle(clock_of);
  store_.evict(now - config_->daemon.appeal_retention_secs);
  rolling_->advance(now);
}

void Engine::serving(std::int64_t now) { serving_since_ = now; }

void Engine::connector_success(const std::string& connector, std::int64_t now, bool caught_up) {
  auto& h = health_[connector];
  h.last_success = now;
  h.fatal = false;  // it works again (the token was fixed, the server came back)
  h.up = true;
  h.last_error.clear();
  const std::size_t index = watermarks_.index(connector);
  if (!caught_up) {
    watermarks_.behind(index);
    return;
  }
  // A connector that just caught up may have delivered old appeals: age them now
  // rather than at the next tick, so the numbers are right as soon as ingest ends.
  if (watermarks_.caught_up(index, now)) tick(now);
}

void Engine::connector_behind(const std::string& connector) {
  watermarks_.behind(watermarks_.index(connector));
}

void Engine::connector_error(const std::string& connector, const std::string& error_type,
                             const std::string& message, bool fatal) {
  auto& h = health_[connector];
  ++h.errors[error_type];
  h.last_error = message;
  // An erroring connector may hold input it has not delivered: its watermark holds.
  watermarks_.behind(watermarks_.index(connector));
  if (fatal) {
    h.fatal = true;
    h.up = false;
  }
}

void Engine::connector_mark_fatal(const std::string& connector) {
  auto& h = health_[connector];
  h.fatal = true;
  h.up = false;
}

void Engine::connector_failed(const std::string& connector) {
  health_[connector].up = false;
  watermarks_.behind(watermarks_.index(connector));
}

void Engine::reload(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  pairing_->set_registry(config_->registry);
  rolling_->set_registry(config_->registry);
  store_.set_registry(config_->registry);
  for (const auto& c : config_->connectors) health_[c.name];
  last_reload_ = connectors::wall_now();
  last_reload_ok_ = true;
}

void Engine::reload_failed(std::int64_t now) {
  last_reload_ = now;
  last_reload_ok_ = false;
}

std::map<std::string, std::string> Engine::cursors(const std::string& connector) const {
  const auto it = cursors_.find(connector);
  return it == cursors_.end() ? std::map<std::string, std::string>{} : it->second;
}

// ---- snapshot ----

std::string Engine::serialize() const {
  std::string out;
  BinaryWriter w(out);
  w.put(kSnapshotMagic);
  w.put(kSnapshotVersion);
  std::string pairing, rolling, store, watermarks;
  pairing_->serialize(pairing);
  rolling_->serialize(rolling);
  store_.serialize(store);
  watermarks_.serialize(watermarks);
  w.put_bytes(pairing);
  w.put_bytes(rolling);
  w.put_bytes(store);
  w.put_bytes(watermarks);

  w.put(static_cast<std::uint64_t>(rejected_.size()));
  for (const auto& [reason, n] : rejected_) {
    put_string(w, reason);
    w.put(n);
  }
  put_histogram(w, ingest_lag_);
  w.put(static_cast<std::uint64_t>(health_.size()));
  for (const auto& [name, h] : health_) {
    put_string(w, name);
    w.put(h.events);
    w.put(h.last_success);
    for (const auto n : h.late) w.put(n);
    w.put(static_cast<std::uint64_t>(h.errors.size()));
    for (const auto& [type, n] : h.errors) {
      put_string(w, type);
      w.put(n);
    }
  }
  w.put(static_cast<std::uint64_t>(cursors_.size()));
  for (const auto& [connector, entries] : cursors_) {
    put_string(w, connector);
    w.put(static_cast<std::uint64_t>(entries.size()));
    for (const auto& [k, v] : entries) {
      put_string(w, k);
      put_string(w, v);
    }
  }
  return out;
}

Result<void> Engine::restore(std::string_view snapshot) {
  BinaryReader r(snapshot);
  auto damaged = [&](const std::string& what) {
    return make_error("snapshot damaged (" + what + " at byte " + std::to_string(r.position()) +
                      ")");
  };
  std::uint32_t magic = 0, version = 0;
  if (!r.get(magic) || magic != kSnapshotMagic) return make_error("not a replywatch snapshot");
  if (!r.get(version) || version != kSnapshotVersion) {
    return make_error("snapshot version " + std::to_string(version) +
                      " is not supported (this build reads version " +
                      std::to_string(kSnapshotVersion) + ")");
  }
  std::string_view pairing_blob, rolling_blob, store_blob, watermarks_blob;
  if (!r.get_bytes(pairing_blob) || !r.get_bytes(rolling_blob) || !r.get_bytes(store_blob) ||
      !r.get_bytes(watermarks_blob)) {
    return damaged("header");
  }
  // Restore into fresh objects, and swap in only when everything parsed. The pairing
  // restores quietly: its appeals are already in the store.
  AppealStore store(config_->registry);
  if (auto ok = store.restore(store_blob); !ok) return ok.error();
  auto pairing = std::make_unique<pipeline::Pairing>(config_->registry, sink());
  auto rolling = std::make_unique<pipeline::RollingStats>(config_->registry);
  if (auto ok = pairing->restore(pairing_blob); !ok) return ok.error();
  if (auto ok = rolling->restore(rolling_blob); !ok) return ok.error();
  Watermarks watermarks = watermarks_;
  if (auto ok = watermarks.restore(watermarks_blob); !ok) return ok.error();

  decltype(rejected_) rejected;
  decltype(health_) health;
  decltype(cursors_) cursors;
  Histogram lag;
  std::uint64_t n = 0;
  if (!r.get_count(n, 16)) return damaged("rejection counters");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string reason;
    std::uint64_t count = 0;
    if (!get_string(r, reason) || !r.get(count)) return damaged("rejection counters");
    rejected[reason] = count;
  }
  if (!get_histogram(r, lag)) return damaged("ingest lag");
  if (!r.get_count(n, 32)) return damaged("connector health");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string name;
    ConnectorHealth h;
    std::uint64_t errors = 0;
    bool ok = get_string(r, name) && r.get(h.events) && r.get(h.last_success);
    for (auto& v : h.late) ok = ok && r.get(v);
    if (!ok || !r.get_count(errors, 16)) return damaged("connector health");
    for (std::uint64_t k = 0; k < errors; ++k) {
      std::string type;
      std::uint64_t count = 0;
      if (!get_string(r, type) || !r.get(count)) return damaged("connector errors");
      h.errors[type] = count;
    }
    health[name] = std::move(h);
  }
  if (!r.get_count(n, 16)) return damaged("cursors");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string connector;
    std::uint64_t entries = 0;
    if (!get_string(r, connector) || !r.get_count(entries, 16)) return damaged("cursors");
    for (std::uint64_t k = 0; k < entries; ++k) {
      std::string key, value;
      if (!get_string(r, key) || !get_string(r, value)) return damaged("cursors");
      cursors[connector][key] = std::move(value);
    }
  }
  if (!r.at_end()) return damaged("trailer");

  store_ = std::move(store);
  pairing_ = std::move(pairing);
  pairing_->set_retention(message_retention(config_->daemon, config_->registry->horizon_secs));
  rolling_ = std::move(rolling);
  watermarks_ = std::move(watermarks);
  rejected_ = std::move(rejected);
  ingest_lag_ = std::move(lag);
  for (auto& [name, h] : health) health_[name] = std::move(h);
  cursors_ = std::move(cursors);
  return {};
}

// ---- metrics ----

Engine::OpenAges Engine::open_ages(std::int64_t now) const {
  const pipeline::QuantileSketch empty(rolling_->relative_accuracy());
  std::array<pipeline::QuantileSketch, pipeline::kWindows.size()> windows;
  windows.fill(empty);
  OpenAges ages(config_->registry->agencies.size(), {windows, windows});
  pairing_->for_each_open([&](const Appeal& a) {
    if (a.agency < 0 || static_cast<std::size_t>(a.agency) >= ages.size()) return;
    auto& per_window = ages[static_cast<std::size_t>(a.agency)][static_cast<std::size_t>(a.kind)];
    const auto age = static_cast<double>(std::max<std::int64_t>(0, now - a.opened_at));
    for (std::size_t w = 0; w < pipeline::kWindows.size(); ++w) {
      if (pipeline::in_window(a.opened_at, w, now)) per_window[w].add(age);
    }
  });
  return ages;
}

std::vector<prometheus::MetricFamily> Engine::collect(std::int64_t now) const {
  using prometheus::MetricType;
  const auto& registry = *config_->registry;
  std::vector<prometheus::MetricFamily> out;

  auto opened = family("replywatch_appeals_opened_total",
                       "Appeals opened by citizens, counted once final (behind the watermark).",
                       MetricType::Counter);
  auto answered = family("replywatch_appeals_answered_total",
                         "Appeals answered by an official within the horizon, once final.",
                         MetricType::Counter);
  auto unanswered =
      family("replywatch_appeals_unanswered_total",
             "Appeals that passed the horizon without an answer, once final.", MetricType::Counter);
  auto withdrawn = family("replywatch_appeals_withdrawn_total",
                          "Appeals whose message was deleted before any answer, once final; "
                          "they leave every statistic.",
                          MetricType::Counter);
  auto corrected = family("replywatch_appeals_corrected_total",
                          "Final counts taken back by a later message (status: the count it "
                          "was taken from); net = that counter minus this one.",
                          MetricType::Counter);
  // Every configured agency appears, zero or not, so rate() and absent() behave.
  auto with_defaults = store_.counts();
  for (const auto& agency : registry.agencies) {
    for (const auto& c : agency.conversations) {
      for (const auto kind : {AppealKind::first, AppealKind::followup}) {
        with_defaults.try_emplace(
            {agency.id, std::string(pipeline::to_string(c.source)), kind_label(kind)});
      }
    }
  }
  for (const auto& [k, v] : with_defaults) {
    auto labels = std::vector{label("agency", std::get<0>(k)), label("source", std::get<1>(k)),
                              label("kind", std::get<2>(k))};
    add_value(opened, labels, static_cast<double>(v.opened));
    add_value(answered, labels, static_cast<double>(v.answered));
    add_value(unanswered, labels, static_cast<double>(v.unanswered));
    add_value(withdrawn, labels, static_cast<double>(v.withdrawn));
    for (std::size_t i = 0; i < kCorrectedStatus.size(); ++i) {
      auto with_status = labels;
      with_status.push_back(label("status", std::string(kCorrectedStatus[i])));
      add_value(corrected, std::move(with_status), static_cast<double>(v.corrected[i]));
    }
  }
  out.push_back(std::move(opened));
  out.push_back(std::move(answered));
  out.push_back(std::move(unanswered));
  out.push_back(std::move(withdrawn));
  out.push_back(std::move(corrected));

  auto open =
      family("replywatch_appeals_open", "Appeals waiting for an answer now.", MetricType::Gauge);
  auto oldest = family("replywatch_oldest_open_appeal_age_seconds",
                       "Age of the oldest appeal still waiting for an answer.", MetricType::Gauge);
  std::map<std::pair<std::string, std::string>, std::uint64_t> open_counts;
  std::map<std::string, std::int64_t> oldest_open;
  for (const auto& agency : registry.agencies) {
    for (const auto& c : agency.conversations) {
      open_counts[{agency.id, std::string(pipeline::to_string(c.source))}];
    }
    oldest_open[agency.id] = -1;
  }
  pairing_->for_each_open([&](const Appeal& a) {
    const auto& id = registry.agencies[static_cast<std::size_t>(a.agency)].id;
    ++open_counts[{id, std::string(pipeline::to_string(a.source))}];
    auto& o = oldest_open[id];
    o = std::max(o, std::max<std::int64_t>(0, now - a.opened_at));
  });
  for (const auto& [k, n] : open_counts) {
    add_value(open, {label("agency", k.first), label("source", k.second)}, static_cast<double>(n));
  }
  for (const auto& [id, age] : oldest_open) {
    add_value(oldest, {label("agency", id)}, static_cast<double>(std::max<std::int64_t>(0, age)));
  }
  out.push_back(std::move(open));
  out.push_back(std::move(oldest));
  auto not_final = family("replywatch_appeals_awaiting_watermark",
                          "Appeals whose counts wait for their conversation's clock (open "
                          "appeals, and decisions newer than the watermark).",
                          MetricType::Gauge);
  add_value(not_final, {}, static_cast<double>(store_.unsettled()));
  out.push_back(std::move(not_final));

  auto reply = family("replywatch_reply_seconds",
                      "Time from appeal to first official answer, counted once final.",
                      MetricType::Histogram);
  auto business = family("replywatch_business_reply_seconds",
                         "Time from appeal to first answer within the agency's business hours, "
                         "counted once final.",
                         MetricType::Histogram);
  for (const auto* hists : {&store_.reply_histograms(), &store_.business_histograms()}) {
    auto& f = hists == &store_.reply_histograms() ? reply : business;
    for (const auto& [k, h] : *hists) {
      add_histogram(f,
                    {label("agency", std::get<0>(k)), label("source", std::get<1>(k)),
                     label("kind", std::get<2>(k))},
                    h);
    }
  }
  out.push_back(std::move(reply));
  out.push_back(std::move(business));

  // Gauges, not a summary: a window's sample grows and shrinks, and a summary's
  // _count and _sum must not go down. The quantile is in `q` (promtool reserves
  // `quantile` for summaries).
  auto quantile = family("replywatch_reply_quantile_seconds",
                         "Reply-time quantile q of the window's cohort (appeals opened in it, "
                         "answered so far), from a sketch (0.5% relative error).",
                         MetricType::Gauge);
  auto sample = family("replywatch_window_answered_appeals",
                       "Answered appeals of the window's cohort: the sample of its quantiles.",
                       MetricType::Gauge);
  auto ratio =
      family("replywatch_answer_ratio",
             "Answered / (answered + unanswered) of the window's cohort.", MetricType::Gauge);
  auto target = family("replywatch_within_target_ratio",
                       "First appeals of the window's cohort answered within the business-time "
                       "target / decided first appeals.",
                       MetricType::Gauge);
  auto km = family("replywatch_km_median_reply_seconds",
                   "Kaplan-Meier median first-reply time of the window's cohort; open appeals "
                   "censored at their age, unanswered ones at the horizon.",
                   MetricType::Gauge);
  const auto ages_by_agency = open_ages(now);
  for (std::size_t a = 0; a < registry.agencies.size(); ++a) {
    const auto& id = registry.agencies[a].id;
    for (const auto kind : {AppealKind::first, AppealKind::followup}) {
      for (std::size_t w = 0; w < pipeline::kWindows.size(); ++w) {
        const auto& ages = ages_by_agency[a][static_cast<std::size_t>(kind)][w];
        const std::string window(pipeline::kWindows[w].name);
        const auto s = rolling_->agency_summary(a, kind, w, now, ages);
        const auto labels = std::vector{label("agency", id), label("kind", kind_label(kind)),
                                        label("window", window)};
        add_value(sample, labels, static_cast<double>(s.answered));
        for (const auto& [q, v] :
             {std::pair{"0.5", s.median}, std::pair{"0.9", s.p90}, std::pair{"0.99", s.p99}}) {
          if (!v) continue;
          auto with_q = labels;
          with_q.push_back(label("q", q));
          add_value(quantile, std::move(with_q), *v);
        }
        if (s.answer_rate) add_value(ratio, labels, *s.answer_rate);
        if (kind == AppealKind::first) {
          if (s.within_target_rate) {
            add_value(target, {label("agency", id), label("window", window)},
                      *s.within_target_rate);
          }
          if (s.km_median_seconds) {
            add_value(km, {label("agency", id), label("window", window)}, *s.km_median_seconds);
          }
        }
      }
    }
  }
  out.push_back(std::move(quantile));
  out.push_back(std::move(sample));
  out.push_back(std::move(ratio));
  out.push_back(std::move(target));
  out.push_back(std::move(km));

  auto threshold =
      family("replywatch_agency_reply_threshold_seconds",
             "Configured median first-reply alert threshold per agency.", MetricType::Gauge);
  auto target_secs =
      family("replywatch_agency_target_business_seconds",
             "Configured first-reply target per agency, in business seconds.", MetricType::Gauge);
  for (const auto& agency : registry.agencies) {
    if (agency.median_reply_threshold_secs) {
      add_value(threshold, {label("agency", agency.id)},
                static_cast<double>(*agency.median_reply_threshold_secs));
    }
    if (agency.target_business_secs) {
      add_value(target_secs, {label("agency", agency.id)},
                static_cast<double>(*agency.target_business_secs));
    }
  }
  out.push_back(std::move(threshold));
  out.push_back(std::move(target_secs));

  auto how_count = family("replywatch_hour_of_week_answered_total",
                          "Answered appeals by the hour of week the appeal was opened (agency "
                          "time; 0 = Monday 00:00), once final.",
                          MetricType::Counter);
  auto how_sum = family("replywatch_hour_of_week_reply_seconds_total",
                        "Sum of reply seconds by the hour of week the appeal was opened.",
                        MetricType::Counter);
  for (const auto& [k, v] : store_.hour_of_week()) {
    auto labels =
        std::vector{label("agency", k.first), label("hour_of_week", std::to_string(k.second))};
    add_value(how_count, labels, static_cast<double>(v.first));
    add_value(how_sum, labels, v.second);
  }
  out.push_back(std::move(how_count));
  out.push_back(std::move(how_sum));

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
  auto late =
      family("replywatch_late_messages_total",
             "Messages that could not simply be applied in order, by reason.", MetricType::Counter);
  for (const auto& c : config_->connectors) {
    const bool push = c.type == "telegram" && c.mode == "webhook";
    add_value(info,
              {label("connector", c.name), label("mode", push ? "webhook" : "poll"),
               label("type", c.type)},
              1);
    // A connector that has not caught up once since the start is behind by at least
    // the time the daemon has been serving.
    auto l = watermarks_.lag(watermarks_.index(c.name), now);
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
    for (std::size_t i = 0; i < kLateReasons.size(); ++i) {
      add_value(late, {label("connector", name), label("reason", std::string(kLateReasons[i]))},
                static_cast<double>(h.late[i]));
    }
  }
  out.push_back(std::move(received));
  out.push_back(std::move(errors));
  out.push_back(std::move(last));
  out.push_back(std::move(up));
  out.push_back(std::move(info));
  out.push_back(std::move(lag));
  out.push_back(std::move(late));

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

  auto reload_ok = family("replywatch_config_last_reload_success",
                          "1 if the last configuration load succeeded.", MetricType::Gauge);
  add_value(reload_ok, {}, last_reload_ok_ ? 1 : 0);
  out.push_back(std::move(reload_ok));
  auto reload_at =
      family("replywatch_config_last_reload_timestamp_seconds",
             "When the configuration was last loaded or a reload attempted.", MetricType::Gauge);
  add_value(reload_at, {}, static_cast<double>(last_reload_));
  out.push_back(std::move(reload_at));
  return out;
}

// ---- ranking ----

struct Engine::Row {
  std::string agency;
  std::string agency_name;
  std::string responder_id;  // by=responder
  std::string role, name, branch;
  pipeline::WindowSummary s;
  /// Agency rows: the cohort (appeals opened in the window, withdrawn ones left out).
  std::uint64_t sample() const { return s.answered + s.unanswered + s.open; }
};

std::vector<Engine::Row> Engine::ranking_rows(std::size_t window, const std::string& by,
                                              std::int64_t now) const {
  const auto& registry = *config_->registry;
  std::vector<Row> rows;
  // Only the agency table needs the open appeals (their ages, and their number).
  const auto ages = by == "agency" ? open_ages(now) : OpenAges{};
  for (std::size_t a = 0; a < registry.agencies.size(); ++a) {
    const auto& agency = registry.agencies[a];
    if (by == "agency") {
      Row r;
      r.agency = agency.id;
      r.agency_name = agency.name;
      const auto& first_ages = ages[a][static_cast<std::size_t>(AppealKind::first)][window];
      r.s = rolling_->agency_summary(a, AppealKind::first, window, now, first_ages);
      rows.push_back(std::move(r));
    } else if (by == "responder") {
      for (const auto account : rolling_->responders(a)) {
        Row r;
        r.agency = agency.id;
        r.agency_name = agency.name;
        if (account < 0) {
          r.responder_id = "";
          r.role = "anonymous_admin";
        } else {
          const auto& acc = agency.accounts[static_cast<std::size_t>(account)];
          r.responder_id = std::to_string(acc.id);
          r.role = acc.role;
          r.name = acc.name;
          r.branch = acc.branch;
        }
        if (account < 0) {
          r.responder_id =
              agency.conversations.empty() ? "" : std::to_string(agency.conversations.front().id);
        }
        r.s = rolling_->responder_summary(a, account, window, now);
        if (r.s.answered > 0) rows.push_back(std::move(r));
      }
    } else {
      for (const auto& branch : rolling_->branches(a)) {
        Row r;
        r.agency = agency.id;
        r.agency_name = agency.name;
        r.branch = branch;
        r.s = rolling_->branch_summary(a, branch, window, now);
        if (r.s.answered > 0) rows.push_back(std::move(r));
      }
    }
  }
  // Agencies rank by the Kaplan–Meier median, so silence cannot buy a good place;
  // responders and branches (who only have answers) rank by median within their agency.
  auto key = [&](const Row& r) {
    const auto& primary = by == "agency" ? r.s.km_median_seconds : r.s.median;
    return primary.value_or(std::numeric_limits<double>::infinity());
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& x, const Row& y) {
    if (by != "agency" && x.agency != y.agency) return x.agency < y.agency;
    if (key(x) != key(y)) return key(x) < key(y);
    return x.s.answer_rate.value_or(0) > y.s.answer_rate.value_or(0);
  });
  return rows;
}

std::string Engine::ranking_json(std::size_t window, const std::string& by,
                                 std::int64_t now) const {
  const auto rows = ranking_rows(window, by, now);
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.field("window", pipeline::kWindows[window].name).field("by", by).field("generated_at", now);
  w.key("rows").begin_array();
  std::map<std::string, int> rank_in_agency;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    w.begin_object();
    w.field("rank", static_cast<std::int64_t>(by == "agency" ? i + 1 : ++rank_in_agency[r.agency]));
    w.field("agency", r.agency).field("agency_name", r.agency_name);
    if (by == "responder") {
      w.field("responder", r.responder_id).field("role", r.role);
      if (!r.name.empty()) w.field("name", r.name);
      if (!r.branch.empty()) w.field("branch", r.branch);
    }
    if (by == "branch") w.field("branch", r.branch);
    w.field("answered", r.s.answered);
    if (by == "agency") {
      w.field("unanswered", r.s.unanswered).field("open", r.s.open);
      w.field("sample_size", r.sample());
      w.field("answer_rate", r.s.answer_rate);
      w.field("km_median_seconds", r.s.km_median_seconds);
      if (!r.s.km_median_seconds) {
        w.field("km_median_note", pipeline::to_string(r.s.km_note));
        w.field("km_survival", r.s.km_survival)
            .field("km_max_followup_seconds", r.s.km_max_followup);
      }
    } else {
      w.field("sample_size", r.s.answered);
    }
    w.field("median_seconds", r.s.median).field("p90_seconds", r.s.p90);
    w.field("p99_seconds", r.s.p99).field("mean_seconds", r.s.mean);
    w.field("business_median_seconds", r.s.business_median);
    w.field("business_p90_seconds", r.s.business_p90);
    w.field("within_target_rate", r.s.within_target_rate);
    w.end_object();
  }
  w.end_array().end_object();
  out += '\n';
  return out;
}

std::string Engine::ranking_csv(std::size_t window, const std::string& by, std::int64_t now) const {
  const auto rows = ranking_rows(window, by, now);
  const auto& cell = csv_cell;
  const auto& text = csv_text;
  std::string out =
      "rank,agency,agency_name,responder,role,branch,answered,unanswered,open,sample_size,"
      "answer_rate,km_median_seconds,median_seconds,p90_seconds,p99_seconds,mean_seconds,"
      "business_median_seconds,business_p90_seconds,within_target_rate\n";
  std::map<std::string, int> rank_in_agency;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const auto rank = by == "agency" ? static_cast<int>(i + 1) : ++rank_in_agency[r.agency];
    out += std::to_string(rank) + "," + text(r.agency) + "," + text(r.agency_name) + "," +
           text(r.responder_id) + "," + text(r.role) + "," + text(r.branch) + "," +
           std::to_string(r.s.answered) + "," + std::to_string(r.s.unanswered) + "," +
           std::to_string(r.s.open) + "," +
           std::to_string(by == "agency" ? r.sample() : r.s.answered) + "," +
           cell(r.s.answer_rate) + "," + cell(r.s.km_median_seconds) + "," + cell(r.s.median) +
           "," + cell(r.s.p90) + "," + cell(r.s.p99) + "," + cell(r.s.mean) + "," +
           cell(r.s.business_median) + "," + cell(r.s.business_p90) + "," +
           cell(r.s.within_target_rate) + "\n";
  }
  return out;
}

// ---- appeals ----

Result<std::string> Engine::appeals_json(const std::string& agency, const std::string& status,
                                         std::size_t limit, const std::string& cursor) const {
  const auto& registry = *config_->registry;
  // Order: (opened_at, conversation, opened_message); the cursor is the last key returned.
  using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t>;
  std::optional<Key> after;
  if (!cursor.empty()) {
    Key k{};
    const char* p = cursor.data();
    const char* end = cursor.data() + cursor.size();
    auto next = [&](std::int64_t& v) {
      auto [q, ec] = std::from_chars(p, end, v);
      if (ec != std::errc()) return false;
      p = q;
      return true;
    };
    const bool ok = next(std::get<0>(k)) && p != end && *p++ == '_' && next(std::get<1>(k)) &&
                    p != end && *p++ == '_' && next(std::get<2>(k)) && p == end;
    if (!ok) return make_error("bad cursor: expected the next_cursor of a previous page");
    after = k;
  }
  const std::int32_t agency_index = agency.empty() ? -1 : registry.agency_index(agency);
  std::vector<const Appeal*> picked;
  store_.for_each([&](const Appeal& a) {
    if (a.agency < 0 || static_cast<std::size_t>(a.agency) >= registry.agencies.size()) return;
    if (!agency.empty() && a.agency != agency_index) return;
    if (!status.empty() && pipeline::to_string(a.status) != status) return;
    if (after && !(*after < Key{a.opened_at, a.conversation, a.opened_message})) return;
    picked.push_back(&a);
  });
  auto key = [](const Appeal* a) { return Key{a->opened_at, a->conversation, a->opened_message}; };
  const std::size_t n = std::min(limit, picked.size());
  std::partial_sort(picked.begin(), picked.begin() + static_cast<std::ptrdiff_t>(n), picked.end(),
                    [&](const Appeal* x, const Appeal* y) { return key(x) < key(y); });
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("appeals").begin_array();
  for (std::size_t i = 0; i < n; ++i) write_appeal(w, registry, *picked[i]);
  w.end_array().key("next_cursor");
  if (picked.size() > n && n > 0) {
    const Appeal& last = *picked[n - 1];
    w.value(std::to_string(last.opened_at) + "_" + std::to_string(last.conversation) + "_" +
            std::to_string(last.opened_message));
  } else {
    w.null();
  }
  w.end_object();
  out += '\n';
  return Result<std::string>(boost::system::in_place_value, std::move(out));
}

}  // namespace replywatch::daemon
