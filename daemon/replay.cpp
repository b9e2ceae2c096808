// Replay reads every input fully before pairing: a file that turns out to be
// broken halfway contributes nothing, and a conversation spread over several
// files is put back in message order before the engine sees it.
#include "daemon/replay.hpp"

#include "connectors/telegram_export/export_parser.hpp"

#include <algorithm>
#include <filesystem>
#include <unordered_map>

namespace replywatch::daemon {

namespace {

using pipeline::Event;

/// Collects one file's content; merged into the replay only if the file parses.
class FileBatch : public connectors::telegram_export::Sink {
 public:
  FileBatch(const pipeline::Registry& registry, std::ostream* progress, std::uint64_t base)
      : registry_(registry), progress_(progress), base_(base) {}

  bool on_chat(std::int64_t chat_id, std::string_view, std::string_view) override {
    chat_ = chat_id;
    owned_ = registry_.agency_of_conversation(pipeline::Source::telegram, chat_id) >= 0;
    if (!owned_) unowned.insert(chat_id);
    // Parse unowned chats too: their messages still move the replay's clock.
    return true;
  }

  void on_event(const Event& e) override {
    ++messages;
    max_time = std::max(max_time.value_or(e.time), e.time);
    if (owned_) {
      if (per_chat.empty() || per_chat.back().first != chat_) per_chat.push_back({chat_, {}});
      per_chat.back().second.push_back(e);
    }
    if (progress_ && (messages & 0xFFFFF) == 0) {
      *progress_ << "\rreplay: " << (base_ + messages) << " messages read" << std::flush;
    }
  }

  void on_rejected(std::string_view reason) override { ++rejected[std::string(reason)]; }

  std::vector<std::pair<std::int64_t, std::vector<Event>>> per_chat;
  std::map<std::string, std::uint64_t> rejected;
  std::set<std::int64_t> unowned;
  std::optional<std::int64_t> max_time;
  std::uint64_t messages = 0;

 private:
  const pipeline::Registry& registry_;
  std::ostream* progress_;
  std::uint64_t base_;
  std::int64_t chat_ = 0;
  bool owned_ = false;
};

class Collector : public pipeline::AppealSink {
 public:
  Collector(pipeline::ExactStats& stats, std::vector<pipeline::Appeal>* keep)
      : stats_(stats), keep_(keep) {}
  void on_closed(const pipeline::Appeal& a) override {
    stats_.add_closed(a);
    if (keep_) keep_->push_back(a);
  }

 private:
  pipeline::ExactStats& stats_;
  std::vector<pipeline::Appeal>* keep_;
};

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
  std::unordered_map<std::int64_t, std::vector<Event>> conversations;
  std::vector<std::int64_t> order;  // first-seen order, for a deterministic run
  for (std::size_t i = 0; i < options.inputs.size(); ++i) {
    const std::string path = resolve_input(options.inputs[i]);
    if (options.progress) {
      progress << "\rreplay: reading " << (i + 1) << "/" << options.inputs.size() << ": " << path
               << "\x1b[K" << std::flush;
    }
    FileBatch batch(*registry, options.progress ? &progress : nullptr, result.messages);
    auto parsed = connectors::telegram_export::parse_file(path, parse_options, batch);
    if (!parsed) {
      result.rejected_files.push_back({options.inputs[i], parsed.error().message});
      continue;
    }
    result.messages += batch.messages;
    if (batch.max_time) result.clock = std::max(result.clock.value_or(*batch.max_time), *batch.max_time);
    for (const auto& [reason, n] : batch.rejected) result.rejected_messages[reason] += n;
    result.unowned_chats.insert(batch.unowned.begin(), batch.unowned.end());
    for (auto& [chat, events] : batch.per_chat) {
      auto [it, inserted] = conversations.try_emplace(chat);
      if (inserted) order.push_back(chat);
      if (it->second.empty()) {
        it->second = std::move(events);
      } else {
        it->second.insert(it->second.end(), events.begin(), events.end());
      }
    }
  }
  if (options.progress) progress << "\r\x1b[K" << std::flush;

  result.stats = std::make_unique<pipeline::ExactStats>(registry);
  Collector collector(*result.stats, options.keep_appeals ? &result.appeals : nullptr);
  pipeline::Pairing pairing(registry, collector);
  auto by_id = [](const Event& a, const Event& b) { return a.message_id < b.message_id; };
  for (const std::int64_t chat : order) {
    auto& events = conversations[chat];
    // Exports list messages in id order; only overlapping files need sorting.
    if (!std::is_sorted(events.begin(), events.end(), by_id)) {
      std::stable_sort(events.begin(), events.end(), by_id);
    }
    for (const Event& e : events) pairing.on_event(e);
    std::vector<Event>().swap(events);
  }
  if (result.clock) {
    pairing.expire(*result.clock);
    const std::int64_t clock = *result.clock;
    pairing.for_each_open([&](const pipeline::Appeal& a) {
      result.stats->add_open(a, clock);
      if (options.keep_appeals) result.appeals.push_back(a);
    });
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
