// The daemon's pipeline-thread state. Single-threaded by design: every method
// runs on the io_context thread, so nothing here locks.
#include "daemon/engine.hpp"

#include "daemon/json_writer.hpp"
#include "daemon/report.hpp"
#include "pipeline/binary.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

namespace replywatch::daemon {

namespace {

using pipeline::Appeal;
using pipeline::AppealKind;
using pipeline::AppealStatus;
using pipeline::BinaryReader;
using pipeline::BinaryWriter;

constexpr std::uint32_t kSnapshotMagic = 0x52575331;  // "RWS1"
constexpr std::uint32_t kSnapshotVersion = 1;

std::string kind_label(AppealKind k) { return std::string(pipeline::to_string(k)); }

/// Hour of week of a unix time in an agency's zone: 0 = Monday 00:00–01:00.
int hour_of_week(const pipeline::Agency& agency, std::int64_t t) {
  const std::int64_t local = agency.calendar ? agency.calendar->zone().to_local(t) : t;
  const std::int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  const std::int64_t weekday = ((days + 3) % 7 + 7) % 7;  // 1970-01-01 was a Thursday
  const std::int64_t hour = (local - days * 86400) / 3600;
  return static_cast<int>(weekday * 24 + hour);
}

void put_string(BinaryWriter& w, const std::string& s) { w.put_bytes(s); }
bool get_string(BinaryReader& r, std::string& s) {
  std::string_view v;
  if (!r.get_bytes(v)) return false;
  s.assign(v);
  return true;
}

void put_histogram(BinaryWriter& w, const Histogram& h) {
  w.put(static_cast<std::uint64_t>(h.counts.size()));
  for (auto c : h.counts) w.put(c);
  std::uint64_t bits = 0;
  static_assert(sizeof bits == sizeof h.sum);
  std::memcpy(&bits, &h.sum, sizeof bits);
  w.put(bits);
  w.put(h.count);
}

bool get_histogram(BinaryReader& r, Histogram& h) {
  std::uint64_t n = 0, bits = 0;
  if (!r.get_count(n, 8) || n != reply_buckets().size() + 1) return false;
  h.counts.assign(n, 0);
  for (auto& c : h.counts) {
    if (!r.get(c)) return false;
  }
  if (!r.get(bits) || !r.get(h.count)) return false;
  std::memcpy(&h.sum, &bits, sizeof bits);
  return true;
}

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

void add_histogram(prometheus::MetricFamily& f,
                   std::vector<prometheus::ClientMetric::Label> labels, const Histogram& h) {
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

const std::vector<double>& reply_buckets() {
  static const std::vector<double> kBounds = [] {
    std::vector<double> b;
    for (double v = 30; v < 2592000; v *= 2) b.push_back(v);
    b.push_back(2592000);
    return b;
  }();
  return kBounds;
}

void Histogram::observe(double v, const std::vector<double>& bounds) {
  const auto it = std::lower_bound(bounds.begin(), bounds.end(), v);
  ++counts[static_cast<std::size_t>(it - bounds.begin())];
  sum += v;
  ++count;
}

Engine::Engine(std::shared_ptr<const Config> config)
    : config_(std::move(config)),
      pairing_(std::make_unique<pipeline::Pairing>(config_->registry, sink())),
      rolling_(std::make_unique<pipeline::RollingStats>(config_->registry)),
      last_reload_(connectors::wall_now()) {
  // Until a connector's first poll completes, it may hold a backlog (files to
  // re-read after a restart): expiry waits for it.
  for (const auto& c : config_->connectors) health_[c.name].caught_up = false;
}

Engine::~Engine() = default;

void Engine::apply(EventBatch&& batch, std::int64_t now) {
  now_ = now;
  for (const auto& [from, to] : batch.migrations) {
    pairing_->add_migration(pipeline::Source::telegram, from, to);
  }
  const auto& bounds = reply_buckets();
  for (const auto& e : batch.events) {
    max_event_time_ = std::max(max_event_time_, e.time);
    if (batch.received_at >= e.time) {
      ingest_lag_.observe(static_cast<double>(batch.received_at - e.time), bounds);
    } else {
      ingest_lag_.observe(0, bounds);  // an event stamped in the future: clock skew
    }
    pairing_->on_event(e);
  }
  for (const auto& [reason, n] : batch.rejected) rejected_[reason] += n;
  auto& health = health_[batch.connector];
  health.events += batch.events.size();
  health.caught_up = batch.caught_up;
  for (auto& c : batch.cursors) cursors_[batch.connector][c.key] = std::move(c.value);
  // A connector that just caught up may have delivered old appeals: age them now
  // rather than at the next tick, so the numbers are right as soon as ingest ends.
  if (batch.caught_up) expire(now);
}

void Engine::expire(std::int64_t now) {
  // While any connector still delivers a backlog, an appeal's answer may be in a
  // batch not yet applied: expiring by any clock now could beat it. Expiry waits.
  if (!backlog()) pairing_->expire(now);
}

void Engine::tick(std::int64_t now) {
  now_ = now;
  const auto& d = config_->daemon;
  if (!backlog()) {
    pairing_->expire(now);
    const std::int64_t retention = d.message_retention_secs > 0
                                       ? d.message_retention_secs
                                       : 2 * config_->registry->horizon_secs;
    pairing_->forget_messages_before(now - retention);
  }
  while (!log_.empty() && log_.front().closed_at < now - d.appeal_retention_secs) log_.pop_front();
  rolling_->advance(now);
}

bool Engine::backlog() const {
  return std::any_of(health_.begin(), health_.end(),
                     [](const auto& h) { return !h.second.caught_up; });
}

void Engine::on_opened(const Appeal& a) {
  const auto& agency = config_->registry->agencies[static_cast<std::size_t>(a.agency)];
  ++appeals_[{agency.id, std::string(pipeline::to_string(a.source)), kind_label(a.kind)}][0];
}

void Engine::on_closed(const Appeal& a) {
  const auto& agency = config_->registry->agencies[static_cast<std::size_t>(a.agency)];
  const AppealKey key{agency.id, std::string(pipeline::to_string(a.source)), kind_label(a.kind)};
  std::int64_t closed_at = a.opened_at + config_->registry->horizon_secs;
  if (a.status == AppealStatus::answered) {
    ++appeals_[key][1];
    reply_[key].observe(static_cast<double>(a.reply_seconds), reply_buckets());
    business_[key].observe(static_cast<double>(a.business_reply_seconds), reply_buckets());
    auto& how = hour_of_week_[{agency.id, hour_of_week(agency, a.opened_at)}];
    ++how.first;
    how.second += static_cast<double>(a.reply_seconds);
    closed_at = a.answered_at;
  } else {
    ++appeals_[key][2];
  }
  rolling_->add_closed(a, now_);
  log_.push_back({a, agency.id, closed_at});
}

void Engine::connector_success(const std::string& connector, std::int64_t now, bool caught_up) {
  auto& h = health_[connector];
  h.last_success = now;
  h.fatal = false;  // it works again (the token was fixed, the server came back)
  h.up = true;
  h.caught_up = caught_up;
  h.last_error.clear();
}

void Engine::connector_error(const std::string& connector, const std::string& error_type,
                             const std::string& message, bool fatal) {
  auto& h = health_[connector];
  ++h.errors[error_type];
  h.last_error = message;
  h.caught_up = true;  // an erroring connector must not hold expiry back
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
  auto& h = health_[connector];
  h.up = false;
  h.caught_up = true;
}

void Engine::reload(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  pairing_->set_registry(config_->registry);
  rolling_->set_registry(config_->registry);
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
  w.put(max_event_time_);
  std::string pairing, rolling;
  pairing_->serialize(pairing);
  rolling_->serialize(rolling);
  w.put_bytes(pairing);
  w.put_bytes(rolling);

  w.put(static_cast<std::uint64_t>(appeals_.size()));
  for (const auto& [k, v] : appeals_) {
    put_string(w, std::get<0>(k));
    put_string(w, std::get<1>(k));
    put_string(w, std::get<2>(k));
    for (auto c : v) w.put(c);
  }
  for (const auto* hists : {&reply_, &business_}) {
    w.put(static_cast<std::uint64_t>(hists->size()));
    for (const auto& [k, h] : *hists) {
      put_string(w, std::get<0>(k));
      put_string(w, std::get<1>(k));
      put_string(w, std::get<2>(k));
      put_histogram(w, h);
    }
  }
  w.put(static_cast<std::uint64_t>(hour_of_week_.size()));
  for (const auto& [k, v] : hour_of_week_) {
    put_string(w, k.first);
    w.put(static_cast<std::int32_t>(k.second));
    w.put(v.first);
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v.second, sizeof bits);
    w.put(bits);
  }
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
  w.put(static_cast<std::uint64_t>(log_.size()));
  for (const auto& l : log_) {
    const Appeal& a = l.appeal;
    put_string(w, l.agency);
    w.put(l.closed_at);
    for (auto v : {a.conversation, a.thread, a.citizen, a.opened_message, a.opened_at,
                   a.answer_message, a.answered_at, a.responder, a.reply_seconds,
                   a.business_reply_seconds}) {
      w.put(v);
    }
    w.put(a.responder_account);
    w.put(a.source);
    w.put(a.kind);
    w.put(a.status);
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
    return make_error("snapshot version " + std::to_string(version) + " is not supported");
  }
  std::int64_t max_event_time = 0;
  std::string_view pairing_blob, rolling_blob;
  if (!r.get(max_event_time) || !r.get_bytes(pairing_blob) || !r.get_bytes(rolling_blob)) {
    return damaged("header");
  }
  // Restore into fresh objects, and swap in only when everything parsed.
  auto pairing = std::make_unique<pipeline::Pairing>(config_->registry, sink());
  auto rolling = std::make_unique<pipeline::RollingStats>(config_->registry);
  if (auto ok = pairing->restore(pairing_blob); !ok) return ok.error();
  if (auto ok = rolling->restore(rolling_blob); !ok) return ok.error();

  decltype(appeals_) appeals;
  decltype(reply_) reply, business;
  decltype(hour_of_week_) how;
  decltype(rejected_) rejected;
  decltype(health_) health;
  decltype(cursors_) cursors;
  decltype(log_) log;
  Histogram lag;
  std::uint64_t n = 0;
  if (!r.get_count(n, 24)) return damaged("appeal counters");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string a, s, k;
    std::array<std::uint64_t, 3> v{};
    if (!get_string(r, a) || !get_string(r, s) || !get_string(r, k) || !r.get(v[0]) ||
        !r.get(v[1]) || !r.get(v[2])) {
      return damaged("appeal counters");
    }
    appeals[{a, s, k}] = v;
  }
  for (auto* hists : {&reply, &business}) {
    if (!r.get_count(n, 24)) return damaged("histograms");
    for (std::uint64_t i = 0; i < n; ++i) {
      std::string a, s, k;
      Histogram h;
      if (!get_string(r, a) || !get_string(r, s) || !get_string(r, k) || !get_histogram(r, h)) {
        return damaged("histograms");
      }
      (*hists)[{a, s, k}] = std::move(h);
    }
  }
  if (!r.get_count(n, 20)) return damaged("hour-of-week counters");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string a;
    std::int32_t hour = 0;
    std::uint64_t count = 0, bits = 0;
    if (!get_string(r, a) || !r.get(hour) || !r.get(count) || !r.get(bits)) {
      return damaged("hour-of-week counters");
    }
    double sum = 0;
    std::memcpy(&sum, &bits, sizeof sum);
    how[{a, hour}] = {count, sum};
  }
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
    if (!get_string(r, name) || !r.get(h.events) || !r.get(h.last_success) ||
        !r.get_count(errors, 16)) {
      return damaged("connector health");
    }
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
  if (!r.get_count(n, 100)) return damaged("appeal log");
  for (std::uint64_t i = 0; i < n; ++i) {
    Logged l;
    Appeal& a = l.appeal;
    bool ok = get_string(r, l.agency) && r.get(l.closed_at);
    for (auto* v : {&a.conversation, &a.thread, &a.citizen, &a.opened_message, &a.opened_at,
                    &a.answer_message, &a.answered_at, &a.responder, &a.reply_seconds,
                    &a.business_reply_seconds}) {
      ok = ok && r.get(*v);
    }
    ok = ok && r.get(a.responder_account) && r.get(a.source) && r.get(a.kind) && r.get(a.status);
    if (!ok || static_cast<int>(a.kind) > 1 || static_cast<int>(a.status) > 2 ||
        static_cast<int>(a.source) > static_cast<int>(pipeline::Source::x)) {
      return damaged("appeal log");
    }
    a.agency = config_->registry->agency_index(l.agency);
    log.push_back(std::move(l));
  }
  if (!r.at_end()) return damaged("trailer");

