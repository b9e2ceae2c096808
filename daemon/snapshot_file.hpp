// Atomic snapshot files: write to a temporary, fsync, rename over the old one,
// fsync the directory. A torn or damaged file is detected by its checksum.
#pragma once

#include "pipeline/error.hpp"

#include <optional>
#include <string>

namespace replywatch::daemon {

Result<void> write_snapshot_file(const std::string& path, const std::string& payload);

/// The payload, nullopt if the file does not exist, or an error naming the file.
Result<std::optional<std::string>> read_snapshot_file(const std::string& path);

}  // namespace replywatch::daemon
