// librdkafka clients as replywatch configures them: the bus settings, the operator's
// pass-through settings (with their secrets kept out of every line it logs), and the
// settings each role needs for exactly-once processing, which the operator cannot
// override. Topic names live here too.
#pragma once

#include <librdkafka/rdkafka.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/log.hpp"

namespace replywatch::daemon::kafka {

/// The topics of one deployment (`bus.topic_prefix`).
struct TopicNames {
  explicit TopicNames(const std::string& prefix)
      : events(prefix + ".events"),
        appeals(prefix + ".appeals"),
        agency_stats(prefix + ".agency-stats"),
        pair_changelog(prefix + ".pair-changelog"),
        aggregate_changelog(prefix + ".aggregate-changelog") {}
  std::string events;               // normalized events and watermarks, keyed by conversation
  std::string appeals;              // appeal changes and clocks, keyed by agency
  std::string agency_stats;         // compacted: the ranking rows, keyed by agency and window
  std::string pair_changelog;       // compacted: pair stage checkpoints, one per events partition
  std::string aggregate_changelog;  // compacted: aggregate checkpoints, one per appeals partition

  struct Topic {
    std::string name;
    bool compacted;
  };
  std::vector<Topic> all() const {
    return {{events, false},
            {appeals, false},
            {agency_stats, true},
            {pair_changelog, true},
            {aggregate_changelog, true}};
  }
};

/// Why replywatch sets `key` itself (empty when the operator may set it).
std::string controlled_setting(const std::string& key);
/// What librdkafka says is wrong with `key: value`, without contacting any broker
/// (empty when accepted).
std::string check_setting(const std::string& key, const std::string& value);
/// `text` with every occurrence of each secret replaced by <redacted>.
std::string scrub(std::string text, const std::vector<std::string>& secrets);
std::string error_text(rd_kafka_resp_err_t error);

/// What a client's callbacks reach. Outlives the client.
struct ClientContext {
  std::string name;  // for log lines: "ingest", "pair", ...
  std::vector<std::string> secrets;
  /// Delivery reports (producers), on the thread that polls the client.
  std::function<void(const rd_kafka_message_t&)> on_delivery;
  /// Client-level errors (all brokers down, authentication), already scrubbed.
  std::function<void(rd_kafka_resp_err_t, const std::string&)> on_error;
  /// librdkafka's statistics JSON, every few seconds.
  std::function<void(std::string_view)> on_stats;
  /// Group rebalances (consumers), on the thread that polls the consumer.
  std::function<void(rd_kafka_t*, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t*)>
      on_rebalance;

  void log(LogLevel level, const std::string& message);

 private:
  std::mutex mutex_;
  LogLimiter limiter_{20, 60};
};

struct ClientDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Client = std::unique_ptr<rd_kafka_t, ClientDeleter>;

struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

using Settings = std::vector<std::pair<std::string, std::string>>;

/// A client of `type` for `bus`: bootstrap servers, client.id "replywatch-<instance>-<name>",
/// the pass-through settings, then `role` (which wins).
Result<Client> make_client(const BusSettings& bus, rd_kafka_type_t type, ClientContext& context,
                           const Settings& role);

/// The settings of each role.
Settings idempotent_producer_settings();
Settings transactional_producer_settings(const BusSettings& bus, const std::string& id);
Settings group_consumer_settings(const std::string& group);
/// A consumer that only reads assigned partitions (changelog restore, the stats view).
Settings reader_settings(const BusSettings& bus, const std::string& purpose);

/// Retries summed over the brokers of a statistics JSON (librdkafka counts them per broker).
std::uint64_t broker_retries(std::string_view stats_json);

/// Partition count of `topic`, or an error naming it (missing, not authorized, no broker).
Result<int> partition_count(rd_kafka_t* rk, const std::string& topic, int timeout_ms);

}  // namespace replywatch::daemon::kafka
