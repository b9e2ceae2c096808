// Records into stages and appeal changes into records. Both tasks act only on what their
// records say (times included: the records' sent_at, never the wall clock), except for
// what depends on "now" by definition: where an appeal falls in the rolling windows.
#include "daemon/kafka/tasks.hpp"

#include "pipeline/binary.hpp"

namespace replywatch::daemon::kafka {

namespace {

constexpr std::uint32_t kPairMagic = 0x5257504B;       // "RWPK"
constexpr std::uint32_t kAggregateMagic = 0x5257414B;  // "RWAK"
constexpr std::uint32_t kVersion = 1;

using pipeline::BinaryReader;
using pipeline::BinaryWriter;

std::string agency_id(const pipeline::Registry& registry, std::int32_t agency) {
  return agency >= 0 && static_cast<std::size_t>(agency) < registry.agencies.size()
             ? registry.agencies[static_cast<std::size_t>(agency)].id
             : std::string();
}

}  // namespace

// ---- PairTask ----

PairTask::PairTask(int partition, std::shared_ptr<const Config> config, const Layout& layout)
    : partition_(partition),
      config_(config),
      layout_(layout),
      topics_(config->bus.topic_prefix),
      stage_(config, *this) {}

void PairTask::broadcast(const std::string& value) {
  for (int q = 0; q < layout_.appeals; ++q) out_->send(topics_.appeals, q, {}, &value);
}

void PairTask::on_appeal(const pipeline::Appeal* before, const pipeline::Appeal* after) {
  if (!out_) return;
  const auto& registry = *config_->registry;
  buffer_.clear();
  write_appeal(buffer_, partition_, registry, before, after);
  const std::string agency = agency_id(registry, (after ? after : before)->agency);
  out_->send(topics_.appeals, partition_for(agency, layout_.appeals), agency, &buffer_);
}

void PairTask::on_forgotten_deletion(pipeline::Source source, std::int64_t conversation,
                                     std::int64_t message) {
  if (!out_) return;
  buffer_.clear();
  write_forgotten_deletion(buffer_, partition_, source, conversation, message);
  broadcast(buffer_);
}

void PairTask::retire_silent() {
  const std::int64_t timeout = config_->bus.producer_timeout_secs;
  for (const auto& p : stage_.clocks().producers()) {
    if (p.retired) continue;
    const auto seen = last_seen_.find(p.name);
    if (seen == last_seen_.end() || seen->second >= records_time_ - timeout) continue;
    stage_.retire(p.name);
    clocks_changed_ = true;
    if (out_) {
      log_info("kafka pair: events partition " + std::to_string(partition_) + ": producer " +
               p.name + " silent for more than " + std::to_string(timeout) +
               " s; its watermark no longer holds conversations back");
    }
  }
}

Result<void> PairTask::apply(std::string_view, std::string_view value, Output* out,
                             std::int64_t now) {
  if (auto ok = reader_.read(value, record_); !ok) return ok;
  out_ = out;
  records_time_ = std::max(records_time_, record_.sent_at);
  auto& seen = last_seen_[record_.producer];
  seen = std::max(seen, record_.sent_at);
  switch (record_.type) {
    case EventsRecord::Type::events: {
      // Which producers deliver a conversation makes its clock: when that changes, the
      // aggregate stage hears it (before it hears the clocks move again).
      const std::size_t index = stage_.producer(record_.producer);
      std::vector<std::pair<pipeline::PairKey, std::uint64_t>> before;
      for (const auto& e : record_.events) {
        const pipeline::PairKey key{static_cast<std::int64_t>(e.source), e.conversation};
        if (std::none_of(before.begin(), before.end(),
                         [&](const auto& b) { return b.first == key; })) {
          before.emplace_back(key, stage_.clocks().owners(e.source, e.conversation));
        }
      }
      stage_.apply(record_.producer, record_.events, {}, now);
      for (const auto& [key, mask] : before) {
        const auto source = static_cast<pipeline::Source>(key.a);
        const std::uint64_t after = stage_.clocks().owners(source, key.b);
        if (after == mask || !out_) continue;
        std::vector<std::string> names;
        const auto& producers = stage_.clocks().producers();
        for (std::size_t i = 0; i < producers.size(); ++i) {
          if (after >> i & 1) names.push_back(producers[i].name);
        }
        buffer_.clear();
        write_conversation(buffer_, partition_, source, key.b, names);
        broadcast(buffer_);
      }
      (void)index;
      break;
    }
    case EventsRecord::Type::watermark:
      stage_.set_watermark(record_.producer, record_.watermark);
      retire_silent();
      stage_.advance();
      clocks_changed_ = true;
      break;
    case EventsRecord::Type::migration:
      stage_.apply(record_.producer, {}, {{record_.from, record_.to}}, now);
      break;
  }
  out_ = nullptr;
  return {};
}

void PairTask::flush(Output& out, std::int64_t) {
  if (!clocks_changed_) return;
  std::vector<ProducerClock> clocks;
  for (const auto& p : stage_.clocks().producers()) {
    clocks.push_back({p.name, p.watermark, p.retired});
  }
  out_ = &out;
  buffer_.clear();
  write_clock(buffer_, partition_, records_time_, clocks);
  broadcast(buffer_);
  out_ = nullptr;
  clocks_changed_ = false;
}

void PairTask::reload(std::shared_ptr<const Config> config) {
  config_ = config;
  stage_.reload(config);
}

void PairTask::serialize(std::string& out) const {
  BinaryWriter w(out);
  w.put(kPairMagic);
  w.put(kVersion);
  std::string stage;
  stage_.serialize(stage);
  w.put_bytes(stage);
  w.put(records_time_);
  w.put(static_cast<std::uint64_t>(last_seen_.size()));
  for (const auto& [name, t] : last_seen_) {
    w.put_bytes(name);
    w.put(t);
  }
}

Result<void> PairTask::restore(std::string_view in) {
  BinaryReader r(in);
  std::uint32_t magic = 0, version = 0;
  std::string_view stage;
  std::uint64_t n = 0;
  if (!r.get(magic) || magic != kPairMagic || !r.get(version) || version != kVersion ||
      !r.get_bytes(stage) || !r.get(records_time_) || !r.get_count(n, 9)) {
    return make_error("pair checkpoint: damaged header");
  }
  if (auto ok = stage_.restore(stage); !ok) return ok;
  last_seen_.clear();
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string name;
    std::int64_t t = 0;
    if (!r.get_string(name) || !r.get(t)) return make_error("pair checkpoint: damaged producers");
    last_seen_[name] = t;
  }
  if (!r.at_end()) return make_error("pair checkpoint: trailing bytes");
  clocks_changed_ = true;
  return {};
}

