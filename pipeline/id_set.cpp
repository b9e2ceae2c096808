// The encoding frames every 32-bit part with its own length, so a damaged size can
// never make the bitmap reader run past its part (CRoaring's own 64-bit reader does
// not bound its header read).
#include "pipeline/id_set.hpp"

#include <algorithm>
#include <roaring/roaring.hh>

#include "pipeline/binary.hpp"
#include "pipeline/sketch.hpp"  // wire:: varints

namespace replywatch::pipeline {

struct IdSet::Part {
  std::uint32_t high = 0;
  ::Roaring bits;
};

namespace {

std::uint32_t high_of(std::int64_t id) {
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(id) >> 32);
}
std::uint32_t low_of(std::int64_t id) {
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(id));
}

constexpr std::uint32_t kMagic = 0x53444952;  // "RIDS"

}  // namespace

IdSet::IdSet() = default;
IdSet::~IdSet() = default;
IdSet::IdSet(IdSet&&) noexcept = default;
IdSet& IdSet::operator=(IdSet&&) noexcept = default;

const IdSet::Part* IdSet::part_for(std::uint32_t high) const {
  // Ids grow: the newest part is the usual answer.
  if (!parts_.empty() && parts_.back()->high == high) return parts_.back().get();
  const auto it = std::lower_bound(parts_.begin(), parts_.end(), high,
                                   [](const auto& p, std::uint32_t h) { return p->high < h; });
  return it != parts_.end() && (*it)->high == high ? it->get() : nullptr;
}

IdSet::Part* IdSet::part_for(std::uint32_t high, bool create) {
  if (auto* found = const_cast<Part*>(std::as_const(*this).part_for(high)); found || !create) {
    return found;
  }
  const auto it = std::lower_bound(parts_.begin(), parts_.end(), high,
                                   [](const auto& p, std::uint32_t h) { return p->high < h; });
  auto part = std::make_unique<Part>();
  part->high = high;
  return parts_.insert(it, std::move(part))->get();
}

bool IdSet::in_parts(std::int64_t id) const {
  if (id > parts_max_ && id >= 0) return false;
  const Part* p = part_for(high_of(id));
  return p && p->bits.contains(low_of(id));
}

void IdSet::flush() const {
  if (!run_) return;
  run_ = false;
  auto& self = const_cast<IdSet&>(*this);
  // The run may cross 32-bit parts: add it part by part.
  for (std::int64_t lo = run_lo_; lo <= run_hi_;) {
    const std::uint32_t high = high_of(lo);
    const auto part_end =
        static_cast<std::int64_t>(((static_cast<std::uint64_t>(high) + 1) << 32) - 1);
    const std::int64_t hi = std::min(run_hi_, part_end);
    self.part_for(high, true)
        ->bits.addRange(low_of(lo), static_cast<std::uint64_t>(low_of(hi)) + 1);
    lo = hi + 1;
  }
  parts_max_ = std::max(parts_max_, run_hi_);
}

bool IdSet::insert(std::int64_t id) {
  if (run_) {
    if (id >= run_lo_ && id <= run_hi_) return false;
    if (id == run_hi_ + 1 && !in_parts(id)) {
      run_hi_ = id;
      return true;
    }
  }
  if (in_parts(id)) return false;
  flush();
  if (id < 0) {  // not a platform's id, but kept all the same
    part_for(high_of(id), true)->bits.add(low_of(id));
    return true;
  }
  run_ = true;
  run_lo_ = run_hi_ = id;
  return true;
}

bool IdSet::contains(std::int64_t id) const {
  return (run_ && id >= run_lo_ && id <= run_hi_) || in_parts(id);
}

std::uint64_t IdSet::size() const {
  std::uint64_t n = run_ ? static_cast<std::uint64_t>(run_hi_ - run_lo_ + 1) : 0;
  for (const auto& p : parts_) n += p->bits.cardinality();
  return n;
}

