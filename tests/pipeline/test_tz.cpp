// TimeZone against `zdump -v` facts from the system tzdata, plus hand-made TZif files for
// footer forms, refusals and hostile input.
#include "pipeline/tz.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace {

using replywatch::pipeline::TimeZone;
namespace fs = std::filesystem;

// Seconds since 1970-01-01T00:00 of a civil date-time; a UTC instant or local wall seconds.
std::int64_t at(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  using namespace std::chrono;
  const auto days = sys_days{year{y} / month{m} / day{d}}.time_since_epoch().count();
  return std::int64_t{days} * 86400 + hh * 3600 + mm * 60 + ss;
}

std::shared_ptr<const TimeZone> zone(std::string_view name,
                                     std::string_view dir = "/usr/share/zoneinfo") {
  auto r = TimeZone::load(name, dir);
  if (!r) FAIL("loading " << name << ": " << r.error().message);
  return *r;
}

std::string load_error(std::string_view name, std::string_view dir = "/usr/share/zoneinfo") {
  auto r = TimeZone::load(name, dir);
  REQUIRE_FALSE(r.has_value());
  return r.error().message;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// A scratch zoneinfo directory, removed on scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "replywatch_tz_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(path / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
  }
  std::string dir() const { return path.string(); }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Builds a TZif file: type 0 holds before the first transition.
struct TzifSpec {
  char version = '2';  // '\0' for a version 1 file (no 64-bit block, no footer)
  std::vector<std::int32_t> offsets{0};
  std::vector<std::pair<std::int64_t, std::uint8_t>> transitions;  // (UTC, type index)
  std::string footer;
  std::uint32_t leapcnt = 0;
};

std::string build_tzif(const TzifSpec& s) {
  std::string out;
  auto be = [&out](std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  };
  auto block = [&](int time_size) {
    out += "TZif";
    out += s.version;
    out.append(15, '\0');
    be(0, 4);  // isutcnt
    be(0, 4);  // isstdcnt
    be(s.leapcnt, 4);
    be(s.transitions.size(), 4);
    be(s.offsets.size(), 4);
    be(4, 4);  // charcnt: "ABC\0"
    for (const auto& t : s.transitions) be(static_cast<std::uint64_t>(t.first), time_size);
    for (const auto& t : s.transitions) out += static_cast<char>(t.second);
    for (const auto o : s.offsets) {
      be(static_cast<std::uint32_t>(o), 4);
      out += '\0';  // isdst
      out += '\0';  // abbreviation index
    }
    out.append("ABC", 4);
    for (std::uint32_t i = 0; i < s.leapcnt; ++i) {
      be(0, time_size);  // occurrence
      be(0, 4);          // correction
    }
  };
  block(4);
  if (s.version != '\0') {
    block(8);
    out += '\n' + s.footer + '\n';
  }
  return out;
}

}  // namespace

TEST_CASE("tz: Europe/Berlin 2026 transitions match zdump") {
  // zdump -v -c 2026,2027 Europe/Berlin:
  //   Sun Mar 29 00:59:59 2026 UT = 01:59:59 CET  gmtoff=3600
  //   Sun Mar 29 01:00:00 2026 UT = 03:00:00 CEST gmtoff=7200
  //   Sun Oct 25 00:59:59 2026 UT = 02:59:59 CEST gmtoff=7200
  //   Sun Oct 25 01:00:00 2026 UT = 02:00:00 CET  gmtoff=3600
  const auto berlin = zone("Europe/Berlin");
  CHECK(berlin->name() == "Europe/Berlin");
  CHECK(berlin->offset_at(at(2026, 3, 29, 0, 59, 59)) == 3600);
  CHECK(berlin->offset_at(at(2026, 3, 29, 1, 0, 0)) == 7200);
  CHECK(berlin->offset_at(at(2026, 10, 25, 0, 59, 59)) == 7200);
  CHECK(berlin->offset_at(at(2026, 10, 25, 1, 0, 0)) == 3600);
  CHECK(berlin->to_local(at(2026, 3, 29, 1, 0, 0)) == at(2026, 3, 29, 3, 0, 0));
  CHECK(berlin->to_local(at(2026, 10, 25, 1, 0, 0)) == at(2026, 10, 25, 2, 0, 0));
}

