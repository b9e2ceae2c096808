// The HTTP server's machinery: an accept loop and one Session per connection, written in the
// callback style of the Boost 1.81 Beast examples (every async call gets an explicit handler).
#include "daemon/http_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <limits>
#include <unordered_set>

namespace replywatch::daemon {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using beast::error_code;

namespace {

constexpr std::size_t kReadChunk = 4096;
// A buffer grown by one large request is given back before the connection idles, so 256
// keep-alive connections cannot each pin a megabyte.
constexpr std::size_t kIdleBufferCapacity = 16 * 1024;
// After an error response the client may still be sending; reading (and discarding) for a
// moment before closing keeps the kernel from answering with a reset that would destroy
// the response before the client reads it.
constexpr std::chrono::milliseconds kMaxLinger{1000};
constexpr std::size_t kMaxLingerBytes = 256 * 1024;
// Accept errors are mostly descriptor exhaustion, which retrying at once would spin on.
constexpr std::chrono::milliseconds kAcceptRetry{50};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 9110 token characters, the only ones a field name may hold.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool valid_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), is_tchar);
}

// CR or LF would let a value end the header early (response splitting); NUL breaks parsers.
bool valid_field_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// True when the comma-separated `list` holds `token` (case-insensitive), as in
// "Connection: keep-alive, close".
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// IMF-fixdate by hand: strftime's day and month names follow the process locale.
std::string http_date(std::time_t now) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&now, &tm);
  char out[32];
  std::snprintf(out, sizeof out, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return out;
}

std::string format_endpoint(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string port = std::to_string(endpoint.port());
  if (address.is_v6()) return "[" + address.to_string() + "]:" + port;
  return address.to_string() + ":" + port;
}

struct Target {
  std::string path;
  HttpFields query;
};

// Origin form ("/p?q"), absolute form ("http://host/p?q", which HTTP/1.1 servers must accept)
// and the asterisk form of OPTIONS. Anything else, or a bad percent escape, is a 400.
std::optional<Target> parse_target(std::string_view target) {
  if (target == "*") return Target{"*", {}};
  bool absolute = false;
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme)) {
      target.remove_prefix(scheme.size());
      const std::size_t slash = target.find_first_of("/?#");
      target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
      absolute = true;
      break;
    }
  }
  std::string_view raw_path = target.substr(0, target.find('#'));
  std::string_view raw_query;
  if (const std::size_t mark = raw_path.find('?'); mark != std::string_view::npos) {
    raw_query = raw_path.substr(mark + 1);
    raw_path = raw_path.substr(0, mark);
  }
  if (absolute && raw_path.empty()) raw_path = "/";  // "http://host" and "http://host?x"
  if (raw_path.empty() || raw_path.front() != '/') return std::nullopt;
  auto path = percent_decode(raw_path, false);
  auto query = parse_query(raw_query);
  if (!path || !query) return std::nullopt;
  return Target{std::move(*path), std::move(*query)};
}

class Session;

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(net::io_context& io, HttpLimits limits, HttpHandler handler)
      : io_(io), limits_(limits), handler_(std::move(handler)), acceptor_(io), retry_timer_(io) {}

  Result<void> listen(const std::string& address, std::uint16_t port);
  void shutdown();
  void do_accept();
  void on_accept(error_code ec, tcp::socket socket);

  std::size_t body_limit_for(std::string_view path) const;
  std::size_t largest_body_limit() const;
  void count_response(unsigned status);

  static void bump(std::atomic<std::uint64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
  }

  net::io_context& io_;
  const HttpLimits limits_;
  const HttpHandler handler_;
  std::vector<std::pair<std::string, std::size_t>> body_limits_;  // path prefix → bytes
  tcp::acceptor acceptor_;
  net::steady_timer retry_timer_;
  std::unordered_set<Session*> sessions_;  // every live connection, so stop() can close it
  std::size_t rejecting_ = 0;              // connections being sent a 503
  bool listening_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint16_t> port_{0};
  std::atomic<std::size_t> active_{0};

  std::atomic<std::uint64_t> responses_2xx_{0};
  std::atomic<std::uint64_t> responses_3xx_{0};
  std::atomic<std::uint64_t> responses_4xx_{0};
  std::atomic<std::uint64_t> responses_5xx_{0};
  std::atomic<std::uint64_t> handler_failures_{0};
  std::atomic<std::uint64_t> connections_accepted_{0};
  std::atomic<std::uint64_t> connections_rejected_{0};
  std::atomic<std::uint64_t> request_timeouts_{0};
};

