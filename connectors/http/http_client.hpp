// A small HTTP(S) client for the platforms' APIs: one request at a time, a deadline per
// request, cancellation, certificate and host name verification with SNI. Credentials
// travel in the request target (a Bot API path, an `access_token` parameter), so every
// message it produces passes through the caller's redaction first.
#pragma once

#include <atomic>
#include <boost/system/result.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace replywatch::connectors::http {

struct Reply {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case

  /// The first header named `name` (lower case), if any.
  const std::string* header(std::string_view name) const;
};

/// A transport failure. `type` is a stable metric label: timeout, connect_error,
/// tls_error, connection_reset, truncated_body, response_too_large, bad_url, cancelled.
struct ClientError {
  std::string type;
  std::string message;  // redacted
};

/// Replaces what must never be shown (tokens, secrets) in a message.
using Redactor = std::function<std::string(std::string)>;

class Client {
 public:
  /// `base_url`: "https://api.vk.com/method" or a local server ("http://127.0.0.1:8081").
  /// `ca_file`: an extra CA to trust; empty uses the system store.
  Client(std::string base_url, std::string ca_file, Redactor redact);
  ~Client();

  /// GET {base path}{target}, finished within `deadline`, or cancelled soon after `stop`
  /// turns true. `shown` names the request in messages instead of `target`.
  boost::system::result<Reply, ClientError> get(std::string_view target, std::string_view shown,
                                                std::chrono::milliseconds deadline,
                                                const std::atomic<bool>& stop);

  const std::string& base_url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Every occurrence of `secret` in `text` replaced by "<redacted>".
std::string redact_all(std::string text, std::string_view secret);

/// `text` with %XX escapes for everything but unreserved characters (RFC 3986).
std::string percent_encode(std::string_view text);

}  // namespace replywatch::connectors::http
