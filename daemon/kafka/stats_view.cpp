// A reader with no group (nothing committed): it starts from the beginning each time the
// daemon starts, which compaction keeps short (one record per agency and window).
#include "daemon/kafka/stats_view.hpp"

#include <set>

#include "daemon/log.hpp"

namespace replywatch::daemon::kafka {

StatsView::StatsView(const Config& config, int partitions)
    : bus_(config.bus),
      topic_(TopicNames(config.bus.topic_prefix).agency_stats),
      partitions_(partitions) {
  context_.name = "stats";
  context_.secrets = bus_.secrets;
}

StatsView::~StatsView() { stop(); }

Result<void> StatsView::start() {
  auto client = make_client(bus_, RD_KAFKA_CONSUMER, context_, reader_settings(bus_, "stats"));
  if (!client) return client.error();
  client_ = std::move(*client);
  PartitionList all(rd_kafka_topic_partition_list_new(partitions_));
  for (int p = 0; p < partitions_; ++p) {
    rd_kafka_topic_partition_list_add(all.get(), topic_.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  if (const auto err = rd_kafka_assign(client_.get(), all.get()); err) {
    return make_error("kafka stats: cannot read " + topic_ + ": " + error_text(err));
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void StatsView::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (client_) {
    rd_kafka_consumer_close(client_.get());
    client_.reset();
  }
}

void StatsView::run() {
  RecordReader reader;
  std::set<int> at_end;
  LogLimiter bad_log(5, 60);
  while (!stop_) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(client_.get(), 200);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.insert(m->partition);
      if (static_cast<int>(at_end.size()) == partitions_) caught_up_ = true;
    } else if (!m->err) {
      const std::string key(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
      if (!m->payload) {
        std::lock_guard lock(mutex_);
        latest_.erase(key);
      } else {
        AgencyStats s;
        auto ok = reader.read(std::string_view(static_cast<const char*>(m->payload), m->len), s);
        if (ok) {
          std::lock_guard lock(mutex_);
          latest_[key] = std::move(s);
        } else {
          ++bad_records_;
          long long suppressed = 0;
          if (bad_log.allow(static_cast<long long>(::time(nullptr)), suppressed)) {
            log_warn("kafka stats: " + topic_ + " partition " + std::to_string(m->partition) +
                     " offset " + std::to_string(m->offset) + ": " + ok.error().message +
                     " (skipped)");
          }
        }
      }
    }
    rd_kafka_message_destroy(m);
  }
}

std::vector<RankingRow> StatsView::rows(std::size_t window, const std::string& by,
                                        std::int64_t& newest) const {
  const std::string_view name = pipeline::kWindows[window].name;
  std::vector<RankingRow> out;
  std::lock_guard lock(mutex_);
  for (const auto& [key, s] : latest_) {
    if (s.window != name) continue;
    newest = std::max(newest, s.computed_at);
    if (by == "agency") {
      out.push_back(s.row);
    } else {
      const auto& list = by == "responder" ? s.responders : s.branches;
      out.insert(out.end(), list.begin(), list.end());
    }
  }
  return out;
}

std::string StatsView::ranking_json(std::size_t window, const std::string& by) const {
  std::int64_t newest = 0;
  auto r = rows(window, by, newest);
  return daemon::ranking_json(std::move(r), pipeline::kWindows[window].name, by, newest);
}

std::string StatsView::ranking_csv(std::size_t window, const std::string& by) const {
  std::int64_t newest = 0;
  auto r = rows(window, by, newest);
  return daemon::ranking_csv(std::move(r), by);
}

}  // namespace replywatch::daemon::kafka
