// Rolling-window response-time statistics, per agency and kind, per responder and per
// branch: what the daemon publishes live (replay uses ExactStats). A window is a cohort:
// the appeals opened in it, followed until now — answered ones with their reply times,
// unanswered ones censored at the horizon, open ones (supplied by the caller) censored at
// their age. Appeals are added and taken back as their status changes.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/error.hpp"
#include "pipeline/pairing.hpp"
#include "pipeline/registry.hpp"
#include "pipeline/sketch.hpp"

namespace replywatch::pipeline {

struct Window {
  std::string_view name;
  std::int64_t seconds;
};

inline constexpr std::array<Window, 4> kWindows = {{
    {"1h", 3600},
    {"24h", 86400},
    {"7d", 604800},
    {"30d", 2592000},
}};

/// Each window is a ring of this many sub-buckets of width seconds/kSubBuckets, aligned to
/// multiples of the width since the epoch, by the appeal's opening time. At time `now` a
/// window holds the sub-bucket of `now` and the 59 before it: between 59/60 and all of its
/// nominal length, so its trailing edge is accurate to 1/60 of the length (1 min for 1h,
/// 12 h for 30d).
inline constexpr std::size_t kSubBuckets = 60;

/// Whether an appeal opened at `opened_at` belongs to window `window`'s cohort at `now`
/// (the same sub-bucket edge the rings use).
bool in_window(std::int64_t opened_at, std::size_t window, std::int64_t now);

/// Why a window's Kaplan–Meier median is null.
enum class KmNote : std::uint8_t {
  none,            // there is a median
  no_appeals,      // the cohort is empty
  too_few_closed,  // survival has not reached 0.5 within the longest follow-up
};
std::string_view to_string(KmNote n);

struct WindowSummary {
  std::uint64_t answered = 0;
  std::uint64_t unanswered = 0;
  std::uint64_t open = 0;  // agency summaries: the cohort's open appeals (from the caller)
  std::uint64_t within_target = 0;
  /// answered / (answered + unanswered); nullopt without decided appeals, in windows
  /// shorter than the horizon (no appeal of theirs can be unanswered yet), and always for
  /// responders and branches (an unanswered appeal has no responder).
  std::optional<double> answer_rate;
  /// within_target / (answered + unanswered), when the agency has a target (and, as
  /// answer_rate, not in windows shorter than the horizon). For responders and branches the
  /// denominator is their answers alone.
  std::optional<double> within_target_rate;
  /// Reply seconds, from the sketch: within its relative accuracy of the exact quantile.
  std::optional<double> median, p90, p99;
  std::optional<double> business_median, business_p90;
  /// Kaplan–Meier median time to first reply (agency summaries only); when null, why,
  /// with the survival reached and the longest follow-up of the cohort.
  std::optional<double> km_median_seconds;
  KmNote km_note = KmNote::no_appeals;
  double km_survival = 1.0;
  double km_max_followup = 0;
  /// Exact mean reply seconds (sums are kept, not sketched).
  std::optional<double> mean;
};

class RollingStats {
 public:
  explicit RollingStats(std::shared_ptr<const Registry> registry,
                        double relative_accuracy = QuantileSketch::kDefaultAccuracy);
  ~RollingStats();
  RollingStats(const RollingStats&) = delete;
  RollingStats& operator=(const RollingStats&) = delete;

  /// A decided appeal (answered or unanswered; others are ignored) at clock `now`, into the
  /// cohort of its opening time. Opening times after `now` count as `now`; cohorts already
  /// out of a window skip that window. Answered appeals also count for their responder
  /// and, if it has one, its branch. Appeals of agencies or accounts the registry does not
  /// know are counted in ignored().
  void add(const Appeal& a, std::int64_t now);
  /// Takes back exactly what add() put in for the same appeal (a correction), where the
  /// cohort is still in the window.
  void remove(const Appeal& a, std::int64_t now);

  /// Clears sub-buckets that fell out of their windows at `now` and frees rings left empty,
  /// so groups that went quiet return their memory. Optional; call at scrape time.
  void advance(std::int64_t now);

