// Build identity: `replywatch --version` and replywatch_build_info.
#pragma once

namespace replywatch::daemon {

const char* version();
const char* revision();

}  // namespace replywatch::daemon