namespace {

// One connection. Phases: idle (tcp_stream timeout idle_timeout, closes silently), request
// (own timer, request_timeout, answers 408), write (tcp_stream timeout request_timeout),
// linger (half-closed, draining). Every completion handler checks closed_ first so that
// nothing is re-armed once stop() has closed the connection.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<HttpServer::Impl> server, bool served)
      : server_(std::move(server)),
        stream_(std::move(socket)),
        deadline_(server_->io_),
        served_(served) {
    error_code ec;
    const auto remote = stream_.socket().remote_endpoint(ec);
    remote_ = ec ? std::string("unknown") : format_endpoint(remote);
    server_->sessions_.insert(this);
    if (served_) {
      server_->active_.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++server_->rejecting_;
    }
  }

  ~Session() {
    server_->sessions_.erase(this);
    if (served_) {
      server_->active_.fetch_sub(1, std::memory_order_relaxed);
    } else {
      --server_->rejecting_;
    }
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The first request's clock starts at accept, so a silent connection cannot sit on a slot.
  void run() { read_request(); }

  void reject() {
    set_plain(503, "too many connections", 11, false, false);
    res_.set(http::field::retry_after, "1");
    send();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    in_request_ = false;
    deadline_.cancel();
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void wait_for_request() {
    if (closed_ || server_->stopping_) return close();
    if (buffer_.size() > 0) return read_request();  // pipelined
    if (buffer_.capacity() > kIdleBufferCapacity) buffer_.shrink_to_fit();
    stream_.expires_after(server_->limits_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            beast::bind_front_handler(&Session::on_idle_read, shared_from_this()));
  }

  void on_idle_read(error_code ec, std::size_t bytes) {
    if (closed_) return;
    if (ec) return close();  // idle timeout, the client left, or a reset: nothing to answer
    buffer_.commit(bytes);
    read_request();
  }

  void read_request() {
    if (closed_ || server_->stopping_) return close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
        server_->limits_.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    // The route, and with it the real limit, is known only after the header (on_header).
    parser_->body_limit(server_->largest_body_limit());
    in_request_ = true;
    timed_out_ = false;
    ++generation_;
    stream_.expires_never();
    deadline_.expires_after(server_->limits_.request_timeout);
    deadline_.async_wait(
        beast::bind_front_handler(&Session::on_deadline, shared_from_this(), generation_));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  // A cancelled read keeps the socket open (unlike a tcp_stream timeout), so 408 can be sent.
  void on_deadline(std::uint64_t generation, error_code ec) {
    if (ec || closed_ || !in_request_ || generation != generation_) return;
    timed_out_ = true;
    stream_.cancel();
  }

  void on_header(error_code ec, std::size_t) {
    if (closed_) return;
    if (ec || timed_out_) return on_read_failed(ec);
    auto target = parse_target(parser_->get().target());
    if (!target) {
      end_request();
      return send_error(400, "bad request target");
    }
    target_ = std::move(*target);
    const std::size_t limit = server_->body_limit_for(target_.path);
    if (const auto length = parser_->content_length(); length && *length > limit) {
      end_request();
      return send_error(413, "request body too large");
    }
    parser_->body_limit(limit);  // chunked bodies are checked as they arrive
    if (parser_->is_done()) return serve();
    const auto expect = parser_->get()[http::field::expect];
    if (parser_->get().version() >= 11 && iequals(expect, "100-continue")) {
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       beast::bind_front_handler(&Session::on_continue, shared_from_this()));
      return;
    }
    read_body();
  }

  void on_continue(error_code ec, std::size_t) {
    if (closed_) return;
    if (ec || timed_out_) return on_read_failed(ec);
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(error_code ec, std::size_t) {
    if (closed_) return;
    if (ec || timed_out_) return on_read_failed(ec);
    serve();
  }

  void end_request() {
    in_request_ = false;
    deadline_.cancel();
  }

  void on_read_failed(error_code ec) {
    const bool timed_out = timed_out_;
    end_request();
    if (server_->stopping_) return close();
    if (timed_out) {
      // A connection that never sent a byte gets no answer: it asked nothing.
      if (!parser_->got_some() && buffer_.size() == 0) return close();
      HttpServer::Impl::bump(server_->request_timeouts_);
      return send_error(408, "request timeout");
    }
    if (ec == http::error::header_limit) return send_error(431, "request header too large");
    if (ec == http::error::body_limit) return send_error(413, "request body too large");
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) return close();
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      return send_error(400, "malformed request");
    }
    close();  // a reset or another socket error: nobody to answer
  }

  void serve() {
    end_request();
    if (server_->stopping_) return close();
    try {
      auto request = parser_->release();
      const unsigned version = request.version();
      const bool head = request.method() == http::verb::head;
      const bool keep_alive = request.keep_alive();
      HttpResponse out;
      bool ok = true;
      try {
        out = server_->handler_(to_http_request(request));
      } catch (...) {
        ok = false;
      }
      if (!ok || !fill_response(out, version, head, keep_alive)) {
        HttpServer::Impl::bump(server_->handler_failures_);
        set_plain(500, "internal server error", version, head, keep_alive);
      }
    } catch (...) {
      return close();  // out of memory while building either side: drop this connection only
    }
    send();
  }

  HttpRequest to_http_request(http::request<http::string_body>& request) {
    HttpRequest out;
    out.method = std::string(request.method_string());
    out.target = std::string(request.target());
    out.path = std::move(target_.path);
    out.query = std::move(target_.query);
    for (const auto& field : request) {
      out.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(request.body());
    out.remote = remote_;
    return out;
  }

  // False when the handler's answer cannot be framed as given; the caller sends 500 instead.
  bool fill_response(HttpResponse& out, unsigned version, bool head, bool keep_alive) {
    if (out.status < 200 || out.status > 599) return false;  // 1xx cannot be final
    if (!valid_field_value(out.content_type)) return false;
    for (const auto& [name, value] : out.headers) {
      if (!valid_field_name(name) || !valid_field_value(value)) return false;
    }
    start_response(static_cast<unsigned>(out.status), version);
    if (!out.content_type.empty()) res_.set(http::field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) {
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
      if (iequals(name, "connection")) {
        if (has_token(value, "close")) keep_alive = false;
        continue;
      }
      if (iequals(name, "server") || iequals(name, "date")) {
        res_.set(name, value);
      } else {
        res_.insert(name, value);
      }
    }
    finish_response(std::move(out.body), head, keep_alive);
    return true;
  }

  void set_plain(unsigned status, std::string_view text, unsigned version, bool head,
                 bool keep_alive) {
    start_response(status, version);
    res_.set(http::field::content_type, "text/plain; charset=utf-8");
    finish_response(std::string(text) + "\n", head, keep_alive);
  }

  void start_response(unsigned status, unsigned version) {
    res_ = {};
    res_.version(version);
    res_.result(status);
    res_.set(http::field::server, "replywatch");
    res_.set(http::field::date, http_date(std::time(nullptr)));
  }

  void finish_response(std::string body, bool head, bool keep_alive) {
    const unsigned status = res_.result_int();
    // 204 and 304 have no body by definition, and a Content-Length on 204 is forbidden.
    if (status != 204 && status != 304) {
      res_.content_length(body.size());
      if (!head) res_.body() = std::move(body);
    }
    res_.keep_alive(keep_alive && !server_->stopping_);
  }

  void send_error(unsigned status, std::string_view text) {
    try {
      set_plain(status, text, 11, false, false);
    } catch (...) {
      return close();
    }
    send();
  }

  void send() {
    if (closed_) return;
    server_->count_response(res_.result_int());
    stream_.expires_after(served_ ? server_->limits_.request_timeout : linger_time());
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(error_code ec, std::size_t) {
    if (closed_) return;
    if (ec) return close();
    if (!res_.keep_alive()) return linger();
    res_ = {};
    wait_for_request();
  }

  std::chrono::milliseconds linger_time() const {
    return std::min(server_->limits_.request_timeout, kMaxLinger);
  }

  void linger() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    res_ = {};
    buffer_.clear();
    lingered_ = 0;
    stream_.expires_after(linger_time());
    read_linger();
  }

  void read_linger() {
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            beast::bind_front_handler(&Session::on_linger, shared_from_this()));
  }

  void on_linger(error_code ec, std::size_t bytes) {
    if (closed_) return;
    lingered_ += bytes;
    if (ec || lingered_ > kMaxLingerBytes) return close();
    read_linger();
  }

  std::shared_ptr<HttpServer::Impl> server_;
  beast::tcp_stream stream_;
  net::steady_timer deadline_;  // request_timeout; see on_deadline
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;  // fresh per request
  http::response<http::string_body> res_;
  Target target_;
  std::string remote_;
  std::uint64_t generation_ = 0;  // tells a stale deadline from the current request's
  std::size_t lingered_ = 0;
  const bool served_;  // false: over max_connections, only answered with 503
  bool in_request_ = false;
  bool timed_out_ = false;
  bool closed_ = false;
};

}  // namespace

