// Wiring of the daemon: configuration, restored state, connectors on their own
// threads feeding the in-process bus, the pipeline on the io_context thread,
// the HTTP endpoints, timers for expiry and snapshots, and signals.
#include "daemon/server.hpp"

#include <fcntl.h>
#include <prometheus/text_serializer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "daemon/bus.hpp"
#include "daemon/config.hpp"
#include "daemon/connectors.hpp"
#include "daemon/http_server.hpp"
#include "daemon/json_writer.hpp"
#include "daemon/log.hpp"
#include "daemon/snapshot_file.hpp"
#include "daemon/topology.hpp"
#include "daemon/version.hpp"
#include "pipeline/binary.hpp"
#include "pipeline/rolling.hpp"

namespace replywatch::daemon {

namespace {

namespace asio = boost::asio;
using connectors::wall_now;

constexpr std::size_t kWebhookBodyLimit = 1 << 20;  // one Update; Telegram sends far less

/// Runs one connector's poll loop on its own thread; failures back off
/// exponentially (with jitter) up to five minutes.
class Runner : public connectors::Output {
 public:
  Runner(std::unique_ptr<connectors::Connector> connector, std::int64_t interval_secs,
         asio::io_context& io, Bus& bus, Topology& topology)
      : connector_(std::move(connector)),
        interval_(interval_secs),
        io_(io),
        bus_(bus),
        engine_(topology),
        limiter_(5, 60) {}

  void start() {
    thread_ = std::thread([this] { loop(); });
  }

  void request_stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
  }

  void join() {
    if (thread_.joinable()) thread_.join();
  }

  void deliver(connectors::Batch&& batch) override { bus_.publish(std::move(batch)); }

  bool wait_durable(const std::atomic<bool>& stop) override {
    return bus_.wait_durable(connector_->name(), stop);
  }

  void error(const std::string& error_type, const std::string& message) override {
    long long suppressed = 0;
    if (limiter_.allow(wall_now(), suppressed)) {
      log_warn(
          "connector " + connector_->name() + ": " + error_type + ": " + message +
          (suppressed ? " (" + std::to_string(suppressed) + " similar lines suppressed)" : ""));
    }
    asio::post(io_, [this, error_type, message] {
      engine_.connector_error(connector_->name(), error_type, message, false);
    });
  }

 private:
  void loop() {
    std::mt19937_64 rng(std::random_device{}());
    int failures = 0;
    while (!stop_) {
      const auto outcome = connector_->poll(*this, stop_);
      const bool caught_up = !connector_->pending();
      if (outcome == connectors::PollOutcome::ok) {
        failures = 0;
        // A poll of many requests saw everything as of its start, not its end.
        const std::int64_t wall = wall_now();
        const std::int64_t now = std::min(wall, connector_->seen_as_of().value_or(wall));
        asio::post(io_, [this, caught_up, now] {
          engine_.connector_success(connector_->name(), now, caught_up);
        });
      } else if (outcome == connectors::PollOutcome::retry_later) {
        // The source asked us to wait (429): it may hold a backlog, so hold the watermark.
        asio::post(io_, [this] { engine_.connector_behind(connector_->name()); });
      } else {
        ++failures;
        const bool fatal = outcome == connectors::PollOutcome::fatal;
        asio::post(io_, [this, fatal] {
          engine_.connector_failed(connector_->name());
          if (fatal) engine_.connector_mark_fatal(connector_->name());
        });
      }
      // The remote's own wait first; then backoff after failures; long polling
      // needs no pause; other connectors wait their interval once caught up.
      std::optional<std::chrono::milliseconds> wait = connector_->requested_delay();
      if (!wait && failures > 0) {
        // Exponential from 1 s (or the interval), doubling to five minutes, with
        // jitter so that many bots recovering together do not retry in step.
        // Long polling has no interval of its own: back off from a second.
        const std::int64_t base =
            connector_->long_polls() ? 1000 : std::max<std::int64_t>(1000, interval_ * 1000);
        const std::int64_t backoff =
            std::min<std::int64_t>(300'000, base << std::min(failures - 1, 9));
        wait = std::chrono::milliseconds(backoff / 2 +
                                         static_cast<std::int64_t>(rng() % (backoff / 2 + 1)));
      }
      if (!wait && !connector_->long_polls()) {
        // Pending input (a file settling) is looked at again soon, not in a busy loop.
        wait = caught_up ? std::chrono::milliseconds(interval_ * 1000)
                         : std::min(std::chrono::milliseconds(interval_ * 1000),
                                    std::chrono::milliseconds(250));
      }
      if (wait) {
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, *wait, [this] { return stop_.load(); });
      }
    }
  }