TEST_CASE("tz: Europe/Berlin past the stored table follows the footer rule") {
  // The file lists transitions up to 2037; later ones come from "CET-1CEST,M3.5.0,M10.5.0/3".
  // zdump -v -c 2045,2046 Europe/Berlin:
  //   Sun Mar 26 00:59:59 2045 UT CET gmtoff=3600,  Sun Mar 26 01:00:00 2045 UT CEST gmtoff=7200
  //   Sun Oct 29 00:59:59 2045 UT CEST gmtoff=7200, Sun Oct 29 01:00:00 2045 UT CET gmtoff=3600
  const auto berlin = zone("Europe/Berlin");
  CHECK(berlin->offset_at(at(2045, 3, 26, 0, 59, 59)) == 3600);
  CHECK(berlin->offset_at(at(2045, 3, 26, 1, 0, 0)) == 7200);
  CHECK(berlin->offset_at(at(2045, 10, 29, 0, 59, 59)) == 7200);
  CHECK(berlin->offset_at(at(2045, 10, 29, 1, 0, 0)) == 3600);
  // First years after the stored table (zdump -c 2038,2039): Mar 28 and Oct 31 2038.
  CHECK(berlin->offset_at(at(2038, 3, 28, 0, 59, 59)) == 3600);
  CHECK(berlin->offset_at(at(2038, 3, 28, 1, 0, 0)) == 7200);
  CHECK(berlin->offset_at(at(2038, 10, 31, 0, 59, 59)) == 7200);
  CHECK(berlin->offset_at(at(2038, 10, 31, 1, 0, 0)) == 3600);
  // Beyond the precomputed horizon the rule is evaluated directly.
  // zdump -v -c 2245,2246 Europe/Berlin: Mar 30 01:00:00 UT -> CEST, Oct 26 01:00:00 UT -> CET.
  CHECK(berlin->offset_at(at(2245, 3, 30, 0, 59, 59)) == 3600);
  CHECK(berlin->offset_at(at(2245, 3, 30, 1, 0, 0)) == 7200);
  CHECK(berlin->offset_at(at(2245, 10, 26, 0, 59, 59)) == 7200);
  CHECK(berlin->offset_at(at(2245, 10, 26, 1, 0, 0)) == 3600);
  // Far instants must not overflow; January is CET in any year.
  CHECK(berlin->offset_at(at(9999, 1, 15)) == 3600);
  CHECK(berlin->offset_at(std::numeric_limits<std::int64_t>::max()) > 0);
  CHECK(berlin->offset_at(std::numeric_limits<std::int64_t>::min()) > 0);
}

TEST_CASE("tz: America/Nuuk footer with negative rule times (TZif v3)") {
  // Footer "<-02>2<-01>,M3.5.0/-1,M10.5.0/0". zdump -v -c 2045,2046 America/Nuuk:
  //   Sun Mar 26 00:59:59 2045 UT -02 gmtoff=-7200, Sun Mar 26 01:00:00 2045 UT -01 gmtoff=-3600
  //   Sun Oct 29 00:59:59 2045 UT -01 gmtoff=-3600, Sun Oct 29 01:00:00 2045 UT -02 gmtoff=-7200
  const auto nuuk = zone("America/Nuuk");
  CHECK(nuuk->offset_at(at(2045, 3, 26, 0, 59, 59)) == -7200);
  CHECK(nuuk->offset_at(at(2045, 3, 26, 1, 0, 0)) == -3600);
  CHECK(nuuk->offset_at(at(2045, 10, 29, 0, 59, 59)) == -3600);
  CHECK(nuuk->offset_at(at(2045, 10, 29, 1, 0, 0)) == -7200);
}

