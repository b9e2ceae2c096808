// Configuration loading with yaml-cpp. yaml-cpp keeps duplicate keys as separate
// map entries, which is what lets us report them instead of silently keeping one.
#include "daemon/config.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "daemon/kafka/client.hpp"

namespace replywatch::daemon {

namespace {

using pipeline::Source;

struct Problem {
  int line;
  std::string path;
  std::string message;
};

bool is_label(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string join(const std::vector<std::string_view>& items) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ", ";
    out += i;
  }
  return out;
}

/// Walks the YAML tree, collecting problems rather than stopping at the first.
class Checker {
 public:
  explicit Checker(std::string_view zoneinfo_dir) : zoneinfo_dir_(zoneinfo_dir) {}

  std::vector<Problem> problems;

  void problem(const YAML::Node& node, std::string path, std::string message) {
    problems.push_back({node.Mark().line + 1, std::move(path), std::move(message)});
  }
  void problem_at(int line, std::string path, std::string message) {
    problems.push_back({line, std::move(path), std::move(message)});
  }

  /// The entries of a mapping, first occurrence of each key; reports duplicates,
  /// unknown keys (listing the known ones) and missing required keys.
  std::map<std::string, YAML::Node> mapping(const YAML::Node& node, const std::string& path,
                                            const std::vector<std::string_view>& known,
                                            const std::vector<std::string_view>& required) {
    std::map<std::string, YAML::Node> out;
    if (!node.IsMap()) {
      problem(node, path, "expected a mapping");
      return out;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key_node = it->first;
      if (!key_node.IsScalar()) {
        problem(key_node, path, "keys must be plain names");
        continue;
      }
      const std::string key = key_node.Scalar();
      const std::string key_path = path.empty() ? key : path + "." + key;
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        problem(key_node, key_path, "unknown key '" + key + "' (known: " + join(known) + ")");
        continue;
      }
      if (auto prev = out.find(key); prev != out.end()) {
        problem(key_node, key_path,
                "duplicate key '" + key + "' (first at line " +
                    std::to_string(prev->second.Mark().line + 1) + ")");
        continue;
      }
      out.emplace(key, it->second);
    }
    for (const auto& r : required) {
      if (!out.count(std::string(r))) {
        problem(node, path.empty() ? std::string(r) : path + "." + std::string(r),
                "missing required key '" + std::string(r) + "'");
      }
    }
    return out;
  }

  bool integer(const YAML::Node& node, const std::string& path, std::int64_t& out) {
    if (node.IsScalar()) {
      const std::string& s = node.Scalar();
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
      if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return true;
    }
    problem(node, path, "expected an integer");
    return false;
  }

  bool text(const YAML::Node& node, const std::string& path, std::string& out) {
    if (node.IsScalar()) {
      out = node.Scalar();
      return true;
    }
    problem(node, path, "expected a string");
    return false;
  }

  bool sequence(const YAML::Node& node, const std::string& path) {
    if (node.IsSequence()) return true;
    problem(node, path, "expected a list");
    return false;
  }

  bool source(const YAML::Node& node, const std::string& path, Source& out) {
    std::string s;
    if (!text(node, path, s)) return false;
    if (pipeline::parse_source(s, out)) return true;
    problem(node, path,
            "unknown source '" + s + "' (known: telegram, vk, facebook, instagram, mastodon, x)");
    return false;
  }

  std::shared_ptr<const pipeline::TimeZone> zone(const YAML::Node& node, const std::string& path) {
    std::string name;
    if (!text(node, path, name)) return nullptr;
    if (auto cached = zones_.find(name); cached != zones_.end()) return cached->second;
    auto loaded = pipeline::TimeZone::load(name, zoneinfo_dir_);
    if (!loaded) {
      problem(node, path, loaded.error().message);
      return nullptr;
    }
    zones_.emplace(name, *loaded);
    return *loaded;
  }

 private:
  std::string zoneinfo_dir_;
  std::map<std::string, std::shared_ptr<const pipeline::TimeZone>> zones_;
};

/// "HH:MM" → minutes; "24:00" only where allow_24 (an interval's end).
bool parse_clock(std::string_view s, bool allow_24, std::int32_t& minutes) {
  if (s.size() != 5 || s[2] != ':') return false;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(s[0]) || !digit(s[1]) || !digit(s[3]) || !digit(s[4])) return false;
  const int h = (s[0] - '0') * 10 + (s[1] - '0');
  const int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59) return false;
  if (h > 23 && !(allow_24 && h == 24 && m == 0)) return false;
  minutes = h * 60 + m;
  return true;
}

void parse_hours(Checker& ck, const YAML::Node& node, const std::string& path,
                 pipeline::WeeklyHours& hours) {
  static const std::vector<std::string_view> kDays = {"mon", "tue", "wed", "thu",
                                                      "fri", "sat", "sun"};
  const auto days = ck.mapping(node, path, kDays, {});
  for (std::size_t d = 0; d < kDays.size(); ++d) {
    const auto it = days.find(std::string(kDays[d]));
    if (it == days.end()) continue;
    const std::string day_path = path + "." + std::string(kDays[d]);
    if (!ck.sequence(it->second, day_path)) continue;
    for (std::size_t i = 0; i < it->second.size(); ++i) {
      const std::string item_path = day_path + "[" + std::to_string(i) + "]";
      std::string spec;
      if (!ck.text(it->second[i], item_path, spec)) continue;
      const auto dash = spec.find('-');
      std::int32_t start = 0, end = 0;
      if (dash == std::string::npos ||
          !parse_clock(std::string_view(spec).substr(0, dash), false, start) ||
          !parse_clock(std::string_view(spec).substr(dash + 1), true, end)) {
        ck.problem(it->second[i], item_path,
                   "bad interval '" + spec + "' (expected \"HH:MM-HH:MM\", e.g. \"09:00-18:00\")");
        continue;
      }
      if (start == end) {
        ck.problem(it->second[i], item_path, "empty interval '" + spec + "'");
        continue;
      }
      if (end < start) end += 24 * 60;  // crosses midnight into the next day
      hours[d].push_back({start, end});
    }
  }
}

