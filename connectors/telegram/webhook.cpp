#include "connectors/telegram/webhook.hpp"

#include "connectors/telegram/poller.hpp"

namespace replywatch::connectors::telegram {

Webhook::Webhook(std::string name, std::string secret_token)
    : name_(std::move(name)), secret_(std::move(secret_token)) {}

PushResult Webhook::handle(const PushRequest& request) {
  PushResult result;
  if (request.method != "POST") {
    result.reply = {405, "text/plain; charset=utf-8", "POST only\n", {{"Allow", "POST"}}};
    return result;
  }
  const auto header = request.header("x-telegram-bot-api-secret-token");
  if (!header || !same_secret(*header, secret_)) {
    result.reply = {401, "text/plain; charset=utf-8", "unauthorized\n", {}};
    result.error_type = "bad_secret";
    result.error_message =
        "webhook push with a missing or wrong secret token from " + std::string(request.remote);
    return result;
  }
  result.reply.body = "ok\n";
  auto parsed = parser_.parse_update(request.body);
  if (!parsed) {
    // 200 anyway: Telegram would retry a malformed push forever; it is counted.
    result.error_type = "invalid_json";
    result.error_message = parsed.error().message;
    return result;
  }
  result.batch = to_batch(name_, std::move(*parsed));
  return result;
}

std::optional<Batch> Webhook::replay(std::string_view body, std::int64_t received_at) {
  auto parsed = parser_.parse_update(body);
  if (!parsed) return std::nullopt;
  Batch batch = to_batch(name_, std::move(*parsed));
  batch.received_at = received_at;
  return batch;
}

}  // namespace replywatch::connectors::telegram
