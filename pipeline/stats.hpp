// Exact per-agency statistics over a finite set of appeals (replay, and the
// reference the daemon's rolling sketches are checked against).
#pragma once

#include "pipeline/pairing.hpp"
#include "pipeline/registry.hpp"
#include "pipeline/sketch.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace replywatch::pipeline {

/// Exact quantile of sorted values: rank q·(n−1), linear interpolation between neighbours.
std::optional<double> exact_quantile(const std::vector<std::int64_t>& sorted, double q);

/// One observation for Kaplan–Meier: an answer at `seconds`, or censored there.
struct SurvivalSample {
  std::int64_t seconds = 0;
  bool answered = false;
};

/// The Kaplan–Meier estimate of the time to answer, with the median convention documented at
/// KaplanMeier (sketch.hpp): the first answer time at which survival drops below 0.5; the
/// midpoint to the next answer time where it sits at exactly 0.5 (so with nothing censored it
/// is exact_quantile(sorted, 0.5)); that first time if only censorings follow; nullopt if
/// survival stays above 0.5. At tied times answers count before censorings.
KaplanMeier kaplan_meier(std::vector<SurvivalSample> samples);
/// kaplan_meier(samples).median.
std::optional<double> kaplan_meier_median(std::vector<SurvivalSample> samples);

struct KindSummary {
  std::uint64_t appeals = 0;
  std::uint64_t answered = 0;
  std::uint64_t unanswered = 0;
  std::uint64_t open = 0;
  std::optional<double> answer_rate;
  std::optional<double> reply_median, reply_p90, reply_p99, reply_mean;
  std::optional<double> business_median, business_p90;
  std::optional<double> within_target_rate;
  std::optional<double> km_median_seconds;
};

class ExactStats {
 public:
  explicit ExactStats(std::shared_ptr<const Registry> registry);

  /// An answered or unanswered appeal (withdrawn ones are in no statistic: ignored).
  void add_closed(const Appeal& appeal);
  /// Takes back exactly what add_closed() put in for the same appeal (a correction;
  /// rare, and linear in the number of appeals of its agency and kind).
  void remove_closed(const Appeal& appeal);
  /// An appeal still open at `clock` (censored at clock − opened_at).
  void add_open(const Appeal& appeal, std::int64_t clock);

  KindSummary summarize(std::size_t agency, AppealKind kind) const;

 private:
  struct Accumulator {
    std::uint64_t answered = 0, unanswered = 0, open = 0, within_target = 0;
    std::vector<std::int64_t> reply, business;
    std::vector<SurvivalSample> survival;
  };
  Accumulator& slot(const Appeal& a);

  std::shared_ptr<const Registry> registry_;
  std::vector<std::array<Accumulator, 2>> per_agency_;
};

}  // namespace replywatch::pipeline
