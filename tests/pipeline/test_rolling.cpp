// Rolling windows as cohorts of appeals opened in them: membership by opening time, expiry
// at sub-bucket edges, censoring in the Kaplan–Meier median, add and remove, attribution to
// agency, responder and branch groups, agreement with the exact statistics, snapshots and
// configuration reloads.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

#include "pipeline/rolling.hpp"
#include "pipeline/stats.hpp"
#include "tests/support/pairing_fixture.hpp"

using namespace replywatch::pipeline;
using replywatch::testing::kPress;
using replywatch::testing::make_registry;

namespace {

constexpr std::size_t kHour = 0, kDay = 1, kWeek = 2, kMonth = 3;  // indexes in kWindows
// Sub-bucket widths: 1h 60 s, 24h 1440 s, 7d 10080 s, 30d 43200 s; their lcm is 302400 s.
// kT0 = 5622 · 302400 = 1'700'092'800 (Thursday 2023-11-16 00:00:00 UTC) starts a sub-bucket
// of every window, so the edges below are whole multiples of a width after kT0. At `now` a
// window holds the openings from (floor(now / width) − 59) · width on.
constexpr std::int64_t kT0 = 5622 * 302400;
constexpr std::int64_t kDaySecs = 86400;
constexpr std::size_t kAlpha = 0, kBeta = 1;
constexpr std::int32_t kChannelAccount = 0, kPressAccount = 1;  // alpha's accounts
constexpr double kAccuracy = QuantileSketch::kDefaultAccuracy;
const QuantileSketch kNoOpen;

/// Opened at `opened_at`, answered `reply` seconds later.
Appeal answered(std::int32_t agency, AppealKind kind, std::int64_t opened_at, std::int64_t reply,
                std::int32_t account = kPressAccount, std::int64_t business = -1) {
  Appeal a;
  a.agency = agency;
  a.kind = kind;
  a.status = AppealStatus::answered;
  a.opened_at = opened_at;
  a.answered_at = opened_at + reply;
  a.reply_seconds = reply;
  a.business_reply_seconds = business < 0 ? reply : business;
  a.responder_account = account;
  return a;
}

Appeal unanswered(std::int32_t agency, AppealKind kind, std::int64_t opened_at) {
  Appeal a;
  a.agency = agency;
  a.kind = kind;
  a.status = AppealStatus::unanswered;
  a.opened_at = opened_at;
  return a;
}

WindowSummary first(const RollingStats& s, std::size_t window, std::int64_t now,
                    std::size_t agency = kAlpha) {
  return s.agency_summary(agency, AppealKind::first, window, now, kNoOpen);
}

QuantileSketch ages(std::initializer_list<std::pair<double, std::uint64_t>> values) {
  QuantileSketch out;
  for (const auto& [age, count] : values) out.add(age, count);
  return out;
}

bool within(std::optional<double> got, std::optional<double> want, double relative) {
  if (got.has_value() != want.has_value()) return false;
  return !got || std::abs(*got - *want) <= relative * std::abs(*want) + 1e-9;
}

bool same(const WindowSummary& a, const WindowSummary& b) {
  return a.answered == b.answered && a.unanswered == b.unanswered && a.open == b.open &&
         a.within_target == b.within_target && a.answer_rate == b.answer_rate &&
         a.within_target_rate == b.within_target_rate && a.median == b.median && a.p90 == b.p90 &&
         a.p99 == b.p99 && a.business_median == b.business_median &&
         a.business_p90 == b.business_p90 && a.km_median_seconds == b.km_median_seconds &&
         a.km_note == b.km_note && a.km_survival == b.km_survival &&
         a.km_max_followup == b.km_max_followup && a.mean == b.mean;
}

/// Every summary the daemon could publish at `now`, for whole-state comparisons; the groups
/// are those `groups_of` lists (by default `s` itself).
std::vector<WindowSummary> everything(const RollingStats& s, std::int64_t now,
                                      const RollingStats* groups_of = nullptr) {
  const RollingStats& groups = groups_of ? *groups_of : s;
  std::vector<WindowSummary> out;
  const QuantileSketch open = ages({{500, 2}});
  for (std::size_t agency = 0; agency < s.registry().agencies.size(); ++agency) {
    for (std::size_t w = 0; w < kWindows.size(); ++w) {
      for (const AppealKind kind : {AppealKind::first, AppealKind::followup}) {
        out.push_back(s.agency_summary(agency, kind, w, now, open));
      }
      for (const auto account : groups.responders(agency)) {
        out.push_back(s.responder_summary(agency, account, w, now));
      }
      for (const auto& branch : groups.branches(agency)) {
        out.push_back(s.branch_summary(agency, branch, w, now));
      }
    }
  }
  return out;
}

bool same(const std::vector<WindowSummary>& a, const std::vector<WindowSummary>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same(a[i], b[i])) return false;
  }
  return true;
}

bool restores(RollingStats& s, std::string_view bytes) { return s.restore(bytes).has_value(); }

std::string snapshot(const RollingStats& s) {
  std::string out;
  s.serialize(out);
  return out;
}

/// A random decided appeal of either agency and kind and any responder, opened up to
/// `oldest` seconds before `now` or up to 10 minutes after it (clock skew).
Appeal random_appeal(std::mt19937_64& rng, std::int64_t now, std::int64_t oldest,
                     std::int64_t horizon) {
  std::lognormal_distribution<double> reply(std::log(3600.0), 1.8);
  std::uniform_int_distribution<int> pick(0, 99);
  const auto agency = static_cast<std::int32_t>(pick(rng) % 2);
  const AppealKind kind = pick(rng) < 70 ? AppealKind::first : AppealKind::followup;
  const std::int64_t opened = now - std::uniform_int_distribution<std::int64_t>(-600, oldest)(rng);
  if (pick(rng) < 20) return unanswered(agency, kind, opened);
  const std::int32_t account = agency == 0 ? pick(rng) % 3 - 1 : pick(rng) % 2 - 1;
  const auto r = std::min<std::int64_t>(horizon, std::llround(reply(rng)));
  return answered(agency, kind, opened, r, account, r / 3);
}

/// `n` random appeals opened over the 35 days before `now`, added at `now`.
void fill_random(RollingStats& s, std::mt19937_64& rng, std::int64_t now, int n) {
  for (int i = 0; i < n; ++i) {
    s.add(random_appeal(rng, now, 35 * kDaySecs, s.registry().horizon_secs), now);
  }
}

}  // namespace

TEST_CASE("rolling: each window forgets an appeal exactly its length after the appeal opened") {
  RollingStats s(make_registry(86400));
  s.add(answered(0, AppealKind::first, kT0, 300), kT0 + 300);
  // The cohort of kT0 is sub-bucket kT0 / width =: s0. At kT0 + L − 1 the newest sub-bucket
  // is s0 + 59 and s0 is the oldest one kept; at kT0 + L it is s0 + 60 and s0 is gone.
  for (std::size_t w = 0; w < kWindows.size(); ++w) {
    const std::int64_t length = kWindows[w].seconds;
    CAPTURE(kWindows[w].name);
    CHECK(first(s, w, kT0 + 300).answered == 1);
    CHECK(first(s, w, kT0 + length - 1).answered == 1);
    CHECK(first(s, w, kT0 + length).answered == 0);
  }
  CHECK_FALSE(first(s, kHour, kT0 + 3600).median.has_value());
  CHECK_FALSE(first(s, kHour, kT0 + 3600).mean.has_value());
  const WindowSummary month = first(s, kMonth, kT0 + 3600);
  CHECK(within(month.median, 300.0, kAccuracy));
  CHECK(*month.mean == 300.0);
  CHECK(*month.answer_rate == 1.0);  // 1 answered / (1 + 0 unanswered)
}