bool parse_date(std::string_view s, std::chrono::year_month_day& out) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  int y = 0;
  unsigned m = 0, d = 0;
  if (std::from_chars(s.data(), s.data() + 4, y).ptr != s.data() + 4) return false;
  if (std::from_chars(s.data() + 5, s.data() + 7, m).ptr != s.data() + 7) return false;
  if (std::from_chars(s.data() + 8, s.data() + 10, d).ptr != s.data() + 10) return false;
  out =
      std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  return out.ok();
}

/// Where a (source, id) was first declared, for cross-reference messages.
struct Declared {
  std::string where;  // "agency 'x'" or "ignore_accounts"
  int line;
};

std::string describe(Source s, std::int64_t id) {
  return std::string(pipeline::to_string(s)) + " id " + std::to_string(id);
}

void check_telegram_conversation(Checker& ck, const YAML::Node& node, const std::string& path,
                                 Source source, std::int64_t id) {
  if (source != Source::telegram) return;
  if (id >= 0) {
    ck.problem(node, path,
               "telegram conversations are groups or channels with negative Bot API ids "
               "(an export's bare id 1800004444 is -1001800004444)");
  }
}

bool positive(Checker& ck, const YAML::Node& node, const std::string& path, std::int64_t max,
              std::int64_t& out) {
  std::int64_t v = 0;
  if (!ck.integer(node, path, v)) return false;
  if (v <= 0 || v > max) {
    ck.problem(node, path, "must be between 1 and " + std::to_string(max));
    return false;
  }
  out = v;
  return true;
}

bool secret_from_env(Checker& ck, const YAML::Node& node, const std::string& path,
                     std::string& out);
bool secret_from_file(Checker& ck, const YAML::Node& node, const std::string& path,
                      const std::string& what, std::string& out);

bool host_port_list(std::string_view list) {
  if (list.empty()) return false;
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    const auto colon = item.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) return false;
    unsigned port = 0;
    const char* end = item.data() + item.size();
    if (std::from_chars(item.data() + colon + 1, end, port).ptr != end || port == 0 ||
        port > 65535) {
      return false;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return true;
}

bool is_name(std::string_view s) {
  return !s.empty() && s.size() <= 200 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

void parse_bus(Checker& ck, const YAML::Node& node, BusSettings& b) {
  const auto m = ck.mapping(
      node, "bus",
      {"type", "bootstrap_servers", "topic_prefix", "group_id", "instance", "partitions",
       "replication_factor", "min_insync_replicas", "create_topics", "checkpoint_interval_secs",
       "commit_interval_ms", "stats_interval_secs", "producer_timeout_secs", "rdkafka"},
      {"type"});
  if (auto f = m.find("type"); f != m.end() && ck.text(f->second, "bus.type", b.type)) {
    if (b.type != "in_process" && b.type != "kafka") {
      ck.problem(f->second, "bus.type", "must be 'in_process' or 'kafka', not '" + b.type + "'");
      return;
    }
  }
  if (!b.kafka()) {
    for (const auto& [key, value] : m) {
      if (key != "type") ck.problem(value, "bus." + key, "only for type: kafka");
    }
    return;
  }
  if (auto f = m.find("bootstrap_servers"); f == m.end()) {
    ck.problem(node, "bus.bootstrap_servers", "missing required key for type: kafka");
  } else if (ck.text(f->second, "bus.bootstrap_servers", b.bootstrap_servers) &&
             !host_port_list(b.bootstrap_servers)) {
    ck.problem(f->second, "bus.bootstrap_servers",
               "expected HOST:PORT[,HOST:PORT...], e.g. \"127.0.0.1:9092\"");
  }
  for (auto [key, out] : {std::pair{"topic_prefix", &b.topic_prefix},
                          std::pair{"group_id", &b.group_id}, std::pair{"instance", &b.instance}}) {
    if (auto f = m.find(key); f != m.end()) {
      if (ck.text(f->second, std::string("bus.") + key, *out) && !is_name(*out)) {
        ck.problem(f->second, std::string("bus.") + key,
                   "must be 1 to 200 of [A-Za-z0-9._-] (it names Kafka topics, groups and "
                   "transactional ids)");
      }
    }
  }
  if (auto f = m.find("partitions"); f != m.end()) {
    std::int64_t v = 0;
    if (positive(ck, f->second, "bus.partitions", 10000, v)) b.partitions = static_cast<int>(v);
  }
  if (auto f = m.find("replication_factor"); f != m.end()) {
    std::int64_t v = 0;
    if (ck.integer(f->second, "bus.replication_factor", v)) {
      if (v != -1 && (v < 1 || v > 100)) {
        ck.problem(f->second, "bus.replication_factor",
                   "must be -1 (the broker's default) or between 1 and 100");
      } else {
        b.replication_factor = static_cast<int>(v);
      }
    }
  }
  if (auto f = m.find("min_insync_replicas"); f != m.end()) {
    std::int64_t v = 0;
    if (positive(ck, f->second, "bus.min_insync_replicas", 100, v)) {
      b.min_insync_replicas = static_cast<int>(v);
      if (b.replication_factor > 0 && v > b.replication_factor) {
        ck.problem(f->second, "bus.min_insync_replicas",
                   "must not exceed bus.replication_factor (" +
                       std::to_string(b.replication_factor) + "): no write could succeed");
      }
    }
  }
  if (auto f = m.find("create_topics"); f != m.end()) {
    std::string v;
    if (ck.text(f->second, "bus.create_topics", v)) {
      if (v == "true") {
        b.create_topics = true;
      } else if (v == "false") {
        b.create_topics = false;
      } else {
        ck.problem(f->second, "bus.create_topics", "expected true or false");
      }
    }
  }
  if (auto f = m.find("checkpoint_interval_secs"); f != m.end()) {
    positive(ck, f->second, "bus.checkpoint_interval_secs", 86400, b.checkpoint_interval_secs);
  }
  if (auto f = m.find("commit_interval_ms"); f != m.end()) {
    positive(ck, f->second, "bus.commit_interval_ms", 60000, b.commit_interval_ms);
  }
  if (auto f = m.find("stats_interval_secs"); f != m.end()) {
    positive(ck, f->second, "bus.stats_interval_secs", 3600, b.stats_interval_secs);
  }
  if (auto f = m.find("producer_timeout_secs"); f != m.end()) {
    positive(ck, f->second, "bus.producer_timeout_secs", 30 * 86400, b.producer_timeout_secs);
  }
  if (b.instance.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) b.instance = host;
    if (!is_name(b.instance)) b.instance = "replywatch";
  }
  const auto f = m.find("rdkafka");
  if (f == m.end()) return;
  if (!f->second.IsMap()) {
    ck.problem(f->second, "bus.rdkafka", "expected a mapping of librdkafka settings");
    return;
  }
  std::map<std::string, int> seen;
  for (auto it = f->second.begin(); it != f->second.end(); ++it) {
    if (!it->first.IsScalar()) {
      ck.problem(it->first, "bus.rdkafka", "keys must be plain names");
      continue;
    }
    std::string key = it->first.Scalar();
    const std::string path = "bus.rdkafka." + key;
    if (!it->second.IsScalar()) {
      ck.problem(it->second, path, "expected a string or a number");
      continue;
    }
    std::string value;
    bool secret = false;
    auto ends_with = [&](std::string_view suffix) {
      return key.size() > suffix.size() &&
             key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with("_env")) {
      key.resize(key.size() - 4);
      if (!secret_from_env(ck, it->second, path, value)) continue;
      secret = true;
    } else if (ends_with("_file")) {
      key.resize(key.size() - 5);
      if (!secret_from_file(ck, it->second, path, "secret", value)) continue;
      secret = true;
    } else {
      value = it->second.Scalar();
    }
    if (auto [prev, inserted] = seen.emplace(key, it->first.Mark().line + 1); !inserted) {
      ck.problem(it->first, path,
                 "'" + key + "' is set twice (first at line " + std::to_string(prev->second) + ")");
      continue;
    }
    if (const std::string why = kafka::controlled_setting(key); !why.empty()) {
      ck.problem(it->first, path, why);
      continue;
    }
    if (std::string problem = kafka::check_setting(key, value); !problem.empty()) {
      if (secret) problem = kafka::scrub(problem, {value});
      ck.problem(it->second, path, problem);
      continue;
    }
    if (secret) b.secrets.push_back(value);
    b.rdkafka.emplace_back(std::move(key), std::move(value));
  }
}

