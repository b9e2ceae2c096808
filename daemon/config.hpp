// Strict YAML configuration: the registry of agencies plus daemon settings.
// Every problem is reported at once, each naming file, line and key path.
#pragma once

#include "pipeline/error.hpp"
#include "pipeline/registry.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace replywatch::daemon {

/// Daemon settings (`daemon:` section); defaults suit a single-host install.
struct DaemonSettings {
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 9464;
  std::string data_dir = "/var/lib/replywatch";
  std::int64_t snapshot_interval_secs = 60;
  std::int64_t expiry_tick_secs = 10;
  std::int64_t message_retention_secs = 0;  // 0: twice the horizon, at least horizon + lateness
  /// How late a message may arrive after its time and still be in before expiry and the
  /// counters run on its conversation's clock (the watermark's lag behind a source).
  std::int64_t lateness_secs = 300;
  std::int64_t appeal_retention_secs = 35 * 86400;  // closed appeals kept for /api/v1/appeals
};

/// One configured connector instance (`connectors:` list).
struct ConnectorConfig {
  std::string name;  // [a-z0-9_]+, unique; the `connector` label
  std::string type;  // telegram_export | ndjson
  std::string path;  // directory (telegram_export) or file/directory (ndjson)
  std::int64_t poll_interval_secs = 10;
  std::shared_ptr<const pipeline::TimeZone> export_timezone;  // telegram_export only
  int line = 0;  // where it is declared, for messages

  // telegram (Bot API) only.
  std::string mode;  // poll | webhook
  std::string api_base_url = "https://api.telegram.org";
  std::int64_t poll_timeout_secs = 25;
  std::string webhook_path;  // webhook mode: the daemon's path that receives pushes
  std::string ca_file;       // extra CA to trust (a local Bot API server, tests)
  /// Secrets, read from the environment or a file at load time. Never logged,
  /// never in an error message, never in a metric.
  std::string token;
  std::string secret_token;
};

/// The retention in force: the configured one, or twice the horizon (and never less
/// than horizon + lateness).
std::int64_t message_retention(const DaemonSettings& d, std::int64_t horizon_secs);

struct Config {
  std::string path;
  std::shared_ptr<const pipeline::Registry> registry;
  DaemonSettings daemon;
  std::vector<ConnectorConfig> connectors;
};

/// The connector types this build knows; registration is this one list.
const std::vector<std::string_view>& connector_types();

/// Reads and validates `path`. On failure the error holds one line per problem:
/// "FILE:LINE: KEY.PATH: what is wrong".
Result<Config> load_config(const std::string& path);

/// Same, on text already in memory; `origin` names it in messages.
Result<Config> parse_config(std::string_view yaml, std::string_view origin,
                            std::string_view zoneinfo_dir = "/usr/share/zoneinfo");

}  // namespace replywatch::daemon
