// Rolling windows as rings of sub-bucket sketches: adding touches one sub-bucket per window,
// summaries merge the live sub-buckets, and snapshots carry identities, not indexes.
#include "pipeline/rolling.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

namespace replywatch::pipeline {

namespace {

constexpr std::string_view kMagic = "RWRS";
constexpr std::uint8_t kSnapshotVersion = 2;
constexpr std::size_t kMaxName = 1024;
constexpr auto kRingSize = static_cast<std::int64_t>(kSubBuckets);
// About 142 million years either side of the epoch: far beyond any real timestamp, and small
// enough that sums and slot arithmetic on clamped times cannot overflow.
constexpr std::int64_t kTimeBound = std::int64_t{1} << 52;

static_assert(kWindows.size() <= 8, "the snapshot keeps a window bit mask in one byte");
static_assert(kSubBuckets <= 255, "the snapshot keeps sub-bucket ages in one byte");
static_assert([] {
  for (const Window& w : kWindows) {
    if (w.seconds % static_cast<std::int64_t>(kSubBuckets) != 0) return false;
  }
  return true;
}());

std::int64_t clamp_time(std::int64_t t) { return std::clamp(t, -kTimeBound, kTimeBound); }

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

std::int64_t width_of(std::size_t window) { return kWindows[window].seconds / kRingSize; }

std::size_t position(std::int64_t slot) {
  const std::int64_t m = slot % kRingSize;
  return static_cast<std::size_t>(m < 0 ? m + kRingSize : m);
}

}  // namespace

struct RollingStats::Sample {
  bool answered = false;
  bool within_target = false;
  std::int64_t reply = 0;
  QuantileSketch::Key reply_key, business_key;
};

struct RollingStats::Totals {
  std::uint64_t answered = 0, unanswered = 0, within_target = 0;
  std::int64_t reply_sum = 0;
  QuantileSketch reply, business;
  explicit Totals(double accuracy) : reply(accuracy), business(accuracy) {}
};

void RollingStats::SubBucket::reset(std::int64_t s) {
  slot = s;
  answered = unanswered = within_target = 0;
  reply_sum = 0;
  reply.clear();
  business.clear();
}

RollingStats::Ring::Ring(double accuracy, std::int64_t head_slot) : head(head_slot) {
  for (SubBucket& sub : subs) {
    sub.reply = QuantileSketch(accuracy);
    sub.business = QuantileSketch(accuracy);
  }
}

bool RollingStats::Group::empty() const {
  return std::all_of(rings.begin(), rings.end(), [](const auto& r) { return r == nullptr; });
}

bool in_window(std::int64_t opened_at, std::size_t window, std::int64_t now) {
  const std::int64_t width = width_of(window);
  const std::int64_t now_slot = floor_div(clamp_time(now), width);
  const std::int64_t slot = std::min(floor_div(clamp_time(opened_at), width), now_slot);
  return slot > now_slot - kRingSize;
}

std::string_view to_string(KmNote n) {
  switch (n) {
    case KmNote::none:
      return "";
    case KmNote::no_appeals:
      return "no appeals opened in the window";
    case KmNote::too_few_closed:
      return "too few appeals closed: the survival curve has not reached 0.5 within the "
             "longest follow-up";
  }
  return "";
}

RollingStats::RollingStats(std::shared_ptr<const Registry> registry, double relative_accuracy)
    : registry_(std::move(registry)),
      accuracy_(QuantileSketch(relative_accuracy).relative_accuracy()),
      key_maker_(accuracy_),
      agencies_(fresh_state(*registry_)) {}

RollingStats::~RollingStats() = default;

std::vector<RollingStats::AgencyState> RollingStats::fresh_state(const Registry& registry) {
  std::vector<AgencyState> out(registry.agencies.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const Agency& agency = registry.agencies[i];
    out[i].id = agency.id;
    out[i].responders.resize(agency.accounts.size() + 1);
    link_branches(out[i], agency);
  }
  return out;
}

void RollingStats::link_branches(AgencyState& state, const Agency& agency) {
  state.account_branch.assign(agency.accounts.size(), -1);
  for (std::size_t k = 0; k < agency.accounts.size(); ++k) {
    const std::string& name = agency.accounts[k].branch;
    if (name.empty()) continue;
    auto it = std::find_if(state.branches.begin(), state.branches.end(),
                           [&](const Branch& b) { return b.name == name; });
    if (it == state.branches.end()) {
      state.branches.push_back(Branch{name, {}});
      it = state.branches.end() - 1;
    }
    state.account_branch[k] = static_cast<std::int32_t>(it - state.branches.begin());
  }
}

void RollingStats::advance_ring(Ring& ring, std::int64_t now_slot) {
  if (now_slot <= ring.head) return;
  if (now_slot - ring.head >= kRingSize) {
    for (SubBucket& sub : ring.subs) sub.reset(kNoSlot);
  } else {
    for (std::int64_t s = ring.head + 1; s <= now_slot; ++s) ring.subs[position(s)].reset(kNoSlot);
  }
  ring.head = now_slot;
}

void RollingStats::add_to_group(Group& g, std::int64_t opened, std::int64_t now, const Sample& s,
                                int sign) {
  for (std::size_t w = 0; w < kWindows.size(); ++w) {
    const std::int64_t width = width_of(w);
    // An opening stamped after `now` (clock skew) keeps its own slot, the ring's head
    // moving up to it, so that remove() later finds it where add() put it.
    const std::int64_t slot = floor_div(opened, width);
    const std::int64_t now_slot = std::max(floor_div(now, width), slot);
    std::unique_ptr<Ring>& ring = g.rings[w];
    if (!ring) {
      // Nothing to take back, and no need to allocate for a cohort already gone.
      if (sign < 0 || slot <= now_slot - kRingSize) continue;
      ring = std::make_unique<Ring>(accuracy_, now_slot);
    }
    advance_ring(*ring, now_slot);
    // The head can be ahead of `now` if the clock stepped back; the ring still only holds
    // the 60 slots up to its head.
    if (slot <= ring->head - kRingSize) continue;
    SubBucket& sub = ring->subs[position(slot)];
    if (sub.slot != slot) {
      if (sign < 0) continue;  // that cohort was already cleared
      sub.reset(slot);
    }
    if (sign > 0) {
      if (s.answered) {
        ++sub.answered;
        if (s.within_target) ++sub.within_target;
        sub.reply_sum += s.reply;
        sub.reply.add_key(s.reply_key);
        sub.business.add_key(s.business_key);
      } else {
        ++sub.unanswered;
      }
      continue;
    }
    // Taking back: the sub-bucket must hold the sample (asserted by the sketches).
    if (s.answered && sub.answered > 0) {
      --sub.answered;
      if (s.within_target && sub.within_target > 0) --sub.within_target;
      sub.reply_sum -= s.reply;
      sub.reply.remove_key(s.reply_key);
      sub.business.remove_key(s.business_key);
    } else if (!s.answered && sub.unanswered > 0) {
      --sub.unanswered;
    }
  }
}

void RollingStats::add(const Appeal& a, std::int64_t now) { apply(a, now, +1); }
void RollingStats::remove(const Appeal& a, std::int64_t now) { apply(a, now, -1); }

void RollingStats::apply(const Appeal& a, std::int64_t now, int sign) {
  if (a.status != AppealStatus::answered && a.status != AppealStatus::unanswered) return;
  const auto kind = static_cast<std::size_t>(a.kind);
  if (a.agency < 0 || static_cast<std::size_t>(a.agency) >= agencies_.size() || kind >= 2) {
    if (sign > 0) ++ignored_;
    return;
  }
  AgencyState& state = agencies_[static_cast<std::size_t>(a.agency)];
  const Agency& agency = registry_->agencies[static_cast<std::size_t>(a.agency)];
  now = clamp_time(now);
  const std::int64_t opened = clamp_time(a.opened_at);

  Sample s;
  if (a.status == AppealStatus::answered) {
    s.answered = true;
    s.reply = std::max<std::int64_t>(0, a.reply_seconds);
    s.reply_key = key_maker_.key_of(static_cast<double>(s.reply));
    s.business_key = key_maker_.key_of(static_cast<double>(a.business_reply_seconds));
    s.within_target =
        agency.target_business_secs && a.business_reply_seconds <= *agency.target_business_secs;
  }
  add_to_group(state.kinds[kind], opened, now, s, sign);
  if (!s.answered) return;

  const std::int32_t account = a.responder_account;
  if (account < -1 || account >= static_cast<std::int32_t>(agency.accounts.size())) {
    if (sign > 0) ++ignored_;
    return;
  }
  add_to_group(state.responders[static_cast<std::size_t>(account + 1)], opened, now, s, sign);
  if (account >= 0) {
    const std::int32_t branch = state.account_branch[static_cast<std::size_t>(account)];
    if (branch >= 0) {
      add_to_group(state.branches[static_cast<std::size_t>(branch)].group, opened, now, s, sign);
    }
  }
}

void RollingStats::advance(std::int64_t now) {
  now = clamp_time(now);
  auto sweep = [now](Group& g) {
    for (std::size_t w = 0; w < kWindows.size(); ++w) {
      std::unique_ptr<Ring>& ring = g.rings[w];
      if (!ring) continue;
      advance_ring(*ring, floor_div(now, width_of(w)));
      const bool idle = std::all_of(ring->subs.begin(), ring->subs.end(),
                                    [](const SubBucket& sub) { return sub.empty(); });
      if (idle) ring.reset();
    }
  };
  for (AgencyState& state : agencies_) {
    for (Group& g : state.kinds) sweep(g);
    for (Group& g : state.responders) sweep(g);
    for (Branch& b : state.branches) sweep(b.group);
  }
}

void RollingStats::collect(const Group& g, std::size_t window, std::int64_t now, Totals& t) const {
  const Ring* ring = g.rings[window].get();
  if (!ring) return;
  const std::int64_t now_slot = floor_div(clamp_time(now), width_of(window));
  for (const SubBucket& sub : ring->subs) {
    // No upper bound: slots past `now` only exist if the clock stepped back, and hiding
    // them would make data vanish and reappear.
    if (sub.slot == kNoSlot || sub.slot <= now_slot - kRingSize || sub.empty()) continue;
    t.answered += sub.answered;
    t.unanswered += sub.unanswered;
    t.within_target += sub.within_target;
    t.reply_sum += sub.reply_sum;
    t.reply.merge(sub.reply);
    t.business.merge(sub.business);
  }
}

void RollingStats::fill_answers(const Totals& t, WindowSummary& out) {
  out.answered = t.answered;
  out.unanswered = t.unanswered;
  out.within_target = t.within_target;
  out.median = t.reply.quantile(0.5);
  out.p90 = t.reply.quantile(0.9);
  out.p99 = t.reply.quantile(0.99);
  out.business_median = t.business.quantile(0.5);
  out.business_p90 = t.business.quantile(0.9);
  if (t.answered > 0) {
    out.mean = static_cast<double>(t.reply_sum) / static_cast<double>(t.answered);
  }
}

WindowSummary RollingStats::agency_summary(std::size_t agency, AppealKind kind, std::size_t window,
                                           std::int64_t now,
                                           const QuantileSketch& open_ages) const {
  WindowSummary out;
  const auto k = static_cast<std::size_t>(kind);
  if (agency >= agencies_.size() || window >= kWindows.size() || k >= 2) return out;
  Totals t(accuracy_);
  collect(agencies_[agency].kinds[k], window, now, t);
  fill_answers(t, out);
  const std::uint64_t decided = t.answered + t.unanswered;
  // In a window shorter than the horizon no appeal of the cohort can be unanswered yet:
  // the ratios would read 1 for an agency that answered a few quickly and left the rest.
  const bool decidable = kWindows[window].seconds >= registry_->horizon_secs;
  if (decided > 0 && decidable) {
    out.answer_rate = static_cast<double>(t.answered) / static_cast<double>(decided);
    if (registry_->agencies[agency].target_business_secs) {
      out.within_target_rate = static_cast<double>(t.within_target) / static_cast<double>(decided);
    }
  }
  out.open = open_ages.count();
  QuantileSketch censored = open_ages;
  censored.add(static_cast<double>(registry_->horizon_secs), t.unanswered);
  const KaplanMeier km = kaplan_meier(t.reply, censored);
  out.km_median_seconds = km.median;
  out.km_survival = km.final_survival;
  out.km_max_followup = km.max_time;
  out.km_note = km.median                              ? KmNote::none
                : t.answered + t.unanswered + out.open ? KmNote::too_few_closed
                                                       : KmNote::no_appeals;
  return out;
}

WindowSummary RollingStats::responder_summary(std::size_t agency, std::int32_t account,
                                              std::size_t window, std::int64_t now) const {
  WindowSummary out;
  if (agency >= agencies_.size() || window >= kWindows.size()) return out;
  const AgencyState& state = agencies_[agency];
  if (account < -1 || account + 1 >= static_cast<std::int64_t>(state.responders.size())) {
    return out;
  }
  Totals t(accuracy_);
  collect(state.responders[static_cast<std::size_t>(account + 1)], window, now, t);
  fill_answers(t, out);
  if (t.answered > 0 && registry_->agencies[agency].target_business_secs) {
    out.within_target_rate = static_cast<double>(t.within_target) / static_cast<double>(t.answered);
  }
  return out;
}

WindowSummary RollingStats::branch_summary(std::size_t agency, std::string_view branch,
                                           std::size_t window, std::int64_t now) const {
  WindowSummary out;
  if (agency >= agencies_.size() || window >= kWindows.size()) return out;
  const auto& branches = agencies_[agency].branches;
  const auto it = std::find_if(branches.begin(), branches.end(),
                               [&](const Branch& b) { return b.name == branch; });
  if (it == branches.end()) return out;
  Totals t(accuracy_);
  collect(it->group, window, now, t);
  fill_answers(t, out);
  if (t.answered > 0 && registry_->agencies[agency].target_business_secs) {
    out.within_target_rate = static_cast<double>(t.within_target) / static_cast<double>(t.answered);
  }
  return out;
}

std::vector<std::int32_t> RollingStats::responders(std::size_t agency) const {
  std::vector<std::int32_t> out;
  if (agency >= agencies_.size()) return out;
  const auto& groups = agencies_[agency].responders;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (!groups[i].empty()) out.push_back(static_cast<std::int32_t>(i) - 1);
  }
  return out;
}

