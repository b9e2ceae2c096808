// The deployment's topics on the cluster: created when missing (bus.create_topics), and
// checked — by `replywatch run` before it starts, and line by line by `replywatch kafka-check`.
#pragma once

#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/kafka/client.hpp"

namespace replywatch::daemon::kafka {

/// Partition counts the stages run with.
struct Layout {
  int events = 0;   // = pair-changelog's
  int appeals = 0;  // = aggregate-changelog's
  int stats = 0;
};

/// Creates missing topics (if allowed) and returns the layout; an error names every
/// topic that is missing or does not fit (changelogs must match their input's partitions).
Result<Layout> ensure_topics(const BusSettings& bus, ClientContext& context, int timeout_ms);

struct CheckLine {
  bool ok;
  std::string text;
};
/// What `kafka-check` reports: brokers, each topic (existence, partitions, replication,
/// min.insync.replicas, cleanup policy), ACLs on topics, consumer groups and transactional
/// ids. Contacts the cluster; creates nothing.
std::vector<CheckLine> check_cluster(const BusSettings& bus, int timeout_ms);

}  // namespace replywatch::daemon::kafka
