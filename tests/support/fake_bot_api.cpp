// The fake Bot API's machinery: a request router over the update queue, and one Session per
// connection in the callback style of the Boost 1.81 Beast examples (explicit handlers).
#include "tests/support/fake_bot_api.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_set>
#include <utility>

namespace replywatch::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using beast::error_code;
using Clock = std::chrono::steady_clock;
using Fault = FakeBotApi::Fault;
using GetUpdatesCall = FakeBotApi::GetUpdatesCall;

namespace {

constexpr int kMaxLimit = 100;
// Enough history for a duplicate fault to re-deliver a full batch, bounded for long tests.
constexpr std::size_t kConfirmedKept = 100;
constexpr std::chrono::milliseconds kDefaultSlow{1000};
constexpr std::chrono::seconds kIoTimeout{30};  // a stuck client must not outlive a test
constexpr std::chrono::seconds kStopWait{5};

// ---- JSON: just enough to read request bodies and to check pushed updates ----

struct Json {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool flag = false;
  std::string text;  // a string's decoded value, or a number as written
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  // The last of repeated keys wins, as in most parsers.
  const Json* member(std::string_view name) const {
    const Json* found = nullptr;
    for (const auto& [key, value] : members) {
      if (key == name) found = &value;
    }
    return found;
  }
};

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  std::optional<Json> read_document() {
    Json value;
    skip_space();
    if (!read_value(value, 0)) return std::nullopt;
    skip_space();
    if (pos_ != text_.size()) return std::nullopt;
    return value;
  }

 private:
  // Deep nesting in a test payload is a mistake, and recursion must stay bounded.
  static constexpr int kMaxDepth = 128;

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  bool consume(char c) {
    if (peek() != c || at_end()) return false;
    ++pos_;
    return true;
  }

  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) {
      ++pos_;
    }
  }

  bool read_value(Json& out, int depth) {
    if (depth > kMaxDepth || at_end()) return false;
    switch (peek()) {
      case '{':
        return read_object(out, depth);
      case '[':
        return read_array(out, depth);
      case '"':
        out.kind = Json::Kind::string;
        return read_string(out.text);
      case 't':
        out.kind = Json::Kind::boolean;
        out.flag = true;
        return read_word("true");
      case 'f':
        out.kind = Json::Kind::boolean;
        return read_word("false");
      case 'n':
        return read_word("null");
      default:
        return read_number(out);
    }
  }

  bool read_word(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool read_object(Json& out, int depth) {
    out.kind = Json::Kind::object;
    ++pos_;
    skip_space();
    if (consume('}')) return true;
    for (;;) {
      skip_space();
      std::string key;
      if (peek() != '"' || !read_string(key)) return false;
      skip_space();
      if (!consume(':')) return false;
      skip_space();
      Json value;
      if (!read_value(value, depth + 1)) return false;
      out.members.emplace_back(std::move(key), std::move(value));
      skip_space();
      if (consume('}')) return true;
      if (!consume(',')) return false;
    }
  }

  bool read_array(Json& out, int depth) {
    out.kind = Json::Kind::array;
    ++pos_;
    skip_space();
    if (consume(']')) return true;
    for (;;) {
      skip_space();
      Json value;
      if (!read_value(value, depth + 1)) return false;
      out.items.push_back(std::move(value));
      skip_space();
      if (consume(']')) return true;
      if (!consume(',')) return false;
    }
  }

  bool read_hex4(std::uint32_t& out) {
    if (text_.size() - pos_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit < 0) return false;
      out = out * 16 + static_cast<std::uint32_t>(digit);
    }
    return true;
  }

  bool read_string(std::string& out) {
    ++pos_;  // the opening quote
    for (;;) {
      if (at_end()) return false;
      const char c = text_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (at_end()) return false;
      const char escape = text_[pos_++];
      switch (escape) {
        case '"':
        case '\\':
        case '/':
          out.push_back(escape);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!read_hex4(cp)) return false;
          // A lone surrogate is valid JSON grammar; only a proper pair becomes one code point.
          if (cp >= 0xD800 && cp <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
            const std::size_t mark = pos_;
            pos_ += 2;
            std::uint32_t low = 0;
            if (!read_hex4(low)) return false;
            if (low >= 0xDC00 && low <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else {
              pos_ = mark;
            }
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
  }

  bool read_number(Json& out) {
    const std::size_t start = pos_;
    consume('-');
    if (consume('0')) {
      // no further integer digits after a leading zero
    } else if (is_digit(peek())) {
      while (is_digit(peek())) ++pos_;
    } else {
      return false;
    }
    if (consume('.')) {
      if (!is_digit(peek())) return false;
      while (is_digit(peek())) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!is_digit(peek())) return false;
      while (is_digit(peek())) ++pos_;
    }
    out.kind = Json::Kind::number;
    out.text = std::string(text_.substr(start, pos_ - start));
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

std::string error_body(int code, std::string_view description, std::string_view parameters = {}) {
  std::string out = "{\"ok\":false,\"error_code\":" + std::to_string(code) +
                    ",\"description\":" + json_quote(description);
  if (!parameters.empty()) out += ",\"parameters\":" + std::string(parameters);
  return out + "}";
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

// ---- request parameters ----

using Params = std::vector<std::pair<std::string, Json>>;

std::optional<std::string> url_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] != '%') {
      out.push_back(text[i]);
    } else {
      unsigned value = 0;
      if (i + 2 >= text.size()) return std::nullopt;
      const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
      if (ec != std::errc() || end != text.data() + i + 3) return std::nullopt;
      out.push_back(static_cast<char>(value));
      i += 2;
    }
  }
  return out;
}

