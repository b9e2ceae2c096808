// Appeals by identity, with per-appeal bookkeeping of what the counters already hold,
// so a correction takes back exactly what was counted.
#include "daemon/appeal_store.hpp"

#include <algorithm>
#include <cstring>

#include "pipeline/binary.hpp"

namespace replywatch::daemon {

namespace {

using pipeline::Appeal;
using pipeline::AppealKind;
using pipeline::AppealStatus;
using pipeline::BinaryReader;
using pipeline::BinaryWriter;

constexpr std::uint32_t kMagic = 0x52574153;  // "RWAS"
constexpr std::uint32_t kVersion = 1;

std::size_t corrected_index(AppealStatus s) {
  switch (s) {
    case AppealStatus::answered:
      return 1;
    case AppealStatus::unanswered:
      return 2;
    case AppealStatus::withdrawn:
      return 3;
    default:
      return 0;
  }
}

void put_string(BinaryWriter& w, const std::string& s) { w.put_bytes(s); }
bool get_string(BinaryReader& r, std::string& s) { return r.get_string(s); }
void put_double(BinaryWriter& w, double d) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &d, sizeof bits);
  w.put(bits);
}
bool get_double(BinaryReader& r, double& d) {
  std::uint64_t bits = 0;
  if (!r.get(bits)) return false;
  std::memcpy(&d, &bits, sizeof d);
  return true;
}

void put_key(BinaryWriter& w, const AppealKey& k) {
  put_string(w, std::get<0>(k));
  put_string(w, std::get<1>(k));
  put_string(w, std::get<2>(k));
}
bool get_key(BinaryReader& r, AppealKey& k) {
  return get_string(r, std::get<0>(k)) && get_string(r, std::get<1>(k)) &&
         get_string(r, std::get<2>(k));
}

}  // namespace

void put_histogram(BinaryWriter& w, const Histogram& h) {
  w.put(static_cast<std::uint64_t>(h.counts.size()));
  for (auto c : h.counts) w.put(c);
  put_double(w, h.sum);
  w.put(h.count);
}

bool get_histogram(BinaryReader& r, Histogram& h) {
  std::uint64_t n = 0;
  if (!r.get_count(n, 8) || n != reply_buckets().size() + 1) return false;
  h.counts.assign(n, 0);
  for (auto& c : h.counts) {
    if (!r.get(c)) return false;
  }
  return get_double(r, h.sum) && r.get(h.count);
}

const std::vector<double>& reply_buckets() {
  static const std::vector<double> kBounds = [] {
    std::vector<double> b;
    for (double v = 30; v < 2592000; v *= 2) b.push_back(v);
    b.push_back(2592000);
    return b;
  }();
  return kBounds;
}

void Histogram::observe(double v, const std::vector<double>& bounds) {
  const auto it = std::lower_bound(bounds.begin(), bounds.end(), v);
  ++counts[static_cast<std::size_t>(it - bounds.begin())];
  sum += v;
  ++count;
}

int hour_of_week(const pipeline::Agency& agency, std::int64_t t) {
  const std::int64_t local = agency.calendar ? agency.calendar->zone().to_local(t) : t;
  const std::int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  const std::int64_t weekday = ((days + 3) % 7 + 7) % 7;  // 1970-01-01 was a Thursday
  const std::int64_t hour = (local - days * 86400) / 3600;
  return static_cast<int>(weekday * 24 + hour);
}

AppealStore::AppealStore(std::shared_ptr<const pipeline::Registry> registry)
    : registry_(std::move(registry)) {}

const Appeal* AppealStore::find(pipeline::Source source, std::int64_t conversation,
                                std::int64_t opened_message) const {
  const Stored* s = appeals_.find(Id{conversation, opened_message, source});
  return s ? &s->appeal : nullptr;
}