TEST_CASE("rolling: a window's trailing edge is a sub-bucket edge") {
  RollingStats s(make_registry(86400 * 7));
  // kT0 + 59 is the last second of the 1h sub-bucket [kT0, kT0 + 60): that sub-bucket leaves
  // at kT0 + 3600, only 3541 s after this opening. kT0 + 60 starts the next one, which
  // stays until kT0 + 3659.
  s.add(answered(0, AppealKind::first, kT0 + 59, 10), kT0 + 69);
  s.add(answered(0, AppealKind::first, kT0 + 60, 10), kT0 + 70);
  CHECK(first(s, kHour, kT0 + 3599).answered == 2);
  CHECK(first(s, kHour, kT0 + 3600).answered == 1);
  CHECK(first(s, kHour, kT0 + 3659).answered == 1);
  CHECK(first(s, kHour, kT0 + 3660).answered == 0);
  // 30d: sub-buckets of 12 h. Opened at kT0 + 43199, the last second of [kT0, kT0 + 43200),
  // it leaves at kT0 + 2592000: 2592000 − 43199 = 2548801 s = 29.5 days + 1 s after opening.
  s.add(answered(0, AppealKind::followup, kT0 + 43199, 10), kT0 + 43209);
  const auto followups = [&](std::int64_t now) {
    return s.agency_summary(kAlpha, AppealKind::followup, kMonth, now, kNoOpen).answered;
  };
  CHECK(followups(kT0 + 2592000 - 1) == 1);
  CHECK(followups(kT0 + 2592000) == 0);

  // in_window draws the same edges, for the caller selecting open appeals.
  CHECK(in_window(kT0 + 59, kHour, kT0 + 3599));
  CHECK_FALSE(in_window(kT0 + 59, kHour, kT0 + 3600));
  CHECK(in_window(kT0 + 60, kHour, kT0 + 3600));
  CHECK(in_window(kT0 + 43199, kMonth, kT0 + 2592000 - 1));
  CHECK_FALSE(in_window(kT0 + 43199, kMonth, kT0 + 2592000));
  // An opening after `now` (clock skew) belongs to the newest sub-bucket.
  CHECK(in_window(kT0 + 7200, kHour, kT0));
}

TEST_CASE("rolling: new data pushes old sub-buckets out of the ring") {
  RollingStats s(make_registry(86400));
  s.add(answered(0, AppealKind::first, kT0, 100), kT0 + 100);
  // Opened 61 minutes later; adding it at kT0 + 3860 advances the 1h ring to sub-bucket
  // s0 + 64 (3860 / 60 = 64.3), whose window starts at s0 + 5: the first cohort (s0) is out,
  // the second (s0 + 61) in.
  s.add(answered(0, AppealKind::first, kT0 + 3660, 200), kT0 + 3860);
  const WindowSummary hour = first(s, kHour, kT0 + 3860);
  CHECK(hour.answered == 1);
  CHECK(within(hour.median, 200.0, kAccuracy));
  CHECK(first(s, kDay, kT0 + 3860).answered == 2);
  // A whole idle month later, then one answer: only that one remains anywhere.
  const std::int64_t later = kT0 + 40 * kDaySecs;
  s.add(answered(0, AppealKind::first, later, 50), later + 50);
  for (std::size_t w = 0; w < kWindows.size(); ++w) CHECK(first(s, w, later + 50).answered == 1);
}

TEST_CASE("rolling: a window is the cohort of appeals opened in it, whenever they were answered") {
  const std::int64_t now = kT0 + 10 * kDaySecs;  // a 1h and a 24h sub-bucket edge
  RollingStats s(make_registry(7 * kDaySecs));
  // Opened two days ago, answered now. By answer time (the old definition) it would be in the
  // last hour; as a cohort it is only where its opening is: the 24h window reaches back to
  // (now / 1440 − 59) · 1440 = now − 84960 s, the 7d one to at least now − 59 · 10080 s =
  // now − 594720 s.
  s.add(answered(0, AppealKind::first, now - 2 * kDaySecs, 2 * kDaySecs), now);
  CHECK(first(s, kHour, now).answered == 0);
  CHECK(first(s, kDay, now).answered == 0);
  CHECK(first(s, kWeek, now).answered == 1);
  CHECK(first(s, kMonth, now).answered == 1);
  // Opened half an hour ago, answered now: every window.
  s.add(answered(0, AppealKind::first, now - 1800, 1800), now);
  CHECK(first(s, kHour, now).answered == 1);
  CHECK(within(first(s, kHour, now).median, 1800.0, kAccuracy));
  const WindowSummary week = first(s, kWeek, now);
  CHECK(week.answered == 2);
  CHECK(*week.mean == (1800.0 + 172800.0) / 2);  // 87300, exact: sums are whole seconds
  CHECK(within(week.median, 87300.0, kAccuracy));
  // Opened two hours ago, answered a minute later, reported only now (a late connector):
  // the cohort of two hours ago.
  s.add(answered(0, AppealKind::first, now - 7200, 60), now);
  CHECK(first(s, kHour, now).answered == 1);
  CHECK(first(s, kDay, now).answered == 2);
  // Two appeals opened together leave together, however far apart their answers: both
  // opened at now − 3000 (sub-bucket now/60 − 50), one answered a minute later, the other
  // now. At now + 600 the 1h window starts at now/60 + 10 − 59 = now/60 − 49.
  s.add(answered(0, AppealKind::first, now - 3000, 60), now);
  s.add(answered(0, AppealKind::first, now - 3000, 3000), now);
  CHECK(first(s, kHour, now).answered == 3);
  CHECK(first(s, kHour, now + 599).answered == 3);
  CHECK(first(s, kHour, now + 600).answered == 1);  // only the one opened at now − 1800

  // Exactly one ring length late: now − 3600 is sub-bucket now/60 − 60, the ring position of
  // the newest cohort (now/60). It must neither count nor clobber that cohort.
  RollingStats edge(make_registry(86400));
  edge.add(answered(0, AppealKind::first, now, 59), now + 59);
  edge.add(answered(0, AppealKind::first, now - 3600, 60), now + 59);
  CHECK(first(edge, kHour, now + 59).answered == 1);
  CHECK(within(first(edge, kHour, now + 59).median, 59.0, kAccuracy));
  CHECK(first(edge, kDay, now + 59).answered == 2);

  // Opened before every window: nothing at all, and no ring allocated for it.
  RollingStats old(make_registry(86400));
  const std::size_t empty_bytes = old.memory_bytes();
  old.add(answered(0, AppealKind::first, now - 40 * kDaySecs, 60), now);
  CHECK(old.memory_bytes() == empty_bytes);
  CHECK(old.responders(kAlpha).empty());
  for (std::size_t w = 0; w < kWindows.size(); ++w) CHECK(first(old, w, now).answered == 0);

  // Clock skew: opened an hour after `now`, it keeps the cohort of its own opening (the
  // ring's head moves up to it), leaves the 1h window an hour after that opening, at
  // now + 7200, and remove() finds it where add() put it, whatever the clock then.
  RollingStats skew(make_registry(86400));
  const Appeal ahead = answered(0, AppealKind::first, now + 3600, 60);
  skew.add(ahead, now);
  CHECK(first(skew, kHour, now).answered == 1);
  CHECK(first(skew, kHour, now + 7199).answered == 1);
  CHECK(first(skew, kHour, now + 7200).answered == 0);
  RollingStats skew2(make_registry(86400));
  skew2.add(ahead, now);
  skew2.remove(ahead, now + 100);
  for (std::size_t w = 0; w < kWindows.size(); ++w) CHECK(first(skew2, w, now + 100).answered == 0);
}

