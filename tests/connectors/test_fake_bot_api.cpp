// The fake Bot API server that connector tests rely on, checked through a small blocking client:
// long polling, offsets, every fault, tokens, TLS trust and the webhook helper. Waits are bounded.
#include "tests/support/fake_bot_api.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using replywatch::testing::FakeBotApi;
using replywatch::testing::FakeBotApiOptions;
using replywatch::testing::json_valid;
using Fault = FakeBotApi::Fault;

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using beast::error_code;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kStepTimeout = 10s;
const std::string kTlsDir = REPLYWATCH_TEST_TLS;

struct Reply {
  error_code ec;  // a transport failure; status and body are then empty
  int status = 0;
  std::string body;
  std::chrono::milliseconds took{};
};

// Blocking requests over one keep-alive connection, reconnecting after a failure. Each step
// runs asynchronously on a private io_context because only then does Beast's stream timeout
// apply: a misbehaving server costs kStepTimeout at most, never a hung test.
class Client {
 public:
  explicit Client(std::uint16_t port) : port_(port) {}

  // HTTPS trusting only `ca_file`; `host` is sent as SNI and must be named by the certificate.
  Client(std::uint16_t port, const std::string& ca_file, std::string host)
      : port_(port), host_(std::move(host)) {
    tls_context_.emplace(ssl::context::tls_client);
    tls_context_->load_verify_file(ca_file);
    tls_context_->set_verify_mode(ssl::verify_peer);
  }

  error_code connect() {
    buffer_.clear();
    const tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"), port_);
    error_code ec;
    if (tls_context_) {
      tls_.emplace(io_, *tls_context_);
      if (!SSL_set_tlsext_host_name(tls_->native_handle(), host_.c_str())) {
        return {static_cast<int>(ERR_get_error()), net::error::get_ssl_category()};
      }
      tls_->set_verify_callback(ssl::host_name_verification(host_));
      auto& lowest = beast::get_lowest_layer(*tls_);
      ec = step(lowest, [&](auto handler) { lowest.async_connect(endpoint, handler); });
      if (!ec) {
        ec = step(lowest,
                  [&](auto handler) { tls_->async_handshake(ssl::stream_base::client, handler); });
      }
    } else {
      plain_.emplace(io_);
      ec = step(*plain_, [&](auto handler) { plain_->async_connect(endpoint, handler); });
    }
    connected_ = !ec;
    return ec;
  }

  Reply request(http::verb verb, const std::string& target, const std::string& body = {},
                const std::string& content_type = {}) {
    const auto start = Clock::now();
    Reply reply;
    if (!connected_) reply.ec = connect();
    if (!reply.ec) {
      http::request<http::string_body> req{verb, target, 11};
      req.set(http::field::host, host_);
      if (!content_type.empty()) req.set(http::field::content_type, content_type);
      req.body() = body;
      req.prepare_payload();
      http::response<http::string_body> res;
      auto exchange = [&](auto& stream) {
        auto& lowest = beast::get_lowest_layer(stream);
        reply.ec = step(lowest, [&](auto handler) { http::async_write(stream, req, handler); });
        if (reply.ec) return;
        reply.ec = step(lowest, [&](auto handler) {
          http::async_read(stream, buffer_, res, handler);
        });
      };
      if (tls_) {
        exchange(*tls_);
      } else {
        exchange(*plain_);
      }
      if (!reply.ec) {
        reply.status = static_cast<int>(res.result_int());
        reply.body = std::move(res.body());
      }
      if (reply.ec || !res.keep_alive()) connected_ = false;
    }
    reply.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return reply;
  }

  Reply get(const std::string& target) { return request(http::verb::get, target); }

  Reply post(const std::string& target, const std::string& body,
             const std::string& content_type = "application/json") {
    return request(http::verb::post, target, body, content_type);
  }

