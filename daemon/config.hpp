// Strict YAML configuration: the registry of agencies plus daemon settings.
// Every problem is reported at once, each naming file, line and key path.
#pragma once

#include "pipeline/error.hpp"
#include "pipeline/registry.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace replywatch::daemon {

struct Config {
  std::string path;
  std::shared_ptr<const pipeline::Registry> registry;
};

/// Reads and validates `path`. On failure the error holds one line per problem:
/// "FILE:LINE: KEY.PATH: what is wrong".
Result<Config> load_config(const std::string& path);

/// Same, on text already in memory; `origin` names it in messages.
Result<Config> parse_config(std::string_view yaml, std::string_view origin,
                            std::string_view zoneinfo_dir = "/usr/share/zoneinfo");

}  // namespace replywatch::daemon
