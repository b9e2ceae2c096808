// The Bot API over the shared HTTP client. The token is part of the URL path, so
// nothing it produces ever contains the URL.
#pragma once

#include <atomic>
#include <boost/system/result.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "connectors/http/http_client.hpp"

namespace replywatch::connectors::telegram {

using HttpReply = http::Reply;
using ClientError = http::ClientError;  // messages name host and method, never the token

class BotApiClient {
 public:
  /// `base_url`: "https://api.telegram.org" or a local server ("http://127.0.0.1:8081").
  /// `ca_file`: an extra CA to trust; empty uses the system store.
  BotApiClient(std::string base_url, std::string token, std::string ca_file);

  /// GET {base}/bot{token}/{method}?{query}, finished within `deadline`, or cancelled
  /// soon after `stop` turns true.
  boost::system::result<HttpReply, ClientError> get(std::string_view method,
                                                    std::string_view query,
                                                    std::chrono::milliseconds deadline,
                                                    const std::atomic<bool>& stop);

  /// "https://api.telegram.org/bot<redacted>/getUpdates": for log lines.
  std::string redacted_url(std::string_view method) const;

 private:
  std::string base_url_;
  std::string token_;
  http::Client client_;
};

/// Replaces every occurrence of `secret` in `text` with "<redacted>".
std::string redact(std::string text, std::string_view secret);

}  // namespace replywatch::connectors::telegram