 private:
  template <class Start>
  error_code step(beast::tcp_stream& lowest, Start start) {
    error_code result = net::error::timed_out;
    lowest.expires_after(kStepTimeout);
    start([&result](error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run();
    return result;
  }

  net::io_context io_;
  std::uint16_t port_;
  std::string host_ = "127.0.0.1";
  std::optional<ssl::context> tls_context_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  std::optional<beast::tcp_stream> plain_;
  beast::flat_buffer buffer_;
  bool connected_ = false;
};

// The update ids of an answer, read the simple way: the fake writes them unspaced.
std::vector<std::int64_t> ids_in(const std::string& body) {
  static const std::string kKey = "\"update_id\":";
  std::vector<std::int64_t> out;
  for (auto at = body.find(kKey); at != std::string::npos; at = body.find(kKey, at + 1)) {
    out.push_back(std::stoll(body.substr(at + kKey.size())));
  }
  return out;
}

std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out;
  for (std::int64_t id = first; id <= last; ++id) out.push_back(id);
  return out;
}

void push_n(FakeBotApi& fake, int count) {
  for (int i = 0; i < count; ++i) {
    fake.push_update(R"({"message":{"message_id":)" + std::to_string(i + 1) +
                     R"(,"chat":{"id":-1001},"text":"hi"}})");
  }
}

const std::string kConflictPrefix =
    R"({"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates)";

// A webhook endpoint: answers every POST with 200 when the secret header matches, else 403,
// one request per connection, and keeps what it received.
class WebhookReceiver {
 public:
  struct Seen {
    std::string target;
    std::string body;
    std::optional<std::string> secret;
  };

  explicit WebhookReceiver(std::string secret) : secret_(std::move(secret)) {
    const tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~WebhookReceiver() {
    io_.stop();
    thread_.join();
  }

  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  std::uint16_t port() const { return port_; }

  std::vector<Seen> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  struct Exchange {
    explicit Exchange(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
  };

  void accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec) return;
      serve(std::make_shared<Exchange>(std::move(socket)));
      accept();
    });
  }

  void serve(const std::shared_ptr<Exchange>& exchange) {
    exchange->stream.expires_after(kStepTimeout);
    http::async_read(
        exchange->stream, exchange->buffer, exchange->req,
        [this, exchange](error_code ec, std::size_t) {
          if (ec) return;
          const auto& req = exchange->req;
          Seen seen{std::string(req.target()), req.body(), std::nullopt};
          if (const auto it = req.find("X-Telegram-Bot-Api-Secret-Token"); it != req.end()) {
            seen.secret = std::string(it->value());
          }
          const bool allowed = seen.secret == secret_;
          {
            std::lock_guard lock(mutex_);
            seen_.push_back(std::move(seen));
          }
          exchange->res.version(11);
          exchange->res.result(allowed ? http::status::ok : http::status::forbidden);
          exchange->res.keep_alive(false);
          exchange->res.prepare_payload();
          http::async_write(exchange->stream, exchange->res, [exchange](error_code, std::size_t) {
            error_code ignored;
            exchange->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
          });
        });
  }

  const std::string secret_;
  net::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<Seen> seen_;
};

}  // namespace

TEST_CASE("fake Bot API: getMe, unknown methods, wrong tokens") {
  FakeBotApi fake;
  CHECK(fake.base_url() == "http://127.0.0.1:" + std::to_string(fake.port()));
  CHECK(fake.method_path("getMe") == "/bot123456:TEST-token-abcdef/getMe");
  Client client(fake.port());

  const Reply me = client.get(fake.method_path("getMe"));
  CHECK(me.status == 200);
  CHECK(json_valid(me.body));
  CHECK(me.body.find(R"("id":123456,"is_bot":true)") != std::string::npos);
  CHECK(client.get(fake.method_path("getme")).status == 200);  // names are case-insensitive
  CHECK(fake.calls("getMe") == 2);

  const Reply unknown = client.get(fake.method_path("sendTelepathy"));
  CHECK(unknown.status == 404);
  CHECK(unknown.body == R"({"ok":false,"error_code":404,"description":"Not Found"})");
  CHECK(client.get("/").status == 404);

  fake.inject(Fault::server_error);
  const Reply wrong = client.get("/bot123456:WRONG/getUpdates?timeout=0");
  CHECK(wrong.status == 401);
  CHECK(wrong.body == R"({"ok":false,"error_code":401,"description":"Unauthorized"})");
  CHECK(fake.unauthorized_calls() == 1);
  CHECK(fake.get_updates_count() == 0);
  CHECK(fake.faults_pending() == 1);  // a rejected request takes no fault
}