void parse_daemon(Checker& ck, const YAML::Node& node, DaemonSettings& d) {
  const auto m = ck.mapping(node, "daemon",
                            {"listen", "data_dir", "snapshot_interval_secs", "expiry_tick_secs",
                             "message_retention_secs", "appeal_retention_secs", "lateness_secs"},
                            {});
  if (auto f = m.find("listen"); f != m.end()) {
    std::string listen;
    if (ck.text(f->second, "daemon.listen", listen)) {
      const auto colon = listen.rfind(':');
      unsigned port = 0;
      const char* end = listen.data() + listen.size();
      const bool ok = colon != std::string::npos && colon > 0 && colon + 1 < listen.size() &&
                      std::from_chars(listen.data() + colon + 1, end, port).ptr == end &&
                      port <= 65535;
      if (!ok) {
        ck.problem(f->second, "daemon.listen",
                   "expected HOST:PORT (e.g. \"127.0.0.1:9464\"), not '" + listen + "'");
      } else {
        d.listen_address = listen.substr(0, colon);
        if (d.listen_address.size() > 2 && d.listen_address.front() == '[' &&
            d.listen_address.back() == ']') {
          d.listen_address = d.listen_address.substr(1, d.listen_address.size() - 2);
        }
        d.listen_port = static_cast<std::uint16_t>(port);
      }
    }
  }
  if (auto f = m.find("data_dir"); f != m.end()) {
    if (ck.text(f->second, "daemon.data_dir", d.data_dir) && d.data_dir.empty()) {
      ck.problem(f->second, "daemon.data_dir", "must not be empty");
    }
  }
  if (auto f = m.find("snapshot_interval_secs"); f != m.end()) {
    positive(ck, f->second, "daemon.snapshot_interval_secs", 86400, d.snapshot_interval_secs);
  }
  if (auto f = m.find("expiry_tick_secs"); f != m.end()) {
    positive(ck, f->second, "daemon.expiry_tick_secs", 3600, d.expiry_tick_secs);
  }
  if (auto f = m.find("message_retention_secs"); f != m.end()) {
    positive(ck, f->second, "daemon.message_retention_secs", 3660LL * 86400,
             d.message_retention_secs);
  }
  if (auto f = m.find("appeal_retention_secs"); f != m.end()) {
    positive(ck, f->second, "daemon.appeal_retention_secs", 3660LL * 86400,
             d.appeal_retention_secs);
  }
  if (auto f = m.find("lateness_secs"); f != m.end()) {
    std::int64_t v = 0;
    if (ck.integer(f->second, "daemon.lateness_secs", v)) {
      if (v < 0 || v > 86400) {
        ck.problem(f->second, "daemon.lateness_secs", "must be between 0 and 86400");
      } else {
        d.lateness_secs = v;
      }
    }
  }
}

