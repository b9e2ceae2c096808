// Late messages are counted by producer and logged once per batch (rate limited).
#include "daemon/pair_stage.hpp"

#include "pipeline/binary.hpp"

namespace replywatch::daemon {

namespace {

using pipeline::Applied;
using pipeline::BinaryReader;
using pipeline::BinaryWriter;

constexpr std::uint32_t kMagic = 0x52575053;  // "RWPS"
constexpr std::uint32_t kVersion = 1;

}  // namespace

PairStage::PairStage(std::shared_ptr<const Config> config, pipeline::AppealSink& out)
    : config_(std::move(config)),
      out_(out),
      pairing_(std::make_unique<pipeline::Pairing>(config_->registry, out_)) {
  pairing_->set_retention(message_retention(config_->daemon, config_->registry->horizon_secs));
}

LateCounts PairStage::apply(const std::string& producer, const std::vector<pipeline::Event>& events,
                            const std::vector<std::pair<std::int64_t, std::int64_t>>& migrations,
                            std::int64_t now) {
  for (const auto& [from, to] : migrations) {
    pairing_->add_migration(pipeline::Source::telegram, from, to);
  }
  const std::size_t index = clocks_.producer(producer);
  LateCounts late{};
  for (const auto& e : events) {
    const std::int64_t clock = pairing_->clock(e.source, e.conversation);
    const Applied applied = pairing_->on_event(e);
    if (applied == Applied::unowned) continue;
    clocks_.delivered(index, e.source, e.conversation);
    if (applied == Applied::parent_forgotten) {
      ++late[1];
    } else if (applied == Applied::before_retention) {
      ++late[2];
    } else if ((applied == Applied::paired || applied == Applied::repaired) && clock != kNoClock &&
               e.time <= clock) {
      ++late[0];
    }
  }
  const std::uint64_t total = late[0] + late[1] + late[2];
  if (total == 0) return late;
  auto& counts = late_[producer];
  for (std::size_t i = 0; i < late.size(); ++i) counts[i] += late[i];
  long long suppressed = 0;
  if (late_log_.allow(now, suppressed)) {
    log_warn("connector " + producer + ": " + std::to_string(total) + " of " +
             std::to_string(events.size()) + " messages late: " + std::to_string(late[0]) +
             " behind the watermark (re-paired exactly), " + std::to_string(late[1]) +
             " replying to a forgotten message (paired as if the parent were missing), " +
             std::to_string(late[2]) + " older than message_retention_secs (not paired)" +
             (suppressed ? " (" + std::to_string(suppressed) + " similar lines suppressed)" : ""));
  }
  return late;
}

void PairStage::set_watermark(const std::string& producer, std::int64_t watermark) {
  clocks_.set_watermark(clocks_.producer(producer), watermark);
}

void PairStage::retire(const std::string& producer) { clocks_.retire(clocks_.producer(producer)); }

void PairStage::advance() {
  pairing_->advance([this](pipeline::Source s, std::int64_t c) { return clocks_.clock_of(s, c); });
}

void PairStage::reload(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  pairing_->set_registry(config_->registry);
}

void PairStage::collect(Families& out) const {
  auto late = family("replywatch_late_messages_total",
                     "Messages that could not simply be applied in order, by reason.",
                     prometheus::MetricType::Counter);
  // Every configured connector appears, zero or not, so increase() sees the first one.
  std::map<std::string, LateCounts> all = late_;
  for (const auto& c : config_->connectors) all.try_emplace(c.name);
  for (const auto& [producer, counts] : all) {
    for (std::size_t i = 0; i < kLateReasons.size(); ++i) {
      add_value(late, {label("connector", producer), label("reason", std::string(kLateReasons[i]))},
                static_cast<double>(counts[i]));
    }
  }
  out.push_back(std::move(late));
}

void PairStage::serialize(std::string& out) const {
  BinaryWriter w(out);
  w.put(kMagic);
  w.put(kVersion);
  std::string pairing, clocks;
  pairing_->serialize(pairing);
  clocks_.serialize(clocks);
  w.put_bytes(pairing);
  w.put_bytes(clocks);
  w.put(static_cast<std::uint64_t>(late_.size()));
  for (const auto& [producer, counts] : late_) {
    w.put_bytes(producer);
    for (const auto n : counts) w.put(n);
  }
}

Result<void> PairStage::restore(std::string_view in) {
  BinaryReader r(in);
  std::uint32_t magic = 0, version = 0;
  std::string_view pairing_blob, clocks_blob;
  if (!r.get(magic) || magic != kMagic || !r.get(version) || version != kVersion ||
      !r.get_bytes(pairing_blob) || !r.get_bytes(clocks_blob)) {
    return make_error("pair state: damaged header");
  }
  auto pairing = std::make_unique<pipeline::Pairing>(config_->registry, out_);
  if (auto ok = pairing->restore(pairing_blob); !ok) return ok.error();
  Clocks clocks;
  if (auto ok = clocks.restore(clocks_blob); !ok) return ok.error();
  std::map<std::string, LateCounts> late;
  std::uint64_t n = 0;
  if (!r.get_count(n, 32)) return make_error("pair state: damaged late counts");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string producer;
    LateCounts counts{};
    bool ok = r.get_string(producer);
    for (auto& c : counts) ok = ok && r.get(c);
    if (!ok) return make_error("pair state: damaged late counts");
    late[producer] = counts;
  }
  if (!r.at_end()) return make_error("pair state: trailing bytes");
  pairing_ = std::move(pairing);
  pairing_->set_retention(message_retention(config_->daemon, config_->registry->horizon_secs));
  clocks_ = std::move(clocks);
  late_ = std::move(late);
  return {};
}

}  // namespace replywatch::daemon