std::vector<std::string> RollingStats::branches(std::size_t agency) const {
  std::vector<std::string> out;
  if (agency >= agencies_.size()) return out;
  for (const Branch& b : agencies_[agency].branches) {
    if (!b.group.empty()) out.push_back(b.name);
  }
  return out;
}

void RollingStats::set_registry(std::shared_ptr<const Registry> registry) {
  std::vector<AgencyState> next = fresh_state(*registry);
  // A duplicate id in the new registry must not find moved-from groups again.
  std::vector<bool> taken(agencies_.size(), false);
  for (std::size_t i = 0; i < next.size(); ++i) {
    const Agency& agency = registry->agencies[i];
    std::size_t j = 0;
    while (j < agencies_.size() && (taken[j] || agencies_[j].id != agency.id)) ++j;
    if (j == agencies_.size()) continue;
    taken[j] = true;
    AgencyState& old = agencies_[j];
    const Agency& old_agency = registry_->agencies[j];
    next[i].kinds = std::move(old.kinds);
    next[i].responders[0] = std::move(old.responders[0]);
    // Account indexes may shift on reload; (source, id) is what identifies a person.
    for (std::size_t k = 0; k < old_agency.accounts.size(); ++k) {
      const Account& was = old_agency.accounts[k];
      for (std::size_t m = 0; m < agency.accounts.size(); ++m) {
        if (agency.accounts[m].source == was.source && agency.accounts[m].id == was.id) {
          if (next[i].responders[m + 1].empty()) {
            next[i].responders[m + 1] = std::move(old.responders[k + 1]);
          }
          break;
        }
      }
    }
    next[i].branches = std::move(old.branches);
    link_branches(next[i], agency);
  }
  agencies_ = std::move(next);
  registry_ = std::move(registry);
}

