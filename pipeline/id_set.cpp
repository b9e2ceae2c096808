// The encoding frames every 32-bit part with its own length, so a damaged size can
// never make the bitmap reader run past its part (CRoaring's own 64-bit reader does
// not bound its header read).
#include "pipeline/id_set.hpp"

#include "pipeline/binary.hpp"

#include <roaring/roaring.hh>

#include <algorithm>

namespace replywatch::pipeline {

struct IdSet::Part {
  std::uint32_t high = 0;
  ::Roaring bits;
};

namespace {

std::uint32_t high_of(std::int64_t id) { return static_cast<std::uint32_t>(static_cast<std::uint64_t>(id) >> 32); }
std::uint32_t low_of(std::int64_t id) { return static_cast<std::uint32_t>(static_cast<std::uint64_t>(id)); }

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

bool IdSet::insert(std::int64_t id) {
  return part_for(high_of(id), true)->bits.addChecked(low_of(id));
}

bool IdSet::contains(std::int64_t id) const {
  const Part* p = part_for(high_of(id));
  return p && p->bits.contains(low_of(id));
}

std::uint64_t IdSet::size() const {
  std::uint64_t n = 0;
  for (const auto& p : parts_) n += p->bits.cardinality();
  return n;
}

void IdSet::optimize() {
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

void IdSet::serialize(std::string& out) const {
  BinaryWriter w(out);
  w.put(kMagic);
  w.put(static_cast<std::uint64_t>(parts_.size()));
  std::string buf;
  for (const auto& p : parts_) {
    buf.resize(p->bits.getSizeInBytes(true));
    buf.resize(p->bits.write(buf.data(), true));
    w.put(p->high);
    w.put_bytes(buf);
  }
}

Result<IdSet> IdSet::deserialize(std::string_view& in) {
  BinaryReader r(in);
  std::uint32_t magic = 0;
  std::uint64_t n = 0;
  if (!r.get(magic) || magic != kMagic) return make_error("id set: bad magic");
  if (!r.get_count(n, 12)) return make_error("id set: bad part count");
  IdSet set;
  set.parts_.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint32_t high = 0;
    std::string_view bytes;
    if (!r.get(high) || !r.get_bytes(bytes)) return make_error("id set: truncated");
    if (!set.parts_.empty() && set.parts_.back()->high >= high) {
      return make_error("id set: parts out of order");
    }
    auto part = std::make_unique<Part>();
    part->high = high;
    try {
      part->bits = ::Roaring::readSafe(bytes.data(), bytes.size());
    } catch (const std::exception&) {
      return make_error("id set: damaged bitmap");
    }
    if (part->bits.getSizeInBytes(true) != bytes.size()) return make_error("id set: damaged bitmap");
    set.parts_.push_back(std::move(part));
  }
  in.remove_prefix(r.position());
  return Result<IdSet>(boost::system::in_place_value, std::move(set));
}

}  // namespace replywatch::pipeline
