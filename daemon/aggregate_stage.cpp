// What the windows hold is what was last reported, not a recomputation (a reload may have
// changed calendars since): every change takes back the stored appeal and adds the new one.
#include "daemon/aggregate_stage.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <tuple>

#include "connectors/connector.hpp"
#include "daemon/json_writer.hpp"
#include "daemon/report.hpp"
#include "pipeline/binary.hpp"

namespace replywatch::daemon {

namespace {

using pipeline::Appeal;
using pipeline::AppealKind;
using pipeline::AppealStatus;
using prometheus::MetricType;

constexpr std::uint32_t kMagic = 0x52574147;  // "RWAG"
constexpr std::uint32_t kVersion = 1;

std::string kind_label(AppealKind k) { return std::string(pipeline::to_string(k)); }

}  // namespace

AggregateStage::AggregateStage(std::shared_ptr<const Config> config, Owns owns)
    : config_(std::move(config)),
      owns_(std::move(owns)),
      store_(config_->registry),
      rolling_(std::make_unique<pipeline::RollingStats>(config_->registry)),
      now_(connectors::wall_now()) {}

AggregateStage::~AggregateStage() = default;
AggregateStage::AggregateStage(AggregateStage&&) noexcept = default;
AggregateStage& AggregateStage::operator=(AggregateStage&&) noexcept = default;

void AggregateStage::on_appeal(const Appeal* before, const Appeal* after) {
  const Appeal& id = after ? *after : *before;
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

void AggregateStage::on_forgotten_deletion(pipeline::Source source, std::int64_t conversation,
                                           std::int64_t message) {
  const Appeal* stored = store_.find(source, conversation, message);
  if (!stored || stored->status == AppealStatus::answered ||
      stored->status == AppealStatus::withdrawn) {
    return;
  }
  Appeal after = *stored;
  after.status = AppealStatus::withdrawn;
  const Appeal before = *stored;
  on_appeal(&before, &after);
}

void AggregateStage::age(std::int64_t now) {
  now_ = now;
  store_.evict(now - config_->daemon.appeal_retention_secs);
  rolling_->advance(now);
}

void AggregateStage::reload(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  rolling_->set_registry(config_->registry);
  store_.set_registry(config_->registry);
}

AggregateStage::OpenAges AggregateStage::open_ages(std::int64_t now) const {
  const pipeline::QuantileSketch empty(rolling_->relative_accuracy());
  std::array<pipeline::QuantileSketch, pipeline::kWindows.size()> windows;
  windows.fill(empty);
  OpenAges ages(config_->registry->agencies.size(), {windows, windows});
  store_.for_each_open([&](const Appeal& a) {
    if (a.agency < 0 || static_cast<std::size_t>(a.agency) >= ages.size()) return;
    auto& per_window = ages[static_cast<std::size_t>(a.agency)][static_cast<std::size_t>(a.kind)];
    const auto age = static_cast<double>(std::max<std::int64_t>(0, now - a.opened_at));
    for (std::size_t w = 0; w < pipeline::kWindows.size(); ++w) {
      if (pipeline::in_window(a.opened_at, w, now)) per_window[w].add(age);
    }
  });
  return ages;
}

std::vector<RankingRow> AggregateStage::ranking_rows(std::size_t window, const std::string& by,
                                                     std::int64_t now) const {
  const auto& registry = *config_->registry;
  std::vector<RankingRow> rows;
  // Only the agency table needs the open appeals (their ages, and their number).
  const auto ages = by == "agency" ? open_ages(now) : OpenAges{};
  for (std::size_t a = 0; a < registry.agencies.size(); ++a) {
    const auto& agency = registry.agencies[a];
    if (!owns(agency.id)) continue;
    auto row = [&] {
      RankingRow r;
      r.agency = agency.id;
      r.agency_name = agency.name;
      return r;
    };
    if (by == "agency") {
      RankingRow r = row();
      const auto& first_ages = ages[a][static_cast<std::size_t>(AppealKind::first)][window];
      r.s = rolling_->agency_summary(a, AppealKind::first, window, now, first_ages);
      rows.push_back(std::move(r));
    } else if (by == "responder") {
      for (const auto account : rolling_->responders(a)) {
        RankingRow r = row();
        if (account < 0) {
          // The conversation itself (anonymous admins): named by the agency's first chat.
          r.role = "anonymous_admin";
          r.responder_id =
              agency.conversations.empty() ? "" : std::to_string(agency.conversations.front().id);
        } else {
          const auto& acc = agency.accounts[static_cast<std::size_t>(account)];
          r.responder_id = std::to_string(acc.id);
          r.role = acc.role;
          r.name = acc.name;
          r.branch = acc.branch;
        }
        r.s = rolling_->responder_summary(a, account, window, now);
        if (r.s.answered > 0) rows.push_back(std::move(r));
      }
    } else {
      for (const auto& branch : rolling_->branches(a)) {
        RankingRow r = row();
        r.branch = branch;
        r.s = rolling_->branch_summary(a, branch, window, now);
        if (r.s.answered > 0) rows.push_back(std::move(r));
      }
    }
  }
  return rows;
}

Result<std::string> AggregateStage::appeals_json(std::span<const AggregateStage* const> stages,
                                                 const std::string& agency,
                                                 const std::string& status, std::size_t limit,
                                                 const std::string& cursor) {
  if (stages.empty()) {
    return Result<std::string>(boost::system::in_place_value,
                               std::string("{\"appeals\":[],\"next_cursor\":null}\n"));
  }
  const auto& registry = *stages.front()->config_->registry;
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
  for (const AggregateStage* stage : stages) {
    stage->store_.for_each([&](const Appeal& a) {
      if (a.agency < 0 || static_cast<std::size_t>(a.agency) >= registry.agencies.size()) return;
      if (!agency.empty() && a.agency != agency_index) return;
      if (!status.empty() && pipeline::to_string(a.status) != status) return;
      if (after && !(*after < Key{a.opened_at, a.conversation, a.opened_message})) return;
      picked.push_back(&a);
    });
  }
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

void AggregateStage::collect(std::int64_t now, Families& out) const {
  const auto& registry = *config_->registry;
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
  // Every owned agency appears, zero or not, so rate() and absent() behave.
  auto with_defaults = store_.counts();
  for (const auto& agency : registry.agencies) {
    if (!owns(agency.id)) continue;
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
    if (!owns(agency.id)) continue;
    for (const auto& c : agency.conversations) {
      open_counts[{agency.id, std::string(pipeline::to_string(c.source))}];
    }
    oldest_open[agency.id] = -1;
  }
  store_.for_each_open([&](const Appeal& a) {
    if (a.agency < 0 || static_cast<std::size_t>(a.agency) >= registry.agencies.size()) return;
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
    if (!owns(id)) continue;
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
    if (!owns(agency.id)) continue;
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
}

void AggregateStage::serialize(std::string& out) const {
  pipeline::BinaryWriter w(out);
  w.put(kMagic);
  w.put(kVersion);
  std::string store, rolling;
  store_.serialize(store);
  rolling_->serialize(rolling);
  w.put_bytes(store);
  w.put_bytes(rolling);
}

Result<void> AggregateStage::restore(std::string_view in) {
  pipeline::BinaryReader r(in);
  std::uint32_t magic = 0, version = 0;
  std::string_view store_blob, rolling_blob;
  if (!r.get(magic) || magic != kMagic || !r.get(version) || version != kVersion ||
      !r.get_bytes(store_blob) || !r.get_bytes(rolling_blob) || !r.at_end()) {
    return make_error("aggregate state: damaged header");
  }
  AppealStore store(config_->registry);
  if (auto ok = store.restore(store_blob); !ok) return ok.error();
  auto rolling = std::make_unique<pipeline::RollingStats>(config_->registry);
  if (auto ok = rolling->restore(rolling_blob); !ok) return ok.error();
  store_ = std::move(store);
  rolling_ = std::move(rolling);
  return {};
}

}  // namespace replywatch::daemon
