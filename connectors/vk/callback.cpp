#include "connectors/vk/callback.hpp"

#include "connectors/http/http_client.hpp"

namespace replywatch::connectors::vk {

namespace {

/// The secret as a JSON writer may have written it ('/' escaped).
std::string json_escaped(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '/' || c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Callback::Callback(std::string name, std::string secret, std::string confirmation)
    : name_(std::move(name)), secret_(std::move(secret)), confirmation_(std::move(confirmation)) {}

Batch Callback::to_batch(Parsed&& parsed, std::int64_t received_at) const {
  Batch batch;
  batch.connector = name_;
  batch.received_at = received_at;
  batch.events = std::move(parsed.events);
  batch.rejected = std::move(parsed.rejected);
  return batch;
}

PushResult Callback::handle(const PushRequest& request) {
  PushResult result;
  if (request.method != "POST") {
    result.reply = {405, "text/plain; charset=utf-8", "POST only\n", {{"Allow", "POST"}}};
    return result;
  }
  Parsed parsed;
  const std::int64_t now = wall_now();
  auto ok = parser_.parse(request.body, now, parsed);
  if (!ok || parsed.callbacks.size() != 1) {
    // `ok` anyway: VK would resend a malformed push forever. It is counted.
    result.error_type = "invalid_json";
    result.error_message = "callback push from " + std::string(request.remote) + ": " +
                           (ok ? std::string("not a Callback API event") : ok.error().message);
    return result;
  }
  const CallbackInfo& info = parsed.callbacks.front();
  if (!same_secret(info.secret, secret_)) {
    result.reply = {403, "text/plain; charset=utf-8", "forbidden\n", {}};
    result.error_type = "bad_secret";
    result.error_message = "callback push with a missing or wrong secret from " +
                           std::string(request.remote) + " (type " + info.type.substr(0, 64) +
                           ")";
    return result;
  }
  if (info.type == "confirmation") {
    result.reply.body = confirmation_;
    return result;
  }
  result.batch = to_batch(std::move(parsed), now);
  // The push carries the secret itself: the journal keeps it without (the push was
  // authentic; replaying it checks nothing).
  result.journal_body =
      http::redact_all(http::redact_all(std::string(request.body), secret_), json_escaped(secret_));
  return result;
}

std::optional<Batch> Callback::replay(std::string_view body, std::int64_t received_at) {
  Parsed parsed;
  if (!parser_.parse(body, received_at, parsed)) return std::nullopt;
  return to_batch(std::move(parsed), received_at);
}

}  // namespace replywatch::connectors::vk
