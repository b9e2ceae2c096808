// Beast over a private io_context, driven in short slices so a stop request cancels a
// long poll promptly. One connection per request: pollers send a request every few
// seconds at most, and a fresh connection never inherits a broken one.
#include "connectors/http/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace replywatch::connectors::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

[[noreturn]] void throw_exception_from_error(const ClientError& e,
                                             const boost::source_location&) {
  throw std::runtime_error(e.message);
}

const std::string* Reply::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string redact_all(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "<redacted>");
  }
  return text;
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

constexpr std::size_t kMaxResponseBytes = 32u << 20;

struct Url {
  bool tls = true;
  std::string host;
  std::string port;
  std::string prefix;  // the base URL's path, before every target
};

std::optional<Url> parse_url(const std::string& url) {
  Url u;
  std::string_view rest = url;
  if (rest.rfind("https://", 0) == 0) {
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    u.tls = false;
    rest.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  u.prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  if (!authority.empty() && authority.front() == '[') {  // [::1]:8081
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() == ':') u.port = std::string(authority.substr(1));
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) return std::nullopt;
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  return u;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

struct Client::Impl {
  std::string base_url;
  Redactor redact;
  std::optional<Url> url;
  ssl::context tls{ssl::context::tls_client};
  std::string tls_setup_error;
};

Client::Client(std::string base_url, std::string ca_file, Redactor redact)
    : impl_(std::make_unique<Impl>()) {
  impl_->base_url = std::move(base_url);
  impl_->redact = std::move(redact);
  impl_->url = parse_url(impl_->base_url);
  boost::system::error_code ec;
  impl_->tls.set_verify_mode(ssl::verify_peer, ec);
  impl_->tls.set_default_verify_paths(ec);
  if (!ca_file.empty()) {
    impl_->tls.load_verify_file(ca_file, ec);
    if (ec) impl_->tls_setup_error = "cannot load CA file " + ca_file + ": " + ec.message();
  }
}

Client::~Client() = default;

const std::string& Client::base_url() const { return impl_->base_url; }

boost::system::result<Reply, ClientError> Client::get(std::string_view target,
                                                      std::string_view shown,
                                                      std::chrono::milliseconds deadline,
                                                      const std::atomic<bool>& stop) {
  const std::string where = "GET " + std::string(shown);
  auto fail = [&](std::string type, const std::string& what) {
    // Library messages do not carry the URL, but redact anyway: it costs nothing.
    std::string message = where + ": " + what;
    if (impl_->redact) message = impl_->redact(std::move(message));
    return ClientError{std::move(type), std::move(message)};
  };
  if (!impl_->url) return fail("bad_url", "api_base_url is not an http(s) URL");
  if (!impl_->tls_setup_error.empty()) return fail("tls_error", impl_->tls_setup_error);
  const Url& url = *impl_->url;

  asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream tcp_stream(io);
  std::optional<beast::ssl_stream<beast::tcp_stream&>> tls_stream;
  beast::flat_buffer buffer;
  bhttp::request<bhttp::empty_body> request{bhttp::verb::get, url.prefix + std::string(target), 11};
  request.set(bhttp::field::host, url.host);
  request.set(bhttp::field::user_agent, "replywatch");
  request.set(bhttp::field::accept, "application/json");
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxResponseBytes);

  // The error of the first step that failed, and its metric type.
  boost::system::error_code error;
  std::string error_type;
  bool done = false;
  auto finish = [&](boost::system::error_code ec, const char* type) {
    if (done) return;
    done = true;
    error = ec;
    error_type = ec ? type : "";
  };

  tcp_stream.expires_after(deadline);
  auto on_read = [&](beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::body_limit) return finish(ec, "response_too_large");
    // Over TLS a peer that closes mid-body without close_notify reads as stream_truncated.
    if (ec == bhttp::error::partial_message || ec == asio::error::eof ||
        ec == bhttp::error::end_of_stream || ec == ssl::error::stream_truncated) {
      return finish(ec, "truncated_body");
    }
    finish(ec, ec == beast::error::timeout ? "timeout" : "connection_reset");
  };
  auto on_write = [&](beast::error_code ec, std::size_t) {
    if (ec) return finish(ec, ec == beast::error::timeout ? "timeout" : "connection_reset");
    if (tls_stream) {
      bhttp::async_read(*tls_stream, buffer, parser, on_read);
    } else {
      bhttp::async_read(tcp_stream, buffer, parser, on_read);
    }
  };
  auto on_handshake = [&](beast::error_code ec) {
    if (ec) return finish(ec, ec == beast::error::timeout ? "timeout" : "tls_error");
    bhttp::async_write(*tls_stream, request, on_write);
  };
  auto on_connect = [&](beast::error_code ec, const tcp::endpoint&) {
    if (ec) return finish(ec, ec == beast::error::timeout ? "timeout" : "connect_error");
    if (!url.tls) return bhttp::async_write(tcp_stream, request, on_write);
    tls_stream.emplace(tcp_stream, impl_->tls);
    SSL* ssl_handle = tls_stream->native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
    if (is_ip_literal(url.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_handle, url.host.c_str());  // SNI
      X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0);
    }
    tls_stream->async_handshake(ssl::stream_base::client, on_handshake);
  };
  resolver.async_resolve(url.host, url.port,
                         [&](beast::error_code ec, const tcp::resolver::results_type& results) {
                           if (ec) return finish(ec, "connect_error");
                           tcp_stream.async_connect(results, on_connect);
                         });

  bool cancelled = false;
  while (!done) {
    io.run_for(std::chrono::milliseconds(100));
    if (stop && !done && !cancelled) {
      cancelled = true;
      resolver.cancel();
      tcp_stream.cancel();
      tcp_stream.close();
    }
    if (io.stopped()) io.restart();
  }
  if (cancelled && error) return fail("cancelled", "cancelled at shutdown");
  if (error) return fail(error_type, error.message());
  Reply reply;
  reply.status = static_cast<int>(parser.get().result_int());
  for (const auto& field : parser.get()) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    reply.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  reply.body = std::move(parser.get().body());
  beast::error_code ignored;
  tcp_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return reply;
}

}  // namespace replywatch::connectors::http
