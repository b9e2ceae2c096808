// gen_export: writes a synthetic, reproducible Telegram Desktop export (and optionally the
// matching configuration) for benchmarks and the bundled sample.
#include "bench/export_generator.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>

namespace replywatch::bench {
namespace {

constexpr const char* kHelp = R"(Usage:
  gen_export --messages N --chats K --seed S --out DIR [flags]

Writes DIR/result.json, a whole-account Telegram Desktop export (chats.list) of K
public supergroups with N messages in all: citizens' appeals, follow-ups and
chatter, linked-channel posts, official answers after a log-normal delay (some
never), a moderation bot, and service messages. Same flags, same bytes.

Flags:
  --messages N        Messages in all chats together (default 300).
  --chats K           Chats (default 2); sizes are uneven, the first is the largest.
  --agencies A        Agencies owning the chats round-robin (default: K/2 rounded up).
  --seed S            Seed (default 1).
  --days D            Time span (default: N/40000 days, between 7 and 120).
  --files F           Split the chats over F exports, DIR/export-1/result.json ...;
                      simdjson parses documents below 4 GiB only.
  --out DIR           Output directory. Required.
  --config-out FILE   Also write the matching replywatch configuration.
  -h, --help          Show this help.
)";

bool parse_number(std::string_view s, std::uint64_t& out) {
  // Accept 5000000, 5e6 and 5_000_000: benchmark commands are easier to read that way.
  std::string digits;
  for (char c : s) {
    if (c != '_') digits += c;
  }
  const auto e = digits.find_first_of("eE");
  if (e != std::string::npos) {
    std::uint64_t mantissa = 0, exponent = 0;
    const char* b = digits.data();
    if (std::from_chars(b, b + e, mantissa).ptr != b + e) return false;
    const char* x = b + e + 1;
    const char* end = b + digits.size();
    if (std::from_chars(x, end, exponent).ptr != end || exponent > 18) return false;
    out = mantissa;
    for (std::uint64_t i = 0; i < exponent; ++i) out *= 10;
    return true;
  }
  const char* b = digits.data();
  const char* end = b + digits.size();
  const auto r = std::from_chars(b, end, out);
  return r.ec == std::errc() && r.ptr == end && !digits.empty();
}

int run(int argc, char** argv) {
  GeneratorOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "gen_export: unknown flag or missing value: %s\n", argv[i]);
      return 1;
    }
    const std::string_view v = argv[++i];
    std::uint64_t n = 0;
    const bool numeric = parse_number(v, n);
    auto need_number = [&](auto& field, std::uint64_t max) {
      if (!numeric || n > max) {
        std::fprintf(stderr, "gen_export: %s needs a number up to %llu, not '%s'\n", argv[i - 1],
                     static_cast<unsigned long long>(max), argv[i]);
        return false;
      }
      field = static_cast<std::remove_reference_t<decltype(field)>>(n);
      return true;
    };
    bool ok = true;
    if (a == "--messages") {
      ok = need_number(o.messages, 2'000'000'000);
    } else if (a == "--chats") {
      ok = need_number(o.chats, 100'000);
    } else if (a == "--agencies") {
      ok = need_number(o.agencies, 1'000);
    } else if (a == "--seed") {
      ok = need_number(o.seed, UINT64_MAX);
    } else if (a == "--days") {
      ok = need_number(o.days, 3660);
    } else if (a == "--files") {
      ok = need_number(o.files, 10'000);
    } else if (a == "--out") {
      o.out_dir = std::string(v);
    } else if (a == "--config-out") {
      o.config_out = std::string(v);
    } else {
      std::fprintf(stderr, "gen_export: unknown flag %s (see --help)\n", argv[i - 1]);
      return 1;
    }
    if (!ok) return 1;
  }
  if (o.out_dir.empty()) {
    std::fputs("gen_export: --out DIR is required (see --help)\n", stderr);
    return 1;
  }
  if (o.chats == 0) {
    std::fputs("gen_export: --chats must be at least 1\n", stderr);
    return 1;
  }

  const auto start = std::chrono::steady_clock::now();
  const GeneratorReport report = generate_export(o);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!report.error.empty()) {
    std::fprintf(stderr, "gen_export: %s\n", report.error.c_str());
    return 1;
  }
  for (const auto& f : report.files) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(f, ec);
    std::printf("%s\t%llu bytes\n", f.c_str(), static_cast<unsigned long long>(size));
    if (!ec && exceeds_parser_limit(size)) {
      std::fprintf(stderr,
                   "gen_export: warning: %s exceeds 4 GiB - 1 bytes, more than simdjson "
                   "parses as one document. Use --files to split.\n",
                   f.c_str());
    }
  }
  if (!o.config_out.empty()) std::printf("%s\tconfiguration\n", o.config_out.c_str());
  std::fprintf(stderr,
               "gen_export: %llu messages (%llu official answers), %llu bytes (%.0f bytes/message) "
               "in %.2f s (%.0f MB/s)\n",
               static_cast<unsigned long long>(report.messages),
               static_cast<unsigned long long>(report.answers),
               static_cast<unsigned long long>(report.bytes),
               report.messages ? static_cast<double>(report.bytes) /
                                     static_cast<double>(report.messages)
                               : 0.0,
               secs, secs > 0 ? static_cast<double>(report.bytes) / secs / 1e6 : 0.0);
  return 0;
}

}  // namespace
}  // namespace replywatch::bench

int main(int argc, char** argv) { return replywatch::bench::run(argc, argv); }