TEST_CASE("fake Bot API: queued updates come back at once, numbered in order") {
  FakeBotApiOptions options;
  options.first_update_id = 800000000;
  FakeBotApi fake(options);
  const auto first = fake.push_update(R"( {"message":{"message_id":1,"text":"a"}})");
  const auto second = fake.push_update("{}");
  CHECK(first == 800000000);
  CHECK(second == first + 1);
  CHECK(fake.pending_updates() == 2);

  Client client(fake.port());
  const Reply reply = client.get(fake.method_path("getUpdates") + "?timeout=5");
  CHECK(reply.status == 200);
  CHECK(reply.took < 1000ms);
  CHECK(reply.body == R"({"ok":true,"result":[{"update_id":800000000,"message":{"message_id":1,)"
                      R"("text":"a"}},{"update_id":800000001}]})");
  CHECK(json_valid(reply.body));
  const auto calls = fake.get_updates_calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].status == 200);
  CHECK(calls[0].timeout == 5);
  CHECK(calls[0].update_ids == std::vector<std::int64_t>{first, second});
  CHECK(fake.pending_updates() == 2);  // nothing confirmed yet

  CHECK_THROWS_AS(fake.push_update("[1]"), std::invalid_argument);
  CHECK_THROWS_AS(fake.push_update("{\"message\":"), std::invalid_argument);
  CHECK_THROWS_AS(fake.push_update(R"({"update_id":5})"), std::invalid_argument);
}

TEST_CASE("fake Bot API: a long poll without updates waits out its timeout") {
  FakeBotApi fake;
  Client client(fake.port());
  const Reply held = client.get(fake.method_path("getUpdates") + "?timeout=1");
  CHECK(held.status == 200);
  CHECK(held.body == R"({"ok":true,"result":[]})");
  CHECK(held.took >= 900ms);
  CHECK(held.took < 2500ms);

  const Reply immediate = client.get(fake.method_path("getUpdates") + "?timeout=0");
  CHECK(immediate.status == 200);
  CHECK(immediate.took < 500ms);
}

TEST_CASE("fake Bot API: a push wakes a held long poll") {
  FakeBotApi fake;
  std::thread pusher([&fake] {
    if (fake.wait_for_get_updates(1, 5000ms)) {
      std::this_thread::sleep_for(200ms);
      fake.push_update(R"({"message":{"message_id":9}})");
    }
  });
  Client client(fake.port());
  const Reply reply = client.get(fake.method_path("getUpdates") + "?timeout=10");
  pusher.join();
  CHECK(reply.status == 200);
  CHECK(ids_in(reply.body) == std::vector<std::int64_t>{1});
  CHECK(reply.took >= 150ms);
  CHECK(reply.took < 3000ms);
}