std::uint32_t AppealStore::intern(const std::string& id) {
  const auto it = std::find(agency_names_.begin(), agency_names_.end(), id);
  if (it != agency_names_.end()) return static_cast<std::uint32_t>(it - agency_names_.begin());
  agency_names_.push_back(id);
  return static_cast<std::uint32_t>(agency_names_.size() - 1);
}

std::uint32_t AppealStore::intern(std::int32_t agency) {
  const bool known = agency >= 0 && static_cast<std::size_t>(agency) < registry_->agencies.size();
  return intern(known ? registry_->agencies[static_cast<std::size_t>(agency)].id : std::string());
}

AppealKey AppealStore::key_of(const Stored& s) const {
  return {agency_names_[s.agency], std::string(pipeline::to_string(s.appeal.source)),
          std::string(pipeline::to_string(s.appeal.kind))};
}

void AppealStore::uncount(Stored& s, bool drop_open) {
  if (s.counted == kNotCounted && !(drop_open && s.counted_open)) return;
  AppealCounts& c = counts_[key_of(s)];
  if (s.counted != kNotCounted) {
    ++c.corrected[corrected_index(static_cast<AppealStatus>(s.counted))];
    s.counted = kNotCounted;
  }
  if (drop_open && s.counted_open) {
    ++c.corrected[0];
    s.counted_open = false;
  }
}

void AppealStore::count_close(Stored& s) {
  const Appeal& a = s.appeal;
  const AppealKey key = key_of(s);
  AppealCounts& c = counts_[key];
  switch (a.status) {
    case AppealStatus::answered: {
      ++c.answered;
      reply_[key].observe(static_cast<double>(a.reply_seconds), reply_buckets());
      business_[key].observe(static_cast<double>(a.business_reply_seconds), reply_buckets());
      if (a.agency >= 0 && static_cast<std::size_t>(a.agency) < registry_->agencies.size()) {
        const auto& agency = registry_->agencies[static_cast<std::size_t>(a.agency)];
        auto& how = hour_of_week_[{agency.id, daemon::hour_of_week(agency, a.opened_at)}];
        ++how.first;
        how.second += static_cast<double>(a.reply_seconds);
      }
      break;
    }
    case AppealStatus::unanswered:
      ++c.unanswered;
      break;
    case AppealStatus::withdrawn:
      ++c.withdrawn;
      break;
    case AppealStatus::open:
      return;
  }
  s.counted = static_cast<std::uint8_t>(a.status);
  by_decision_.emplace(pipeline::decided_at(a, registry_->horizon_secs), id_of(a));
}

void AppealStore::enqueue(const Id& id, Stored& s) {
  if (s.queued) return;
  s.queued = true;
  queue_.push_back(id);
}

void AppealStore::index_open(const Id& id, const Appeal* a) {
  if (a && a->status == AppealStatus::open) {
    open_.try_emplace(id, pipeline::Empty{});
  } else {
    open_.erase(id);
  }
}

void AppealStore::apply(const Appeal* before, const Appeal* after) {
  if (!after) {
    if (!before) return;
    const Id id = id_of(*before);
    if (Stored* s = appeals_.find(id)) {
      uncount(*s, true);
      appeals_.erase(id);
    }
    index_open(id, nullptr);
    return;
  }
  const Id id = id_of(*after);
  auto [s, inserted] = appeals_.try_emplace(id, Stored{});
  if (!inserted) {
    if (s->appeal.kind != after->kind) uncount(*s, true);  // counted under the other kind
    if (s->counted != kNotCounted && !pipeline::same_outcome(s->appeal, *after)) uncount(*s, false);
  }
  s->appeal = *after;
  s->agency = intern(after->agency);
  enqueue(id, *s);
  index_open(id, after);
}

void AppealStore::reappear(const Appeal& before, const Appeal* after) {
  Stored was;
  was.appeal = before;
  was.agency = intern(before.agency);
  was.counted_open = true;
  if (before.status != AppealStatus::open) was.counted = static_cast<std::uint8_t>(before.status);
  const bool same_kind = after && after->kind == before.kind;
  uncount(was, !same_kind);
  if (!after) return;
  apply(nullptr, after);
  if (same_kind) appeals_.find(id_of(*after))->counted_open = true;
}