// Query strings and form bodies carry every value as a string, as Telegram clients send them.
bool add_form_params(std::string_view text, Params& out) {
  while (!text.empty()) {
    const std::size_t amp = text.find('&');
    const std::string_view item = text.substr(0, amp);
    if (!item.empty()) {
      const std::size_t eq = item.find('=');
      auto key = url_decode(item.substr(0, eq));
      const std::string_view raw =
          eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
      auto value = url_decode(raw);
      if (!key || !value) return false;
      Json json;
      json.kind = Json::Kind::string;
      json.text = std::move(*value);
      out.emplace_back(std::move(*key), std::move(json));
    }
    if (amp == std::string_view::npos) break;
    text.remove_prefix(amp + 1);
  }
  return true;
}

const Json* find_param(const Params& params, std::string_view name) {
  const Json* found = nullptr;
  for (const auto& [key, value] : params) {
    if (key == name) found = &value;
  }
  return found;
}

// Numbers arrive as JSON numbers or as strings ("5"); either must be a whole integer.
template <class Int>
bool int_param(const Params& params, std::string_view name, std::optional<Int>& out) {
  const Json* value = find_param(params, name);
  if (value == nullptr) return true;
  if (value->kind != Json::Kind::number && value->kind != Json::Kind::string) return false;
  const std::string& text = value->text;
  Int number{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return false;
  out = number;
  return true;
}

bool bool_param(const Params& params, std::string_view name) {
  const Json* value = find_param(params, name);
  if (value == nullptr) return false;
  if (value->kind == Json::Kind::boolean) return value->flag;
  const std::string text = lower(value->text);
  return text == "true" || text == "1";
}

// A JSON array of strings, or (in queries and forms) a string holding one.
bool list_param(const Params& params, std::string_view name,
                std::optional<std::vector<std::string>>& out) {
  const Json* value = find_param(params, name);
  if (value == nullptr) return true;
  std::optional<Json> parsed;
  if (value->kind == Json::Kind::string) {
    parsed = JsonReader(value->text).read_document();
    if (!parsed) return false;
    value = &*parsed;
  }
  if (value->kind != Json::Kind::array) return false;
  std::vector<std::string> list;
  for (const Json& item : value->items) {
    if (item.kind != Json::Kind::string) return false;
    list.push_back(item.text);
  }
  out = std::move(list);
  return true;
}

struct Request {
  std::string verb;
  std::string path;
  std::string query;
  std::string content_type;  // lower-cased, without parameters
  std::string body;
};

struct Update {
  std::int64_t id = 0;
  std::string json;
};

struct PollParams {
  std::size_t call = 0;  // index into the call log
  std::optional<std::int64_t> offset;
  std::size_t limit = static_cast<std::size_t>(kMaxLimit);
  std::chrono::seconds timeout{0};
  bool duplicate = false;
  Clock::time_point deadline;
};

// What a session does with a request once the router has looked at it.
struct Action {
  enum class Kind { respond, reset, truncate, hold, delay };
  Kind kind = Kind::respond;
  int status = 200;
  std::string body;
  PollParams poll;                    // hold, delay
  std::chrono::milliseconds delay{};  // delay
};

Action respond(int status, std::string body) {
  Action out;
  out.status = status;
  out.body = std::move(body);
  return out;
}

// The io thread's view of a connection, so the router can wake or preempt a held poll.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;
  virtual void wake() = 0;  // an update arrived: a held poll looks again
  virtual void kick() = 0;  // a newer getUpdates arrived: a held poll answers 409
};

}  // namespace