TEST_CASE("rolling: unanswered appeals join the cohort of their opening, censored at the horizon") {
  RollingStats s(make_registry(1000));  // horizon 1000 s
  // Opened at kT0, unanswered from kT0 + 1000, noticed by the expiry sweep at kT0 + 5000:
  // in the cohort of kT0, which the 1h window no longer holds at kT0 + 5000 (its oldest
  // sub-bucket is 5000 / 60 − 59 = s0 + 24).
  s.add(unanswered(0, AppealKind::first, kT0), kT0 + 5000);
  CHECK(first(s, kHour, kT0 + 5000).unanswered == 0);
  CHECK(first(s, kDay, kT0 + 5000).unanswered == 1);
  // Opened at kT0 + 3600 (sub-bucket s0 + 60), noticed at kT0 + 4610: in the last hour until
  // an hour after it opened.
  s.add(unanswered(0, AppealKind::first, kT0 + 3600), kT0 + 4610);
  CHECK(first(s, kHour, kT0 + 4610).unanswered == 1);
  CHECK(first(s, kHour, kT0 + 7199).unanswered == 1);
  CHECK(first(s, kHour, kT0 + 7200).unanswered == 0);

  s.add(answered(0, AppealKind::first, kT0 + 5000, 30), kT0 + 5030);
  s.add(answered(0, AppealKind::first, kT0 + 5000, 90), kT0 + 5090);
  const WindowSummary day = first(s, kDay, kT0 + 5090);
  CHECK(day.answered == 2);
  CHECK(day.unanswered == 2);
  CHECK(day.open == 0);
  CHECK(*day.answer_rate == 0.5);                   // 2 / (2 + 2)
  CHECK_FALSE(day.within_target_rate.has_value());  // alpha has no target here
  // Four at risk. 30: S = 3/4; 90: 3 at risk, S = 3/4 · 2/3 = 1/2 exactly. No answer follows,
  // only the two censorings at the horizon (1000): the median is 90.
  CHECK(within(day.km_median_seconds, 90.0, kAccuracy));
  CHECK(day.km_note == KmNote::none);
  CHECK(within(day.km_max_followup, 1000.0, kAccuracy));
  CHECK(day.km_survival == doctest::Approx(0.5));
  // Unanswered appeals never reach responders.
  const WindowSummary press = s.responder_summary(kAlpha, kPressAccount, kDay, kT0 + 5090);
  CHECK(press.answered == 2);
  CHECK(press.unanswered == 0);
}

TEST_CASE(
    "rolling: open appeals of the cohort are censored at their age in the Kaplan-Meier "
    "median") {
  RollingStats s(make_registry(7 * kDaySecs));
  // One cohort (opened at kT0), looked at through the 30d window eight days later. Every time
  // below is alone in its sketch bucket, so the bucketed curve is the exact one on
  // representatives, each within the accuracy of its time.
  const std::int64_t now = kT0 + 8 * kDaySecs;
  for (const std::int64_t reply : {100, 200, 300, 400}) {
    s.add(answered(0, AppealKind::first, kT0, reply), kT0 + reply);
  }
  auto month = [&](const QuantileSketch& open) {
    return s.agency_summary(kAlpha, AppealKind::first, kMonth, now, open);
  };
  // Nothing censored. 100: S = 3/4; 200: 1/2 exactly, flat until 300: the midpoint 250, the
  // sample median of {100, 200, 300, 400} (rank 1.5).
  const WindowSummary none = month(kNoOpen);
  CHECK(within(none.km_median_seconds, 250.0, kAccuracy));
  CHECK(within(none.median, 250.0, kAccuracy));
  CHECK(none.km_survival == 0.0);  // the last answer leaves nobody waiting
  CHECK(none.open == 0);
  // Open for 50 s: censored before every answer, so the four answers face the same risk
  // sets as before: still 250.
  const WindowSummary early = month(ages({{50, 1}}));
  CHECK(within(early.km_median_seconds, 250.0, kAccuracy));
  CHECK(early.open == 1);
  // Open for 150 s. 100: 5 at risk, S = 4/5; 150 leaves; 200: 3 at risk, S = 4/5 · 2/3 =
  // 8/15 ≈ 0.533; 300: 2 at risk, S = 8/15 · 1/2 = 4/15 < 1/2: the median is 300.
  const WindowSummary between = month(ages({{150, 1}}));
  CHECK(within(between.km_median_seconds, 300.0, kAccuracy));
  CHECK(between.km_survival == doctest::Approx(0.0));
  // Open for a day. 5 at risk: 4/5, 3/5, then 300: 3/5 · 2/3 = 2/5 < 1/2: 300 again; after
  // 400, 2/5 · 1/2 = 1/5 (the open one is still waiting).
  const WindowSummary late = month(ages({{86400, 1}}));
  CHECK(within(late.km_median_seconds, 300.0, kAccuracy));
  CHECK(late.km_survival == doctest::Approx(1.0 / 5.0));
  CHECK(within(late.km_max_followup, 86400.0, kAccuracy));
  // Four open for a day. 8 at risk: 7/8, 6/8, 5/8, then 400: 4/8 exactly, and only
  // censorings follow: the median is 400.
  const WindowSummary four = month(ages({{86400, 4}}));
  CHECK(within(four.km_median_seconds, 400.0, kAccuracy));
  CHECK(four.km_survival == doctest::Approx(0.5));
  // Five open for a day. 9 at risk: S ends at 5/9 > 1/2: no median, and why.
  const WindowSummary five = month(ages({{86400, 5}}));
  CHECK_FALSE(five.km_median_seconds.has_value());
  CHECK(five.km_note == KmNote::too_few_closed);
  CHECK(five.km_survival == doctest::Approx(5.0 / 9.0));
  CHECK(five.open == 5);
  // The plain quantiles, counts and rates are of the answers alone.
  for (const WindowSummary* w : {&early, &between, &late, &four, &five}) {
    CHECK(w->answered == 4);
    CHECK(w->unanswered == 0);
    CHECK(*w->answer_rate == 1.0);
    CHECK(w->median == none.median);
    CHECK(w->mean == none.mean);
  }

  // An unanswered appeal of the cohort (opened at kT0, unanswered from kT0 + 7 days) is
  // censored at the horizon, after every answer: like the one open for a day, 300.
  s.add(unanswered(0, AppealKind::first, kT0), now);
  const WindowSummary expired = month(kNoOpen);
  CHECK(within(expired.km_median_seconds, 300.0, kAccuracy));
  CHECK(expired.km_survival == doctest::Approx(1.0 / 5.0));
  CHECK(within(expired.km_max_followup, 604800.0, kAccuracy));
  CHECK(*expired.answer_rate == 0.8);  // 4 / (4 + 1)
}

