// Subcommand dispatch and flag parsing; each subcommand's --help lists every flag.
#include "daemon/cli.hpp"

#include <charconv>
#include <fstream>

#include "daemon/config.hpp"
#include "daemon/kafka/topics.hpp"
#include "daemon/replay.hpp"
#include "daemon/report.hpp"
#include "daemon/server.hpp"
#include "daemon/version.hpp"

namespace replywatch::daemon {

namespace {

constexpr const char* kMainHelp = R"(replywatch — how fast public agencies answer citizens

Usage:
  replywatch <command> [flags]

Commands:
  run           Run the daemon: connectors, pairing, /metrics and the ranking API
  replay        Pair appeals and answers in exports or event files; print statistics
  check-config  Validate a configuration file; exit 0 when valid, 1 otherwise
  kafka-check   Check the Kafka cluster of `bus:` (topics, ACLs, replicas); exit 0 when ready

Flags:
  -h, --help    Show this help (and `replywatch <command> --help` for a command)
  --version     Print version and revision

Exit codes: 0 success, 1 usage or configuration error, 2 some input was rejected.
)";

constexpr const char* kReplayHelp = R"(Usage:
  replywatch replay --config FILE [flags] INPUT...

Reads Telegram Desktop exports (result.json of one chat, or of a whole account
with chats.list; a directory means its result.json) and normalized-event files
(*.ndjson, *.jsonl: docs/ingest-format.md), pairs every citizen appeal with the
first official answer by the rules, and prints per-agency statistics to stdout.
The order of the inputs, and duplicates among them, change nothing.

Flags:
  --config FILE          Configuration (agencies, accounts, calendars). Required.
  --appeals OUT.ndjson   Also write every appeal, one JSON object per line.
  --format FORMAT        Report format: json (default), csv or table.
  --export-timezone TZ   IANA zone of the exporting machine, for old exports whose
                         messages have only `date` (local time) and no
                         `date_unixtime`. Without it such messages are rejected.
  --clock UNIX_SECONDS   The time appeals are judged at (expired past the horizon,
                         or open). Default: the latest message time of the inputs.
  --source vk            Every INPUT is a file of VK's own JSON: API responses
                         (wall.get, wall.getComments), posts, comments or Callback
                         API pushes, one after another; a directory means the
                         files in it (docs/backfill-files.md).
  -h, --help             Show this help.

A file that is not valid JSON or not an export is named on stderr and skipped;
the other inputs are still processed and the exit code is 2. Malformed messages
are skipped and counted under `rejected_messages` in the report.
)";

constexpr const char* kRunHelp = R"(Usage:
  replywatch run --config FILE

Runs the daemon until SIGTERM or SIGINT: the configured connectors feed the
bus (in-process, or Kafka with `bus: {type: kafka}`), appeals are paired by the rules whatever the order messages
arrive in, and expired on each conversation's clock (the watermark of the
connectors that deliver it: the wall clock less daemon.lateness_secs once they
have caught up); the HTTP
server (daemon.listen, default 127.0.0.1:9464) serves /metrics, /healthz,
/readyz, /api/v1/ranking and /api/v1/appeals. State is snapshotted to
daemon.data_dir periodically and at shutdown, and restored at start.
SIGHUP reloads the configuration (registry changes apply at once; an invalid
file is rejected and the running configuration kept).

Flags:
  --config FILE   The configuration. Required.
  -h, --help      Show this help.
)";

constexpr const char* kCheckConfigHelp = R"(Usage:
  replywatch check-config --config FILE

Validates FILE and lists every problem (file, line, key path). Exit 0 when the
configuration is valid, 1 otherwise. Nothing is contacted.

Flags:
  --config FILE   The configuration to check. Required.
  -h, --help      Show this help.
)";

constexpr const char* kKafkaCheckHelp = R"(Usage:
  replywatch kafka-check --config FILE

Contacts the Kafka cluster of FILE's `bus:` section and prints one line per check:
brokers, each topic (missing, partitions, replication, min.insync.replicas,
cleanup policy), ACLs on the topics, the consumer groups and the transactional
ids. Lines start with "ok:" or "missing:". Creates nothing. Exit 0 when nothing
is missing, 1 otherwise.