class FakeBotApi::Impl {
 public:
  explicit Impl(FakeBotApiOptions options);
  ~Impl();

  // ---- test thread ----
  // Numbers an update; queues it too when `queue`. Returns its id and text.
  std::pair<std::int64_t, std::string> push(std::string_view update_json, bool queue);
  void stop();

  // ---- io thread ----
  void start_accept();
  void shutdown();
  Action dispatch(const Request& request, SessionBase* from);
  Action start_poll(PollParams poll, SessionBase* from);
  // The answer to a held poll, or nullopt to keep holding it.
  std::optional<std::string> poll_again(const PollParams& poll, bool deadline_passed);
  void finish_call(std::size_t call, int status, std::vector<std::int64_t> ids = {});
  void release_poller(SessionBase* session) {
    if (poller_ == session) poller_ = nullptr;
  }

  const FakeBotApiOptions options_;
  std::string scheme_;
  std::optional<ssl::context> tls_;

  mutable std::mutex mutex_;  // guards the state down to webhook_url_
  mutable std::condition_variable changed_;  // calls_ or confirmed_offset_ moved
  std::int64_t next_id_;
  std::deque<Update> pending_;
  std::deque<Update> confirmed_;  // the newest confirmed, for duplicate faults
  std::int64_t confirmed_offset_ = 0;
  std::deque<std::pair<Fault, std::chrono::milliseconds>> faults_;
  std::vector<GetUpdatesCall> calls_;
  std::optional<std::vector<std::string>> allowed_updates_;
  std::map<std::string, std::size_t> method_calls_;  // lower-cased method names
  std::size_t unauthorized_ = 0;
  std::string webhook_url_;

  // io thread only
  std::unordered_set<SessionBase*> sessions_;
  SessionBase* poller_ = nullptr;  // the session holding a long poll
  bool stopping_ = false;

  std::atomic<bool> finished_{false};  // io_.run() has returned

  // Declared after everything a session touches: a session still queued when the io_context
  // is destroyed dies with it and may unregister itself.
  net::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::uint16_t port_ = 0;
  std::thread thread_;

 private:
  Action get_updates(const Request& request, const Params& params, SessionBase* from);
  Action set_webhook(const Params& params, bool set);
  std::string get_me() const;
  void confirm(std::int64_t offset);  // with mutex_ held
  // The updates an answer carries, with mutex_ held; empty when none are due.
  std::vector<Update> select(const PollParams& poll) const;
  std::string result_body(std::size_t call, const std::vector<Update>& updates);  // locks
  void on_accept(error_code ec, tcp::socket socket);
};

namespace {

// One connection. Stream is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  Session(FakeBotApi::Impl& api, tcp::socket&& socket)
      : api_(api), stream_(make_stream(std::move(socket), api)), timer_(api.io_) {}

  ~Session() override {
    api_.sessions_.erase(this);
    api_.release_poller(this);
  }

  void start() {
    api_.sessions_.insert(this);
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
      stream_.async_handshake(ssl::stream_base::server,
                              beast::bind_front_handler(&Session::on_handshake, self()));
    } else {
      read_request();
    }
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    holding_ = false;
    api_.release_poller(this);
    timer_.cancel();
    auto& socket = beast::get_lowest_layer(stream_).socket();
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  void wake() override {
    if (holding_) timer_.cancel();
  }

  void kick() override {
    if (!holding_) return;
    kicked_ = true;
    timer_.cancel();
  }