/// Whether a URL's host is this machine (plain http is fine there: nothing leaves it).
bool loopback_url(std::string_view url) {
  std::string_view rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  std::string_view host = rest;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') == std::string_view::npos ? 0 : host.find(']') - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8, written as four decimal numbers.
  if (host.rfind("127.", 0) != 0) return false;
  int dots = 0;
  for (const char ch : host) {
    if (ch == '.') {
      ++dots;
    } else if (ch < '0' || ch > '9') {
      return false;
    }
  }
  return dots == 3;
}

bool is_token(std::string_view t) {
  const auto colon = t.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= t.size()) return false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    const bool ok = i < colon ? (c >= '0' && c <= '9')
                              : i == colon || std::isalnum(static_cast<unsigned char>(c)) ||
                                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// Reads a secret from the environment variable named by `node`; messages name
/// the variable, never its value.
bool secret_from_env(Checker& ck, const YAML::Node& node, const std::string& path,
                     std::string& out) {
  std::string var;
  if (!ck.text(node, path, var)) return false;
  const char* value = var.empty() ? nullptr : std::getenv(var.c_str());
  if (!value || !*value) {
    ck.problem(node, path, "environment variable '" + var + "' is not set or empty");
    return false;
  }
  out = value;
  return true;
}

/// Reads a secret from the file named by `node`: a regular file only its owner may read
/// (0600), first line, trailing blanks dropped. Messages name the file, never its content.
bool secret_from_file(Checker& ck, const YAML::Node& node, const std::string& path,
                      const std::string& what, std::string& out) {
  std::string file;
  if (!ck.text(node, path, file)) return false;
  struct stat st {};
  errno = 0;
  if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    ck.problem(node, path,
               "cannot read " + what + " file '" + file +
                   "': " + (errno ? std::string(std::strerror(errno)) : "not a regular file"));
    return false;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ck.problem(node, path,
               what + " file '" + file + "' is accessible by group or others; chmod 600 it (the " +
                   what + " is a secret)");
    return false;
  }
  std::ifstream in(file);
  if (!in) {
    ck.problem(node, path, "cannot read " + what + " file '" + file + "'");
    return false;
  }
  std::getline(in, out);
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  if (out.empty()) {
    ck.problem(node, path, what + " file '" + file + "' is empty");
    return false;
  }
  return true;
}

/// A platform's `api_base_url`: http(s), no white space (nor `forbidden`), plain http only
/// to this machine (the `token` is in every request); trailing slashes dropped.
void api_base_url(Checker& ck, const YAML::Node& node, const std::string& path,
                  const std::string& example, const std::string& token,
                  const std::string& local_server, std::string_view forbidden,
                  std::string& out) {
  if (!ck.text(node, path, out)) return;
  const bool ok = (out.rfind("https://", 0) == 0 || out.rfind("http://", 0) == 0) &&
                  out.find_first_of(forbidden) == std::string::npos;
  if (!ok) {
    ck.problem(node, path, "expected an http:// or https:// URL, e.g. " + example);
  } else if (out.rfind("http://", 0) == 0 && !loopback_url(out)) {
    ck.problem(node, path,
               "plain http:// would send the " + token + " in clear; use https://, or http:// "
               "only to " + local_server + " on this machine (127.0.0.1, [::1], localhost)");
  }
  while (!out.empty() && out.back() == '/') out.pop_back();
}

/// An extra CA to trust (a local API server, tests).
void ca_file(Checker& ck, const YAML::Node& node, const std::string& path, std::string& out) {
  if (ck.text(node, path, out) && ::access(out.c_str(), R_OK) != 0) {
    ck.problem(node, path, "cannot read CA file '" + out + "'");
  }
}

void parse_telegram(Checker& ck, const YAML::Node& item, const std::string& path,
                    const std::map<std::string, YAML::Node>& m, ConnectorConfig& c) {
  c.mode = "poll";
  if (auto f = m.find("mode"); f != m.end() && ck.text(f->second, path + ".mode", c.mode)) {
    if (c.mode != "poll" && c.mode != "webhook") {
      ck.problem(f->second, path + ".mode", "must be 'poll' or 'webhook', not '" + c.mode + "'");
    }
  }
  const auto env = m.find("token_env");
  const auto file = m.find("token_file");
  if (env != m.end() && file != m.end()) {
    ck.problem(file->second, path + ".token_file", "give token_env or token_file, not both");
  } else if (env != m.end()) {
    if (secret_from_env(ck, env->second, path + ".token_env", c.token) && !is_token(c.token)) {
      ck.problem(env->second, path + ".token_env",
                 "the variable does not hold a bot token (digits, ':', then letters, digits, "
                 "'_' or '-')");
    }
  } else if (file != m.end()) {
    if (secret_from_file(ck, file->second, path + ".token_file", "token", c.token) &&
        !is_token(c.token)) {
      ck.problem(file->second, path + ".token_file", "the token file does not hold a bot token");
    }
  } else {
    ck.problem(item, path, "missing 'token_env' or 'token_file'");
  }
  if (auto f = m.find("api_base_url"); f != m.end()) {
    // The bot token is part of every request path: in clear it is anyone's on the way.
    api_base_url(ck, f->second, path + ".api_base_url", "https://api.telegram.org", "bot token",
                 "a Bot API server", " \t\r\n", c.api_base_url);
  }
  if (auto f = m.find("poll_timeout_secs"); f != m.end()) {
    std::int64_t v = 0;
    if (ck.integer(f->second, path + ".poll_timeout_secs", v)) {
      if (v < 0 || v > 50) {
        ck.problem(f->second, path + ".poll_timeout_secs", "must be between 0 and 50");
      } else {
        c.poll_timeout_secs = v;
      }
    }
  }
  if (auto f = m.find("ca_file"); f != m.end()) {
    ca_file(ck, f->second, path + ".ca_file", c.ca_file);
  }
  c.webhook_path = "/telegram/" + c.name;
  if (auto f = m.find("webhook_path"); f != m.end()) {
    if (ck.text(f->second, path + ".webhook_path", c.webhook_path) &&
        (c.webhook_path.empty() || c.webhook_path[0] != '/' ||
         c.webhook_path.find_first_of(" ?#%") != std::string::npos)) {
      ck.problem(f->second, path + ".webhook_path", "must be a plain path starting with '/'");
    }
  }
  if (c.mode == "webhook") {
    if (auto f = m.find("secret_token_env"); f != m.end()) {
      if (secret_from_env(ck, f->second, path + ".secret_token_env", c.secret_token)) {
        const bool ok =
            c.secret_token.size() <= 256 &&
            std::all_of(c.secret_token.begin(), c.secret_token.end(), [](char ch) {
              return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
            });
        if (!ok) {
          ck.problem(f->second, path + ".secret_token_env",
                     "a webhook secret is 1-256 characters of A-Z, a-z, 0-9, '_' and '-'");
        }
      }
    } else {
      ck.problem(item, path + ".secret_token_env",
                 "webhook mode needs secret_token_env (pushes are checked against it)");
    }
  }
}

