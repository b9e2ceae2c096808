// BusinessCalendar in Europe/Berlin: intervals, holidays and DST nights, each expected
// value worked out by hand in the comment next to it.
#include "pipeline/calendar.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

namespace {

using replywatch::pipeline::BusinessCalendar;
using replywatch::pipeline::LocalInterval;
using replywatch::pipeline::TimeZone;
using replywatch::pipeline::WeeklyHours;
using std::chrono::year_month_day;

constexpr int kMon = 0, kTue = 1, kFri = 4, kSun = 6;

std::int64_t at(int y, unsigned m, unsigned d, int hh = 0, int mm = 0) {
  using namespace std::chrono;
  const auto days = sys_days{year{y} / month{m} / day{d}}.time_since_epoch().count();
  return std::int64_t{days} * 86400 + hh * 3600 + mm * 60;
}
// UTC instant of a Berlin wall time in summer (CEST, UTC+2) and winter (CET, UTC+1).
std::int64_t cest(int y, unsigned m, unsigned d, int hh = 0, int mm = 0) {
  return at(y, m, d, hh, mm) - 7200;
}
std::int64_t cet(int y, unsigned m, unsigned d, int hh = 0, int mm = 0) {
  return at(y, m, d, hh, mm) - 3600;
}

year_month_day date(int y, unsigned m, unsigned d) {
  return std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d};
}

std::shared_ptr<const TimeZone> berlin() {
  auto r = TimeZone::load("Europe/Berlin");
  REQUIRE(r.has_value());
  return *r;
}

WeeklyHours weekdays(std::int32_t start, std::int32_t end) {
  WeeklyHours h{};
  for (int d = kMon; d <= kFri; ++d) h[d] = {LocalInterval{start, end}};
  return h;
}

BusinessCalendar calendar(WeeklyHours hours, std::vector<year_month_day> holidays = {}) {
  return BusinessCalendar(berlin(), std::move(hours), std::move(holidays));
}

}  // namespace

// 2026-06-01 is a Monday; June is CEST (UTC+2) throughout.

TEST_CASE("calendar: simple same-day interval") {
  const auto cal = calendar(weekdays(9 * 60, 17 * 60));
  // Mon 07:00-12:15 against 09:00-17:00: 09:00-12:15 = 3h15m = 11700 s.
  CHECK(cal.business_seconds(cest(2026, 6, 1, 7, 0), cest(2026, 6, 1, 12, 15)) == 11700);
  // Mon 10:00-11:00 entirely inside: 3600 s.
  CHECK(cal.business_seconds(cest(2026, 6, 1, 10, 0), cest(2026, 6, 1, 11, 0)) == 3600);
  // Mon 17:00-23:00 after closing: 0.
  CHECK(cal.business_seconds(cest(2026, 6, 1, 17, 0), cest(2026, 6, 1, 23, 0)) == 0);
}

TEST_CASE("calendar: split shifts 09:00-13:00 and 14:00-18:30") {
  WeeklyHours h{};
  h[kMon] = {LocalInterval{9 * 60, 13 * 60}, LocalInterval{14 * 60, 18 * 60 + 30}};
  const auto cal = calendar(h);
  // Mon 08:00 - Tue 08:00: 4h + 4h30m = 8h30m = 30600 s.
  CHECK(cal.business_seconds(cest(2026, 6, 1, 8), cest(2026, 6, 2, 8)) == 30600);
  // Mon 12:00-15:00: 12:00-13:00 + 14:00-15:00 = 7200 s.
  CHECK(cal.business_seconds(cest(2026, 6, 1, 12), cest(2026, 6, 1, 15)) == 7200);
  // The lunch break 13:00-14:00 alone: 0.
  CHECK(cal.business_seconds(cest(2026, 6, 1, 13), cest(2026, 6, 1, 14)) == 0);
}

TEST_CASE("calendar: interval crossing midnight counts its tail on the next day") {
  WeeklyHours h{};
  h[kMon] = {LocalInterval{22 * 60, 26 * 60}};  // Mon 22:00 - Tue 02:00
  const auto cal = calendar(h);
  // Mon 12:00 - Tue 12:00: the whole shift, 4h = 14400 s.
  CHECK(cal.business_seconds(cest(2026, 6, 1, 12), cest(2026, 6, 2, 12)) == 14400);
  // Tue 00:00-12:00: only the tail 00:00-02:00 = 7200 s (needs the day before `from`).
  CHECK(cal.business_seconds(cest(2026, 6, 2, 0), cest(2026, 6, 2, 12)) == 7200);
  // Mon 23:00 - Tue 01:00: 2h = 7200 s.
  CHECK(cal.business_seconds(cest(2026, 6, 1, 23), cest(2026, 6, 2, 1)) == 7200);
}

