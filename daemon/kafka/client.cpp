// Client construction and the settings behind the exactly-once claims: idempotent,
// acks=all producers; transactional producers whose open transactions a restarted
// instance fences; read_committed consumers that commit only inside transactions.
#include "daemon/kafka/client.hpp"

#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace replywatch::daemon::kafka {

namespace {

struct Controlled {
  std::string_view key;
  std::string_view why;
};

constexpr std::array kControlled = {
    Controlled{"bootstrap.servers", "set bus.bootstrap_servers instead"},
    Controlled{"metadata.broker.list", "set bus.bootstrap_servers instead"},
    Controlled{"group.id", "set bus.group_id instead"},
    Controlled{"group.instance.id", "replywatch runs dynamic group membership"},
    Controlled{"transactional.id", "replywatch derives it from bus.group_id and bus.instance"},
    Controlled{"enable.idempotence", "replywatch's producers are always idempotent"},
    Controlled{"acks", "replywatch always writes with acks=all"},
    Controlled{"request.required.acks", "replywatch always writes with acks=all"},
    Controlled{"isolation.level", "replywatch reads committed records only"},
    Controlled{"enable.auto.commit", "replywatch commits offsets inside its transactions"},
    Controlled{"enable.auto.offset.store", "replywatch commits offsets inside its transactions"},
    Controlled{"auto.offset.reset", "replywatch starts new partitions from the beginning"},
    Controlled{"enable.partition.eof", "replywatch sets it per client"},
    Controlled{"partitioner", "replywatch partitions by murmur2, as Kafka's Java clients do"},
    Controlled{"message.timeout.ms", "replywatch sets it per client (ingest retries forever)"},
    Controlled{"delivery.timeout.ms", "replywatch sets it per client (ingest retries forever)"},
    Controlled{"transaction.timeout.ms", "replywatch sets it from bus.commit_interval_ms"},
    Controlled{"partition.assignment.strategy",
               "replywatch restores stage state on eager (range) assignment"},
    Controlled{"allow.auto.create.topics", "topics are created by replywatch (bus.create_topics)"},
    Controlled{"statistics.interval.ms", "replywatch reads client statistics itself"},
    Controlled{"client.id", "replywatch names its clients replywatch-<instance>-<stage>"},
};

extern "C" void log_cb(const rd_kafka_t* rk, int level, const char* facility, const char* buf) {
  auto* ctx = static_cast<ClientContext*>(rd_kafka_opaque(rk));
  if (!ctx) return;
  // One `rdkafka:` section serves producers and consumers alike: that a consumer setting
  // is ignored by a producer (or the reverse) is expected, not news.
  if (std::string_view(facility) == "CONFWARN" &&
      (std::string_view(buf).find("is a consumer property and will be ignored") !=
           std::string_view::npos ||
       std::string_view(buf).find("is a producer property and will be ignored") !=
           std::string_view::npos)) {
    return;
  }
  // A broker connection failing or closing: the same text reaches error_cb, which logs it
  // once, rate-limited. Logged here too, each failure would be two lines, one of them an
  // unlimited error, for as long as a broker is away.
  if (std::string_view(facility) == "FAIL") return;
  const LogLevel l = level <= 3 ? LogLevel::error : level <= 5 ? LogLevel::warn : LogLevel::info;
  ctx->log(l, std::string(facility) + ": " + buf);
}

extern "C" void error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  (void)rk;
  auto* ctx = static_cast<ClientContext*>(opaque);
  if (!ctx) return;
  const auto e = static_cast<rd_kafka_resp_err_t>(err);
  const std::string text = scrub(reason ? reason : error_text(e), ctx->secrets);
  if (ctx->on_error) ctx->on_error(e, text);
  // Transport errors repeat while a broker is away; the limiter keeps the log readable.
  ctx->log(e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || e == RD_KAFKA_RESP_ERR__TRANSPORT
               ? LogLevel::warn
               : LogLevel::error,
           text);
}

extern "C" void delivery_cb(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
  (void)rk;
  auto* ctx = static_cast<ClientContext*>(opaque);
  if (ctx && ctx->on_delivery) ctx->on_delivery(*m);
}

extern "C" int stats_cb(rd_kafka_t* rk, char* json, size_t len, void* opaque) {
  (void)rk;
  auto* ctx = static_cast<ClientContext*>(opaque);
  if (ctx && ctx->on_stats) ctx->on_stats(std::string_view(json, len));
  return 0;  // librdkafka frees the buffer
}

extern "C" void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* ctx = static_cast<ClientContext*>(opaque);
  if (ctx && ctx->on_rebalance) {
    ctx->on_rebalance(rk, err, partitions);
  } else {
    rd_kafka_assign(rk, err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? partitions : nullptr);
  }
}

}  // namespace

