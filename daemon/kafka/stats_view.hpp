// <prefix>.agency-stats as the serving side reads it: every partition from the beginning
// (read_committed), the latest row per key, behind /api/v1/ranking on every instance,
// whichever agencies it aggregates itself.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/config.hpp"
#include "daemon/kafka/client.hpp"
#include "daemon/kafka/records.hpp"

namespace replywatch::daemon::kafka {

class StatsView {
 public:
  StatsView(const Config& config, int partitions);
  ~StatsView();
  Result<void> start();
  void stop();

  /// The league table of `window` from the latest rows (generated_at: the newest row's
  /// computed_at).
  std::string ranking_json(std::size_t window, const std::string& by) const;
  std::string ranking_csv(std::size_t window, const std::string& by) const;
  /// True once every partition was read to its end at least once.
  bool caught_up() const { return caught_up_; }
  std::uint64_t bad_records() const { return bad_records_; }

 private:
  std::vector<RankingRow> rows(std::size_t window, const std::string& by,
                               std::int64_t& newest) const;
  void run();

  BusSettings bus_;
  std::string topic_;
  int partitions_;
  ClientContext context_;
  Client client_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> caught_up_{false};
  std::atomic<std::uint64_t> bad_records_{0};
  mutable std::mutex mutex_;
  std::map<std::string, AgencyStats> latest_;  // by key (agency|window)
};

}  // namespace replywatch::daemon::kafka
