// Reads IANA TZif files and evaluates their POSIX TZ footer, so offsets and the
// local-to-UTC mapping are right for any instant, also far past the stored table.
#include "pipeline/tz.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

namespace replywatch::pipeline {

namespace {

constexpr std::int64_t kDay = 86400;
// No real offset exceeds ±26h (POSIX allows 24:59:59); the bound makes to_utc's search
// window finite, so offsets outside it are rejected at load.
constexpr std::int32_t kMaxOffset = 26 * 3600;
// Stored instants must lie within ±2^61 s and to_utc clamps to it, so `at ± offset`
// and the 400-year shifts below can never overflow.
constexpr std::int64_t kTimeLimit = std::int64_t{1} << 61;
// The Gregorian calendar, weekdays included, repeats every 400 years, and so does
// every POSIX rule: instants far out are evaluated in one reference cycle.
constexpr std::int64_t kCycle = 146097 * kDay;
// Real TZif files are a few KiB; the cap keeps a hostile path from eating memory.
constexpr std::size_t kMaxFileSize = std::size_t{1} << 20;
// load() expands the footer into the binary-searched table up to this year; later
// instants evaluate the rule directly. Years before kTableFirstYear are not expanded.
constexpr int kTableHorizonYear = 2100;
constexpr int kTableFirstYear = 1800;

}  // namespace

struct TimeZone::PosixRule {
  enum class DateKind { julian, zero_based, month_week_day };
  struct RuleDate {
    DateKind kind = DateKind::month_week_day;
    int day = 0;  // J form 1..365 (Feb 29 never counted), n form 0..365
    int month = 0;
    int week = 0;                  // 1..5, 5 meaning the last such weekday of the month
    int weekday = 0;               // 0 = Sunday
    std::int32_t time = 2 * 3600;  // local seconds after midnight; v3 allows ±167h
  };

