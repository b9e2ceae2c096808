// The relative-error quantile sketch, its Kaplan–Meier median, and the byte encoding shared
// with the rolling-statistics snapshot.
#include "pipeline/sketch.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <limits>

namespace replywatch::pipeline {

namespace {

constexpr std::uint8_t kSketchFormat = 1;
// Natural logs just outside the positive doubles (denormal minimum, maximum): every
// positive double maps to an index in between.
constexpr double kLogSmallest = -745.2;
constexpr double kLogLargest = 709.8;

double checked_accuracy(double a) {
  const bool valid = a >= QuantileSketch::kMinAccuracy && a <= QuantileSketch::kMaxAccuracy;
  assert(valid && "relative accuracy out of range");
  if (valid) return a;
  return a > QuantileSketch::kMaxAccuracy   ? QuantileSketch::kMaxAccuracy
         : a < QuantileSketch::kMinAccuracy ? QuantileSketch::kMinAccuracy
                                            : QuantileSketch::kDefaultAccuracy;  // NaN
}

}  // namespace

QuantileSketch::QuantileSketch(double relative_accuracy)
    : accuracy_(checked_accuracy(relative_accuracy)),
      log_gamma_(std::log1p(accuracy_) - std::log1p(-accuracy_)) {}

std::int32_t QuantileSketch::min_index() const {
  return static_cast<std::int32_t>(std::floor(kLogSmallest / log_gamma_));
}

std::int32_t QuantileSketch::max_index() const {
  return static_cast<std::int32_t>(std::ceil(kLogLargest / log_gamma_));
}

std::int32_t QuantileSketch::index_of(double positive) const {
  const double exact = std::ceil(std::log(positive) / log_gamma_);
  // Written so that +inf (and anything past the top) lands in the top bucket.
  if (!(exact < static_cast<double>(max_index()))) return max_index();
  return std::max(static_cast<std::int32_t>(exact), min_index());
}

double QuantileSketch::bucket_value(std::int32_t index) const {
  // gamma^i · 2/(1+gamma), and 2/(1+gamma) = 1−a; in log space so the top bucket cannot
  // overflow before the clamp.
  const double v = std::exp(static_cast<double>(index) * log_gamma_ + std::log1p(-accuracy_));
  return std::min(v, std::numeric_limits<double>::max());
}

void QuantileSketch::add(double value, std::uint64_t count) { add_key(key_of(value), count); }

QuantileSketch::Key QuantileSketch::key_of(double value) const {
  if (!(value > 0)) return {};
  return {index_of(value), false};
}

void QuantileSketch::add_key(Key key, std::uint64_t count) {
  assert((key.zero || (key.index >= min_index() && key.index <= max_index())) &&
         "key of a sketch with another accuracy");
  if (count == 0) return;
  count_ += count;
  if (key.zero) {
    zero_count_ += count;
    return;
  }
  add_bucket(key.index, count);
}

void QuantileSketch::remove(double value, std::uint64_t count) {
  remove_key(key_of(value), count);
}

void QuantileSketch::remove_key(Key key, std::uint64_t count) {
  assert((key.zero || (key.index >= min_index() && key.index <= max_index())) &&
         "key of a sketch with another accuracy");
  if (count == 0) return;
  if (key.zero) {
    assert(count <= zero_count_ && "removing more than the zero bucket holds");
    const std::uint64_t taken = std::min(count, zero_count_);
    zero_count_ -= taken;
    count_ -= taken;
    return;
  }
  const auto it = std::lower_bound(buckets_.begin(), buckets_.end(), key.index,
                                   [](const Bucket& b, std::int32_t i) { return b.index < i; });
  if (it == buckets_.end() || it->index != key.index) {
    assert(false && "removing from an empty bucket");
    return;
  }
  assert(count <= it->count && "removing more than the bucket holds");
  const std::uint64_t taken = std::min(count, it->count);
  it->count -= taken;
  count_ -= taken;
  // Buckets hold counts > 0: quantile, merge, serialization and operator== rely on it.
  if (it->count == 0) buckets_.erase(it);
}

void QuantileSketch::add_bucket(std::int32_t index, std::uint64_t count) {
  // Replies arrive roughly in order of size within a window often enough that the append
  // check pays for itself.
  if (buckets_.empty() || buckets_.back().index < index) {
    buckets_.push_back({index, count});
    return;
  }
  const auto it = std::lower_bound(buckets_.begin(), buckets_.end(), index,
                                   [](const Bucket& b, std::int32_t i) { return b.index < i; });
  if (it->index == index) {
    it->count += count;
  } else {
    buckets_.insert(it, {index, count});
  }
}

void QuantileSketch::merge(const QuantileSketch& other) {
  if (other.empty()) return;
  if (&other == this) {
    zero_count_ *= 2;
    count_ *= 2;
    for (Bucket& b : buckets_) b.count *= 2;
    return;
  }
  if (other.log_gamma_ != log_gamma_) {
    assert(false && "merging sketches of different accuracy");
    other.for_each_bucket([this](double v, std::uint64_t c) { add(v, c); });
    return;
  }
  zero_count_ += other.zero_count_;
  count_ += other.count_;
  const std::vector<Bucket>& theirs = other.buckets_;
  std::size_t fresh = 0;
  for (std::size_t i = 0, j = 0; j < theirs.size();) {
    if (i < buckets_.size() && buckets_[i].index < theirs[j].index) {
      ++i;
    } else {
      if (i >= buckets_.size() || buckets_[i].index != theirs[j].index) ++fresh;
      ++j;
    }
  }
  // Merge from the back into the grown vector: no second buffer, and writes never overtake
  // the unread part of our own buckets.
  std::size_t i = buckets_.size();
  std::size_t j = theirs.size();
  std::size_t k = i + fresh;
  buckets_.resize(k);
  while (j > 0) {
    if (i > 0 && buckets_[i - 1].index > theirs[j - 1].index) {
      buckets_[--k] = buckets_[--i];
    } else if (i > 0 && buckets_[i - 1].index == theirs[j - 1].index) {
      --i;
      --j;
      buckets_[--k] = {theirs[j].index, buckets_[i].count + theirs[j].count};
    } else {
      buckets_[--k] = theirs[--j];
    }
  }
}

void QuantileSketch::clear() {
  zero_count_ = 0;
  count_ = 0;
  buckets_.clear();
}

std::optional<double> QuantileSketch::quantile(double q) const {
  if (count_ == 0) return std::nullopt;
  if (!(q >= 0.0)) q = 0.0;  // also NaN
  if (q > 1.0) q = 1.0;
  const double rank = q * static_cast<double>(count_ - 1);
  const std::uint64_t lo = std::min(static_cast<std::uint64_t>(std::floor(rank)), count_ - 1);
  const std::uint64_t hi = std::min(lo + 1, count_ - 1);
  const double frac = rank - static_cast<double>(lo);

  double lo_value = 0.0, hi_value = 0.0;
  bool lo_found = false;
  std::uint64_t below = zero_count_;  // values at ranks < below are known
  if (hi < below) return 0.0;
  if (lo < below) lo_found = true;
  for (const Bucket& b : buckets_) {
    below += b.count;
    if (!lo_found && lo < below) {
      lo_value = bucket_value(b.index);
      lo_found = true;
    }
    if (hi < below) {
      hi_value = bucket_value(b.index);
      break;
    }
  }
  return lo_value + (hi_value - lo_value) * frac;
}

void QuantileSketch::serialize(std::string& out) const {
  wire::put_u8(out, kSketchFormat);
  wire::put_f64(out, accuracy_);
  wire::put_varint(out, zero_count_);
  wire::put_varint(out, buckets_.size());
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    // Deltas keep neighbouring buckets to a byte or two.
    if (i == 0) {
      wire::put_svarint(out, buckets_[i].index);
    } else {
      wire::put_varint(out, static_cast<std::uint64_t>(buckets_[i].index - buckets_[i - 1].index));
    }
    wire::put_varint(out, buckets_[i].count);
  }
}

