// A small HTTP(S) client for the Bot API: one request at a time, a deadline per
// request, cancellation, certificate and host name verification with SNI. The
// token is part of the URL path, so nothing it produces ever contains the URL.
#pragma once

#include <atomic>
#include <boost/system/result.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace replywatch::connectors::telegram {

struct HttpReply {
  int status = 0;
  std::string body;
};

/// A transport failure. `type` is a stable metric label: timeout, connect_error,
/// tls_error, connection_reset, truncated_body, response_too_large, bad_url, cancelled.
struct ClientError {
  std::string type;
  std::string message;  // redacted: names host and method, never the token
};

class BotApiClient {
 public:
  /// `base_url`: "https://api.telegram.org" or a local server ("http://127.0.0.1:8081").
  /// `ca_file`: an extra CA to trust; empty uses the system store.
  BotApiClient(std::string base_url, std::string token, std::string ca_file);
  ~BotApiClient();

  /// GET {base}/bot{token}/{method}?{query}, finished within `deadline`, or cancelled
  /// soon after `stop` turns true.
  boost::system::result<HttpReply, ClientError> get(std::string_view method,
                                                    std::string_view query,
                                                    std::chrono::milliseconds deadline,
                                                    const std::atomic<bool>& stop);

  /// "https://api.telegram.org/bot<redacted>/getUpdates": for log lines.
  std::string redacted_url(std::string_view method) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Replaces every occurrence of `secret` in `text` with "<redacted>".
std::string redact(std::string text, std::string_view secret);

}  // namespace replywatch::connectors::telegram