TEST_CASE("rolling: km_note says why a window has no Kaplan-Meier median") {
  RollingStats s(make_registry(7 * kDaySecs));
  const std::int64_t now = kT0 + 8 * kDaySecs;
  auto month = [&](const QuantileSketch& open) {
    return s.agency_summary(kAlpha, AppealKind::first, kMonth, now, open);
  };
  // Nobody opened anything.
  const WindowSummary empty = month(kNoOpen);
  CHECK(empty.km_note == KmNote::no_appeals);
  CHECK_FALSE(empty.km_median_seconds.has_value());
  CHECK(empty.km_survival == 1.0);
  CHECK(empty.km_max_followup == 0.0);
  CHECK_FALSE(empty.answer_rate.has_value());
  // Only an open appeal, a minute old: there are appeals, none closed.
  const WindowSummary only_open = month(ages({{60, 1}}));
  CHECK(only_open.km_note == KmNote::too_few_closed);
  CHECK(only_open.open == 1);
  CHECK(only_open.km_survival == 1.0);
  CHECK(within(only_open.km_max_followup, 60.0, kAccuracy));
  CHECK_FALSE(only_open.answer_rate.has_value());  // nothing decided yet
  // Only an unanswered appeal: followed for the whole horizon, never answered.
  s.add(unanswered(0, AppealKind::first, kT0), now);
  const WindowSummary silent = month(kNoOpen);
  CHECK(silent.km_note == KmNote::too_few_closed);
  CHECK(silent.km_survival == 1.0);
  CHECK(within(silent.km_max_followup, 604800.0, kAccuracy));
  CHECK(*silent.answer_rate == 0.0);
  // One answer at 100 s, the unanswered one and one open for an hour: 3 at risk at 100,
  // S = 2/3 > 1/2.
  s.add(answered(0, AppealKind::first, kT0, 100), kT0 + 100);
  const QuantileSketch hour_old = ages({{3600, 1}});
  const WindowSummary one = month(hour_old);
  CHECK(one.km_note == KmNote::too_few_closed);
  CHECK(one.km_survival == doctest::Approx(2.0 / 3.0));
  // A second answer at 200 s: 4 at risk, 3/4, then 3/4 · 2/3 = 1/2 exactly with only
  // censorings after it: the median is 200.
  s.add(answered(0, AppealKind::first, kT0, 200), kT0 + 200);
  const WindowSummary two = month(hour_old);
  CHECK(two.km_note == KmNote::none);
  CHECK(within(two.km_median_seconds, 200.0, kAccuracy));
  // Once the cohort has left the window, the window is empty again (the caller, selecting
  // with in_window, has no open appeals to pass either).
  const std::int64_t gone = kT0 + 30 * kDaySecs;
  CHECK_FALSE(in_window(kT0, kMonth, gone));
  CHECK(s.agency_summary(kAlpha, AppealKind::first, kMonth, gone, kNoOpen).km_note ==
        KmNote::no_appeals);

  CHECK(to_string(KmNote::none).empty());
  CHECK_FALSE(to_string(KmNote::no_appeals).empty());
  CHECK_FALSE(to_string(KmNote::too_few_closed).empty());
  CHECK(to_string(KmNote::no_appeals) != to_string(KmNote::too_few_closed));
}

TEST_CASE("rolling: within target counts answers within the agency's business-time target") {
  auto registry = make_registry(3600);
  registry->agencies[0].target_business_secs = 100;
  RollingStats s(registry);
  const std::int64_t now = kT0 + 500;
  s.add(answered(0, AppealKind::first, kT0, 500, kPressAccount, 50), now);
  s.add(answered(0, AppealKind::first, kT0, 500, kPressAccount, 100), now);  // on target
  s.add(answered(0, AppealKind::first, kT0, 500, kChannelAccount, 150), now);
  // Opened two hours ago, unanswered since an hour ago: in the 24h cohort, which reaches back
  // to (now / 1440 − 59) · 1440 = kT0 − 84960.
  s.add(unanswered(0, AppealKind::first, kT0 - 7200), now);
  const WindowSummary day = first(s, kDay, now);
  CHECK(day.within_target == 2);
  CHECK(*day.within_target_rate == 0.5);                 // 2 / (3 answered + 1 unanswered)
  CHECK(*day.answer_rate == 0.75);                       // 3 / (3 + 1)
  CHECK(within(day.business_median, 100.0, kAccuracy));  // of {50, 100, 150}
  CHECK(within(day.median, 500.0, kAccuracy));
  // Per responder, the share is of that responder's answers.
  const auto press = s.responder_summary(kAlpha, kPressAccount, kDay, now);
  CHECK(press.within_target == 2);
  CHECK(*press.within_target_rate == 1.0);  // 2 / 2
  CHECK(*s.responder_summary(kAlpha, kChannelAccount, kDay, now).within_target_rate == 0.0);
  // Beta has no target: no rate at all.
  s.add(answered(1, AppealKind::first, kT0, 10, 0, 10), now);
  CHECK_FALSE(first(s, kDay, now, kBeta).within_target_rate.has_value());
  CHECK(first(s, kDay, now, kBeta).within_target == 0);
}

TEST_CASE("rolling: responder and branch groups take answers of both kinds, by cohort") {
  RollingStats s(make_registry(3600));
  const std::int64_t now = kT0 + 900;
  s.add(answered(0, AppealKind::first, kT0, 60, kPressAccount), kT0 + 60);
  s.add(answered(0, AppealKind::followup, kT0, 120, kPressAccount), kT0 + 120);
  s.add(answered(0, AppealKind::first, kT0, 600, -1), kT0 + 600);  // the conversation itself
  s.add(answered(0, AppealKind::first, kT0, 900, kChannelAccount), kT0 + 900);
  s.add(unanswered(0, AppealKind::first, kT0 - 3700), kT0);

  CHECK(s.responders(kAlpha) == std::vector<std::int32_t>{-1, kChannelAccount, kPressAccount});
  CHECK(s.responders(kBeta).empty());
  CHECK(s.branches(kAlpha) == std::vector<std::string>{"central"});  // press is in "central"
  CHECK(s.branches(kBeta).empty());

  const auto press = s.responder_summary(kAlpha, kPressAccount, kDay, now);
  CHECK(press.answered == 2);
  CHECK(press.unanswered == 0);
  CHECK_FALSE(press.answer_rate.has_value());
  CHECK_FALSE(press.km_median_seconds.has_value());
  CHECK(within(press.median, 90.0, kAccuracy));  // rank 0.5 between 60 and 120
  CHECK(*press.mean == 90.0);
  CHECK(s.responder_summary(kAlpha, -1, kDay, now).answered == 1);
  CHECK(s.responder_summary(kAlpha, kChannelAccount, kDay, now).answered == 1);
  const auto central = s.branch_summary(kAlpha, "central", kDay, now);
  CHECK(central.answered == 2);
  CHECK(within(central.p99, 60 + 0.99 * 60, kAccuracy));  // rank 0.99 between 60 and 120
  CHECK(s.branch_summary(kAlpha, "nowhere", kDay, now).answered == 0);

  CHECK(first(s, kDay, now).answered == 3);
  CHECK(first(s, kDay, now).unanswered == 1);
  CHECK(s.agency_summary(kAlpha, AppealKind::followup, kDay, now, kNoOpen).answered == 1);

  // Responders and branches are cohorts of opening too: a press answer given now to an
  // appeal opened two days ago is in their 7d window, not in their 24h one.
  s.add(answered(0, AppealKind::first, now - 2 * kDaySecs, 2 * kDaySecs, kPressAccount), now);
  CHECK(s.responder_summary(kAlpha, kPressAccount, kDay, now).answered == 2);
  CHECK(s.responder_summary(kAlpha, kPressAccount, kWeek, now).answered == 3);
  CHECK(s.branch_summary(kAlpha, "central", kDay, now).answered == 2);
  CHECK(s.branch_summary(kAlpha, "central", kWeek, now).answered == 3);
  // And they leave with their cohort: at kT0 + 3600 the 1h window has dropped kT0.
  CHECK(s.responder_summary(kAlpha, kPressAccount, kHour, kT0 + 3599).answered == 2);
  CHECK(s.responder_summary(kAlpha, kPressAccount, kHour, kT0 + 3600).answered == 0);

  // Out-of-range queries answer empty rather than reading past the state.
  CHECK(first(s, kWindows.size(), now).answered == 0);
  CHECK(first(s, kDay, now, 9).answered == 0);
  CHECK(s.responder_summary(kAlpha, 9, kDay, now).answered == 0);
  CHECK(s.responder_summary(kAlpha, -2, kDay, now).answered == 0);
  CHECK(s.responder_summary(9, -1, kDay, now).answered == 0);
  CHECK(s.branch_summary(9, "central", kDay, now).answered == 0);
  CHECK(s.responders(9).empty());
  CHECK(s.branches(9).empty());
}