/// `<key>_env` or `<key>_file` (0600) into `out`; false (with a problem) if neither is
/// given and `required`, or the one given is unusable.
bool secret_setting(Checker& ck, const YAML::Node& item, const std::string& path,
                    const std::map<std::string, YAML::Node>& m, const std::string& key,
                    const std::string& what, bool required, std::string& out) {
  const auto env = m.find(key + "_env");
  const auto file = m.find(key + "_file");
  if (env != m.end() && file != m.end()) {
    ck.problem(file->second, path + "." + key + "_file",
               "give " + key + "_env or " + key + "_file, not both");
    return false;
  }
  bool ok = false;
  if (env != m.end()) {
    ok = secret_from_env(ck, env->second, path + "." + key + "_env", out);
  } else if (file != m.end()) {
    ok = secret_from_file(ck, file->second, path + "." + key + "_file", what, out);
  } else {
    if (required) ck.problem(item, path, "missing '" + key + "_env' or '" + key + "_file'");
    return false;
  }
  if (ok && (out.size() > 1024 || std::any_of(out.begin(), out.end(), [](char ch) {
               return static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f;
             }))) {
    ck.problem(env != m.end() ? env->second : file->second,
               path + "." + key + (env != m.end() ? "_env" : "_file"),
               "the " + what + " must be 1-1024 printable characters without spaces");
    return false;
  }
  return ok;
}

void parse_vk(Checker& ck, const YAML::Node& item, const std::string& path,
              const std::map<std::string, YAML::Node>& m, ConnectorConfig& c) {
  c.mode = "poll";
  c.api_base_url = "https://api.vk.com/method";
  if (m.find("poll_interval_secs") == m.end()) c.poll_interval_secs = 60;
  if (auto f = m.find("mode"); f != m.end() && ck.text(f->second, path + ".mode", c.mode)) {
    if (c.mode != "poll" && c.mode != "callback") {
      ck.problem(f->second, path + ".mode", "must be 'poll' or 'callback', not '" + c.mode + "'");
    }
  }
  if (c.mode == "poll") {
    secret_setting(ck, item, path, m, "token", "access token", true, c.token);
  } else {
    secret_setting(ck, item, path, m, "secret", "callback secret", true, c.secret);
    secret_setting(ck, item, path, m, "confirmation", "confirmation string", true,
                   c.confirmation);
    for (const char* key : {"token_env", "token_file", "walls", "posts_lookback"}) {
      if (auto f = m.find(key); f != m.end()) {
        ck.problem(f->second, path + "." + key, "only in poll mode");
      }
    }
  }
  if (auto f = m.find("api_base_url"); f != m.end()) {
    // The token is a query parameter; a query or fragment in the base would swallow it.
    api_base_url(ck, f->second, path + ".api_base_url", "https://api.vk.com/method",
                 "access token", "a server", " \t\r\n?#", c.api_base_url);
  }
  if (auto f = m.find("api_version"); f != m.end() &&
      ck.text(f->second, path + ".api_version", c.api_version)) {
    const bool ok = !c.api_version.empty() && c.api_version.size() <= 10 &&
                    std::all_of(c.api_version.begin(), c.api_version.end(), [](char ch) {
                      return std::isdigit(static_cast<unsigned char>(ch)) || ch == '.';
                    });
    if (!ok) ck.problem(f->second, path + ".api_version", "expected a version like \"5.199\"");
  }
  if (auto f = m.find("posts_lookback"); f != m.end()) {
    std::int64_t v = 0;
    if (positive(ck, f->second, path + ".posts_lookback", 1000, v)) c.posts_lookback = static_cast<int>(v);
  }
  if (auto f = m.find("requests_per_second"); f != m.end()) {
    double v = 0;
    bool ok = false;
    try {
      v = f->second.as<double>();
      ok = v >= 0.1 && v <= 100;
    } catch (const YAML::Exception&) {
    }
    if (ok) {
      c.requests_per_second = v;
    } else {
      ck.problem(f->second, path + ".requests_per_second", "must be a number from 0.1 to 100");
    }
  }
  if (auto f = m.find("walls"); f != m.end()) {
    if (!f->second.IsSequence() || f->second.size() == 0) {
      ck.problem(f->second, path + ".walls", "expected a list of wall owner ids, e.g. [-123456]");
    } else {
      for (std::size_t i = 0; i < f->second.size(); ++i) {
        std::int64_t v = 0;
        if (!ck.integer(f->second[i], path + ".walls[" + std::to_string(i) + "]", v)) continue;
        if (v == 0) {
          ck.problem(f->second[i], path + ".walls[" + std::to_string(i) + "]",
                     "a wall is a community (negative id) or a user (positive id), not 0");
        } else {
          c.walls.push_back(v);
        }
      }
    }
  }
  if (auto f = m.find("ca_file"); f != m.end()) {
    ca_file(ck, f->second, path + ".ca_file", c.ca_file);
  }
  c.webhook_path = "/webhooks/vk/" + c.name;
}

