// The quantile sketch against the exact statistics it stands in for: quantiles, merging,
// zeros, the byte format under hostile input, and the Kaplan–Meier median on sketches.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "pipeline/sketch.hpp"
#include "pipeline/stats.hpp"

using namespace replywatch::pipeline;

namespace {

constexpr double kAccuracy = QuantileSketch::kDefaultAccuracy;
constexpr double kQuantiles[] = {0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0};

/// Reply times in whole seconds, log-normal around `median_secs` like helpdesk data.
std::vector<std::int64_t> log_normal(std::mt19937_64& rng, std::size_t n, double median_secs,
                                     double sigma) {
  std::lognormal_distribution<double> dist(std::log(median_secs), sigma);
  std::vector<std::int64_t> v(n);
  for (auto& x : v) x = std::llround(std::min(dist(rng), 1e9));
  return v;
}

QuantileSketch sketch_of(const std::vector<std::int64_t>& values) {
  QuantileSketch s;
  for (const auto v : values) s.add(static_cast<double>(v));
  return s;
}

bool within(double got, double want, double relative) {
  return std::abs(got - want) <= relative * std::abs(want) + 1e-9;
}

std::string bytes_of(const QuantileSketch& s) {
  std::string out;
  s.serialize(out);
  return out;
}

}  // namespace

TEST_CASE("sketch quantiles stay within the stated accuracy of exact_quantile") {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    std::mt19937_64 rng(seed);
    for (const std::size_t n : {1, 2, 3, 7, 10, 100, 1000, 10000, 100000}) {
      // Wide spread (sigma 2) so that values run from seconds to weeks.
      std::vector<std::int64_t> values = log_normal(rng, n, 3600, 2.0);
      const QuantileSketch sketch = sketch_of(values);
      std::sort(values.begin(), values.end());
      REQUIRE(sketch.count() == n);
      for (const double q : kQuantiles) {
        const double exact = *exact_quantile(values, q);
        const double got = *sketch.quantile(q);
        INFO("seed " << seed << " n " << n << " q " << q << " exact " << exact << " got " << got);
        CHECK(within(got, exact, 0.01));
        // The documented bound, with room for rounding only.
        CHECK(within(got, exact, kAccuracy * (1 + 1e-9)));
      }
    }
  }
}

TEST_CASE("sketch quantile of one value and of an empty sketch") {
  QuantileSketch s;
  CHECK(s.empty());
  CHECK_FALSE(s.quantile(0.5).has_value());
  s.add(1234);
  CHECK(within(*s.quantile(0.0), 1234, kAccuracy));
  CHECK(within(*s.quantile(1.0), 1234, kAccuracy));
  // Out-of-range q clamps rather than reading past the data.
  CHECK(*s.quantile(-3) == *s.quantile(0));
  CHECK(*s.quantile(7) == *s.quantile(1));
  s.clear();
  CHECK(s.empty());
  CHECK(s.count() == 0);
  CHECK_FALSE(s.quantile(0.5).has_value());
}

TEST_CASE("sketch counts with multiplicity") {
  QuantileSketch a, b;
  a.add(60, 3);
  a.add(600, 1);
  a.add(5, 0);  // no-op
  for (int i = 0; i < 3; ++i) b.add(60);
  b.add(600);
  CHECK(a == b);
  CHECK(a.count() == 4);
  // Ranks 0..3 over {60, 60, 60, 600}: the p90 interpolates 0.7 of the way to 600.
  CHECK(within(*a.quantile(0.9), 60 + 0.7 * 540, kAccuracy));
}