 private:
  static Stream make_stream(tcp::socket&& socket, FakeBotApi::Impl& api) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *api.tls_);
    } else {
      return Stream(std::move(socket));
    }
  }

  std::shared_ptr<Session> self() { return this->shared_from_this(); }

  void on_handshake(error_code ec) {
    if (closed_) return;
    if (ec) return close();  // e.g. a client that does not trust our CA
    read_request();
  }

  void read_request() {
    parser_.emplace();
    parser_->body_limit(1 << 20);
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, self()));
  }

  void on_read(error_code ec, std::size_t) {
    if (closed_) return;
    if (ec) return close();
    const auto& message = parser_->get();
    keep_alive_ = message.keep_alive();
    Request request;
    request.verb = std::string(message.method_string());
    const std::string_view target = message.target();
    const std::size_t mark = target.find('?');
    request.path = std::string(target.substr(0, mark));
    if (mark != std::string_view::npos) request.query = std::string(target.substr(mark + 1));
    const std::string_view type = message[http::field::content_type];
    request.content_type = lower(type.substr(0, type.find(';')));
    while (!request.content_type.empty() && request.content_type.back() == ' ') {
      request.content_type.pop_back();
    }
    request.body = message.body();
    execute(api_.dispatch(request, this));
  }

  void execute(Action action) {
    switch (action.kind) {
      case Action::Kind::respond:
        return send(action.status, std::move(action.body));
      case Action::Kind::reset:
        return reset();
      case Action::Kind::truncate:
        return send_truncated(action.body);
      case Action::Kind::hold:
        poll_ = action.poll;
        holding_ = true;
        return wait_for_updates();
      case Action::Kind::delay:
        poll_ = action.poll;
        timer_.expires_after(action.delay);
        timer_.async_wait(beast::bind_front_handler(&Session::on_delay, self()));
        return;
    }
  }

  void on_delay(error_code) {
    if (closed_) return;
    execute(api_.start_poll(poll_, this));
  }

  void wait_for_updates() {
    timer_.expires_at(poll_.deadline);
    timer_.async_wait(beast::bind_front_handler(&Session::on_poll_timer, self()));
  }

  // Every way out of a held poll (an update, the deadline, a newer poll) passes here, so a
  // cancel racing with expiry cannot answer twice.
  void on_poll_timer(error_code) {
    if (closed_ || !holding_) return;
    if (kicked_) {
      kicked_ = false;
      holding_ = false;
      api_.finish_call(poll_.call, 409);
      return send(409, error_body(409,
                                  "Conflict: terminated by other getUpdates request; make sure "
                                  "that only one bot instance is running"));
    }
    auto body = api_.poll_again(poll_, Clock::now() >= poll_.deadline);
    if (!body) return wait_for_updates();
    holding_ = false;
    api_.release_poller(this);
    send(200, std::move(*body));
  }

  void send(int status, std::string body) {
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(status));
    res_.set(http::field::server, "fake-bot-api");
    res_.set(http::field::content_type, "application/json");
    res_.keep_alive(keep_alive_);
    res_.body() = std::move(body);
    res_.prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    http::async_write(stream_, res_, beast::bind_front_handler(&Session::on_write, self()));
  }

  void on_write(error_code ec, std::size_t) {
    if (closed_) return;
    if (ec || !keep_alive_) return close();
    read_request();
  }

  // Framed as a complete answer so that the client waits for the rest and finds it missing.
  void send_truncated(const std::string& body) {
    raw_ = "HTTP/1.1 200 OK\r\nServer: fake-bot-api\r\nContent-Type: application/json\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           body.substr(0, body.size() / 2);
    beast::get_lowest_layer(stream_).expires_after(kIoTimeout);
    net::async_write(stream_, net::buffer(raw_),
                     beast::bind_front_handler(&Session::on_truncated, self()));
  }

  void on_truncated(error_code, std::size_t) { close(); }

  // A zero linger makes close() send RST, what a crashed proxy looks like to the client.
  void reset() {
    error_code ignored;
    beast::get_lowest_layer(stream_).socket().set_option(net::socket_base::linger(true, 0),
                                                         ignored);
    closed_ = true;
    api_.release_poller(this);
    timer_.cancel();
    beast::get_lowest_layer(stream_).close();
  }

  FakeBotApi::Impl& api_;
  Stream stream_;
  net::steady_timer timer_;  // a slow fault's delay, or a held poll's deadline
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;  // fresh per request
  http::response<http::string_body> res_;
  std::string raw_;  // a truncated answer's bytes
  PollParams poll_;
  bool keep_alive_ = true;
  bool holding_ = false;
  bool kicked_ = false;
  bool closed_ = false;
};

}  // namespace

FakeBotApi::Impl::Impl(FakeBotApiOptions options)
    : options_(std::move(options)),
      scheme_(options_.tls ? "https" : "http"),
      next_id_(options_.first_update_id) {
  if (options_.tls) {
    tls_.emplace(ssl::context::tls_server);
    SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
    error_code ec;
    const std::string chain = options_.cert_dir + "/server.pem";
    const std::string key = options_.cert_dir + "/server.key";
    if (tls_->use_certificate_chain_file(chain, ec); ec) {
      throw std::runtime_error("fake Bot API: cannot load " + chain + ": " + ec.message());
    }
    if (tls_->use_private_key_file(key, ssl::context::pem, ec); ec) {
      throw std::runtime_error("fake Bot API: cannot load " + key + ": " + ec.message());
    }
  }
  error_code ec;
  const tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"), 0);
  auto check = [&](const char* step) {
    if (ec) throw std::runtime_error(std::string("fake Bot API: ") + step + ": " + ec.message());
  };
  acceptor_.open(endpoint.protocol(), ec);
  check("open");
  acceptor_.bind(endpoint, ec);
  check("bind 127.0.0.1:0");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  check("listen");
  port_ = acceptor_.local_endpoint(ec).port();
  check("local_endpoint");
  start_accept();
  thread_ = std::thread([this] {
    io_.run();
    finished_ = true;
  });
}