Result<void> HttpServer::Impl::listen(const std::string& address, std::uint16_t port) {
  std::string host = address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string where =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  if (stopping_) return make_error("cannot listen on " + where + ": the server is stopped");
  if (listening_) return make_error("cannot listen on " + where + ": already listening");
  error_code ec;
  const auto ip = net::ip::make_address(host, ec);
  if (ec) return make_error("cannot listen on " + where + ": not a numeric IP address");
  const tcp::endpoint endpoint(ip, port);
  auto fail = [&](const error_code& error) {
    error_code ignored;
    acceptor_.close(ignored);
    return make_error("cannot listen on " + where + ": " + error.message());
  };
  if (acceptor_.open(endpoint.protocol(), ec); ec) return fail(ec);
  // Lets a restarted daemon bind while old connections sit in TIME_WAIT; a live listener
  // on the port still makes bind fail.
  if (acceptor_.set_option(net::socket_base::reuse_address(true), ec); ec) return fail(ec);
  if (acceptor_.bind(endpoint, ec); ec) return fail(ec);
  if (acceptor_.listen(net::socket_base::max_listen_connections, ec); ec) return fail(ec);
  const auto local = acceptor_.local_endpoint(ec);
  if (ec) return fail(ec);
  port_ = local.port();
  listening_ = true;
  do_accept();
  return {};
}