TEST_CASE("zero values have their own bucket and report exactly zero") {
  QuantileSketch s;
  s.add(0, 5);
  CHECK(s.zero_count() == 5);
  CHECK(*s.quantile(0.5) == 0.0);
  CHECK(*s.quantile(1.0) == 0.0);
  s.add(100, 5);
  const std::vector<std::int64_t> exact = {0, 0, 0, 0, 0, 100, 100, 100, 100, 100};
  for (const double q : kQuantiles) {
    CHECK(within(*s.quantile(q), *exact_quantile(exact, q), kAccuracy));
  }
  CHECK(*s.quantile(0.4) == 0.0);
  // Rank 4.5 sits between the last zero and the first 100.
  CHECK(within(*s.quantile(0.5), 50, kAccuracy));
  // Clock skew can hand over a negative latency; it counts as instant, never lost.
  s.add(-7);
  s.add(std::nan(""));
  CHECK(s.zero_count() == 7);
  CHECK(s.count() == 12);
  std::vector<std::pair<double, std::uint64_t>> buckets;
  s.for_each_bucket([&](double v, std::uint64_t c) { buckets.emplace_back(v, c); });
  REQUIRE(buckets.size() == 2);
  CHECK(buckets[0] == std::pair<double, std::uint64_t>{0.0, 7});
  CHECK(within(buckets[1].first, 100, kAccuracy));
  CHECK(buckets[1].second == 5);
}

TEST_CASE("adding by a precomputed key equals adding the value") {
  QuantileSketch by_value, by_key;
  const QuantileSketch keys;
  for (const double v : {0.0, -3.0, 0.5, 1.0, 59.0, 3600.0, 1e7}) {
    by_value.add(v, 2);
    by_key.add_key(keys.key_of(v), 2);
  }
  CHECK(by_key == by_value);
  CHECK(by_key.zero_count() == 4);
}

TEST_CASE("removing values undoes adding them, bucket by bucket") {
  QuantileSketch s;
  s.add(0, 2);
  s.add(60, 3);
  s.add(600);
  s.add(6000);
  s.remove(60, 2);  // the bucket keeps one
  CHECK(s.count() == 5);
  CHECK(s.bucket_count() == 3);
  s.remove(600);  // a middle bucket empties and goes: the rest stay ascending
  CHECK(s.bucket_count() == 2);
  s.remove(-1);  // counts as zero, as in add
  CHECK(s.zero_count() == 1);
  s.remove_key(s.key_of(6000));
  s.remove(1234, 0);  // no-op, even for a value that is not there
  QuantileSketch want;
  want.add(0);
  want.add(60);
  CHECK(s == want);
  CHECK(s.count() == 2);
  std::vector<double> values;
  s.for_each_bucket([&](double v, std::uint64_t c) { values.insert(values.end(), c, v); });
  REQUIRE(values.size() == 2);
  CHECK(values[0] == 0.0);
  CHECK(within(values[1], 60, kAccuracy));
  s.remove(0);
  s.remove(60);
  CHECK(s == QuantileSketch{});
}

#ifdef NDEBUG
TEST_CASE("removing more than a bucket holds removes what is there (release builds)") {
  // A caller bug that asserts in debug builds; in release the counts must stay consistent.
  QuantileSketch s;
  s.add(0);
  s.add(60, 2);
  s.add(600);
  s.remove(60, 5);
  s.remove(0, 3);
  s.remove(7000);  // an empty bucket
  QuantileSketch want;
  want.add(600);
  CHECK(s == want);
  CHECK(s.count() == 1);
}
#endif

TEST_CASE("extreme values land in buckets without overflow") {
  QuantileSketch s;
  s.add(1e-300);
  s.add(std::numeric_limits<double>::max());
  s.add(std::numeric_limits<double>::infinity());
  s.add(std::numeric_limits<double>::denorm_min());
  CHECK(s.count() == 4);
  CHECK(std::isfinite(*s.quantile(1.0)));
  CHECK(*s.quantile(0.0) >= 0.0);
  CHECK(*s.quantile(0.0) < 1e-299);
  const std::string bytes = bytes_of(s);
  std::string_view in = bytes;
  auto back = QuantileSketch::deserialize(in);
  REQUIRE(back.has_value());
  CHECK(*back == s);
}

TEST_CASE("for_each_bucket is ascending and sums to the count") {
  std::mt19937_64 rng(11);
  const QuantileSketch s = sketch_of(log_normal(rng, 5000, 600, 1.5));
  double previous = -1;
  std::uint64_t total = 0;
  s.for_each_bucket([&](double v, std::uint64_t c) {
    CHECK(v > previous);
    CHECK(c > 0);
    previous = v;
    total += c;
  });
  CHECK(total == s.count());
}

