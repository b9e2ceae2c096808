// The getUpdates poller (connectors/telegram/poller.*) against the in-process fake Bot API,
// over HTTP and HTTPS: the request it sends, the offset that moves only once a batch is
// durable, every fault the fake can inject and how it is classified, duplicates that pairing
// ignores, a restored cursor, cancellation of a held long poll, and a token that never leaks.
// Every wait is bounded; a poll itself is bounded by the client's deadline.
#include "connectors/telegram/poller.hpp"

#include "pipeline/pairing.hpp"
#include "tests/support/fake_bot_api.hpp"
#include "tests/support/pairing_fixture.hpp"

#include <doctest/doctest.h>

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef REPLYWATCH_FIXTURES
#define REPLYWATCH_FIXTURES "tests/fixtures"
#endif

namespace replywatch::connectors::telegram {
namespace {

using namespace std::chrono_literals;
using replywatch::testing::FakeBotApi;
using replywatch::testing::FakeBotApiOptions;
using Fault = FakeBotApi::Fault;
using Clock = std::chrono::steady_clock;
using pipeline::Appeal;
using pipeline::Event;

const std::string kTlsDir = REPLYWATCH_TEST_TLS;
const std::string kFixtures = std::string(REPLYWATCH_FIXTURES) + "/telegram/";

// The fake's default token, and the part of it that is the secret.
const std::string kToken = FakeBotApiOptions{}.token;
const std::string kTokenSecret = kToken.substr(kToken.find(':') + 1);

// The history fixture (tests/fixtures/telegram/README.md): its update ids and registry.
constexpr std::int64_t kFirstUpdateId = 846201001;
constexpr std::int64_t kGroup = -1001987654321;
constexpr std::int64_t kChannel = -1001876543210;
constexpr std::int64_t kPressOffice = 298765432;
constexpr std::int64_t kHelperBot = 5012345678;

const std::vector<std::string> kAllowedUpdates = {"message", "edited_message", "channel_post",
                                                  "edited_channel_post"};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The update objects of history_updates.json (an array of getUpdates response bodies), in
// order, each without its update_id: what FakeBotApi::push_update takes.
std::vector<std::string> history_updates() {
  const std::string text = read_file(kFixtures + "history_updates.json");
  std::vector<std::string> out;
  std::string stack;  // open brackets
  bool in_string = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (c == '{' && stack == "[{[") start = i;  // an element of a page's "result"
      stack.push_back(c);
    } else if (c == '}' || c == ']') {
      stack.pop_back();
      if (c == '}' && stack == "[{[") out.push_back(text.substr(start, i - start + 1));
    }
  }
  static const std::regex update_id(R"re("update_id"\s*:\s*[0-9]+\s*,\s*)re");
  for (auto& u : out) {
    REQUIRE(std::regex_search(u, update_id));
    u = std::regex_replace(u, update_id, "", std::regex_constants::format_first_only);
  }
  REQUIRE(out.size() == 16);
  return out;
}

// Updates of the history that become events (all but the my_chat_member update).
constexpr std::size_t kHistoryEvents = 15;
constexpr std::int64_t kHistoryLastId = kFirstUpdateId + 15;

void push_history(FakeBotApi& fake) {
  for (const auto& u : history_updates()) fake.push_update(u);
}

std::shared_ptr<pipeline::Registry> history_registry() {
  auto r = std::make_shared<pipeline::Registry>();
  pipeline::Agency x;
  x.id = "akimat";
  x.name = "City akimat";
  x.conversations = {{pipeline::Source::telegram, kGroup}};
  x.accounts = {{pipeline::Source::telegram, kChannel, "channel", "", ""},
                {pipeline::Source::telegram, kPressOffice, "press_office", "Dana", "central"}};
  r->agencies = {x};
  r->ignore_accounts = {{pipeline::Source::telegram, kHelperBot}};
  r->index();
  return r;
}

/// Records what a poll step hands the daemon. wait_durable answers as told: at once true, at
/// once false (stopped first), or blocks until the poll's stop flag turns true.
class RecordingOutput : public Output {
 public:
  enum class Durable { yes, no, block };