FakeBotApi::Impl::~Impl() { stop(); }

void FakeBotApi::Impl::stop() {
  if (!thread_.joinable()) return;
  net::post(io_, [this] { shutdown(); });
  // Closing every connection lets run() return on its own; a stuck one must not hang the test.
  const auto deadline = Clock::now() + kStopWait;
  while (!finished_ && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!finished_) io_.stop();
  thread_.join();
}

void FakeBotApi::Impl::start_accept() {
  acceptor_.async_accept(
      [this](error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void FakeBotApi::Impl::on_accept(error_code ec, tcp::socket socket) {
  if (stopping_ || !acceptor_.is_open()) return;
  if (!ec) {
    if (options_.tls) {
      using TlsStream = beast::ssl_stream<beast::tcp_stream>;
      std::make_shared<Session<TlsStream>>(*this, std::move(socket))->start();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(*this, std::move(socket))->start();
    }
  }
  start_accept();
}

void FakeBotApi::Impl::shutdown() {
  stopping_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  poller_ = nullptr;
  const std::vector<SessionBase*> open(sessions_.begin(), sessions_.end());
  for (SessionBase* session : open) session->close();
}

std::pair<std::int64_t, std::string> FakeBotApi::Impl::push(std::string_view update_json,
                                                           bool queue) {
  const auto parsed = JsonReader(update_json).read_document();
  if (!parsed || parsed->kind != Json::Kind::object) {
    throw std::invalid_argument("fake Bot API: an update must be a JSON object");
  }
  if (parsed->member("update_id") != nullptr) {
    throw std::invalid_argument("fake Bot API: the fake assigns update_id itself");
  }
  const std::string_view rest = update_json.substr(update_json.find('{') + 1);
  std::pair<std::int64_t, std::string> update;
  {
    // One lock for numbering and queueing keeps the queue in id order under racing pushes.
    std::lock_guard lock(mutex_);
    update.first = next_id_++;
    update.second = "{\"update_id\":" + std::to_string(update.first) +
                    (parsed->members.empty() ? "" : ",") + std::string(rest);
    if (!queue) return update;
    pending_.push_back(Update{update.first, update.second});
  }
  net::post(io_, [this] {
    if (poller_ != nullptr) poller_->wake();
  });
  return update;
}

Action FakeBotApi::Impl::dispatch(const Request& request, SessionBase* from) {
  static constexpr std::string_view kPrefix = "/bot";
  std::string_view path = request.path;
  const std::size_t slash = path.find('/', kPrefix.size());
  if (path.substr(0, kPrefix.size()) != kPrefix || slash == std::string_view::npos) {
    return respond(404, error_body(404, "Not Found"));
  }
  const std::string_view token = path.substr(kPrefix.size(), slash - kPrefix.size());
  const std::string method = lower(path.substr(slash + 1));
  if (token != options_.token) {
    std::lock_guard lock(mutex_);
    ++unauthorized_;
    return respond(401, error_body(401, "Unauthorized"));
  }
  {
    std::lock_guard lock(mutex_);
    ++method_calls_[method];
  }
  Params params;
  if (!add_form_params(request.query, params)) {
    return respond(400, error_body(400, "Bad Request: invalid query string"));
  }
  if (request.content_type == "application/json" && !request.body.empty()) {
    auto body = JsonReader(request.body).read_document();
    if (!body || body->kind != Json::Kind::object) {
      return respond(400, error_body(400, "Bad Request: can't parse JSON object"));
    }
    for (auto& member : body->members) params.push_back(std::move(member));
  } else if (request.content_type == "application/x-www-form-urlencoded") {
    if (!add_form_params(request.body, params)) {
      return respond(400, error_body(400, "Bad Request: invalid form body"));
    }
  } else if (!request.body.empty() && !request.content_type.empty()) {
    return respond(400, error_body(400, "Bad Request: the fake reads only JSON and form bodies"));
  }

  if (method == "getupdates") return get_updates(request, params, from);
  if (method == "getme") return respond(200, get_me());
  if (method == "setwebhook") return set_webhook(params, true);
  if (method == "deletewebhook") return set_webhook(params, false);
  if (method == "getwebhookinfo") {
    std::lock_guard lock(mutex_);
    return respond(200, "{\"ok\":true,\"result\":{\"url\":" + json_quote(webhook_url_) +
                            ",\"has_custom_certificate\":false,\"pending_update_count\":" +
                            std::to_string(pending_.size()) + "}}");
  }
  return respond(404, error_body(404, "Not Found"));
}

std::string FakeBotApi::Impl::get_me() const {
  std::int64_t id = 0;
  const std::string& token = options_.token;
  std::from_chars(token.data(), token.data() + token.find(':'), id);
  return "{\"ok\":true,\"result\":{\"id\":" + std::to_string(id) +
         ",\"is_bot\":true,\"first_name\":\"Fake Bot\",\"username\":\"fake_replywatch_bot\","
         "\"can_join_groups\":true,\"can_read_all_group_messages\":false,"
         "\"supports_inline_queries\":false}}";
}

Action FakeBotApi::Impl::set_webhook(const Params& params, bool set) {
  std::string url;
  if (set) {
    const Json* value = find_param(params, "url");
    if (value == nullptr || value->kind != Json::Kind::string) {
      return respond(400, error_body(400, "Bad Request: parameter \"url\" is required"));
    }
    url = value->text;
  }
  {
    std::lock_guard lock(mutex_);
    webhook_url_ = url;
    if (bool_param(params, "drop_pending_updates") && !pending_.empty()) {
      confirm(pending_.back().id + 1);
    }
  }
  changed_.notify_all();
  const std::string what = url.empty() ? "Webhook was deleted" : "Webhook was set";
  return respond(200, "{\"ok\":true,\"result\":true,\"description\":" + json_quote(what) + "}");
}

Action FakeBotApi::Impl::get_updates(const Request& request, const Params& params,
                                     SessionBase* from) {
  GetUpdatesCall call;
  call.at = Clock::now();
  call.http_method = request.verb;
  const bool parsed = int_param(params, "offset", call.offset) &&
                      int_param(params, "limit", call.limit) &&
                      int_param(params, "timeout", call.timeout) &&
                      list_param(params, "allowed_updates", call.allowed_updates);
  PollParams poll;
  poll.offset = call.offset;
  poll.limit = static_cast<std::size_t>(std::clamp(call.limit.value_or(kMaxLimit), 1, kMaxLimit));
  poll.timeout = std::chrono::seconds(std::max(call.timeout.value_or(0), 0));
  Fault fault = Fault::none;
  std::chrono::milliseconds delay{};
  bool webhook_active = false;
  {
    std::lock_guard lock(mutex_);
    if (parsed && !faults_.empty()) {
      std::tie(fault, delay) = faults_.front();
      faults_.pop_front();
    }
    if (parsed && call.allowed_updates) allowed_updates_ = call.allowed_updates;
    webhook_active = !webhook_url_.empty();
    call.fault = fault;
    poll.call = calls_.size();
    calls_.push_back(std::move(call));
  }
  changed_.notify_all();
  // Telegram answers the older of two concurrent polls with 409, whatever the newer one gets.
  if (poller_ != nullptr && poller_ != from) {
    SessionBase* older = poller_;
    poller_ = nullptr;
    older->kick();
  }
  auto fail = [&](int status, std::string body) {
    finish_call(poll.call, status);
    return respond(status, std::move(body));
  };
  if (!parsed) return fail(400, error_body(400, "Bad Request: wrong parameter value"));
  switch (fault) {
    case Fault::none:
      break;
    case Fault::too_many_requests: {
      const auto seconds = std::max<std::int64_t>(1, (delay.count() + 999) / 1000);
      return fail(429,
                  error_body(429, "Too Many Requests: retry after " + std::to_string(seconds),
                             "{\"retry_after\":" + std::to_string(seconds) + "}"));
    }
    case Fault::server_error:
      return fail(500, error_body(500, "Internal Server Error"));
    case Fault::slow: {
      Action out;
      out.kind = Action::Kind::delay;
      out.poll = poll;
      out.delay = delay.count() > 0 ? delay : kDefaultSlow;
      return out;
    }
    case Fault::truncated: {
      Action out;
      out.kind = Action::Kind::truncate;
      std::vector<Update> updates;
      {
        std::lock_guard lock(mutex_);
        if (poll.offset) confirm(*poll.offset);
        updates = select(poll);
      }
      out.body = result_body(poll.call, updates);
      return out;
    }
    case Fault::invalid_json:
      return fail(200, "{\"ok\":true,\"result\":[{\"update_id\":}");
    case Fault::duplicate:
      poll.duplicate = true;
      break;
    case Fault::conflict:
      return fail(409, error_body(409,
                                  "Conflict: terminated by other getUpdates request; make sure "
                                  "that only one bot instance is running"));
    case Fault::unauthorized:
      return fail(401, error_body(401, "Unauthorized"));
    case Fault::not_found:
      return fail(404, error_body(404, "Not Found"));
    case Fault::reset: {
      Action out;
      out.kind = Action::Kind::reset;
      return out;
    }
  }
  if (webhook_active) {
    return fail(409, error_body(409,
                                "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first"));
  }
  return start_poll(poll, from);
}

Action FakeBotApi::Impl::start_poll(PollParams poll, SessionBase* from) {
  std::vector<Update> updates;
  {
    std::lock_guard lock(mutex_);
    if (poll.offset) confirm(*poll.offset);
    updates = select(poll);
  }
  changed_.notify_all();  // the offset may have moved, see wait_for_confirmed
  if (updates.empty() && poll.timeout.count() > 0) {
    Action out;
    out.kind = Action::Kind::hold;
    poll.deadline = Clock::now() + poll.timeout;
    out.poll = poll;
    poller_ = from;
    return out;
  }
  return respond(200, result_body(poll.call, updates));
}

std::optional<std::string> FakeBotApi::Impl::poll_again(const PollParams& poll,
                                                        bool deadline_passed) {
  std::vector<Update> updates;
  {
    std::lock_guard lock(mutex_);
    updates = select(poll);
  }
  if (updates.empty() && !deadline_passed) return std::nullopt;
  return result_body(poll.call, updates);
}

void FakeBotApi::Impl::confirm(std::int64_t offset) {
  if (offset == 0) return;
  if (offset < 0) {
    // Keeps the last -offset updates (written so that INT64_MIN cannot overflow).
    const auto keep = static_cast<std::size_t>(-(offset + 1)) + 1;
    if (pending_.empty()) {
      offset = next_id_;
    } else if (pending_.size() > keep) {
      offset = pending_[pending_.size() - keep].id;
    } else {
      offset = pending_.front().id;
    }
  }
  while (!pending_.empty() && pending_.front().id < offset) {
    confirmed_.push_back(std::move(pending_.front()));
    pending_.pop_front();
    if (confirmed_.size() > kConfirmedKept) confirmed_.pop_front();
  }
  confirmed_offset_ = std::max(confirmed_offset_, offset);
}

std::vector<Update> FakeBotApi::Impl::select(const PollParams& poll) const {
  std::vector<Update> out;
  if (poll.duplicate) {
    const std::size_t replay = std::min(confirmed_.size(), poll.limit);
    out.insert(out.end(), confirmed_.end() - static_cast<std::ptrdiff_t>(replay),
               confirmed_.end());
  }
  for (const Update& update : pending_) {
    if (out.size() >= poll.limit) break;
    out.push_back(update);
  }
  return out;
}

std::string FakeBotApi::Impl::result_body(std::size_t call, const std::vector<Update>& updates) {
  std::string body = "{\"ok\":true,\"result\":[";
  std::vector<std::int64_t> ids;
  for (const Update& update : updates) {
    if (!ids.empty()) body += ',';
    body += update.json;
    ids.push_back(update.id);
  }
  finish_call(call, 200, std::move(ids));
  return body + "]}";
}

void FakeBotApi::Impl::finish_call(std::size_t call, int status, std::vector<std::int64_t> ids) {
  {
    std::lock_guard lock(mutex_);
    calls_[call].status = status;
    calls_[call].update_ids = std::move(ids);
  }
  changed_.notify_all();
}

// ---- FakeBotApi ----

FakeBotApi::FakeBotApi(FakeBotApiOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

FakeBotApi::~FakeBotApi() = default;

std::uint16_t FakeBotApi::port() const { return impl_->port_; }

std::string FakeBotApi::base_url() const {
  return impl_->scheme_ + "://127.0.0.1:" + std::to_string(impl_->port_);
}

const std::string& FakeBotApi::token() const { return impl_->options_.token; }

std::string FakeBotApi::method_path(std::string_view method) const {
  return "/bot" + impl_->options_.token + "/" + std::string(method);
}

std::int64_t FakeBotApi::push_update(std::string_view update_json_without_id) {
  return impl_->push(update_json_without_id, true).first;
}

std::string FakeBotApi::make_update(std::string_view update_json_without_id) {
  return impl_->push(update_json_without_id, false).second;
}

void FakeBotApi::inject(Fault fault, int count, std::chrono::milliseconds delay_or_retry) {
  std::lock_guard lock(impl_->mutex_);
  for (int i = 0; i < count; ++i) impl_->faults_.emplace_back(fault, delay_or_retry);
}

std::size_t FakeBotApi::faults_pending() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->faults_.size();
}

std::size_t FakeBotApi::get_updates_count() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->calls_.size();
}

std::vector<FakeBotApi::GetUpdatesCall> FakeBotApi::get_updates_calls() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->calls_;
}

bool FakeBotApi::wait_for_get_updates(std::size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex_);
  return impl_->changed_.wait_for(lock, timeout,
                                        [&] { return impl_->calls_.size() >= count; });
}