Result<QuantileSketch> QuantileSketch::deserialize(std::string_view& in) {
  wire::Reader r(in);
  const std::uint8_t format = r.u8();
  if (!r.ok()) return make_error("sketch: truncated");
  if (format != kSketchFormat) return make_error("sketch: unsupported format");
  const double accuracy = r.f64();
  const std::uint64_t zero = r.varint();
  const std::uint64_t n = r.varint();
  if (!r.ok()) return make_error("sketch: truncated");
  if (!(accuracy >= kMinAccuracy && accuracy <= kMaxAccuracy)) {
    return make_error("sketch: relative accuracy out of range");
  }
  // Every bucket takes at least two bytes: this bounds the allocation by the input size.
  if (n > r.remaining() / 2) return make_error("sketch: bucket count exceeds the input");

  QuantileSketch s(accuracy);
  const std::int64_t lowest = s.min_index();
  const std::int64_t highest = s.max_index();
  std::uint64_t total = zero;
  s.buckets_.reserve(static_cast<std::size_t>(n));
  std::int64_t index = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (i == 0) {
      index = r.svarint();
    } else {
      const std::uint64_t delta = r.varint();
      if (delta == 0 || delta > static_cast<std::uint64_t>(highest - index)) {
        return make_error("sketch: bucket indexes not ascending or out of range");
      }
      index += static_cast<std::int64_t>(delta);
    }
    const std::uint64_t count = r.varint();
    if (!r.ok()) return make_error("sketch: truncated");
    if (index < lowest || index > highest) return make_error("sketch: bucket index out of range");
    if (count == 0) return make_error("sketch: empty bucket");
    if (count > std::numeric_limits<std::uint64_t>::max() - total) {
      return make_error("sketch: count overflows");
    }
    total += count;
    s.buckets_.push_back({static_cast<std::int32_t>(index), count});
  }
  s.zero_count_ = zero;
  s.count_ = total;
  in = r.rest();
  return s;
}

