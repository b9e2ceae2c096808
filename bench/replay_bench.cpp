// replay_bench: throughput of `replywatch replay` (daemon::run_replay, the very code the
// command runs) on Telegram exports, split into parsing and pairing + statistics.
#include "bench/export_generator.hpp"
#include "connectors/telegram_export/export_parser.hpp"
#include "daemon/config.hpp"
#include "daemon/replay.hpp"
#include "daemon/report.hpp"
#include "pipeline/pairing.hpp"
#include "pipeline/stats.hpp"

#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace replywatch::bench {
namespace {

constexpr const char* kHelp = R"(Usage:
  replay_bench --config FILE [flags] INPUT...
  replay_bench --messages N [--chats K] [--seed S] [--files F] [flags]

Times replywatch::daemon::run_replay (what `replywatch replay` runs, minus the
report rendering, timed apart) R times on the inputs, then a parse-only pass
(parse_file into a sink that does nothing) and a pairing + statistics pass over
events already in memory. Single-threaded: the figures are per core.

With --messages and no INPUT, an export and its configuration are generated
into a temporary directory first (gen_export's generator) and removed after.

Flags:
  --config FILE   replywatch configuration (generated with --messages unless given)
  --runs R        Timed runs of each pass (default 3)
  --messages N    Generate N messages (with --chats K, default 8; --seed S, default 1;
                  --files F, default 1)
  --keep DIR      Generate into DIR and keep it, instead of a temporary directory
  --cpu C         Pin the process to CPU C (steadier figures on a shared machine)
  --no-warm       Do not read the inputs once before timing (page cache stays as is)
  --target MPS    Messages per second to compare the median against (default 1000000)
  -h, --help      Show this help
)";

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string resolve_input(const std::string& input) {
  std::error_code ec;
  if (std::filesystem::is_directory(input, ec)) {
    return (std::filesystem::path(input) / "result.json").string();
  }
  return input;
}

/// CPU time split and page faults of one pass: on this VM a fresh 4 KiB page costs
/// microseconds of kernel time, so where memory is first touched matters as much as code.
struct Usage {
  double user = 0, sys = 0;
  long faults = 0;
};

Usage usage_now() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return {secs(u.ru_utime), secs(u.ru_stime), u.ru_minflt + u.ru_majflt};
}

Usage operator-(const Usage& a, const Usage& b) {
  return {a.user - b.user, a.sys - b.sys, a.faults - b.faults};
}

/// The 1-minute load average: figures taken while other jobs hold the cores are not
/// comparable, so every report states it.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string first;
  in >> first;
  return first.empty() ? "?" : first;
}

long peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

/// Counts and otherwise ignores what the parser delivers: what remains is parsing alone.
class NullSink : public connectors::telegram_export::Sink {
 public:
  bool on_chat(std::int64_t, std::string_view, std::string_view) override { return true; }
  void on_event(const pipeline::Event& e) override {
    ++events;
    // Folded into a checksum so the compiler cannot drop the event's construction.
    checksum += static_cast<std::uint64_t>(e.message_id ^ e.time ^ e.author);
  }
  void on_rejected(std::string_view) override { ++rejected; }
  std::uint64_t events = 0, rejected = 0, checksum = 0;
};

/// Keeps every event, in file order, for the pairing-only pass.
class CollectSink : public connectors::telegram_export::Sink {
 public:
  bool on_chat(std::int64_t, std::string_view, std::string_view) override { return true; }
  void on_event(const pipeline::Event& e) override {
    events.push_back(e);
    max_time = std::max(max_time, e.time);
  }
  void on_rejected(std::string_view) override {}
  std::vector<pipeline::Event> events;
  std::int64_t max_time = INT64_MIN;
};

class StatsSink : public pipeline::AppealSink {
 public:
  explicit StatsSink(pipeline::ExactStats& stats) : stats_(stats) {}
  // Events are in id order here, so appeals only ever go from open to decided.
  void on_appeal(const pipeline::Appeal* before, const pipeline::Appeal* after) override {
    if (after && after->status != pipeline::AppealStatus::open &&
        (!before || before->status == pipeline::AppealStatus::open)) {
      if (after->status != pipeline::AppealStatus::withdrawn) stats_.add_closed(*after);
    }
  }

