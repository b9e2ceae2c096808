// The Kaplan–Meier median convention (midpoint where the curve sits at 0.5), exact and on
// sketches, and the sketch's removal that lets rolling windows take back corrected appeals.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "pipeline/sketch.hpp"
#include "pipeline/stats.hpp"

using namespace replywatch::pipeline;

namespace {

constexpr double kAccuracy = QuantileSketch::kDefaultAccuracy;

bool within(double got, double want, double relative) {
  return std::abs(got - want) <= relative * std::abs(want) + 1e-9;
}

/// `n` times drawn from a pool of 1..n distinct values in [0, max]: a small pool makes ties
/// common, which is where the convention has edges.
std::vector<std::int64_t> tied_times(std::mt19937_64& rng, std::size_t n, std::int64_t max) {
  std::uniform_int_distribution<std::size_t> pool_size(1, n);
  std::uniform_int_distribution<std::int64_t> value(0, max);
  std::vector<std::int64_t> pool(pool_size(rng));
  for (auto& v : pool) v = value(rng);
  std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
  std::vector<std::int64_t> times(n);
  for (auto& t : times) t = pool[pick(rng)];
  return times;
}

std::vector<SurvivalSample> all_answered(const std::vector<std::int64_t>& times) {
  std::vector<SurvivalSample> samples;
  for (const auto t : times) samples.push_back({t, true});
  return samples;
}

KaplanMeier km_on_sketches(const std::vector<SurvivalSample>& samples) {
  QuantileSketch answered, censored;
  for (const auto& s : samples) {
    (s.answered ? answered : censored).add(static_cast<double>(s.seconds));
  }
  return kaplan_meier(answered, censored);
}

}  // namespace

TEST_CASE("kaplan_meier: with nothing censored the median is exact_quantile's median") {
  std::mt19937_64 rng(20240601);
  std::uniform_int_distribution<std::size_t> size(1, 200);
  std::size_t even = 0, flat = 0;
  for (int round = 0; round < 2000; ++round) {
    const std::size_t n = size(rng);
    std::vector<std::int64_t> times = tied_times(rng, n, 1'000'000);
    const KaplanMeier km = kaplan_meier(all_answered(times));
    std::sort(times.begin(), times.end());
    const double want = *exact_quantile(times, 0.5);
    INFO("round " << round << " n " << n << " want " << want);
    REQUIRE(km.median.has_value());
    // Integers up to 10^6 and their halves are exact doubles: equal, not approximately.
    CHECK(*km.median == want);
    // The last answer leaves nobody waiting: the factor is 1 − d/d, exactly 0.
    CHECK(km.final_survival == 0.0);
    CHECK(km.max_time == static_cast<double>(times.back()));
    CHECK(km.events == n);
    CHECK(km.censored == 0);
    if (n % 2 == 0) {
      ++even;
      if (times[n / 2 - 1] != times[n / 2]) ++flat;
    }
  }
  // Not vacuous: many sets have the two middle values apart, where the midpoint rule acts.
  CHECK(flat > 200);
  CHECK(even > flat);  // and ties across the middle occur too
}

TEST_CASE("kaplan_meier: flat at 0.5 after an inexact product, then an answer") {
  // 12 appeals. t=10: 5 of 12 answered, S = 7/12. t=20: 1 of 7, S = 7/12 · 6/7 = 1/2 (in
  // doubles 0.58333… · 0.857142… need not be exactly 0.5). Two censored at 25 leave 4 at risk.
  // t=40: 1 of 4, S = 1/2 · 3/4 = 3/8. Three censored at 50. Flat at 0.5 on [20, 40):
  // median (20 + 40) / 2 = 30.
  std::vector<SurvivalSample> samples;
  for (int i = 0; i < 5; ++i) samples.push_back({10, true});
  samples.push_back({20, true});
  samples.push_back({25, false});
  samples.push_back({25, false});
  samples.push_back({40, true});
  for (int i = 0; i < 3; ++i) samples.push_back({50, false});
  const KaplanMeier km = kaplan_meier(samples);
  REQUIRE(km.median.has_value());
  CHECK(*km.median == 30.0);
  CHECK(km.final_survival == doctest::Approx(3.0 / 8.0));
  CHECK(km.max_time == 50.0);
  CHECK(km.events == 7);
  CHECK(km.censored == 5);
  CHECK(*kaplan_meier_median(samples) == 30.0);
}

