// Connector registration. Adding a source: one branch here and its type name in
// connector_types() (config.cpp), whose list the configuration checks against.
#include "daemon/connectors.hpp"

#include "connectors/ndjson/tailer.hpp"
#include "connectors/telegram_export/watcher.hpp"

namespace replywatch::daemon {

std::unique_ptr<connectors::Connector> make_connector(const ConnectorConfig& config,
                                                      connectors::CursorMap cursors) {
  if (config.type == "telegram_export") {
    connectors::telegram_export::ParseOptions options;
    options.export_timezone = config.export_timezone;
    return std::make_unique<connectors::telegram_export::Watcher>(config.name, config.path,
                                                                  options, std::move(cursors));
  }
  if (config.type == "ndjson") {
    return std::make_unique<connectors::ndjson::Tailer>(config.name, config.path,
                                                        std::move(cursors));
  }
  return nullptr;
}

}  // namespace replywatch::daemon