TEST_CASE("tz: Australia/Sydney southern-hemisphere footer") {
  // Footer "AEST-10AEDT,M10.1.0,M4.1.0/3". zdump -v -c 2045,2046 Australia/Sydney:
  //   Sat Apr  1 15:59:59 2045 UT AEDT gmtoff=39600, Sat Apr  1 16:00:00 2045 UT AEST 36000
  //   Sat Sep 30 15:59:59 2045 UT AEST gmtoff=36000, Sat Sep 30 16:00:00 2045 UT AEDT 39600
  const auto sydney = zone("Australia/Sydney");
  CHECK(sydney->offset_at(at(2045, 1, 15)) == 39600);
  CHECK(sydney->offset_at(at(2045, 4, 1, 15, 59, 59)) == 39600);
  CHECK(sydney->offset_at(at(2045, 4, 1, 16, 0, 0)) == 36000);
  CHECK(sydney->offset_at(at(2045, 9, 30, 15, 59, 59)) == 36000);
  CHECK(sydney->offset_at(at(2045, 9, 30, 16, 0, 0)) == 39600);
  CHECK(sydney->offset_at(at(2045, 12, 31, 23, 0, 0)) == 39600);
}

TEST_CASE("tz: Asia/Almaty is fixed +05 since 2024-03-01") {
  // zdump -v -c 2023,2027 Asia/Almaty (footer "<+05>-5"):
  //   Thu Feb 29 17:59:59 2024 UT = 23:59:59 +06 gmtoff=21600
  //   Thu Feb 29 18:00:00 2024 UT = 23:00:00 +05 gmtoff=18000   (no later transitions)
  const auto almaty = zone("Asia/Almaty");
  CHECK(almaty->offset_at(at(2024, 2, 29, 17, 59, 59)) == 21600);
  CHECK(almaty->offset_at(at(2024, 2, 29, 18, 0, 0)) == 18000);
  CHECK(almaty->offset_at(at(2026, 7, 1)) == 18000);
  CHECK(almaty->offset_at(at(2026, 1, 1)) == 18000);
  CHECK(almaty->offset_at(at(2300, 7, 1)) == 18000);
  // The repeated hour 23:00-24:00 local on 2024-02-29 maps to its first occurrence (+06).
  CHECK(almaty->to_utc(at(2024, 2, 29, 23, 30, 0)) == at(2024, 2, 29, 17, 30, 0));
  CHECK(almaty->to_utc(at(2026, 6, 1, 9, 0, 0)) == at(2026, 6, 1, 4, 0, 0));
}

TEST_CASE("tz: America/New_York 2026") {
  // zdump -v -c 2026,2027 America/New_York:
  //   Sun Mar  8 06:59:59 2026 UT EST gmtoff=-18000, Sun Mar  8 07:00:00 2026 UT EDT -14400
  //   Sun Nov  1 05:59:59 2026 UT EDT gmtoff=-14400, Sun Nov  1 06:00:00 2026 UT EST -18000
  const auto ny = zone("America/New_York");
  CHECK(ny->offset_at(at(2026, 3, 8, 6, 59, 59)) == -18000);
  CHECK(ny->offset_at(at(2026, 3, 8, 7, 0, 0)) == -14400);
  CHECK(ny->offset_at(at(2026, 11, 1, 5, 59, 59)) == -14400);
  CHECK(ny->offset_at(at(2026, 11, 1, 6, 0, 0)) == -18000);
}

TEST_CASE("tz: UTC") {
  const auto utc = zone("UTC");
  for (const std::int64_t t : {std::int64_t{0}, at(1900, 1, 1), at(2026, 6, 1, 12), at(2500, 1, 1),
                               std::numeric_limits<std::int64_t>::max()}) {
    CHECK(utc->offset_at(t) == 0);
  }
  CHECK(utc->to_utc(at(2026, 3, 29, 2, 30)) == at(2026, 3, 29, 2, 30));
  CHECK(zone("Etc/UTC")->offset_at(at(2026, 1, 1)) == 0);
}