Flags:
  --config FILE       The configuration. Required; its bus must be type: kafka.
  --timeout SECONDS   How long each request may take (default 10).
  -h, --help          Show this help.
)";

/// Takes the value of `--flag VALUE` or `--flag=VALUE`; false if absent.
bool take_value(const std::vector<std::string>& args, std::size_t& i, const std::string& flag,
                std::string& value, std::string& problem) {
  const std::string& a = args[i];
  if (a == flag) {
    if (i + 1 >= args.size()) {
      problem = flag + " needs a value";
      return true;
    }
    value = args[++i];
    return true;
  }
  if (a.rfind(flag + "=", 0) == 0) {
    value = a.substr(flag.size() + 1);
    return true;
  }
  return false;
}

bool wants_help(const std::vector<std::string>& args) {
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "-h" || args[i] == "--help") return true;
  }
  return false;
}

int kafka_check(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (wants_help(args)) {
    out << kKafkaCheckHelp;
    return 0;
  }
  std::string config_path, timeout_text = "10", problem;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (take_value(args, i, "--config", config_path, problem)) continue;
    if (take_value(args, i, "--timeout", timeout_text, problem)) continue;
    err << "replywatch kafka-check: unknown argument '" << args[i] << "'\n";
    return 1;
  }
  int timeout = 0;
  const char* end = timeout_text.data() + timeout_text.size();
  if (problem.empty() && (std::from_chars(timeout_text.data(), end, timeout).ptr != end ||
                          timeout < 1 || timeout > 600)) {
    problem = "--timeout must be between 1 and 600 seconds";
  }
  if (!problem.empty() || config_path.empty()) {
    err << "replywatch kafka-check: " << (problem.empty() ? "--config FILE is required" : problem)
        << "\n";
    return 1;
  }
  auto config = load_config(config_path);
  if (!config) {
    err << config.error().message << "\n";
    return 1;
  }
  if (!config->bus.kafka()) {
    err << "replywatch kafka-check: " << config_path << " has no `bus: {type: kafka}` section\n";
    return 1;
  }
  bool ok = true;
  for (const auto& line : kafka::check_cluster(config->bus, timeout * 1000)) {
    out << (line.ok ? "ok: " : "missing: ") << line.text << "\n";
    ok = ok && line.ok;
  }
  return ok ? 0 : 1;
}

int check_config(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (wants_help(args)) {
    out << kCheckConfigHelp;
    return 0;
  }
  std::string config_path, problem;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (take_value(args, i, "--config", config_path, problem)) continue;
    err << "replywatch check-config: unknown argument '" << args[i] << "'\n";
    return 1;
  }
  if (!problem.empty() || config_path.empty()) {
    err << "replywatch check-config: " << (problem.empty() ? "--config FILE is required" : problem)
        << "\n";
    return 1;
  }
  auto config = load_config(config_path);
  if (!config) {
    err << config.error().message << "\n";
    return 1;
  }
  out << config_path << ": ok (" << config->registry->agencies.size() << " agencies"
      << (config->bus.kafka() ? ", Kafka bus at " + config->bus.bootstrap_servers : "") << ")\n";
  return 0;
}

