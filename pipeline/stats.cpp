// Exact quantiles, answer and target rates, and the Kaplan–Meier median.
#include "pipeline/stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace replywatch::pipeline {

std::optional<double> exact_quantile(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty()) return std::nullopt;
  const double rank = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return static_cast<double>(sorted[lo]) +
         (static_cast<double>(sorted[hi]) - static_cast<double>(sorted[lo])) * frac;
}

KaplanMeier kaplan_meier(std::vector<SurvivalSample> samples) {
  // Answers sort before censorings at the same time.
  std::sort(samples.begin(), samples.end(), [](const SurvivalSample& a, const SurvivalSample& b) {
    return a.seconds != b.seconds ? a.seconds < b.seconds : a.answered > b.answered;
  });
  KaplanMeier out;
  if (!samples.empty()) out.max_time = static_cast<double>(samples.back().seconds);
  detail::KaplanMeierFold fold;
  std::size_t at_risk = samples.size();
  for (std::size_t i = 0; i < samples.size();) {
    const std::int64_t t = samples[i].seconds;
    std::size_t answered = 0, leaving = 0;
    for (; i < samples.size() && samples[i].seconds == t; ++i, ++leaving) {
      if (samples[i].answered) ++answered;
    }
    if (answered > 0) {
      fold.event(static_cast<double>(t), static_cast<double>(answered),
                 static_cast<double>(at_risk));
    }
    out.events += answered;
    out.censored += leaving - answered;
    at_risk -= leaving;
  }
  out.median = fold.median();
  out.final_survival = fold.survival();
  return out;
}

std::optional<double> kaplan_meier_median(std::vector<SurvivalSample> samples) {
  return kaplan_meier(std::move(samples)).median;
}

ExactStats::ExactStats(std::shared_ptr<const Registry> registry)
    : registry_(std::move(registry)), per_agency_(registry_->agencies.size()) {}

ExactStats::Accumulator& ExactStats::slot(const Appeal& a) {
  return per_agency_[static_cast<std::size_t>(a.agency)][static_cast<std::size_t>(a.kind)];
}

void ExactStats::add_closed(const Appeal& a) {
  if (a.status == AppealStatus::withdrawn || a.status == AppealStatus::open) return;  // no statistic
  Accumulator& acc = slot(a);
  if (a.status == AppealStatus::answered) {
    ++acc.answered;
    acc.reply.push_back(a.reply_seconds);
    acc.business.push_back(a.business_reply_seconds);
    acc.survival.push_back({a.reply_seconds, true});
    const auto& target = registry_->agencies[static_cast<std::size_t>(a.agency)].target_business_secs;
    if (target && a.business_reply_seconds <= *target) ++acc.within_target;
  } else {
    ++acc.unanswered;
    acc.survival.push_back({registry_->horizon_secs, false});
  }
}

void ExactStats::remove_closed(const Appeal& a) {
  if (a.status != AppealStatus::answered && a.status != AppealStatus::unanswered) return;
  Accumulator& acc = slot(a);
  auto erase_one = [](auto& v, const auto& x) {
    const auto it = std::find(v.begin(), v.end(), x);
    if (it != v.end()) v.erase(it);
  };
  auto same = [](const SurvivalSample& x, const SurvivalSample& y) {
    return x.seconds == y.seconds && x.answered == y.answered;
  };
  auto erase_sample = [&](const SurvivalSample& x) {
    const auto it = std::find_if(acc.survival.begin(), acc.survival.end(),
                                 [&](const SurvivalSample& s) { return same(s, x); });
    if (it != acc.survival.end()) acc.survival.erase(it);
  };
  if (a.status == AppealStatus::answered) {
    if (acc.answered > 0) --acc.answered;
    erase_one(acc.reply, a.reply_seconds);
    erase_one(acc.business, a.business_reply_seconds);
    erase_sample({a.reply_seconds, true});
    const auto& target = registry_->agencies[static_cast<std::size_t>(a.agency)].target_business_secs;
    if (target && a.business_reply_seconds <= *target && acc.within_target > 0) --acc.within_target;
  } else {
    if (acc.unanswered > 0) --acc.unanswered;
    erase_sample({registry_->horizon_secs, false});
  }
}

void ExactStats::add_open(const Appeal& a, std::int64_t clock) {
  Accumulator& acc = slot(a);
  ++acc.open;
  acc.survival.push_back({std::max<std::int64_t>(0, clock - a.opened_at), false});
}

KindSummary ExactStats::summarize(std::size_t agency, AppealKind kind) const {
  const Accumulator& acc = per_agency_[agency][static_cast<std::size_t>(kind)];
  KindSummary s;
  s.answered = acc.answered;
  s.unanswered = acc.unanswered;
  s.open = acc.open;
  s.appeals = acc.answered + acc.unanswered + acc.open;
  const std::uint64_t decided = acc.answered + acc.unanswered;
  if (decided > 0) {
    s.answer_rate = static_cast<double>(acc.answered) / static_cast<double>(decided);
    if (registry_->agencies[agency].target_business_secs) {
      s.within_target_rate = static_cast<double>(acc.within_target) / static_cast<double>(decided);
    }
  }
  std::vector<std::int64_t> reply = acc.reply;
  std::vector<std::int64_t> business = acc.business;
  std::sort(reply.begin(), reply.end());
  std::sort(business.begin(), business.end());
  s.reply_median = exact_quantile(reply, 0.5);
  s.reply_p90 = exact_quantile(reply, 0.9);
  s.reply_p99 = exact_quantile(reply, 0.99);
  if (!reply.empty()) {
    // Sum in long double: 5M replies of up to a week stay exact.
    const long double sum = std::accumulate(reply.begin(), reply.end(), 0.0L);
    s.reply_mean = static_cast<double>(sum / static_cast<long double>(reply.size()));
  }
  s.business_median = exact_quantile(business, 0.5);
  s.business_p90 = exact_quantile(business, 0.9);
  s.km_median_seconds = kaplan_meier_median(acc.survival);
  return s;
}

}  // namespace replywatch::pipeline
