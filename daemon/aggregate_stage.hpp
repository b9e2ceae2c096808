// The aggregate stage: appeal changes → the appeals as they are, counters of final
// appeals, cohort windows and the league table. Keyed by agency on Kafka (one stage per
// partition of the appeals topic); in one process it hears the pair stage directly.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "daemon/appeal_store.hpp"
#include "daemon/config.hpp"
#include "daemon/metric_families.hpp"
#include "daemon/ranking.hpp"
#include "pipeline/pairing.hpp"
#include "pipeline/rolling.hpp"

namespace replywatch::daemon {

class AggregateStage : public pipeline::AppealSink {
 public:
  /// Whether this stage owns an agency's numbers (on Kafka: the agency hashes to its
  /// partition). Only owned agencies appear in its metrics and rows.
  using Owns = std::function<bool(const std::string& agency)>;

  explicit AggregateStage(std::shared_ptr<const Config> config, Owns owns = {});
  ~AggregateStage() override;
  AggregateStage(AggregateStage&&) noexcept;
  AggregateStage& operator=(AggregateStage&&) noexcept;

  /// An appeal changed (see AppealSink); `now` places it in the windows.
  void on_appeal(const pipeline::Appeal* before, const pipeline::Appeal* after) override;
  void on_forgotten_deletion(pipeline::Source source, std::int64_t conversation,
                             std::int64_t message) override;
  void set_now(std::int64_t now) { now_ = now; }

  /// Counts what became final at the clocks of its conversations, drops decided appeals
  /// older than the appeal retention, ages the windows.
  void tick(std::int64_t now, const AppealStore::ClockOf& clock_of) {
    settle(clock_of);
    age(now);
  }
  /// Counts what became final at the clocks of its conversations.
  void settle(const AppealStore::ClockOf& clock_of) { store_.settle(clock_of); }
  /// Drops decided appeals older than the appeal retention, ages the windows.
  void age(std::int64_t now);

  /// Rows of the league table for window `window` (an index of pipeline::kWindows).
  std::vector<RankingRow> ranking_rows(std::size_t window, const std::string& by,
                                       std::int64_t now) const;
  /// /api/v1/appeals: filtered, oldest first, `limit` per page, `cursor` from the previous
  /// page's next_cursor.
  Result<std::string> appeals_json(const std::string& agency, const std::string& status,
                                   std::size_t limit, const std::string& cursor) const {
    const AggregateStage* self = this;
    return appeals_json({&self, 1}, agency, status, limit, cursor);
  }
  /// The same over several stages (the partitions one instance owns), as one list.
  static Result<std::string> appeals_json(std::span<const AggregateStage* const> stages,
                                          const std::string& agency, const std::string& status,
                                          std::size_t limit, const std::string& cursor);

  /// Counters, histograms, backlog, windows, thresholds, the hour-of-week profile.
  void collect(std::int64_t now, Families& out) const;

  const AppealStore& appeals() const { return store_; }
  void reload(std::shared_ptr<const Config> config);

  void serialize(std::string& out) const;
  Result<void> restore(std::string_view in);

 private:
  /// Ages at `now` of the open appeals in each window's cohort, per agency, kind and window.
  using OpenAges =
      std::vector<std::array<std::array<pipeline::QuantileSketch, pipeline::kWindows.size()>, 2>>;
  OpenAges open_ages(std::int64_t now) const;

  bool owns(const std::string& agency) const { return !owns_ || owns_(agency); }

  std::shared_ptr<const Config> config_;
  Owns owns_;
  AppealStore store_;
  std::unique_ptr<pipeline::RollingStats> rolling_;
  std::int64_t now_ = 0;
};

}  // namespace replywatch::daemon
