// Reads whole lines past the cursor in bounded chunks; each chunk is one batch
// carrying the offset it reached.
#include "connectors/ndjson/tailer.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace replywatch::connectors::ndjson {

namespace {

constexpr std::size_t kChunkBytes = 4 << 20;

}  // namespace

std::string Tailer::encode(const FileCursor& c) {
  return std::to_string(c.offset) + ":" + std::to_string(c.device) + ":" +
         std::to_string(c.inode) + ":" + (c.in_long_line ? "1" : "0");
}

bool Tailer::decode(const std::string& text, FileCursor& c) {
  unsigned long long offset = 0, device = 0, inode = 0;
  int long_line = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%llu:%llu:%llu:%d%c", &offset, &device, &inode, &long_line,
                  &tail) != 4) {
    return false;
  }
  c.offset = offset;
  c.device = device;
  c.inode = inode;
  c.in_long_line = long_line != 0;
  return true;
}

Tailer::Tailer(std::string name, std::string path, CursorMap restored)
    : name_(std::move(name)), path_(std::move(path)) {
  for (const auto& [file, text] : restored) {
    FileCursor c;
    if (decode(text, c)) cursors_[file] = c;
  }
}

PollOutcome Tailer::poll(Output& out, const std::atomic<bool>& stop) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  if (fs::is_directory(path_, ec)) {
    for (auto it = fs::directory_iterator(path_, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      const auto ext = it->path().extension();
      if ((ext == ".ndjson" || ext == ".jsonl") && it->is_regular_file(ec)) {
        files.push_back(it->path().string());
      }
    }
    std::sort(files.begin(), files.end());
  } else if (fs::exists(path_, ec)) {
    files.push_back(path_);
  } else {
    // A configuration problem, not a passing fault: /readyz reports the connector failed.
    out.error("file_unreadable", "ndjson input " + path_ + " does not exist");
    return PollOutcome::fatal;
  }
  bool failed = false;
  pending_ = false;
  for (const auto& file : files) {
    FileCursor& cursor = cursors_[file];
    for (int chunk = 0; !stop; ++chunk) {
      Batch batch;
      batch.connector = name_;
      batch.received_at = wall_now();
      auto summary = read_new_lines(
          file, cursor, kChunkBytes, [&](const pipeline::Event& e) { batch.events.push_back(e); },
          [&](std::string_view reason, std::uint64_t) { ++batch.rejected[std::string(reason)]; });
      if (!summary) {
        out.error("file_unreadable", summary.error().message);
        failed = true;
        break;
      }
      if (summary->bytes == 0 && batch.events.empty() && batch.rejected.empty()) break;
      batch.cursors.push_back({file, encode(cursor)});
      out.deliver(std::move(batch));
      if (summary->at_end) break;
      pending_ = true;
    }
  }
  return failed ? PollOutcome::failed : PollOutcome::ok;
}

}  // namespace replywatch::connectors::ndjson