  std::int32_t std_offset = 0;  // east positive, unlike the POSIX text
  std::int32_t dst_offset = 0;
  bool has_dst = false;
  RuleDate start;  // DST starts; `time` is in standard time
  RuleDate end;    // DST ends; `time` is in daylight time
  // Instants from here on come from the rule; earlier ones from transitions_. A zone
  // without stored transitions is governed by the rule everywhere.
  std::int64_t table_end = std::numeric_limits<std::int64_t>::min();
};

namespace {

using Rule = TimeZone::PosixRule;
using Transition = TimeZone::Transition;

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

std::int64_t floor_mod(std::int64_t a, std::int64_t b) {
  std::int64_t r = a % b;
  return r < 0 ? r + b : r;
}

// Only called with instants within a few cycles of 1970, well inside chrono's range.
int year_of(std::int64_t utc) {
  using namespace std::chrono;
  const year_month_day ymd{sys_days{days{floor_div(utc, kDay)}}};
  return static_cast<int>(ymd.year());
}

std::int64_t days_since_epoch(std::chrono::sys_days d) { return d.time_since_epoch().count(); }

std::int64_t rule_day(const Rule::RuleDate& d, int y) {
  using namespace std::chrono;
  const year cy{y};
  const std::int64_t jan1 = days_since_epoch(sys_days{cy / January / 1});
  switch (d.kind) {
    case Rule::DateKind::julian:
      return jan1 + d.day - 1 + ((cy.is_leap() && d.day >= 60) ? 1 : 0);
    case Rule::DateKind::zero_based:
      return jan1 + d.day;
    case Rule::DateKind::month_week_day: {
      const month m{static_cast<unsigned>(d.month)};
      const weekday wd{static_cast<unsigned>(d.weekday)};
      if (d.week == 5) return days_since_epoch(sys_days{cy / m / wd[last]});
      return days_since_epoch(sys_days{cy / m / wd[static_cast<unsigned>(d.week)]});
    }
  }
  return jan1;
}

// DST start and end in year `y`; callers sort (southern zones end before they start).
std::pair<Transition, Transition> year_transitions(const Rule& r, int y) {
  const Transition on{rule_day(r.start, y) * kDay + r.start.time - r.std_offset, r.dst_offset};
  const Transition off{rule_day(r.end, y) * kDay + r.end.time - r.dst_offset, r.std_offset};
  return {on, off};
}

// A rule's transitions over at most four consecutive years, sorted. Of transitions at the
// same instant only the last generated survives: with permanent DST written as
// "0/0,J365/25" one year's end coincides with the next year's start, and the start wins.
struct RuleEvents {
  std::array<Transition, 8> items{};
  std::size_t size = 0;
};

void rule_events(const Rule& r, int first_year, int last_year, RuleEvents& out) {
  out.size = 0;
  for (int y = first_year; y <= last_year && out.size + 2 <= out.items.size(); ++y) {
    const auto [a, b] = year_transitions(r, y);
    out.items[out.size++] = a;
    out.items[out.size++] = b;
  }
  // Insertion sort: stable, which the tie rule relies on, and fast on eight items.
  for (std::size_t i = 1; i < out.size; ++i) {
    for (std::size_t j = i; j > 0 && out.items[j - 1].at > out.items[j].at; --j) {
      std::swap(out.items[j - 1], out.items[j]);
    }
  }
  std::size_t kept = 0;
  for (std::size_t i = 0; i < out.size; ++i) {
    if (kept > 0 && out.items[kept - 1].at == out.items[i].at) {
      out.items[kept - 1] = out.items[i];
    } else {
      out.items[kept++] = out.items[i];
    }
  }
  out.size = kept;
}

std::int32_t rule_offset(const Rule& r, std::int64_t utc) {
  if (!r.has_dst) return r.std_offset;
  const std::int64_t t = floor_mod(utc, kCycle);
  const int y = year_of(t);
  // Year y-2 ends at the latest a week into y-1, so some transition is <= t.
  RuleEvents ev;
  rule_events(r, y - 2, y + 1, ev);
  std::int32_t offset = r.std_offset;
  for (std::size_t i = 0; i < ev.size && ev.items[i].at <= t; ++i) offset = ev.items[i].offset;
  return offset;
}

// --- POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3") -------------------------------------

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

class PosixParser {
 public:
  explicit PosixParser(std::string_view text) : s_(text) {}

  std::optional<Rule> parse() {
    Rule r;
    std::int32_t value = 0;
    if (!name() || !hms(24, value)) return std::nullopt;
    r.std_offset = -value;  // POSIX counts west positive
    r.dst_offset = r.std_offset;
    if (done()) return r;
    r.has_dst = true;
    if (!name()) return std::nullopt;
    if (peek_is_offset()) {
      if (!hms(24, value)) return std::nullopt;
      r.dst_offset = -value;
    } else {
      r.dst_offset = r.std_offset + 3600;
    }
    if (done()) {
      // No rule given: POSIX leaves it to the implementation; glibc and zic use the US one.
      r.start = Rule::RuleDate{Rule::DateKind::month_week_day, 0, 3, 2, 0, 2 * 3600};
      r.end = Rule::RuleDate{Rule::DateKind::month_week_day, 0, 11, 1, 0, 2 * 3600};
      return r;
    }
    if (!eat(',') || !date(r.start) || !eat(',') || !date(r.end) || !done()) return std::nullopt;
    return r;
  }

 private:
  bool done() const { return i_ == s_.size(); }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool peek_is_offset() const {
    return i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-' || is_digit(s_[i_]));
  }

  bool name() {
    const std::size_t begin = i_;
    if (eat('<')) {
      while (i_ < s_.size() && s_[i_] != '>') {
        const char c = s_[i_];
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-') return false;
        ++i_;
      }
      if (!eat('>')) return false;
      return i_ - begin - 2 >= 3;
    }
    while (i_ < s_.size() && is_alpha(s_[i_])) ++i_;
    return i_ - begin >= 3;
  }

