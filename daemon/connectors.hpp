// The connector registry: the one list that maps a configured `type` to the
// code that runs it.
#pragma once

#include "connectors/connector.hpp"
#include "connectors/push.hpp"
#include "daemon/config.hpp"

#include <memory>

namespace replywatch::daemon {

/// Builds the polling connector for `config`, resuming from `cursors`; null for a
/// connector that receives pushes (see make_push_handler). Validation already
/// happened in the configuration; this performs no I/O.
std::unique_ptr<connectors::Connector> make_connector(const ConnectorConfig& config,
                                                      connectors::CursorMap cursors);

/// The handler of a connector that receives pushes on the daemon's HTTP server
/// (telegram webhook, vk callback), for the route config.webhook_path; null otherwise.
std::unique_ptr<connectors::PushHandler> make_push_handler(const ConnectorConfig& config);

}  // namespace replywatch::daemon
