// A fake Telegram Bot API server on 127.0.0.1 (HTTP or HTTPS) for connector and end-to-end
// tests: getUpdates that misbehaves on demand, and a helper that plays Telegram to a webhook.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#ifndef REPLYWATCH_TEST_TLS
#error "REPLYWATCH_TEST_TLS must name tests/fixtures/tls (tests/CMakeLists.txt defines it)"
#endif

namespace replywatch::testing {

struct FakeBotApiOptions {
  std::string token = "123456:TEST-token-abcdef";
  bool tls = false;
  std::string cert_dir = REPLYWATCH_TEST_TLS;  // holds server.pem and server.key
  /// Real update ids are large and arbitrary; a connector must not assume they start at 1.
  std::int64_t first_update_id = 1;
};

/// Serves /bot<token>/<method> on 127.0.0.1 at a free port from its own io thread until
/// destroyed. Every public member is safe to call from any thread while it runs.
///
/// getUpdates follows the real one: GET with a query, POST with a JSON or form body;
/// `offset` confirms (drops) every queued update with a smaller id, a negative one keeps only
/// the last -offset; `limit` is clamped to 1..100 (default 100); `timeout` seconds holds the
/// request until an update is pushed or the time is up; `allowed_updates` is recorded and
/// sticks, but does not filter. A getUpdates arriving while another is held answers the held
/// one with 409, as Telegram does; so does getUpdates while a webhook is set. A wrong token
/// gets 401, an unknown method 404, a malformed parameter 400. getMe, setWebhook,
/// deleteWebhook (both honour drop_pending_updates) and getWebhookInfo answer simply.
class FakeBotApi {
 public:
  /// Faults are taken one per getUpdates request (right token only), in injection order.
  /// A faulted request does not confirm its offset, except truncated, slow and duplicate,
  /// which fail only after the request was processed as usual.
  enum class Fault {
    none,               // a normal answer; useful to space faults out
    too_many_requests,  // 429, parameters.retry_after = delay rounded up to seconds (min 1)
    server_error,       // 500
    slow,               // waits the delay (default 1 s), then answers normally
    truncated,          // a full Content-Length, half the body, then the connection closes
    invalid_json,       // 200 with a body that is not JSON
    duplicate,          // also re-delivers already confirmed updates (the newest, up to limit)
    conflict,           // 409 "Conflict: terminated by other getUpdates request; ..."
    unauthorized,       // 401
    not_found,          // 404
    reset,              // the connection is reset (RST) without an answer
  };

  /// What one getUpdates request carried and got, for assertions.
  struct GetUpdatesCall {
    std::chrono::steady_clock::time_point at;  // when its request had been read
    std::string http_method;                   // "GET", "POST"
    std::optional<std::int64_t> offset;        // parameters as sent (limit before clamping)
    std::optional<int> limit;
    std::optional<int> timeout;
    std::optional<std::vector<std::string>> allowed_updates;
    Fault fault = Fault::none;
    int status = 0;  // the status answered; 0 while held, or after a reset
    std::vector<std::int64_t> update_ids;  // what the answer carried
  };

  /// Throws std::runtime_error when it cannot listen or load the certificate.
  explicit FakeBotApi(FakeBotApiOptions options = {});
  ~FakeBotApi();  // closes every connection, held polls included, and joins the io thread
  FakeBotApi(const FakeBotApi&) = delete;
  FakeBotApi& operator=(const FakeBotApi&) = delete;

  std::uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT"
  const std::string& token() const;
  /// "/bot<token>/<method>", the request target a client sends.
  std::string method_path(std::string_view method) const;

  /// Queues an update (a JSON object without update_id) under the next update_id and wakes a
  /// held getUpdates; returns the id. Throws std::invalid_argument on anything but such an object.
  std::int64_t push_update(std::string_view update_json_without_id);
  /// The same update text push_update would queue, with the next update_id, but not queued:
  /// for posting to a webhook. Ids stay unique across both.
  std::string make_update(std::string_view update_json_without_id);

  /// Queues `count` faults for the next getUpdates requests. `delay_or_retry` is the wait of
  /// `slow` and the retry_after of `too_many_requests`; other faults ignore it.
  void inject(Fault fault, int count = 1, std::chrono::milliseconds delay_or_retry = {});
  std::size_t faults_pending() const;

  std::size_t get_updates_count() const;
  std::vector<GetUpdatesCall> get_updates_calls() const;
  /// Blocks until at least `count` getUpdates requests have arrived or `timeout` passed.
  bool wait_for_get_updates(std::size_t count, std::chrono::milliseconds timeout) const;
  /// The highest offset that confirmed updates (a negative one counts as the first id it
  /// kept); 0 before any.
  std::int64_t confirmed_offset() const;
  /// Blocks until confirmed_offset() >= `offset` (the client confirmed every update below it)
  /// or `timeout` passed.
  bool wait_for_confirmed(std::int64_t offset, std::chrono::milliseconds timeout) const;
  std::size_t pending_updates() const;  // pushed and not yet confirmed
  /// The allowed_updates in force: the last one a getUpdates carried.
  std::optional<std::vector<std::string>> allowed_updates() const;
  /// Requests with the right token for `method` (case-insensitive, as Telegram's names are).
  std::size_t calls(std::string_view method) const;
  std::size_t unauthorized_calls() const;  // requests with a wrong or missing token
  std::string webhook_url() const;         // empty when no webhook is set

  /// POSTs `body` as application/json to `url` with X-Telegram-Bot-Api-Secret-Token (left out
  /// when `secret_header` is empty), as Telegram delivers to a webhook. Returns the HTTP
  /// status, or 0 when no answer came within `timeout`. Only "http://127.0.0.1[:port]/..."
  /// is accepted; anything else throws std::invalid_argument.
  static int post_json(const std::string& url, const std::string& body,
                       const std::string& secret_header,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

  static std::string_view fault_name(Fault fault);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Whether `text` is exactly one JSON value (RFC 8259 grammar, nesting up to 128 deep; UTF-8 is
/// not checked), for asserting on the fake's answers and on what the daemon writes.
bool json_valid(std::string_view text);

}  // namespace replywatch::testing