// ---- AggregateTask ----

AggregateTask::AggregateTask(int partition, std::shared_ptr<const Config> config,
                             const Layout& layout)
    : partition_(partition),
      config_(config),
      layout_(layout),
      topics_(config->bus.topic_prefix),
      stage_(config, [partition, n = layout.appeals](const std::string& agency) {
        return partition_for(agency, n) == partition;
      }) {}

std::int64_t AggregateTask::clock_of(pipeline::Source source, std::int64_t conversation) const {
  const std::int32_t* pair = conversations_.find({static_cast<std::int64_t>(source), conversation});
  if (!pair) return kNoClock;  // no producer known yet: not final
  const auto it = clocks_.find(*pair);
  return it == clocks_.end() ? kNoClock : it->second.clock_of(source, conversation);
}

Result<void> AggregateTask::apply(std::string_view, std::string_view value, Output*,
                                  std::int64_t now) {
  if (auto ok = reader_.read(value, *config_->registry, record_); !ok) return ok;
  stage_.set_now(now);
  switch (record_.type) {
    case AppealsRecord::Type::appeal:
      stage_.on_appeal(record_.before ? &*record_.before : nullptr,
                       record_.after ? &*record_.after : nullptr);
      break;
    case AppealsRecord::Type::forgotten_deletion:
      stage_.on_forgotten_deletion(record_.source, record_.conversation, record_.message);
      break;
    case AppealsRecord::Type::conversation: {
      Clocks& clocks = clocks_[record_.pair_partition];
      for (const auto& name : record_.producers) {
        clocks.delivered(clocks.producer(name), record_.source, record_.conversation);
      }
      *conversations_
           .try_emplace({static_cast<std::int64_t>(record_.source), record_.conversation},
                        record_.pair_partition)
           .first = record_.pair_partition;
      break;
    }
    case AppealsRecord::Type::clock: {
      Clocks& clocks = clocks_[record_.pair_partition];
      for (const auto& p : record_.clock) {
        const std::size_t i = clocks.producer(p.name);
        if (p.watermark != kNoClock) clocks.set_watermark(i, p.watermark);
        if (p.retired) {
          clocks.retire(i);
        } else {
          clocks.unretire(i);
        }
      }
      // Finality once per expiry tick of the records' clock: deterministic, and cheap.
      const std::int64_t epoch = record_.sent_at / config_->daemon.expiry_tick_secs;
      if (epoch != settled_epoch_) {
        settled_epoch_ = epoch;
        stage_.settle([this](pipeline::Source s, std::int64_t c) { return clock_of(s, c); });
      }
      break;
    }
  }
  return {};
}

