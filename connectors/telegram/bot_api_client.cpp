// One connection per request: long polling sends one request per ~25 s, and a fresh
// connection never inherits a broken one (see connectors/http).
#include "connectors/telegram/bot_api_client.hpp"

namespace replywatch::connectors::telegram {

namespace {

void replace_all(std::string& text, std::string_view secret) {
  text = http::redact_all(std::move(text), secret);
}

}  // namespace

std::string redact(std::string text, std::string_view secret) {
  replace_all(text, secret);
  // A server echoing the request URL may have percent-encoded the token's ':'.
  if (const auto colon = secret.find(':'); colon != std::string_view::npos) {
    std::string encoded(secret.substr(0, colon));
    encoded += "%3A";
    encoded += secret.substr(colon + 1);
    replace_all(text, encoded);
    encoded[colon + 2] = 'a';
    replace_all(text, encoded);
    // The part after ':' is the secret one: never let it through on its own either.
    if (secret.size() - colon - 1 >= 8) replace_all(text, secret.substr(colon + 1));
  }
  return text;
}

BotApiClient::BotApiClient(std::string base_url, std::string token, std::string ca_file)
    : base_url_(base_url),
      token_(token),
      client_(std::move(base_url), std::move(ca_file),
              [token](std::string text) { return redact(std::move(text), token); }) {}

std::string BotApiClient::redacted_url(std::string_view method) const {
  return base_url_ + "/bot<redacted>/" + std::string(method);
}

boost::system::result<HttpReply, ClientError> BotApiClient::get(
    std::string_view method, std::string_view query, std::chrono::milliseconds deadline,
    const std::atomic<bool>& stop) {
  std::string target = "/bot" + token_ + "/" + std::string(method);
  if (!query.empty()) {
    target += '?';
    target += query;
  }
  return client_.get(target, redacted_url(method), deadline, stop);
}

}  // namespace replywatch::connectors::telegram
