// The HTTP server against raw loopback sockets: normal traffic, and clients that misbehave
// (garbage, oversized, slow, too many, throwing handlers). Every wait is bounded.
#include "daemon/http_server.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using replywatch::daemon::HttpFields;
using replywatch::daemon::HttpHandler;
using replywatch::daemon::HttpLimits;
using replywatch::daemon::HttpRequest;
using replywatch::daemon::HttpResponse;
using replywatch::daemon::HttpServer;
using replywatch::daemon::parse_query;
using replywatch::daemon::percent_decode;

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A server with its own run thread for the length of one test case.
class Running {
 public:
  explicit Running(HttpHandler handler, HttpLimits limits = {},
                   const std::function<void(HttpServer&)>& setup = {})
      : server_(io_, limits, std::move(handler)) {
    if (setup) setup(server_);
    auto listening = server_.listen("127.0.0.1", 0);
    REQUIRE_MESSAGE(listening.has_value(), (listening ? "" : listening.error().message));
    thread_ = std::thread([this] {
      io_.run();
      finished_ = true;
    });
  }

  ~Running() { stop_and_join(); }

  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

  // True when run() returned on its own after stop(); a broken stop() still ends the test.
  bool stop_and_join(std::chrono::milliseconds timeout = 5000ms) {
    if (!thread_.joinable()) return true;
    server_.stop();
    const auto deadline = Clock::now() + timeout;
    while (!finished_ && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    const bool clean = finished_;
    if (!clean) io_.stop();
    thread_.join();
    return clean;
  }

  HttpServer& server() { return server_; }
  std::uint16_t port() const { return server_.port(); }

 private:
  net::io_context io_;
  HttpServer server_;
  std::thread thread_;
  std::atomic<bool> finished_{false};
};

struct Response {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;

  std::optional<std::string> header(const std::string& name) const {
    std::string lower_head = head;
    for (char& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string key = "\r\n" + name + ":";
    const std::size_t at = lower_head.find(key);
    if (at == std::string::npos) return std::nullopt;
    std::size_t begin = at + key.size();
    while (begin < head.size() && head[begin] == ' ') ++begin;
    return head.substr(begin, head.find("\r\n", begin) - begin);
  }
};

// A raw loopback client in non-blocking mode, so every read and write has a deadline.
class Client {
 public:
  explicit Client(std::uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port));
    socket_.non_blocking(true);
  }

  // False when the server has closed or reset the connection.
  bool send(std::string_view bytes, std::chrono::milliseconds timeout = 2000ms) {
    const auto deadline = Clock::now() + timeout;
    while (!bytes.empty() && Clock::now() < deadline) {
      boost::system::error_code ec;
      const std::size_t n = socket_.write_some(net::buffer(bytes.data(), bytes.size()), ec);
      if (ec == net::error::would_block) {
        std::this_thread::sleep_for(2ms);
        continue;
      }
      if (ec) return false;
      bytes.remove_prefix(n);
    }
    return bytes.empty();
  }