  void deliver(Batch&& batch) override {
    std::lock_guard lock(mutex_);
    batches_.push_back(std::move(batch));
  }
  void error(const std::string& error_type, const std::string& message) override {
    std::lock_guard lock(mutex_);
    errors_.emplace_back(error_type, message);
  }
  bool wait_durable(const std::atomic<bool>& stop) override {
    ++durable_waits;
    switch (durable.load()) {
      case Durable::yes:
        return true;
      case Durable::no:
        return false;
      case Durable::block: {
        blocked = true;
        const auto until = Clock::now() + 30s;  // a test that forgets to stop must not hang
        while (!stop && Clock::now() < until) std::this_thread::sleep_for(5ms);
        blocked = false;
        return false;
      }
    }
    return false;
  }

  std::vector<Batch> batches() const {
    std::lock_guard lock(mutex_);
    return batches_;
  }
  std::vector<std::pair<std::string, std::string>> errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }
  /// The error types reported so far, joined by ',' (printable in a failed CHECK).
  std::string error_types() const {
    std::string out;
    for (const auto& e : errors()) out += (out.empty() ? "" : ",") + e.first;
    return out;
  }
  std::string last_error_type() const {
    const auto e = errors();
    return e.empty() ? "" : e.back().first;
  }
  std::size_t event_count() const {
    std::size_t n = 0;
    for (const auto& b : batches()) n += b.events.size();
    return n;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    all_batches_.insert(all_batches_.end(), batches_.begin(), batches_.end());
    all_errors_.insert(all_errors_.end(), errors_.begin(), errors_.end());
    batches_.clear();
    errors_.clear();
  }

  /// Everything it ever received, as text: the token must be nowhere in it.
  std::string everything() const {
    std::lock_guard lock(mutex_);
    std::ostringstream s;
    auto dump = [&](const std::vector<Batch>& bs) {
      for (const auto& b : bs) {
        s << b.connector << '\n';
        for (const auto& e : b.events) {
          s << e.conversation << ' ' << e.message_id << ' ' << e.reply_to << ' ' << e.author
            << ' ' << e.time << ' ' << static_cast<int>(e.kind) << '\n';
        }
        for (const auto& [reason, n] : b.rejected) s << reason << ' ' << n << '\n';
        for (const auto& c : b.cursors) s << c.key << '=' << c.value << '\n';
      }
    };
    dump(all_batches_);
    dump(batches_);
    for (const auto& [t, m] : all_errors_) s << t << ": " << m << '\n';
    for (const auto& [t, m] : errors_) s << t << ": " << m << '\n';
    return s.str();
  }

  std::atomic<Durable> durable{Durable::yes};
  std::atomic<int> durable_waits{0};
  std::atomic<bool> blocked{false};

 private:
  mutable std::mutex mutex_;
  std::vector<Batch> batches_, all_batches_;
  std::vector<std::pair<std::string, std::string>> errors_, all_errors_;
};

void check_no_token(const RecordingOutput& out, const Poller* poller = nullptr) {
  const std::string text = out.everything();
  CHECK_MESSAGE(text.find(kToken) == std::string::npos, text);
  CHECK_MESSAGE(text.find(kTokenSecret) == std::string::npos, text);
  if (poller) {
    const std::string q = poller->query();
    CHECK(q.find(kTokenSecret) == std::string::npos);
  }
}

PollerOptions options_for(const std::string& base_url, std::int64_t poll_timeout_secs = 0,
                          std::string ca_file = "", std::string token = kToken) {
  PollerOptions o;
  o.name = "tg";
  o.api_base_url = base_url;
  o.token = std::move(token);
  o.ca_file = std::move(ca_file);
  o.poll_timeout_secs = poll_timeout_secs;
  return o;
}

FakeBotApiOptions fake_options(bool tls) {
  FakeBotApiOptions o;
  o.tls = tls;
  o.first_update_id = kFirstUpdateId;
  return o;
}

std::string ca(const char* name) { return kTlsDir + "/" + name; }

std::vector<std::int64_t> update_ids(const FakeBotApi::GetUpdatesCall& call) {
  return call.update_ids;
}

std::vector<std::int64_t> history_ids() {
  std::vector<std::int64_t> out;
  for (std::int64_t id = kFirstUpdateId; id <= kHistoryLastId; ++id) out.push_back(id);
  return out;
}

struct Timed {
  PollOutcome outcome;
  std::chrono::milliseconds took;
};

Timed timed_poll(Poller& poller, Output& out, const std::atomic<bool>& stop) {
  const auto t0 = Clock::now();
  const auto outcome = poller.poll(out, stop);
  return {outcome, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0)};
}

// ---------------------------------------------------------------------------