std::size_t RollingStats::memory_bytes() const {
  std::size_t bytes = agencies_.capacity() * sizeof(AgencyState);
  auto group_bytes = [](const Group& g) {
    std::size_t n = 0;
    for (const auto& ring : g.rings) {
      if (!ring) continue;
      n += sizeof(Ring);
      for (const SubBucket& sub : ring->subs) {
        n += sub.reply.memory_bytes() + sub.business.memory_bytes();
      }
    }
    return n;
  };
  for (const AgencyState& state : agencies_) {
    bytes += state.id.capacity() + state.responders.capacity() * sizeof(Group) +
             state.branches.capacity() * sizeof(Branch) +
             state.account_branch.capacity() * sizeof(std::int32_t);
    for (const Group& g : state.kinds) bytes += group_bytes(g);
    for (const Group& g : state.responders) bytes += group_bytes(g);
    for (const Branch& b : state.branches) bytes += b.name.capacity() + group_bytes(b.group);
  }
  return bytes;
}

// Snapshot layout (version 2), little endian, varints LEB128, signed ones zigzag:
//   "RWRS" u8:version f64:accuracy u8:windows varint:seconds… u8:sub_buckets
//   varint:agencies, each: string:id group:first group:followup
//     varint:responders, each: u8:0 (the conversation) | u8:1 u8:source svarint:id; group
//     varint:branches, each: string:name group
//   group: u8:ring mask (bit per window), each ring: svarint:head u8:n, n sub-buckets:
//     u8:age (head − slot, ascending) varint:answered varint:unanswered varint:within_target
//     svarint:reply_sum sketch:reply sketch:business
// Only sub-buckets holding data are written, and only rings holding such sub-buckets.