TEST_CASE("calendar: holiday on a weekday") {
  const auto hours = weekdays(9 * 60, 17 * 60);
  const auto with_holiday = calendar(hours, {date(2026, 6, 3)});  // Wednesday
  const auto without = calendar(hours);
  // Mon 00:00 - Sat 00:00: five 8h days, the Wednesday cancelled: 4 x 28800 = 115200 s.
  CHECK(with_holiday.business_seconds(cest(2026, 6, 1), cest(2026, 6, 6)) == 115200);
  // Same span without the holiday: 5 x 28800 = 144000 s.
  CHECK(without.business_seconds(cest(2026, 6, 1), cest(2026, 6, 6)) == 144000);
  // Inside the holiday itself: 0.
  CHECK(with_holiday.business_seconds(cest(2026, 6, 3, 8), cest(2026, 6, 3, 18)) == 0);
}

TEST_CASE("calendar: a holiday cancels the tail of the previous night's shift") {
  WeeklyHours h{};
  h[kMon] = {LocalInterval{22 * 60, 26 * 60}};                // Mon 22:00 - Tue 02:00
  h[kTue] = {LocalInterval{22 * 60, 26 * 60}};                // Tue 22:00 - Wed 02:00
  const auto with_holiday = calendar(h, {date(2026, 6, 2)});  // Tuesday
  const auto without = calendar(h);
  // Mon 12:00 - Wed 12:00: Monday's shift keeps only 22:00-24:00 (its tail falls on the
  // holiday) and Tuesday's shift, tail into Wednesday included, is cancelled: 7200 s.
  CHECK(with_holiday.business_seconds(cest(2026, 6, 1, 12), cest(2026, 6, 3, 12)) == 7200);
  // Without the holiday both shifts count: 2 x 4h = 28800 s.
  CHECK(without.business_seconds(cest(2026, 6, 1, 12), cest(2026, 6, 3, 12)) == 28800);
}

TEST_CASE("calendar: span over a weekend") {
  const auto cal = calendar(weekdays(9 * 60, 17 * 60));
  // Fri 2026-06-05 16:00 - Mon 2026-06-08 10:00: Fri 16-17 + Mon 09-10 = 7200 s.
  CHECK(cal.business_seconds(cest(2026, 6, 5, 16), cest(2026, 6, 8, 10)) == 7200);
  // Sat 00:00 - Mon 00:00: nothing = 0.
  CHECK(cal.business_seconds(cest(2026, 6, 6), cest(2026, 6, 8)) == 0);
}

TEST_CASE("calendar: Berlin DST nights with a Sunday 01:00-04:00 shift") {
  WeeklyHours h{};
  h[kSun] = {LocalInterval{1 * 60, 4 * 60}};
  const auto cal = calendar(h);
  // Spring forward Sun 2026-03-29: 01:00 CET = 00:00 UTC, 04:00 CEST = 02:00 UTC: 7200 s.
  CHECK(cal.business_seconds(at(2026, 3, 28, 12), at(2026, 3, 30, 12)) == 7200);
  // Fall back Sun 2026-10-25: 01:00 CEST = Oct 24 23:00 UTC, 04:00 CET = 03:00 UTC: 14400 s.
  CHECK(cal.business_seconds(at(2026, 10, 24, 12), at(2026, 10, 26, 12)) == 14400);
  // An ordinary Sunday (2026-06-07) has 3h = 10800 s.
  CHECK(cal.business_seconds(at(2026, 6, 6, 12), at(2026, 6, 8, 12)) == 10800);
  // Clipping in real seconds: 2026-10-25 from 01:30 UTC (02:30 CET, second pass) on leaves
  // 01:30-03:00 UTC = 5400 s.
  CHECK(cal.business_seconds(at(2026, 10, 25, 1, 30), at(2026, 10, 26)) == 5400);

  WeeklyHours gap_only{};
  gap_only[kSun] = {LocalInterval{2 * 60 + 15, 2 * 60 + 45}};  // inside the skipped hour
  // 02:15-02:45 does not exist on 2026-03-29: both ends map to 01:00 UTC, length 0.
  CHECK(calendar(gap_only).business_seconds(at(2026, 3, 28), at(2026, 3, 30)) == 0);
}

TEST_CASE("calendar: from after to is 0") {
  const auto cal = calendar(weekdays(9 * 60, 17 * 60));
  // Reversed Mon 12:00 / Tue 12:00: 0. In order it is Mon 12-17 + Tue 09-12 = 28800 s.
  CHECK(cal.business_seconds(cest(2026, 6, 2, 12), cest(2026, 6, 1, 12)) == 0);
  CHECK(cal.business_seconds(cest(2026, 6, 1, 12), cest(2026, 6, 2, 12)) == 28800);
}

TEST_CASE("calendar: from equal to to is 0") {
  const auto cal = calendar(weekdays(9 * 60, 17 * 60));
  // A single instant inside business hours has no length: 0.
  CHECK(cal.business_seconds(cest(2026, 6, 1, 12), cest(2026, 6, 1, 12)) == 0);
}

TEST_CASE("calendar: a schedule without hours always gives 0") {
  // No intervals at all, over the whole of 2026: 0.
  CHECK(calendar(WeeklyHours{}).business_seconds(cet(2026, 1, 1), cet(2027, 1, 1)) == 0);
  // Zero-length intervals (09:00-09:00) and reversed ones count nothing either: 0.
  WeeklyHours empty_intervals = weekdays(9 * 60, 9 * 60);
  empty_intervals[kSun] = {LocalInterval{17 * 60, 9 * 60}};
  CHECK(calendar(empty_intervals).business_seconds(cet(2026, 1, 1), cet(2027, 1, 1)) == 0);
}