TEST_CASE("kaplan_meier: a drop straight past 0.5 is the median") {
  // 6 appeals. t=10: 1 of 6 answered (the censoring at 10 comes after), S = 5/6, 4 at risk.
  // t=20: 2 of 4, S = 5/6 · 1/2 = 5/12 < 0.5 → median 20. t=30 censored, 1 at risk;
  // t=40: 1 of 1, S = 0.
  const std::vector<SurvivalSample> samples = {{10, true}, {10, false}, {20, true},
                                               {20, true}, {30, false}, {40, true}};
  const KaplanMeier km = kaplan_meier(samples);
  REQUIRE(km.median.has_value());
  CHECK(*km.median == 20.0);
  CHECK(km.final_survival == 0.0);
  CHECK(km.max_time == 40.0);
  CHECK(km.events == 4);
  CHECK(km.censored == 2);
}

TEST_CASE("kaplan_meier: flat at 0.5 with only censorings after it is the first time there") {
  // 4 appeals. t=10: 1 of 4, S = 3/4. t=20: 1 of 3, S = 3/4 · 2/3 = 1/2. Only censorings at
  // 30 and 40 follow: nothing says where the curve leaves 0.5, so the median is 20.
  const std::vector<SurvivalSample> samples = {{10, true}, {20, true}, {30, false}, {40, false}};
  const KaplanMeier km = kaplan_meier(samples);
  REQUIRE(km.median.has_value());
  CHECK(*km.median == 20.0);
  CHECK(km.final_survival == doctest::Approx(0.5));
  CHECK(km.max_time == 40.0);
  CHECK(km.events == 2);
  CHECK(km.censored == 2);
  // The same after the inexact product 7/12 · 6/7 of the flat-then-answer case.
  std::vector<SurvivalSample> inexact;
  for (int i = 0; i < 5; ++i) inexact.push_back({10, true});
  inexact.push_back({20, true});
  for (int i = 0; i < 6; ++i) inexact.push_back({25, false});
  CHECK(*kaplan_meier(inexact).median == 20.0);
  // An answer at the last censoring's time still ends the stretch (answers first at a tie):
  // 10 → 3/4, 20 → 1/2, 30 (1 of 2) → 1/4: median (20 + 30) / 2 = 25.
  CHECK(*kaplan_meier({{10, true}, {20, true}, {30, false}, {30, true}}).median == 25.0);
}

TEST_CASE("kaplan_meier: no median when survival stays above 0.5, and why") {
  // 6 appeals. t=5: 1 of 6, S = 5/6. t=10: 1 of 5, S = 5/6 · 4/5 = 2/3. The other four are
  // censored (three at 20, one at 100): S never gets to 0.5.
  const std::vector<SurvivalSample> samples = {{5, true},   {10, true},  {20, false},
                                               {20, false}, {20, false}, {100, false}};
  const KaplanMeier km = kaplan_meier(samples);
  CHECK_FALSE(km.median.has_value());
  CHECK(km.final_survival == doctest::Approx(2.0 / 3.0));
  CHECK(km.max_time == 100.0);
  CHECK(km.events == 2);
  CHECK(km.censored == 4);
  CHECK_FALSE(kaplan_meier_median(samples).has_value());

  // Nothing answered: survival never moves from 1.
  const KaplanMeier silent = kaplan_meier({{50, false}, {70, false}});
  CHECK_FALSE(silent.median.has_value());
  CHECK(silent.final_survival == 1.0);
  CHECK(silent.max_time == 70.0);
  CHECK(silent.events == 0);
  CHECK(silent.censored == 2);

  const KaplanMeier empty = kaplan_meier(std::vector<SurvivalSample>{});
  CHECK_FALSE(empty.median.has_value());
  CHECK(empty.final_survival == 1.0);
  CHECK(empty.max_time == 0.0);
  CHECK(empty.events == 0);
  CHECK(empty.censored == 0);
}