void RollingStats::write_group(std::string& out, const Group& g) const {
  auto live = [](const Ring& ring, std::int64_t age) -> const SubBucket* {
    const std::int64_t slot = ring.head - age;
    const SubBucket& sub = ring.subs[position(slot)];
    return sub.slot == slot && !sub.empty() ? &sub : nullptr;
  };
  std::uint8_t mask = 0;
  for (std::size_t w = 0; w < kWindows.size(); ++w) {
    const Ring* ring = g.rings[w].get();
    if (!ring) continue;
    for (std::int64_t age = 0; age < kRingSize; ++age) {
      if (live(*ring, age)) {
        mask = static_cast<std::uint8_t>(mask | (1u << w));
        break;
      }
    }
  }
  wire::put_u8(out, mask);
  for (std::size_t w = 0; w < kWindows.size(); ++w) {
    if ((mask & (1u << w)) == 0) continue;
    const Ring& ring = *g.rings[w];
    wire::put_svarint(out, ring.head);
    std::uint8_t n = 0;
    for (std::int64_t age = 0; age < kRingSize; ++age)
      n = static_cast<std::uint8_t>(n + (live(ring, age) ? 1 : 0));
    wire::put_u8(out, n);
    for (std::int64_t age = 0; age < kRingSize; ++age) {
      const SubBucket* sub = live(ring, age);
      if (!sub) continue;
      wire::put_u8(out, static_cast<std::uint8_t>(age));
      wire::put_varint(out, sub->answered);
      wire::put_varint(out, sub->unanswered);
      wire::put_varint(out, sub->within_target);
      wire::put_svarint(out, sub->reply_sum);
      sub->reply.serialize(out);
      sub->business.serialize(out);
    }
  }
}