 private:
  pipeline::ExactStats& stats_;
};

struct Args {
  std::string config;
  std::vector<std::string> inputs;
  int runs = 3;
  std::uint64_t generate = 0;
  std::uint32_t chats = 8;
  std::uint32_t files = 1;
  std::uint64_t seed = 1;
  std::string keep;
  int cpu = -1;
  bool warm = true;
  double target = 1e6;
};

bool parse_args(int argc, char** argv, Args& a, int& exit_code) {
  exit_code = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view s = argv[i];
    if (s == "-h" || s == "--help") {
      std::fputs(kHelp, stdout);
      exit_code = 0;
      return false;
    }
    if (s == "--no-warm") {
      a.warm = false;
      continue;
    }
    if (s.size() > 1 && s[0] == '-') {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "replay_bench: %s needs a value\n", argv[i]);
        return false;
      }
      const std::string v = argv[++i];
      try {
        if (s == "--config") {
          a.config = v;
        } else if (s == "--runs") {
          a.runs = std::max(1, std::stoi(v));
        } else if (s == "--messages") {
          a.generate = static_cast<std::uint64_t>(std::stod(v));  // 5e6 reads well
        } else if (s == "--chats") {
          a.chats = static_cast<std::uint32_t>(std::stoul(v));
        } else if (s == "--files") {
          a.files = static_cast<std::uint32_t>(std::stoul(v));
        } else if (s == "--seed") {
          a.seed = std::stoull(v);
        } else if (s == "--keep") {
          a.keep = v;
        } else if (s == "--cpu") {
          a.cpu = std::stoi(v);
        } else if (s == "--target") {
          a.target = std::stod(v);
        } else {
          std::fprintf(stderr, "replay_bench: unknown flag %s (see --help)\n", argv[i - 1]);
          return false;
        }
      } catch (const std::exception&) {
        std::fprintf(stderr, "replay_bench: bad value for %s: '%s'\n", argv[i - 1], v.c_str());
        return false;
      }
      continue;
    }
    a.inputs.emplace_back(s);
  }
  if (a.inputs.empty() && a.generate == 0) {
    std::fputs("replay_bench: give INPUT files (with --config) or --messages N\n", stderr);
    return false;
  }
  if (!a.inputs.empty() && a.config.empty()) {
    std::fputs("replay_bench: --config FILE is required with INPUT files\n", stderr);
    return false;
  }
  return true;
}

/// Reads each file once so every timed run starts from the page cache, not the disk.
void warm_cache(const std::vector<std::string>& files) {
  std::vector<char> buffer(4 << 20);
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    }
  }
}

void print_pass(const char* name, int run, double secs, std::uint64_t messages,
                const Usage& used) {
  std::printf("  %-18s run %d: %8.3f s %11.0f msg/s | user %7.3f s  sys %7.3f s  faults %8ld\n",
              name, run, secs, static_cast<double>(messages) / secs, used.user, used.sys,
              used.faults);
}

void print_summary(const daemon::ReplayResult& r, const pipeline::Registry& registry) {
  std::printf("check: %llu messages read, %llu pairing events, %llu citizen-to-citizen replies "
              "ignored, %zu unowned chats, %zu rejected files\n",
              static_cast<unsigned long long>(r.messages),
              static_cast<unsigned long long>(r.pairing.events),
              static_cast<unsigned long long>(r.pairing.citizen_to_citizen),
              r.unowned_chats.size(), r.rejected_files.size());
  for (const auto& [reason, n] : r.rejected_messages) {
    std::printf("check: rejected messages '%s': %llu\n", reason.c_str(),
                static_cast<unsigned long long>(n));
  }
  for (std::size_t a = 0; a < registry.agencies.size(); ++a) {
    for (const auto kind : {pipeline::AppealKind::first, pipeline::AppealKind::followup}) {
      const auto s = r.stats->summarize(a, kind);
      std::printf("check: %-18s %-8s appeals %9llu  answered %9llu  unanswered %8llu  open %7llu"
                  "  median %7.0f s\n",
                  registry.agencies[a].id.c_str(), std::string(pipeline::to_string(kind)).c_str(),
                  static_cast<unsigned long long>(s.appeals),
                  static_cast<unsigned long long>(s.answered),
                  static_cast<unsigned long long>(s.unanswered),
                  static_cast<unsigned long long>(s.open), s.reply_median.value_or(-1));
    }
  }
}