bool FakeBotApi::wait_for_confirmed(std::int64_t offset, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex_);
  return impl_->changed_.wait_for(lock, timeout,
                                  [&] { return impl_->confirmed_offset_ >= offset; });
}

std::int64_t FakeBotApi::confirmed_offset() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->confirmed_offset_;
}

std::size_t FakeBotApi::pending_updates() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->pending_.size();
}

std::optional<std::vector<std::string>> FakeBotApi::allowed_updates() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->allowed_updates_;
}

std::size_t FakeBotApi::calls(std::string_view method) const {
  std::lock_guard lock(impl_->mutex_);
  const auto found = impl_->method_calls_.find(lower(method));
  return found == impl_->method_calls_.end() ? 0 : found->second;
}

std::size_t FakeBotApi::unauthorized_calls() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->unauthorized_;
}

std::string FakeBotApi::webhook_url() const {
  std::lock_guard lock(impl_->mutex_);
  return impl_->webhook_url_;
}

std::string_view FakeBotApi::fault_name(Fault fault) {
  switch (fault) {
    case Fault::none:
      return "none";
    case Fault::too_many_requests:
      return "too_many_requests";
    case Fault::server_error:
      return "server_error";
    case Fault::slow:
      return "slow";
    case Fault::truncated:
      return "truncated";
    case Fault::invalid_json:
      return "invalid_json";
    case Fault::duplicate:
      return "duplicate";
    case Fault::conflict:
      return "conflict";
    case Fault::unauthorized:
      return "unauthorized";
    case Fault::not_found:
      return "not_found";
    case Fault::reset:
      return "reset";
  }
  return "?";
}

