// IANA time zones read from the system database (TZif files), with the POSIX
// footer rule for instants past the last listed transition.
#pragma once

#include "pipeline/error.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace replywatch::pipeline {

class TimeZone {
 public:
  /// Loads `name` (e.g. "Europe/Berlin") from `zoneinfo_dir`. Names that are not
  /// plain relative paths ("..", leading "/") are refused; errors name the zone.
  static Result<std::shared_ptr<const TimeZone>> load(
      std::string_view name, std::string_view zoneinfo_dir = "/usr/share/zoneinfo");

  /// UTC offset in seconds (east positive) in force at the UTC instant `utc`.
  std::int32_t offset_at(std::int64_t utc) const;

  /// Local wall-clock seconds (seconds since 1970-01-01T00:00 local) to UTC.
  /// A wall time inside a gap (spring forward) maps to the instant the gap ends;
  /// one that occurs twice (fall back) maps to the earlier instant.
  std::int64_t to_utc(std::int64_t local_seconds) const;

  std::int64_t to_local(std::int64_t utc) const { return utc + offset_at(utc); }

  const std::string& name() const { return name_; }

  // Public for the loader; not part of the interface.
  struct Transition {
    std::int64_t at;         // UTC instant the new offset starts
    std::int32_t offset;     // offset from then on
  };
  struct PosixRule;  // the footer, defined in tz.cpp

  TimeZone();
  ~TimeZone();

 private:
  std::string name_;
  std::int32_t initial_offset_ = 0;       // before the first transition
  std::vector<Transition> transitions_;   // sorted by `at`
  std::unique_ptr<PosixRule> footer_;     // may be null: last offset holds forever
};

}  // namespace replywatch::pipeline