TEST_CASE("poller: getUpdates carries timeout, limit and allowed_updates, and the offset confirms") {
  for (const bool tls : {false, true}) {
    CAPTURE(tls);
    FakeBotApi fake(fake_options(tls));
    push_history(fake);
    Poller poller(options_for(fake.base_url(), 1, tls ? ca("ca.pem") : ""), {});
    RecordingOutput out;
    std::atomic<bool> stop{false};

    REQUIRE(poller.poll(out, stop) == PollOutcome::ok);
    auto calls = fake.get_updates_calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].http_method == "GET");
    CHECK(calls[0].timeout == 1);
    CHECK(calls[0].limit == 100);
    CHECK_FALSE(calls[0].offset.has_value());  // nothing confirmed yet: no offset at all
    REQUIRE(calls[0].allowed_updates.has_value());
    CHECK(*calls[0].allowed_updates == kAllowedUpdates);
    CHECK(fake.allowed_updates() == kAllowedUpdates);
    CHECK(update_ids(calls[0]) == history_ids());

    const auto batches = out.batches();
    REQUIRE(batches.size() == 1);
    const Batch& b = batches[0];
    CHECK(b.connector == "tg");
    CHECK(b.events.size() == kHistoryEvents);
    CHECK(b.rejected.empty());
    CHECK(b.sync);  // Telegram forgets what we confirm: durable first
    CHECK_FALSE(poller.pending());  // not a full page: caught up
    REQUIRE(b.cursors.size() == 1);
    CHECK(b.cursors[0].key == "offset");
    CHECK(b.cursors[0].value == std::to_string(kHistoryLastId + 1));
    CHECK(out.durable_waits == 1);
    CHECK(out.errors().empty());

    // The next request confirms everything: offset = last update_id + 1. Nothing is left, so
    // the fake holds it for the whole timeout, and an empty long poll is simply ok.
    const auto second = timed_poll(poller, out, stop);
    CHECK(second.outcome == PollOutcome::ok);
    CHECK(second.took >= 900ms);
    calls = fake.get_updates_calls();
    REQUIRE(calls.size() == 2);
    CHECK(calls[1].offset == kHistoryLastId + 1);
    CHECK(calls[1].timeout == 1);
    CHECK(calls[1].limit == 100);
    CHECK(calls[1].allowed_updates == kAllowedUpdates);
    CHECK(calls[1].update_ids.empty());
    CHECK(fake.confirmed_offset() == kHistoryLastId + 1);
    CHECK(fake.pending_updates() == 0);
    CHECK(out.batches().size() == 1);  // an empty poll delivers nothing
    CHECK(out.errors().empty());
    CHECK_FALSE(poller.requested_delay().has_value());
    CHECK(poller.long_polls());
    CHECK(poller.name() == "tg");

    CHECK(poller.query() ==
          "timeout=1&limit=100&offset=" + std::to_string(kHistoryLastId + 1) +
              "&allowed_updates=%5B%22message%22%2C%22edited_message%22%2C%22channel_post%22%2C"
              "%22edited_channel_post%22%5D");
    check_no_token(out, &poller);
  }
}

TEST_CASE("poller: the offset moves only after wait_durable returns true") {
  FakeBotApi fake(fake_options(false));
  push_history(fake);
  Poller poller(options_for(fake.base_url()), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};

  // Stopped before the batch was durable: nothing is confirmed, Telegram keeps the updates.
  out.durable = RecordingOutput::Durable::no;
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  CHECK(out.batches().size() == 1);
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  auto calls = fake.get_updates_calls();
  REQUIRE(calls.size() == 2);
  CHECK_FALSE(calls[1].offset.has_value());  // still the old offset (none)
  CHECK(calls[1].update_ids == history_ids());  // so the same updates come again
  CHECK(fake.confirmed_offset() == 0);
  CHECK(fake.pending_updates() == 16);
  CHECK(out.batches().size() == 2);

  // wait_durable blocks (no snapshot yet): the poll does not return, does not confirm; the
  // stop flag ends the wait, and still nothing is confirmed.
  out.durable = RecordingOutput::Durable::block;
  std::atomic<bool> stop_blocked{false};
  auto running = std::async(std::launch::async, [&] { return poller.poll(out, stop_blocked); });
  const auto until = Clock::now() + 10s;
  while (!out.blocked && Clock::now() < until) std::this_thread::sleep_for(5ms);
  REQUIRE(out.blocked);
  std::this_thread::sleep_for(300ms);
  CHECK(running.wait_for(0ms) == std::future_status::timeout);
  CHECK(fake.get_updates_count() == 3);  // no request behind our back either
  CHECK(fake.confirmed_offset() == 0);
  stop_blocked = true;
  REQUIRE(running.wait_for(5s) == std::future_status::ready);
  CHECK(running.get() == PollOutcome::ok);
  CHECK(out.batches().size() == 3);

  out.durable = RecordingOutput::Durable::no;
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  calls = fake.get_updates_calls();
  REQUIRE(calls.size() == 4);
  CHECK_FALSE(calls[3].offset.has_value());  // still nothing confirmed
  CHECK(calls[3].update_ids == history_ids());
  CHECK(fake.confirmed_offset() == 0);
  check_no_token(out, &poller);
}