TEST_CASE("rolling: ignored appeals: unattributable ones are counted, open ones not at all") {
  RollingStats s(make_registry(3600));
  const std::int64_t now = kT0 + 60;
  s.add(answered(0, AppealKind::first, kT0, 60), now);
  CHECK(s.ignored() == 0);
  // An account index the registry does not know: the agency still counts the answer, no
  // responder does.
  const Appeal stranger = answered(0, AppealKind::first, kT0, 60, 7);
  s.add(stranger, now);
  CHECK(s.ignored() == 1);
  CHECK(first(s, kDay, now).answered == 2);
  CHECK(s.responders(kAlpha) == std::vector<std::int32_t>{kPressAccount});
  // Agencies the registry does not know count nowhere but here.
  const Appeal nobody = answered(5, AppealKind::first, kT0, 60);
  s.add(nobody, now);
  s.add(unanswered(-1, AppealKind::first, kT0 - 3700), now);
  CHECK(s.ignored() == 3);
  // Open and withdrawn appeals are not decided: add and remove ignore them, and they are not
  // "ignored" (the caller passes open ones as open_ages).
  for (const AppealStatus status : {AppealStatus::open, AppealStatus::withdrawn}) {
    Appeal a = answered(0, AppealKind::first, kT0, 60);
    a.status = status;
    s.add(a, now);
    s.remove(a, now);
    a.agency = 5;
    s.add(a, now);
  }
  CHECK(s.ignored() == 3);
  CHECK(first(s, kDay, now).answered == 2);
  // Taking back an unattributable appeal takes back what it added (the agency's count) and
  // leaves ignored(), a counter, where it was.
  s.remove(stranger, now);
  s.remove(nobody, now);
  CHECK(first(s, kDay, now).answered == 1);
  CHECK(s.ignored() == 3);
}

TEST_CASE("rolling: every window agrees with the exact statistics of its cohort") {
  auto registry = make_registry(7 * kDaySecs);
  const std::int64_t horizon = registry->horizon_secs;
  registry->agencies[0].target_business_secs = 4 * 3600;
  std::mt19937_64 rng(2024);
  std::lognormal_distribution<double> reply(std::log(2 * 3600.0), 1.7);
  std::uniform_int_distribution<std::int64_t> age(0, 32 * kDaySecs);
  std::uniform_int_distribution<int> pick(0, 99);
  const std::int64_t now = kT0 + 40 * kDaySecs + 1234;
  // Openings over the 32 days before `now`, a few beyond the 30d window. Each appeal has its
  // state at `now` as pairing would report it: answered once opened_at + reply <= now,
  // unanswered once now > opened_at + horizon, open otherwise.
  struct Decided {
    std::int64_t at;
    Appeal appeal;
  };
  std::vector<Decided> decided;
  std::vector<Appeal> all;
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t opened = now - age(rng);
    const int roll = pick(rng);
    const auto r = std::llround(reply(rng));
    Appeal a = answered(0, AppealKind::first, opened, r, roll % 3 - 1, r / 4);
    if (roll < 15 || r > horizon || opened + r > now) a.status = AppealStatus::unanswered;
    if (a.status == AppealStatus::unanswered && now <= opened + horizon) {
      a.status = AppealStatus::open;
    }
    all.push_back(a);
    if (a.status == AppealStatus::answered) decided.push_back({a.answered_at, a});
    if (a.status == AppealStatus::unanswered) decided.push_back({opened + horizon + 1, a});
  }
  // Into the rolling windows in the order the daemon learns of them.
  std::sort(decided.begin(), decided.end(),
            [](const Decided& a, const Decided& b) { return a.at < b.at; });
  RollingStats rolling(registry);
  for (const Decided& d : decided) rolling.add(d.appeal, d.at);

  for (std::size_t w = 0; w < kWindows.size(); ++w) {
    CAPTURE(kWindows[w].name);
    ExactStats exact(registry);
    QuantileSketch open_ages;
    for (const Appeal& a : all) {
      if (!in_window(a.opened_at, w, now)) continue;
      if (a.status == AppealStatus::open) {
        exact.add_open(a, now);
        open_ages.add(static_cast<double>(now - a.opened_at));
      } else {
        exact.add_closed(a);
      }
    }
    const KindSummary want = exact.summarize(0, AppealKind::first);
    const WindowSummary got = rolling.agency_summary(kAlpha, AppealKind::first, w, now, open_ages);
    CHECK(got.answered == want.answered);
    CHECK(got.unanswered == want.unanswered);
    CHECK(got.open == want.open);
    if (kWindows[w].seconds >= registry->horizon_secs) {
      CHECK(got.answer_rate == want.answer_rate);
      CHECK(got.within_target_rate == want.within_target_rate);
    } else {
      // Shorter than the horizon: nothing of the cohort can be unanswered yet, no ratio.
      CHECK_FALSE(got.answer_rate.has_value());
      CHECK_FALSE(got.within_target_rate.has_value());
    }
    // The sketch's quantiles are within its relative accuracy of the exact ones.
    CHECK(within(got.median, want.reply_median, kAccuracy));
    CHECK(within(got.p90, want.reply_p90, kAccuracy));
    CHECK(within(got.p99, want.reply_p99, kAccuracy));
    CHECK(within(got.business_median, want.business_median, kAccuracy));
    CHECK(within(got.business_p90, want.business_p90, kAccuracy));
    CHECK(within(got.mean, want.reply_mean, 1e-12));
    // A steep curve at 0.5 where there is a median: well conditioned (see test_km.cpp).
    CHECK(within(got.km_median_seconds, want.km_median_seconds, 0.01));
    // Not vacuous: a median in every window but the last hour's (about 20 appeals, most
    // still open).
    CHECK(got.km_median_seconds.has_value() == (w != kHour));
  }
  // Not vacuous: the 30d window has every kind of appeal, the 7d one fewer answers, and
  // some appeals fell outside every window.
  const WindowSummary month = first(rolling, kMonth, now);
  const WindowSummary week = first(rolling, kWeek, now);
  CHECK(month.unanswered > 0);
  CHECK(week.answered > 0);
  CHECK(week.answered < month.answered);
  CHECK(std::any_of(all.begin(), all.end(),
                    [&](const Appeal& a) { return !in_window(a.opened_at, kMonth, now); }));
}