int replay(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           bool err_is_terminal) {
  if (wants_help(args)) {
    out << kReplayHelp;
    return 0;
  }
  std::string config_path, appeals_path, format_text = "json", export_tz, clock_text, problem,
                                         source_text;
  ReplayOptions options;
  bool only_inputs = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!only_inputs) {
      if (a == "--") {
        only_inputs = true;
        continue;
      }
      if (take_value(args, i, "--config", config_path, problem) ||
          take_value(args, i, "--appeals", appeals_path, problem) ||
          take_value(args, i, "--format", format_text, problem) ||
          take_value(args, i, "--export-timezone", export_tz, problem) ||
          take_value(args, i, "--clock", clock_text, problem) ||
          take_value(args, i, "--source", source_text, problem)) {
        continue;
      }
      if (a.size() > 1 && a[0] == '-') {
        err << "replywatch replay: unknown flag '" << a << "' (see replywatch replay --help)\n";
        return 1;
      }
    }
    options.inputs.push_back(a);
  }
  if (!problem.empty()) {
    err << "replywatch replay: " << problem << "\n";
    return 1;
  }
  if (config_path.empty()) {
    err << "replywatch replay: --config FILE is required (see replywatch replay --help)\n";
    return 1;
  }
  ReportFormat format;
  if (!parse_report_format(format_text, format)) {
    err << "replywatch replay: --format must be json, csv or table, not '" << format_text << "'\n";
    return 1;
  }
  if (options.inputs.empty()) {
    err << "replywatch replay: no INPUT given (export files or directories)\n";
    return 1;
  }
  if (!source_text.empty()) {
    pipeline::Source source;
    if (!pipeline::parse_source(source_text, source) || source != pipeline::Source::vk) {
      err << "replywatch replay: --source must be vk, not '" << source_text << "'\n";
      return 1;
    }
    options.platform = source;
  }
  if (!clock_text.empty()) {
    std::int64_t clock = 0;
    const char* end = clock_text.data() + clock_text.size();
    const auto [p, ec] = std::from_chars(clock_text.data(), end, clock);
    if (ec != std::errc() || p != end) {
      err << "replywatch replay: --clock: expected unix seconds, not '" << clock_text << "'\n";
      return 1;
    }
    options.clock = clock;
  }
  if (!export_tz.empty()) {
    auto zone = pipeline::TimeZone::load(export_tz);
    if (!zone) {
      err << "replywatch replay: --export-timezone: " << zone.error().message << "\n";
      return 1;
    }
    options.export_timezone = *zone;
  }
  auto config = load_config(config_path);
  if (!config) {
    err << config.error().message << "\n";
    return 1;
  }
  // Open the output before the work, so a bad path fails fast.
  std::ofstream appeals_out;
  if (!appeals_path.empty()) {
    appeals_out.open(appeals_path, std::ios::binary | std::ios::trunc);
    if (!appeals_out) {
      err << "replywatch replay: --appeals: cannot write '" << appeals_path << "'\n";
      return 1;
    }
    options.keep_appeals = true;
  }
  options.progress = err_is_terminal;

  const ReplayResult result = run_replay(config->registry, options, err);
  for (const auto& f : result.rejected_files)
    err << "replywatch replay: rejected " << f.error << "\n";
  if (!result.unowned_chats.empty()) {
    err << "replywatch replay: note: " << result.unowned_chats.size()
        << " chat(s) in the input belong to no agency and were not paired:";
    std::size_t shown = 0;
    for (const auto id : result.unowned_chats) {
      if (++shown > 10) {
        err << " …";
        break;
      }
      err << " " << id;
    }
    err << "\n";
  }
  if (appeals_out.is_open()) {
    std::string buffer;
    for (const auto& a : result.appeals) {
      append_appeal_line(buffer, *config->registry, a);
      if (buffer.size() > (1 << 20)) {
        appeals_out << buffer;
        buffer.clear();
      }
    }
    appeals_out << buffer;
    appeals_out.flush();
    if (!appeals_out) {
      err << "replywatch replay: --appeals: write to '" << appeals_path << "' failed\n";
      return 1;
    }
  }
  out << render_report(*config->registry, result, format);
  out.flush();
  return result.rejected_files.empty() ? 0 : 2;
}

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (wants_help(args)) {
    out << kRunHelp;
    return 0;
  }
  std::string config_path, problem;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (take_value(args, i, "--config", config_path, problem)) continue;
    err << "replywatch run: unknown argument '" << args[i] << "'\n";
    return 1;
  }
  if (!problem.empty() || config_path.empty()) {
    err << "replywatch run: " << (problem.empty() ? "--config FILE is required" : problem) << "\n";
    return 1;
  }
  return run_daemon(RunOptions{config_path});
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
            bool err_is_terminal) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    out << kMainHelp;
    return args.empty() ? 1 : 0;
  }
  if (args[0] == "--version") {
    out << "replywatch " << version() << " (" << revision() << ")\n";
    return 0;
  }
  if (args[0] == "run") return run(args, out, err);
  if (args[0] == "replay") return replay(args, out, err, err_is_terminal);
  if (args[0] == "check-config") return check_config(args, out, err);
  if (args[0] == "kafka-check") return kafka_check(args, out, err);
  err << "replywatch: unknown command '" << args[0] << "' (see replywatch --help)\n";
  return 1;
}

}  // namespace replywatch::daemon