TEST_CASE("fake Bot API: offsets confirm, limits clamp") {
  FakeBotApi fake;
  push_n(fake, 5);
  Client client(fake.port());
  const std::string path = fake.method_path("getUpdates");

  CHECK(ids_in(client.get(path + "?limit=2").body) == range(1, 2));
  CHECK(fake.pending_updates() == 5);
  CHECK(fake.confirmed_offset() == 0);

  CHECK(ids_in(client.get(path + "?offset=3&limit=2").body) == range(3, 4));
  CHECK(fake.pending_updates() == 3);
  CHECK(fake.confirmed_offset() == 3);

  CHECK(ids_in(client.get(path + "?offset=6").body).empty());
  CHECK(fake.pending_updates() == 0);
  CHECK(fake.confirmed_offset() == 6);
  // Confirmed updates never come back, and a lower offset does not move the mark back.
  CHECK(ids_in(client.get(path + "?offset=1").body).empty());
  CHECK(fake.confirmed_offset() == 6);
  CHECK_FALSE(fake.wait_for_confirmed(7, 50ms));
  std::thread later([&fake, path] {
    std::this_thread::sleep_for(100ms);
    Client(fake.port()).get(path + "?offset=7");
  });
  CHECK(fake.wait_for_confirmed(7, 5000ms));
  later.join();

  push_n(fake, 3);  // 6, 7, 8
  CHECK(ids_in(client.get(path + "?offset=-1").body) == range(8, 8));
  CHECK(fake.pending_updates() == 1);
  CHECK(fake.confirmed_offset() == 8);

  push_n(fake, 120);  // 9 .. 128
  CHECK(ids_in(client.get(path).body) == range(8, 107));
  CHECK(ids_in(client.get(path + "?limit=500").body) == range(8, 107));
  CHECK(ids_in(client.get(path + "?limit=0").body) == range(8, 8));
  const auto calls = fake.get_updates_calls();
  REQUIRE(calls.size() >= 2);
  CHECK(calls[calls.size() - 2].limit == 500);  // recorded as sent
  CHECK(calls.back().limit == 0);
}

TEST_CASE("fake Bot API: parameters by query, JSON or form; allowed_updates sticks") {
  FakeBotApi fake;
  Client client(fake.port());
  const std::string path = fake.method_path("getUpdates");

  CHECK(client.get(path + "?offset=0&limit=10&timeout=0&allowed_updates="
                          "%5B%22message%22%2C%22channel_post%22%5D")
            .status == 200);
  const std::string json =
      R"({"offset":7,"limit":5,"timeout":0,"allowed_updates":["edited_message"]})";
  CHECK(client.post(path, json).status == 200);
  CHECK(client.post(path, "timeout=0&limit=3", "application/x-www-form-urlencoded").status == 200);

  const auto calls = fake.get_updates_calls();
  REQUIRE(calls.size() == 3);
  CHECK(calls[0].http_method == "GET");
  CHECK(calls[0].offset == 0);
  CHECK(calls[0].limit == 10);
  CHECK(calls[0].allowed_updates == std::vector<std::string>{"message", "channel_post"});
  CHECK(calls[1].http_method == "POST");
  CHECK(calls[1].offset == 7);
  CHECK(calls[1].limit == 5);
  CHECK(calls[1].timeout == 0);
  CHECK(calls[1].allowed_updates == std::vector<std::string>{"edited_message"});
  CHECK(calls[2].limit == 3);
  CHECK_FALSE(calls[2].allowed_updates.has_value());
  CHECK(fake.allowed_updates() == std::vector<std::string>{"edited_message"});
  CHECK(fake.confirmed_offset() == 7);

  CHECK(client.get(path + "?limit=abc").status == 400);
  CHECK(client.get(path + "?allowed_updates=message").status == 400);
  CHECK(client.post(path, "[1]").status == 400);
  CHECK(client.post(path, R"({"timeout":)").status == 400);
}