  pairing_ = std::move(pairing);
  rolling_ = std::move(rolling);
  max_event_time_ = max_event_time;
  appeals_ = std::move(appeals);
  reply_ = std::move(reply);
  business_ = std::move(business);
  hour_of_week_ = std::move(how);
  rejected_ = std::move(rejected);
  ingest_lag_ = std::move(lag);
  for (auto& [name, h] : health) {
    // A configured connector stays "behind" until its first poll after this start.
    const auto current = health_.find(name);
    h.caught_up = current == health_.end() ? true : current->second.caught_up;
    health_[name] = std::move(h);
  }
  cursors_ = std::move(cursors);
  log_ = std::move(log);
  return {};
}

// ---- metrics ----

std::vector<std::array<pipeline::QuantileSketch, 2>> Engine::open_ages(std::int64_t now) const {
  const pipeline::QuantileSketch empty(rolling_->relative_accuracy());
  std::vector<std::array<pipeline::QuantileSketch, 2>> ages(config_->registry->agencies.size(),
                                                            {empty, empty});
  pairing_->for_each_open([&](const Appeal& a) {
    ages[static_cast<std::size_t>(a.agency)][static_cast<std::size_t>(a.kind)].add(
        static_cast<double>(std::max<std::int64_t>(0, now - a.opened_at)));
  });
  return ages;
}

