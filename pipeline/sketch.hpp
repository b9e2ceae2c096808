// A mergeable quantile sketch with a stated relative error (logarithmic buckets in the
// DDSketch manner), so rolling windows can sum sub-window sketches instead of keeping samples.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/error.hpp"

namespace replywatch::pipeline {

struct KaplanMeier;

/// Values >= 0 (seconds). A positive value v lands in bucket i = ceil(log_gamma(v)), covering
/// (gamma^(i-1), gamma^i] with gamma = (1+a)/(1-a); the bucket reports 2·gamma^i/(1+gamma),
/// within a relative `a` of every value in it. Zero has a bucket of its own. Quantiles
/// interpolate between the representatives at ranks floor(q(n-1)) and the next one, exactly as
/// exact_quantile does with the values, and a convex mix of two values each off by at most `a`
/// is itself off by at most `a`: a quantile is within `a` of the exact one.
class QuantileSketch {
 public:
  static constexpr double kDefaultAccuracy = 0.005;
  // Finer than 1e-5 would push bucket indexes for extreme doubles past int32.
  static constexpr double kMinAccuracy = 1e-5;
  static constexpr double kMaxAccuracy = 0.5;

  /// `relative_accuracy` outside [kMinAccuracy, kMaxAccuracy] asserts (and is clamped).
  explicit QuantileSketch(double relative_accuracy = kDefaultAccuracy);

  /// Negative and NaN values count as zero: a clock-skewed negative latency is "instant",
  /// not an error worth losing the sample for. +inf lands in the top bucket.
  void add(double value, std::uint64_t count = 1);

  /// The bucket of a value, so one value can go into many sketches of the same accuracy
  /// for the price of one logarithm (the rolling windows add each reply to a dozen).
  struct Key {
    std::int32_t index = 0;
    bool zero = true;
  };
  Key key_of(double value) const;
  /// `key` must come from a sketch of the same accuracy (asserted).
  void add_key(Key key, std::uint64_t count = 1);
  /// Undo add_key / add, so a rolling window can take back an appeal that was corrected
  /// after it was counted: add then remove of the same values leaves a sketch equal to the
  /// one before. Removing more than the bucket holds is a caller bug: it asserts, and in a
  /// release build removes what is there, so count() keeps matching the buckets.
  void remove_key(Key key, std::uint64_t count = 1);
  void remove(double value, std::uint64_t count = 1);
  /// Both sketches must share the accuracy (asserted); otherwise `other` is re-bucketed
  /// by its representatives, which adds its error to ours.
  void merge(const QuantileSketch& other);

  std::uint64_t count() const { return count_; }
  bool empty() const { return count_ == 0; }
  /// Keeps the bucket storage, so a recycled sketch does not allocate again.
  void clear();

  /// q in [0,1] (clamped); rank q·(count−1), linear interpolation; nullopt when empty.
  std::optional<double> quantile(double q) const;

  /// Ascending: f(representative_value, count); the zero bucket (value 0) comes first.
  template <class F>
  void for_each_bucket(F f) const;

  /// Compact binary, little endian; appends to `out`.
  void serialize(std::string& out) const;
  /// Reads one sketch from the front of `in` and advances `in` past it; on an error `in`
  /// is left as it was. Any byte string is safe to pass.
  static Result<QuantileSketch> deserialize(std::string_view& in);

  double relative_accuracy() const { return accuracy_; }
  std::uint64_t zero_count() const { return zero_count_; }
  /// Non-empty buckets besides the zero bucket.
  std::size_t bucket_count() const { return buckets_.size(); }
  /// The value bucket `index` reports.
  double bucket_value(std::int32_t index) const;
  /// Heap bytes held (for memory accounting).
  std::size_t memory_bytes() const { return buckets_.capacity() * sizeof(Bucket); }

  /// Same accuracy and the same counts in the same buckets.
  friend bool operator==(const QuantileSketch& a, const QuantileSketch& b);

 private:
  struct Bucket {
    std::int32_t index;
    std::uint64_t count;
    friend bool operator==(const Bucket&, const Bucket&) = default;
  };

  std::int32_t index_of(double positive) const;
  std::int32_t min_index() const;
  std::int32_t max_index() const;
  void add_bucket(std::int32_t index, std::uint64_t count);