void parse_connectors(Checker& ck, const YAML::Node& node, std::vector<ConnectorConfig>& out) {
  if (!ck.sequence(node, "connectors")) return;
  std::map<std::string, int> names;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string path = "connectors[" + std::to_string(i) + "]";
    const YAML::Node item = node[i];
    // The type decides which keys are valid, so read it first.
    std::string type;
    if (item.IsMap() && item["type"] && item["type"].IsScalar()) type = item["type"].Scalar();
    std::vector<std::string_view> known = {"name", "type", "poll_interval_secs"};
    if (type == "telegram_export") {
      known.insert(known.end(), {"directory", "export_timezone"});
    } else if (type == "ndjson") {
      known.insert(known.end(), {"path"});
    } else if (type == "telegram") {
      known.insert(known.end(),
                   {"mode", "token_env", "token_file", "api_base_url", "poll_timeout_secs",
                    "webhook_path", "secret_token_env", "ca_file"});
    } else if (type == "vk") {
      known.insert(known.end(),
                   {"mode", "token_env", "token_file", "api_base_url", "api_version", "walls",
                    "posts_lookback", "requests_per_second", "secret_env", "secret_file",
                    "confirmation_env", "confirmation_file", "ca_file"});
    }
    const auto m = ck.mapping(item, path, known, {"name", "type"});
    ConnectorConfig c;
    c.line = item.Mark().line + 1;
    if (auto f = m.find("type"); f != m.end() && ck.text(f->second, path + ".type", c.type)) {
      const auto& types = connector_types();
      if (std::find(types.begin(), types.end(), c.type) == types.end()) {
        ck.problem(f->second, path + ".type",
                   "unknown connector type '" + c.type + "' (known: " + join(types) + ")");
        continue;
      }
    }
    if (auto f = m.find("name"); f != m.end() && ck.text(f->second, path + ".name", c.name)) {
      if (!is_label(c.name)) {
        ck.problem(f->second, path + ".name",
                   "connector name '" + c.name + "' must match [a-z0-9_]+");
      } else if (auto prev = names.find(c.name); prev != names.end()) {
        ck.problem(f->second, path + ".name",
                   "connector name '" + c.name + "' is already used (line " +
                       std::to_string(prev->second) + ")");
      } else {
        names.emplace(c.name, f->second.Mark().line + 1);
      }
    }
    if (auto f = m.find("poll_interval_secs"); f != m.end()) {
      positive(ck, f->second, path + ".poll_interval_secs", 86400, c.poll_interval_secs);
    }
    if (c.type == "telegram") {
      parse_telegram(ck, item, path, m, c);
      out.push_back(std::move(c));
      continue;
    }
    if (c.type == "vk") {
      parse_vk(ck, item, path, m, c);
      out.push_back(std::move(c));
      continue;
    }
    const char* path_key = c.type == "telegram_export" ? "directory" : "path";
    if (auto f = m.find(path_key); f != m.end()) {
      if (ck.text(f->second, path + "." + path_key, c.path) && c.path.empty()) {
        ck.problem(f->second, path + "." + path_key, "must not be empty");
      }
    } else if (!c.type.empty()) {
      ck.problem(item, path + "." + path_key,
                 std::string("missing required key '") + path_key + "'");
    }
    if (auto f = m.find("export_timezone"); f != m.end()) {
      c.export_timezone = ck.zone(f->second, path + ".export_timezone");
    }
    out.push_back(std::move(c));
  }
  // Webhook paths share the daemon's one HTTP server with its own endpoints.
  std::map<std::string, std::string> paths = {{"/metrics", "the metrics endpoint"},
                                              {"/healthz", "the health endpoint"},
                                              {"/readyz", "the readiness endpoint"}};
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (!out[i].pushes()) continue;
    const std::string where = "connectors." + out[i].name + ".webhook_path";
    if (auto prev = paths.find(out[i].webhook_path); prev != paths.end()) {
      ck.problem_at(out[i].line, where,
                    "path '" + out[i].webhook_path + "' is already used by " + prev->second);
    } else if (out[i].webhook_path.rfind("/api/", 0) == 0) {
      ck.problem_at(out[i].line, where, "paths under /api/ belong to the daemon's API");
    } else {
      paths.emplace(out[i].webhook_path, "connector '" + out[i].name + "'");
    }
  }
}

}  // namespace

const std::vector<std::string_view>& connector_types() {
  static const std::vector<std::string_view> kTypes = {"telegram_export", "ndjson", "telegram",
                                                       "vk"};
  return kTypes;
}