TEST_CASE("merging sketches equals adding everything to one") {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed);
    const auto values = log_normal(rng, 20000, 900, 2.0);
    std::uniform_int_distribution<int> part(0, 6);
    std::vector<QuantileSketch> parts(7);
    for (const auto v : values)
      parts[static_cast<std::size_t>(part(rng))].add(static_cast<double>(v));
    QuantileSketch merged;
    for (const auto& p : parts) merged.merge(p);
    CHECK(merged == sketch_of(values));

    // Merging in the other direction, into a non-empty sketch, gives the same.
    QuantileSketch reverse = parts.back();
    for (std::size_t i = parts.size() - 1; i-- > 0;) reverse.merge(parts[i]);
    CHECK(reverse == merged);
  }
  QuantileSketch a, empty;
  a.add(10);
  a.add(0);
  QuantileSketch copy = a;
  copy.merge(empty);
  CHECK(copy == a);
  empty.merge(a);
  CHECK(empty == a);
  copy.merge(copy);  // self-merge doubles
  QuantileSketch twice = a;
  twice.add(10);
  twice.add(0);
  CHECK(copy == twice);
}

TEST_CASE("a cleared sketch is equal to a fresh one") {
  QuantileSketch s;
  s.add(3);
  s.add(0);
  s.clear();
  CHECK(s == QuantileSketch());
  CHECK(bytes_of(s) == bytes_of(QuantileSketch()));
}

TEST_CASE("sketch serialization round-trips and consumes exactly its bytes") {
  std::mt19937_64 rng(5);
  for (const std::size_t n : {0, 1, 10, 1000, 50000}) {
    QuantileSketch s = sketch_of(log_normal(rng, n, 3600, 2.5));
    if (n > 0) s.add(0, 3);
    std::string bytes = bytes_of(s);
    const std::size_t one = bytes.size();
    QuantileSketch other(0.01);
    other.add(42);
    other.serialize(bytes);
    bytes += "tail";
    std::string_view in = bytes;
    auto first = QuantileSketch::deserialize(in);
    REQUIRE(first.has_value());
    CHECK(*first == s);
    CHECK(in.size() == bytes.size() - one);
    auto second = QuantileSketch::deserialize(in);
    REQUIRE(second.has_value());
    CHECK(*second == other);
    CHECK(second->relative_accuracy() == 0.01);
    CHECK(in == "tail");
  }
}

TEST_CASE("sketch deserialization rejects truncated input without consuming it") {
  std::mt19937_64 rng(9);
  QuantileSketch s = sketch_of(log_normal(rng, 300, 3600, 2.0));
  s.add(0, 2);
  const std::string bytes = bytes_of(s);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    std::string_view in(bytes.data(), cut);
    const auto r = QuantileSketch::deserialize(in);
    CHECK_FALSE(r.has_value());
    CHECK(in.size() == cut);
  }
}