TEST_CASE("tz: to_utc maps a gap to its end and an overlap to the earlier instant") {
  const auto berlin = zone("Europe/Berlin");
  // Spring forward 2026-03-29: 02:00-03:00 local does not exist; the gap ends at 01:00 UTC.
  CHECK(berlin->to_utc(at(2026, 3, 29, 2, 30)) == at(2026, 3, 29, 1, 0));
  CHECK(berlin->to_utc(at(2026, 3, 29, 2, 0)) == at(2026, 3, 29, 1, 0));
  CHECK(berlin->to_utc(at(2026, 3, 29, 1, 59, 59)) == at(2026, 3, 29, 0, 59, 59));  // CET
  CHECK(berlin->to_utc(at(2026, 3, 29, 3, 0)) == at(2026, 3, 29, 1, 0));            // CEST
  // Fall back 2026-10-25: 02:30 local happens at 00:30 UTC (CEST) and 01:30 UTC (CET).
  CHECK(berlin->to_utc(at(2026, 10, 25, 2, 30)) == at(2026, 10, 25, 0, 30));
  CHECK(berlin->to_utc(at(2026, 10, 25, 2, 0)) == at(2026, 10, 25, 0, 0));
  CHECK(berlin->to_utc(at(2026, 10, 25, 3, 0)) == at(2026, 10, 25, 2, 0));  // CET only
  // Ordinary summer and winter times.
  CHECK(berlin->to_utc(at(2026, 6, 1, 12, 0)) == at(2026, 6, 1, 10, 0));
  CHECK(berlin->to_utc(at(2026, 1, 15, 12, 0)) == at(2026, 1, 15, 11, 0));
  // The same in the rule-evaluated range (2245: Mar 30 and Oct 26 at 01:00 UTC).
  CHECK(berlin->to_utc(at(2245, 3, 30, 2, 30)) == at(2245, 3, 30, 1, 0));
  CHECK(berlin->to_utc(at(2245, 10, 26, 2, 30)) == at(2245, 10, 26, 0, 30));
  CHECK(berlin->to_utc(at(2245, 7, 1, 12, 0)) == at(2245, 7, 1, 10, 0));
  // And in the table extended from the footer (2045: Mar 26 and Oct 29).
  CHECK(berlin->to_utc(at(2045, 3, 26, 2, 30)) == at(2045, 3, 26, 1, 0));
  CHECK(berlin->to_utc(at(2045, 10, 29, 2, 30)) == at(2045, 10, 29, 0, 30));

  const auto ny = zone("America/New_York");
  // 2026-03-08 02:30 EST/EDT gap ends 07:00 UTC; 2026-11-01 01:30 is first EDT (05:30 UTC).
  CHECK(ny->to_utc(at(2026, 3, 8, 2, 30)) == at(2026, 3, 8, 7, 0));
  CHECK(ny->to_utc(at(2026, 11, 1, 1, 30)) == at(2026, 11, 1, 5, 30));
  CHECK(ny->to_utc(at(2026, 11, 1, 2, 30)) == at(2026, 11, 1, 7, 30));
}

TEST_CASE("tz: to_utc inverts to_local around every kind of transition") {
  const auto berlin = zone("Europe/Berlin");
  const auto sydney = zone("Australia/Sydney");
  for (const auto& z : {berlin, sydney}) {
    for (const std::int64_t day : {at(2026, 3, 28), at(2026, 10, 24), at(2026, 4, 4),
                                   at(2045, 3, 25), at(2245, 10, 25), at(2245, 9, 30)}) {
      for (std::int64_t u = day; u < day + 3 * 86400; u += 600) {
        const std::int64_t local = z->to_local(u);
        const std::int64_t back = z->to_utc(local);
        CHECK(z->to_local(back) == local);
        // Either the same instant, or u is the second pass of a repeated hour.
        const bool ok =
            back == u || (u - back == 3600 && z->offset_at(back) - 3600 == z->offset_at(u));
        CHECK_MESSAGE(ok, z->name() << " u=" << u << " back=" << back);
      }
    }
  }
}