TEST_CASE("rolling: remove takes back exactly what add put in") {
  auto registry = make_registry(3600);
  registry->agencies[0].target_business_secs = 100;
  const std::int64_t now = kT0 + 600;
  const Appeal a = answered(0, AppealKind::first, kT0, 60, kPressAccount, 50);
  const Appeal b = answered(0, AppealKind::first, kT0 + 60, 120, kChannelAccount, 120);
  const Appeal c = unanswered(0, AppealKind::first, kT0 - 7200);
  RollingStats s(registry);
  s.add(a, now);
  s.add(b, now);
  s.add(c, now);
  // Without b: the same state as never having seen it, byte for byte.
  s.remove(b, now);
  RollingStats without_b(registry);
  without_b.add(a, now);
  without_b.add(c, now);
  CHECK(same(everything(s, now, &without_b), everything(without_b, now)));
  s.advance(now);  // frees the channel's rings, empty now
  CHECK(snapshot(s) == snapshot(without_b));
  CHECK(s.responders(kAlpha) == std::vector<std::int32_t>{kPressAccount});

  // A correction: a later message re-paired a's thread and the answer is now a minute later.
  Appeal a2 = a;
  a2.reply_seconds = a2.business_reply_seconds = 120;
  a2.answered_at = a.opened_at + 120;
  s.remove(a, now);
  s.add(a2, now);
  const WindowSummary day = first(s, kDay, now);
  CHECK(day.answered == 1);
  CHECK(*day.mean == 120.0);
  CHECK(day.within_target == 0);  // 120 > 100
  CHECK(*day.within_target_rate == 0.0);
  CHECK(*day.answer_rate == 0.5);  // 1 / (1 + 1)
  // An unanswered appeal becomes answered (a late reply within the horizon turned up).
  Appeal c2 = answered(0, AppealKind::first, c.opened_at, 300, -1);
  s.remove(c, now);
  s.add(c2, now);
  CHECK(first(s, kDay, now).unanswered == 0);
  CHECK(first(s, kDay, now).answered == 2);

  // A take-back after the cohort left a window: the shorter window has nothing left to
  // take, the longer ones lose the appeal. a2 (opened kT0) is out of the 1h window from
  // kT0 + 3600.
  const std::int64_t later = kT0 + 2 * 3600;
  s.remove(a2, later);
  CHECK(first(s, kHour, later).answered == 0);
  CHECK(first(s, kDay, later).answered == 1);  // c2 alone
  CHECK(s.responder_summary(kAlpha, kPressAccount, kDay, later).answered == 0);
  s.remove(c2, later);
  s.advance(later);
  CHECK(snapshot(s) == snapshot(RollingStats(registry)));

  // Taking back from a state that never saw anything allocates nothing.
  RollingStats fresh(registry);
  const std::size_t bytes = fresh.memory_bytes();
  fresh.remove(a, now);
  fresh.remove(c, now);
  CHECK(fresh.memory_bytes() == bytes);
  CHECK(first(fresh, kDay, now).answered == 0);
}

TEST_CASE("rolling: random interleavings of add and remove equal the net set and a brute count") {
  auto registry = make_registry(7 * kDaySecs);
  registry->agencies[0].target_business_secs = 1800;
  const std::int64_t horizon = registry->horizon_secs;
  // Not vacuous: takes-back that found their cohort in each window, and appeals left there.
  std::array<std::size_t, kWindows.size()> taken_back{}, left{};
  for (const std::uint64_t seed : {11u, 12u, 13u, 14u}) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> pick(0, 99);
    // Mostly a minute or two between operations, now and then hours, about 19 days in all;
    // a busy last quarter of an hour, so that the 1h window ends up holding something.
    auto step = [&](int op) {
      const std::int64_t most = op >= 2700 ? 6 : pick(rng) < 95 ? 120 : 6 * 3600;
      return std::uniform_int_distribution<std::int64_t>(0, most)(rng);
    };
    RollingStats s(registry);
    std::vector<Appeal> live;  // a multiset: the same appeal may be in twice
    std::int64_t now = kT0;
    std::size_t removed = 0;
    for (int op = 0; op < 3000; ++op) {
      now += step(op);
      const int roll = pick(rng);
      if (!live.empty() && roll < 40) {
        // Only what was added is taken back, as the engine does on a correction.
        const std::size_t i = std::uniform_int_distribution<std::size_t>(0, live.size() - 1)(rng);
        s.remove(live[i], now);
        for (std::size_t w = 0; w < kWindows.size(); ++w) {
          taken_back[w] += in_window(live[i].opened_at, w, now) ? 1 : 0;
        }
        live[i] = live.back();
        live.pop_back();
        ++removed;
      } else if (!live.empty() && roll < 45) {
        const Appeal again = live[static_cast<std::size_t>(pick(rng)) % live.size()];
        s.add(again, now);
        live.push_back(again);
      } else {
        // A third opened within 2 hours, a third within 2 days, a third within 35 days: every
        // window gets some. Opened by `now`: an opening after the clock counts in the clock's
        // sub-bucket, where a later remove() would not look (it places the appeal by its
        // opening then).
        const std::int64_t oldest = std::array{7200, 2 * 86400, 35 * 86400}[pick(rng) % 3];
        Appeal a = random_appeal(rng, now, oldest, horizon);
        a.opened_at = std::min(a.opened_at, now);
        a.answered_at = a.opened_at + a.reply_seconds;
        s.add(a, now);
        live.push_back(a);
      }
      if (pick(rng) < 3) s.advance(now);
    }
    REQUIRE(removed > 500);

    RollingStats net(registry);
    for (const Appeal& a : live) net.add(a, now);
    for (const std::int64_t at : {now, now + 5 * 3600, now + 3 * kDaySecs}) {
      CAPTURE(at - now);
      CHECK(same(everything(s, at, &net), everything(net, at)));
      // Brute force over the net set: counts, within target and the exact mean.
      for (std::size_t w = 0; w < kWindows.size(); ++w) {
        for (std::size_t agency = 0; agency < 2; ++agency) {
          const Agency& config = registry->agencies[agency];
          for (const AppealKind kind : {AppealKind::first, AppealKind::followup}) {
            std::uint64_t answers = 0, silent = 0, on_target = 0;
            std::int64_t sum = 0;
            for (const Appeal& a : live) {
              if (static_cast<std::size_t>(a.agency) != agency || a.kind != kind ||
                  !in_window(a.opened_at, w, at)) {
                continue;
              }
              if (a.status == AppealStatus::unanswered) {
                ++silent;
                continue;
              }
              ++answers;
              sum += a.reply_seconds;
              if (config.target_business_secs &&
                  a.business_reply_seconds <= *config.target_business_secs) {
                ++on_target;
              }
            }
            if (at == now) left[w] += answers + silent;
            const WindowSummary got = s.agency_summary(agency, kind, w, at, kNoOpen);
            CHECK(got.answered == answers);
            CHECK(got.unanswered == silent);
            CHECK(got.within_target == on_target);
            if (answers > 0) {
              CHECK(*got.mean == static_cast<double>(sum) / static_cast<double>(answers));
            }
          }
          // Responders over both kinds; branches (only alpha's press is in one).
          for (std::int32_t account = -1;
               account < static_cast<std::int32_t>(config.accounts.size()); ++account) {
            const auto answers = std::count_if(live.begin(), live.end(), [&](const Appeal& a) {
              return static_cast<std::size_t>(a.agency) == agency &&
                     a.status == AppealStatus::answered && a.responder_account == account &&
                     in_window(a.opened_at, w, at);
            });
            CHECK(s.responder_summary(agency, account, w, at).answered ==
                  static_cast<std::uint64_t>(answers));
          }
        }
        const auto central = std::count_if(live.begin(), live.end(), [&](const Appeal& a) {
          return a.agency == 0 && a.status == AppealStatus::answered &&
                 a.responder_account == kPressAccount && in_window(a.opened_at, w, at);
        });
        CHECK(s.branch_summary(kAlpha, "central", w, at).answered ==
              static_cast<std::uint64_t>(central));
      }
    }
    // After advance both hold the same rings with the same sub-buckets: same bytes.
    s.advance(now);
    net.advance(now);
    CHECK(s.responders(kAlpha) == net.responders(kAlpha));
    CHECK(s.branches(kAlpha) == net.branches(kAlpha));
    CHECK(snapshot(s) == snapshot(net));
    CHECK(s.ignored() == 0);
  }
  for (std::size_t w = 0; w < kWindows.size(); ++w) {
    CAPTURE(kWindows[w].name);
    CHECK(taken_back[w] > 20);
    CHECK(left[w] > 5);
  }
}