int run(int argc, char** argv) {
  Args args;
  int exit_code = 1;
  if (!parse_args(argc, argv, args, exit_code)) return exit_code;

  if (args.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(args.cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "replay_bench: cannot pin to CPU %d\n", args.cpu);
      return 1;
    }
  }

  // Generated inputs live in a directory removed at exit, unless --keep names one.
  std::string temp_dir;
  struct Cleanup {
    std::string* dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir->empty()) std::filesystem::remove_all(*dir, ec);
    }
  } cleanup{&temp_dir};
  if (args.inputs.empty()) {
    GeneratorOptions g;
    g.messages = args.generate;
    g.chats = args.chats;
    g.files = args.files;
    g.seed = args.seed;
    if (args.keep.empty()) {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "replay_bench.XXXXXX").string();
      if (!mkdtemp(pattern.data())) {
        std::perror("replay_bench: mkdtemp");
        return 1;
      }
      temp_dir = pattern;
      g.out_dir = temp_dir;
    } else {
      g.out_dir = args.keep;
    }
    const std::string generated_config = g.out_dir + "/config.yaml";
    g.config_out = generated_config;
    std::fprintf(stderr, "replay_bench: generating %llu messages into %s ...\n",
                 static_cast<unsigned long long>(g.messages), g.out_dir.c_str());
    const auto start = Clock::now();
    const GeneratorReport report = generate_export(g);
    if (!report.error.empty()) {
      std::fprintf(stderr, "replay_bench: %s\n", report.error.c_str());
      return 1;
    }
    std::fprintf(stderr, "replay_bench: generated %llu bytes in %.1f s\n",
                 static_cast<unsigned long long>(report.bytes), seconds_since(start));
    args.inputs = report.files;
    if (args.config.empty()) args.config = generated_config;
  }

  auto config = daemon::load_config(args.config);
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 1;
  }
  const auto registry = config->registry;

  std::vector<std::string> files;
  std::uint64_t bytes = 0;
  for (const auto& in : args.inputs) {
    files.push_back(resolve_input(in));
    std::error_code ec;
    const auto size = std::filesystem::file_size(files.back(), ec);
    if (ec) {
      std::fprintf(stderr, "replay_bench: %s: %s\n", files.back().c_str(), ec.message().c_str());
      return 1;
    }
    bytes += size;
  }
  if (args.warm) warm_cache(files);

  daemon::ReplayOptions options;
  options.inputs = args.inputs;
  std::ostream no_progress(nullptr);  // a stream without a buffer drops what it is given

  // ---- 1. run_replay: parse + buffer + pair + stats, exactly as `replywatch replay`.
  std::printf("replay_bench: %zu input file(s), %.3f GB, config %s, %zu agencies, %d run(s), "
              "load average %s\n",
              files.size(), static_cast<double>(bytes) / 1e9, args.config.c_str(),
              registry->agencies.size(), args.runs, load_average().c_str());
  std::vector<double> replay_secs;
  std::vector<Usage> replay_usage;
  std::uint64_t messages = 0;
  double report_secs = 0;
  for (int r = 1; r <= args.runs; ++r) {
    const Usage before = usage_now();
    const auto start = Clock::now();
    daemon::ReplayResult result = daemon::run_replay(registry, options, no_progress);
    const double secs = seconds_since(start);
    const Usage used = usage_now() - before;
    if (!result.rejected_files.empty()) {
      for (const auto& f : result.rejected_files) {
        std::fprintf(stderr, "replay_bench: rejected %s: %s\n", f.file.c_str(), f.error.c_str());
      }
      return 1;
    }
    messages = result.messages;
    replay_secs.push_back(secs);
    replay_usage.push_back(used);
    print_pass("replay", r, secs, messages, used);
    if (r == args.runs) {
      const auto report_start = Clock::now();
      const std::string report =
          daemon::render_report(*registry, result, daemon::ReportFormat::json);
      report_secs = seconds_since(report_start);
      std::printf("  %-18s        %8.3f s  (%zu bytes of JSON; not in the replay figure)\n",
                  "render_report", report_secs, report.size());
      print_summary(result, *registry);
    }
  }

  // ---- 2. Parsing alone: the same files into a sink that does nothing.
  connectors::telegram_export::ParseOptions parse_options;
  parse_options.map_file = true;  // as replay reads its inputs
  std::vector<double> parse_secs;
  for (int r = 1; r <= args.runs; ++r) {
    NullSink sink;
    const Usage before = usage_now();
    const auto start = Clock::now();
    for (const auto& f : files) {
      auto parsed = connectors::telegram_export::parse_file(f, parse_options, sink);
      if (!parsed) {
        std::fprintf(stderr, "replay_bench: %s\n", parsed.error().message.c_str());
        return 1;
      }
    }
    const double secs = seconds_since(start);
    parse_secs.push_back(secs);
    print_pass("parse only", r, secs, sink.events, usage_now() - before);
    if (sink.events != messages) {
      std::fprintf(stderr, "replay_bench: note: parse-only saw %llu events, replay %llu\n",
                   static_cast<unsigned long long>(sink.events),
                   static_cast<unsigned long long>(messages));
    }
  }

  // ---- 3. Pairing + statistics alone, on events already in memory (parsed untimed).
  CollectSink collected;
  collected.events.reserve(messages);
  for (const auto& f : files) {
    if (!connectors::telegram_export::parse_file(f, parse_options, collected)) return 1;
  }
  std::vector<double> pair_secs;
  std::uint64_t appeals_open = 0;
  for (int r = 1; r <= args.runs; ++r) {
    const Usage before = usage_now();
    const auto start = Clock::now();
    pipeline::ExactStats stats(registry);
    StatsSink sink(stats);
    pipeline::Pairing pairing(registry, sink);
    for (const auto& e : collected.events) pairing.on_event(e);
    if (!collected.events.empty()) {
      pairing.expire(collected.max_time);
      pairing.for_each_open(
          [&](const pipeline::Appeal& a) { stats.add_open(a, collected.max_time); });
    }
    appeals_open = pairing.open_appeals();
    const double secs = seconds_since(start);
    pair_secs.push_back(secs);
    print_pass("pair + stats only", r, secs, collected.events.size(), usage_now() - before);
  }

  const double replay_med = median(replay_secs);
  const double parse_med = median(parse_secs);
  const double pair_med = median(pair_secs);
  const double n = static_cast<double>(messages);
  std::printf("\nmessages %llu, input %.3f GB (%.0f bytes/message), open appeals at the end %llu\n",
              static_cast<unsigned long long>(messages), static_cast<double>(bytes) / 1e9,
              n > 0 ? static_cast<double>(bytes) / n : 0.0,
              static_cast<unsigned long long>(appeals_open));
  std::printf("median replay (parse + pair + stats): %.3f s  %.0f msg/s  %.1f MB/s\n", replay_med,
              n / replay_med, static_cast<double>(bytes) / replay_med / 1e6);
  {
    std::vector<double> user, sys;
    for (const auto& u : replay_usage) {
      user.push_back(u.user);
      sys.push_back(u.sys);
    }
    // On a shared machine wall time includes waiting for a core; CPU time does not.
    const double cpu = median(user) + median(sys);
    std::printf("  CPU (medians): user %.3f s + kernel %.3f s = %.3f s, %.0f msg/s per CPU "
                "second\n",
                median(user), median(sys), cpu, n / cpu);
  }
  std::printf("median parse only:                    %.3f s  %.0f msg/s  %.1f MB/s  (%.0f%% of "
              "replay)\n",
              parse_med, n / parse_med, static_cast<double>(bytes) / parse_med / 1e6,
              100 * parse_med / replay_med);
  std::printf("median pair + stats only:             %.3f s  %.0f msg/s  (%.0f%% of replay)\n",
              pair_med, n / pair_med, 100 * pair_med / replay_med);
  std::printf("replay - parse - pair (buffering, merging, sorting): %.3f s\n",
              replay_med - parse_med - pair_med);
  std::printf("peak RSS %ld MiB, load average now %s\n", peak_rss_mib(), load_average().c_str());
  const bool met = n / replay_med >= args.target;
  std::printf("target %.0f msg/s: %s\n", args.target, met ? "met" : "MISSED");
  return 0;
}

}  // namespace
}  // namespace replywatch::bench

int main(int argc, char** argv) { return replywatch::bench::run(argc, argv); }