void RollingStats::serialize(std::string& out) const {
  auto worth_writing = [](const Group& g) {
    for (const auto& ring : g.rings) {
      if (!ring) continue;
      for (const SubBucket& sub : ring->subs) {
        if (!sub.empty() && sub.slot > ring->head - kRingSize && sub.slot <= ring->head)
          return true;
      }
    }
    return false;
  };
  out.append(kMagic);
  wire::put_u8(out, kSnapshotVersion);
  wire::put_f64(out, accuracy_);
  wire::put_u8(out, static_cast<std::uint8_t>(kWindows.size()));
  for (const Window& w : kWindows) wire::put_varint(out, static_cast<std::uint64_t>(w.seconds));
  wire::put_u8(out, static_cast<std::uint8_t>(kSubBuckets));
  wire::put_varint(out, agencies_.size());
  for (std::size_t i = 0; i < agencies_.size(); ++i) {
    const AgencyState& state = agencies_[i];
    const Agency& agency = registry_->agencies[i];
    wire::put_string(out, state.id);
    for (const Group& g : state.kinds) write_group(out, g);

    std::size_t n = 0;
    for (const Group& g : state.responders) n += worth_writing(g) ? 1 : 0;
    wire::put_varint(out, n);
    for (std::size_t r = 0; r < state.responders.size(); ++r) {
      if (!worth_writing(state.responders[r])) continue;
      if (r == 0) {
        wire::put_u8(out, 0);
      } else {
        const Account& account = agency.accounts[r - 1];
        wire::put_u8(out, 1);
        wire::put_u8(out, static_cast<std::uint8_t>(account.source));
        wire::put_svarint(out, account.id);
      }
      write_group(out, state.responders[r]);
    }

    n = 0;
    for (const Branch& b : state.branches) n += worth_writing(b.group) ? 1 : 0;
    wire::put_varint(out, n);
    for (const Branch& b : state.branches) {
      if (!worth_writing(b.group)) continue;
      wire::put_string(out, b.name);
      write_group(out, b.group);
    }
  }
}