TEST_CASE("sketch deserialization rejects inconsistent fields") {
  auto header = [](std::uint8_t format, double accuracy, std::uint64_t zero, std::uint64_t n) {
    std::string out;
    wire::put_u8(out, format);
    wire::put_f64(out, accuracy);
    wire::put_varint(out, zero);
    wire::put_varint(out, n);
    return out;
  };
  auto fails = [](std::string bytes) {
    std::string_view in = bytes;
    return !QuantileSketch::deserialize(in);
  };
  CHECK_FALSE(fails(header(1, kAccuracy, 0, 0)));  // the baseline is valid
  CHECK(fails(header(2, kAccuracy, 0, 0)));        // unknown format
  CHECK(fails(header(1, std::nan(""), 0, 0)));
  CHECK(fails(header(1, 0.0, 0, 0)));
  CHECK(fails(header(1, 0.9, 0, 0)));
  CHECK(fails(header(1, -0.005, 0, 0)));
  CHECK(fails(header(1, kAccuracy, 0, 1u << 30)));  // count beyond the input

  std::string zero_delta = header(1, kAccuracy, 0, 2);
  wire::put_svarint(zero_delta, 100);
  wire::put_varint(zero_delta, 1);
  wire::put_varint(zero_delta, 0);  // the same index twice
  wire::put_varint(zero_delta, 1);
  CHECK(fails(zero_delta));

  std::string empty_bucket = header(1, kAccuracy, 0, 1);
  wire::put_svarint(empty_bucket, 100);
  wire::put_varint(empty_bucket, 0);
  CHECK(fails(empty_bucket));

  std::string out_of_range = header(1, kAccuracy, 0, 1);
  wire::put_svarint(out_of_range, std::int64_t{1} << 40);
  wire::put_varint(out_of_range, 1);
  CHECK(fails(out_of_range));

  std::string past_top = header(1, kAccuracy, 0, 2);
  wire::put_svarint(past_top, 70000);
  wire::put_varint(past_top, 1);
  wire::put_varint(past_top, std::uint64_t{1} << 62);
  wire::put_varint(past_top, 1);
  CHECK(fails(past_top));

  std::string overflow = header(1, kAccuracy, ~std::uint64_t{0}, 1);
  wire::put_svarint(overflow, 10);
  wire::put_varint(overflow, 1);
  CHECK(fails(overflow));

  std::string long_varint = header(1, kAccuracy, 0, 0);
  long_varint.resize(9);  // cut before the zero count: rebuild it as an eleven-byte varint
  long_varint.append(10, '\xff');
  long_varint.push_back('\x01');
  CHECK(fails(long_varint));
}

TEST_CASE("sketch deserialization survives random and mutated bytes") {
  std::mt19937_64 rng(1234);
  std::mt19937_64 data_rng(77);
  QuantileSketch s = sketch_of(log_normal(data_rng, 200, 3600, 2.0));
  const std::string good = bytes_of(s);
  std::uniform_int_distribution<int> byte(0, 255);
  std::size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes;
    if (round % 2 == 0) {
      bytes.resize(static_cast<std::size_t>(byte(rng)) % 64);
      for (auto& c : bytes) c = static_cast<char>(byte(rng));
      if (!bytes.empty()) bytes[0] = 1;  // get past the format byte now and then
    } else {
      bytes = good;
      for (int flips = 1 + byte(rng) % 4; flips > 0; --flips) {
        bytes[static_cast<std::size_t>(byte(rng)) * 7919 % bytes.size()] =
            static_cast<char>(byte(rng));
      }
    }
    std::string_view in = bytes;
    const auto r = QuantileSketch::deserialize(in);
    if (r) {
      ++accepted;
      // Whatever parses must be a usable sketch.
      std::uint64_t total = 0;
      r->for_each_bucket([&](double, std::uint64_t c) { total += c; });
      CHECK(total == r->count());
      if (!r->empty()) CHECK(r->quantile(0.5).has_value());
    }
  }
  CHECK(accepted > 0);  // mutations of counts alone are valid sketches
}

TEST_CASE("Kaplan-Meier on sketches: hand-computed cases as in the exact version") {
  auto km = [](std::vector<SurvivalSample> samples) {
    QuantileSketch answered, censored;
    for (const auto& s : samples)
      (s.answered ? answered : censored).add(static_cast<double>(s.seconds));
    return kaplan_meier_median(answered, censored);
  };
  // S sits at 0.5 between 20 and 30: the midpoint of their representatives, each within the
  // accuracy of its value, so within it of 25 (the lower median 20 before the midpoint rule).
  CHECK(within(*km({{10, true}, {20, true}, {30, true}, {40, true}}), 25, kAccuracy));
  CHECK(within(*km({{10, true}, {15, false}, {20, true}, {30, true}, {40, false}}), 30, kAccuracy));
  CHECK_FALSE(km({{5, true}, {100, false}, {100, false}}).has_value());
  CHECK_FALSE(km({}).has_value());
  CHECK_FALSE(km({{5, false}}).has_value());
  // Answers come before censorings at a tie.
  CHECK(within(*km({{10, false}, {10, true}}), 10, kAccuracy));
  CHECK(*km({{0, false}, {0, true}}) == 0.0);
  // Survival lands on 0.5 after a product of fractions: 7 at risk, 6 after the censoring at
  // 5; 10: 5/6; 20 (two of five): 5/6 · 3/5 = 0.5; 30 (one of three): 1/3. Flat at 0.5 from
  // 20 to 30, so the median is 25 (it was 20 before the midpoint rule).
  const std::vector<SurvivalSample> half = {{5, false}, {10, true},  {20, true}, {20, true},
                                            {30, true}, {40, false}, {50, false}};
  REQUIRE(*kaplan_meier_median(half) == 25.0);
  CHECK(within(*km(half), 25, kAccuracy));
}