TEST_CASE("kaplan_meier on sketches: the hand-worked cases") {
  // The fixtures above on bucketed times: each time is alone in its bucket, so only the
  // representatives change, each within the accuracy of its time.
  std::vector<SurvivalSample> flat;
  for (int i = 0; i < 5; ++i) flat.push_back({10, true});
  flat.push_back({20, true});
  flat.push_back({25, false});
  flat.push_back({25, false});
  flat.push_back({40, true});
  for (int i = 0; i < 3; ++i) flat.push_back({50, false});
  const KaplanMeier f = km_on_sketches(flat);
  REQUIRE(f.median.has_value());
  CHECK(within(*f.median, 30, kAccuracy));
  CHECK(f.final_survival == doctest::Approx(3.0 / 8.0));
  CHECK(within(f.max_time, 50, kAccuracy));
  CHECK(f.events == 7);
  CHECK(f.censored == 5);

  const auto drop =
      km_on_sketches({{10, true}, {10, false}, {20, true}, {20, true}, {30, false}, {40, true}});
  CHECK(within(*drop.median, 20, kAccuracy));
  CHECK(drop.final_survival == 0.0);

  const auto last = km_on_sketches({{10, true}, {20, true}, {30, false}, {40, false}});
  CHECK(within(*last.median, 20, kAccuracy));
  CHECK(last.final_survival == doctest::Approx(0.5));
  CHECK(within(last.max_time, 40, kAccuracy));

  const auto never =
      km_on_sketches({{5, true}, {10, true}, {20, false}, {20, false}, {20, false}, {100, false}});
  CHECK_FALSE(never.median.has_value());
  CHECK(never.final_survival == doctest::Approx(2.0 / 3.0));
  CHECK(within(never.max_time, 100, kAccuracy));
  CHECK(never.events == 2);
  CHECK(never.censored == 4);

  // Only zeros: the zero bucket's time is exactly 0, and so is max_time.
  const auto zeros = km_on_sketches({{0, true}, {0, false}});
  CHECK(*zeros.median == 0.0);
  CHECK(zeros.max_time == 0.0);
  const KaplanMeier empty = kaplan_meier(QuantileSketch{}, QuantileSketch{});
  CHECK_FALSE(empty.median.has_value());
  CHECK(empty.final_survival == 1.0);
  CHECK(empty.max_time == 0.0);
  CHECK(empty.events == 0);
  CHECK(empty.censored == 0);
}

TEST_CASE("kaplan_meier on sketches: with nothing censored, within the accuracy of the median") {
  // The sketch's median is a representative or the midpoint of two, and each is within the
  // accuracy of the value it stands for, so the mix is too.
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::size_t> size(1, 200);
  for (int round = 0; round < 2000; ++round) {
    const std::size_t n = size(rng);
    std::vector<std::int64_t> times = tied_times(rng, n, 1'000'000);
    const KaplanMeier km = km_on_sketches(all_answered(times));
    std::sort(times.begin(), times.end());
    const double want = *exact_quantile(times, 0.5);
    INFO("round " << round << " n " << n << " want " << want);
    REQUIRE(km.median.has_value());
    CHECK(within(*km.median, want, kAccuracy * (1 + 1e-9)));
    CHECK(within(km.max_time, static_cast<double>(times.back()), kAccuracy * (1 + 1e-9)));
    CHECK(km.events == n);
  }
}