bool operator==(const QuantileSketch& a, const QuantileSketch& b) {
  return a.accuracy_ == b.accuracy_ && a.zero_count_ == b.zero_count_ && a.count_ == b.count_ &&
         a.buckets_ == b.buckets_;
}

namespace detail {

namespace {
// Survival is a product of fractions, so an exact 0.5 can come out a few ulps off.
constexpr double kHalfTolerance = 1e-12;
}  // namespace

void KaplanMeierFold::event(double t, double answered, double at_risk) {
  survival_ *= 1.0 - answered / at_risk;
  if (median_) return;
  if (at_half_) {
    // Any answer after the flat stretch takes the curve below 0.5. Written as t1 + (t2−t1)/2
    // so that the top bucket's representative cannot overflow.
    median_ = *at_half_ + (t - *at_half_) / 2;
  } else if (std::abs(survival_ - 0.5) <= 0.5 * kHalfTolerance) {
    at_half_ = t;
  } else if (survival_ < 0.5) {
    median_ = t;
  }
}

}  // namespace detail

KaplanMeier kaplan_meier(const QuantileSketch& answered, const QuantileSketch& censored) {
  KaplanMeier out;
  out.events = answered.count();
  out.censored = censored.count();
  const auto top = [](const QuantileSketch& s) {
    return s.buckets_.empty() ? 0.0 : s.bucket_value(s.buckets_.back().index);
  };
  out.max_time = std::max(top(answered), top(censored));
  // Position −1 is the zero bucket; a cursor past the end is done.
  struct Cursor {
    const QuantileSketch& s;
    std::ptrdiff_t i;
    explicit Cursor(const QuantileSketch& sketch) : s(sketch), i(sketch.zero_count_ > 0 ? -1 : 0) {}
    bool done() const { return i >= static_cast<std::ptrdiff_t>(s.buckets_.size()); }
    double value() const {
      return i < 0 ? 0.0 : s.bucket_value(s.buckets_[static_cast<std::size_t>(i)].index);
    }
    std::uint64_t count() const {
      return i < 0 ? s.zero_count_ : s.buckets_[static_cast<std::size_t>(i)].count;
    }
  };
  Cursor a(answered);
  Cursor c(censored);
  double at_risk = static_cast<double>(answered.count()) + static_cast<double>(censored.count());
  detail::KaplanMeierFold fold;
  // Same accuracy means the same index gives the bit-identical value, so a shared bucket
  // compares equal and counts as a tie.
  for (; !a.done(); ++a.i) {
    const double t = a.value();
    for (; !c.done() && c.value() < t; ++c.i) at_risk -= static_cast<double>(c.count());
    const auto d = static_cast<double>(a.count());
    fold.event(t, d, at_risk);
    at_risk -= d;
  }
  out.median = fold.median();
  out.final_survival = fold.survival();
  return out;
}

std::optional<double> kaplan_meier_median(const QuantileSketch& answered,
                                          const QuantileSketch& censored) {
  return kaplan_meier(answered, censored).median;
}

namespace wire {

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_f64(std::string& out, double v) { put_u64(out, std::bit_cast<std::uint64_t>(v)); }

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_svarint(std::string& out, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  put_varint(out, (u << 1) ^ (v < 0 ? ~std::uint64_t{0} : 0));
}

void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

bool Reader::take(std::size_t n) {
  if (!ok_ || n > in_.size() - pos_) {
    ok_ = false;
    return false;
  }
  pos_ += n;
  return true;
}

void Reader::skip(std::size_t n) { take(n); }

std::uint8_t Reader::u8() {
  if (!take(1)) return 0;
  return static_cast<std::uint8_t>(in_[pos_ - 1]);
}

std::uint64_t Reader::u64() {
  if (!take(8)) return 0;
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | static_cast<std::uint8_t>(in_[pos_ - 8 + static_cast<std::size_t>(i)]);
  }
  return v;
}

double Reader::f64() { return std::bit_cast<double>(u64()); }

std::uint64_t Reader::varint() {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    const std::uint8_t b = u8();
    if (!ok_) return 0;
    // The tenth byte holds bit 63 only; anything more would silently wrap.
    if (shift == 63 && b > 1) break;
    v |= std::uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return v;
  }
  ok_ = false;
  return 0;
}

std::int64_t Reader::svarint() {
  const std::uint64_t u = varint();
  return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
}

std::string_view Reader::string(std::size_t max_size) {
  const std::uint64_t size = varint();
  if (!ok_ || size > max_size || size > in_.size() - pos_) {
    ok_ = false;
    return {};
  }
  const std::string_view s = in_.substr(pos_, static_cast<std::size_t>(size));
  pos_ += static_cast<std::size_t>(size);
  return s;
}

}  // namespace wire

}  // namespace replywatch::pipeline