  // One response (a 100 Continue counts as one); nullopt on close or timeout. The answer to
  // HEAD has a Content-Length but no body: pass has_body = false.
  std::optional<Response> read_response(std::chrono::milliseconds timeout = 3000ms,
                                        bool has_body = true) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      if (auto response = take_response(has_body)) return response;
      if (closed_ || Clock::now() >= deadline) return std::nullopt;
      poll();
    }
  }

  // True once the server closes the connection within `timeout`; data read meanwhile is
  // appended to received().
  bool wait_closed(std::chrono::milliseconds timeout = 3000ms) {
    const auto deadline = Clock::now() + timeout;
    while (!closed_ && Clock::now() < deadline) poll();
    return closed_;
  }

  // Reads what is there without waiting long.
  void poll() {
    char chunk[4096];
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(net::buffer(chunk), ec);
    if (ec == net::error::would_block) {
      std::this_thread::sleep_for(2ms);
    } else if (ec) {
      closed_ = true;  // EOF or reset
    } else {
      pending_.append(chunk, n);
      received_.append(chunk, n);
    }
  }

  bool closed() const { return closed_; }
  const std::string& received() const { return received_; }
  void close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

 private:
  std::optional<Response> take_response(bool has_body) {
    const std::size_t end = pending_.find("\r\n\r\n");
    if (end == std::string::npos) return std::nullopt;
    Response response;
    response.head = pending_.substr(0, end);
    if (response.head.compare(0, 9, "HTTP/1.1 ") != 0 || response.head.size() < 12) {
      FAIL("not an HTTP/1.1 response: " << response.head);
    }
    response.status = std::stoi(response.head.substr(9, 3));
    std::size_t length = 0;
    if (auto value = response.header("content-length"); value && has_body) {
      length = std::stoul(*value);
    }
    if (pending_.size() < end + 4 + length) return std::nullopt;
    response.body = pending_.substr(end + 4, length);
    pending_.erase(0, end + 4 + length);
    return response;
  }

  net::io_context io_;
  tcp::socket socket_;
  std::string pending_;
  std::string received_;
  bool closed_ = false;
};

// Records every request (copied under a lock: the handler runs on the server thread) and
// answers with the decoded path.
class Recorder {
 public:
  HttpHandler handler() {
    return [this](const HttpRequest& request) {
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request);
      }
      if (request.path == "/throw") throw std::runtime_error("handler failure");
      if (request.path == "/throw-int") throw 42;
      HttpResponse response;
      response.body = request.method + " " + request.path;
      if (!request.body.empty()) response.body += " body=" + request.body;
      response.headers.emplace_back("X-Method", request.method);
      return response;
    };
  }

  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<HttpRequest> requests_;
};

std::optional<Response> round_trip(Client& client, std::string_view request) {
  if (!client.send(request)) return std::nullopt;
  return client.read_response();
}

std::string get(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n\r\n";
}

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 3000ms) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return predicate();
}

}  // namespace

TEST_CASE("percent_decode and parse_query") {
  CHECK(percent_decode("a%20b+c", false) == "a b+c");
  CHECK(percent_decode("a%20b+c", true) == "a b c");
  CHECK(percent_decode("%E2%9C%93%2f", false) == "\xE2\x9C\x93/");
  CHECK_FALSE(percent_decode("%", false));
  CHECK_FALSE(percent_decode("%2", false));
  CHECK_FALSE(percent_decode("%zz", false));
  CHECK_FALSE(percent_decode("ab%g0", false));

  const auto query = parse_query("a=1&&b=x%20y&flag&c=&=v&d=1=2");
  REQUIRE(query);
  const HttpFields expected{{"a", "1"}, {"b", "x y"}, {"flag", ""},
                            {"c", ""},  {"", "v"},    {"d", "1=2"}};
  CHECK(*query == expected);
  CHECK(parse_query("")->empty());
  CHECK_FALSE(parse_query("a=%4"));
  CHECK_FALSE(parse_query("%xx=1"));
}

TEST_CASE("a GET reaches the handler with its query decoded") {
  Recorder recorder;
  Running running(recorder.handler());
  Client client(running.port());
  const std::string target = "/api/v1/items%2Fx?name=a%20b&plus=1+2&flag&&k=%E2%9C%93&k=2";
  const auto response = round_trip(client, "GET " + target +
                                               " HTTP/1.1\r\nHost: test\r\n"
                                               "X-Custom-Header: Value\r\n\r\n");
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(response->body == "GET /api/v1/items/x");
  CHECK(response->header("content-length") == std::to_string(response->body.size()));
  CHECK(response->header("server") == "replywatch");
  CHECK(response->header("content-type") == "text/plain; charset=utf-8");
  CHECK(response->header("x-method") == "GET");
  CHECK(response->header("date"));

  const auto requests = recorder.requests();
  REQUIRE(requests.size() == 1);
  const HttpRequest& request = requests[0];
  CHECK(request.method == "GET");
  CHECK(request.target == target);
  CHECK(request.path == "/api/v1/items/x");
  const HttpFields query{
      {"name", "a b"}, {"plus", "1 2"}, {"flag", ""}, {"k", "\xE2\x9C\x93"}, {"k", "2"}};
  CHECK(request.query == query);
  CHECK(request.query_param("k") == "\xE2\x9C\x93");  // the first of repeats
  CHECK_FALSE(request.query_param("missing"));
  CHECK(request.header("x-custom-header") == "Value");
  CHECK(request.header("host") == "test");
  CHECK_FALSE(request.header("X-Custom-Header"));  // lookups take lower-case names
  CHECK(request.body.empty());
  CHECK(request.remote.rfind("127.0.0.1:", 0) == 0);
}