TEST_CASE("fake Bot API: faults") {
  FakeBotApi fake;
  push_n(fake, 2);
  Client client(fake.port());
  const std::string poll = fake.method_path("getUpdates") + "?offset=2&timeout=0";

  SUBCASE("too_many_requests carries retry_after and confirms nothing") {
    fake.inject(Fault::too_many_requests, 1, 3s);
    fake.inject(Fault::too_many_requests);
    const Reply limited = client.get(poll);
    CHECK(limited.status == 429);
    CHECK(limited.body == R"({"ok":false,"error_code":429,"description":"Too Many Requests: )"
                          R"(retry after 3","parameters":{"retry_after":3}})");
    CHECK(client.get(poll).body.find(R"("parameters":{"retry_after":1})") != std::string::npos);
    CHECK(fake.pending_updates() == 2);
    CHECK(fake.confirmed_offset() == 0);
    CHECK(ids_in(client.get(poll).body) == range(2, 2));
    CHECK(fake.confirmed_offset() == 2);
    const auto calls = fake.get_updates_calls();
    REQUIRE(calls.size() == 3);
    CHECK(calls[0].fault == Fault::too_many_requests);
    CHECK(calls[0].status == 429);
    CHECK(calls[2].fault == Fault::none);
  }
  SUBCASE("counted faults apply in order, to getUpdates only") {
    fake.inject(Fault::server_error, 2);
    fake.inject(Fault::none);
    fake.inject(Fault::not_found);
    CHECK(fake.faults_pending() == 4);
    CHECK(client.get(fake.method_path("getMe")).status == 200);
    CHECK(fake.faults_pending() == 4);
    const Reply failed = client.get(poll);
    CHECK(failed.status == 500);
    CHECK(failed.body ==
          R"({"ok":false,"error_code":500,"description":"Internal Server Error"})");
    CHECK(client.get(poll).status == 500);
    CHECK(client.get(poll).status == 200);
    CHECK(client.get(poll).status == 404);
    CHECK(client.get(poll).status == 200);
    CHECK(fake.faults_pending() == 0);
  }
  SUBCASE("slow delays, then answers normally") {
    fake.inject(Fault::slow, 1, 400ms);
    const Reply slow = client.get(poll);
    CHECK(slow.status == 200);
    CHECK(slow.took >= 400ms);
    CHECK(slow.took < 3000ms);
    CHECK(ids_in(slow.body) == range(2, 2));
  }
  SUBCASE("truncated cuts the body and closes") {
    fake.inject(Fault::truncated);
    const Reply cut = client.get(poll);
    CHECK(cut.ec == http::error::partial_message);
    CHECK(fake.get_updates_calls().back().status == 200);
    CHECK(fake.pending_updates() == 1);  // the request itself was processed
    CHECK(ids_in(client.get(poll).body) == range(2, 2));
  }
  SUBCASE("invalid_json answers 200 with a body that does not parse") {
    fake.inject(Fault::invalid_json);
    const Reply garbled = client.get(poll);
    CHECK(garbled.status == 200);
    CHECK_FALSE(json_valid(garbled.body));
    CHECK(fake.pending_updates() == 2);
  }
  SUBCASE("duplicate re-delivers confirmed updates") {
    fake.inject(Fault::duplicate);
    const std::string past_all = fake.method_path("getUpdates") + "?offset=3&timeout=0";
    CHECK(ids_in(client.get(past_all).body) == range(1, 2));
    CHECK(fake.pending_updates() == 0);
    CHECK(fake.confirmed_offset() == 3);
    CHECK(ids_in(client.get(past_all).body).empty());
  }
  SUBCASE("conflict, unauthorized and not_found") {
    fake.inject(Fault::conflict);
    fake.inject(Fault::unauthorized);
    fake.inject(Fault::not_found);
    const Reply conflict = client.get(poll);
    CHECK(conflict.status == 409);
    CHECK(conflict.body.rfind(kConflictPrefix, 0) == 0);
    const Reply unauthorized = client.get(poll);
    CHECK(unauthorized.status == 401);
    CHECK(unauthorized.body == R"({"ok":false,"error_code":401,"description":"Unauthorized"})");
    CHECK(client.get(poll).status == 404);
    CHECK(fake.pending_updates() == 2);
  }
  SUBCASE("reset drops the connection without an answer") {
    fake.inject(Fault::reset);
    const Reply dropped = client.get(poll);
    CHECK(dropped.ec);
    CHECK(dropped.status == 0);
    CHECK(fake.get_updates_calls().back().status == 0);
    CHECK(fake.pending_updates() == 2);
    CHECK(client.get(poll).status == 200);  // the fake serves the next connection
  }
  CHECK(FakeBotApi::fault_name(Fault::too_many_requests) == "too_many_requests");
}

