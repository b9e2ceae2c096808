// Admin API calls, each waited for on its own queue.
#include "daemon/kafka/topics.hpp"

#include <chrono>
#include <map>
#include <thread>

namespace replywatch::daemon::kafka {

namespace {

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
using Queue = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using Options = std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter>;

struct TopicInfo {
  bool exists = false;
  std::string error;  // authorization and the like
  int partitions = 0;
  int replicas = 0;
};

Result<std::map<std::string, TopicInfo>> describe(rd_kafka_t* rk, const TopicNames& names,
                                                  int timeout_ms) {
  std::map<std::string, TopicInfo> out;
  for (const auto& t : names.all()) out[t.name];
  const rd_kafka_metadata_t* md = nullptr;
  // All topics: asking for each by name could create it where auto-creation is on.
  const auto err = rd_kafka_metadata(rk, 1, nullptr, &md, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return make_error("cannot reach the brokers (" + error_text(err) + ")");
  }
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    auto it = out.find(t.topic);
    if (it == out.end()) continue;
    if (t.err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
      it->second.error = "not authorized (ACL: Describe)";
      continue;
    }
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) continue;
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      it->second.error = error_text(t.err);
      continue;
    }
    it->second.exists = true;
    it->second.partitions = t.partition_cnt;
    it->second.replicas = t.partition_cnt > 0 ? t.partitions[0].replica_cnt : 0;
  }
  rd_kafka_metadata_destroy(md);
  return out;
}

/// Creates `topics`; returns one error line per topic that failed (already existing is fine).
std::vector<std::string> create(rd_kafka_t* rk, const BusSettings& bus,
                                const std::vector<TopicNames::Topic>& topics, int timeout_ms) {
  std::vector<std::string> problems;
  std::vector<rd_kafka_NewTopic_t*> requests;
  char err[512] = {};
  for (const auto& t : topics) {
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(t.name.c_str(), bus.partitions,
                                                    bus.replication_factor, err, sizeof err);
    if (!nt) {
      problems.push_back("cannot create topic " + t.name + ": " + err);
      continue;
    }
    if (t.compacted) rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    if (bus.min_insync_replicas > 0) {
      rd_kafka_NewTopic_set_config(nt, "min.insync.replicas",
                                   std::to_string(bus.min_insync_replicas).c_str());
    }
    requests.push_back(nt);
  }
  if (requests.empty()) return problems;
  Queue queue(rd_kafka_queue_new(rk));
  Options options(rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, err, sizeof err);
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, err, sizeof err);
  rd_kafka_CreateTopics(rk, requests.data(), requests.size(), options.get(), queue.get());
  EventPtr event(rd_kafka_queue_poll(queue.get(), timeout_ms + 5000));
  rd_kafka_NewTopic_destroy_array(requests.data(), requests.size());
  if (!event) {
    problems.push_back("creating topics: no answer within " + std::to_string(timeout_ms) + " ms");
    return problems;
  }
  if (rd_kafka_event_error(event.get())) {
    problems.push_back(std::string("creating topics: ") + rd_kafka_event_error_string(event.get()));
    return problems;
  }
  const auto* result = rd_kafka_event_CreateTopics_result(event.get());
  std::size_t n = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto e = rd_kafka_topic_result_error(results[i]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
    const char* why = rd_kafka_topic_result_error_string(results[i]);
    problems.push_back(std::string("cannot create topic ") +
                       rd_kafka_topic_result_name(results[i]) + ": " + (why ? why : error_text(e)) +
                       (e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                                e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED
                            ? " (ACL: Create)"
                            : ""));
  }
  return problems;
}

/// Topic configuration values by topic, for the keys asked for.
std::map<std::string, std::map<std::string, std::string>> topic_configs(
    rd_kafka_t* rk, const std::vector<std::string>& topics, int timeout_ms,
    std::map<std::string, std::string>& errors) {
  std::map<std::string, std::map<std::string, std::string>> out;
  std::vector<rd_kafka_ConfigResource_t*> resources;
  for (const auto& t : topics) {
    resources.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.c_str()));
  }
  if (resources.empty()) return out;
  char err[512] = {};
  Queue queue(rd_kafka_queue_new(rk));
  Options options(rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, err, sizeof err);
  rd_kafka_DescribeConfigs(rk, resources.data(), resources.size(), options.get(), queue.get());
  EventPtr event(rd_kafka_queue_poll(queue.get(), timeout_ms + 5000));
  rd_kafka_ConfigResource_destroy_array(resources.data(), resources.size());
  if (!event || rd_kafka_event_error(event.get())) {
    for (const auto& t : topics) {
      errors[t] = event ? rd_kafka_event_error_string(event.get()) : "no answer";
    }
    return out;
  }
  const auto* result = rd_kafka_event_DescribeConfigs_result(event.get());
  std::size_t n = 0;
  const rd_kafka_ConfigResource_t** rs = rd_kafka_DescribeConfigs_result_resources(result, &n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string name = rd_kafka_ConfigResource_name(rs[i]);
    if (const auto e = rd_kafka_ConfigResource_error(rs[i]); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      errors[name] = e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
                         ? "not authorized (ACL: DescribeConfigs)"
                         : error_text(e);
      continue;
    }
    std::size_t m = 0;
    const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(rs[i], &m);
    for (std::size_t j = 0; j < m; ++j) {
      const char* value = rd_kafka_ConfigEntry_value(entries[j]);
      out[name][rd_kafka_ConfigEntry_name(entries[j])] = value ? value : "";
    }
  }
  return out;
}