TEST_CASE("rolling: advance frees rings of quiet groups without changing any summary") {
  auto registry = make_registry(86400);
  RollingStats a(registry), b(registry);
  std::mt19937_64 rng(3), same_rng(3);
  fill_random(a, rng, kT0, 3000);
  fill_random(b, same_rng, kT0, 3000);
  const std::size_t before = a.memory_bytes();
  for (const std::int64_t now : {kT0, kT0 + 3600, kT0 + 2 * kDaySecs, kT0 + 10 * kDaySecs}) {
    a.advance(now);
    CHECK(same(everything(a, now, &b), everything(b, now)));
  }
  CHECK(a.memory_bytes() < before);
  a.advance(kT0 + 40 * kDaySecs);
  CHECK(a.responders(kAlpha).empty());
  CHECK(a.branches(kAlpha).empty());
  CHECK(a.memory_bytes() == RollingStats(registry).memory_bytes());
  CHECK(first(a, kMonth, kT0 + 40 * kDaySecs).answered == 0);
}

TEST_CASE("rolling: a group that has seen nothing costs little") {
  auto registry = make_registry(86400);
  const RollingStats empty(registry);
  // Two agencies, a handful of accounts: well under a kilobyte of bookkeeping per agency.
  CHECK(empty.memory_bytes() < 2048);
  RollingStats one(registry);
  one.add(answered(0, AppealKind::first, kT0, 60, -1), kT0 + 60);
  // One answer allocates the rings of exactly two groups (alpha/first and the conversation).
  const std::size_t grown = one.memory_bytes() - empty.memory_bytes();
  CHECK(grown > 0);
  CHECK(grown < 2 * kWindows.size() * 16384);
}

TEST_CASE("rolling: snapshots round-trip exactly") {
  auto registry = make_registry(86400);
  registry->agencies[0].target_business_secs = 3600;
  RollingStats s(registry);
  std::mt19937_64 rng(42);
  fill_random(s, rng, kT0, 5000);
  const std::string bytes = snapshot(s);
  CHECK(static_cast<std::uint8_t>(bytes[4]) == 2);  // the format version

  RollingStats back(registry);
  REQUIRE(restores(back, bytes));
  CHECK(snapshot(back) == bytes);
  for (const std::int64_t now : {kT0, kT0 + 1800, kT0 + kDaySecs, kT0 + 20 * kDaySecs}) {
    CHECK(same(everything(back, now), everything(s, now)));
  }
  // Both continue identically: ring heads and sub-bucket slots came through.
  std::mt19937_64 more(43), more_again(43);
  fill_random(s, more, kT0 + 7200, 500);
  fill_random(back, more_again, kT0 + 7200, 500);
  CHECK(snapshot(back) == snapshot(s));

  // Restoring replaces whatever was there.
  RollingStats busy(registry);
  std::mt19937_64 other(5);
  fill_random(busy, other, kT0, 100);
  REQUIRE(restores(busy, bytes));
  CHECK(snapshot(busy) == bytes);

  // An empty state round-trips too.
  RollingStats none(registry);
  RollingStats none_back(registry);
  REQUIRE(restores(none_back, snapshot(none)));
  CHECK(snapshot(none_back) == snapshot(none));
}

TEST_CASE("rolling: restore rejects malformed snapshots and keeps the state") {
  auto registry = make_registry(86400);
  RollingStats s(registry);
  std::mt19937_64 rng(8);
  fill_random(s, rng, kT0, 40);
  const std::string bytes = snapshot(s);

  RollingStats target(registry);
  std::mt19937_64 keep_rng(9);
  fill_random(target, keep_rng, kT0, 20);
  const std::string kept = snapshot(target);

  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    CHECK_FALSE(restores(target, std::string_view(bytes).substr(0, cut)));
  }
  CHECK_FALSE(restores(target, bytes + "x"));  // trailing bytes

  // Version 1 (windows by close time, reply sums as doubles) and a future version 3.
  for (const char v : {1, 3}) {
    std::string version = bytes;
    version[4] = v;
    const auto wrong_version = target.restore(version);
    REQUIRE_FALSE(wrong_version.has_value());
    CHECK(wrong_version.error().message.find("version") != std::string::npos);
  }
  std::string magic = bytes;
  magic[0] = 'X';
  CHECK_FALSE(restores(target, magic));
  RollingStats coarse(registry, 0.01);
  CHECK_FALSE(restores(coarse, bytes));  // different sketch accuracy
  CHECK(snapshot(target) == kept);

  // Random corruption: an Error or a consistent state, never a crash.
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> at(0, bytes.size() - 1);
  std::size_t rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bad = bytes;
    for (int flips = 1 + byte(rng) % 3; flips > 0; --flips)
      bad[at(rng)] = static_cast<char>(byte(rng));
    RollingStats victim(registry);
    if (!restores(victim, bad)) {
      ++rejected;
      CHECK(snapshot(victim) == snapshot(RollingStats(registry)));
    } else {
      everything(victim, kT0);  // must be safe to read
      RollingStats again(registry);
      CHECK(restores(again, snapshot(victim)));
    }
  }
  CHECK(rejected > 0);
}

