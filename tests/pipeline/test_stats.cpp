// Exact quantiles, rates and the Kaplan–Meier median, on hand-computed cases.
#include "pipeline/stats.hpp"
#include "tests/support/pairing_fixture.hpp"

#include <doctest/doctest.h>

using namespace replywatch::pipeline;
using replywatch::testing::make_registry;

TEST_CASE("exact quantiles interpolate at rank q(n-1)") {
  const std::vector<std::int64_t> v = {10, 20, 30, 40};
  CHECK(*exact_quantile(v, 0.5) == doctest::Approx(25.0));  // rank 1.5
  CHECK(*exact_quantile(v, 0.9) == doctest::Approx(37.0));  // rank 2.7: 30 + 0.7*10
  CHECK(*exact_quantile(v, 0.0) == doctest::Approx(10.0));
  CHECK(*exact_quantile(v, 1.0) == doctest::Approx(40.0));
  CHECK(*exact_quantile({7}, 0.99) == doctest::Approx(7.0));
  CHECK_FALSE(exact_quantile({}, 0.5).has_value());
}

TEST_CASE("Kaplan-Meier median without censoring is the sample median") {
  // S = 3/4 after 10, 1/2 after 20 and stays there until 30 (S = 1/4): the midpoint
  // (20 + 30) / 2 = 25, as exact_quantile at rank 1.5. It used to be 20, the lower median.
  CHECK(*kaplan_meier_median({{10, true}, {20, true}, {30, true}, {40, true}}) == 25.0);
  // Odd n: S = 2/3, 1/3 jumps past 0.5 at 20, the middle value.
  CHECK(*kaplan_meier_median({{10, true}, {20, true}, {30, true}}) == 20.0);
}

TEST_CASE("Kaplan-Meier median with censoring") {
  // t=10 answered: S=4/5=0.8; t=15 censored (at risk 3 left); t=20 answered: S=0.8*2/3=0.533;
  // t=30 answered: S=0.533*1/2=0.267 <= 0.5 → median 30.
  CHECK(*kaplan_meier_median(
            {{10, true}, {15, false}, {20, true}, {30, true}, {40, false}}) == 30.0);
}

TEST_CASE("Kaplan-Meier median is undefined when silence dominates") {
  // One answer out of three, the rest censored later: S = 2/3 and never reaches 0.5.
  CHECK_FALSE(kaplan_meier_median({{5, true}, {100, false}, {100, false}}).has_value());
  CHECK_FALSE(kaplan_meier_median({}).has_value());
}

TEST_CASE("Kaplan-Meier: answers at a tie count before censorings") {
  // At t=10: 1 answer of 2 at risk → S=0.5 (the censoring at 10 comes after), and no answer
  // follows to end the flat stretch: the median is that first time, 10.
  CHECK(*kaplan_meier_median({{10, false}, {10, true}}) == 10.0);
}

TEST_CASE("summaries split first and followup, and unanswered weighs in") {
  auto registry = make_registry(1000);
  registry->agencies[0].target_business_secs = 100;
  ExactStats stats(registry);
  auto appeal = [](AppealKind kind, AppealStatus status, std::int64_t reply) {
    Appeal a;
    a.agency = 0;
    a.kind = kind;
    a.status = status;
    a.reply_seconds = reply;
    a.business_reply_seconds = reply / 2;
    a.opened_at = 1000;
    return a;
  };
  stats.add_closed(appeal(AppealKind::first, AppealStatus::answered, 60));
  stats.add_closed(appeal(AppealKind::first, AppealStatus::answered, 300));
  stats.add_closed(appeal(AppealKind::first, AppealStatus::unanswered, 0));
  stats.add_open(appeal(AppealKind::first, AppealStatus::open, 0), 1500);
  stats.add_closed(appeal(AppealKind::followup, AppealStatus::answered, 40));

  const KindSummary first = stats.summarize(0, AppealKind::first);
  CHECK(first.appeals == 4);
  CHECK(first.answered == 2);
  CHECK(first.unanswered == 1);
  CHECK(first.open == 1);
  CHECK(*first.answer_rate == doctest::Approx(2.0 / 3.0));
  CHECK(*first.reply_median == doctest::Approx(180.0));
  CHECK(*first.reply_mean == doctest::Approx(180.0));
  CHECK(*first.business_median == doctest::Approx(90.0));
  // Business replies 30 and 150 against a target of 100: one of three decided appeals.
  CHECK(*first.within_target_rate == doctest::Approx(1.0 / 3.0));
  // Samples: 60 answered, 300 answered, 1000 censored (horizon), 500 censored (open).
  // t=60: S=3/4; t=300: S=3/4*2/3=0.5, and only censorings follow → median 300.
  CHECK(*first.km_median_seconds == doctest::Approx(300.0));

  const KindSummary followup = stats.summarize(0, AppealKind::followup);
  CHECK(followup.appeals == 1);
  CHECK(*followup.reply_median == doctest::Approx(40.0));
  CHECK(*followup.answer_rate == doctest::Approx(1.0));

  const KindSummary empty = stats.summarize(1, AppealKind::first);
  CHECK(empty.appeals == 0);
  CHECK_FALSE(empty.answer_rate.has_value());
  CHECK_FALSE(empty.reply_median.has_value());
  CHECK_FALSE(empty.within_target_rate.has_value());
  CHECK_FALSE(empty.km_median_seconds.has_value());
}