TEST_CASE("keep-alive serves several requests on one connection, pipelined ones in order") {
  Recorder recorder;
  Running running(recorder.handler());
  Client client(running.port());

  auto first = round_trip(client, get("/one"));
  REQUIRE(first);
  CHECK(first->body == "GET /one");
  CHECK(running.server().connections() == 1);
  auto second = round_trip(client, get("/two"));
  REQUIRE(second);
  CHECK(second->body == "GET /two");

  REQUIRE(client.send(get("/three") + get("/four")));
  auto third = client.read_response();
  auto fourth = client.read_response();
  REQUIRE(third);
  REQUIRE(fourth);
  CHECK(third->body == "GET /three");
  CHECK(fourth->body == "GET /four");

  // HEAD: the length of the GET body, no body bytes, and the connection stays usable.
  REQUIRE(client.send("HEAD /five HTTP/1.1\r\nHost: test\r\n\r\n"));
  auto head = client.read_response(3000ms, false);
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->header("content-length") == std::to_string(std::string("HEAD /five").size()));
  auto after_head = round_trip(client, get("/six"));
  REQUIRE(after_head);
  CHECK(after_head->body == "GET /six");

  CHECK(recorder.requests().size() == 6);
  CHECK(running.server().connections() == 1);
  CHECK(running.server().stats().connections_accepted == 1);
  CHECK(running.server().stats().responses_2xx == 6);

  // "Connection: close" from the client ends the connection after the response.
  auto last = round_trip(client, "GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  REQUIRE(last);
  CHECK(last->header("connection") == "close");
  CHECK(client.wait_closed());
}