TEST_CASE("rolling: restore rejects duplicates and inconsistent counts") {
  auto registry = make_registry(86400);
  RollingStats s(registry);
  s.add(answered(0, AppealKind::first, kT0, 60, kPressAccount), kT0 + 60);
  RollingStats target(registry);
  REQUIRE(restores(target, snapshot(s)));

  // Hand-built snapshots from the documented layout (version 2).
  auto header = [] {
    std::string out = "RWRS";
    wire::put_u8(out, 2);
    wire::put_f64(out, kAccuracy);
    wire::put_u8(out, static_cast<std::uint8_t>(kWindows.size()));
    for (const Window& w : kWindows) wire::put_varint(out, static_cast<std::uint64_t>(w.seconds));
    wire::put_u8(out, static_cast<std::uint8_t>(kSubBuckets));
    return out;
  };
  auto agency = [](std::string& out, std::string_view id) {
    wire::put_string(out, id);
    wire::put_u8(out, 0);  // first: no rings
    wire::put_u8(out, 0);  // followup: no rings
  };
  // One 1h ring with its head at kT0's sub-bucket and one sub-bucket there; every answer
  // took 60 s unless `reply_sum` says otherwise.
  auto ring = [](std::string& out, std::uint64_t answered, std::uint64_t unanswered,
                 std::uint64_t within, std::uint64_t sketch_count,
                 std::optional<std::int64_t> reply_sum = std::nullopt) {
    wire::put_u8(out, 1);  // the 1h ring only
    wire::put_svarint(out, kT0 / 60);
    wire::put_u8(out, 1);
    wire::put_u8(out, 0);
    wire::put_varint(out, answered);
    wire::put_varint(out, unanswered);
    wire::put_varint(out, within);
    wire::put_svarint(out, reply_sum.value_or(60 * static_cast<std::int64_t>(answered)));
    QuantileSketch sketch;
    sketch.add(60, sketch_count);
    sketch.serialize(out);
    sketch.serialize(out);
  };

  std::string valid = header();
  wire::put_varint(valid, 1);
  agency(valid, "alpha");
  wire::put_varint(valid, 1);
  wire::put_u8(valid, 1);
  wire::put_u8(valid, 0);
  wire::put_svarint(valid, kPress);
  ring(valid, 2, 0, 1, 2);
  wire::put_varint(valid, 0);
  REQUIRE(restores(target, valid));
  const WindowSummary press = target.responder_summary(kAlpha, kPressAccount, kHour, kT0);
  CHECK(press.answered == 2);
  CHECK(press.within_target == 1);
  CHECK(*press.mean == 60.0);  // reply sum 120 over 2 answers
  CHECK(target.responders(kAlpha) == std::vector<std::int32_t>{kPressAccount});

  std::string twice = header();
  wire::put_varint(twice, 2);
  for (int i = 0; i < 2; ++i) {
    agency(twice, "alpha");
    wire::put_varint(twice, 0);
    wire::put_varint(twice, 0);
  }
  CHECK_FALSE(restores(target, twice));

  auto with_responders = [&](auto body) {
    std::string out = header();
    wire::put_varint(out, 1);
    agency(out, "alpha");
    body(out);
    wire::put_varint(out, 0);
    return out;
  };
  auto conversation_ring = [&](auto... args) {
    return with_responders([&](std::string& out) {
      wire::put_varint(out, 1);
      wire::put_u8(out, 0);
      ring(out, args...);
    });
  };
  // The hand-built form itself is accepted: the cases below each break one thing.
  CHECK(restores(target, conversation_ring(1, 0, 0, 1)));
  CHECK(restores(target, conversation_ring(0, 1, 0, 0)));  // unanswered only: sum 0
  REQUIRE(restores(target, valid));

  CHECK_FALSE(restores(target, with_responders([&](std::string& out) {
                         wire::put_varint(out, 2);  // the conversation twice
                         for (int i = 0; i < 2; ++i) {
                           wire::put_u8(out, 0);
                           ring(out, 1, 0, 0, 1);
                         }
                       })));
  CHECK_FALSE(restores(target, conversation_ring(2, 0, 0, 1)));  // sketch holds fewer values
  CHECK_FALSE(restores(target, conversation_ring(1, 0, 2, 1)));  // more within target
  CHECK_FALSE(restores(target, conversation_ring(0, 0, 0, 0)));  // an empty sub-bucket
  CHECK_FALSE(restores(target, conversation_ring(1, 0, 0, 1, std::int64_t{-60})));  // sum < 0
  // A reply sum without answers to sum.
  CHECK_FALSE(restores(target, conversation_ring(0, 1, 0, 0, std::int64_t{60})));
  CHECK_FALSE(restores(target, with_responders([&](std::string& out) {
                         wire::put_varint(out, 1);
                         wire::put_u8(out, 0);
                         wire::put_u8(out, 0);  // a responder without rings is never written
                       })));
  CHECK_FALSE(restores(target, with_responders([&](std::string& out) {
                         wire::put_varint(out, 1);
                         wire::put_u8(out, 9);  // unknown responder tag
                       })));
  CHECK_FALSE(restores(target, with_responders([&](std::string& out) {
                         wire::put_varint(out, 1);
                         wire::put_u8(out, 0);
                         wire::put_u8(out, 1 << kWindows.size());  // a window that does not exist
                       })));
  // The last good restore is still in place.
  CHECK(target.responder_summary(kAlpha, kPressAccount, kHour, kT0).answered == 2);

  // An agency the configuration no longer has is skipped, not an error.
  std::string gone = header();
  wire::put_varint(gone, 1);
  agency(gone, "retired_agency");
  wire::put_varint(gone, 1);
  wire::put_u8(gone, 0);
  ring(gone, 1, 0, 0, 1);
  wire::put_varint(gone, 0);
  REQUIRE(restores(target, gone));
  CHECK(target.responders(kAlpha).empty());
}

TEST_CASE("rolling: a registry reload keeps groups by agency id, account identity and branch") {
  auto registry = make_registry(86400);
  RollingStats s(registry);
  const std::int64_t now = kT0 + 900;
  s.add(answered(0, AppealKind::first, kT0, 60, kPressAccount), now);
  s.add(answered(0, AppealKind::first, kT0, 600, kChannelAccount), now);
  s.add(answered(0, AppealKind::first, kT0, 900, -1), now);
  s.add(answered(1, AppealKind::first, kT0, 30, 0), now);
  const auto alpha_before = first(s, kDay, now);
  const auto beta_before = first(s, kDay, now, kBeta);
  std::string snapshot_before = snapshot(s);

  // The reload reorders alpha's accounts, adds one, drops the channel account from alpha,
  // and appends a new agency.
  auto next = std::make_shared<Registry>(*registry);
  Agency& alpha = next->agencies[0];
  const Account press = alpha.accounts[1];
  Account deputy{Source::telegram, 500999, "deputy", "Deputy", "central"};
  alpha.accounts = {deputy, press};
  Agency gamma;
  gamma.id = "gamma";
  gamma.name = "Gamma";
  next->agencies.push_back(gamma);
  next->index();
  s.set_registry(next);

  CHECK(same(first(s, kDay, now), alpha_before));
  CHECK(same(first(s, kDay, now, kBeta), beta_before));
  CHECK(s.responders(kAlpha) == std::vector<std::int32_t>{-1, 1});  // press is now index 1
  CHECK(s.responder_summary(kAlpha, 1, kDay, now).answered == 1);
  CHECK(within(s.responder_summary(kAlpha, 1, kDay, now).median, 60.0, kAccuracy));
  CHECK(s.responder_summary(kAlpha, 0, kDay, now).answered == 0);
  CHECK(s.responder_summary(kAlpha, -1, kDay, now).answered == 1);
  CHECK(s.branch_summary(kAlpha, "central", kDay, now).answered == 1);
  // The new deputy answers into the existing branch.
  s.add(answered(0, AppealKind::first, kT0, 120, 0), now);
  CHECK(s.branch_summary(kAlpha, "central", kDay, now).answered == 2);
  // Taking back the press answer under the new registry finds press at its new index.
  s.remove(answered(0, AppealKind::first, kT0, 60, 1), now);
  CHECK(s.responder_summary(kAlpha, 1, kDay, now).answered == 0);
  CHECK(s.branch_summary(kAlpha, "central", kDay, now).answered == 1);
  s.add(answered(0, AppealKind::first, kT0, 60, 1), now);
  // The appended agency works at once.
  s.add(answered(2, AppealKind::first, kT0, 45, -1), now);
  CHECK(first(s, kDay, now, 2).answered == 1);

  // Reordering agencies is fine too: groups follow the id.
  auto swapped = std::make_shared<Registry>(*next);
  std::swap(swapped->agencies[0], swapped->agencies[1]);
  swapped->index();
  const auto alpha_now = first(s, kDay, now);
  s.set_registry(swapped);
  CHECK(same(first(s, kDay, now, 1), alpha_now));
  CHECK(same(first(s, kDay, now, 0), beta_before));

  // A snapshot taken under the old registry restores under the new one by identity.
  RollingStats restored(next);
  REQUIRE(restores(restored, snapshot_before));
  CHECK(same(first(restored, kDay, now), alpha_before));
  CHECK(restored.responders(kAlpha) == std::vector<std::int32_t>{-1, 1});
  CHECK(restored.branches(kAlpha) == std::vector<std::string>{"central"});
}

TEST_CASE("rolling: a clock that steps back loses nothing") {
  RollingStats s(make_registry(86400));
  s.add(answered(0, AppealKind::first, kT0 - 60, 60), kT0);
  // Two minutes back: the 1h ring's head stays at kT0's sub-bucket; the cohort of
  // kT0 − 180 is 3 sub-buckets behind it, well inside.
  s.add(answered(0, AppealKind::first, kT0 - 180, 60), kT0 - 120);
  CHECK(first(s, kHour, kT0 - 120).answered == 2);
  CHECK(first(s, kHour, kT0).answered == 2);
  // And taking back at the earlier clock works as well.
  s.remove(answered(0, AppealKind::first, kT0 - 180, 60), kT0 - 120);
  CHECK(first(s, kHour, kT0).answered == 1);
}
