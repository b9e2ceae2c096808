// Rolling windows: expiry as the clock advances, attribution to agency, responder and branch
// groups, agreement with the exact statistics, snapshots and configuration reloads.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "pipeline/rolling.hpp"
#include "pipeline/stats.hpp"
#include "tests/support/pairing_fixture.hpp"

using namespace replywatch::pipeline;
using replywatch::testing::kPress;
using replywatch::testing::make_registry;

namespace {

constexpr std::size_t kHour = 0, kDay = 1, kWeek = 2, kMonth = 3;  // indexes in kWindows
constexpr std::int64_t kT0 = 1'700'000'000;  // a Tuesday in November 2023, 22:13:20 UTC
constexpr std::size_t kAlpha = 0, kBeta = 1;
constexpr std::int32_t kChannelAccount = 0, kPressAccount = 1;  // alpha's accounts
constexpr double kAccuracy = QuantileSketch::kDefaultAccuracy;
const QuantileSketch kNoOpen;

Appeal answered(std::int32_t agency, AppealKind kind, std::int64_t answered_at, std::int64_t reply,
                std::int32_t account = kPressAccount, std::int64_t business = -1) {
  Appeal a;
  a.agency = agency;
  a.kind = kind;
  a.status = AppealStatus::answered;
  a.opened_at = answered_at - reply;
  a.answered_at = answered_at;
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

bool within(std::optional<double> got, std::optional<double> want, double relative) {
  if (got.has_value() != want.has_value()) return false;
  return !got || std::abs(*got - *want) <= relative * std::abs(*want) + 1e-9;
}

bool same(const WindowSummary& a, const WindowSummary& b) {
  return a.answered == b.answered && a.unanswered == b.unanswered &&
         a.within_target == b.within_target && a.answer_rate == b.answer_rate &&
         a.within_target_rate == b.within_target_rate && a.median == b.median && a.p90 == b.p90 &&
         a.p99 == b.p99 && a.business_median == b.business_median &&
         a.business_p90 == b.business_p90 && a.km_median_seconds == b.km_median_seconds &&
         a.mean == b.mean;
}

/// Every summary the daemon could publish at `now`, for whole-state comparisons; the groups
/// are those `groups_of` lists (by default `s` itself).
std::vector<WindowSummary> everything(const RollingStats& s, std::int64_t now,
                                      const RollingStats* groups_of = nullptr) {
  const RollingStats& groups = groups_of ? *groups_of : s;
  std::vector<WindowSummary> out;
  QuantileSketch open;
  open.add(500, 2);
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

/// Random closed appeals over the month before `now`, across both agencies, kinds and
/// every responder, with some close times in the future.
void fill_random(RollingStats& s, std::mt19937_64& rng, std::int64_t now, int n) {
  std::uniform_int_distribution<std::int64_t> age(-600, 35 * 86400);
  std::lognormal_distribution<double> reply(std::log(3600.0), 1.8);
  std::uniform_int_distribution<int> pick(0, 99);
  for (int i = 0; i < n; ++i) {
    const auto agency = static_cast<std::int32_t>(pick(rng) % 2);
    const AppealKind kind = pick(rng) < 70 ? AppealKind::first : AppealKind::followup;
    const std::int64_t at = now - age(rng);
    if (pick(rng) < 20) {
      s.add_closed(unanswered(agency, kind, at - s.registry().horizon_secs), now);
    } else {
      const std::int32_t account = agency == 0 ? pick(rng) % 3 - 1 : pick(rng) % 2 - 1;
      const auto r = std::llround(reply(rng));
      s.add_closed(answered(agency, kind, at, r, account, r / 3), now);
    }
  }
}

}  // namespace

TEST_CASE("the 1h window forgets an answer after an hour; longer windows keep it") {
  RollingStats s(make_registry(86400));
  s.add_closed(answered(0, AppealKind::first, kT0, 300), kT0);
  CHECK(first(s, kHour, kT0).answered == 1);
  CHECK(first(s, kHour, kT0 + 58 * 60).answered == 1);
  CHECK(first(s, kHour, kT0 + 61 * 60).answered == 0);
  CHECK_FALSE(first(s, kHour, kT0 + 61 * 60).median.has_value());
  CHECK(first(s, kDay, kT0 + 23 * 3600).answered == 1);
  CHECK(first(s, kDay, kT0 + 25 * 3600).answered == 0);
  CHECK(first(s, kWeek, kT0 + 6 * 86400).answered == 1);
  CHECK(first(s, kWeek, kT0 + 8 * 86400).answered == 0);
  CHECK(first(s, kMonth, kT0 + 61 * 60).answered == 1);
  CHECK(first(s, kMonth, kT0 + 29 * 86400).answered == 1);
  CHECK(first(s, kMonth, kT0 + 31 * 86400).answered == 0);
  const WindowSummary month = first(s, kMonth, kT0 + 61 * 60);
  CHECK(within(month.median, 300.0, kAccuracy));
  CHECK(*month.mean == 300.0);
  CHECK(*month.answer_rate == 1.0);
}

TEST_CASE("new data pushes old sub-buckets out of the ring") {
  RollingStats s(make_registry(86400));
  s.add_closed(answered(0, AppealKind::first, kT0, 100), kT0);
  // Another answer 61 minutes later advances the 1h ring past the first one.
  s.add_closed(answered(0, AppealKind::first, kT0 + 61 * 60, 200), kT0 + 61 * 60);
  const WindowSummary hour = first(s, kHour, kT0 + 61 * 60);
  CHECK(hour.answered == 1);
  CHECK(within(hour.median, 200.0, kAccuracy));
  CHECK(first(s, kDay, kT0 + 61 * 60).answered == 2);
  // A whole idle month later, then one answer: only that one remains anywhere.
  const std::int64_t later = kT0 + 40 * 86400;
  s.add_closed(answered(0, AppealKind::first, later, 50), later);
  for (std::size_t w = 0; w < kWindows.size(); ++w) CHECK(first(s, w, later).answered == 1);
}

TEST_CASE("an appeal counts at its close time, not when it is reported") {
  RollingStats s(make_registry(86400));
  const std::int64_t now = kT0 + 10 * 86400;
  // Answered two hours ago, reported now (a late connector): not in the last hour.
  s.add_closed(answered(0, AppealKind::first, now - 2 * 3600, 60), now);
  CHECK(first(s, kHour, now).answered == 0);
  CHECK(first(s, kDay, now).answered == 1);
  // Older than a window: skipped there, kept in the longer ones.
  s.add_closed(answered(0, AppealKind::first, now - 3 * 86400, 60), now);
  CHECK(first(s, kDay, now).answered == 1);
  CHECK(first(s, kWeek, now).answered == 2);
  // Exactly one ring length late: it would share the newest answer's ring position, and
  // must neither count nor clobber that answer.
  RollingStats edge(make_registry(86400));
  edge.add_closed(answered(0, AppealKind::first, now, 60), now);
  edge.add_closed(answered(0, AppealKind::first, now - 3600, 60), now);
  CHECK(first(edge, kHour, now).answered == 1);
  CHECK(first(edge, kDay, now).answered == 2);
  // Older than every window: nothing at all, and no ring allocated for it.
  RollingStats fresh(make_registry(86400));
  const std::size_t empty_bytes = fresh.memory_bytes();
  fresh.add_closed(answered(0, AppealKind::first, now - 40 * 86400, 60), now);
  CHECK(fresh.memory_bytes() == empty_bytes);
  CHECK(fresh.responders(kAlpha).empty());
  // Clock skew: an answer stamped an hour ahead counts now, in the newest sub-bucket.
  s.add_closed(answered(0, AppealKind::first, now + 3600, 60), now);
  CHECK(first(s, kHour, now).answered == 1);
  CHECK(first(s, kHour, now + 61 * 60).answered == 0);
}

TEST_CASE("unanswered appeals count at the moment they expired") {
  RollingStats s(make_registry(1000));  // horizon 1000 s
  // Opened at kT0, expired at kT0 + 1000, noticed by the expiry sweep 4000 s later.
  s.add_closed(unanswered(0, AppealKind::first, kT0), kT0 + 5000);
  CHECK(first(s, kHour, kT0 + 5000).unanswered == 0);  // 66 minutes since it expired
  CHECK(first(s, kDay, kT0 + 5000).unanswered == 1);
  // Noticed promptly: in the last hour until an hour after expiry.
  s.add_closed(unanswered(0, AppealKind::first, kT0 + 4000), kT0 + 5010);
  CHECK(first(s, kHour, kT0 + 5010).unanswered == 1);
  CHECK(first(s, kHour, kT0 + 5000 + 58 * 60).unanswered == 1);
  CHECK(first(s, kHour, kT0 + 5000 + 61 * 60).unanswered == 0);

  s.add_closed(answered(0, AppealKind::first, kT0 + 5020, 30), kT0 + 5020);
  s.add_closed(answered(0, AppealKind::first, kT0 + 5030, 90), kT0 + 5030);
  const WindowSummary day = first(s, kDay, kT0 + 5030);
  CHECK(day.answered == 2);
  CHECK(day.unanswered == 2);
  CHECK(*day.answer_rate == doctest::Approx(0.5));
  CHECK_FALSE(day.within_target_rate.has_value());  // alpha has no target here
  // Survival: 30 → 3/4, 90 → 3/4·2/3 = 0.5: the median is 90 (unanswered censored at 1000).
  CHECK(within(day.km_median_seconds, 90.0, kAccuracy));
  // Unanswered appeals never reach responders.
  CHECK(s.responder_summary(kAlpha, kPressAccount, kDay, kT0 + 5030).unanswered == 0);
}

TEST_CASE("open appeals weigh in the Kaplan-Meier median as censored") {
  RollingStats s(make_registry(604800));
  s.add_closed(answered(0, AppealKind::first, kT0, 100), kT0);
  s.add_closed(answered(0, AppealKind::first, kT0, 200), kT0);
  CHECK(within(first(s, kDay, kT0).km_median_seconds, 100.0, kAccuracy));
  // Two appeals open for a day already: 100 → 3/4, 200 → 3/4·1/2 ≤ 0.5.
  QuantileSketch open;
  open.add(86400, 2);
  const auto with_open = s.agency_summary(kAlpha, AppealKind::first, kDay, kT0, open);
  CHECK(within(with_open.km_median_seconds, 200.0, kAccuracy));
  // Silence dominates: four open, two answered → survival never reaches 0.5.
  open.add(86400, 2);
  CHECK_FALSE(
      s.agency_summary(kAlpha, AppealKind::first, kDay, kT0, open).km_median_seconds.has_value());
  // The plain quantiles ignore open appeals.
  CHECK(within(with_open.median, 150.0, kAccuracy));
}

TEST_CASE("within target counts answers within the agency's business-time target") {
  auto registry = make_registry(86400);
  registry->agencies[0].target_business_secs = 100;
  RollingStats s(registry);
  s.add_closed(answered(0, AppealKind::first, kT0, 500, kPressAccount, 50), kT0);
  s.add_closed(answered(0, AppealKind::first, kT0, 500, kPressAccount, 100), kT0);  // on target
  s.add_closed(answered(0, AppealKind::first, kT0, 500, kChannelAccount, 150), kT0);
  s.add_closed(unanswered(0, AppealKind::first, kT0 - 86400), kT0);
  const WindowSummary day = first(s, kDay, kT0);
  CHECK(day.within_target == 2);
  CHECK(*day.within_target_rate == doctest::Approx(2.0 / 4.0));
  CHECK(within(day.business_median, 100.0, kAccuracy));
  CHECK(within(day.median, 500.0, kAccuracy));
  // Per responder, the share is of that responder's answers.
  const auto press = s.responder_summary(kAlpha, kPressAccount, kDay, kT0);
  CHECK(press.within_target == 2);
  CHECK(*press.within_target_rate == 1.0);
  CHECK(*s.responder_summary(kAlpha, kChannelAccount, kDay, kT0).within_target_rate == 0.0);
  // Beta has no target: no rate at all.
  s.add_closed(answered(1, AppealKind::first, kT0, 10, 0, 10), kT0);
  CHECK_FALSE(first(s, kDay, kT0, kBeta).within_target_rate.has_value());
  CHECK(first(s, kDay, kT0, kBeta).within_target == 0);
}

TEST_CASE("responder and branch groups take answers of both kinds") {
  RollingStats s(make_registry(86400));
  s.add_closed(answered(0, AppealKind::first, kT0, 60, kPressAccount), kT0);
  s.add_closed(answered(0, AppealKind::followup, kT0, 120, kPressAccount), kT0);
  s.add_closed(answered(0, AppealKind::first, kT0, 600, -1), kT0);  // the conversation itself
  s.add_closed(answered(0, AppealKind::first, kT0, 900, kChannelAccount), kT0);
  s.add_closed(unanswered(0, AppealKind::first, kT0 - 86400), kT0);

  CHECK(s.responders(kAlpha) == std::vector<std::int32_t>{-1, kChannelAccount, kPressAccount});
  CHECK(s.responders(kBeta).empty());
  CHECK(s.branches(kAlpha) == std::vector<std::string>{"central"});  // press is in "central"
  CHECK(s.branches(kBeta).empty());

  const auto press = s.responder_summary(kAlpha, kPressAccount, kDay, kT0);
  CHECK(press.answered == 2);
  CHECK(press.unanswered == 0);
  CHECK_FALSE(press.answer_rate.has_value());
  CHECK_FALSE(press.km_median_seconds.has_value());
  CHECK(within(press.median, 90.0, kAccuracy));
  CHECK(*press.mean == 90.0);
  CHECK(s.responder_summary(kAlpha, -1, kDay, kT0).answered == 1);
  CHECK(s.responder_summary(kAlpha, kChannelAccount, kDay, kT0).answered == 1);
  const auto central = s.branch_summary(kAlpha, "central", kDay, kT0);
  CHECK(central.answered == 2);
  CHECK(within(central.p99, 60 + 0.99 * 60, kAccuracy));  // rank 0.99 between 60 and 120
  CHECK(s.branch_summary(kAlpha, "nowhere", kDay, kT0).answered == 0);

  CHECK(first(s, kDay, kT0).answered == 3);
  CHECK(s.agency_summary(kAlpha, AppealKind::followup, kDay, kT0, kNoOpen).answered == 1);
  CHECK(s.ignored() == 0);

  // An account index the registry does not know: the agency still counts it.
  s.add_closed(answered(0, AppealKind::first, kT0, 60, 7), kT0);
  CHECK(s.ignored() == 1);
  CHECK(first(s, kDay, kT0).answered == 4);
  s.add_closed(answered(5, AppealKind::first, kT0, 60), kT0);  // unknown agency
  Appeal open = answered(0, AppealKind::first, kT0, 60);
  open.status = AppealStatus::open;
  s.add_closed(open, kT0);
  CHECK(s.ignored() == 3);
  CHECK(first(s, kDay, kT0).answered == 4);

  // Out-of-range queries answer empty rather than reading past the state.
  CHECK(first(s, kWindows.size(), kT0).answered == 0);
  CHECK(first(s, kDay, kT0, 9).answered == 0);
  CHECK(s.responder_summary(kAlpha, 9, kDay, kT0).answered == 0);
  CHECK(s.responder_summary(kAlpha, -2, kDay, kT0).answered == 0);
  CHECK(s.responders(9).empty());
}

TEST_CASE("the 30d window agrees with the exact statistics") {
  auto registry = make_registry(604800);
  registry->agencies[0].target_business_secs = 4 * 3600;
  RollingStats rolling(registry);
  ExactStats exact(registry);
  std::mt19937_64 rng(2024);
  std::lognormal_distribution<double> reply(std::log(2 * 3600.0), 1.7);
  std::uniform_int_distribution<std::int64_t> when(0, 25 * 86400);
  std::uniform_int_distribution<int> pick(0, 99);
  // Data spans 25 days; the month window at `now` reaches back at least 29.5 days.
  const std::int64_t now = kT0 + 26 * 86400;
  QuantileSketch open_ages;
  std::vector<Appeal> appeals;
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t at = kT0 + when(rng);
    const int roll = pick(rng);
    if (roll < 80) {
      const auto r = std::min<std::int64_t>(604800, std::llround(reply(rng)));
      const Appeal a = answered(0, AppealKind::first, at, r, roll % 3 - 1, r / 4);
      rolling.add_closed(a, at);
      exact.add_closed(a);
    } else if (roll < 90) {
      const Appeal a = unanswered(0, AppealKind::first, at - 604800 - 1);
      rolling.add_closed(a, at);
      exact.add_closed(a);
    } else {
      Appeal a = unanswered(0, AppealKind::first, now - when(rng) / 5);
      a.status = AppealStatus::open;
      exact.add_open(a, now);
      open_ages.add(static_cast<double>(now - a.opened_at));
    }
  }
  const KindSummary want = exact.summarize(0, AppealKind::first);
  const WindowSummary got =
      rolling.agency_summary(kAlpha, AppealKind::first, kMonth, now, open_ages);
  CHECK(got.answered == want.answered);
  CHECK(got.unanswered == want.unanswered);
  CHECK(*got.answer_rate == *want.answer_rate);
  CHECK(*got.within_target_rate == *want.within_target_rate);
  CHECK(within(got.median, want.reply_median, 0.01));
  CHECK(within(got.p90, want.reply_p90, 0.01));
  CHECK(within(got.p99, want.reply_p99, 0.01));
  CHECK(within(got.business_median, want.business_median, 0.01));
  CHECK(within(got.business_p90, want.business_p90, 0.01));
  CHECK(within(got.mean, want.reply_mean, 1e-12));
  // Four answers in five and a steep curve at 0.5: well conditioned (see test_sketch.cpp).
  CHECK(within(got.km_median_seconds, want.km_median_seconds, 0.01));
  // The shorter windows hold a subset.
  const WindowSummary week =
      rolling.agency_summary(kAlpha, AppealKind::first, kWeek, now, open_ages);
  CHECK(week.answered > 0);
  CHECK(week.answered < got.answered);
}

TEST_CASE("advance frees rings of quiet groups without changing any summary") {
  auto registry = make_registry(86400);
  RollingStats a(registry), b(registry);
  std::mt19937_64 rng(3), same_rng(3);
  fill_random(a, rng, kT0, 3000);
  fill_random(b, same_rng, kT0, 3000);
  const std::size_t before = a.memory_bytes();
  for (const std::int64_t now : {kT0, kT0 + 3600, kT0 + 2 * 86400, kT0 + 10 * 86400}) {
    a.advance(now);
    CHECK(same(everything(a, now, &b), everything(b, now)));
  }
  CHECK(a.memory_bytes() < before);
  a.advance(kT0 + 40 * 86400);
  CHECK(a.responders(kAlpha).empty());
  CHECK(a.branches(kAlpha).empty());
  CHECK(a.memory_bytes() == RollingStats(registry).memory_bytes());
  CHECK(first(a, kMonth, kT0 + 40 * 86400).answered == 0);
}

TEST_CASE("a group that has seen nothing costs little") {
  auto registry = make_registry(86400);
  const RollingStats empty(registry);
  // Two agencies, a handful of accounts: well under a kilobyte of bookkeeping per agency.
  CHECK(empty.memory_bytes() < 2048);
  RollingStats one(registry);
  one.add_closed(answered(0, AppealKind::first, kT0, 60, -1), kT0);
  // One answer allocates the rings of exactly two groups (alpha/first and the conversation).
  const std::size_t grown = one.memory_bytes() - empty.memory_bytes();
  CHECK(grown > 0);
  CHECK(grown < 2 * kWindows.size() * 16384);
}

TEST_CASE("snapshots round-trip exactly") {
  auto registry = make_registry(86400);
  registry->agencies[0].target_business_secs = 3600;
  RollingStats s(registry);
  std::mt19937_64 rng(42);
  fill_random(s, rng, kT0, 5000);
  const std::string bytes = snapshot(s);

  RollingStats back(registry);
  REQUIRE(restores(back, bytes));
  CHECK(snapshot(back) == bytes);
  for (const std::int64_t now : {kT0, kT0 + 1800, kT0 + 86400, kT0 + 20 * 86400}) {
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

TEST_CASE("restore rejects malformed snapshots and keeps the state") {
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

  std::string version = bytes;
  version[4] = 2;
  const auto wrong_version = target.restore(version);
  REQUIRE_FALSE(wrong_version.has_value());
  CHECK(wrong_version.error().message.find("version") != std::string::npos);
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

TEST_CASE("restore rejects duplicates and inconsistent counts") {
  auto registry = make_registry(86400);
  RollingStats s(registry);
  s.add_closed(answered(0, AppealKind::first, kT0, 60, kPressAccount), kT0);
  std::string bytes = snapshot(s);
  RollingStats target(registry);
  REQUIRE(restores(target, bytes));

  // Hand-built snapshots from the documented layout.
  auto header = [] {
    std::string out = "RWRS";
    wire::put_u8(out, 1);
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
  auto ring = [](std::string& out, std::uint64_t answered, std::uint64_t unanswered,
                 std::uint64_t within, std::uint64_t sketch_count) {
    wire::put_u8(out, 1);  // the 1h ring only
    wire::put_svarint(out, kT0 / 60);
    wire::put_u8(out, 1);
    wire::put_u8(out, 0);
    wire::put_varint(out, answered);
    wire::put_varint(out, unanswered);
    wire::put_varint(out, within);
    wire::put_f64(out, 60.0 * static_cast<double>(answered));
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
  CHECK(target.responder_summary(kAlpha, kPressAccount, kHour, kT0).answered == 2);

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
  CHECK_FALSE(restores(target, with_responders([&](std::string& out) {
                         wire::put_varint(out, 2);  // the conversation twice
                         for (int i = 0; i < 2; ++i) {
                           wire::put_u8(out, 0);
                           ring(out, 1, 0, 0, 1);
                         }
                       })));
  CHECK_FALSE(restores(target, with_responders([&](std::string& out) {
                         wire::put_varint(out, 1);
                         wire::put_u8(out, 0);
                         ring(out, 2, 0, 0, 1);  // sketch holds fewer values than answered
                       })));
  CHECK_FALSE(restores(target, with_responders([&](std::string& out) {
                         wire::put_varint(out, 1);
                         wire::put_u8(out, 0);
                         ring(out, 1, 0, 2, 1);  // more within target than answered
                       })));
  CHECK_FALSE(restores(target, with_responders([&](std::string& out) {
                         wire::put_varint(out, 1);
                         wire::put_u8(out, 0);
                         ring(out, 0, 0, 0, 0);  // an empty sub-bucket is never written
                       })));
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

TEST_CASE("a registry reload keeps groups by agency id, account identity and branch name") {
  auto registry = make_registry(86400);
  RollingStats s(registry);
  s.add_closed(answered(0, AppealKind::first, kT0, 60, kPressAccount), kT0);
  s.add_closed(answered(0, AppealKind::first, kT0, 600, kChannelAccount), kT0);
  s.add_closed(answered(0, AppealKind::first, kT0, 900, -1), kT0);
  s.add_closed(answered(1, AppealKind::first, kT0, 30, 0), kT0);
  const auto alpha_before = first(s, kDay, kT0);
  const auto beta_before = first(s, kDay, kT0, kBeta);
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

  CHECK(same(first(s, kDay, kT0), alpha_before));
  CHECK(same(first(s, kDay, kT0, kBeta), beta_before));
  CHECK(s.responders(kAlpha) == std::vector<std::int32_t>{-1, 1});  // press is now index 1
  CHECK(s.responder_summary(kAlpha, 1, kDay, kT0).answered == 1);
  CHECK(within(s.responder_summary(kAlpha, 1, kDay, kT0).median, 60.0, kAccuracy));
  CHECK(s.responder_summary(kAlpha, 0, kDay, kT0).answered == 0);
  CHECK(s.responder_summary(kAlpha, -1, kDay, kT0).answered == 1);
  CHECK(s.branch_summary(kAlpha, "central", kDay, kT0).answered == 1);
  // The new deputy answers into the existing branch.
  s.add_closed(answered(0, AppealKind::first, kT0, 120, 0), kT0);
  CHECK(s.branch_summary(kAlpha, "central", kDay, kT0).answered == 2);
  // The appended agency works at once.
  s.add_closed(answered(2, AppealKind::first, kT0, 45, -1), kT0);
  CHECK(first(s, kDay, kT0, 2).answered == 1);

  // Reordering agencies is fine too: groups follow the id.
  auto swapped = std::make_shared<Registry>(*next);
  std::swap(swapped->agencies[0], swapped->agencies[1]);
  swapped->index();
  const auto alpha_now = first(s, kDay, kT0);
  s.set_registry(swapped);
  CHECK(same(first(s, kDay, kT0, 1), alpha_now));
  CHECK(same(first(s, kDay, kT0, 0), beta_before));

  // A snapshot taken under the old registry restores under the new one by identity.
  RollingStats restored(next);
  REQUIRE(restores(restored, snapshot_before));
  CHECK(same(first(restored, kDay, kT0), alpha_before));
  CHECK(restored.responders(kAlpha) == std::vector<std::int32_t>{-1, 1});
  CHECK(restored.branches(kAlpha) == std::vector<std::string>{"central"});
}

TEST_CASE("a clock that steps back loses nothing") {
  RollingStats s(make_registry(86400));
  s.add_closed(answered(0, AppealKind::first, kT0, 60), kT0);
  s.add_closed(answered(0, AppealKind::first, kT0 - 120, 60), kT0 - 120);
  CHECK(first(s, kHour, kT0 - 120).answered == 2);
  CHECK(first(s, kHour, kT0).answered == 2);
}