  bool number(int max_digits, int max_value, int& out) {
    int digits = 0;
    int v = 0;
    while (i_ < s_.size() && is_digit(s_[i_]) && digits < max_digits) {
      v = v * 10 + (s_[i_] - '0');
      ++i_;
      ++digits;
    }
    if (digits == 0 || v > max_value) return false;
    out = v;
    return true;
  }

  // [+-]hh[:mm[:ss]]
  bool hms(int max_hours, std::int32_t& out) {
    int sign = 1;
    if (eat('-')) {
      sign = -1;
    } else {
      eat('+');
    }
    int h = 0;
    int m = 0;
    int sec = 0;
    if (!number(3, max_hours, h)) return false;
    if (eat(':')) {
      if (!number(2, 59, m)) return false;
      if (eat(':') && !number(2, 59, sec)) return false;
    }
    out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }

  bool date(Rule::RuleDate& d) {
    if (eat('J')) {
      d.kind = Rule::DateKind::julian;
      if (!number(3, 365, d.day) || d.day < 1) return false;
    } else if (eat('M')) {
      d.kind = Rule::DateKind::month_week_day;
      if (!number(2, 12, d.month) || d.month < 1 || !eat('.')) return false;
      if (!number(1, 5, d.week) || d.week < 1 || !eat('.')) return false;
      if (!number(1, 6, d.weekday)) return false;
    } else {
      d.kind = Rule::DateKind::zero_based;
      if (!number(3, 365, d.day)) return false;
    }
    d.time = 2 * 3600;
    if (eat('/')) return hms(167, d.time);  // TZif v3 extends hh to -167..167
    return true;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// --- TZif --------------------------------------------------------------------------------

// Every read is bounds-checked; a failed read latches `failed` and yields zero.
class ByteReader {
 public:
  ByteReader(const unsigned char* data, std::size_t size) : data_(data), size_(size) {}

  bool has(std::uint64_t n) const { return n <= size_ - pos_; }
  bool failed() const { return failed_; }
  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return size_ - pos_; }
  const unsigned char* here() const { return data_ + pos_; }

  std::uint8_t u8() {
    if (!take(1)) return 0;
    return data_[pos_ - 1];
  }
  std::uint32_t be32() {
    if (!take(4)) return 0;
    const unsigned char* p = data_ + pos_ - 4;
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
  }
  std::uint64_t be64() {
    const std::uint64_t hi = be32();
    return (hi << 32) | be32();
  }
  void skip(std::uint64_t n) { take(n); }

 private:
  bool take(std::uint64_t n) {
    if (failed_ || !has(n)) {
      failed_ = true;
      return false;
    }
    pos_ += static_cast<std::size_t>(n);
    return true;
  }

  const unsigned char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

struct TzifHeader {
  unsigned char version = 0;
  std::uint32_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;

  std::uint64_t data_size(std::uint64_t time_size) const {
    return std::uint64_t{timecnt} * (time_size + 1) + std::uint64_t{typecnt} * 6 + charcnt +
           std::uint64_t{leapcnt} * (time_size + 4) + isstdcnt + isutcnt;
  }
};

struct TzifData {
  std::int32_t initial_offset = 0;
  std::vector<Transition> transitions;
  std::string footer;  // empty: none
};

Result<TzifHeader> read_header(ByteReader& in) {
  if (!in.has(44)) return make_error("truncated header");
  TzifHeader h;
  const bool magic = in.u8() == 'T' && in.u8() == 'Z' && in.u8() == 'i' && in.u8() == 'f';
  if (!magic) return make_error("not a TZif file (bad magic)");
  h.version = in.u8();
  in.skip(15);
  h.isutcnt = in.be32();
  h.isstdcnt = in.be32();
  h.leapcnt = in.be32();
  h.timecnt = in.be32();
  h.typecnt = in.be32();
  h.charcnt = in.be32();
  if (in.failed()) return make_error("truncated header");
  return h;
}

Result<void> read_data(ByteReader& in, const TzifHeader& h, int time_size, TzifData& out) {
  if (h.typecnt == 0) return make_error("no local time types");
  if ((h.isutcnt != 0 && h.isutcnt != h.typecnt) || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)) {
    return make_error("inconsistent indicator counts");
  }
  // Leap-second ("right/") zones count TAI-like seconds; ignoring them would be silently
  // off by half a minute.
  if (h.leapcnt != 0) return make_error("leap-second zones are not supported");
  // Checking the whole block first also bounds the allocations below by the file size.
  if (!in.has(h.data_size(static_cast<std::uint64_t>(time_size)))) {
    return make_error("truncated data block");
  }

  std::vector<std::int64_t> times(h.timecnt);
  for (auto& t : times) {
    t = time_size == 8 ? static_cast<std::int64_t>(in.be64())
                       : static_cast<std::int64_t>(static_cast<std::int32_t>(in.be32()));
  }
  std::vector<std::uint8_t> indices(h.timecnt);
  for (auto& i : indices) i = in.u8();
  std::vector<std::int32_t> offsets(h.typecnt);
  for (auto& o : offsets) {
    o = static_cast<std::int32_t>(in.be32());
    in.skip(2);  // isdst, abbreviation index: not needed for offsets
  }
  in.skip(std::uint64_t{h.charcnt} + h.isstdcnt + h.isutcnt);
  if (in.failed()) return make_error("truncated data block");

  for (const auto o : offsets) {
    if (o < -kMaxOffset || o > kMaxOffset) return make_error("UTC offset out of range");
  }
  out.initial_offset = offsets[0];  // RFC 9636: type 0 holds before the first transition
  out.transitions.clear();
  out.transitions.reserve(times.size());
  for (std::size_t i = 0; i < times.size(); ++i) {
    if (indices[i] >= h.typecnt) return make_error("transition type index out of range");
    if (times[i] < -kTimeLimit || times[i] > kTimeLimit) {
      return make_error("transition time out of range");
    }
    if (i > 0 && times[i] <= times[i - 1]) return make_error("transition times not ascending");
    out.transitions.push_back(Transition{times[i], offsets[indices[i]]});
  }
  return {};
}

Result<TzifData> parse_tzif(const unsigned char* bytes, std::size_t size) {
  ByteReader in(bytes, size);
  auto h1 = read_header(in);
  if (!h1) return h1.error();
  TzifData data;
  if (h1->version == 0) {
    auto r = read_data(in, *h1, 4, data);
    if (!r) return r.error();
    return data;
  }
  if (h1->version < '2') return make_error("unsupported TZif version");

  // v2+: the 32-bit block is only for old readers; the 64-bit one follows it.
  if (!in.has(h1->data_size(4))) return make_error("truncated version 1 data block");
  in.skip(h1->data_size(4));
  auto h2 = read_header(in);
  if (!h2) return h2.error();
  if (h2->version < '2') return make_error("inconsistent second header");
  auto r = read_data(in, *h2, 8, data);
  if (!r) return r.error();

  if (in.u8() != '\n') return make_error("missing footer");
  const auto* begin = in.here();
  const auto* end = begin + in.remaining();
  const auto* nl = std::find(begin, end, static_cast<unsigned char>('\n'));
  if (nl == end) return make_error("unterminated footer");
  data.footer.assign(begin, nl);
  return data;
}

// Fills the table past the last stored transition with the rule's transitions up to
// kTableHorizonYear, so the common case is a binary search, not a calendar computation.
void extend_with_rule(Rule& rule, std::vector<Transition>& table) {
  if (table.empty()) return;  // the rule governs every instant; table_end stays at min
  const std::int64_t last = table.back().at;
  rule.table_end = last + 1;
  using namespace std::chrono;
  const std::int64_t first_allowed =
      days_since_epoch(sys_days{year{kTableFirstYear} / January / 1}) * kDay;
  const std::int64_t cut = days_since_epoch(sys_days{year{kTableHorizonYear} / January / 1}) * kDay;
  if (!rule.has_dst || last < first_allowed || last >= cut) return;

  // Transitions before Jan 1 of year Y come only from years <= Y (rule times stay within
  // about a week of their date), so generating through kTableHorizonYear covers [.., cut).
  std::vector<Transition> generated;
  for (int y = year_of(last) - 1; y <= kTableHorizonYear; ++y) {
    const auto [a, b] = year_transitions(rule, y);
    generated.push_back(a);
    generated.push_back(b);
  }
  std::stable_sort(generated.begin(), generated.end(),
                   [](const Transition& x, const Transition& y) { return x.at < y.at; });
  for (const auto& t : generated) {
    if (t.at <= last || t.at >= cut) continue;
    if (table.back().at == t.at) {
      table.back().offset = t.offset;  // same instant: the later-generated state holds
    } else if (table.back().offset != t.offset) {
      table.push_back(t);
    }
  }
  rule.table_end = cut;
}

// Why `name` is not an acceptable zone name, or nullopt when it is.
std::optional<std::string> name_problem(std::string_view name) {
  if (name.empty()) return "empty name";
  if (name.size() > 255) return "name too long";
  if (name.front() == '/') return "absolute paths are not allowed";
  if (name.find("..") != std::string_view::npos) return "'..' is not allowed";
  for (const char c : name) {
    if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '+' && c != '-' && c != '/') {
      return "only letters, digits, '_', '+', '-' and '/' are allowed";
    }
  }
  return std::nullopt;
}

// Names come from configuration and end up in logs; keep control bytes out of them.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(std::min<std::size_t>(s.size(), 80));
  for (const char c : s.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 80) out += "...";
  return out;
}

}  // namespace

