// Connector `vk` in callback mode: the community's Callback API server. VK sends one
// JSON event per POST and resends it until the answer is the plain text `ok`; the
// server's address is confirmed once by answering {"type": "confirmation"} with the
// community's confirmation string. Every push carries the `secret` set in the
// community's settings; one without it, or with another, is refused and counted.
#pragma once

#include "connectors/push.hpp"
#include "connectors/vk/vk_parser.hpp"

namespace replywatch::connectors::vk {

class Callback : public PushHandler {
 public:
  Callback(std::string name, std::string secret, std::string confirmation);
  const std::string& name() const override { return name_; }
  PushResult handle(const PushRequest& request) override;
  std::optional<Batch> replay(std::string_view body, std::int64_t received_at) override;

 private:
  Batch to_batch(Parsed&& parsed, std::int64_t received_at) const;

  std::string name_;
  std::string secret_;
  std::string confirmation_;
  Parser parser_;
};

}  // namespace replywatch::connectors::vk
