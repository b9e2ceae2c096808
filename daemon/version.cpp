// The one place the build's version and revision (from CMake) are read.
#include "daemon/version.hpp"

#ifndef REPLYWATCH_VERSION
#define REPLYWATCH_VERSION "0.0.0"
#endif
#ifndef REPLYWATCH_REVISION
#define REPLYWATCH_REVISION "unknown"
#endif

namespace replywatch::daemon {

const char* version() { return REPLYWATCH_VERSION; }
const char* revision() { return REPLYWATCH_REVISION; }

}  // namespace replywatch::daemon
