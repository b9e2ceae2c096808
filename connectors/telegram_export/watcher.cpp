// A file is ingested once its size and mtime have held still for one poll, so an
// export still being written is not read half-way.
#include "connectors/telegram_export/watcher.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

namespace replywatch::connectors::telegram_export {

namespace {

constexpr std::size_t kBatchEvents = 8192;

/// Buffers one file; delivered only if the whole file parses.
class FileCollector : public Sink {
 public:
  bool on_chat(std::int64_t, std::string_view, std::string_view) override { return true; }
  void on_event(const pipeline::Event& e) override { events.push_back(e); }
  void on_rejected(std::string_view reason) override { ++rejected[std::string(reason)]; }
  std::vector<pipeline::Event> events;
  std::map<std::string, std::uint64_t> rejected;
};

}  // namespace

Watcher::Watcher(std::string name, std::string directory, ParseOptions options, CursorMap ingested,
                 std::chrono::milliseconds settle)
    : name_(std::move(name)),
      directory_(std::move(directory)),
      options_(std::move(options)),
      ingested_(std::move(ingested)),
      settle_(settle) {}

PollOutcome Watcher::poll(Output& out, const std::atomic<bool>& stop) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(directory_, ec)) {
    // A configuration problem, not a passing fault: /readyz reports the connector failed.
    out.error("directory_unreadable", "export directory " + directory_ + " is not a readable directory");
    return PollOutcome::fatal;
  }
  std::vector<std::pair<std::string, std::string>> ready;  // path, mark
  std::map<std::string, Seen> now_seen;
  const auto now = std::chrono::steady_clock::now();
  auto it = fs::recursive_directory_iterator(directory_, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 3) {
      it.disable_recursion_pending();
      continue;
    }
    const auto& path = it->path();
    if (path.extension() != ".json") continue;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const std::string mark = std::to_string(st.st_size) + ":" +
                             std::to_string(st.st_mtim.tv_sec) + "." +
                             std::to_string(st.st_mtim.tv_nsec);
    const std::string key = path.string();
    Seen seen{mark, now};
    if (auto prev = seen_.find(key); prev != seen_.end() && prev->second.mark == mark) {
      seen.since = prev->second.since;
    }
    now_seen[key] = seen;
    if (auto done = ingested_.find(key); done != ingested_.end() && done->second == mark) continue;
    // Unchanged since an earlier poll, and for long enough: the writer is done.
    if (seen.since < now && now - seen.since >= settle_) ready.emplace_back(key, mark);
  }
  if (ec) {
    out.error("directory_unreadable", "cannot list " + directory_ + ": " + ec.message());
    return PollOutcome::failed;
  }
  seen_ = std::move(now_seen);
  std::sort(ready.begin(), ready.end());

  bool failed = false;
  for (std::size_t f = 0; f < ready.size() && !stop; ++f) {
    const auto& [path, mark] = ready[f];
    FileCollector collector;
    auto parsed = parse_file(path, options_, collector);
    if (!parsed) {
      out.error("invalid_export", parsed.error().message);
      // Remember the refusal: the file is retried when it changes, not every poll.
      Batch marker;
      marker.connector = name_;
      marker.received_at = wall_now();
      marker.cursors.push_back({path, mark});
      out.deliver(std::move(marker));
      ingested_[path] = mark;
      failed = true;
      continue;
    }
    const std::size_t n = collector.events.size();
    std::size_t start = 0;
    do {
      Batch batch;
      batch.connector = name_;
      batch.received_at = wall_now();
      const std::size_t end = std::min(n, start + kBatchEvents);
      batch.events.assign(collector.events.begin() + static_cast<std::ptrdiff_t>(start),
                          collector.events.begin() + static_cast<std::ptrdiff_t>(end));
      if (end == n) {
        batch.rejected = std::move(collector.rejected);
        batch.cursors.push_back({path, mark});
      }
      out.deliver(std::move(batch));
      start = end;
    } while (start < n && !stop);
    if (!stop) ingested_[path] = mark;
  }
  (void)failed;  // a refused file is an error counted above, not a failed poll
  return PollOutcome::ok;
}

bool Watcher::pending() const {
  for (const auto& [path, seen] : seen_) {
    const auto done = ingested_.find(path);
    if (done == ingested_.end() || done->second != seen.mark) return true;
  }
  return false;
}

}  // namespace replywatch::connectors::telegram_export
