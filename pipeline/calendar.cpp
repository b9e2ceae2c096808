// Business seconds between two UTC instants under an agency's weekly local hours and
// holidays, counted as real elapsed seconds across DST changes.
#include "pipeline/calendar.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace replywatch::pipeline {

namespace {

constexpr std::int64_t kDay = 86400;
constexpr std::int32_t kMinutesPerDay = 1440;
// Spans are clamped to [1900, 2200): appeals are answered within that, and it bounds
// the day-by-day scan for garbage timestamps to ~110k days.
constexpr std::int64_t kEarliest = -2208988800;  // 1900-01-01T00:00Z
constexpr std::int64_t kLatest = 7258118400;     // 2200-01-01T00:00Z

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

// Keeps the day scan bounded and streamable: starts within the day, ends at most one day
// later (so only the next date can hold a tail), sorted and merged per weekday.
std::vector<LocalInterval> normalized(std::vector<LocalInterval> day) {
  std::vector<LocalInterval> clean;
  for (const auto& iv : day) {
    if (iv.start_minute < 0 || iv.start_minute >= kMinutesPerDay) continue;
    const std::int32_t end = std::min(iv.end_minute, 2 * kMinutesPerDay);
    if (end > iv.start_minute) clean.push_back(LocalInterval{iv.start_minute, end});
  }
  std::sort(clean.begin(), clean.end(), [](const LocalInterval& a, const LocalInterval& b) {
    return a.start_minute < b.start_minute;
  });
  std::vector<LocalInterval> merged;
  for (const auto& iv : clean) {
    if (!merged.empty() && iv.start_minute <= merged.back().end_minute) {
      merged.back().end_minute = std::max(merged.back().end_minute, iv.end_minute);
    } else {
      merged.push_back(iv);
    }
  }
  return merged;
}

}  // namespace

BusinessCalendar::BusinessCalendar(std::shared_ptr<const TimeZone> zone, WeeklyHours hours,
                                   std::vector<std::chrono::year_month_day> holidays)
    : zone_(std::move(zone)), hours_(std::move(hours)) {
  for (auto& day : hours_) day = normalized(std::move(day));
  holidays_.reserve(holidays.size());
  for (const auto& ymd : holidays) {
    if (!ymd.ok()) continue;
    const auto days = std::chrono::sys_days{ymd}.time_since_epoch().count();
    holidays_.push_back(static_cast<std::int32_t>(days));
  }
  std::sort(holidays_.begin(), holidays_.end());
  holidays_.erase(std::unique(holidays_.begin(), holidays_.end()), holidays_.end());
}

std::int64_t BusinessCalendar::business_seconds(std::int64_t from_utc, std::int64_t to_utc) const {
  const std::int64_t from = std::clamp(from_utc, kEarliest, kLatest);
  const std::int64_t to = std::clamp(to_utc, kEarliest, kLatest);
  if (from >= to) return 0;

  // A missing zone is a wiring bug, not a reason to crash the daemon: treat it as UTC.
  const TimeZone* zone = zone_.get();
  auto utc_of = [zone](std::int64_t local) { return zone ? zone->to_utc(local) : local; };
  auto local_of = [zone](std::int64_t utc) { return zone ? zone->to_local(utc) : utc; };
  auto is_holiday = [this](std::int64_t day) {
    return std::binary_search(holidays_.begin(), holidays_.end(), day,
                              [](std::int64_t a, std::int64_t b) { return a < b; });
  };

  // Spans arrive sorted by start: days ascend, each day's intervals are sorted, and
  // to_utc never decreases. So overlapping spans (a night tail running into the next
  // morning) are merged on the fly into one running span.
  std::int64_t total = 0;
  std::int64_t run_start = 0;
  std::int64_t run_end = 0;
  bool in_run = false;
  auto add = [&](std::int64_t start, std::int64_t end) {
    start = std::max(start, from);
    end = std::min(end, to);
    if (end <= start) return;
    if (in_run && start <= run_end) {
      run_end = std::max(run_end, end);
      return;
    }
    if (in_run) total += run_end - run_start;
    run_start = start;
    run_end = end;
    in_run = true;
  };

  // The day before `from`'s date contributes tails past midnight. Past `to`'s date one
  // more day is scanned, and further ones while their midnight maps before `to`: a
  // fall-back across midnight repeats wall times, so a later date can begin earlier.
  const std::int64_t first_day = floor_div(local_of(from), kDay) - 1;
  const std::int64_t last_day = floor_div(local_of(to), kDay) + 1;
  for (std::int64_t day = first_day; day <= last_day || utc_of(day * kDay) < to; ++day) {
    if (is_holiday(day)) continue;
    const std::chrono::weekday wd{std::chrono::sys_days{std::chrono::days{day}}};
    const auto& intervals = hours_[wd.iso_encoding() - 1];
    if (intervals.empty()) continue;
    const std::int64_t midnight = day * kDay;
    // No business time falls on a holiday's date, tails of the night before included.
    const std::int64_t limit =
        is_holiday(day + 1) ? midnight + kDay : std::numeric_limits<std::int64_t>::max();
    for (const auto& iv : intervals) {
      const std::int64_t start = midnight + std::int64_t{iv.start_minute} * 60;
      const std::int64_t end = std::min(midnight + std::int64_t{iv.end_minute} * 60, limit);
      add(utc_of(start), utc_of(end));
    }
  }
  if (in_run) total += run_end - run_start;
  return total;
}

}  // namespace replywatch::pipeline