TEST_CASE("poller: a durable batch is confirmed by the next request, and only then") {
  FakeBotApi fake(fake_options(false));
  push_history(fake);
  Poller poller(options_for(fake.base_url()), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};

  out.durable = RecordingOutput::Durable::no;
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  out.durable = RecordingOutput::Durable::yes;
  CHECK(poller.poll(out, stop) == PollOutcome::ok);  // the same updates, durable this time
  CHECK(fake.confirmed_offset() == 0);               // not confirmed until asked for
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  const auto calls = fake.get_updates_calls();
  REQUIRE(calls.size() == 3);
  CHECK_FALSE(calls[0].offset.has_value());
  CHECK_FALSE(calls[1].offset.has_value());
  CHECK(calls[2].offset == kHistoryLastId + 1);
  CHECK(fake.confirmed_offset() == kHistoryLastId + 1);
  CHECK(out.batches().size() == 2);
  check_no_token(out, &poller);
}

TEST_CASE("poller: a restored cursor is the first request's offset") {
  FakeBotApi fake(fake_options(false));
  push_history(fake);
  const std::int64_t restored = kFirstUpdateId + 10;
  Poller poller(options_for(fake.base_url()), {{"offset", std::to_string(restored)}});
  CHECK(poller.query().find("offset=" + std::to_string(restored)) != std::string::npos);
  RecordingOutput out;
  std::atomic<bool> stop{false};
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  const auto calls = fake.get_updates_calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].offset == restored);
  CHECK(fake.confirmed_offset() == restored);
  std::vector<std::int64_t> want;
  for (std::int64_t id = restored; id <= kHistoryLastId; ++id) want.push_back(id);
  CHECK(calls[0].update_ids == want);
  const auto batches = out.batches();
  REQUIRE(batches.size() == 1);
  REQUIRE(batches[0].cursors.size() == 1);
  CHECK(batches[0].cursors[0].value == std::to_string(kHistoryLastId + 1));

  // A cursor that is not a positive number is no offset at all.
  for (const std::string bad : {"", "abc", "-5", "0"}) {
    CAPTURE(bad);
    Poller other(options_for(fake.base_url()), {{"offset", bad}});
    CHECK(other.query().find("offset=") == std::string::npos);
  }
  check_no_token(out, &poller);
}