Result<void> RollingStats::read_group(wire::Reader& r, Group& g, bool may_be_empty) const {
  const std::uint8_t mask = r.u8();
  if (!r.ok()) return make_error("snapshot: truncated");
  if ((mask >> kWindows.size()) != 0) return make_error("snapshot: unknown window in ring mask");
  if (mask == 0 && !may_be_empty) return make_error("snapshot: empty group");
  for (std::size_t w = 0; w < kWindows.size(); ++w) {
    if ((mask & (1u << w)) == 0) continue;
    const std::int64_t head = r.svarint();
    const std::uint8_t n = r.u8();
    if (!r.ok()) return make_error("snapshot: truncated");
    if (head < -kTimeBound || head > kTimeBound)
      return make_error("snapshot: ring head out of range");
    if (n == 0 || n > kSubBuckets) return make_error("snapshot: bad sub-bucket count");
    auto ring = std::make_unique<Ring>(accuracy_, head);
    std::int64_t previous_age = -1;
    for (std::uint8_t i = 0; i < n; ++i) {
      const std::int64_t age = r.u8();
      const std::uint64_t answered = r.varint();
      const std::uint64_t unanswered = r.varint();
      const std::uint64_t within = r.varint();
      const std::int64_t reply_sum = r.svarint();
      if (!r.ok()) return make_error("snapshot: truncated");
      if (age >= kRingSize || age <= previous_age) {
        return make_error("snapshot: sub-bucket ages not ascending or out of range");
      }
      previous_age = age;
      if (answered == 0 && unanswered == 0) return make_error("snapshot: empty sub-bucket");
      if (within > answered) return make_error("snapshot: more within target than answered");
      if (reply_sum < 0 || (answered == 0 && reply_sum != 0)) {
        return make_error("snapshot: bad reply sum");
      }
      SubBucket& sub = ring->subs[position(head - age)];
      for (QuantileSketch* sketch : {&sub.reply, &sub.business}) {
        std::string_view rest = r.rest();
        auto read = QuantileSketch::deserialize(rest);
        if (!read) return make_error("snapshot: " + read.error().message);
        r.skip(r.remaining() - rest.size());
        if (read->relative_accuracy() != accuracy_ || read->count() != answered) {
          return make_error("snapshot: sketch does not match its sub-bucket");
        }
        *sketch = std::move(*read);
      }
      sub.slot = head - age;
      sub.answered = answered;
      sub.unanswered = unanswered;
      sub.within_target = within;
      sub.reply_sum = reply_sum;
    }
    g.rings[w] = std::move(ring);
  }
  return {};
}

