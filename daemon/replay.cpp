// Replay reads every input fully before pairing: a file that turns out to be
// broken halfway contributes nothing, and a conversation spread over several
// files is put back in message order before the engine sees it (the engine would
// give the same appeals in any order; sorted, it never has to re-pair).
#include "daemon/replay.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <unordered_map>

#include "connectors/ndjson/ndjson_parser.hpp"
#include "connectors/telegram_export/export_parser.hpp"
#include "connectors/vk/vk_parser.hpp"

namespace replywatch::daemon {

namespace {

using pipeline::Event;

/// One file's content; merged into the replay only if the file parses.
struct FileEvents {
  std::vector<std::pair<pipeline::PairKey, std::vector<Event>>> per_conversation;
  std::map<std::string, std::uint64_t> rejected;
  std::set<std::int64_t> unowned;
  std::optional<std::int64_t> max_time;
  std::uint64_t messages = 0;
};

/// Collects a Telegram Desktop export's events.
class ExportBatch : public connectors::telegram_export::Sink {
 public:
  ExportBatch(const pipeline::Registry& registry, FileEvents& out, std::ostream* progress,
              std::uint64_t base)
      : registry_(registry), out_(out), progress_(progress), base_(base) {}

  bool on_chat(std::int64_t chat_id, std::string_view, std::string_view) override {
    chat_ = chat_id;
    owned_ = registry_.agency_of_conversation(pipeline::Source::telegram, chat_id) >= 0;
    if (!owned_) out_.unowned.insert(chat_id);
    // Parse unowned chats too: their messages still move the replay's clock.
    return true;
  }

  void on_event(const Event& e) override {
    ++out_.messages;
    out_.max_time = std::max(out_.max_time.value_or(e.time), e.time);
    if (owned_) {
      const pipeline::PairKey key{static_cast<std::int64_t>(e.source), chat_};
      auto& per = out_.per_conversation;
      if (per.empty() || !(per.back().first == key)) per.push_back({key, {}});
      per.back().second.push_back(e);
    }
    if (progress_ && (out_.messages & 0xFFFFF) == 0) {
      *progress_ << "\rreplay: " << (base_ + out_.messages) << " messages read" << std::flush;
    }
  }

  void on_rejected(std::string_view reason) override { ++out_.rejected[std::string(reason)]; }

 private:
  const pipeline::Registry& registry_;
  FileEvents& out_;
  std::ostream* progress_;
  std::uint64_t base_;
  std::int64_t chat_ = 0;
  bool owned_ = false;
};

void add_event(const pipeline::Registry& registry, FileEvents& out, const Event& e) {
  const bool message =
      e.kind == pipeline::EventKind::message || e.kind == pipeline::EventKind::service;
  if (message) {
    ++out.messages;
    out.max_time = std::max(out.max_time.value_or(e.time), e.time);
  }
  if (registry.agency_of_conversation(e.source, e.conversation) < 0) {
    if (e.source == pipeline::Source::telegram) out.unowned.insert(e.conversation);
  }
  const pipeline::PairKey key{static_cast<std::int64_t>(e.source), e.conversation};
  auto& per = out.per_conversation;
  if (per.empty() || !(per.back().first == key)) per.push_back({key, {}});
  per.back().second.push_back(e);
}

/// Reads a file of a platform's own JSON documents (docs/backfill-files.md) whole.
Result<void> read_platform(const std::string& path, pipeline::Source source,
                           const pipeline::Registry& registry, FileEvents& out) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return make_error(path + (ec ? ": cannot open: " + ec.message() : ": not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path + ": cannot open");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return make_error(path + ": read failed");
  if (source != pipeline::Source::vk) {
    return make_error(path + ": --source " + std::string(pipeline::to_string(source)) +
                      " files are not supported yet");
  }
  connectors::vk::Parser parser;
  connectors::vk::Parsed parsed;
  // A deletion or an edit in an archive of pushes has no time; none is needed to replay it.
  if (auto ok = parser.parse_many(text, 0, parsed); !ok) {
    return make_error(path + ": " + ok.error().message);
  }
  for (const Event& e : parsed.events) add_event(registry, out, e);
  for (const auto& [reason, n] : parsed.rejected) out.rejected[reason] += n;
  return {};
}

/// Reads a normalized-event (NDJSON) file whole.
Result<void> read_ndjson(const std::string& path, const pipeline::Registry& registry,
                         FileEvents& out) {
  connectors::ndjson::FileCursor cursor;
  auto on_event = [&](const Event& e) { add_event(registry, out, e); };
  auto on_rejected = [&](std::string_view reason, std::uint64_t) {
    ++out.rejected[std::string(reason)];
  };
  for (;;) {
    auto read = connectors::ndjson::read_new_lines(path, cursor, std::size_t{64} << 20, on_event,
                                                   on_rejected);
    if (!read) return read.error();
    if (read->at_end) return {};
  }
}

/// Streams every change into the statistics (taking back what a correction undoes —
/// with sorted input only a deletion followed by an answer does that), counts withdrawn
/// appeals, and with --appeals keeps every appeal as last reported.
class Collector : public pipeline::AppealSink {
 public:
  using Id = pipeline::AppealId;

  Collector(pipeline::ExactStats& stats, ReplayResult::Withdrawn& withdrawn, bool keep)
      : stats_(stats), withdrawn_(withdrawn), keep_(keep) {}

  void on_appeal(const pipeline::Appeal* before, const pipeline::Appeal* after) override {
    if (before) {
      stats_.remove_closed(*before);  // no-op unless it was answered or unanswered
      if (before->status == pipeline::AppealStatus::withdrawn)
        --withdrawn_[{before->agency, before->kind}];
    }
    if (after) {
      stats_.add_closed(*after);  // no-op unless answered or unanswered
      if (after->status == pipeline::AppealStatus::withdrawn)
        ++withdrawn_[{after->agency, after->kind}];
    }
    if (!keep_) return;
    const auto& a = after ? *after : *before;
    const Id id = Id::of(a);
    if (!after) {
      appeals.erase(id);
    } else if (auto [slot, inserted] = appeals.try_emplace(id, *after); !inserted) {
      *slot = *after;
    }
  }
  pipeline::FlatMap<Id, pipeline::Appeal, pipeline::AppealIdHash> appeals;

 private:
  pipeline::ExactStats& stats_;
  ReplayResult::Withdrawn& withdrawn_;
  bool keep_;
};

bool is_ndjson(const std::string& path) {
  const auto ext = std::filesystem::path(path).extension();
  return ext == ".ndjson" || ext == ".jsonl";
}

/// With --source, a directory stands for the regular files in it (an archive kept as one
/// file per day, say), in name order, each read and rejected on its own.
std::vector<std::string> platform_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const std::string& input : inputs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(input, ec)) {
      out.push_back(input);
      continue;
    }
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(input, ec)) {
      if (entry.is_regular_file(ec)) files.push_back(entry.path().string());
    }
    if (ec) {
      out.push_back(input);  // read_platform names the problem
      continue;
    }
    std::sort(files.begin(), files.end());
    out.insert(out.end(), files.begin(), files.end());
  }
  return out;
}

