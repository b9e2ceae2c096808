// The connector registry: the one list that maps a configured `type` to the
// code that runs it.
#pragma once

#include "connectors/connector.hpp"
#include "daemon/config.hpp"

#include <memory>

namespace replywatch::daemon {

/// Builds the polling connector for `config`, resuming from `cursors`; null for a
/// connector that receives pushes (telegram webhook mode). Validation already
/// happened in the configuration; this performs no I/O.
std::unique_ptr<connectors::Connector> make_connector(const ConnectorConfig& config,
                                                      connectors::CursorMap cursors);

}  // namespace replywatch::daemon
