// Entry point: hands the arguments to the command-line dispatcher.
#include "daemon/cli.hpp"

#include <unistd.h>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return replywatch::daemon::run_cli(args, std::cout, std::cerr, isatty(STDERR_FILENO) == 1);
  } catch (const std::exception& e) {
    // Only resource exhaustion gets here; data errors are results, not exceptions.
    std::cerr << "replywatch: fatal: " << e.what() << "\n";
    return 1;
  }
}
