// open_appeal_memory: bytes the pairing engine holds per open appeal, by its own account
// (Pairing::memory_bytes) and by the process's resident set.
#include "pipeline/pairing.hpp"
#include "pipeline/registry.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace replywatch::bench {
namespace {

constexpr const char* kHelp = R"(Usage:
  open_appeal_memory [--n LIST] [--conversations LIST] [--target BYTES]

Feeds pipeline::Pairing N citizen messages that each open an appeal (distinct
citizens, each its own thread, never answered), spread over C conversations, and
reports bytes per open appeal: Pairing::memory_bytes()/N and the growth of the
resident set (VmRSS) and of its peak (VmHWM) over N.

Pairing also keeps one thread-map entry per message, appeal or not. A second run
per point feeds N service messages instead (thread-map entries, no appeal), so
the report splits the cost: per open appeal excluding the thread map, the
thread map per message, and the total with one message per appeal.

Every measurement runs in its own forked process, so allocator state left by
one does not blur the next.

Flags:
  --n LIST              Appeal counts, comma-separated (default 100000,1000000,4000000)
  --conversations LIST  Conversation counts (default 1,64)
  --target BYTES        Budget per open appeal to compare against (default 200)
  -h, --help            Show this help
)";

struct Measurement {
  std::uint64_t memory_bytes = 0;  // Pairing::memory_bytes()
  std::int64_t rss_growth = 0;     // VmRSS after − before, bytes
  std::int64_t hwm_growth = 0;     // VmHWM after − VmRSS before, bytes
  std::uint64_t open_appeals = 0;
  bool ok = false;
};

/// A field of /proc/self/status in bytes ("VmRSS:   1234 kB").
std::int64_t proc_status_bytes(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size(), field) == 0 && line.size() > field.size() &&
        line[field.size()] == ':') {
      std::istringstream rest(line.substr(field.size() + 1));
      std::int64_t kib = 0;
      rest >> kib;
      return kib * 1024;
    }
  }
  return -1;
}

class CountingSink : public pipeline::AppealSink {
 public:
  void on_appeal(const pipeline::Appeal* before, const pipeline::Appeal* after) override {
    if (!before) ++opened;
    if (after && after->status != pipeline::AppealStatus::open) ++closed;
  }
  std::uint64_t opened = 0, closed = 0;
};

std::shared_ptr<const pipeline::Registry> make_registry(std::uint32_t conversations) {
  auto r = std::make_shared<pipeline::Registry>();
  pipeline::Agency agency;
  agency.id = "bench";
  agency.name = "Bench agency";
  agency.timezone = "UTC";
  for (std::uint32_t k = 0; k < conversations; ++k) {
    agency.conversations.push_back({pipeline::Source::telegram, -1001800000000 - k});
  }
  agency.accounts.push_back({pipeline::Source::telegram, 5000000001, "press_office", "", ""});
  r->agencies.push_back(std::move(agency));
  r->index();
  return r;
}

/// In the calling process: N events round-robin over the conversations, message ids
/// ascending in each. `appeals`: citizen messages; otherwise service messages, which enter
/// the thread map and nothing else.
Measurement measure(std::uint64_t n, std::uint32_t conversations, bool appeals) {
  const auto registry = make_registry(conversations);
  CountingSink sink;
  Measurement m;
  const std::int64_t rss_before = proc_status_bytes("VmRSS");
  {
    pipeline::Pairing pairing(registry, sink);
    pipeline::Event e;
    e.source = pipeline::Source::telegram;
    e.kind = appeals ? pipeline::EventKind::message : pipeline::EventKind::service;
    e.author_hint = pipeline::AuthorHint::user;
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto k = static_cast<std::int64_t>(i % conversations);
      e.conversation = -1001800000000 - k;
      e.message_id = static_cast<std::int64_t>(i / conversations) + 1;
      e.author = appeals ? 1'000'000'000 + static_cast<std::int64_t>(i) : 0;
      e.time = 1772323200 + static_cast<std::int64_t>(i);
      pairing.on_event(e);
    }
    m.memory_bytes = pairing.memory_bytes();
    m.open_appeals = pairing.open_appeals();
    m.rss_growth = proc_status_bytes("VmRSS") - rss_before;
    m.hwm_growth = proc_status_bytes("VmHWM") - rss_before;
  }
  m.ok = sink.closed == 0 && m.open_appeals == (appeals ? n : 0) && sink.opened == m.open_appeals;
  return m;
}