void IdSet::optimize() {
  flush();
  for (auto& p : parts_) {
    p->bits.runOptimize();
    p->bits.shrinkToFit();
  }
}

std::size_t IdSet::memory_bytes() const {
  std::size_t n = parts_.capacity() * sizeof(std::unique_ptr<Part>);
  for (const auto& p : parts_) n += sizeof(Part) + p->bits.getSizeInBytes(false);
  return n;
}

// Encoding: magic, then per part its high 32 bits and its runs of consecutive ids, each
// as (gap from the previous run's end, length − 1) in LEB128 varints. CRoaring's own
// "portable" format is not used: Debian's 0.2.66 writes a bitset container of few values
// in a form its readers must take for an array.
void IdSet::serialize(std::string& out) const {
  flush();
  BinaryWriter w(out);
  w.put(kMagic);
  w.put(static_cast<std::uint64_t>(parts_.size()));
  std::vector<std::uint32_t> values;
  std::string runs;
  for (const auto& p : parts_) {
    values.resize(static_cast<std::size_t>(p->bits.cardinality()));
    if (!values.empty()) p->bits.toUint32Array(values.data());
    runs.clear();
    std::uint64_t count = 0;
    std::uint64_t previous_end = 0;  // one past the previous run
    for (std::size_t i = 0; i < values.size();) {
      std::size_t j = i + 1;
      while (j < values.size() && values[j] == values[j - 1] + 1) ++j;
      wire::put_varint(runs, values[i] - previous_end);
      wire::put_varint(runs, j - i - 1);
      previous_end = static_cast<std::uint64_t>(values[j - 1]) + 1;
      ++count;
      i = j;
    }
    w.put(p->high);
    w.put(count);
    w.put_bytes(runs);
  }
}

Result<IdSet> IdSet::deserialize(std::string_view& in) {
  BinaryReader r(in);
  std::uint32_t magic = 0;
  std::uint64_t n = 0;
  if (!r.get(magic) || magic != kMagic) return make_error("id set: bad magic");
  if (!r.get_count(n, 20)) return make_error("id set: bad part count");
  IdSet set;
  set.parts_.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint32_t high = 0;
    std::uint64_t count = 0;
    std::string_view bytes;
    if (!r.get(high) || !r.get(count) || !r.get_bytes(bytes))
      return make_error("id set: truncated");
    if (!set.parts_.empty() && set.parts_.back()->high >= high) {
      return make_error("id set: parts out of order");
    }
    if (count > bytes.size() / 2) return make_error("id set: bad run count");
    auto part = std::make_unique<Part>();
    part->high = high;
    wire::Reader runs(bytes);
    std::uint64_t start = 0;
    for (std::uint64_t k = 0; k < count; ++k) {
      const std::uint64_t gap = runs.varint();
      const std::uint64_t extra = runs.varint();
      if (!runs.ok()) return make_error("id set: truncated run");
      // Runs ascend, do not touch, and stay within the part's 32 bits.
      const std::uint64_t lo = start + gap;
      if (lo < start || lo > 0xFFFFFFFFull || extra > 0xFFFFFFFFull - lo) {
        return make_error("id set: run out of range");
      }
      part->bits.addRange(lo, lo + extra + 1);
      start = lo + extra + 1;
      if (k + 1 < count && start > 0xFFFFFFFFull) return make_error("id set: run out of range");
    }
    if (runs.remaining() != 0) return make_error("id set: trailing bytes in a part");
    if (count > 0) {
      const auto top =
          static_cast<std::int64_t>((static_cast<std::uint64_t>(high) << 32) | (start - 1));
      set.parts_max_ = std::max(set.parts_max_, top);
    }
    set.parts_.push_back(std::move(part));
  }
  in.remove_prefix(r.position());
  return Result<IdSet>(boost::system::in_place_value, std::move(set));
}

}  // namespace replywatch::pipeline
