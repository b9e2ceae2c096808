// What every push connector is: a route on the daemon's HTTP server that checks a
// request's authenticity, reads its body and answers in the platform's terms. The
// server owns the rest, the same for every platform: the journal that makes a push
// durable before it is acknowledged (the platform forgets what it delivered), the
// delivery, the metrics, and replaying the journal at start.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connectors/connector.hpp"

namespace replywatch::connectors {

using Fields = std::vector<std::pair<std::string, std::string>>;

/// A request on a push route, as the HTTP server read it.
struct PushRequest {
  std::string_view method;
  std::string_view body;  // the raw bytes: signatures are over these
  const Fields* headers = nullptr;  // names in lower case
  const Fields* query = nullptr;
  std::string_view remote;

  std::optional<std::string_view> header(std::string_view lower_name) const {
    return find(headers, lower_name);
  }
  std::optional<std::string_view> query_param(std::string_view name) const {
    return find(query, name);
  }

 private:
  static std::optional<std::string_view> find(const Fields* fields, std::string_view name) {
    if (!fields) return std::nullopt;
    for (const auto& [k, v] : *fields) {
      if (k == name) return std::string_view(v);
    }
    return std::nullopt;
  }
};

struct PushReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body = "ok";
  Fields headers;
};

struct PushResult {
  /// Sent once the batch (if any) is durable; a 503 replaces it when it cannot be.
  PushReply reply;
  /// What the push carried: its body is journalled first, then the batch delivered.
  std::optional<Batch> batch;
  /// What to journal instead of the raw body (a body that carries a secret, redacted).
  std::optional<std::string> journal_body;
  /// A problem counted on the connector (bad_secret, invalid_json, ...), when not empty.
  std::string error_type;
  std::string error_message;
};

class PushHandler {
 public:
  virtual ~PushHandler() = default;
  virtual const std::string& name() const = 0;
  /// Authenticity first (secret, signature), in constant time; then the body.
  virtual PushResult handle(const PushRequest& request) = 0;
  /// A journalled body again (it was authentic when received at `received_at`) at start.
  virtual std::optional<Batch> replay(std::string_view body, std::int64_t received_at) = 0;
};

/// Equal in constant time in the secret's content: no early exit on the first difference.
inline bool same_secret(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const char g = i < given.size() ? given[i] : '\0';
    diff |= static_cast<unsigned char>(g ^ expected[i]);
  }
  return diff == 0;
}

}  // namespace replywatch::connectors