void ClientContext::log(LogLevel level, const std::string& message) {
  long long suppressed = 0;
  {
    std::lock_guard lock(mutex_);
    if (level != LogLevel::error &&
        !limiter_.allow(static_cast<long long>(::time(nullptr)), suppressed)) {
      return;
    }
  }
  log_line(level, "kafka " + name + ": " + scrub(message, secrets) +
                      (suppressed ? " (" + std::to_string(suppressed) + " lines suppressed)" : ""));
}

std::string controlled_setting(const std::string& key) {
  for (const auto& c : kControlled) {
    if (c.key == key) return "'" + key + "' is set by replywatch: " + std::string(c.why);
  }
  if (key.ends_with("_cb") || key == "opaque") return "'" + key + "' is a callback";
  return {};
}

std::string check_setting(const std::string& key, const std::string& value) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512] = {};
  const auto r = rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err);
  rd_kafka_conf_destroy(conf);
  if (r == RD_KAFKA_CONF_OK) return {};
  return err[0] ? std::string(err) : "rejected by librdkafka";
}

std::string scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    for (auto at = text.find(s); at != std::string::npos; at = text.find(s, at)) {
      text.replace(at, s.size(), "<redacted>");
      at += 10;
    }
  }
  return text;
}

std::string error_text(rd_kafka_resp_err_t error) { return rd_kafka_err2str(error); }

Result<Client> make_client(const BusSettings& bus, rd_kafka_type_t type, ClientContext& context,
                           const Settings& role) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512] = {};
  Settings all = {{"bootstrap.servers", bus.bootstrap_servers},
                  {"client.id", "replywatch-" + bus.instance + "-" + context.name},
                  {"allow.auto.create.topics", "false"}};
  all.insert(all.end(), bus.rdkafka.begin(), bus.rdkafka.end());
  all.insert(all.end(), role.begin(), role.end());
  for (const auto& [key, value] : all) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error("kafka " + context.name + ": setting " + key + ": " +
                        scrub(err, context.secrets));
    }
  }
  rd_kafka_conf_set_opaque(conf, &context);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  if (context.on_delivery) rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
  if (context.on_rebalance) rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
  if (context.on_stats) {
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set(conf, "statistics.interval.ms", "5000", err, sizeof err);
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return make_error("kafka " + context.name + ": " + scrub(err, context.secrets));
  }
  return Client(rk);
}

Settings idempotent_producer_settings() {
  return {{"enable.idempotence", "true"},
          {"acks", "all"},
          // Never give up on an event: a connector confirms to its source only what is in.
          {"message.timeout.ms", "0"},
          {"partitioner", "murmur2_random"}};
}

Settings transactional_producer_settings(const BusSettings& bus, const std::string& id) {
  // A transaction lives for one commit interval; a crashed owner's open one is aborted by
  // the broker after this (or at once, when the instance comes back and fences it).
  // At most the brokers' default transaction.max.timeout.ms (15 min).
  const auto timeout =
      std::to_string(std::clamp<std::int64_t>(20 * bus.commit_interval_ms, 20000, 900000));
  return {{"transactional.id", id},
          {"enable.idempotence", "true"},
          {"acks", "all"},
          {"transaction.timeout.ms", timeout},
          {"message.timeout.ms", timeout},
          {"partitioner", "murmur2_random"}};
}

Settings group_consumer_settings(const std::string& group) {
  return {{"group.id", group},
          {"enable.auto.commit", "false"},
          {"enable.auto.offset.store", "false"},
          {"auto.offset.reset", "earliest"},
          {"isolation.level", "read_committed"},
          {"enable.partition.eof", "false"},
          {"partition.assignment.strategy", "range"}};
}

Settings reader_settings(const BusSettings& bus, const std::string& purpose) {
  return {{"group.id", bus.group_id + ".reader." + purpose},  // never joined, never committed
          {"enable.auto.commit", "false"},
          {"enable.auto.offset.store", "false"},
          {"auto.offset.reset", "earliest"},
          {"isolation.level", "read_committed"},
          {"enable.partition.eof", "true"}};
}

std::uint64_t broker_retries(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc)) return 0;
  simdjson::dom::object brokers;
  if (doc["brokers"].get_object().get(brokers)) return 0;
  std::uint64_t retries = 0;
  for (auto [name, broker] : brokers) {
    std::uint64_t n = 0;
    if (!broker["txretries"].get_uint64().get(n)) retries += n;
  }
  return retries;
}

Result<int> partition_count(rd_kafka_t* rk, const std::string& topic, int timeout_ms) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  if (!rkt) return make_error("topic " + topic + ": " + error_text(rd_kafka_last_error()));
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error("cannot read metadata of topic " + topic + ": " + error_text(err));
  }
  Result<int> out = make_error("topic " + topic + ": not in the cluster's metadata");
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
      out = make_error("topic " + topic + " does not exist");
    } else if (t.err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
      out = make_error("topic " + topic + ": not authorized (ACL: Describe)");
    } else if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      out = make_error("topic " + topic + ": " + error_text(t.err));
    } else {
      out = t.partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  return out;
}

}  // namespace replywatch::daemon::kafka
