// The aggregate side of the daemon's appeals: every appeal as the rules say it is now
// (behind /api/v1/appeals), and the Prometheus counters and histograms, which count an
// appeal once its conversation's clock has passed the moment its status was decided
// (it is final) and never go down: a late message that changes a final appeal is
// counted as a correction.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <tuple>
#include <vector>

#include "pipeline/binary.hpp"
#include "pipeline/pairing.hpp"
#include "pipeline/registry.hpp"

namespace replywatch::daemon {

/// Log-spaced histogram bounds: 30 s doubling to ~23 days, then 30 days.
const std::vector<double>& reply_buckets();

struct Histogram {
  // Per bucket (not cumulative), plus +Inf last.
  std::vector<std::uint64_t> counts = std::vector<std::uint64_t>(reply_buckets().size() + 1);
  double sum = 0;
  std::uint64_t count = 0;
  void observe(double v, const std::vector<double>& bounds);
};

/// Label values of the appeal counters: agency id, source, kind.
using AppealKey = std::tuple<std::string, std::string, std::string>;

/// Final counts per AppealKey. `corrected[s]`: counts of status s (opened, answered,
/// unanswered, withdrawn) taken back after they were final.
struct AppealCounts {
  std::uint64_t opened = 0, answered = 0, unanswered = 0, withdrawn = 0;
  std::array<std::uint64_t, 4> corrected{};
};
inline constexpr std::array<std::string_view, 4> kCorrectedStatus = {"opened", "answered",
                                                                     "unanswered", "withdrawn"};

class AppealStore {
 public:
  using ClockOf = std::function<std::int64_t(pipeline::Source, std::int64_t)>;

  explicit AppealStore(std::shared_ptr<const pipeline::Registry> registry);

  /// The appeal as last reported (the one the windows hold), or null.
  const pipeline::Appeal* find(pipeline::Source source, std::int64_t conversation,
                               std::int64_t opened_message) const;
  /// A change reported by the pairing; `before` is what the store held (find()).
  void apply(const pipeline::Appeal* before, const pipeline::Appeal* after);
  /// A change to an appeal the store no longer holds (evicted): `before` was counted.
  void reappear(const pipeline::Appeal& before, const pipeline::Appeal* after);

  /// Counts what became final at the clocks of its conversations.
  void settle(const ClockOf& clock_of);
  /// Drops decided appeals whose status was decided before `before`, once counted.
  void evict(std::int64_t before);

  template <class F>
  void for_each(F&& f) const {
    appeals_.for_each([&](const Id&, const Stored& s) { f(s.appeal); });
  }
  /// The appeals whose status is open now.
  template <class F>
  void for_each_open(F&& f) const {
    open_.for_each([&](const Id& id, pipeline::Empty) {
      if (const Stored* s = appeals_.find(id)) f(s->appeal);
    });
  }
  std::size_t open_count() const { return open_.size(); }
  std::size_t size() const { return appeals_.size(); }

  const std::map<AppealKey, AppealCounts>& counts() const { return counts_; }
  const std::map<AppealKey, Histogram>& reply_histograms() const { return reply_; }
  const std::map<AppealKey, Histogram>& business_histograms() const { return business_; }
  /// Answered appeals (count, reply seconds) by agency and hour of week of the opening.
  const std::map<std::pair<std::string, int>, std::pair<std::uint64_t, double>>& hour_of_week()
      const {
    return hour_of_week_;
  }
  /// Appeals not yet final (waiting for their conversation's clock).
  std::size_t unsettled() const { return queue_.size(); }

  /// Configuration reload: agency indexes follow the agencies by id.
  void set_registry(std::shared_ptr<const pipeline::Registry> registry);

  void serialize(std::string& out) const;
  Result<void> restore(std::string_view in);

 private:
  using Id = pipeline::AppealId;
  using IdHash = pipeline::AppealIdHash;
  // Stored::counted values beyond the AppealStatus ones.
  static constexpr std::uint8_t kNotCounted = 0xFF;
  struct Stored {
    pipeline::Appeal appeal;
    std::uint32_t agency = 0;            // in agency_names_: by id, since indexes move on reload
    bool counted_open = false;           // in `opened`
    std::uint8_t counted = kNotCounted;  // the AppealStatus counted as final, if any
    bool queued = false;                 // in queue_ (waiting to be final)
  };
  using Heap = std::priority_queue<std::pair<std::int64_t, Id>,
                                   std::vector<std::pair<std::int64_t, Id>>, std::greater<>>;

  static Id id_of(const pipeline::Appeal& a) { return Id::of(a); }
  AppealKey key_of(const Stored& s) const;
  /// The interned agency id of an agency index (or of an id read from a snapshot).
  std::uint32_t intern(std::int32_t agency);
  std::uint32_t intern(const std::string& id);
  void uncount(Stored& s, bool drop_open);
  void count_close(Stored& s);
  void enqueue(const Id& id, Stored& s);
  void index_open(const Id& id, const pipeline::Appeal* a);

  std::shared_ptr<const pipeline::Registry> registry_;
  std::vector<std::string> agency_names_;  // every agency id an appeal has had
  pipeline::FlatMap<Id, Stored, IdHash> appeals_;
  pipeline::FlatMap<Id, pipeline::Empty, IdHash> open_;  // appeals with status open
  std::vector<Id> queue_;  // not yet final
  Heap by_decision_;       // (decided_at, id) of decided appeals, for eviction; lazily valid
  std::map<AppealKey, AppealCounts> counts_;
  std::map<AppealKey, Histogram> reply_;
  std::map<AppealKey, Histogram> business_;
  std::map<std::pair<std::string, int>, std::pair<std::uint64_t, double>> hour_of_week_;
};

/// Hour of week of a unix time in an agency's zone: 0 = Monday 00:00–01:00.
int hour_of_week(const pipeline::Agency& agency, std::int64_t t);

/// Histograms in snapshots (the store's and the engine's ingest lag).
void put_histogram(pipeline::BinaryWriter& w, const Histogram& h);
bool get_histogram(pipeline::BinaryReader& r, Histogram& h);

}  // namespace replywatch::daemon
