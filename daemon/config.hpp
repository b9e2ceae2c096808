// Strict YAML configuration: the registry of agencies plus daemon settings.
// Every problem is reported at once, each naming file, line and key path.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/error.hpp"
#include "pipeline/registry.hpp"

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
  std::string type;  // telegram_export | ndjson | telegram | vk
  std::string path;  // directory (telegram_export) or file/directory (ndjson)
  std::int64_t poll_interval_secs = 10;
  std::shared_ptr<const pipeline::TimeZone> export_timezone;  // telegram_export only
  int line = 0;                                               // where it is declared, for messages

  // telegram (Bot API) only.
  std::string mode;  // poll | webhook (telegram), poll | callback (vk)
  std::string api_base_url = "https://api.telegram.org";
  std::int64_t poll_timeout_secs = 25;
  std::string webhook_path;  // webhook mode: the daemon's path that receives pushes
  std::string ca_file;       // extra CA to trust (a local Bot API server, tests)
  /// Secrets, read from the environment or a file at load time. Never logged,
  /// never in an error message, never in a metric.
  std::string token;
  std::string secret_token;

  // vk only (token above: the access token, poll mode).
  std::string api_version = "5.199";
  std::vector<std::int64_t> walls;  // poll: owner ids; default: the vk conversations
  int posts_lookback = 50;
  double requests_per_second = 3;
  std::string secret;        // callback: the `secret` field of every push
  std::string confirmation;  // callback: the answer to {"type": "confirmation"}

  /// Receives pushes on the daemon's HTTP server (at webhook_path) instead of polling.
  bool pushes() const {
    return (type == "telegram" && mode == "webhook") || (type == "vk" && mode == "callback");
  }
};

/// The bus between the stages (`bus:` section): in-process by default, or Apache Kafka.
struct BusSettings {
  std::string type = "in_process";  // in_process | kafka
  // Kafka only.
  std::string bootstrap_servers;
  std::string topic_prefix = "replywatch";
  std::string group_id = "replywatch";
  /// Names this process among the group's (its producers are "<instance>/<connector>");
  /// unique per process. Default: the host name.
  std::string instance;
  int partitions = 6;                          // of every topic, when replywatch creates them
  int replication_factor = -1;                 // -1: the broker's default.replication.factor
  int min_insync_replicas = 0;                 // set on created topics and checked; 0: the broker's
  bool create_topics = true;                   // through the admin API, when missing
  std::int64_t checkpoint_interval_secs = 60;  // stage state into its changelog
  std::int64_t commit_interval_ms = 100;       // longest a transaction stays open
  std::int64_t stats_interval_secs = 5;        // agency-stats rows refreshed
  /// A producer silent this long (by the clocks of the records of the others) is
  /// gone: its watermark holds nothing back any more.
  std::int64_t producer_timeout_secs = 900;
  /// librdkafka settings passed through (security.protocol, sasl.*, ssl.*), secrets
  /// already read from their variable or file. In declaration order.
  std::vector<std::pair<std::string, std::string>> rdkafka;
  /// Values to scrub from anything librdkafka says (the secrets among them).
  std::vector<std::string> secrets;

  bool kafka() const { return type == "kafka"; }
};

/// The retention in force: the configured one, or twice the horizon (and never less
/// than horizon + lateness).
std::int64_t message_retention(const DaemonSettings& d, std::int64_t horizon_secs);

struct Config {
  std::string path;
  std::shared_ptr<const pipeline::Registry> registry;
  DaemonSettings daemon;
  std::vector<ConnectorConfig> connectors;
  BusSettings bus;
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