TEST_CASE("tz: refuses names that are not plain relative paths") {
  CHECK(contains(load_error("../etc/passwd"), "invalid time zone name '../etc/passwd'"));
  CHECK(contains(load_error("Europe/../../etc/passwd"), "'..'"));
  CHECK(contains(load_error("/etc/passwd"), "invalid time zone name '/etc/passwd'"));
  CHECK(contains(load_error(""), "invalid time zone name ''"));
  CHECK(contains(load_error("Europe/Ber lin"), "invalid time zone name"));
  CHECK(contains(load_error("Europe/Berlin\n"), "invalid time zone name 'Europe/Berlin?'"));
  CHECK(contains(load_error("Europe\\Berlin"), "invalid time zone name"));
  CHECK(contains(load_error(".hidden"), "invalid time zone name"));
}

TEST_CASE("tz: unknown zones and directories") {
  CHECK(load_error("Mars/Base") ==
        "unknown time zone 'Mars/Base': no such file in /usr/share/zoneinfo");
  CHECK(contains(load_error("Europe"), "unknown time zone 'Europe'"));
  TempDir tmp;
  CHECK(load_error("Europe/Berlin", tmp.dir()) ==
        "unknown time zone 'Europe/Berlin': no such file in " + tmp.dir());
}

TEST_CASE("tz: truncated and garbage TZif files are errors") {
  TempDir tmp;
  const std::string berlin = read_file("/usr/share/zoneinfo/Europe/Berlin");
  REQUIRE(berlin.size() > 100);
  // Every proper prefix lacks at least the footer's closing newline.
  for (std::size_t n = 0; n < berlin.size(); ++n) {
    tmp.write("Trunc", berlin.substr(0, n));
    auto r = TimeZone::load("Trunc", tmp.dir());
    REQUIRE_FALSE(r.has_value());
    CHECK(contains(r.error().message, "time zone 'Trunc': malformed TZif file"));
  }
  tmp.write("Whole", berlin);
  CHECK(TimeZone::load("Whole", tmp.dir()).has_value());

  tmp.write("Garbage", "this is not a time zone at all, just some text\n");
  CHECK(contains(load_error("Garbage", tmp.dir()), "not a TZif file"));
  tmp.write("Empty", "");
  CHECK(contains(load_error("Empty", tmp.dir()), "truncated header"));
}

TEST_CASE("tz: hostile TZif headers and tables are rejected") {
  TempDir tmp;
  auto error_for = [&](const TzifSpec& spec) {
    tmp.write("Bad", build_tzif(spec));
    return load_error("Bad", tmp.dir());
  };
  {
    // Counts claiming ~4 billion transitions in a 60-byte file.
    std::string bytes = build_tzif(TzifSpec{});
    for (int i = 32; i < 36; ++i) bytes[static_cast<std::size_t>(i)] = '\xff';  // timecnt
    tmp.write("Huge", bytes);
    CHECK(contains(load_error("Huge", tmp.dir()), "truncated"));
  }
  TzifSpec no_types;
  no_types.offsets.clear();
  CHECK(contains(error_for(no_types), "no local time types"));

  TzifSpec bad_index;
  bad_index.transitions = {{1000, 7}};
  CHECK(contains(error_for(bad_index), "type index out of range"));

  TzifSpec descending;
  descending.offsets = {0, 3600};
  descending.transitions = {{2000, 1}, {1000, 0}};
  CHECK(contains(error_for(descending), "not ascending"));

  TzifSpec huge_offset;
  huge_offset.offsets = {100 * 3600};
  CHECK(contains(error_for(huge_offset), "offset out of range"));

  TzifSpec leap;
  leap.leapcnt = 1;
  CHECK(contains(error_for(leap), "leap-second"));

  TzifSpec bad_version;
  bad_version.version = '1';
  CHECK(contains(error_for(bad_version), "unsupported TZif version"));

  for (const char* footer :
       {"garbage", "<", "<+05", "<>-5", "AB-1", "CET-25", "CET-1:60", "CET-1CEST,M13.1.0,M1.1.0",
        "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,J0,J100",
        "CET-1CEST,366,J100", "CET-1CEST,M3.5.0/168,M10.5.0", "CET-1CEST,M3.5.0",
        "CET-1CEST,M3.5.0,M10.5.0,", "CET-1CEST,M3.5.0/2:00:60,M10.5.0"}) {
    TzifSpec spec;
    spec.footer = footer;
    CHECK_MESSAGE(contains(error_for(spec), "bad POSIX TZ footer"), footer);
  }
}

