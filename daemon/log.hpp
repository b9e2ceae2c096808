// Plain line logging to stderr, "2026-11-27T21:57:46Z level message", thread-safe.
// Messages must never carry secrets: callers pass redacted text.
#pragma once

#include <string_view>

namespace replywatch::daemon {

enum class LogLevel { debug, info, warn, error };

void log_line(LogLevel level, std::string_view message);
inline void log_info(std::string_view m) { log_line(LogLevel::info, m); }
inline void log_warn(std::string_view m) { log_line(LogLevel::warn, m); }
inline void log_error(std::string_view m) { log_line(LogLevel::error, m); }

/// Allows `burst` lines per `period_secs` per key; counts what it suppressed.
class LogLimiter {
 public:
  LogLimiter(int burst, int period_secs) : burst_(burst), period_(period_secs) {}
  /// True if a line may be logged now; `suppressed` receives the number dropped
  /// since the last allowed line.
  bool allow(long long now, long long& suppressed);

 private:
  int burst_;
  int period_;
  long long window_start_ = 0;
  int used_ = 0;
  long long dropped_ = 0;
};

}  // namespace replywatch::daemon