  std::unique_ptr<connectors::Connector> connector_;
  std::int64_t interval_;
  asio::io_context& io_;
  Bus& bus_;
  Topology& engine_;
  LogLimiter limiter_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
};

/// Pushes are acknowledged to the platform (which then forgets them) before the next
/// snapshot: each is first appended to this journal and synced, and replayed at start
/// on top of the snapshot. Every snapshot empties it.
class PushJournal {
 public:
  ~PushJournal() {
    if (fd_ >= 0) ::close(fd_);
  }

  Result<void> open(const std::string& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0) return make_error("cannot open " + path + ": " + std::strerror(errno));
    return {};
  }

  /// Appends and syncs one push; false if it could not be made durable.
  bool append(const std::string& connector, std::string_view body, std::int64_t received_at) {
    std::string record;
    pipeline::BinaryWriter w(record);
    w.put_bytes(connector);
    w.put_bytes(body);
    w.put(received_at);
    std::string framed;
    pipeline::BinaryWriter f(framed);
    f.put(static_cast<std::uint32_t>(record.size()));
    framed += record;
    std::size_t done = 0;
    while (done < framed.size()) {
      const ssize_t n = ::write(fd_, framed.data() + done, framed.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return ::fdatasync(fd_) == 0;
  }

  struct Push {
    std::string connector;
    std::string body;
    std::int64_t received_at = 0;  // 0: a journal of an earlier version, without it
  };

  /// Every complete record, in order; a torn last record (a crash mid-append) is dropped.
  std::vector<Push> read_all() const {
    std::vector<Push> out;
    std::ifstream in(path_, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    pipeline::BinaryReader r(data);
    while (!r.at_end()) {
      std::uint32_t size = 0;
      if (!r.get(size) || data.size() - r.position() < size) break;
      const std::string_view record(data.data() + r.position(), size);
      pipeline::BinaryReader fields(record);
      std::string_view connector, body;
      if (!fields.get_bytes(connector) || !fields.get_bytes(body)) break;
      Push push{std::string(connector), std::string(body), 0};
      if (!fields.at_end() && !fields.get(push.received_at)) break;
      out.push_back(std::move(push));
      if (!r.skip(size)) break;
    }
    return out;
  }

  void clear() {
    if (fd_ >= 0 && ::ftruncate(fd_, 0) == 0) ::fsync(fd_);
  }

 private:
  std::string path_;
  int fd_ = -1;
};

class Daemon {
 public:
  Daemon(std::string config_path, std::shared_ptr<const Config> config)
      : config_path_(std::move(config_path)),
        engine_ptr_(make_topology(
            io_, config, [this] { schedule_sync_snapshot(); },
            [this](const std::string& why) {
              // A stage cannot go on (on its own thread): stop, and exit non-zero.
              asio::post(io_, [this, why] {
                if (stopping_) return;
                log_error("stopping: " + why);
                exit_code_ = 1;
                shutdown();
              });
            })),
        engine_(*engine_ptr_),
        http_(io_, HttpLimits{}, [this](const HttpRequest& r) { return handle(r); }),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        tick_(io_),
        snapshot_timer_(io_),
        sync_timer_(io_) {}

  int run() {
    const auto& d = engine_.config().daemon;
    std::error_code ec;
    std::filesystem::create_directories(d.data_dir, ec);
    if (ec) {
      log_error("cannot create data directory " + d.data_dir + ": " + ec.message());
      return 1;
    }
    snapshot_path_ = (std::filesystem::path(d.data_dir) / engine_.snapshot_name()).string();
    auto snapshot = read_snapshot_file(snapshot_path_);
    if (!snapshot) {
      log_error(snapshot.error().message +
                "; refusing to start over it. Move it aside to start from empty state.");
      return 1;
    }
    if (*snapshot) {
      if (auto ok = engine_.restore(**snapshot); !ok) {
        log_error("snapshot " + snapshot_path_ + ": " + ok.error().message +
                  "; refusing to start over it. Move it aside to start from empty state.");
        return 1;
      }
      log_info("restored state from " + snapshot_path_ + " (" + engine_.restored_summary() + ")");
    }
    if (auto ok = engine_.start(); !ok) {
      log_error(ok.error().message);
      return 1;
    }
    if (!replay_journal(d.data_dir)) return 1;
    restored_ = true;
    if (auto ok = http_.listen(d.listen_address, d.listen_port); !ok) {
      log_error(ok.error().message);
      return 1;
    }
    engine_.serving(wall_now());
    log_info("listening on http://" + d.listen_address + ":" + std::to_string(http_.port()) +
             " (/metrics, /api/v1/ranking, /api/v1/appeals, /healthz, /readyz)");
    write_port_file(d.data_dir);

    for (const auto& c : engine_.config().connectors) {
      if (auto handler = make_push_handler(c)) {
        add_push_route(c, std::move(handler));
        continue;
      }
      auto connector = make_connector(c, engine_.cursors(c.name));
      runners_.push_back(std::make_unique<Runner>(std::move(connector), c.poll_interval_secs, io_,
                                                  engine_.bus(), engine_));
      runners_.back()->start();
      log_info("connector " + c.name + " (" + c.type + ") started" +
               (c.type == "telegram" ? " polling " + c.api_base_url + "/bot<redacted>/getUpdates"
                : c.type == "vk"     ? " polling " + std::to_string(c.walls.size()) +
                                       " wall(s) through " + c.api_base_url
                                     : " on " + c.path));
    }
    started_ = true;
    engine_.tick(wall_now());
    schedule_tick();
    schedule_snapshot();
    wait_signal();
    io_.run();
    log_info("stopped");
    return exit_code_;
  }

 private:
  /// Push connectors (Telegram webhook, VK Callback API): requests arrive on our own
  /// HTTP server at the connector's path; the handler checks and reads them.
  struct PushRoute {
    std::string connector;
    std::unique_ptr<connectors::PushHandler> handler;
  };

  void add_push_route(const ConnectorConfig& c, std::unique_ptr<connectors::PushHandler> handler) {
    http_.set_body_limit(c.webhook_path, kWebhookBodyLimit);
    push_routes_.emplace(c.webhook_path, PushRoute{c.name, std::move(handler)});
    engine_.connector_success(c.name, wall_now(), true);
    log_info("connector " + c.name + " (" + c.type + " " + c.mode + ") receiving on " +
             c.webhook_path);
  }

  HttpResponse push(PushRoute& route, const HttpRequest& r) {
    connectors::PushRequest request;
    request.method = r.method;
    request.body = r.body;
    request.headers = &r.headers;
    request.query = &r.query;
    request.remote = r.remote;
    const std::int64_t now = wall_now();
    auto result = route.handler->handle(request);
    auto answer = [](connectors::PushReply reply) {
      return HttpResponse{reply.status, std::move(reply.content_type), std::move(reply.body),
                          std::move(reply.headers)};
    };
    if (!result.error_type.empty()) {
      engine_.connector_error(route.connector, result.error_type, result.error_message, false);
    }
    if (!result.batch) return answer(std::move(result.reply));
    if (!journal_.append(route.connector, result.journal_body ? *result.journal_body : r.body,
                         now)) {
      // Not durable: let the platform deliver it again rather than risk losing it.
      engine_.connector_error(route.connector, "journal_write", "cannot sync the push journal",
                              false);
      return {503, "text/plain; charset=utf-8", "try again\n", {{"Retry-After", "1"}}};
    }
    // Applying on this thread takes microseconds (in process; on Kafka, handing it to the
    // producer): the handler answers at once. A snapshot follows shortly (sync).
    if (!engine_.push(std::move(*result.batch), now)) {
      engine_.connector_error(route.connector, "bus_full", "the bus cannot take the push now",
                              false);
      return {503, "text/plain; charset=utf-8", "try again\n", {{"Retry-After", "5"}}};
    }
    engine_.connector_success(route.connector, now, true);
    schedule_sync_snapshot();
    return answer(std::move(result.reply));
  }

  /// Pushes acknowledged after the last snapshot: apply them again (duplicates are
  /// harmless), then snapshot so the journal can start empty.
  bool replay_journal(const std::string& dir) {
    const std::string path = (std::filesystem::path(dir) / "webhook.journal").string();
    if (auto ok = journal_.open(path); !ok) {
      log_error(ok.error().message);
      return false;
    }
    const auto pushes = journal_.read_all();
    if (pushes.empty()) return true;
    // The handlers by connector: a push of a connector no longer configured is dropped.
    std::map<std::string, std::unique_ptr<connectors::PushHandler>> handlers;
    for (const auto& c : engine_.config().connectors) {
      if (auto handler = make_push_handler(c)) handlers.emplace(c.name, std::move(handler));
    }
    std::size_t dropped = 0;
    for (const auto& push : pushes) {
      const auto it = handlers.find(push.connector);
      auto batch = it == handlers.end() ? std::nullopt
                                        : it->second->replay(push.body, push.received_at > 0
                                                                            ? push.received_at
                                                                            : wall_now());
      if (!batch) {
        ++dropped;
        continue;
      }
      engine_.push(std::move(*batch), wall_now());
    }
    if (dropped > 0) {
      log_warn("dropped " + std::to_string(dropped) + " journalled push(es) of " + path +
               " that no configured push connector reads");
    }
    log_info("replayed " + std::to_string(pushes.size()) + " webhook push(es) from " + path);
    return save_snapshot();
  }

  /// Coalesces snapshots asked for by sync batches: at most one per 200 ms.
  void schedule_sync_snapshot() {
    if (sync_pending_ || stopping_) return;
    sync_pending_ = true;
    sync_timer_.expires_after(std::chrono::milliseconds(200));
    sync_timer_.async_wait([this](const boost::system::error_code& ec) {
      sync_pending_ = false;
      if (ec || stopping_) return;
      save_snapshot();
    });
  }

  void write_port_file(const std::string& dir) {
    // Lets scripts and tests find an ephemeral port (listen: "127.0.0.1:0").
    const auto path = std::filesystem::path(dir) / "http.port";
    if (FILE* f = std::fopen(path.c_str(), "w")) {
      std::fprintf(f, "%u\n", static_cast<unsigned>(http_.port()));
      std::fclose(f);
    }
  }

  void schedule_tick() {
    tick_.expires_after(std::chrono::seconds(engine_.config().daemon.expiry_tick_secs));
    tick_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      engine_.tick(wall_now());
      schedule_tick();
    });
  }

  void schedule_snapshot() {
    snapshot_timer_.expires_after(
        std::chrono::seconds(engine_.config().daemon.snapshot_interval_secs));
    snapshot_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      save_snapshot();
      schedule_snapshot();
    });
  }

  bool save_snapshot() {
    const auto started = std::chrono::steady_clock::now();
    auto ok = write_snapshot_file(snapshot_path_, engine_.serialize());
    if (!ok) {
      log_error("snapshot failed: " + ok.error().message);
      return false;
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    if (ms > 1000) log_warn("snapshot took " + std::to_string(ms) + " ms");
    // Every journalled push is in the snapshot now (on Kafka: once acknowledged there).
    bool pushes_durable = true;
    for (const auto& [path, route] : push_routes_)
      pushes_durable = pushes_durable && engine_.durable(route.connector);
    if (pushes_durable) journal_.clear();
    engine_.snapshot_written();
    return true;
  }

  void wait_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        reload();
        wait_signal();
        return;
      }
      log_info(std::string("received ") + (signal == SIGTERM ? "SIGTERM" : "SIGINT") +
               ": draining");
      shutdown();
    });
  }

  void reload() {
    auto config = load_config(config_path_);
    if (!config) {
      engine_.reload_failed(wall_now());
      // One line per problem, each complete: log tools keep lines, not messages.
      const std::string all = config.error().message;
      std::string_view problems = all;
      while (!problems.empty()) {
        const auto eol = problems.find('\n');
        log_error("configuration reload rejected, running configuration kept: " +
                  std::string(problems.substr(0, eol)));
        if (eol == std::string_view::npos) break;
        problems.remove_prefix(eol + 1);
      }
      return;
    }
    auto next = std::make_shared<Config>(std::move(*config));
    const auto& old = engine_.config();
    if (next->daemon.listen_address != old.daemon.listen_address ||
        next->daemon.listen_port != old.daemon.listen_port ||
        next->daemon.data_dir != old.daemon.data_dir ||
        next->connectors.size() != old.connectors.size()) {
      log_warn(
          "reload: daemon and connector settings take effect at the next restart; "
          "registry changes apply now");
    }
    // Keep the running daemon and connector settings; only the registry changes live.
    next->daemon = old.daemon;
    next->connectors = old.connectors;
    next->bus = old.bus;
    engine_.reload(next);
    log_info("configuration reloaded: " + std::to_string(next->registry->agencies.size()) +
             " agencies");
  }

  void shutdown() {
    stopping_ = true;
    tick_.cancel();
    snapshot_timer_.cancel();
    sync_timer_.cancel();
    for (auto& r : runners_) r->request_stop();
    if (started_) engine_.bus().close();  // wakes producers blocked on a full bus
    // Joining on the io thread is safe: producers no longer wait for it.
    for (auto& r : runners_) r->join();
    io_.poll();      // apply batches and reports already queued
    engine_.stop();  // on Kafka: the last records out, the stages' last transactions
    io_.poll();      // what they reported back (cursors now acknowledged)
    if (!save_snapshot()) exit_code_ = 1;
    http_.stop();
    signals_.cancel();
    io_.stop();
  }

  HttpResponse handle(const HttpRequest& r) {
    if (auto route = push_routes_.find(r.path); route != push_routes_.end()) {
      return push(route->second, r);
    }
    if (r.method != "GET" && r.method != "HEAD") {
      HttpResponse res{
          405, "text/plain; charset=utf-8", "method not allowed\n", {{"Allow", "GET"}}};
      return res;
    }
    const std::int64_t now = wall_now();
    if (r.path == "/metrics") {
      auto families = engine_.collect(now);
      families.push_back(build_info());
      prometheus::TextSerializer serializer;
      return {200, "text/plain; version=0.0.4; charset=utf-8", serializer.Serialize(families), {}};
    }
    if (r.path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n", {}};
    if (r.path == "/readyz") return readiness();
    if (r.path == "/api/v1/ranking") return ranking(r, now);
    if (r.path == "/api/v1/appeals") return appeals(r);
    return {404, "text/plain; charset=utf-8", "not found: " + r.path + "\n", {}};
  }

  HttpResponse readiness() {
    std::string body;
    bool ready = restored_ && started_;
    if (!restored_) body += "state: not restored\n";
    if (!started_) body += "connectors: not started\n";
    for (const auto& [name, h] : engine_.connectors()) {
      if (h.fatal) {
        ready = false;
        body += "connector " + name + ": failed: " + h.last_error + "\n";
      }
    }
    for (const auto& line : engine_.not_ready()) {
      ready = false;
      body += line + "\n";
    }
    if (ready) body = "ready\n";
    return {ready ? 200 : 503, "text/plain; charset=utf-8", body, {}};
  }

  static HttpResponse json_error(int status, const std::string& message) {
    std::string body;
    JsonWriter w(body);
    w.begin_object().field("error", message).end_object();
    body += '\n';
    return {status, "application/json", std::move(body), {}};
  }
  static HttpResponse bad_request(const std::string& message) { return json_error(400, message); }

  HttpResponse ranking(const HttpRequest& r, std::int64_t now) {
    const std::string window = r.query_param("window").value_or("7d");
    const std::string by = r.query_param("by").value_or("agency");
    const std::string format = r.query_param("format").value_or("json");
    std::size_t w = pipeline::kWindows.size();
    for (std::size_t i = 0; i < pipeline::kWindows.size(); ++i) {
      if (pipeline::kWindows[i].name == window) w = i;
    }
    if (w == pipeline::kWindows.size()) return bad_request("window must be 1h, 24h, 7d or 30d");
    if (by != "agency" && by != "responder" && by != "branch") {
      return bad_request("by must be agency, responder or branch");
    }
    if (format == "csv") {
      return {200, "text/csv; charset=utf-8", engine_.ranking_csv(w, by, now), {}};
    }
    if (format != "json") return bad_request("format must be json or csv");
    return {200, "application/json", engine_.ranking_json(w, by, now), {}};
  }

  HttpResponse appeals(const HttpRequest& r) {
    const std::string agency = r.query_param("agency").value_or("");
    const std::string status = r.query_param("status").value_or("");
    const std::string cursor = r.query_param("cursor").value_or("");
    std::size_t limit = 100;
    if (auto l = r.query_param("limit")) {
      char* end = nullptr;
      const long v = std::strtol(l->c_str(), &end, 10);
      if (l->empty() || *end != '\0' || v < 1 || v > 1000) {
        return bad_request("limit must be between 1 and 1000");
      }
      limit = static_cast<std::size_t>(v);
    }
    if (!status.empty() && status != "open" && status != "answered" && status != "unanswered" &&
        status != "withdrawn") {
      return bad_request("status must be open, answered, unanswered or withdrawn");
    }
    if (!agency.empty() && engine_.config().registry->agency_index(agency) < 0) {
      return json_error(404, "unknown agency '" + agency + "'");
    }
    auto body = engine_.appeals_json(agency, status, limit, cursor);
    if (!body) return bad_request(body.error().message);
    return {200, "application/json", std::move(*body), {}};
  }

  static prometheus::MetricFamily build_info() {
    prometheus::MetricFamily f;
    f.name = "replywatch_build_info";
    f.help = "Build version and revision; always 1.";
    f.type = prometheus::MetricType::Gauge;
    prometheus::ClientMetric m;
    prometheus::ClientMetric::Label version, revision;
    version.name = "version";
    version.value = daemon::version();
    revision.name = "revision";
    revision.value = daemon::revision();
    m.label = {revision, version};
    m.gauge.value = 1;
    f.metric.push_back(m);
    return f;
  }

  std::string config_path_;
  asio::io_context io_;
  std::unique_ptr<Topology> engine_ptr_;
  Topology& engine_;
  HttpServer http_;
  asio::signal_set signals_;
  asio::steady_timer tick_;
  asio::steady_timer snapshot_timer_;
  asio::steady_timer sync_timer_;
  bool sync_pending_ = false;
  PushJournal journal_;
  std::map<std::string, PushRoute> push_routes_;
  std::vector<std::unique_ptr<Runner>> runners_;
  std::string snapshot_path_;
  bool restored_ = false;
  bool started_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
};

}  // namespace

int run_daemon(const RunOptions& options) {
  auto config = load_config(options.config_path);
  if (!config) {
    log_error(config.error().message);
    return 1;
  }
  auto shared = std::make_shared<Config>(std::move(*config));
  Daemon daemon(options.config_path, shared);
  return daemon.run();
}

}  // namespace replywatch::daemon