TimeZone::TimeZone() = default;
TimeZone::~TimeZone() = default;

Result<std::shared_ptr<const TimeZone>> TimeZone::load(std::string_view name,
                                                       std::string_view zoneinfo_dir) {
  if (const auto why = name_problem(name)) {
    return make_error("invalid time zone name '" + printable(name) + "': " + *why);
  }
  namespace fs = std::filesystem;
  const std::string zone_name(name);
  const std::string dir(zoneinfo_dir);
  const fs::path path = fs::path(dir) / zone_name;
  const std::string where = path.string();

  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) {
    return make_error("unknown time zone '" + zone_name + "': no such file in " + dir);
  }
  if (ec) {
    return make_error("time zone '" + zone_name + "': cannot access " + where + ": " +
                      ec.message());
  }
  if (st.type() != fs::file_type::regular) {
    return make_error("unknown time zone '" + zone_name + "': " + where + " is not a zone file");
  }

  const std::uintmax_t file_size = fs::file_size(path, ec);
  if (ec) {
    return make_error("time zone '" + zone_name + "': cannot access " + where + ": " +
                      ec.message());
  }
  if (file_size > kMaxFileSize) {
    return make_error("time zone '" + zone_name + "': " + where + " is too large for a TZif file");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return make_error("time zone '" + zone_name + "': cannot open " + where);
  std::string bytes(static_cast<std::size_t>(file_size), '\0');
  file.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (file.bad()) return make_error("time zone '" + zone_name + "': cannot read " + where);
  // A file that shrank meanwhile parses as truncated; one that grew is read up to its size.
  const auto size = static_cast<std::size_t>(file.gcount());

  auto data = parse_tzif(reinterpret_cast<const unsigned char*>(bytes.data()), size);
  if (!data) {
    return make_error("time zone '" + zone_name + "': malformed TZif file " + where + ": " +
                      data.error().message);
  }

  auto zone = std::make_shared<TimeZone>();
  zone->name_ = zone_name;
  zone->initial_offset_ = data->initial_offset;
  zone->transitions_ = std::move(data->transitions);
  if (!data->footer.empty()) {
    auto rule = PosixParser(data->footer).parse();
    if (!rule) {
      return make_error("time zone '" + zone_name + "': malformed TZif file " + where +
                        ": bad POSIX TZ footer '" + printable(data->footer) + "'");
    }
    zone->footer_ = std::make_unique<PosixRule>(*rule);
    extend_with_rule(*zone->footer_, zone->transitions_);
  }
  return std::shared_ptr<const TimeZone>(std::move(zone));
}

