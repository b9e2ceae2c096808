// The telegram_export watcher: settle, ingest once, re-ingest on change, refuse
// a broken file once, and resume from restored cursors.
#include "connectors/telegram_export/watcher.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

using namespace replywatch::connectors;

namespace {

struct Recorder : Output {
  void deliver(Batch&& b) override { batches.push_back(std::move(b)); }
  void error(const std::string& type, const std::string& message) override {
    errors.push_back(type + ": " + message);
  }
  std::size_t events() const {
    std::size_t n = 0;
    for (const auto& b : batches) n += b.events.size();
    return n;
  }
  std::vector<Batch> batches;
  std::vector<std::string> errors;
};

std::filesystem::path fresh_dir(const char* name) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

const std::string kExport =
    R"({"name":"g","type":"public_supergroup","id":1800004444,"messages":[
{"id":1,"type":"message","date_unixtime":"1772424000","from_id":"user5","text":"a"},
{"id":2,"type":"message","date_unixtime":"1772424060","from_id":"user500201","reply_to_message_id":1,"text":"b"}]})";

}  // namespace

TEST_CASE("watcher: a file is ingested once it holds still, then never again") {
  const auto dir = fresh_dir("replywatch_watcher_once");
  write(dir / "result.json", kExport);
  telegram_export::Watcher w("exports", dir.string(), {}, {});
  std::atomic<bool> stop{false};
  Recorder out;
  CHECK(w.poll(out, stop) == PollOutcome::ok);
  CHECK(out.batches.empty());  // first sight: settling
  CHECK(w.pending());
  CHECK(w.poll(out, stop) == PollOutcome::ok);
  REQUIRE(out.batches.size() == 1);
  CHECK(out.events() == 2);
  REQUIRE(out.batches[0].cursors.size() == 1);
  CHECK_FALSE(w.pending());
  w.poll(out, stop);
  CHECK(out.batches.size() == 1);

  // A changed export (more messages) is ingested again; pairing dedupes the old ones.
  write(dir / "result.json", kExport.substr(0, kExport.size() - 2) +
                                 R"(,{"id":3,"type":"message","date_unixtime":"1772424100","from_id":"user6","text":"c"}]})");
  w.poll(out, stop);
  w.poll(out, stop);
  REQUIRE(out.batches.size() == 2);
  CHECK(out.batches[1].events.size() == 3);

  // Restarted with the cursor it reported: nothing to do.
  CursorMap restored;
  for (const auto& b : out.batches) {
    for (const auto& c : b.cursors) restored[c.key] = c.value;
  }
  telegram_export::Watcher again("exports", dir.string(), {}, restored);
  Recorder out2;
  again.poll(out2, stop);
  again.poll(out2, stop);
  CHECK(out2.batches.empty());
  std::filesystem::remove_all(dir);
}

TEST_CASE("watcher: a broken export is reported once, and retried when it changes") {
  const auto dir = fresh_dir("replywatch_watcher_broken");
  write(dir / "broken.json", kExport.substr(0, 40));
  telegram_export::Watcher w("exports", dir.string(), {}, {});
  std::atomic<bool> stop{false};
  Recorder out;
  w.poll(out, stop);
  w.poll(out, stop);
  w.poll(out, stop);
  REQUIRE(out.errors.size() == 1);
  CHECK(out.errors[0].find("invalid_export") == 0);
  CHECK(out.errors[0].find("broken.json") != std::string::npos);
  CHECK(out.events() == 0);
  write(dir / "broken.json", kExport);
  w.poll(out, stop);
  w.poll(out, stop);
  CHECK(out.events() == 2);
  std::filesystem::remove_all(dir);
}

TEST_CASE("watcher: a missing directory is a fatal poll (configuration) with a clear error") {
  telegram_export::Watcher w("exports", "/nonexistent/replywatch/exports", {}, {});
  std::atomic<bool> stop{false};
  Recorder out;
  CHECK(w.poll(out, stop) == PollOutcome::fatal);
  REQUIRE(out.errors.size() == 1);
  CHECK(out.errors[0].find("/nonexistent/replywatch/exports") != std::string::npos);
}