void AppealStore::settle(const ClockOf& clock_of) {
  // An appeal erased and added again before a settle is in the queue twice: `queued` is
  // cleared while the pass visits it, so its second entry is dropped, and set again for
  // what stays.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < queue_.size(); ++i) {
    const Id id = queue_[i];
    Stored* s = appeals_.find(id);
    if (!s || !s->queued) continue;
    s->queued = false;
    const std::int64_t clock = clock_of(id.source, id.conversation);
    const Appeal& a = s->appeal;
    if (clock != pipeline::Pairing::kNoClock) {
      if (!s->counted_open && clock >= a.opened_at) {
        ++counts_[key_of(*s)].opened;
        s->counted_open = true;
      }
      if (a.status != AppealStatus::open && s->counted == kNotCounted &&
          clock >= pipeline::decided_at(a, registry_->horizon_secs)) {
        count_close(*s);
      }
    }
    if (!s->counted_open || s->counted == kNotCounted) queue_[kept++] = id;
  }
  queue_.resize(kept);
  for (const Id& id : queue_) appeals_.find(id)->queued = true;
}

void AppealStore::evict(std::int64_t before) {
  while (!by_decision_.empty() && by_decision_.top().first < before) {
    const auto [at, id] = by_decision_.top();
    by_decision_.pop();
    const Stored* s = appeals_.find(id);
    if (!s || s->queued || s->counted == kNotCounted) continue;
    // A stale entry: the appeal changed since (its current entry is elsewhere in the heap).
    if (pipeline::decided_at(s->appeal, registry_->horizon_secs) != at) continue;
    appeals_.erase(id);
    open_.erase(id);
  }
}

void AppealStore::set_registry(std::shared_ptr<const pipeline::Registry> registry) {
  registry_ = std::move(registry);
  appeals_.for_each([&](const Id&, const Stored& cs) {
    auto& s = const_cast<Stored&>(cs);
    Appeal& a = s.appeal;
    a.agency = registry_->agency_index(agency_names_[s.agency]);
    if (a.status == AppealStatus::answered && a.agency >= 0) {
      const auto found = registry_->lookup_account(a.source, a.responder);
      a.responder_account = found.agency == a.agency        ? found.account
                            : a.responder == a.conversation ? -1
                                                            : -2;  // no longer an account
    }
  });
}

// ---- snapshot ----

void AppealStore::serialize(std::string& out) const {
  BinaryWriter w(out);
  w.put(kMagic);
  w.put(kVersion);
  w.put(static_cast<std::uint64_t>(appeals_.size()));
  appeals_.for_each([&](const Id&, const Stored& s) {
    const Appeal& a = s.appeal;
    put_string(w, agency_names_[s.agency]);
    for (auto v :
         {a.conversation, a.thread, a.citizen, a.opened_message, a.opened_at, a.answer_message,
          a.answered_at, a.responder, a.reply_seconds, a.business_reply_seconds}) {
      w.put(v);
    }
    w.put(a.responder_account);
    w.put(a.source);
    w.put(a.kind);
    w.put(a.status);
    w.put(static_cast<std::uint8_t>(s.counted_open));
    w.put(s.counted);
  });
  w.put(static_cast<std::uint64_t>(counts_.size()));
  for (const auto& [k, c] : counts_) {
    put_key(w, k);
    for (auto v : {c.opened, c.answered, c.unanswered, c.withdrawn}) w.put(v);
    for (auto v : c.corrected) w.put(v);
  }
  for (const auto* hists : {&reply_, &business_}) {
    w.put(static_cast<std::uint64_t>(hists->size()));
    for (const auto& [k, h] : *hists) {
      put_key(w, k);
      put_histogram(w, h);
    }
  }
  w.put(static_cast<std::uint64_t>(hour_of_week_.size()));
  for (const auto& [k, v] : hour_of_week_) {
    put_string(w, k.first);
    w.put(static_cast<std::int32_t>(k.second));
    w.put(v.first);
    put_double(w, v.second);
  }
}