Result<Client> admin_client(const BusSettings& bus, ClientContext& context) {
  return make_client(bus, RD_KAFKA_PRODUCER, context, {});
}

}  // namespace

Result<Layout> ensure_topics(const BusSettings& bus, ClientContext& context, int timeout_ms) {
  auto client = admin_client(bus, context);
  if (!client) return client.error();
  rd_kafka_t* rk = client->get();
  const TopicNames names(bus.topic_prefix);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool created = false;
  for (;;) {
    auto info = describe(rk, names, timeout_ms);
    if (!info) return info.error();
    std::vector<TopicNames::Topic> missing;
    std::string problems;
    for (const auto& t : names.all()) {
      const TopicInfo& i = (*info)[t.name];
      if (!i.error.empty()) problems += "\ntopic " + t.name + ": " + i.error;
      if (!i.exists && i.error.empty()) missing.push_back(t);
    }
    if (!problems.empty()) return make_error("kafka:" + problems);
    if (missing.empty()) {
      const auto& m = *info;
      Layout layout{m.at(names.events).partitions, m.at(names.appeals).partitions,
                    m.at(names.agency_stats).partitions};
      const int pair_changelog = m.at(names.pair_changelog).partitions;
      const int aggregate_changelog = m.at(names.aggregate_changelog).partitions;
      if (pair_changelog != layout.events) {
        problems += "\ntopic " + names.pair_changelog + " has " + std::to_string(pair_changelog) +
                    " partitions and " + names.events + " " + std::to_string(layout.events) +
                    ": a changelog needs one partition per input partition";
      }
      if (aggregate_changelog != layout.appeals) {
        problems += "\ntopic " + names.aggregate_changelog + " has " +
                    std::to_string(aggregate_changelog) + " partitions and " + names.appeals + " " +
                    std::to_string(layout.appeals) +
                    ": a changelog needs one partition per input partition";
      }
      if (!problems.empty()) return make_error("kafka:" + problems);
      return layout;
    }
    if (!bus.create_topics) {
      for (const auto& t : missing) {
        problems += "\ntopic " + t.name + " does not exist (bus.create_topics is false; " +
                    "`replywatch kafka-check` lists what the cluster needs)";
      }
      return make_error("kafka:" + problems);
    }
    if (!created) {
      for (const auto& p : create(rk, bus, missing, timeout_ms)) problems += "\n" + p;
      if (!problems.empty()) return make_error("kafka:" + problems);
      created = true;
      std::string list;
      for (const auto& t : missing) list += (list.empty() ? "" : ", ") + t.name;
      log_info("kafka: created topics " + list + " (" + std::to_string(bus.partitions) +
               " partitions)");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return make_error("kafka: created topics do not appear in the cluster's metadata");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // metadata propagates
  }
}

std::vector<CheckLine> check_cluster(const BusSettings& bus, int timeout_ms) {
  std::vector<CheckLine> lines;
  ClientContext context;
  context.name = "check";
  context.secrets = bus.secrets;
  auto client = admin_client(bus, context);
  if (!client) return {{false, client.error().message}};
  rd_kafka_t* rk = client->get();
  const TopicNames names(bus.topic_prefix);
  const rd_kafka_metadata_t* md = nullptr;
  if (const auto err = rd_kafka_metadata(rk, 0, nullptr, &md, timeout_ms); err) {
    return {{false, "brokers: cannot reach " + bus.bootstrap_servers + " within " +
                        std::to_string(timeout_ms / 1000) + " s (" + error_text(err) + ")"}};
  }
  lines.push_back({true, "brokers: " + std::to_string(md->broker_cnt) + " reachable from " +
                             bus.bootstrap_servers});
  const int brokers = md->broker_cnt;
  rd_kafka_metadata_destroy(md);

  auto info = describe(rk, names, timeout_ms);
  if (!info) return {{false, info.error().message}};
  std::vector<std::string> existing;
  for (const auto& t : names.all()) {
    const TopicInfo& i = (*info)[t.name];
    if (!i.error.empty()) {
      lines.push_back({false, "topic " + t.name + ": " + i.error});
    } else if (!i.exists) {
      lines.push_back({false, "topic " + t.name + ": missing (" +
                                  (bus.create_topics ? "replywatch run creates it"
                                                     : "create it; bus.create_topics is false") +
                                  ", " + std::to_string(bus.partitions) + " partitions" +
                                  (t.compacted ? ", cleanup.policy=compact" : "") + ")"});
    } else {
      existing.push_back(t.name);
      std::string text = "topic " + t.name + ": " + std::to_string(i.partitions) +
                         " partitions, replication " + std::to_string(i.replicas);
      bool ok = true;
      if (bus.replication_factor > 0 && i.replicas < bus.replication_factor) {
        ok = false;
        text += " (bus.replication_factor is " + std::to_string(bus.replication_factor) + ")";
      }
      lines.push_back({ok, text});
    }
  }
  auto pair_of = [&](const std::string& input, const std::string& changelog) {
    const TopicInfo& a = (*info)[input];
    const TopicInfo& b = (*info)[changelog];
    if (a.exists && b.exists && a.partitions != b.partitions) {
      lines.push_back({false, "partitions: " + changelog + " has " + std::to_string(b.partitions) +
                                  ", " + input + " " + std::to_string(a.partitions) +
                                  "; they must be equal"});
    }
  };
  pair_of(names.events, names.pair_changelog);
  pair_of(names.appeals, names.aggregate_changelog);

  std::map<std::string, std::string> errors;
  const auto configs = topic_configs(rk, existing, timeout_ms, errors);
  for (const auto& t : names.all()) {
    if (auto e = errors.find(t.name); e != errors.end()) {
      lines.push_back({false, "topic " + t.name + ": cannot read its configuration: " + e->second});
      continue;
    }
    auto c = configs.find(t.name);
    if (c == configs.end()) continue;
    const auto& values = c->second;
    if (t.compacted) {
      const auto policy = values.count("cleanup.policy") ? values.at("cleanup.policy") : "";
      if (policy.find("compact") == std::string::npos) {
        lines.push_back({false, "topic " + t.name + ": cleanup.policy=" + policy +
                                    ", want compact (it keeps the latest value per key)"});
      }
    }
    if (values.count("min.insync.replicas")) {
      const int isr = std::atoi(values.at("min.insync.replicas").c_str());
      const int replicas = (*info)[t.name].replicas;
      if (bus.min_insync_replicas > 0 && isr < bus.min_insync_replicas) {
        lines.push_back({false, "topic " + t.name + ": min.insync.replicas=" + std::to_string(isr) +
                                    ", want " + std::to_string(bus.min_insync_replicas) +
                                    " (bus.min_insync_replicas)"});
      } else if (replicas > 1 && isr < 2) {
        lines.push_back({false, "topic " + t.name + ": min.insync.replicas=" + std::to_string(isr) +
                                    " with replication " + std::to_string(replicas) +
                                    ": an acknowledged write may live on one broker only; want 2"});
      } else {
        lines.push_back({true, "topic " + t.name + ": min.insync.replicas=" + std::to_string(isr)});
      }
    }
  }

  // Groups: reading committed offsets needs Describe on the group.
  const std::pair<std::string, std::string> groups[] = {{bus.group_id + ".pair", names.events},
                                                         {bus.group_id + ".aggregate", names.appeals}};
  for (const auto& [group, input] : groups) {
    ClientContext gc;
    gc.name = "check";
    gc.secrets = bus.secrets;
    auto consumer = make_client(bus, RD_KAFKA_CONSUMER, gc, group_consumer_settings(group));
    if (!consumer) {
      lines.push_back({false, consumer.error().message});
      continue;
    }
    PartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), input.c_str(), 0);
    const auto err = rd_kafka_committed(consumer->get(), list.get(), timeout_ms);
    const auto partition_err = list->cnt ? list->elems[0].err : RD_KAFKA_RESP_ERR_NO_ERROR;
    const auto e = err ? err : partition_err;
    if (e == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED) {
      lines.push_back(
          {false, "ACL: consumer group " + group + ": not authorized (Read, Describe)"});
    } else if (e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
      lines.push_back({false, "ACL: topic " + input + ": not authorized for group reads"});
    } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
               e != RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT) {
      lines.push_back({false, "consumer group " + group + ": " + error_text(e)});
    } else {
      lines.push_back({true, "consumer group " + group + ": accessible"});
    }
    rd_kafka_consumer_close(consumer->get());
  }

  // Transactional ids: initialising one proves Write (and Describe) on it; it commits nothing.
  {
    ClientContext tc;
    tc.name = "check";
    tc.secrets = bus.secrets;
    const std::string id = bus.group_id + ".check." + bus.instance;
    auto producer =
        make_client(bus, RD_KAFKA_PRODUCER, tc, transactional_producer_settings(bus, id));
    if (!producer) {
      lines.push_back({false, producer.error().message});
    } else {
      ErrorPtr error(rd_kafka_init_transactions(producer->get(), timeout_ms));
      if (!error) {
        lines.push_back({true, "transactions: transactional id " + id + " usable"});
      } else if (rd_kafka_error_code(error.get()) ==
                 RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED) {
        lines.push_back({false, "ACL: transactional id " + bus.group_id +
                                    ".*: not authorized (Write, Describe)"});
      } else {
        lines.push_back({false, std::string("transactions: ") + rd_kafka_error_string(error.get()) +
                                    (brokers < 3 ? " (transaction.state.log.replication.factor "
                                                   "may exceed the number of brokers)"
                                                 : "")});
      }
    }
  }
  return lines;
}

}  // namespace replywatch::daemon::kafka
