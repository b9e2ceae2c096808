// An agency's business calendar: weekly hours in local time, holidays, and the
// business seconds inside any UTC interval.
#pragma once

#include "pipeline/tz.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace replywatch::pipeline {

/// Minutes after local midnight of the day it belongs to. `end_minute` may exceed
/// 1440 for an interval that crosses midnight ("22:00-02:00" is 1320..1560).
struct LocalInterval {
  std::int32_t start_minute = 0;
  std::int32_t end_minute = 0;
};

/// days[0] is Monday … days[6] is Sunday.
using WeeklyHours = std::array<std::vector<LocalInterval>, 7>;

class BusinessCalendar {
 public:
  BusinessCalendar(std::shared_ptr<const TimeZone> zone, WeeklyHours hours,
                   std::vector<std::chrono::year_month_day> holidays);

  /// Seconds of [from_utc, to_utc] inside business hours. A holiday cancels
  /// every interval of that local date (including a tail past midnight), and no
  /// business time falls on the holiday's local date at all.
  std::int64_t business_seconds(std::int64_t from_utc, std::int64_t to_utc) const;

  const TimeZone& zone() const { return *zone_; }

 private:
  std::shared_ptr<const TimeZone> zone_;
  WeeklyHours hours_;
  std::vector<std::int32_t> holidays_;  // sorted days since 1970-01-01 (local dates)
};

}  // namespace replywatch::pipeline