  friend KaplanMeier kaplan_meier(const QuantileSketch& answered,
                                  const QuantileSketch& censored);

  double accuracy_;
  double log_gamma_;
  std::uint64_t zero_count_ = 0;
  std::uint64_t count_ = 0;
  std::vector<Bucket> buckets_;  // ascending by index, counts > 0
};

/// A Kaplan–Meier estimate of the time to answer, with what a caller needs to say why there is
/// no median: nothing answered (events == 0), or silence dominating (final_survival > 0.5,
/// with max_time the longest anyone has been watched).
///
/// The median convention, shared by the exact and the bucketed estimate: survival S (the
/// probability of still waiting) steps down at each answer time. If S drops from above 0.5
/// straight below it at t, the median is t. If S lands on exactly 0.5 at t1 (within a relative
/// 1e-12, as products of fractions are inexact) it stays there until the next answer time t2,
/// and the median is the midpoint (t1 + t2) / 2, so that with nothing censored the median is
/// the sample median of exact_quantile. If S sits at 0.5 and only censorings follow, nothing
/// says where the curve would leave 0.5; the median is then t1, the smallest time at which
/// S <= 0.5 (the older convention, and the only time the data supports). At tied times
/// answers count before censorings.
struct KaplanMeier {
  std::optional<double> median;
  double final_survival = 1.0;  ///< after the last answer; 1.0 with none
  double max_time = 0;          ///< largest time of any sample, answered or censored; 0 if none
  std::uint64_t events = 0, censored = 0;
};

/// Kaplan–Meier over bucketed times: answers in `answered` are events, `censored` holds
/// censoring times, and the times are the buckets' representatives (so a midpoint median is
/// the midpoint of two representatives). Ties are answers and censorings in the same bucket.
/// A censoring can only move later past answers of its own bucket, so the result lies
/// between the exact median and the exact median with censorings one bucket later: within
/// the accuracy wherever the survival curve crosses 0.5 steeply, but possibly far off where
/// it lingers at 0.5 (there the exact median is itself unstable).
KaplanMeier kaplan_meier(const QuantileSketch& answered, const QuantileSketch& censored);
/// kaplan_meier(answered, censored).median.
std::optional<double> kaplan_meier_median(const QuantileSketch& answered,
                                          const QuantileSketch& censored);

namespace detail {

/// Folds answer times, ascending, into the median convention above; the exact and the
/// bucketed estimate both use it so that they cannot drift apart.
class KaplanMeierFold {
 public:
  /// `answered` (> 0) answers at `t` out of `at_risk` still waiting just before t.
  void event(double t, double answered, double at_risk);
  std::optional<double> median() const { return median_ ? median_ : at_half_; }
  double survival() const { return survival_; }

 private:
  double survival_ = 1.0;
  std::optional<double> median_;
  std::optional<double> at_half_;  // t1 while the curve sits at exactly 0.5
};

}  // namespace detail

template <class F>
void QuantileSketch::for_each_bucket(F f) const {
  if (zero_count_ > 0) f(0.0, zero_count_);
  for (const Bucket& b : buckets_) f(bucket_value(b.index), b.count);
}

/// The byte encoding shared by the sketch and the rolling-statistics snapshot: little-endian
/// fixed-width integers and doubles, LEB128 varints, zigzag for signed values.
namespace wire {

void put_u8(std::string& out, std::uint8_t v);
void put_u64(std::string& out, std::uint64_t v);
void put_f64(std::string& out, double v);
void put_varint(std::string& out, std::uint64_t v);
void put_svarint(std::string& out, std::int64_t v);
void put_string(std::string& out, std::string_view s);

/// Reads from a byte string; after the first failure every read fails and returns zero,
/// so a parser can read a record and check ok() once.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  std::uint8_t u8();
  std::uint64_t u64();
  double f64();
  std::uint64_t varint();
  std::int64_t svarint();
  /// At most `max_size` bytes; a view into the input.
  std::string_view string(std::size_t max_size);
  bool ok() const { return ok_; }
  void fail() { ok_ = false; }
  std::size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  std::string_view rest() const { return in_.substr(pos_); }
  void skip(std::size_t n);

 private:
  bool take(std::size_t n);
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace wire

}  // namespace replywatch::pipeline