TEST_CASE("tz: randomly corrupted files never crash the loader") {
  TempDir tmp;
  const std::string berlin = read_file("/usr/share/zoneinfo/Europe/Berlin");
  REQUIRE_FALSE(berlin.empty());
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(state >> 33);
  };
  int loaded = 0;
  for (int round = 0; round < 400; ++round) {
    std::string bytes = berlin;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int i = 0; i < flips; ++i) bytes[next() % bytes.size()] = static_cast<char>(next());
    tmp.write("Fuzz", bytes);
    auto r = TimeZone::load("Fuzz", tmp.dir());
    if (!r) continue;
    ++loaded;
    // Whatever was accepted must answer queries without faulting.
    for (const std::int64_t t : {at(1900, 1, 1), at(2026, 3, 29, 2, 30), at(2245, 10, 26),
                                 std::numeric_limits<std::int64_t>::max()}) {
      (void)(*r)->offset_at(t);
      (void)(*r)->to_utc(t);
    }
  }
  // Flips in abbreviations and padding leave the file valid: both outcomes must occur.
  CHECK(loaded > 0);
  CHECK(loaded < 400);
}

TEST_CASE("tz: POSIX footer forms Jn, n, hh:mm:ss, >24h and negative rule times") {
  // std AAA = +02, dst BBB = +03 (default std+1h).
  // Start J60/26:30: J60 is Mar 1 in every year (Feb 29 never counted); 26:30 std on Mar 1
  //   = Mar 2 02:30 +02 = Mar 2 00:30 UTC.
  // End 300/-1:15:30: zero-based day 300 is Oct 28 in 2030 (day 301; Sep 30 is day 273)
  //   and Oct 27 in leap 2032 (Sep 30 is day 274); minus 1:15:30 in DST (+03):
  //   2030: Oct 27 22:44:30 +03 = Oct 27 19:44:30 UTC; 2032: Oct 26 19:44:30 UTC.
  const std::string footer = "AAA-2BBB,J60/26:30,300/-1:15:30";
  TempDir tmp;
  TzifSpec rule_only;  // no stored transitions: the footer governs all instants
  rule_only.offsets = {7200};
  rule_only.footer = footer;
  tmp.write("RuleOnly", build_tzif(rule_only));
  TzifSpec with_table;  // one stored transition in 2000: the footer is expanded to a table
  with_table.offsets = {3600, 7200};
  with_table.transitions = {{at(2000, 1, 1), 1}};
  with_table.footer = footer;
  tmp.write("WithTable", build_tzif(with_table));

  for (const char* name : {"RuleOnly", "WithTable"}) {
    CAPTURE(name);
    const auto z = zone(name, tmp.dir());
    CHECK(z->offset_at(at(2030, 3, 2, 0, 29, 59)) == 7200);
    CHECK(z->offset_at(at(2030, 3, 2, 0, 30, 0)) == 10800);
    CHECK(z->offset_at(at(2030, 10, 27, 19, 44, 29)) == 10800);
    CHECK(z->offset_at(at(2030, 10, 27, 19, 44, 30)) == 7200);
    CHECK(z->offset_at(at(2032, 3, 2, 0, 29, 59)) == 7200);
    CHECK(z->offset_at(at(2032, 3, 2, 0, 30, 0)) == 10800);
    CHECK(z->offset_at(at(2032, 10, 26, 19, 44, 29)) == 10800);
    CHECK(z->offset_at(at(2032, 10, 26, 19, 44, 30)) == 7200);
    // Gap: Mar 2 02:30 -> 03:30 local; overlap: Oct 27 21:44:30 -> 22:44:30 local (2030).
    CHECK(z->to_utc(at(2030, 3, 2, 3, 0)) == at(2030, 3, 2, 0, 30));
    CHECK(z->to_utc(at(2030, 10, 27, 22, 0)) == at(2030, 10, 27, 19, 0));
  }
  const auto old = zone("WithTable", tmp.dir());
  CHECK(old->offset_at(at(1999, 12, 31, 23, 59, 59)) == 3600);  // type 0 before the table
}