std::vector<prometheus::MetricFamily> Engine::collect(std::int64_t now) const {
  using prometheus::MetricType;
  const auto& registry = *config_->registry;
  std::vector<prometheus::MetricFamily> out;

  auto opened = family("replywatch_appeals_opened_total", "Appeals opened by citizens.",
                       MetricType::Counter);
  auto answered = family("replywatch_appeals_answered_total",
                         "Appeals answered by an official within the horizon.", MetricType::Counter);
  auto unanswered = family("replywatch_appeals_unanswered_total",
                           "Appeals that passed the horizon without an answer.",
                           MetricType::Counter);
  // Every configured agency appears, zero or not, so rate() and absent() behave.
  auto with_defaults = appeals_;
  for (const auto& agency : registry.agencies) {
    for (const auto& c : agency.conversations) {
      for (const auto kind : {AppealKind::first, AppealKind::followup}) {
        with_defaults.try_emplace({agency.id, std::string(pipeline::to_string(c.source)),
                                   kind_label(kind)});
      }
    }
  }
  for (const auto& [k, v] : with_defaults) {
    auto labels = std::vector{label("agency", std::get<0>(k)), label("source", std::get<1>(k)),
                              label("kind", std::get<2>(k))};
    add_value(opened, labels, static_cast<double>(v[0]));
    add_value(answered, labels, static_cast<double>(v[1]));
    add_value(unanswered, labels, static_cast<double>(v[2]));
  }
  out.push_back(std::move(opened));
  out.push_back(std::move(answered));
  out.push_back(std::move(unanswered));

  auto open = family("replywatch_appeals_open", "Appeals waiting for an answer now.",
                     MetricType::Gauge);
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

  auto reply = family("replywatch_reply_seconds", "Time from appeal to first official answer.",
                      MetricType::Histogram);
  auto business = family("replywatch_business_reply_seconds",
                         "Time from appeal to first answer within the agency's business hours.",
                         MetricType::Histogram);
  for (const auto* pair : {&reply_, &business_}) {
    auto& f = pair == &reply_ ? reply : business;
    for (const auto& [k, h] : *pair) {
      add_histogram(f, {label("agency", std::get<0>(k)), label("source", std::get<1>(k)),
                        label("kind", std::get<2>(k))},
                    h);
    }
  }
  out.push_back(std::move(reply));
  out.push_back(std::move(business));

  // A summary, so the `quantile` label is the standard one (promtool accepts it only
  // there); _count and _sum are the window's answered appeals and their total.
  auto quantile = family("replywatch_reply_quantile_seconds",
                         "Reply-time quantiles over a rolling window, from a sketch (1% relative "
                         "error).",
                         MetricType::Summary);
  auto ratio = family("replywatch_answer_ratio",
                      "Answered / (answered + unanswered) over a rolling window.",
                      MetricType::Gauge);
  auto target = family("replywatch_within_target_ratio",
                       "First appeals answered within the business-time target / decided first "
                       "appeals, over a rolling window.",
                       MetricType::Gauge);
  auto km = family("replywatch_km_median_reply_seconds",
                   "Kaplan-Meier median first-reply time over a rolling window; open appeals "
                   "censored.",
                   MetricType::Gauge);
  const auto ages_by_agency = open_ages(now);
  for (std::size_t a = 0; a < registry.agencies.size(); ++a) {
    const auto& id = registry.agencies[a].id;
    for (const auto kind : {AppealKind::first, AppealKind::followup}) {
      const auto& ages = ages_by_agency[a][static_cast<std::size_t>(kind)];
      for (std::size_t w = 0; w < pipeline::kWindows.size(); ++w) {
        const std::string window(pipeline::kWindows[w].name);
        const auto s = rolling_->agency_summary(a, kind, w, now, ages);
        if (s.median && s.p90 && s.p99) {
          prometheus::ClientMetric m;
          m.label = {label("agency", id), label("kind", kind_label(kind)), label("window", window)};
          m.summary.sample_count = s.answered;
          m.summary.sample_sum = s.mean.value_or(0) * static_cast<double>(s.answered);
          for (const auto& [q, v] : {std::pair{0.5, *s.median}, std::pair{0.9, *s.p90},
                                     std::pair{0.99, *s.p99}}) {
            prometheus::ClientMetric::Quantile quant;
            quant.quantile = q;
            quant.value = v;
            m.summary.quantile.push_back(quant);
          }
          quantile.metric.push_back(std::move(m));
        }
        if (s.answer_rate) {
          add_value(ratio, {label("agency", id), label("kind", kind_label(kind)),
                            label("window", window)},
                    *s.answer_rate);
        }
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
  out.push_back(std::move(ratio));
  out.push_back(std::move(target));
  out.push_back(std::move(km));

  auto threshold = family("replywatch_agency_reply_threshold_seconds",
                          "Configured median first-reply alert threshold per agency.",
                          MetricType::Gauge);
  auto target_secs = family("replywatch_agency_target_business_seconds",
                            "Configured first-reply target per agency, in business seconds.",
                            MetricType::Gauge);
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
                          "time; 0 = Monday 00:00).",
                          MetricType::Counter);
  auto how_sum = family("replywatch_hour_of_week_reply_seconds_total",
                        "Sum of reply seconds by the hour of week the appeal was opened.",
                        MetricType::Counter);
  for (const auto& [k, v] : hour_of_week_) {
    auto labels = std::vector{label("agency", k.first), label("hour_of_week", std::to_string(k.second))};
    add_value(how_count, labels, static_cast<double>(v.first));
    add_value(how_sum, labels, v.second);
  }
  out.push_back(std::move(how_count));
  out.push_back(std::move(how_sum));

  auto received = family("replywatch_connector_events_received_total",
                         "Events a connector delivered to the pipeline.", MetricType::Counter);
  auto errors = family("replywatch_connector_errors_total", "Connector errors by type.",
                       MetricType::Counter);
  auto last = family("replywatch_connector_last_success_timestamp_seconds",
                     "When a connector last completed a poll or delivery successfully.",
                     MetricType::Gauge);
  auto up = family("replywatch_connector_up", "1 when the connector is working, 0 when failed.",
                   MetricType::Gauge);
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

  auto rejected = family("replywatch_events_rejected_total",
                         "Malformed messages or events skipped, by reason.", MetricType::Counter);
  for (const auto& [reason, n] : rejected_) {
    add_value(rejected, {label("reason", reason)}, static_cast<double>(n));
  }
  out.push_back(std::move(rejected));
  auto lag = family("replywatch_ingest_lag_seconds",
                    "Receive time minus event time of ingested events.", MetricType::Histogram);
  add_histogram(lag, {}, ingest_lag_);
  out.push_back(std::move(lag));

  auto reload_ok = family("replywatch_config_last_reload_success",
                          "1 if the last configuration load succeeded.", MetricType::Gauge);
  add_value(reload_ok, {}, last_reload_ok_ ? 1 : 0);
  out.push_back(std::move(reload_ok));
  auto reload_at = family("replywatch_config_last_reload_timestamp_seconds",
                          "When the configuration was last loaded or a reload attempted.",
                          MetricType::Gauge);
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
  std::uint64_t open = 0;
  std::uint64_t sample() const { return s.answered + s.unanswered; }
};

std::vector<Engine::Row> Engine::ranking_rows(std::size_t window, const std::string& by,
                                              std::int64_t now) const {
  const auto& registry = *config_->registry;
  std::vector<Row> rows;
  // Only the agency table needs the open appeals (their ages, and their number).
  const auto ages = by == "agency" ? open_ages(now)
                                   : std::vector<std::array<pipeline::QuantileSketch, 2>>{};
  for (std::size_t a = 0; a < registry.agencies.size(); ++a) {
    const auto& agency = registry.agencies[a];
    if (by == "agency") {
      Row r;
      r.agency = agency.id;
      r.agency_name = agency.name;
      const auto& first_ages = ages[a][static_cast<std::size_t>(AppealKind::first)];
      r.s = rolling_->agency_summary(a, AppealKind::first, window, now, first_ages);
      r.open = first_ages.count();
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
          r.responder_id = agency.conversations.empty()
                               ? ""
                               : std::to_string(agency.conversations.front().id);
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
      w.field("unanswered", r.s.unanswered).field("open", r.open);
      w.field("sample_size", r.sample());
      w.field("answer_rate", r.s.answer_rate);
      w.field("km_median_seconds", r.s.km_median_seconds);
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

std::string Engine::ranking_csv(std::size_t window, const std::string& by,
                                std::int64_t now) const {
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
           std::to_string(r.open) + "," +
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
    if (!ok) return make_error("bad cursor '" + cursor + "'");
    after = k;
  }
  std::vector<Appeal> picked;
  auto consider = [&](const Appeal& a, const std::string& agency_id) {
    if (!agency.empty() && agency_id != agency) return;
    if (!status.empty() && pipeline::to_string(a.status) != status) return;
    const Key k{a.opened_at, a.conversation, a.opened_message};
    if (after && !(*after < k)) return;
    picked.push_back(a);
  };
  for (const auto& l : log_) consider(l.appeal, l.agency);
  pairing_->for_each_open([&](const Appeal& a) {
    consider(a, registry.agencies[static_cast<std::size_t>(a.agency)].id);
  });
  auto key = [](const Appeal& a) { return Key{a.opened_at, a.conversation, a.opened_message}; };
  const std::size_t n = std::min(limit, picked.size());
  std::partial_sort(picked.begin(), picked.begin() + static_cast<std::ptrdiff_t>(n), picked.end(),
                    [&](const Appeal& x, const Appeal& y) { return key(x) < key(y); });
  std::string out = "{\"appeals\":[";
  for (std::size_t i = 0; i < n; ++i) {
    const Appeal& a = picked[i];
    if (a.agency < 0 || static_cast<std::size_t>(a.agency) >= registry.agencies.size()) continue;
    std::string line;
    append_appeal_line(line, registry, a);
    line.pop_back();  // the newline
    if (out.back() != '[') out += ',';
    out += line;
  }
  out += "],\"next_cursor\":";
  if (picked.size() > n && n > 0) {
    const Appeal& last = picked[n - 1];
    append_json_string(out, std::to_string(last.opened_at) + "_" +
                                std::to_string(last.conversation) + "_" +
                                std::to_string(last.opened_message));
  } else {
    out += "null";
  }
  out += "}\n";
  return Result<std::string>(boost::system::in_place_value, std::move(out));
}

}  // namespace replywatch::daemon