std::string resolve_input(const std::string& input) {
  std::error_code ec;
  if (std::filesystem::is_directory(input, ec)) {
    return (std::filesystem::path(input) / "result.json").string();
  }
  return input;
}

}  // namespace

ReplayResult run_replay(std::shared_ptr<const pipeline::Registry> registry,
                        const ReplayOptions& options, std::ostream& progress) {
  ReplayResult result;
  connectors::telegram_export::ParseOptions parse_options;
  parse_options.export_timezone = options.export_timezone;
  parse_options.map_file = true;  // inputs are finished exports, not files being written

  // Conversation → its events from every file, in file order.
  struct KeyHash {
    std::size_t operator()(const pipeline::PairKey& k) const { return pipeline::FlatHash{}(k); }
  };
  std::unordered_map<pipeline::PairKey, std::vector<Event>, KeyHash> conversations;
  std::vector<pipeline::PairKey> order;  // first-seen order, for a deterministic run
  const std::vector<std::string> inputs =
      options.platform ? platform_inputs(options.inputs) : options.inputs;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string path = options.platform ? inputs[i] : resolve_input(inputs[i]);
    if (options.progress) {
      progress << "\rreplay: reading " << (i + 1) << "/" << inputs.size() << ": " << path
               << "\x1b[K" << std::flush;
    }
    FileEvents batch;
    Result<void> parsed;
    if (options.platform) {
      parsed = read_platform(path, *options.platform, *registry, batch);
    } else if (is_ndjson(path)) {
      parsed = read_ndjson(path, *registry, batch);
    } else {
      ExportBatch sink(*registry, batch, options.progress ? &progress : nullptr, result.messages);
      auto read = connectors::telegram_export::parse_file(path, parse_options, sink);
      if (!read) parsed = read.error();
    }
    if (!parsed) {
      result.rejected_files.push_back({inputs[i], parsed.error().message});
      continue;
    }
    result.messages += batch.messages;
    if (batch.max_time)
      result.clock = std::max(result.clock.value_or(*batch.max_time), *batch.max_time);
    for (const auto& [reason, n] : batch.rejected) result.rejected_messages[reason] += n;
    result.unowned_chats.insert(batch.unowned.begin(), batch.unowned.end());
    for (auto& [key, events] : batch.per_conversation) {
      auto [it, inserted] = conversations.try_emplace(key);
      if (inserted) order.push_back(key);
      if (it->second.empty()) {
        it->second = std::move(events);
      } else {
        it->second.insert(it->second.end(), events.begin(), events.end());
      }
    }
  }
  if (options.progress) progress << "\r\x1b[K" << std::flush;
  if (options.clock) result.clock = options.clock;

  result.stats = std::make_unique<pipeline::ExactStats>(registry);
  Collector collector(*result.stats, result.withdrawn, options.keep_appeals);
  pipeline::Pairing pairing(registry, collector);
  auto by_id = [](const Event& a, const Event& b) { return a.message_id < b.message_id; };
  for (const auto& key : order) {
    auto& events = conversations[key];
    // Exports list messages in id order; only overlapping files need sorting.
    if (!std::is_sorted(events.begin(), events.end(), by_id)) {
      std::stable_sort(events.begin(), events.end(), by_id);
    }
    for (const Event& e : events) pairing.on_event(e);
    std::vector<Event>().swap(events);
  }
  if (result.clock) {
    pairing.expire(*result.clock);
    pairing.for_each_open(
        [&](const pipeline::Appeal& a) { result.stats->add_open(a, *result.clock); });
  }
  if (options.keep_appeals) {
    collector.appeals.for_each(
        [&](const Collector::Id&, const pipeline::Appeal& a) { result.appeals.push_back(a); });
  }
  result.pairing = pairing.counters();
  std::sort(result.appeals.begin(), result.appeals.end(),
            [](const pipeline::Appeal& a, const pipeline::Appeal& b) {
              if (a.agency != b.agency) return a.agency < b.agency;
              if (a.conversation != b.conversation) return a.conversation < b.conversation;
              return a.opened_message < b.opened_message;
            });
  return result;
}

}  // namespace replywatch::daemon