std::int32_t TimeZone::offset_at(std::int64_t utc) const {
  if (footer_ && utc >= footer_->table_end) return rule_offset(*footer_, utc);
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc,
                                   [](std::int64_t t, const Transition& tr) { return t < tr.at; });
  return it == transitions_.begin() ? initial_offset_ : std::prev(it)->offset;
}

// With f(u) = u + offset_at(u), the answer is the least u with f(u) >= local: in a gap
// that is the transition ending it, in an overlap the earlier of the two matches. f rises
// with slope 1 between transitions, and |offset| <= kMaxOffset puts the answer in
// [local - kMaxOffset, local + kMaxOffset], so we walk the constant-offset pieces of that
// window in order; the first piece [start, next) whose candidate local - offset lies
// before `next` holds it (at `start` if the candidate fell into a gap before it).
std::int64_t TimeZone::to_utc(std::int64_t local_seconds) const {
  const std::int64_t local = std::clamp(local_seconds, -kTimeLimit, kTimeLimit);
  const std::int64_t lo = local - kMaxOffset;
  const std::int64_t hi = local + kMaxOffset;

  std::int64_t piece_start = lo;
  std::int32_t offset = 0;
  std::int64_t answer = 0;
  // Returns true once the answer is known.
  auto step = [&](std::int64_t at, std::int32_t next_offset) {
    if (local - offset < at) {
      answer = std::max(piece_start, local - offset);
      return true;
    }
    piece_start = at;
    offset = next_offset;
    return false;
  };

  const bool rule_only = footer_ && lo >= footer_->table_end;
  if (rule_only) {
    offset = rule_offset(*footer_, lo);
  } else {
    auto it = std::upper_bound(transitions_.begin(), transitions_.end(), lo,
                               [](std::int64_t t, const Transition& tr) { return t < tr.at; });
    offset = it == transitions_.begin() ? initial_offset_ : std::prev(it)->offset;
    const std::int64_t table_end =
        footer_ ? footer_->table_end : std::numeric_limits<std::int64_t>::max();
    for (; it != transitions_.end() && it->at <= hi && it->at < table_end; ++it) {
      if (step(it->at, it->offset)) return answer;
    }
  }

  if (footer_ && hi >= footer_->table_end) {
    std::int64_t covered = lo;  // rule transitions up to here are already reflected
    if (lo < footer_->table_end) {
      // Hand over from table to rule as offset_at does, even if a file disagrees with
      // its own footer there.
      const std::int64_t at = footer_->table_end;
      if (step(at, rule_offset(*footer_, at))) return answer;
      covered = at;
    }
    if (footer_->has_dst) {
      // Evaluate the rule in the reference cycle and shift its transitions back.
      const std::int64_t shift = floor_div(lo, kCycle) * kCycle;
      RuleEvents ev;
      rule_events(*footer_, year_of(lo - shift) - 1, year_of(hi - shift) + 1, ev);
      for (std::size_t i = 0; i < ev.size; ++i) {
        const std::int64_t at = ev.items[i].at + shift;
        if (at <= covered) continue;
        if (at > hi) break;
        if (step(at, ev.items[i].offset)) return answer;
      }
    }
  }
  return std::max(piece_start, local - offset);
}

}  // namespace replywatch::pipeline