Result<Config> parse_config(std::string_view yaml, std::string_view origin,
                            std::string_view zoneinfo_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return make_error(std::string(origin) + ":" + std::to_string(e.mark.line + 1) +
                      ": YAML syntax error: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) {
    return make_error(std::string(origin) + ":1: the configuration is empty");
  }

  Checker ck(zoneinfo_dir);
  auto registry = std::make_shared<pipeline::Registry>();
  const auto top = ck.mapping(root, "",
                              {"horizon_secs", "citizen_replies_to_citizens", "ignore_accounts",
                               "agencies", "daemon", "connectors", "bus"},
                              {"agencies"});
  Config config;
  if (auto it = top.find("daemon"); it != top.end()) parse_daemon(ck, it->second, config.daemon);
  if (auto it = top.find("connectors"); it != top.end()) {
    parse_connectors(ck, it->second, config.connectors);
  }
  if (auto it = top.find("bus"); it != top.end()) parse_bus(ck, it->second, config.bus);

  if (auto it = top.find("horizon_secs"); it != top.end()) {
    std::int64_t v = 0;
    if (ck.integer(it->second, "horizon_secs", v)) {
      if (v <= 0 || v > 366LL * 86400) {
        ck.problem(it->second, "horizon_secs", "must be between 1 and 31622400 (366 days)");
      } else {
        registry->horizon_secs = v;
      }
    }
  }
  if (auto it = top.find("citizen_replies_to_citizens"); it != top.end()) {
    std::string v;
    if (ck.text(it->second, "citizen_replies_to_citizens", v)) {
      if (v == "ignore") {
        registry->citizen_replies_to_citizens = pipeline::CitizenReplies::ignore;
      } else if (v == "appeal") {
        registry->citizen_replies_to_citizens = pipeline::CitizenReplies::appeal;
      } else {
        ck.problem(it->second, "citizen_replies_to_citizens",
                   "must be 'ignore' or 'appeal', not '" + v + "'");
      }
    }
  }

  std::map<std::pair<int, std::int64_t>, Declared> accounts_seen;
  std::map<std::pair<int, std::int64_t>, Declared> conversations_seen;
  auto declare = [&](std::map<std::pair<int, std::int64_t>, Declared>& seen, const YAML::Node& node,
                     const std::string& path, Source s, std::int64_t id, const std::string& where,
                     const char* what) {
    const auto key = std::make_pair(static_cast<int>(s), id);
    if (auto prev = seen.find(key); prev != seen.end()) {
      ck.problem(node, path,
                 std::string(what) + " " + describe(s, id) + " is already listed under " +
                     prev->second.where + " (line " + std::to_string(prev->second.line) + ")");
      return false;
    }
    seen.emplace(key, Declared{where, node.Mark().line + 1});
    return true;
  };

  if (auto it = top.find("ignore_accounts"); it != top.end()) {
    if (ck.sequence(it->second, "ignore_accounts")) {
      for (std::size_t i = 0; i < it->second.size(); ++i) {
        const std::string path = "ignore_accounts[" + std::to_string(i) + "]";
        const auto m = ck.mapping(it->second[i], path, {"source", "id"}, {"source", "id"});
        pipeline::ConversationRef ref;
        const bool ok = m.count("source") && m.count("id") &&
                        ck.source(m.at("source"), path + ".source", ref.source) &
                            ck.integer(m.at("id"), path + ".id", ref.id);
        if (ok && declare(accounts_seen, it->second[i], path, ref.source, ref.id, "ignore_accounts",
                          "account")) {
          registry->ignore_accounts.push_back(ref);
        }
      }
    }
  }

  if (auto it = top.find("agencies"); it != top.end() && ck.sequence(it->second, "agencies")) {
    if (it->second.size() == 0) ck.problem(it->second, "agencies", "list at least one agency");
    std::map<std::string, int> agency_ids;
    for (std::size_t a = 0; a < it->second.size(); ++a) {
      const YAML::Node node = it->second[a];
      const std::string path = "agencies[" + std::to_string(a) + "]";
      const auto m = ck.mapping(
          node, path,
          {"id", "name", "timezone", "business_hours", "holidays", "target_business_secs",
           "median_reply_threshold_secs", "conversations", "accounts"},
          {"id", "name", "timezone", "conversations"});
      pipeline::Agency agency;
      if (auto f = m.find("id"); f != m.end() && ck.text(f->second, path + ".id", agency.id)) {
        if (!is_label(agency.id)) {
          ck.problem(f->second, path + ".id",
                     "agency id '" + agency.id + "' must match [a-z0-9_]+");
        } else if (auto prev = agency_ids.find(agency.id); prev != agency_ids.end()) {
          ck.problem(f->second, path + ".id",
                     "agency id '" + agency.id + "' is already used (line " +
                         std::to_string(prev->second) + ")");
        } else {
          agency_ids.emplace(agency.id, f->second.Mark().line + 1);
        }
      }
      const std::string where = "agency '" + agency.id + "'";
      if (auto f = m.find("name"); f != m.end()) ck.text(f->second, path + ".name", agency.name);
      std::shared_ptr<const pipeline::TimeZone> zone;
      if (auto f = m.find("timezone"); f != m.end()) {
        zone = ck.zone(f->second, path + ".timezone");
        if (zone) agency.timezone = zone->name();
      }
      pipeline::WeeklyHours hours;
      if (auto f = m.find("business_hours"); f != m.end()) {
        parse_hours(ck, f->second, path + ".business_hours", hours);
      } else {
        for (auto& day : hours) day.push_back({0, 24 * 60});  // no calendar: every hour counts
      }
      std::vector<std::chrono::year_month_day> holidays;
      if (auto f = m.find("holidays"); f != m.end() && ck.sequence(f->second, path + ".holidays")) {
        for (std::size_t i = 0; i < f->second.size(); ++i) {
          const std::string item_path = path + ".holidays[" + std::to_string(i) + "]";
          std::string s;
          std::chrono::year_month_day ymd;
          if (!ck.text(f->second[i], item_path, s)) continue;
          if (!parse_date(s, ymd)) {
            ck.problem(f->second[i], item_path, "bad date '" + s + "' (expected YYYY-MM-DD)");
            continue;
          }
          holidays.push_back(ymd);
        }
      }
      if (auto f = m.find("target_business_secs"); f != m.end()) {
        std::int64_t v = 0;
        if (ck.integer(f->second, path + ".target_business_secs", v)) {
          if (v <= 0) {
            ck.problem(f->second, path + ".target_business_secs", "must be positive");
          } else {
            agency.target_business_secs = v;
          }
        }
      }
      if (auto f = m.find("median_reply_threshold_secs"); f != m.end()) {
        std::int64_t v = 0;
        if (ck.integer(f->second, path + ".median_reply_threshold_secs", v)) {
          if (v <= 0) {
            ck.problem(f->second, path + ".median_reply_threshold_secs", "must be positive");
          } else {
            agency.median_reply_threshold_secs = v;
          }
        }
      }
      if (auto f = m.find("conversations"); f != m.end()) {
        if (ck.sequence(f->second, path + ".conversations")) {
          for (std::size_t i = 0; i < f->second.size(); ++i) {
            const std::string item_path = path + ".conversations[" + std::to_string(i) + "]";
            const auto c = ck.mapping(f->second[i], item_path, {"source", "id"}, {"source", "id"});
            pipeline::ConversationRef ref;
            if (!c.count("source") || !c.count("id")) continue;
            const bool ok = ck.source(c.at("source"), item_path + ".source", ref.source) &
                            ck.integer(c.at("id"), item_path + ".id", ref.id);
            if (!ok) continue;
            check_telegram_conversation(ck, c.at("id"), item_path + ".id", ref.source, ref.id);
            if (declare(conversations_seen, f->second[i], item_path, ref.source, ref.id, where,
                        "conversation")) {
              agency.conversations.push_back(ref);
            }
          }
        }
      }
      if (auto f = m.find("accounts"); f != m.end()) {
        if (ck.sequence(f->second, path + ".accounts")) {
          for (std::size_t i = 0; i < f->second.size(); ++i) {
            const std::string item_path = path + ".accounts[" + std::to_string(i) + "]";
            const auto c =
                ck.mapping(f->second[i], item_path, {"source", "id", "role", "name", "branch"},
                           {"source", "id", "role"});
            pipeline::Account acc;
            if (!c.count("source") || !c.count("id") || !c.count("role")) continue;
            bool ok = ck.source(c.at("source"), item_path + ".source", acc.source) &
                      ck.integer(c.at("id"), item_path + ".id", acc.id) &
                      ck.text(c.at("role"), item_path + ".role", acc.role);
            if (ok && !is_label(acc.role)) {
              ck.problem(c.at("role"), item_path + ".role",
                         "role '" + acc.role + "' must match [a-z0-9_]+");
              ok = false;
            }
            if (ok && acc.id == 0) {
              ck.problem(c.at("id"), item_path + ".id", "account id 0 is not a valid id");
              ok = false;
            }
            if (auto n = c.find("name"); n != c.end())
              ck.text(n->second, item_path + ".name", acc.name);
            if (auto b = c.find("branch"); b != c.end()) {
              if (ck.text(b->second, item_path + ".branch", acc.branch) && !is_label(acc.branch)) {
                ck.problem(b->second, item_path + ".branch",
                           "branch '" + acc.branch + "' must match [a-z0-9_]+ (it is a label)");
              }
            }
            if (ok && declare(accounts_seen, f->second[i], item_path, acc.source, acc.id, where,
                              "account")) {
              agency.accounts.push_back(std::move(acc));
            }
          }
        }
      }
      if (zone) {
        agency.calendar =
            std::make_shared<pipeline::BusinessCalendar>(zone, hours, std::move(holidays));
      }
      registry->agencies.push_back(std::move(agency));
    }
  }

  if (config.daemon.message_retention_secs > 0 &&
      config.daemon.message_retention_secs < registry->horizon_secs + config.daemon.lateness_secs) {
    const YAML::Node daemon = root["daemon"];
    ck.problem(daemon && daemon["message_retention_secs"] ? daemon["message_retention_secs"] : root,
               "daemon.message_retention_secs",
               "must be at least horizon_secs + daemon.lateness_secs (" +
                   std::to_string(registry->horizon_secs + config.daemon.lateness_secs) +
                   "): a message that late would find its thread already forgotten");
  }
  // A VK poller reads the walls the agencies list, unless told which.
  for (auto& c : config.connectors) {
    if (c.type != "vk" || c.mode != "poll" || !c.walls.empty()) continue;
    for (const auto& agency : registry->agencies) {
      for (const auto& conv : agency.conversations) {
        if (conv.source == pipeline::Source::vk) c.walls.push_back(conv.id);
      }
    }
    if (c.walls.empty()) {
      ck.problem_at(c.line, "connectors." + c.name + ".walls",
                    "no wall to poll: list `walls:` or give an agency a {source: vk} conversation");
    }
  }
  if (config.connectors.size() > 64) {
    ck.problem(root["connectors"], "connectors", "at most 64 connectors");
  }

  if (!ck.problems.empty()) {
    std::stable_sort(ck.problems.begin(), ck.problems.end(),
                     [](const Problem& a, const Problem& b) { return a.line < b.line; });
    std::string message;
    for (const auto& p : ck.problems) {
      if (!message.empty()) message += '\n';
      message += std::string(origin) + ":" + std::to_string(p.line) + ": " +
                 (p.path.empty() ? std::string("(top level)") : p.path) + ": " + p.message;
    }
    return make_error(std::move(message));
  }
  registry->index();
  config.path = std::string(origin);
  config.registry = std::move(registry);
  return config;
}

std::int64_t message_retention(const DaemonSettings& d, std::int64_t horizon_secs) {
  if (d.message_retention_secs > 0) return d.message_retention_secs;
  return std::max(2 * horizon_secs, horizon_secs + d.lateness_secs);
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path + ": cannot open the configuration file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return make_error(path + ": cannot read the configuration file");
  return parse_config(buffer.str(), path);
}

}  // namespace replywatch::daemon
