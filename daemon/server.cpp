// Wiring of the daemon: configuration, restored state, connectors on their own
// threads feeding the in-process bus, the pipeline on the io_context thread,
// the HTTP endpoints, timers for expiry and snapshots, and signals.
#include "daemon/server.hpp"

#include "daemon/bus.hpp"
#include "daemon/config.hpp"
#include "daemon/connectors.hpp"
#include "daemon/engine.hpp"
#include "daemon/http_server.hpp"
#include "daemon/log.hpp"
#include "daemon/snapshot_file.hpp"
#include "pipeline/rolling.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <prometheus/text_serializer.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <random>
#include <thread>

#ifndef REPLYWATCH_VERSION
#define REPLYWATCH_VERSION "0.0.0"
#endif
#ifndef REPLYWATCH_REVISION
#define REPLYWATCH_REVISION "unknown"
#endif

namespace replywatch::daemon {

namespace {

namespace asio = boost::asio;

std::int64_t wall_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Runs one connector's poll loop on its own thread; failures back off
/// exponentially (with jitter) up to five minutes.
class Runner : public connectors::Output {
 public:
  Runner(std::unique_ptr<connectors::Connector> connector, std::int64_t interval_secs,
         asio::io_context& io, Bus& bus, Engine& engine)
      : connector_(std::move(connector)),
        interval_(interval_secs),
        io_(io),
        bus_(bus),
        engine_(engine),
        limiter_(5, 60) {}

  void start() { thread_ = std::thread([this] { loop(); }); }

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

  void error(const std::string& error_type, const std::string& message) override {
    long long suppressed = 0;
    if (limiter_.allow(wall_now(), suppressed)) {
      log_warn("connector " + connector_->name() + ": " + error_type + ": " + message +
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
        asio::post(io_, [this, caught_up, now = wall_now()] {
          engine_.connector_success(connector_->name(), now, caught_up);
        });
      } else {
        ++failures;
        asio::post(io_, [this] { engine_.connector_failed(connector_->name()); });
        if (outcome == connectors::PollOutcome::fatal) {
          asio::post(io_, [this] {
            engine_.connector_error(connector_->name(), "fatal", "connector stopped", true);
          });
        }
      }
      auto wait = std::chrono::milliseconds(interval_ * 1000);
      if (failures > 0) {
        const auto backoff = std::min<std::int64_t>(300'000, interval_ * 1000LL << std::min(failures, 8));
        wait = std::chrono::milliseconds(backoff / 2 + static_cast<std::int64_t>(rng() % (backoff / 2 + 1)));
      }
      if (caught_up || failures > 0) {
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, wait, [this] { return stop_.load(); });
      }
    }
  }

  std::unique_ptr<connectors::Connector> connector_;
  std::int64_t interval_;
  asio::io_context& io_;
  Bus& bus_;
  Engine& engine_;
  LogLimiter limiter_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};
};

class Daemon {
 public:
  Daemon(std::string config_path, std::shared_ptr<const Config> config)
      : config_path_(std::move(config_path)),
        engine_(config),
        bus_(io_, [this](EventBatch&& b) { engine_.apply(std::move(b), wall_now()); }),
        http_(io_, HttpLimits{}, [this](const HttpRequest& r) { return handle(r); }),
        signals_(io_, SIGTERM, SIGINT, SIGHUP),
        tick_(io_),
        snapshot_timer_(io_) {}

  int run() {
    const auto& d = engine_.config().daemon;
    std::error_code ec;
    std::filesystem::create_directories(d.data_dir, ec);
    if (ec) {
      log_error("cannot create data directory " + d.data_dir + ": " + ec.message());
      return 1;
    }
    snapshot_path_ = (std::filesystem::path(d.data_dir) / "state.snap").string();
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
      log_info("restored state from " + snapshot_path_ + " (" +
               std::to_string(engine_.pairing().open_appeals()) + " open appeals)");
    }
    restored_ = true;
    if (auto ok = http_.listen(d.listen_address, d.listen_port); !ok) {
      log_error(ok.error().message);
      return 1;
    }
    log_info("listening on http://" + d.listen_address + ":" + std::to_string(http_.port()) +
             " (/metrics, /api/v1/ranking, /api/v1/appeals, /healthz, /readyz)");
    write_port_file(d.data_dir);

    for (const auto& c : engine_.config().connectors) {
      auto connector = make_connector(c, engine_.cursors(c.name));
      runners_.push_back(
          std::make_unique<Runner>(std::move(connector), c.poll_interval_secs, io_, bus_, engine_));
      runners_.back()->start();
      log_info("connector " + c.name + " (" + c.type + ") started on " + c.path);
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
      log_error("configuration reload rejected, keeping the running configuration:\n" +
                config.error().message);
      return;
    }
    auto next = std::make_shared<Config>(std::move(*config));
    const auto& old = engine_.config();
    if (next->daemon.listen_address != old.daemon.listen_address ||
        next->daemon.listen_port != old.daemon.listen_port ||
        next->daemon.data_dir != old.daemon.data_dir ||
        next->connectors.size() != old.connectors.size()) {
      log_warn("reload: daemon and connector settings take effect at the next restart; "
               "registry changes apply now");
    }
    // Keep the running daemon and connector settings; only the registry changes live.
    next->daemon = old.daemon;
    next->connectors = old.connectors;
    engine_.reload(next);
    log_info("configuration reloaded: " + std::to_string(next->registry->agencies.size()) +
             " agencies");
  }

  void shutdown() {
    stopping_ = true;
    tick_.cancel();
    snapshot_timer_.cancel();
    for (auto& r : runners_) r->request_stop();
    bus_.close();  // wakes producers blocked on a full bus
    // Joining on the io thread is safe: producers no longer wait for it.
    for (auto& r : runners_) r->join();
    io_.poll();  // apply batches and reports already queued
    if (!save_snapshot()) exit_code_ = 1;
    http_.stop();
    signals_.cancel();
    io_.stop();
  }

  HttpResponse handle(const HttpRequest& r) {
    if (r.method != "GET" && r.method != "HEAD") {
      HttpResponse res{405, "text/plain; charset=utf-8", "method not allowed\n", {{"Allow", "GET"}}};
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
    if (ready) body = "ready\n";
    return {ready ? 200 : 503, "text/plain; charset=utf-8", body, {}};
  }

  static HttpResponse bad_request(const std::string& message) {
    return {400, "application/json", "{\"error\":\"" + message + "\"}\n", {}};
  }

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
    if (!status.empty() && status != "open" && status != "answered" && status != "unanswered") {
      return bad_request("status must be open, answered or unanswered");
    }
    if (!agency.empty() && engine_.config().registry->agency_index(agency) < 0) {
      return {404, "application/json", "{\"error\":\"unknown agency\"}\n", {}};
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
    version.value = REPLYWATCH_VERSION;
    revision.name = "revision";
    revision.value = REPLYWATCH_REVISION;
    m.label = {revision, version};
    m.gauge.value = 1;
    f.metric.push_back(m);
    return f;
  }

  std::string config_path_;
  asio::io_context io_;
  Engine engine_;
  InProcessBus bus_;
  HttpServer http_;
  asio::signal_set signals_;
  asio::steady_timer tick_;
  asio::steady_timer snapshot_timer_;
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