// Bucketing can only move a censoring later past answers of its own bucket (the tie rule), so
// the sketch's median lies between the exact median of the data and the exact median with
// every censoring moved up one bucket width. Where those two agree the median is well
// conditioned and the sketch must match it within its accuracy; where they differ the
// survival curve is flat around 0.5 and no bucketed estimate can pin the median better.
TEST_CASE("Kaplan-Meier on sketches agrees with the exact median on random censored data") {
  const double gamma = (1 + kAccuracy) / (1 - kAccuracy);
  constexpr std::int64_t kHorizon = 604800;
  std::size_t cases = 0, well_conditioned = 0, agree = 0, defined = 0, undefined = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    for (const int n : {1, 2, 3, 5, 10, 30, 100, 1000, 10000}) {
      for (const double p : {0.2, 0.4, 0.5, 0.6, 0.8, 1.0}) {
        if (n == 10000 && seed > 5) continue;  // keep the run short
        std::mt19937_64 rng(seed * 7919 + static_cast<std::uint64_t>(n));
        std::lognormal_distribution<double> reply(std::log(3600.0), 1.5);
        std::uniform_real_distribution<double> u(0, 1);
        std::vector<SurvivalSample> exact, later;
        QuantileSketch answered, censored;
        for (int i = 0; i < n; ++i) {
          SurvivalSample s;
          if (u(rng) < p) {
            s = {std::min<std::int64_t>(kHorizon, std::llround(reply(rng))), true};
          } else if (u(rng) < 0.5) {
            s = {kHorizon, false};  // expired unanswered
          } else {
            s = {static_cast<std::int64_t>(u(rng) * kHorizon * 0.2), false};  // still open
          }
          (s.answered ? answered : censored).add(static_cast<double>(s.seconds));
          exact.push_back(s);
          if (!s.answered && s.seconds > 0) {
            s.seconds =
                static_cast<std::int64_t>(std::ceil(static_cast<double>(s.seconds) * gamma)) + 1;
          }
          later.push_back(s);
        }
        const auto lo = kaplan_meier_median(exact);
        const auto hi = kaplan_meier_median(later);
        const auto got = kaplan_meier_median(answered, censored);
        INFO("seed " << seed << " n " << n << " p " << p << " exact " << lo.value_or(-1)
                     << " bound " << hi.value_or(-1) << " sketch " << got.value_or(-1));
        ++cases;
        if (!lo) CHECK_FALSE(got.has_value());
        if (hi) CHECK(got.has_value());
        if (got && lo) CHECK(*got >= *lo * (1 - kAccuracy) * (1 - 1e-9));
        if (got && hi) CHECK(*got <= *hi * (1 + kAccuracy) * (1 + 1e-9));
        if (lo.has_value() == hi.has_value() && (!lo || *lo == *hi)) {
          ++well_conditioned;
          CHECK(got.has_value() == lo.has_value());
          if (got && lo) CHECK(within(*got, *lo, kAccuracy * (1 + 1e-9)));
        }
        const bool close = got.has_value() == lo.has_value() && (!lo || within(*got, *lo, 0.01));
        agree += close ? 1 : 0;
        (lo ? defined : undefined) += 1;
      }
    }
  }
  // The hard checks above must not be vacuous: most data is well conditioned, both
  // outcomes occur, and nearly every case lands within 1% of the exact median.
  CHECK(well_conditioned * 100 >= cases * 90);
  CHECK(defined > cases / 4);
  CHECK(undefined > cases / 10);
  CHECK(agree * 100 >= cases * 99);
}
