// `replywatch run`: the long-running daemon on the embedded bus.
#pragma once

#include <string>

namespace replywatch::daemon {

struct RunOptions {
  std::string config_path;
};

/// Runs until SIGTERM or SIGINT. Returns the process exit code.
int run_daemon(const RunOptions& options);

}  // namespace replywatch::daemon
