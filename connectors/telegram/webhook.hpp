// Connector `telegram` in webhook mode: one Update per POST, authenticated by the
// X-Telegram-Bot-Api-Secret-Token header that setWebhook's secret_token makes Telegram
// send.
#pragma once

#include "connectors/push.hpp"
#include "connectors/telegram/update_parser.hpp"

namespace replywatch::connectors::telegram {

class Webhook : public PushHandler {
 public:
  Webhook(std::string name, std::string secret_token);
  const std::string& name() const override { return name_; }
  PushResult handle(const PushRequest& request) override;
  std::optional<Batch> replay(std::string_view body, std::int64_t received_at) override;

 private:
  std::string name_;
  std::string secret_;
  UpdateParser parser_;
};

}  // namespace replywatch::connectors::telegram