TEST_CASE("fake Bot API: a newer getUpdates ends a held one with 409") {
  FakeBotApi fake;
  Reply held;
  std::thread older([&] {
    Client client(fake.port());
    held = client.get(fake.method_path("getUpdates") + "?timeout=10");
  });
  REQUIRE(fake.wait_for_get_updates(1, 5000ms));
  Client newer(fake.port());
  const Reply reply = newer.get(fake.method_path("getUpdates") + "?timeout=0");
  older.join();
  CHECK(reply.status == 200);
  CHECK(held.status == 409);
  CHECK(held.body.rfind(kConflictPrefix, 0) == 0);
  CHECK(held.took < 3000ms);
  CHECK(fake.get_updates_calls().front().status == 409);
}

TEST_CASE("fake Bot API: a webhook blocks getUpdates until deleted") {
  FakeBotApi fake;
  Client client(fake.port());
  const std::string poll = fake.method_path("getUpdates") + "?timeout=0";
  CHECK(client.post(fake.method_path("setWebhook"), R"({"url":"https://example.invalid/hook"})")
            .status == 200);
  CHECK(fake.webhook_url() == "https://example.invalid/hook");
  push_n(fake, 1);
  const Reply info = client.get(fake.method_path("getWebhookInfo"));
  CHECK(info.body.find(R"("url":"https://example.invalid/hook")") != std::string::npos);
  CHECK(info.body.find(R"("pending_update_count":1)") != std::string::npos);

  const Reply blocked = client.get(poll);
  CHECK(blocked.status == 409);
  CHECK(blocked.body.find("can't use getUpdates method while webhook is active") !=
        std::string::npos);

  CHECK(client.get(fake.method_path("deleteWebhook") + "?drop_pending_updates=true").status ==
        200);
  CHECK(fake.webhook_url().empty());
  CHECK(fake.pending_updates() == 0);
  CHECK(client.get(poll).status == 200);
  CHECK(client.post(fake.method_path("setWebhook"), "{}").status == 400);  // url is required
}

TEST_CASE("fake Bot API: pushes from several threads arrive once, in id order") {
  FakeBotApi fake;
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::vector<std::thread> pushers;
  for (int t = 0; t < kThreads; ++t) {
    pushers.emplace_back([&fake] {
      for (int i = 0; i < kEach; ++i) {
        fake.push_update(R"({"message":{"message_id":1}})");
        if (i % 10 == 0) std::this_thread::sleep_for(1ms);
      }
    });
  }
  Client client(fake.port());
  std::vector<std::int64_t> received;
  std::int64_t offset = 0;
  const auto deadline = Clock::now() + 10s;
  constexpr std::size_t kTotal = kThreads * kEach;
  while (received.size() < kTotal && Clock::now() < deadline) {
    const Reply reply = client.get(fake.method_path("getUpdates") +
                                   "?timeout=1&offset=" + std::to_string(offset));
    REQUIRE(reply.status == 200);
    for (const auto id : ids_in(reply.body)) {
      received.push_back(id);
      offset = id + 1;
    }
  }
  for (auto& pusher : pushers) pusher.join();
  CHECK(received == range(1, kThreads * kEach));
}

TEST_CASE("fake Bot API: destruction ends a held long poll at once") {
  auto fake = std::make_unique<FakeBotApi>();
  Reply held;
  std::thread poller([&, port = fake->port(), path = fake->method_path("getUpdates")] {
    Client client(port);
    held = client.get(path + "?timeout=30");
  });
  REQUIRE(fake->wait_for_get_updates(1, 5000ms));
  const auto start = Clock::now();
  fake.reset();
  poller.join();
  CHECK(Clock::now() - start < 2000ms);
  CHECK(held.ec);
}

TEST_CASE("fake Bot API: TLS with the test CA, and not with another") {
  FakeBotApiOptions options;
  options.tls = true;
  FakeBotApi fake(options);
  CHECK(fake.base_url() == "https://127.0.0.1:" + std::to_string(fake.port()));

  for (const std::string host : {"127.0.0.1", "localhost"}) {
    CAPTURE(host);
    Client client(fake.port(), kTlsDir + "/ca.pem", host);
    const error_code ec = client.connect();
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(client.get(fake.method_path("getMe")).status == 200);
    const auto id = fake.push_update(R"({"message":{"message_id":3}})");
    const Reply reply = client.get(fake.method_path("getUpdates") + "?timeout=1&offset=" +
                                   std::to_string(id));
    CHECK(ids_in(reply.body) == std::vector<std::int64_t>{id});
  }

  Client untrusting(fake.port(), kTlsDir + "/other_ca.pem", "127.0.0.1");
  const error_code wrong_ca = untrusting.connect();
  CHECK(wrong_ca);
  CHECK(wrong_ca.message().find("certificate verify failed") != std::string::npos);

  Client wrong_name(fake.port(), kTlsDir + "/ca.pem", "example.com");
  const error_code wrong_host = wrong_name.connect();
  CHECK(wrong_host);
  CHECK(wrong_host.message().find("certificate verify failed") != std::string::npos);

  Client after(fake.port(), kTlsDir + "/ca.pem", "127.0.0.1");
  CHECK(after.get(fake.method_path("getMe")).status == 200);  // failed handshakes harm nothing
}

TEST_CASE("fake Bot API: post_json plays Telegram to a webhook") {
  FakeBotApi fake;
  std::uint16_t closed_port = 0;
  {
    WebhookReceiver receiver("s3cret");
    closed_port = receiver.port();
    const std::string url = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/tg/hook";
    const std::string update = fake.make_update(R"({"message":{"message_id":7}})");
    CHECK(update == R"({"update_id":1,"message":{"message_id":7}})");
    CHECK(fake.pending_updates() == 0);
    CHECK(fake.push_update("{}") == 2);  // ids stay unique across both

    CHECK(FakeBotApi::post_json(url, update, "s3cret") == 200);
    CHECK(FakeBotApi::post_json(url, update, "guess") == 403);
    CHECK(FakeBotApi::post_json(url, update, "") == 403);
    const auto seen = receiver.seen();
    REQUIRE(seen.size() == 3);
    CHECK(seen[0].target == "/tg/hook");
    CHECK(seen[0].body == update);
    CHECK(seen[0].secret == "s3cret");
    CHECK_FALSE(seen[2].secret.has_value());
  }
  CHECK(FakeBotApi::post_json("http://127.0.0.1:" + std::to_string(closed_port) + "/", "{}", "x",
                              2000ms) == 0);
  CHECK_THROWS_AS(FakeBotApi::post_json("https://127.0.0.1/", "{}", ""), std::invalid_argument);
  CHECK_THROWS_AS(FakeBotApi::post_json("http://example.com/", "{}", ""), std::invalid_argument);
  CHECK_THROWS_AS(FakeBotApi::post_json("http://127.0.0.1:x/", "{}", ""), std::invalid_argument);
}

TEST_CASE("fake Bot API: json_valid") {
  CHECK(json_valid(R"({"a":[1,-2.5e3,true,false,null,"\u00e9\ud83d\ude00\n"]})"));
  CHECK(json_valid(" 0 "));
  CHECK_FALSE(json_valid(""));
  CHECK_FALSE(json_valid("{\"a\":1,}"));
  CHECK_FALSE(json_valid("[01]"));
  CHECK_FALSE(json_valid("\"tab\there\""));
  CHECK_FALSE(json_valid("{} {}"));
  CHECK_FALSE(json_valid(std::string(1000, '[') + std::string(1000, ']')));
}