TEST_CASE("poller: 429 is retry_later with the delay Telegram asked for") {
  FakeBotApi fake(fake_options(false));
  push_history(fake);
  Poller poller(options_for(fake.base_url()), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  fake.inject(Fault::too_many_requests, 1, 3s);
  CHECK(poller.poll(out, stop) == PollOutcome::retry_later);
  REQUIRE(poller.requested_delay().has_value());
  CHECK(*poller.requested_delay() == 3000ms);
  CHECK(out.error_types() == "rate_limited");
  CHECK(out.batches().empty());
  CHECK(fake.get_updates_calls().back().status == 429);
  // The next poll works and forgets the delay.
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  CHECK_FALSE(poller.requested_delay().has_value());
  CHECK(out.event_count() == kHistoryEvents);
  check_no_token(out, &poller);
}

TEST_CASE("poller: transport and server faults are typed failures that lose nothing") {
  struct Case {
    Fault fault;
    const char* type;
  };
  const Case cases[] = {
      {Fault::server_error, "http_5xx"},
      {Fault::truncated, "truncated_body"},
      {Fault::invalid_json, "invalid_json"},
      {Fault::reset, "connection_reset"},
  };
  for (const bool tls : {false, true}) {
    for (const auto& c : cases) {
      CAPTURE(tls);
      CAPTURE(FakeBotApi::fault_name(c.fault));
      FakeBotApi fake(fake_options(tls));
      push_history(fake);
      Poller poller(options_for(fake.base_url(), 0, tls ? ca("ca.pem") : ""), {});
      RecordingOutput out;
      std::atomic<bool> stop{false};

      fake.inject(c.fault);
      const auto failed = timed_poll(poller, out, stop);
      CHECK(failed.outcome == PollOutcome::failed);
      CHECK(failed.took < 5s);
      const std::string first_message = out.errors().empty() ? "" : out.errors()[0].second;
      CHECK_MESSAGE(out.error_types() == std::string(c.type), first_message);
      CHECK(out.batches().empty());
      CHECK_FALSE(poller.requested_delay().has_value());  // the runner's backoff decides
      CHECK(out.durable_waits == 0);

      // Nothing was lost: the next request still asks from the start and gets everything.
      CHECK(poller.poll(out, stop) == PollOutcome::ok);
      const auto calls = fake.get_updates_calls();
      REQUIRE(calls.size() == 2);
      CHECK(calls[0].fault == c.fault);
      CHECK_FALSE(calls[1].offset.has_value());
      CHECK(calls[1].update_ids == history_ids());
      CHECK(out.event_count() == kHistoryEvents);
      CHECK(out.errors().size() == 1);
      check_no_token(out, &poller);
    }
  }
}

TEST_CASE("poller: an answer slower than the deadline is a timeout") {
  // The deadline is poll_timeout_secs + 15 s, so with a timeout of 0 this takes 15 s.
  FakeBotApi fake(fake_options(false));
  push_history(fake);
  Poller poller(options_for(fake.base_url(), 0), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  fake.inject(Fault::slow, 1, 17s);
  const auto slow = timed_poll(poller, out, stop);
  CHECK(slow.outcome == PollOutcome::failed);
  CHECK(slow.took >= 14s);
  CHECK(slow.took < 17s);
  CHECK(out.error_types() == "timeout");
  CHECK(out.batches().empty());
  // A slow answer within the deadline is no error at all.
  fake.inject(Fault::slow, 1, 300ms);
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  CHECK(out.event_count() == kHistoryEvents);
  CHECK(out.errors().size() == 1);
  check_no_token(out, &poller);
}

TEST_CASE("poller: duplicate deliveries reach pairing twice and count no appeal twice") {
  FakeBotApi fake(fake_options(false));
  push_history(fake);
  Poller poller(options_for(fake.base_url()), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  fake.inject(Fault::duplicate);
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  const auto batches = out.batches();
  REQUIRE(batches.size() == 2);
  REQUIRE(batches[0].events.size() == kHistoryEvents);
  REQUIRE(batches[1].events.size() == kHistoryEvents);  // every update again
  for (std::size_t i = 0; i < kHistoryEvents; ++i) {
    CHECK(batches[1].events[i].conversation == batches[0].events[i].conversation);
    CHECK(batches[1].events[i].message_id == batches[0].events[i].message_id);
  }
  CHECK(out.errors().empty());
  // The redelivery did not move the offset back.
  CHECK(poller.poll(out, stop) == PollOutcome::ok);
  CHECK(fake.get_updates_calls().back().offset == kHistoryLastId + 1);

  using replywatch::testing::Recorder;
  auto pair = [](const std::vector<Batch>& bs, Recorder& recorder) {
    pipeline::Pairing pairing(history_registry(), recorder);
    for (const auto& b : bs) {
      for (const auto& e : b.events) pairing.on_event(e);
    }
    std::vector<std::string> open;
    pairing.for_each_open([&](const Appeal& a) {
      open.push_back(std::to_string(a.thread) + "/" + std::to_string(a.citizen) + "/" +
                     std::to_string(a.opened_message));
    });
    std::sort(open.begin(), open.end());
    return std::make_pair(open, pairing.counters());
  };
  Recorder once, twice;
  const auto [open_once, counters_once] = pair({batches[0]}, once);
  const auto [open_twice, counters_twice] = pair(batches, twice);
  CHECK(once.opened.size() == 6);  // the history's six appeals
  CHECK(twice.opened.size() == once.opened.size());
  CHECK(twice.closed.size() == once.closed.size());
  CHECK(open_twice == open_once);
  std::set<std::int64_t> opened_messages;
  for (const auto& a : twice.opened) CHECK(opened_messages.insert(a.opened_message).second);
  CHECK(counters_once.duplicates == 0);
  CHECK(counters_twice.duplicates > 0);
  check_no_token(out, &poller);
}

TEST_CASE("poller: 409 conflict fails and waits 30 s") {
  FakeBotApi fake(fake_options(false));
  Poller poller(options_for(fake.base_url()), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  fake.inject(Fault::conflict);
  CHECK(poller.poll(out, stop) == PollOutcome::failed);
  REQUIRE(poller.requested_delay().has_value());
  CHECK(*poller.requested_delay() == 30s);
  CHECK(out.error_types() == "conflict");
  CHECK(out.batches().empty());
  check_no_token(out, &poller);
}

TEST_CASE("poller: 401 and 404 are fatal, and so is a token the server does not know") {
  struct Case {
    Fault fault;
    const char* type;
  };
  for (const auto& c : {Case{Fault::unauthorized, "unauthorized"}, Case{Fault::not_found, "not_found"}}) {
    CAPTURE(c.type);
    FakeBotApi fake(fake_options(false));
    push_history(fake);
    Poller poller(options_for(fake.base_url()), {});
    RecordingOutput out;
    std::atomic<bool> stop{false};
    fake.inject(c.fault);
    CHECK(poller.poll(out, stop) == PollOutcome::fatal);
    CHECK(out.error_types() == std::string(c.type));
    REQUIRE(poller.requested_delay().has_value());
    CHECK(*poller.requested_delay() == 5min);
    CHECK(out.batches().empty());
    check_no_token(out, &poller);
  }
  // A real 401: the fake knows another token.
  FakeBotApi fake(fake_options(false));
  push_history(fake);
  const std::string wrong = "654321:WRONG-token-zyxwvu";
  Poller poller(options_for(fake.base_url(), 0, "", wrong), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  CHECK(poller.poll(out, stop) == PollOutcome::fatal);
  CHECK(out.error_types() == "unauthorized");
  CHECK(fake.unauthorized_calls() == 1);
  CHECK(fake.get_updates_count() == 0);
  CHECK(out.everything().find(wrong) == std::string::npos);
  CHECK(out.everything().find("WRONG-token-zyxwvu") == std::string::npos);
}

TEST_CASE("poller: TLS with an unrelated CA fails the handshake and delivers nothing") {
  FakeBotApi fake(fake_options(true));
  push_history(fake);
  Poller poller(options_for(fake.base_url(), 0, ca("other_ca.pem")), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  const auto r = timed_poll(poller, out, stop);
  CHECK(r.outcome == PollOutcome::failed);
  CHECK(r.took < 5s);
  CHECK(out.error_types() == "tls_error");
  CHECK(out.batches().empty());
  CHECK(fake.get_updates_count() == 0);  // no request got through
  CHECK(fake.confirmed_offset() == 0);
  CHECK(fake.pending_updates() == 16);
  // A CA file that cannot be loaded fails the same way, before any connection.
  Poller missing_ca(options_for(fake.base_url(), 0, kTlsDir + "/no_such_ca.pem"), {});
  CHECK(missing_ca.poll(out, stop) == PollOutcome::failed);
  CHECK(out.last_error_type() == "tls_error");
  CHECK(out.batches().empty());
  check_no_token(out, &poller);
}

TEST_CASE("poller: nothing listening is a connect_error") {
  std::uint16_t port = 0;
  {
    FakeBotApi fake(fake_options(false));  // a port that was free a moment ago
    port = fake.port();
  }
  Poller poller(options_for("http://127.0.0.1:" + std::to_string(port)), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  CHECK(poller.poll(out, stop) == PollOutcome::failed);
  CHECK(out.error_types() == "connect_error");
  check_no_token(out, &poller);
}

TEST_CASE("poller: the stop flag cancels a held long poll within a second") {
  for (const bool tls : {false, true}) {
    CAPTURE(tls);
    FakeBotApi fake(fake_options(tls));
    Poller poller(options_for(fake.base_url(), 50, tls ? ca("ca.pem") : ""), {});
    RecordingOutput out;
    std::atomic<bool> stop{false};
    auto running = std::async(std::launch::async, [&] { return timed_poll(poller, out, stop); });
    REQUIRE(fake.wait_for_get_updates(1, 5s));
    std::this_thread::sleep_for(300ms);  // held by the server now
    CHECK(running.wait_for(0ms) == std::future_status::timeout);
    const auto stopped_at = Clock::now();
    stop = true;
    const bool done = running.wait_for(3s) == std::future_status::ready;
    CHECK(done);
    if (!done) continue;  // the future's destructor waits for the client's own deadline
    const auto result = running.get();
    CHECK(Clock::now() - stopped_at < 1s);
    CHECK(result.outcome == PollOutcome::ok);  // shutdown is not an error
    CHECK(out.errors().empty());
    CHECK(out.batches().empty());
  }
}

TEST_CASE("poller: a full page of updates is not caught up, and the rest comes next") {
  // getUpdates returns at most `limit` (100) updates: a full page says more may be waiting.
  // pending() tells the pipeline so: the connector's watermark, and with it expiry, holds
  // until the backlog is in, else an appeal whose answer is in the next page would expire.
  FakeBotApi fake(fake_options(false));
  for (int i = 0; i < 150; ++i) {
    fake.push_update(R"({"message":{"message_id":)" + std::to_string(5000 + i) +
                     R"(,"from":{"id":412345678,"is_bot":false,"first_name":"A"},)"
                     R"("chat":{"id":-1001987654321,"type":"supergroup","title":"g"},)"
                     R"("date":1782968400,"text":"x"}})");
  }
  Poller poller(options_for(fake.base_url()), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  REQUIRE(poller.poll(out, stop) == PollOutcome::ok);
  auto batches = out.batches();
  REQUIRE(batches.size() == 1);
  CHECK(batches[0].events.size() == 100);
  CHECK(fake.pending_updates() == 150);  // 50 more, not even confirmed yet
  CHECK_MESSAGE(poller.pending(), "pending() is false with 50 updates still waiting");
  REQUIRE(poller.poll(out, stop) == PollOutcome::ok);
  batches = out.batches();
  REQUIRE(batches.size() == 2);
  CHECK(batches[1].events.size() == 50);
  CHECK_FALSE(poller.pending());
  CHECK(fake.get_updates_calls()[1].offset == kFirstUpdateId + 100);
  check_no_token(out, &poller);
}

TEST_CASE("poller: TLS checks the host name, by name as well as by address") {
  FakeBotApi fake(fake_options(true));
  push_history(fake);
  const std::string port = std::to_string(fake.port());
  {  // server.pem names DNS:localhost (sent as SNI and verified)
    Poller poller(options_for("https://localhost:" + port, 0, ca("ca.pem")), {});
    RecordingOutput out;
    std::atomic<bool> stop{false};
    CHECK(poller.poll(out, stop) == PollOutcome::ok);
    CHECK(out.event_count() == kHistoryEvents);
    CHECK(out.errors().empty());
  }
  // A name of this machine that resolves to 127.0.0.1 but that the certificate does not
  // name: trusted CA, wrong host, so the handshake must fail.
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string name = host;
  bool loopback = false;
  if (!name.empty() && name != "localhost") {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* found = nullptr;
    if (::getaddrinfo(name.c_str(), nullptr, &hints, &found) == 0) {
      for (auto* a = found; a; a = a->ai_next) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
        if (ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK) loopback = true;
      }
      ::freeaddrinfo(found);
    }
  }
  if (!loopback) {
    MESSAGE("skipped the wrong-name check: the host name '" << name
                                                             << "' is not 127.0.0.1 here");
    return;
  }
  Poller poller(options_for("https://" + name + ":" + port, 0, ca("ca.pem")), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  CHECK(poller.poll(out, stop) == PollOutcome::failed);
  CHECK(out.error_types() == "tls_error");
  CHECK(out.batches().empty());
  check_no_token(out, &poller);
}

// ---- a scripted server: canned answers that echo the request, for redaction ----

/// Answers each connection on 127.0.0.1 with the next canned HTTP response, in which "{path}"
/// is replaced by the request target as received (token included), then closes it.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<std::string> responses) : responses_(std::move(responses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> targets() const {
    std::lock_guard lock(mutex_);
    return targets_;
  }

 private:
  void serve() {
    for (std::size_t next = 0; next < responses_.size() && !stop_;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      const auto sp1 = request.find(' ');
      const auto sp2 = request.find(' ', sp1 + 1);
      const std::string target =
          sp1 == std::string::npos || sp2 == std::string::npos ? "" : request.substr(sp1 + 1, sp2 - sp1 - 1);
      {
        std::lock_guard lock(mutex_);
        targets_.push_back(target);
      }
      std::string response = responses_[next++];
      for (auto at = response.find("{path}"); at != std::string::npos;
           at = response.find("{path}", at + target.size())) {
        response.replace(at, 6, target);
      }
      // Content-Length is computed here, after the echo.
      const auto body_at = response.find("\r\n\r\n") + 4;
      const std::string body = response.substr(body_at);
      response = response.substr(0, body_at - 2) + "Content-Length: " +
                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      std::size_t sent = 0;
      while (sent < response.size()) {
        const auto n = ::send(c, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      ::shutdown(c, SHUT_RDWR);
      ::close(c);
    }
  }

  std::vector<std::string> responses_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> targets_;
};

std::string http_response(int status, const std::string& reason, const std::string& type,
                          const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
         "\r\n\r\n" + body;
}

TEST_CASE("poller: a server that echoes the URL, token included, never gets it into an error") {
  ScriptedServer server({
      // An API error whose description repeats the request (as a local Bot API server or a
      // proxy might).
      http_response(400, "Bad Request", "application/json",
                    R"({"ok":false,"error_code":400,"description":"Bad Request: {path}"})"),
      // A 403, also fatal, also echoing.
      http_response(403, "Forbidden", "application/json",
                    R"({"ok":false,"error_code":403,"description":"Forbidden: {path}"})"),
      // A proxy's HTML error page (not JSON) with the URL.
      http_response(502, "Bad Gateway", "text/html",
                    "<html><body>upstream failed for {path}</body></html>"),
      // A 404 page from a proxy, not JSON either.
      http_response(404, "Not Found", "text/html", "<html>no route to {path}</html>"),
      // A 429 without parameters: rate limited, but no delay to honour.
      http_response(429, "Too Many Requests", "application/json",
                    R"({"ok":false,"error_code":429,"description":"Too Many Requests at {path}"})"),
      // An error whose description names the token itself.
      http_response(400, "Bad Request", "application/json",
                    R"({"ok":false,"error_code":400,"description":"token )" + kToken +
                        R"( is malformed"})"),
  });
  Poller poller(options_for(server.base_url()), {});
  RecordingOutput out;
  std::atomic<bool> stop{false};
  CHECK(poller.poll(out, stop) == PollOutcome::failed);
  CHECK(poller.poll(out, stop) == PollOutcome::fatal);
  CHECK(poller.poll(out, stop) == PollOutcome::failed);
  // A 404 is a wrong api_base_url or token even when a proxy answers it: fatal.
  CHECK(poller.poll(out, stop) == PollOutcome::fatal);
  CHECK(poller.poll(out, stop) == PollOutcome::failed);
  CHECK_FALSE(poller.requested_delay().has_value());
  CHECK(poller.poll(out, stop) == PollOutcome::failed);
  const auto targets = server.targets();
  REQUIRE(targets.size() == 6);
  // The request really carried the token: the server saw it, so did its echo.
  CHECK(targets[0].rfind("/bot" + kToken + "/getUpdates?", 0) == 0);
  CHECK(out.error_types() ==
        "api_error,unauthorized,http_5xx,not_found,rate_limited,api_error");
  const auto errors = out.errors();
  REQUIRE(errors.size() == 6);
  CHECK(errors[0].second.find("<redacted>") != std::string::npos);
  for (const auto& [type, message] : errors) {
    CAPTURE(message);
    CHECK(message.find(kToken) == std::string::npos);
    CHECK(message.find(kTokenSecret) == std::string::npos);
  }
  CHECK(poller.query().find(kTokenSecret) == std::string::npos);
  check_no_token(out, &poller);
}

TEST_CASE("poller: redacted_url and redact never keep the token") {
  BotApiClient client("https://api.telegram.org", kToken, "");
  const std::string url = client.redacted_url("getUpdates");
  CHECK(url == "https://api.telegram.org/bot<redacted>/getUpdates");
  CHECK(url.find(kTokenSecret) == std::string::npos);
  CHECK(redact("a " + kToken + " b " + kToken, kToken) == "a <redacted> b <redacted>");
  CHECK(redact("nothing here", kToken) == "nothing here");
  CHECK(redact("x", "") == "x");
}

}  // namespace
}  // namespace replywatch::connectors::telegram

TEST_CASE("poller: redaction also covers the percent-encoded token and its secret part") {
  using replywatch::connectors::telegram::redact;
  const std::string token = "123456:AAE-secretTOKENvalue_xyz";
  const std::string text = "GET /bot123456%3AAAE-secretTOKENvalue_xyz/getUpdates and "
                           "/bot123456%3aAAE-secretTOKENvalue_xyz and AAE-secretTOKENvalue_xyz "
                           "and " + token;
  const std::string clean = redact(text, token);
  CHECK(clean.find("secretTOKENvalue") == std::string::npos);
  CHECK(clean.find("<redacted>") != std::string::npos);
}
