// Watermarks only move forward; ownership of a conversation is kept by producer name in
// snapshots, so a reordered configuration keeps it.
#include "daemon/watermarks.hpp"

#include <algorithm>

#include "pipeline/binary.hpp"

namespace replywatch::daemon {

namespace {
constexpr std::uint32_t kProgressMagic = 0x52574350;  // "RWCP"
constexpr std::uint32_t kClocksMagic = 0x5257434B;    // "RWCK"
constexpr std::uint32_t kVersion = 1;
}  // namespace

// ---- ConnectorProgress ----

void ConnectorProgress::configure(std::vector<Connector> connectors) {
  for (Connector& c : connectors) {
    const std::size_t old = index(c.name);
    if (old == connectors_.size()) continue;
    c.watermark = connectors_[old].watermark;
    c.caught_up = connectors_[old].caught_up;
  }
  connectors_ = std::move(connectors);
}

std::size_t ConnectorProgress::index(std::string_view name) const {
  for (std::size_t i = 0; i < connectors_.size(); ++i) {
    if (connectors_[i].name == name) return i;
  }
  return connectors_.size();
}

bool ConnectorProgress::caught_up(std::size_t connector, std::int64_t now) {
  if (connector >= connectors_.size()) return false;
  Connector& c = connectors_[connector];
  c.caught_up = true;
  if (c.push || now - lateness_ <= c.watermark) return false;
  c.watermark = now - lateness_;
  return true;
}

void ConnectorProgress::behind(std::size_t connector) {
  if (connector < connectors_.size()) connectors_[connector].caught_up = false;
}

void ConnectorProgress::tick(std::int64_t now, std::int64_t serving_since) {
  for (Connector& c : connectors_) {
    if (c.push && now - serving_since >= lateness_) {
      c.caught_up = true;
      c.watermark = std::max(c.watermark, now - lateness_);
    }
  }
}

std::int64_t ConnectorProgress::lag(std::size_t connector, std::int64_t now) const {
  if (connector >= connectors_.size() || connectors_[connector].watermark == kNoClock) return -1;
  return std::max<std::int64_t>(0, now - connectors_[connector].watermark);
}

void ConnectorProgress::serialize(std::string& out) const {
  pipeline::BinaryWriter w(out);
  w.put(kProgressMagic);
  w.put(kVersion);
  w.put(static_cast<std::uint64_t>(connectors_.size()));
  for (const Connector& c : connectors_) {
    w.put_bytes(c.name);
    w.put(c.watermark);
  }
}

Result<void> ConnectorProgress::restore(std::string_view in) {
  pipeline::BinaryReader r(in);
  std::uint32_t magic = 0, version = 0;
  std::uint64_t n = 0;
  if (!r.get(magic) || magic != kProgressMagic || !r.get(version) || version != kVersion ||
      !r.get_count(n, 16)) {
    return make_error("connector progress: damaged header");
  }
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string_view name;
    std::int64_t watermark = kNoClock;
    if (!r.get_bytes(name) || !r.get(watermark)) return make_error("connector progress: damaged");
    // A restored connector is behind until its first poll after this start.
    if (const std::size_t at = index(name); at < connectors_.size()) {
      connectors_[at].watermark = watermark;
    }
  }
  if (!r.at_end()) return make_error("connector progress: trailing bytes");
  return {};
}

// ---- Clocks ----

std::size_t Clocks::producer(std::string_view name) {
  for (std::size_t i = 0; i < producers_.size(); ++i) {
    if (producers_[i].name == name) return i;
  }
  if (producers_.size() == kMaxProducers) return kMaxProducers - 1;
  producers_.push_back({std::string(name), kNoClock, false});
  return producers_.size() - 1;
}

void Clocks::set_watermark(std::size_t producer, std::int64_t watermark) {
  if (producer >= producers_.size()) return;
  Producer& p = producers_[producer];
  p.watermark = std::max(p.watermark, watermark);
  p.retired = false;
}

void Clocks::retire(std::size_t producer) {
  if (producer < producers_.size()) producers_[producer].retired = true;
}

void Clocks::unretire(std::size_t producer) {
  if (producer < producers_.size()) producers_[producer].retired = false;
}

void Clocks::delivered(std::size_t producer, pipeline::Source source, std::int64_t conversation) {
  if (producer >= producers_.size()) return;
  *owners_.try_emplace({static_cast<std::int64_t>(source), conversation}, 0).first |=
      std::uint64_t{1} << producer;
}

std::int64_t Clocks::min_of(std::uint64_t mask) const {
  std::int64_t clock = kNoClock;
  bool any = false;
  for (std::size_t i = 0; i < producers_.size(); ++i) {
    if (!(mask >> i & 1) || producers_[i].retired) continue;
    clock = any ? std::min(clock, producers_[i].watermark) : producers_[i].watermark;
    any = true;
  }
  return any ? clock : kNoClock;
}

std::int64_t Clocks::clock_of(pipeline::Source source, std::int64_t conversation) const {
  const std::uint64_t* mask = owners_.find({static_cast<std::int64_t>(source), conversation});
  std::uint64_t live = 0;
  for (std::size_t i = 0; i < producers_.size(); ++i) {
    if (!producers_[i].retired) live |= std::uint64_t{1} << i;
  }
  return min_of(mask && (*mask & live) ? *mask : live);
}

void Clocks::serialize(std::string& out) const {
  pipeline::BinaryWriter w(out);
  w.put(kClocksMagic);
  w.put(kVersion);
  w.put(static_cast<std::uint64_t>(producers_.size()));
  for (const Producer& p : producers_) {
    w.put_bytes(p.name);
    w.put(p.watermark);
    w.put(static_cast<std::uint8_t>(p.retired));
  }
  w.put(static_cast<std::uint64_t>(owners_.size()));
  owners_.for_each([&](const pipeline::PairKey& k, std::uint64_t mask) {
    w.put(k.a);
    w.put(k.b);
    w.put(mask);
  });
}

Result<void> Clocks::restore(std::string_view in) {
  pipeline::BinaryReader r(in);
  std::uint32_t magic = 0, version = 0;
  std::uint64_t n = 0;
  if (!r.get(magic) || magic != kClocksMagic || !r.get(version) || version != kVersion ||
      !r.get_count(n, 17) || n > kMaxProducers) {
    return make_error("clocks: damaged header");
  }
  Clocks next;
  for (std::uint64_t i = 0; i < n; ++i) {
    Producer p;
    std::uint8_t retired = 0;
    if (!r.get_string(p.name) || !r.get(p.watermark) || !r.get(retired) || retired > 1) {
      return make_error("clocks: damaged producer");
    }
    p.retired = retired != 0;
    next.producers_.push_back(std::move(p));
  }
  if (!r.get_count(n, 24)) return make_error("clocks: damaged owners");
  for (std::uint64_t i = 0; i < n; ++i) {
    pipeline::PairKey k;
    std::uint64_t mask = 0;
    if (!r.get(k.a) || !r.get(k.b) || !r.get(mask)) return make_error("clocks: damaged owners");
    next.owners_.try_emplace(k, mask);
  }
  if (!r.at_end()) return make_error("clocks: trailing bytes");
  *this = std::move(next);
  return {};
}

}  // namespace replywatch::daemon
