// Watermarks only move forward; a connector's ownership of a conversation is kept
// by name in snapshots, so a reordered configuration keeps it.
#include "daemon/watermarks.hpp"

#include <algorithm>

#include "pipeline/binary.hpp"

namespace replywatch::daemon {

namespace {
constexpr std::uint32_t kMagic = 0x5257574D;  // "RWWM"
constexpr std::uint32_t kVersion = 1;
}  // namespace

void Watermarks::configure(std::vector<Connector> connectors) {
  if (connectors.size() > kMaxConnectors) connectors.resize(kMaxConnectors);
  // Owner bits follow connectors by name.
  std::vector<std::size_t> moved(connectors_.size(), kMaxConnectors);
  for (std::size_t i = 0; i < connectors.size(); ++i) {
    const std::size_t old = index(connectors[i].name);
    if (old == kMaxConnectors) continue;
    moved[old] = i;
    connectors[i].watermark = connectors_[old].watermark;
    connectors[i].caught_up = connectors_[old].caught_up;
  }
  owners_.for_each([&](const pipeline::PairKey&, const std::uint64_t& mask) {
    std::uint64_t next = 0;
    for (std::size_t b = 0; b < moved.size(); ++b) {
      if ((mask >> b & 1) && moved[b] != kMaxConnectors) next |= std::uint64_t{1} << moved[b];
    }
    const_cast<std::uint64_t&>(mask) = next;
  });
  connectors_ = std::move(connectors);
}

std::size_t Watermarks::index(std::string_view name) const {
  for (std::size_t i = 0; i < connectors_.size(); ++i) {
    if (connectors_[i].name == name) return i;
  }
  return kMaxConnectors;
}

void Watermarks::delivered(std::size_t connector, pipeline::Source source,
                           std::int64_t conversation) {
  if (connector >= connectors_.size()) return;
  *owners_.try_emplace({static_cast<std::int64_t>(source), conversation}, 0).first |=
      std::uint64_t{1} << connector;
}

bool Watermarks::caught_up(std::size_t connector, std::int64_t now) {
  if (connector >= connectors_.size()) return false;
  Connector& c = connectors_[connector];
  c.caught_up = true;
  if (c.push || now - lateness_ <= c.watermark) return false;
  c.watermark = now - lateness_;
  return true;
}

void Watermarks::behind(std::size_t connector) {
  if (connector < connectors_.size()) connectors_[connector].caught_up = false;
}

void Watermarks::tick(std::int64_t now, std::int64_t serving_since) {
  for (Connector& c : connectors_) {
    if (c.push && now - serving_since >= lateness_) {
      c.caught_up = true;
      c.watermark = std::max(c.watermark, now - lateness_);
    }
  }
}

std::int64_t Watermarks::min_of(std::uint64_t mask) const {
  std::int64_t clock = kNoClock;
  bool any = false;
  for (std::size_t i = 0; i < connectors_.size(); ++i) {
    if (!(mask >> i & 1)) continue;
    clock = any ? std::min(clock, connectors_[i].watermark) : connectors_[i].watermark;
    any = true;
  }
  return any ? clock : kNoClock;
}

std::int64_t Watermarks::clock_of(pipeline::Source source, std::int64_t conversation) const {
  const std::uint64_t* mask = owners_.find({static_cast<std::int64_t>(source), conversation});
  const std::uint64_t all =
      connectors_.size() >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << connectors_.size()) - 1;
  return min_of(mask && (*mask & all) ? *mask : all);
}

std::int64_t Watermarks::lag(std::size_t connector, std::int64_t now) const {
  if (connector >= connectors_.size() || connectors_[connector].watermark == kNoClock) return -1;
  return std::max<std::int64_t>(0, now - connectors_[connector].watermark);
}

void Watermarks::serialize(std::string& out) const {
  pipeline::BinaryWriter w(out);
  w.put(kMagic);
  w.put(kVersion);
  w.put(static_cast<std::uint64_t>(connectors_.size()));
  for (const Connector& c : connectors_) {
    w.put_bytes(c.name);
    w.put(c.watermark);
  }
  w.put(static_cast<std::uint64_t>(owners_.size()));
  owners_.for_each([&](const pipeline::PairKey& k, std::uint64_t mask) {
    w.put(k.a);
    w.put(k.b);
    w.put(mask);
  });
}

Result<void> Watermarks::restore(std::string_view in) {
  pipeline::BinaryReader r(in);
  std::uint32_t magic = 0, version = 0;
  if (!r.get(magic) || magic != kMagic || !r.get(version) || version != kVersion) {
    return make_error("watermarks: bad magic or version");
  }
  std::uint64_t n = 0;
  if (!r.get_count(n, 16) || n > kMaxConnectors)
    return make_error("watermarks: damaged connectors");
  // Old bit → new index, by name; progress of connectors no longer configured is dropped.
  std::vector<std::size_t> moved(n, kMaxConnectors);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string_view name;
    std::int64_t watermark = kNoClock;
    if (!r.get_bytes(name) || !r.get(watermark))
      return make_error("watermarks: damaged connectors");
    const std::size_t now_at = index(name);
    moved[i] = now_at;
    // A restored connector is behind until its first poll after this start.
    if (now_at != kMaxConnectors) connectors_[now_at].watermark = watermark;
  }
  if (!r.get_count(n, 24)) return make_error("watermarks: damaged owners");
  owners_.clear();
  for (std::uint64_t i = 0; i < n; ++i) {
    pipeline::PairKey k;
    std::uint64_t mask = 0, next = 0;
    if (!r.get(k.a) || !r.get(k.b) || !r.get(mask)) return make_error("watermarks: damaged owners");
    for (std::size_t b = 0; b < moved.size(); ++b) {
      if ((mask >> b & 1) && moved[b] != kMaxConnectors) next |= std::uint64_t{1} << moved[b];
    }
    owners_.try_emplace(k, next);
  }
  if (!r.at_end()) return make_error("watermarks: trailing bytes");
  return {};
}

}  // namespace replywatch::daemon