TEST_CASE("kaplan_meier on sketches equals the exact version on bucket representatives") {
  // Doubles from 2^53 up are integers, so there a bucket's representative is a valid number
  // of seconds: on such times bucketing changes nothing, and the two versions must agree to
  // the bit (same times, same ties, same order of arithmetic).
  const QuantileSketch probe;
  const std::int32_t lo = probe.key_of(std::ldexp(1.0, 53)).index + 1;
  const std::int32_t hi = probe.key_of(std::ldexp(1.0, 62)).index - 1;
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<std::size_t> size(1, 200);
  std::uniform_int_distribution<std::int32_t> index(lo, hi);
  std::uniform_real_distribution<double> u(0, 1);
  std::size_t with_median = 0, flat = 0;
  for (int round = 0; round < 2000; ++round) {
    const std::size_t n = size(rng);
    // 1..n buckets per round, so ties (and ties of answers with censorings) are common;
    // index lo − 1 stands for the zero bucket.
    std::vector<std::int32_t> pool(1 + rng() % n);
    for (auto& i : pool) i = u(rng) < 0.1 ? lo - 1 : index(rng);
    // A third with nothing censored, where even sizes often sit at exactly 0.5.
    const double p = u(rng) < 1.0 / 3 ? 1.0 : u(rng);
    std::vector<SurvivalSample> samples;
    QuantileSketch answered, censored;
    for (std::size_t k = 0; k < n; ++k) {
      const std::int32_t i = pool[rng() % pool.size()];
      const double t = i < lo ? 0.0 : probe.bucket_value(i);
      REQUIRE((i < lo ? probe.key_of(t).zero : probe.key_of(t).index == i));
      const bool answer = u(rng) < p;
      samples.push_back({static_cast<std::int64_t>(t), answer});
      REQUIRE(static_cast<double>(samples.back().seconds) == t);
      (answer ? answered : censored).add(t);
    }
    const KaplanMeier want = kaplan_meier(samples);
    const KaplanMeier got = kaplan_meier(answered, censored);
    INFO("round " << round << " n " << n << " p " << p);
    CHECK(got.median == want.median);
    CHECK(got.final_survival == want.final_survival);
    CHECK(got.max_time == want.max_time);
    CHECK(got.events == want.events);
    CHECK(got.censored == want.censored);
    if (want.median) {
      ++with_median;
      // A midpoint is no sample time: count how often the flat-stretch rule was exercised.
      const bool is_sample = std::any_of(samples.begin(), samples.end(), [&](const auto& s) {
        return static_cast<double>(s.seconds) == *want.median;
      });
      if (!is_sample) ++flat;
    }
  }
  CHECK(with_median > 500);
  CHECK(flat > 50);
}

TEST_CASE("sketch add/remove: random interleavings equal the sketch of the net multiset") {
  std::mt19937_64 rng(31337);
  std::uniform_real_distribution<double> u(0, 1);
  for (int round = 0; round < 500; ++round) {
    // A small pool: repeated values, shared buckets, zeros and values that count as zero.
    std::vector<double> pool(1 + rng() % 12);
    for (auto& v : pool) {
      const double r = u(rng);
      v = r < 0.1 ? 0.0 : r < 0.15 ? -5.0 : std::floor(std::exp(u(rng) * 14));
    }
    QuantileSketch s;
    std::map<double, std::uint64_t> net;  // value → count still in `s`
    const int steps = 1 + static_cast<int>(rng() % 60);
    for (int step = 0; step < steps; ++step) {
      const bool removing = !net.empty() && u(rng) < 0.45;
      if (removing) {
        auto it = net.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(rng() % net.size()));
        const std::uint64_t c = 1 + rng() % it->second;
        // Both spellings: by value and by a precomputed key.
        if (u(rng) < 0.5) {
          s.remove(it->first, c);
        } else {
          s.remove_key(s.key_of(it->first), c);
        }
        if ((it->second -= c) == 0) net.erase(it);
      } else {
        const double v = pool[rng() % pool.size()];
        const std::uint64_t c = 1 + rng() % 3;
        if (u(rng) < 0.5) {
          s.add(v, c);
        } else {
          s.add_key(s.key_of(v), c);
        }
        net[v] += c;
      }
    }
    QuantileSketch want;
    for (const auto& [v, c] : net) want.add(v, c);
    INFO("round " << round << " steps " << steps);
    CHECK(s == want);
    CHECK(s.count() == want.count());
    CHECK(s.zero_count() == want.zero_count());
    CHECK(s.bucket_count() == want.bucket_count());
    std::string a, b;
    s.serialize(a);
    want.serialize(b);
    CHECK(a == b);
    // Taking everything back leaves a sketch equal to a fresh one.
    for (const auto& [v, c] : net) s.remove(v, c);
    CHECK(s == QuantileSketch{});
    CHECK(s.empty());
  }
}

TEST_CASE("sketch add then remove restores the sketch before") {
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> reply(std::log(3600.0), 2.0);
  QuantileSketch base;
  for (int i = 0; i < 1000; ++i) base.add(std::floor(reply(rng)));
  QuantileSketch s = base;
  std::vector<double> extra;
  for (int i = 0; i < 300; ++i) extra.push_back(i % 10 == 0 ? 0.0 : std::floor(reply(rng)));
  for (const double v : extra) s.add(v);
  std::shuffle(extra.begin(), extra.end(), rng);  // removal order does not matter
  for (const double v : extra) s.remove(v);
  CHECK(s == base);
  CHECK(*s.quantile(0.5) == *base.quantile(0.5));
}
