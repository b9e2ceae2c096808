// Metamorphic property: the appeals are a function of the set of events and the clock.
// Each random history is delivered as a random permutation with random duplicates,
// split into random batches, with the clock moving forward between batches (so
// appeals expire before their answers arrive) and the engine snapshotted and restored
// in between; at the final clock it must hold exactly what a brute-force reading of the
// rules (every conversation sorted by message id, linear scans) gives.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "tests/support/pairing_reference.hpp"

using namespace replywatch::testing;
using replywatch::pipeline::Applied;
using replywatch::pipeline::CitizenReplies;
using replywatch::pipeline::Pairing;

namespace {

/// Delivers `history` shuffled, duplicated and in batches, moving the clock and
/// restarting from a snapshot now and then; returns the appeals at `clock`.
struct Delivery {
  std::vector<Appeal> appeals;
  replywatch::pipeline::PairingCounters counters;
  int corrections = 0;
};

Delivery deliver(const std::vector<Event>& history,
                 std::shared_ptr<replywatch::pipeline::Registry> registry, std::int64_t clock,
                 std::int64_t retention, std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  std::vector<Event> input = history;
  const std::size_t dups =
      input.empty() ? 0 : static_cast<std::size_t>(pick(static_cast<int>(input.size()) / 3 + 1));
  for (std::size_t i = 0; i < dups; ++i)
    input.push_back(input[static_cast<std::size_t>(pick(static_cast<int>(input.size())))]);
  std::shuffle(input.begin(), input.end(), rng);
  // Mostly in order now and then: real deliveries are nearly sorted with local swaps.
  if (pick(3) == 0) {
    std::stable_sort(input.begin(), input.end(), [](const Event& a, const Event& b) {
      return a.conversation != b.conversation ? a.conversation < b.conversation
                                              : a.message_id < b.message_id;
    });
    for (std::size_t i = 0; i + 1 < input.size(); ++i) {
      if (pick(4) == 0) std::swap(input[i], input[i + 1]);
    }
  }
  Recorder sink;
  auto pairing = std::make_unique<Pairing>(registry, sink);
  pairing->set_retention(retention);
  const std::int64_t start = input.empty() ? clock : max_time(input) - 4000;
  std::int64_t now = start;
  std::size_t i = 0;
  while (i < input.size()) {
    const std::size_t batch = 1 + static_cast<std::size_t>(pick(12));
    for (std::size_t k = 0; k < batch && i < input.size(); ++k, ++i) pairing->on_event(input[i]);
    if (pick(3) == 0) {
      now = std::min(clock, now + pick(1500));
      pairing->expire(now);
    }
    if (pick(8) == 0) {
      std::string state;
      pairing->serialize(state);
      auto restored = std::make_unique<Pairing>(registry, sink);
      restored->set_retention(retention);
      REQUIRE(restored->restore(state).has_value());
      pairing = std::move(restored);
    }
  }
  pairing->expire(clock);
  REQUIRE(sink.mismatched == 0);
  return {sink.all(), pairing->counters(), sink.corrections};
}

}  // namespace

TEST_CASE("metamorphic: any delivery of a history gives the appeals of the rules") {
  std::mt19937_64 rng(20261207);
  constexpr std::int64_t kHorizon = 1000;
  int compared = 0, corrected_runs = 0;
  for (int round = 0; round < 3000; ++round) {
    const auto mode = round % 3 == 0 ? CitizenReplies::appeal : CitizenReplies::ignore;
    const auto history = random_history(rng);
    auto registry = make_registry(kHorizon, mode);
    const std::int64_t clock = max_time(history) + static_cast<std::int64_t>(rng() % 1500);

    const Reference ref{kHorizon, mode == CitizenReplies::ignore};
    const auto want = sorted_appeals(ref.run(history, clock));
    // Retention 0 keeps everything, and one longer than any history (forgetting passes
    // run but find nothing old enough): every delivery must be exact.
    const auto got = deliver(history, registry, clock, round % 2 ? 0 : 1'000'000, rng);
    REQUIRE(got.counters.before_retention == 0);
    REQUIRE(got.counters.parent_forgotten == 0);
    REQUIRE_MESSAGE(got.appeals.size() == want.size(), "round " << round);
    const auto have = sorted_appeals(got.appeals);
    for (std::size_t i = 0; i < have.size(); ++i) {
      REQUIRE_MESSAGE(appeal_key(have[i]) == appeal_key(want[i]),
                      "round " << round << " appeal " << i);
    }
    compared += static_cast<int>(want.size());
    corrected_runs += got.corrections > 0;
  }
  CHECK(compared > 20000);
  CHECK(corrected_runs > 300);  // late messages really corrected appeals already closed
}

TEST_CASE("metamorphic: with forgetting, whatever differs from the rules is reported") {
  std::mt19937_64 rng(7);
  constexpr std::int64_t kHorizon = 1000;
  int exact_runs = 0, reported_runs = 0;
  for (int round = 0; round < 3000; ++round) {
    const auto history = random_history(rng);
    auto registry = make_registry(kHorizon, CitizenReplies::ignore);
    const std::int64_t clock = max_time(history) + 200;
    const auto want = sorted_appeals(Reference{kHorizon, true}.run(history, clock));
    // Retention just above horizon + the clock's wobble: late messages fall behind it.
    const auto got =
        deliver(history, registry, clock, 1500 + static_cast<std::int64_t>(rng() % 3000), rng);
    const bool reported = got.counters.before_retention > 0 || got.counters.parent_forgotten > 0;
    if (!reported) {
      const auto have = sorted_appeals(got.appeals);
      REQUIRE_MESSAGE(have.size() == want.size(), "round " << round);
      for (std::size_t i = 0; i < have.size(); ++i) {
        REQUIRE_MESSAGE(appeal_key(have[i]) == appeal_key(want[i]),
                        "round " << round << " appeal " << i);
      }
      ++exact_runs;
    } else {
      ++reported_runs;
    }
  }
  CHECK(exact_runs > 600);
  CHECK(reported_runs > 600);  // the generator really reaches past the retention
}