TEST_CASE("a POST body reaches the handler: Content-Length, chunked, 100-continue") {
  Recorder recorder;
  Running running(recorder.handler());
  Client client(running.port());

  auto sized = round_trip(client,
                          "POST /in HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                          "Content-Length: 13\r\n\r\n{\"a\": [1, 2]}");
  REQUIRE(sized);
  CHECK(sized->status == 200);
  CHECK(sized->body == "POST /in body={\"a\": [1, 2]}");

  auto chunked =
      round_trip(client,
                 "POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  REQUIRE(chunked);
  CHECK(chunked->body == "POST /chunked body=hello world");

  REQUIRE(
      client.send("PUT /expect HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                  "Content-Length: 4\r\n\r\n"));
  auto interim = client.read_response();
  REQUIRE(interim);
  CHECK(interim->status == 100);
  auto final_response = round_trip(client, "data");
  REQUIRE(final_response);
  CHECK(final_response->body == "PUT /expect body=data");

  const auto requests = recorder.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].header("content-type") == "application/json");
  CHECK(requests[1].body == "hello world");
}

TEST_CASE("a header over max_header_bytes gets 431 and a close") {
  Recorder recorder;
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  Running running(recorder.handler(), limits);
  Client client(running.port());
  const auto response = round_trip(
      client, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  REQUIRE(response);
  CHECK(response->status == 431);
  CHECK(response->header("connection") == "close");
  CHECK(client.wait_closed());
  CHECK(recorder.requests().empty());
  CHECK(running.server().stats().responses_4xx == 1);
}

TEST_CASE("a body over its limit gets 413; set_body_limit raises it for a path prefix") {
  Recorder recorder;
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  Running running(recorder.handler(), limits, [](HttpServer& server) {
    server.set_body_limit("/webhooks/", 10000);
    server.set_body_limit("/webhooks/small/", 10);
  });
  const std::string body(5000, 'b');

  SUBCASE("Content-Length over the default limit") {
    Client client(running.port());
    auto response =
        round_trip(client, "POST /api HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + body);
    REQUIRE(response);
    CHECK(response->status == 413);
    CHECK(client.wait_closed());
  }
  SUBCASE("the same body on a webhook path") {
    Client client(running.port());
    auto response = round_trip(
        client,
        "POST /webhooks/telegram HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + body);
    REQUIRE(response);
    CHECK(response->status == 200);
    CHECK(response->body == "POST /webhooks/telegram body=" + body);
  }
  SUBCASE("the longest prefix wins") {
    Client client(running.port());
    auto response = round_trip(
        client, "POST /webhooks/small/x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n");
    REQUIRE(response);
    CHECK(response->status == 413);
  }
  SUBCASE("a chunked body that grows past the limit") {
    Client client(running.port());
    std::string request = "POST /api HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) request += "258\r\n" + std::string(600, 'c') + "\r\n";
    request += "0\r\n\r\n";
    auto response = round_trip(client, request);
    REQUIRE(response);
    CHECK(response->status == 413);
    CHECK(client.wait_closed());
  }
  SUBCASE("Expect: 100-continue with a body too large gets 413 instead of 100") {
    Client client(running.port());
    auto response = round_trip(client,
                               "POST /api HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                               "Content-Length: 1000000\r\n\r\n");
    REQUIRE(response);
    CHECK(response->status == 413);
  }
  CHECK(recorder.requests().size() <= 1);
}

TEST_CASE("malformed requests get 400 and a close") {
  Recorder recorder;
  Running running(recorder.handler());
  std::string request;
  SUBCASE("garbage bytes") { request = "\x16\x03\x01\x02\x05 not http at all\r\n\r\n"; }
  SUBCASE("a bad percent escape in the query") { request = get("/x?a=%zz"); }
  SUBCASE("a bad percent escape in the path") { request = get("/x%4"); }
  SUBCASE("a target that is not a path") { request = get("x/y"); }
  SUBCASE("a target that is only a query") { request = get("?a=1"); }
  SUBCASE("a broken header line") { request = "GET / HTTP/1.1\r\nNo colon here\r\n\r\n"; }
  SUBCASE("a bad Content-Length") { request = "POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n"; }
  Client client(running.port());
  auto response = round_trip(client, request);
  REQUIRE(response);
  CHECK(response->status == 400);
  CHECK(client.wait_closed());
  CHECK(recorder.requests().empty());
}

TEST_CASE("unknown methods and the absolute form reach the handler") {
  Recorder recorder;
  Running running(recorder.handler());
  Client client(running.port());
  auto brew = round_trip(client, "BREW /pot?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
  REQUIRE(brew);
  CHECK(brew->body == "BREW /pot");
  auto absolute = round_trip(client, "GET http://example.test/abs?y=2 HTTP/1.1\r\nHost: t\r\n\r\n");
  REQUIRE(absolute);
  CHECK(absolute->body == "GET /abs");
  CHECK(recorder.requests().at(1).query_param("y") == "2");
  auto bare = round_trip(client, "GET http://example.test?z=3 HTTP/1.1\r\nHost: t\r\n\r\n");
  REQUIRE(bare);
  CHECK(bare->body == "GET /");
  CHECK(recorder.requests().at(2).query_param("z") == "3");
}

TEST_CASE("a slow client is cut off by request_timeout") {
  Recorder recorder;
  HttpLimits limits;
  limits.request_timeout = 500ms;
  Running running(recorder.handler(), limits);
  Client client(running.port());

  const auto start = Clock::now();
  bool sent = client.send("GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
  // One byte per 100 ms: the request never completes, and each byte alone is on time.
  while (sent && !client.closed() && Clock::now() - start < 3000ms) {
    sent = client.send("a", 200ms);
    const auto pause = Clock::now() + 100ms;
    while (!client.closed() && Clock::now() < pause) client.poll();
  }
  const auto elapsed = Clock::now() - start;
  const bool closed = client.closed() || !sent || client.wait_closed(100ms);
  CHECK(closed);
  CHECK(elapsed >= 400ms);  // the timer does not fire early...
  CHECK(elapsed < 3000ms);  // ...and the server does not wait forever
  if (!client.received().empty()) CHECK(client.received().rfind("HTTP/1.1 408 ", 0) == 0);
  CHECK(recorder.requests().empty());
  CHECK(running.server().stats().request_timeouts == 1);
}

TEST_CASE("silent and idle connections are closed without an answer") {
  Recorder recorder;
  HttpLimits limits;
  limits.request_timeout = 300ms;
  limits.idle_timeout = 300ms;
  Running running(recorder.handler(), limits);

  Client silent(running.port());  // never sends a byte
  Client idle(running.port());
  REQUIRE(round_trip(idle, get("/")));
  CHECK(silent.wait_closed());
  CHECK(idle.wait_closed());
  CHECK(silent.received().empty());
  CHECK(running.server().stats().request_timeouts == 0);
  CHECK(eventually([&] { return running.server().connections() == 0; }));
}

TEST_CASE("over max_connections a connection gets 503 or a close; the others keep working") {
  Recorder recorder;
  HttpLimits limits;
  limits.max_connections = 2;
  Running running(recorder.handler(), limits);

  Client first(running.port());
  Client second(running.port());
  REQUIRE(round_trip(first, get("/1")));
  REQUIRE(round_trip(second, get("/2")));
  CHECK(running.server().connections() == 2);

  Client third(running.port());
  third.send(get("/3"));  // may fail if the server already closed it
  CHECK(third.wait_closed());
  if (!third.received().empty()) CHECK(third.received().rfind("HTTP/1.1 503 ", 0) == 0);

  auto again_first = round_trip(first, get("/1b"));
  auto again_second = round_trip(second, get("/2b"));
  REQUIRE(again_first);
  REQUIRE(again_second);
  CHECK(again_first->body == "GET /1b");
  CHECK(again_second->body == "GET /2b");
  CHECK(running.server().stats().connections_rejected == 1);

  // A slot freed by a leaving client is available again.
  first.close();
  REQUIRE(eventually([&] { return running.server().connections() == 1; }));
  Client fourth(running.port());
  auto fourth_response = round_trip(fourth, get("/4"));
  REQUIRE(fourth_response);
  CHECK(fourth_response->status == 200);

  for (const auto& request : recorder.requests()) CHECK(request.path != "/3");
}

TEST_CASE("a throwing handler gives 500 and the server keeps serving") {
  Recorder recorder;
  Running running(recorder.handler());
  Client client(running.port());
  auto thrown = round_trip(client, get("/throw"));
  REQUIRE(thrown);
  CHECK(thrown->status == 500);
  auto thrown_int = round_trip(client, get("/throw-int"));
  REQUIRE(thrown_int);
  CHECK(thrown_int->status == 500);
  auto fine = round_trip(client, get("/fine"));  // same connection: 500 is a normal answer
  REQUIRE(fine);
  CHECK(fine->status == 200);

  const auto stats = running.server().stats();
  CHECK(stats.handler_failures == 2);
  CHECK(stats.responses_5xx == 2);
  CHECK(stats.responses_2xx == 1);
}

TEST_CASE("the handler's response is framed safely") {
  Running running([](const HttpRequest& request) {
    HttpResponse response;
    if (request.path == "/injected") {
      response.headers.emplace_back("X-Evil", "a\r\nSet-Cookie: x=1");
    } else if (request.path == "/status-42") {
      response.status = 42;
    } else if (request.path == "/no-content") {
      response.status = 204;
      response.body = "ignored";
    } else if (request.path == "/framing") {
      response.status = 201;
      response.content_type = "application/json";
      response.body = "{}";
      response.headers = {
          {"Content-Length", "999"}, {"Server", "custom"}, {"X-A", "1"}, {"X-A", "2"}};
    } else if (request.path == "/bye") {
      response.headers.emplace_back("Connection", "close");
    }
    return response;
  });
  Client client(running.port());

  auto injected = round_trip(client, get("/injected"));
  REQUIRE(injected);
  CHECK(injected->status == 500);
  CHECK_FALSE(injected->header("set-cookie"));
  auto status = round_trip(client, get("/status-42"));
  REQUIRE(status);
  CHECK(status->status == 500);

  auto no_content = round_trip(client, get("/no-content"));
  REQUIRE(no_content);
  CHECK(no_content->status == 204);
  CHECK_FALSE(no_content->header("content-length"));
  CHECK(no_content->body.empty());

  auto framing = round_trip(client, get("/framing"));
  REQUIRE(framing);
  CHECK(framing->status == 201);
  CHECK(framing->header("content-length") == "2");
  CHECK(framing->header("content-type") == "application/json");
  CHECK(framing->header("server") == "custom");
  CHECK(framing->head.find("X-A: 1\r\nX-A: 2") != std::string::npos);
  CHECK(framing->body == "{}");

  auto bye = round_trip(client, get("/bye"));
  REQUIRE(bye);
  CHECK(bye->status == 200);
  CHECK(client.wait_closed());
  CHECK(running.server().stats().handler_failures == 2);
}

TEST_CASE("stop() closes the listener and every connection, and run() returns") {
  Recorder recorder;
  Running running(recorder.handler());
  const std::uint16_t port = running.port();
  Client idle(port);
  REQUIRE(round_trip(idle, get("/")));
  Client partial(port);
  REQUIRE(partial.send("GET /never-finished HTTP/1.1\r\nHo"));
  REQUIRE(eventually([&] { return running.server().connections() == 2; }));

  const auto start = Clock::now();
  CHECK(running.stop_and_join());
  CHECK(Clock::now() - start < 2000ms);
  CHECK(idle.wait_closed(1000ms));
  CHECK(partial.wait_closed(1000ms));
  CHECK(running.server().connections() == 0);
  CHECK(recorder.requests().size() == 1);

  net::io_context io;
  tcp::socket probe(io);
  boost::system::error_code ec;
  probe.connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port), ec);
  CHECK(ec);                // nothing listens any more
  running.server().stop();  // idempotent
}

TEST_CASE("listen errors name the address and the reason") {
  net::io_context io;
  HttpServer first(io, {}, [](const HttpRequest&) { return HttpResponse{}; });
  REQUIRE(first.listen("127.0.0.1", 0).has_value());
  const std::uint16_t port = first.port();
  CHECK(port != 0);

  HttpServer second(io, {}, [](const HttpRequest&) { return HttpResponse{}; });
  auto busy = second.listen("127.0.0.1", port);
  REQUIRE_FALSE(busy.has_value());
  const std::string where = "127.0.0.1:" + std::to_string(port);
  CHECK(busy.error().message.find(where) != std::string::npos);
  CHECK(busy.error().message.find("in use") != std::string::npos);

  auto again = first.listen("127.0.0.1", 0);
  CHECK_FALSE(again.has_value());

  HttpServer third(io, {}, [](const HttpRequest&) { return HttpResponse{}; });
  auto bad = third.listen("not-an-ip", 9100);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("not-an-ip:9100") != std::string::npos);
  CHECK(third.port() == 0);
}