int FakeBotApi::post_json(const std::string& url, const std::string& body,
                          const std::string& secret_header, std::chrono::milliseconds timeout) {
  static constexpr std::string_view kPrefix = "http://127.0.0.1";
  std::string_view rest(url);
  if (rest.substr(0, kPrefix.size()) != kPrefix) {
    throw std::invalid_argument("post_json: only http://127.0.0.1 URLs, got " + url);
  }
  rest.remove_prefix(kPrefix.size());
  std::uint16_t port = 80;
  if (!rest.empty() && rest.front() == ':') {
    const std::size_t end = std::min(rest.find('/'), rest.size());
    const auto [stop, ec] = std::from_chars(rest.data() + 1, rest.data() + end, port);
    if (ec != std::errc() || stop != rest.data() + end) {
      throw std::invalid_argument("post_json: bad port in " + url);
    }
    rest.remove_prefix(end);
  }
  if (!rest.empty() && rest.front() != '/') {
    throw std::invalid_argument("post_json: bad URL " + url);
  }
  const std::string target = rest.empty() ? "/" : std::string(rest);

  // Asynchronous on a private io_context only so that the timeout holds at every step.
  net::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::content_type, "application/json");
  if (!secret_header.empty()) req.set("X-Telegram-Bot-Api-Secret-Token", secret_header);
  req.keep_alive(false);
  req.body() = body;
  req.prepare_payload();
  http::response<http::string_body> res;
  int status = 0;

  stream.expires_after(timeout);
  stream.async_connect(
      tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port), [&](error_code ec) {
        if (ec) return;
        http::async_write(stream, req, [&](error_code write_ec, std::size_t) {
          if (write_ec) return;
          http::async_read(stream, buffer, res, [&](error_code read_ec, std::size_t) {
            if (!read_ec) status = static_cast<int>(res.result_int());
          });
        });
      });
  io.run();
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return status;
}

bool json_valid(std::string_view text) { return JsonReader(text).read_document().has_value(); }

}  // namespace replywatch::testing