std::vector<AgencyStats> AggregateTask::stats(std::int64_t now) const {
  std::vector<AgencyStats> out;
  for (std::size_t w = 0; w < pipeline::kWindows.size(); ++w) {
    const std::string window(pipeline::kWindows[w].name);
    std::map<std::string, std::size_t> index;
    for (auto& row : stage_.ranking_rows(w, "agency", now)) {
      index[row.agency] = out.size();
      AgencyStats s;
      s.agency = row.agency;
      s.window = window;
      s.computed_at = now;
      s.row = std::move(row);
      out.push_back(std::move(s));
    }
    for (const char* by : {"responder", "branch"}) {
      for (auto& row : stage_.ranking_rows(w, by, now)) {
        const auto it = index.find(row.agency);
        if (it == index.end()) continue;
        auto& list = std::string_view(by) == "responder" ? out[it->second].responders
                                                         : out[it->second].branches;
        list.push_back(std::move(row));
      }
    }
  }
  return out;
}

void AggregateTask::periodic(Output& out, std::int64_t now) {
  stage_.age(now);
  std::string value;
  for (const auto& s : stats(now)) {
    value.clear();
    write_agency_stats(value, s);
    const std::string key = stats_key(s.agency, s.window);
    out.send(topics_.agency_stats, partition_for(key, layout_.stats), key, &value);
  }
}

void AggregateTask::reload(std::shared_ptr<const Config> config) {
  config_ = config;
  stage_.reload(config);
}

void AggregateTask::serialize(std::string& out) const {
  BinaryWriter w(out);
  w.put(kAggregateMagic);
  w.put(kVersion);
  std::string stage;
  stage_.serialize(stage);
  w.put_bytes(stage);
  w.put(settled_epoch_);
  w.put(static_cast<std::uint64_t>(clocks_.size()));
  for (const auto& [pair, clocks] : clocks_) {
    w.put(static_cast<std::int32_t>(pair));
    std::string blob;
    clocks.serialize(blob);
    w.put_bytes(blob);
  }
  w.put(static_cast<std::uint64_t>(conversations_.size()));
  conversations_.for_each([&](const pipeline::PairKey& k, std::int32_t pair) {
    w.put(k.a);
    w.put(k.b);
    w.put(pair);
  });
}

Result<void> AggregateTask::restore(std::string_view in) {
  BinaryReader r(in);
  std::uint32_t magic = 0, version = 0;
  std::string_view stage;
  std::uint64_t n = 0;
  if (!r.get(magic) || magic != kAggregateMagic || !r.get(version) || version != kVersion ||
      !r.get_bytes(stage) || !r.get(settled_epoch_) || !r.get_count(n, 8)) {
    return make_error("aggregate checkpoint: damaged header");
  }
  if (auto ok = stage_.restore(stage); !ok) return ok;
  clocks_.clear();
  for (std::uint64_t i = 0; i < n; ++i) {
    std::int32_t pair = 0;
    std::string_view blob;
    if (!r.get(pair) || !r.get_bytes(blob))
      return make_error("aggregate checkpoint: damaged clocks");
    if (auto ok = clocks_[pair].restore(blob); !ok) return ok;
  }
  if (!r.get_count(n, 20)) return make_error("aggregate checkpoint: damaged conversations");
  conversations_.clear();
  for (std::uint64_t i = 0; i < n; ++i) {
    pipeline::PairKey k;
    std::int32_t pair = 0;
    if (!r.get(k.a) || !r.get(k.b) || !r.get(pair)) {
      return make_error("aggregate checkpoint: damaged conversations");
    }
    conversations_.try_emplace(k, pair);
  }
  if (!r.at_end()) return make_error("aggregate checkpoint: trailing bytes");
  return {};
}

}  // namespace replywatch::daemon::kafka