void HttpServer::Impl::do_accept() {
  acceptor_.async_accept(beast::bind_front_handler(&Impl::on_accept, shared_from_this()));
}

void HttpServer::Impl::on_accept(error_code ec, tcp::socket socket) {
  if (stopping_ || !acceptor_.is_open()) return;
  if (ec) {
    retry_timer_.expires_after(kAcceptRetry);
    retry_timer_.async_wait([self = shared_from_this()](error_code wait_ec) {
      if (!wait_ec && !self->stopping_ && self->acceptor_.is_open()) self->do_accept();
    });
    return;
  }
  try {
    if (active_.load(std::memory_order_relaxed) < limits_.max_connections) {
      bump(connections_accepted_);
      std::make_shared<Session>(std::move(socket), shared_from_this(), true)->run();
    } else {
      bump(connections_rejected_);
      // Past this many pending 503s a flood gets a bare close, so descriptors stay bounded.
      if (rejecting_ < std::max<std::size_t>(limits_.max_connections, 16)) {
        std::make_shared<Session>(std::move(socket), shared_from_this(), false)->reject();
      }
    }
  } catch (...) {
    // Out of memory for one connection: it is dropped (its socket closes), the listener goes on.
  }
  do_accept();
}

void HttpServer::Impl::shutdown() {
  error_code ec;
  acceptor_.close(ec);
  retry_timer_.cancel();
  // close() only cancels; sessions leave the set later, from their completion handlers.
  for (Session* session : sessions_) session->close();
}

