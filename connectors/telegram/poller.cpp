// getUpdates error handling follows the Bot API's own signals: parameters first
// (retry_after, migrate_to_chat_id), then the error code.
#include "connectors/telegram/poller.hpp"

#include <charconv>
#include <chrono>

namespace replywatch::connectors::telegram {

namespace {

// The update kinds pairing needs; Telegram remembers the list until it changes.
constexpr std::string_view kAllowedUpdates =
    "%5B%22message%22%2C%22edited_message%22%2C%22channel_post%22%2C%22edited_channel_post%22%5D";


}  // namespace

Batch to_batch(const std::string& connector, Updates&& updates) {
  Batch batch;
  batch.connector = connector;
  batch.received_at = wall_now();
  batch.events = std::move(updates.events);
  batch.rejected = std::move(updates.rejected);
  for (const auto& m : updates.migrations) batch.migrations.emplace_back(m.from_chat, m.to_chat);
  return batch;
}

Poller::Poller(PollerOptions options, CursorMap restored)
    : options_(std::move(options)),
      client_(options_.api_base_url, options_.token, options_.ca_file) {
  if (auto it = restored.find("offset"); it != restored.end()) {
    std::int64_t v = 0;
    const auto& s = it->second;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size() && v > 0) offset_ = v;
  }
}

std::string Poller::query() const {
  std::string q = "timeout=" + std::to_string(options_.poll_timeout_secs) +
                  "&limit=" + std::to_string(page_size_);
  if (offset_ > 0) q += "&offset=" + std::to_string(offset_);
  q += "&allowed_updates=";
  q += kAllowedUpdates;
  return q;
}

PollOutcome Poller::poll(Output& out, const std::atomic<bool>& stop) {
  delay_.reset();
  const auto deadline = std::chrono::seconds(options_.poll_timeout_secs + 15);
  auto reply = client_.get("getUpdates", query(), deadline, stop);
  if (!reply) {
    if (reply.error().type == "cancelled") return PollOutcome::ok;
    out.error(reply.error().type, reply.error().message);
    return PollOutcome::failed;
  }
  auto parsed = parser_.parse_response(reply->body);
  if (!parsed && (reply->status == 401 || reply->status == 403 || reply->status == 404)) {
    // Not the Bot API's JSON but its status says the same (a proxy's page, a wrong
    // api_base_url path): configuration, not a passing fault.
    ApiError e;
    e.error_code = reply->status;
    e.description = "HTTP " + std::to_string(reply->status) + " without a Bot API body";
    return on_api_error(out, e, reply->status);
  }
  if (!parsed) {
    const bool server_error = reply->status >= 500;
    out.error(server_error ? "http_5xx" : "invalid_json",
              client_.redacted_url("getUpdates") + ": HTTP " + std::to_string(reply->status) +
                  ": " + redact(parsed.error().message, options_.token));
    // One update that never parses would stall the bot for good: after a few tries
    // ask for one update at a time, and then step over the one that keeps failing.
    if (!server_error && ++unparsable_ >= kUnparsableRetries) {
      if (page_size_ > 1) {
        page_size_ = 1;
        unparsable_ = 0;
      } else if (offset_ > 0) {
        out.error("skipped_update", "update " + std::to_string(offset_) +
                                        " never parsed; skipped after repeated attempts");
        ++offset_;
        unparsable_ = 0;
      }
    }
    return PollOutcome::failed;
  }
  unparsable_ = 0;
  if (page_size_ == 1 && parsed->max_update_id) page_size_ = kPageSize;
  if (parsed->error) return on_api_error(out, *parsed->error, reply->status);
  if (reply->status != 200) {
    out.error("http_" + std::to_string(reply->status / 100) + "xx",
              client_.redacted_url("getUpdates") + ": HTTP " + std::to_string(reply->status));
    return PollOutcome::failed;
  }
  if (!parsed->max_update_id) {  // the long poll ended empty
    pending_ = false;
    return PollOutcome::ok;
  }
  const std::int64_t next = *parsed->max_update_id + 1;
  // A full page means Telegram likely holds more: a backlog, so expiry waits.
  pending_ = parsed->updates >= page_size_;
  Batch batch = to_batch(options_.name, std::move(*parsed));
  batch.cursors.push_back({"offset", std::to_string(next)});
  batch.sync = true;
  out.deliver(std::move(batch));
  // Asking for `next` confirms everything before it to Telegram, which then
  // forgets it: only once it is on disk here.
  if (!out.wait_durable(stop)) return PollOutcome::ok;
  offset_ = std::max(offset_, next);
  return PollOutcome::ok;
}

PollOutcome Poller::on_api_error(Output& out, const ApiError& e, int http_status) {
  const std::string what = client_.redacted_url("getUpdates") + ": " +
                           std::to_string(e.error_code) + " " +
                           redact(e.description, options_.token);
  if (e.retry_after) {
    out.error("rate_limited", what);
    delay_ = std::chrono::seconds(std::clamp<std::int64_t>(*e.retry_after, 1, 3600));
    return PollOutcome::retry_later;
  }
  const std::int64_t code = e.error_code != 0 ? e.error_code : http_status;
  if (code == 409) {
    // A webhook is set, or another poller uses this token: retrying fast cannot help.
    out.error("conflict", what + " (another getUpdates poller, or a webhook is set for this bot)");
    delay_ = std::chrono::seconds(30);
    return PollOutcome::failed;
  }
  if (code == 401 || code == 403 || code == 404) {
    out.error(code == 404 ? "not_found" : "unauthorized",
              what + " (check the bot token and api_base_url)");
    delay_ = std::chrono::minutes(5);
    return PollOutcome::fatal;
  }
  if (code == 429) {
    out.error("rate_limited", what);
    return PollOutcome::failed;
  }
  out.error(code >= 500 ? "http_5xx" : "api_error", what);
  return PollOutcome::failed;
}

}  // namespace replywatch::connectors::telegram