Result<void> RollingStats::restore(std::string_view in) {
  wire::Reader r(in);
  for (const char c : kMagic) {
    if (r.u8() != static_cast<std::uint8_t>(c)) return make_error("snapshot: bad magic");
  }
  const std::uint8_t version = r.u8();
  if (!r.ok()) return make_error("snapshot: truncated");
  if (version != kSnapshotVersion) {
    return make_error("snapshot: unsupported version " + std::to_string(version));
  }
  const double accuracy = r.f64();
  const std::uint8_t windows = r.u8();
  if (!r.ok()) return make_error("snapshot: truncated");
  if (accuracy != accuracy_) return make_error("snapshot: sketch accuracy differs");
  if (windows != kWindows.size()) return make_error("snapshot: window set differs");
  for (const Window& w : kWindows) {
    if (r.varint() != static_cast<std::uint64_t>(w.seconds)) {
      return make_error(r.ok() ? "snapshot: window set differs" : "snapshot: truncated");
    }
  }
  if (r.u8() != kSubBuckets) {
    return make_error(r.ok() ? "snapshot: sub-bucket count differs" : "snapshot: truncated");
  }

  std::vector<AgencyState> next = fresh_state(*registry_);
  const std::uint64_t agencies = r.varint();
  if (!r.ok()) return make_error("snapshot: truncated");
  if (agencies > r.remaining()) return make_error("snapshot: agency count exceeds the input");
  std::set<std::string_view> agency_ids;
  for (std::uint64_t a = 0; a < agencies; ++a) {
    const std::string_view id = r.string(kMaxName);
    if (!r.ok()) return make_error("snapshot: truncated agency id");
    if (!agency_ids.insert(id).second) return make_error("snapshot: duplicate agency");
    // Agencies gone from the configuration are read and dropped, as on a reload.
    const std::int32_t index = registry_->agency_index(id);
    AgencyState discard;
    AgencyState& state = index >= 0 ? next[static_cast<std::size_t>(index)] : discard;
    const Agency* agency =
        index >= 0 ? &registry_->agencies[static_cast<std::size_t>(index)] : nullptr;
    for (Group& g : state.kinds) {
      if (auto ok = read_group(r, g, true); !ok) return ok;
    }

    const std::uint64_t responders = r.varint();
    if (!r.ok()) return make_error("snapshot: truncated");
    if (responders > r.remaining())
      return make_error("snapshot: responder count exceeds the input");
    std::set<std::pair<int, std::int64_t>> responder_ids;
    for (std::uint64_t i = 0; i < responders; ++i) {
      const std::uint8_t tag = r.u8();
      std::pair<int, std::int64_t> key{-1, 0};
      if (tag == 1) {
        key.first = r.u8();
        key.second = r.svarint();
        if (key.first > static_cast<int>(Source::x)) return make_error("snapshot: unknown source");
      } else if (tag != 0) {
        return make_error(r.ok() ? "snapshot: bad responder tag" : "snapshot: truncated");
      }
      if (!r.ok()) return make_error("snapshot: truncated");
      if (!responder_ids.insert(key).second) return make_error("snapshot: duplicate responder");
      Group discard_group;
      Group* target = &discard_group;
      if (agency && tag == 0) {
        target = &state.responders[0];
      } else if (agency) {
        for (std::size_t m = 0; m < agency->accounts.size(); ++m) {
          const Account& acc = agency->accounts[m];
          if (static_cast<int>(acc.source) == key.first && acc.id == key.second) {
            target = &state.responders[m + 1];
            break;
          }
        }
      }
      if (auto ok = read_group(r, *target, false); !ok) return ok;
    }

    const std::uint64_t branches = r.varint();
    if (!r.ok()) return make_error("snapshot: truncated");
    if (branches > r.remaining()) return make_error("snapshot: branch count exceeds the input");
    std::set<std::string_view> branch_names;
    for (std::uint64_t i = 0; i < branches; ++i) {
      const std::string_view name = r.string(kMaxName);
      if (!r.ok()) return make_error("snapshot: truncated branch name");
      if (name.empty()) return make_error("snapshot: empty branch name");
      if (!branch_names.insert(name).second) return make_error("snapshot: duplicate branch");
      auto it = std::find_if(state.branches.begin(), state.branches.end(),
                             [&](const Branch& b) { return b.name == name; });
      if (it == state.branches.end()) {
        // A branch no account names any more keeps its history until it ages out.
        state.branches.push_back(Branch{std::string(name), {}});
        it = state.branches.end() - 1;
      }
      if (auto ok = read_group(r, it->group, false); !ok) return ok;
    }
  }
  if (!r.ok()) return make_error("snapshot: truncated");
  if (r.remaining() != 0) return make_error("snapshot: trailing bytes");
  agencies_ = std::move(next);
  return {};
}

}  // namespace replywatch::pipeline
