// The generic ingest format: one JSON object per line, one normalized event each, for any
// source (docs/ingest-format.md), and a chunked reader that tails such a file.
#pragma once

#include "pipeline/error.hpp"
#include "pipeline/event.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace replywatch::connectors::ndjson {

/// Longest accepted line in bytes, without its newline.
inline constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;

/// What parse_line returns for a blank line or a comment ('#' after optional blanks):
/// neither an event nor a rejection.
inline constexpr std::string_view kSkip = "skip";

/// Every reason parse_line can reject a line for, in the order of the documentation's
/// table; for registering bounded metric labels up front.
std::span<const std::string_view> rejection_reasons();

/// Parses lines of the ingest format. Reuses its simdjson buffers from line to line, so
/// keep one per thread; it is not safe to share between threads.
class Parser {
 public:
  Parser();
  ~Parser();
  /// A moved-from parser may only be destroyed or assigned to.
  Parser(Parser&&) noexcept;
  Parser& operator=(Parser&&) noexcept;

  /// Parses one line (without the newline; a trailing '\r' and a leading UTF-8 byte order
  /// mark are tolerated). Lines longer than kMaxLineBytes are rejected. On success fills
  /// `event` and returns an empty string_view. Returns kSkip for a blank or comment line,
  /// and otherwise a stable snake_case reason from rejection_reasons(); `event` is left
  /// unchanged in both cases. Returned reasons point to static storage.
  std::string_view parse_line(std::string_view line, pipeline::Event& event);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Where the next read_new_lines call resumes. Keep it between calls; persist all of it to
/// resume across restarts (a zero `inode` just skips the replaced-file check once).
struct FileCursor {
  std::uint64_t offset = 0;  // first byte not yet consumed
  std::uint64_t device = 0;  // identity of the file read last, to notice rotation
  std::uint64_t inode = 0;
  bool in_long_line = false;  // the line at `offset` was rejected as too long: skip to its end
};

struct ReadSummary {
  std::uint64_t bytes = 0;   // bytes consumed by this call
  std::size_t lines = 0;     // lines consumed, of every outcome; a too-long one counts once
  std::size_t events = 0;    // lines handed to on_event
  std::size_t rejected = 0;  // lines handed to on_rejected
  std::size_t skipped = 0;   // blank and comment lines
  bool truncated = false;    // the file had shrunk below the cursor: read again from 0
  bool replaced = false;     // another file sat at the path (rotation): read it from 0
  bool at_end = false;       // false when max_bytes stopped the read early: call again soon
};

/// Reads the complete lines after `cursor` and advances it past them, line by line, so a
/// callback that throws leaves the cursor after the last line it was given. A final line
/// without '\n' is left for the next call unless it is already longer than kMaxLineBytes:
/// then it is rejected as "line_too_long" at once and its remainder skipped when it arrives.
/// Stops once `max_bytes` have been consumed; the line that crosses the budget is finished,
/// so every call makes progress (0 counts as 1). `line_offset` is the file offset at which
/// the rejected line starts. Blank and comment lines reach neither callback; either callback
/// may be empty. An error (missing file, directory, FIFO, permission, I/O) names the path;
/// the cursor then keeps what was consumed before it.
Result<ReadSummary> read_new_lines(
    const std::string& path, FileCursor& cursor, std::size_t max_bytes,
    const std::function<void(const pipeline::Event&)>& on_event,
    const std::function<void(std::string_view reason, std::uint64_t line_offset)>& on_rejected);

}  // namespace replywatch::connectors::ndjson