/// Runs `measure` in a child process and returns what it sent back.
Measurement measure_in_child(std::uint64_t n, std::uint32_t conversations, bool appeals) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return {};
  if (pid == 0) {
    close(fds[0]);
    const Measurement m = measure(n, conversations, appeals);
    const bool sent = write(fds[1], &m, sizeof m) == static_cast<ssize_t>(sizeof m);
    _exit(sent ? 0 : 1);
  }
  close(fds[1]);
  Measurement m;
  const bool got = read(fds[0], &m, sizeof m) == static_cast<ssize_t>(sizeof m);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return {};
  return m;
}

bool parse_list(std::string_view text, std::vector<std::uint64_t>& out) {
  out.clear();
  std::stringstream in{std::string(text)};
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      std::size_t used = 0;
      const double v = std::stod(item, &used);  // 4e6 reads better than 4000000
      if (used != item.size() || v < 1) return false;
      out.push_back(static_cast<std::uint64_t>(v));
    } catch (const std::exception&) {
      return false;
    }
  }
  return !out.empty();
}

int run(int argc, char** argv) {
  std::vector<std::uint64_t> ns = {100'000, 1'000'000, 4'000'000};
  std::vector<std::uint64_t> convs = {1, 64};
  double target = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "open_appeal_memory: unknown flag or missing value: %s\n", argv[i]);
      return 1;
    }
    const std::string_view v = argv[++i];
    bool ok = true;
    if (a == "--n") {
      ok = parse_list(v, ns);
    } else if (a == "--conversations") {
      ok = parse_list(v, convs);
    } else if (a == "--target") {
      std::vector<std::uint64_t> t;
      ok = parse_list(v, t) && t.size() == 1;
      if (ok) target = static_cast<double>(t[0]);
    } else {
      std::fprintf(stderr, "open_appeal_memory: unknown flag %s (see --help)\n", argv[i - 1]);
      return 1;
    }
    if (!ok) {
      std::fprintf(stderr, "open_appeal_memory: bad value for %s: '%s'\n", argv[i - 1], argv[i]);
      return 1;
    }
  }

  std::printf("bytes per open appeal; 'appeal' excludes the thread map, 'thread map' is per "
              "message,\n'total' is both with one message per appeal. Target: %.0f bytes per "
              "open appeal.\n\n",
              target);
  std::printf("%6s %9s | %-30s | %-30s | %10s\n", "", "", "Pairing::memory_bytes() / N",
              "VmRSS growth / N", "VmHWM / N");
  std::printf("%6s %9s | %9s %10s %9s | %9s %10s %9s | %10s\n", "convs", "N", "appeal",
              "thread map", "total", "appeal", "thread map", "total", "total");
  bool all_ok = true;
  double worst_appeal = 0, worst_total = 0;
  for (const std::uint64_t c : convs) {
    for (const std::uint64_t n : ns) {
      const auto conv = static_cast<std::uint32_t>(c);
      const Measurement with = measure_in_child(n, conv, true);
      const Measurement base = measure_in_child(n, conv, false);
      if (!with.ok || !base.ok) {
        std::printf("%6u %9llu | measurement failed (child died or counts disagree)\n", conv,
                    static_cast<unsigned long long>(n));
        all_ok = false;
        continue;
      }
      const double dn = static_cast<double>(n);
      const double mem_total = static_cast<double>(with.memory_bytes) / dn;
      const double mem_thread = static_cast<double>(base.memory_bytes) / dn;
      const double rss_total = static_cast<double>(with.rss_growth) / dn;
      const double rss_thread = static_cast<double>(base.rss_growth) / dn;
      std::printf("%6u %9llu | %9.1f %10.1f %9.1f | %9.1f %10.1f %9.1f | %10.1f\n", conv,
                  static_cast<unsigned long long>(n), mem_total - mem_thread, mem_thread,
                  mem_total, rss_total - rss_thread, rss_thread, rss_total,
                  static_cast<double>(with.hwm_growth) / dn);
      worst_appeal = std::max(worst_appeal, mem_total - mem_thread);
      worst_total = std::max(worst_total, mem_total);
    }
  }
  std::printf("\nworst Pairing::memory_bytes() per open appeal: %.1f excluding the thread map "
              "(%s), %.1f with it (%s)\n",
              worst_appeal, worst_appeal <= target ? "within target" : "OVER target", worst_total,
              worst_total <= target ? "within target" : "OVER target");
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace replywatch::bench

int main(int argc, char** argv) { return replywatch::bench::run(argc, argv); }