  /// `open_ages`: ages at `now` of the appeals of that agency and kind still open and in the
  /// window's cohort (in_window), built by the caller; they enter the Kaplan–Meier median as
  /// censored, with the cohort's unanswered appeals censored at the horizon. Out-of-range
  /// indexes give an empty summary.
  WindowSummary agency_summary(std::size_t agency, AppealKind kind, std::size_t window,
                               std::int64_t now, const QuantileSketch& open_ages) const;
  /// Answers by one account (index in the agency's accounts; −1: the conversation itself),
  /// over both kinds.
  WindowSummary responder_summary(std::size_t agency, std::int32_t account, std::size_t window,
                                  std::int64_t now) const;
  /// Answers by the accounts of one branch, over both kinds.
  WindowSummary branch_summary(std::size_t agency, std::string_view branch, std::size_t window,
                               std::int64_t now) const;

  /// Accounts (−1 first, then ascending indexes) with a responder group: one that received
  /// answers not yet released by advance().
  std::vector<std::int32_t> responders(std::size_t agency) const;
  /// Branch names with a group (as for responders), in the order they were first seen.
  std::vector<std::string> branches(std::size_t agency) const;

  /// Configuration reload. Groups follow their agency by id, their responder by account
  /// (source, id) and their branch by name; groups of agencies or accounts no longer in the
  /// registry are dropped.
  void set_registry(std::shared_ptr<const Registry> registry);
  const Registry& registry() const { return *registry_; }

  /// Appends a versioned snapshot of every group to `out`.
  void serialize(std::string& out) const;
  /// Replaces the state with a snapshot. Agencies and accounts are matched by identity as in
  /// set_registry; those the current registry lacks are skipped. Any malformed or
  /// inconsistent input gives an Error and leaves the state unchanged.
  Result<void> restore(std::string_view in);

  /// Closed appeals that could not be attributed (unknown agency or account index).
  std::uint64_t ignored() const { return ignored_; }
  double relative_accuracy() const { return accuracy_; }
  /// Heap bytes held by rings and sketches (for memory benchmarks).
  std::size_t memory_bytes() const;

 private:
  static constexpr std::int64_t kNoSlot = std::numeric_limits<std::int64_t>::min();

  struct SubBucket {
    // Absolute sub-bucket number (close time / width); kNoSlot when cleared.
    std::int64_t slot = kNoSlot;
    std::uint64_t answered = 0;
    std::uint64_t unanswered = 0;
    std::uint64_t within_target = 0;
    std::int64_t reply_sum = 0;  // whole seconds: exact under add and remove
    QuantileSketch reply;
    QuantileSketch business;

    bool empty() const { return answered == 0 && unanswered == 0; }
    void reset(std::int64_t s);
  };
  struct Ring {
    std::int64_t head;  // the newest slot the ring has advanced to
    std::array<SubBucket, kSubBuckets> subs;
    Ring(double accuracy, std::int64_t head_slot);
  };
  struct Group {
    std::array<std::unique_ptr<Ring>, kWindows.size()> rings;  // null until data arrives
    bool empty() const;
  };
  struct Branch {
    std::string name;
    Group group;
  };
  struct AgencyState {
    std::string id;
    std::array<Group, 2> kinds;     // AppealKind::first, AppealKind::followup
    std::vector<Group> responders;  // [0]: the conversation; [k + 1]: account k
    std::vector<Branch> branches;
    std::vector<std::int32_t> account_branch;  // account k → index in branches, −1: none
  };
  struct Sample;
  struct Totals;

  static std::vector<AgencyState> fresh_state(const Registry& registry);
  static void link_branches(AgencyState& state, const Agency& agency);
  static void advance_ring(Ring& ring, std::int64_t now_slot);
  void add_to_group(Group& g, std::int64_t opened, std::int64_t now, const Sample& s, int sign);
  void apply(const Appeal& a, std::int64_t now, int sign);
  void collect(const Group& g, std::size_t window, std::int64_t now, Totals& t) const;
  static void fill_answers(const Totals& t, WindowSummary& out);
  void write_group(std::string& out, const Group& g) const;
  Result<void> read_group(wire::Reader& r, Group& g, bool may_be_empty) const;

  std::shared_ptr<const Registry> registry_;
  double accuracy_;
  QuantileSketch key_maker_;           // stays empty; computes bucket keys for add_closed
  std::vector<AgencyState> agencies_;  // parallel to registry_->agencies
  std::uint64_t ignored_ = 0;
};

}  // namespace replywatch::pipeline