TEST_CASE("calendar: overlapping intervals are not double counted") {
  WeeklyHours h{};
  // Monday given out of order and overlapping: 10:00-12:00 and 08:00-11:00 = 08:00-12:00.
  // Monday night 22:00-03:00 overlaps Tuesday 01:00-05:00: union Mon 22:00 - Tue 05:00.
  h[kMon] = {LocalInterval{10 * 60, 12 * 60}, LocalInterval{8 * 60, 11 * 60},
             LocalInterval{22 * 60, 27 * 60}};
  h[kTue] = {LocalInterval{1 * 60, 5 * 60}};
  const auto cal = calendar(h);
  // Mon 00:00 - Wed 00:00: 4h + 7h = 11h = 39600 s.
  CHECK(cal.business_seconds(cest(2026, 6, 1), cest(2026, 6, 3)) == 39600);
  // Tue 02:00-04:00 lies in both the tail and Tuesday's interval: 7200 s, not 14400.
  CHECK(cal.business_seconds(cest(2026, 6, 2, 2), cest(2026, 6, 2, 4)) == 7200);
}

TEST_CASE("calendar: a whole year of weekdays") {
  const auto cal = calendar(weekdays(9 * 60, 17 * 60));
  // 2026 starts on a Thursday and has 365 = 52 x 7 + 1 days: 52 x 5 + 1 (Thu Dec 31) = 261
  // weekdays of 8h; DST changes fall on Sunday nights: 261 x 28800 = 7516800 s.
  CHECK(cal.business_seconds(cet(2026, 1, 1), cet(2027, 1, 1)) == 7516800);
}

TEST_CASE("calendar: agrees with a minute-by-minute count on random schedules") {
  // No hand-computed values here: a brute force asks, for every UTC minute, whether some
  // non-holiday day's interval (tail cut at a holiday's midnight) contains it, which also
  // covers overlaps, midnight tails and DST nights in combinations the cases above miss.
  std::mt19937_64 rng(20260329);
  for (const char* name : {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe"}) {
    auto loaded = TimeZone::load(name);
    REQUIRE(loaded.has_value());
    const auto zone = *loaded;
    for (int round = 0; round < 40; ++round) {
      WeeklyHours hours{};
      for (auto& day : hours) {
        for (auto k = rng() % 4; k > 0; --k) {
          const auto start = static_cast<std::int32_t>(rng() % 1440);
          day.push_back(LocalInterval{start, start + static_cast<std::int32_t>(rng() % 900)});
        }
      }
      // Spans start within three days before a 2026 DST change of one of the zones.
      const std::int64_t changes[] = {at(2026, 3, 8),  at(2026, 3, 29),  at(2026, 4, 5),
                                      at(2026, 10, 4), at(2026, 10, 25), at(2026, 11, 1)};
      const std::int64_t base = changes[rng() % 6] - 3 * 86400;
      std::vector<year_month_day> holidays;
      std::vector<std::int64_t> holiday_days;
      for (auto k = rng() % 3; k > 0; --k) {
        const std::int64_t d = base / 86400 + static_cast<std::int64_t>(rng() % 7);
        holiday_days.push_back(d);
        holidays.emplace_back(std::chrono::sys_days{std::chrono::days{d}});
      }
      const BusinessCalendar cal(zone, hours, holidays);
      const std::int64_t from = base + static_cast<std::int64_t>(rng() % (3 * 1440)) * 60;
      const std::int64_t to = from + static_cast<std::int64_t>(rng() % (5 * 1440)) * 60;

      auto holiday = [&](std::int64_t d) {
        return std::find(holiday_days.begin(), holiday_days.end(), d) != holiday_days.end();
      };
      auto business_minute = [&](std::int64_t u) {
        const std::int64_t today = zone->to_local(u) / 86400;
        for (std::int64_t d = today - 2; d <= today + 2; ++d) {
          if (holiday(d)) continue;
          const std::chrono::weekday wd{std::chrono::sys_days{std::chrono::days{d}}};
          for (const auto& iv : hours[wd.iso_encoding() - 1]) {
            std::int64_t end = d * 86400 + std::int64_t{iv.end_minute} * 60;
            if (holiday(d + 1)) end = std::min(end, (d + 1) * 86400);
            const std::int64_t start = d * 86400 + std::int64_t{iv.start_minute} * 60;
            if (u >= zone->to_utc(start) && u < zone->to_utc(end)) return true;
          }
        }
        return false;
      };
      std::int64_t expected = 0;
      for (std::int64_t u = from; u < to; u += 60) expected += business_minute(u) ? 60 : 0;
      CAPTURE(name);
      CAPTURE(from);
      CAPTURE(to);
      CHECK(cal.business_seconds(from, to) == expected);
    }
  }
}
