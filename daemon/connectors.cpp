// Connector registration. Adding a source: one branch here (a poller or a push
// handler) and its type name in connector_types() (config.cpp), whose list the
// configuration checks against.
#include "daemon/connectors.hpp"

#include "connectors/ndjson/tailer.hpp"
#include "connectors/telegram/poller.hpp"
#include "connectors/telegram/webhook.hpp"
#include "connectors/vk/callback.hpp"
#include "connectors/vk/poller.hpp"

#include <algorithm>
#include "connectors/telegram_export/watcher.hpp"

namespace replywatch::daemon {

std::unique_ptr<connectors::Connector> make_connector(const ConnectorConfig& config,
                                                      connectors::CursorMap cursors) {
  if (config.type == "telegram_export") {
    connectors::telegram_export::ParseOptions options;
    options.export_timezone = config.export_timezone;
    // Settle for one poll interval (at least a second) before reading a file.
    const auto settle = std::chrono::milliseconds(std::max<std::int64_t>(1, config.poll_interval_secs) * 1000);
    return std::make_unique<connectors::telegram_export::Watcher>(
        config.name, config.path, options, std::move(cursors), settle);
  }
  if (config.type == "ndjson") {
    return std::make_unique<connectors::ndjson::Tailer>(config.name, config.path,
                                                        std::move(cursors));
  }
  if (config.type == "telegram" && config.mode == "poll") {
    connectors::telegram::PollerOptions options;
    options.name = config.name;
    options.api_base_url = config.api_base_url;
    options.token = config.token;
    options.ca_file = config.ca_file;
    options.poll_timeout_secs = config.poll_timeout_secs;
    return std::make_unique<connectors::telegram::Poller>(options, std::move(cursors));
  }
  if (config.type == "vk" && config.mode == "poll") {
    connectors::vk::PollerOptions options;
    options.name = config.name;
    options.api_base_url = config.api_base_url;
    options.api_version = config.api_version;
    options.token = config.token;
    options.ca_file = config.ca_file;
    options.walls = config.walls;
    options.posts_lookback = config.posts_lookback;
    options.requests_per_second = config.requests_per_second;
    return std::make_unique<connectors::vk::Poller>(options, std::move(cursors));
  }
  return nullptr;  // push modes: pushes arrive on the daemon's HTTP server
}

std::unique_ptr<connectors::PushHandler> make_push_handler(const ConnectorConfig& config) {
  if (config.type == "telegram" && config.mode == "webhook") {
    return std::make_unique<connectors::telegram::Webhook>(config.name, config.secret_token);
  }
  if (config.type == "vk" && config.mode == "callback") {
    return std::make_unique<connectors::vk::Callback>(config.name, config.secret,
                                                      config.confirmation);
  }
  return nullptr;
}

}  // namespace replywatch::daemon