std::size_t HttpServer::Impl::body_limit_for(std::string_view path) const {
  std::size_t limit = limits_.max_body_bytes;
  std::optional<std::size_t> matched;  // length of the longest prefix so far
  for (const auto& [prefix, bytes] : body_limits_) {
    if (path.substr(0, prefix.size()) == prefix && (!matched || prefix.size() > *matched)) {
      limit = bytes;
      matched = prefix.size();
    }
  }
  return limit;
}

std::size_t HttpServer::Impl::largest_body_limit() const {
  std::size_t limit = limits_.max_body_bytes;
  for (const auto& entry : body_limits_) limit = std::max(limit, entry.second);
  return limit;
}

void HttpServer::Impl::count_response(unsigned status) {
  switch (status / 100) {
    case 2:
      bump(responses_2xx_);
      break;
    case 3:
      bump(responses_3xx_);
      break;
    case 4:
      bump(responses_4xx_);
      break;
    case 5:
      bump(responses_5xx_);
      break;
    default:
      break;
  }
}

std::optional<std::string_view> HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return std::string_view(value);
  }
  return std::nullopt;
}

std::optional<std::string> HttpRequest::query_param(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return value;
  }
  return std::nullopt;
}

HttpServer::HttpServer(boost::asio::io_context& io, HttpLimits limits, HttpHandler handler)
    : impl_(std::make_shared<Impl>(io, limits, std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

Result<void> HttpServer::listen(const std::string& address, std::uint16_t port) {
  return impl_->listen(address, port);
}

std::uint16_t HttpServer::port() const { return impl_->port_; }

void HttpServer::stop() {
  // Set here, not in the posted work, so that no handler starts in between.
  impl_->stopping_ = true;
  net::dispatch(impl_->io_, [impl = impl_] { impl->shutdown(); });
}

std::size_t HttpServer::connections() const {
  return impl_->active_.load(std::memory_order_relaxed);
}

HttpStats HttpServer::stats() const {
  const Impl& s = *impl_;
  constexpr auto relaxed = std::memory_order_relaxed;
  HttpStats out;
  out.responses_2xx = s.responses_2xx_.load(relaxed);
  out.responses_3xx = s.responses_3xx_.load(relaxed);
  out.responses_4xx = s.responses_4xx_.load(relaxed);
  out.responses_5xx = s.responses_5xx_.load(relaxed);
  out.handler_failures = s.handler_failures_.load(relaxed);
  out.connections_accepted = s.connections_accepted_.load(relaxed);
  out.connections_rejected = s.connections_rejected_.load(relaxed);
  out.request_timeouts = s.request_timeouts_.load(relaxed);
  return out;
}

void HttpServer::set_body_limit(std::string path_prefix, std::size_t bytes) {
  for (auto& entry : impl_->body_limits_) {
    if (entry.first == path_prefix) {
      entry.second = bytes;
      return;
    }
  }
  impl_->body_limits_.emplace_back(std::move(path_prefix), bytes);
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<HttpFields> parse_query(std::string_view query) {
  HttpFields out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    if (!item.empty()) {
      const std::size_t eq = item.find('=');
      auto key = percent_decode(item.substr(0, eq), true);
      auto value = eq == std::string_view::npos ? std::optional<std::string>(std::string())
                                                : percent_decode(item.substr(eq + 1), true);
      if (!key || !value) return std::nullopt;
      out.emplace_back(std::move(*key), std::move(*value));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace replywatch::daemon
