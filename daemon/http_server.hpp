// The daemon's embedded HTTP/1.1 server: /metrics, health endpoints and the JSON API.
// Hardened against misbehaving clients; Beast stays inside http_server.cpp.
#pragma once

#include "pipeline/error.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace replywatch::daemon {

using HttpFields = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // as sent, so unknown methods reach the handler too
  std::string target;  // as sent
  std::string path;    // percent-decoded; '+' stays '+'
  HttpFields query;    // percent-decoded, '+' read as space, in order of appearance
  HttpFields headers;  // names lower-cased, in order of appearance, repeats kept
  std::string body;
  std::string remote;  // "127.0.0.1:53122" or "[::1]:53122"

  /// The first header named `lower_name` (which must be lower-case).
  std::optional<std::string_view> header(std::string_view lower_name) const;
  /// The first query parameter named `name`.
  std::optional<std::string> query_param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;  // 200..599; anything else is answered with 500
  std::string content_type = "text/plain; charset=utf-8";  // empty: no Content-Type
  std::string body;
  /// Extra headers. Content-Length and Transfer-Encoding are the server's and are ignored;
  /// "Connection: close" closes after this response; Server and Date replace the defaults.
  /// A name or value that cannot be sent safely (CR, LF, NUL, bad name) turns the
  /// response into a 500.
  HttpFields headers;
};

/// Runs on the io_context thread. Exceptions are caught and answered with 500.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpLimits {
  std::size_t max_header_bytes = 8 * 1024;  // request line + headers; over it: 431
  std::size_t max_body_bytes = 1 << 20;     // over it: 413; see HttpServer::set_body_limit
  /// Whole request, from its first byte (from accept for the first request) to the end of
  /// its body; over it: 408 and close. Also bounds each response write.
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds idle_timeout{30000};  // keep-alive wait for the next request
  std::size_t max_connections = 256;              // beyond it a connection gets 503 and is closed
};

/// Monotonic counters, cheap to read from any thread.
struct HttpStats {
  std::uint64_t responses_2xx = 0;  // final responses sent, by status class,
  std::uint64_t responses_3xx = 0;  // including the server's own 400/408/413/431/503
  std::uint64_t responses_4xx = 0;
  std::uint64_t responses_5xx = 0;
  std::uint64_t handler_failures = 0;      // threw, or returned an unsendable response
  std::uint64_t connections_accepted = 0;  // served connections
  std::uint64_t connections_rejected = 0;  // over max_connections
  std::uint64_t request_timeouts = 0;      // requests cut by request_timeout
};

/// HTTP/1.1 with keep-alive and pipelining, for one io_context run by one thread.
/// listen(), set_body_limit() and the destructor belong to that thread or to the time
/// before/after it runs; stop(), port(), connections() and stats() are safe from any thread.
/// Destroy the server before its io_context.
class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpLimits limits, HttpHandler handler);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds a numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]"); port 0 picks a
  /// free one (see port()). Errors name "address:port" and the reason. Call once.
  Result<void> listen(const std::string& address, std::uint16_t port);

  /// The bound port, 0 before a successful listen().
  std::uint16_t port() const;

  /// Closes the acceptor and every connection; no handler runs after it. Idempotent.
  /// From another thread the closing is posted to the io_context, so run() returns once
  /// it has happened.
  void stop();

  /// Open served connections (rejected ones are not counted).
  std::size_t connections() const;

  HttpStats stats() const;

  /// Requests whose decoded path starts with `path_prefix` may carry up to `bytes` of body
  /// instead of max_body_bytes (the longest matching prefix wins), e.g. webhooks.
  void set_body_limit(std::string path_prefix, std::size_t bytes);

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with in-flight connections, which may outlive us
};

/// Percent-decodes `text`; '+' becomes a space when `plus_is_space` (query strings).
/// nullopt when a '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

/// Splits "a=1&b=x%20y&flag" into decoded pairs (a missing '=' gives an empty value, empty
/// segments are skipped). nullopt on an invalid percent escape.
std::optional<HttpFields> parse_query(std::string_view query);

}  // namespace replywatch::daemon
