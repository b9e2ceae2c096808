// The replywatch command line: subcommands, flags and exit codes.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace replywatch::daemon {

/// Exit codes: 0 success, 1 usage or configuration error, 2 some input rejected.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
            bool err_is_terminal);

}  // namespace replywatch::daemon