Result<void> AppealStore::restore(std::string_view in) {
  BinaryReader r(in);
  auto damaged = [&](const std::string& what) {
    return make_error("appeal store: damaged " + what + " at byte " + std::to_string(r.position()));
  };
  std::uint32_t magic = 0, version = 0;
  if (!r.get(magic) || magic != kMagic) return make_error("appeal store: bad magic");
  if (!r.get(version) || version != kVersion) {
    return make_error("appeal store: unsupported version " + std::to_string(version));
  }
  AppealStore next(registry_);
  std::uint64_t n = 0;
  if (!r.get_count(n, 100)) return damaged("appeal count");
  for (std::uint64_t i = 0; i < n; ++i) {
    Stored s;
    Appeal& a = s.appeal;
    std::uint8_t counted_open = 0;
    std::string agency;
    bool ok = get_string(r, agency);
    for (auto* v : {&a.conversation, &a.thread, &a.citizen, &a.opened_message, &a.opened_at,
                    &a.answer_message, &a.answered_at, &a.responder, &a.reply_seconds,
                    &a.business_reply_seconds}) {
      ok = ok && r.get(*v);
    }
    ok = ok && r.get(a.responder_account) && r.get(a.source) && r.get(a.kind) && r.get(a.status) &&
         r.get(counted_open) && r.get(s.counted);
    if (!ok || static_cast<int>(a.kind) > 1 || static_cast<int>(a.status) > 3 ||
        static_cast<int>(a.source) > static_cast<int>(pipeline::Source::x) || counted_open > 1 ||
        (s.counted != kNotCounted && s.counted > 3)) {
      return damaged("appeal");
    }
    s.counted_open = counted_open != 0;
    s.agency = next.intern(agency);
    a.agency = registry_->agency_index(agency);
    const Id id = id_of(a);
    auto [stored, inserted] = next.appeals_.try_emplace(id, std::move(s));
    if (!inserted) return damaged("appeal (repeated)");
    if (stored->counted != kNotCounted) {
      next.by_decision_.emplace(pipeline::decided_at(stored->appeal, registry_->horizon_secs), id);
    }
    if (!stored->counted_open || stored->counted == kNotCounted) next.enqueue(id, *stored);
    next.index_open(id, &stored->appeal);
  }
  if (!r.get_count(n, 80)) return damaged("counters");
  for (std::uint64_t i = 0; i < n; ++i) {
    AppealKey k;
    AppealCounts c;
    bool ok = get_key(r, k);
    for (auto* v : {&c.opened, &c.answered, &c.unanswered, &c.withdrawn}) ok = ok && r.get(*v);
    for (auto& v : c.corrected) ok = ok && r.get(v);
    if (!ok) return damaged("counters");
    next.counts_[k] = c;
  }
  for (auto* hists : {&next.reply_, &next.business_}) {
    if (!r.get_count(n, 24)) return damaged("histograms");
    for (std::uint64_t i = 0; i < n; ++i) {
      AppealKey k;
      Histogram h;
      if (!get_key(r, k) || !get_histogram(r, h)) return damaged("histograms");
      (*hists)[k] = std::move(h);
    }
  }
  if (!r.get_count(n, 28)) return damaged("hour-of-week counters");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string agency;
    std::int32_t hour = 0;
    std::uint64_t count = 0;
    double sum = 0;
    if (!get_string(r, agency) || !r.get(hour) || !r.get(count) || !get_double(r, sum)) {
      return damaged("hour-of-week counters");
    }
    next.hour_of_week_[{agency, hour}] = {count, sum};
  }
  if (!r.at_end()) return damaged("trailer");
  *this = std::move(next);
  return {};
}

}  // namespace replywatch::daemon