TEST_CASE("tz: fixed and signed footer offsets") {
  TempDir tmp;
  struct Case {
    const char* footer;
    std::int32_t offset;
  };
  // POSIX offsets count west positive: "<+0530>-5:30" is UTC+05:30.
  for (const Case c :
       {Case{"<+05>-5", 18000}, Case{"<+0530>-5:30", 19800}, Case{"<-0330>3:30", -12600},
        Case{"<+0545>-05:45:00", 20700}, Case{"XYZ+4", -14400}, Case{"UTC0", 0}}) {
    CAPTURE(c.footer);
    TzifSpec spec;
    spec.offsets = {0};  // deliberately different: without transitions the footer rules
    spec.footer = c.footer;
    tmp.write("Fixed", build_tzif(spec));
    const auto z = zone("Fixed", tmp.dir());
    CHECK(z->offset_at(at(1950, 1, 1)) == c.offset);
    CHECK(z->offset_at(at(2026, 6, 1)) == c.offset);
    CHECK(z->to_utc(at(2026, 6, 1, 12)) == at(2026, 6, 1, 12) - c.offset);
  }
}

TEST_CASE("tz: permanent DST written as 0/0,J365/25") {
  // DST starts Jan 1 00:00 EST and ends Dec 31 25:00 EDT = Jan 1 00:00 EST of the next
  // year: the same instant, so DST (-04) never ends.
  TempDir tmp;
  TzifSpec rule_only;
  rule_only.offsets = {-18000};
  rule_only.footer = "EST5EDT,0/0,J365/25";
  tmp.write("Perm", build_tzif(rule_only));
  TzifSpec with_table = rule_only;
  with_table.offsets = {-18000, -14400};
  with_table.transitions = {{at(2000, 1, 1, 5), 1}};
  tmp.write("PermTable", build_tzif(with_table));
  for (const char* name : {"Perm", "PermTable"}) {
    CAPTURE(name);
    const auto z = zone(name, tmp.dir());
    for (const std::int64_t t :
         {at(2030, 1, 1, 4, 59, 59), at(2030, 1, 1, 5), at(2030, 1, 1, 5, 0, 1), at(2030, 7, 1),
          at(2031, 12, 31, 23), at(2245, 1, 1, 5)}) {
      CHECK(z->offset_at(t) == -14400);
    }
    CHECK(z->to_utc(at(2030, 1, 1, 0, 30)) == at(2030, 1, 1, 4, 30));
  }
}

TEST_CASE("tz: version 1 file without footer keeps its last offset") {
  TempDir tmp;
  TzifSpec v1;
  v1.version = '\0';
  v1.offsets = {0, 3600, 7200};
  v1.transitions = {{1000000000, 1}, {1100000000, 2}};
  tmp.write("V1", build_tzif(v1));
  const auto z = zone("V1", tmp.dir());
  CHECK(z->offset_at(999999999) == 0);
  CHECK(z->offset_at(1000000000) == 3600);
  CHECK(z->offset_at(1099999999) == 3600);
  CHECK(z->offset_at(1100000000) == 7200);
  CHECK(z->offset_at(at(2300, 1, 1)) == 7200);
  // Gap at 1e9: local [1e9, 1e9+3600) is skipped and maps to 1e9.
  CHECK(z->to_utc(1000000000 + 1800) == 1000000000);
  CHECK(z->to_utc(1000000000 + 3600) == 1000000000);
  CHECK(z->to_utc(999999999) == 999999999);
}
