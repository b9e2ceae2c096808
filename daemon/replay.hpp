// `replywatch replay`: Telegram Desktop exports through the pairing engine and
// exact statistics, in one pass, without any service.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "pipeline/error.hpp"
#include "pipeline/pairing.hpp"
#include "pipeline/registry.hpp"
#include "pipeline/stats.hpp"

namespace replywatch::daemon {

struct ReplayOptions {
  /// Telegram Desktop exports (or directories holding result.json) and normalized-event
  /// files (*.ndjson, *.jsonl).
  std::vector<std::string> inputs;
  /// The clock appeals expire at; by default the latest message time of the inputs.
  std::optional<std::int64_t> clock;
  std::shared_ptr<const pipeline::TimeZone> export_timezone;
  /// --source: every input is a file of that platform's own JSON (docs/backfill-files.md).
  std::optional<pipeline::Source> platform;
  bool keep_appeals = false;  // collect every appeal for --appeals
  bool progress = false;      // progress lines on the error stream
};

struct RejectedFile {
  std::string file;
  std::string error;
};

struct ReplayResult {
  std::optional<std::int64_t> clock;  // --clock, or the latest valid message time
  std::map<std::string, std::uint64_t> rejected_messages;
  std::vector<RejectedFile> rejected_files;
  std::set<std::int64_t> unowned_chats;   // chats in the input no agency owns
  std::uint64_t messages = 0;             // well-formed messages read
  std::vector<pipeline::Appeal> appeals;  // sorted by agency, conversation, opened message
  /// Appeals withdrawn (their message deleted before an answer), per agency and kind.
  using Withdrawn = std::map<std::pair<std::int32_t, pipeline::AppealKind>, std::uint64_t>;
  Withdrawn withdrawn;
  std::unique_ptr<pipeline::ExactStats> stats;
  pipeline::PairingCounters pairing;
};

ReplayResult run_replay(std::shared_ptr<const pipeline::Registry> registry,
                        const ReplayOptions& options, std::ostream& progress);

}  // namespace replywatch::daemon
