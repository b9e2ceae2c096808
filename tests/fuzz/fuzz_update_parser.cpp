// libFuzzer target for the Bot API update parser: any bytes, as a getUpdates body and as
// a webhook push, through one long-lived parser; build and run as in tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "connectors/telegram/update_parser.hpp"

namespace {

using replywatch::connectors::telegram::Updates;

// Bounds every result must keep, whatever the input: a broken one aborts so the fuzzer
// keeps the input that caused it.
void check(const Updates& u) {
  std::uint64_t rejected = 0;
  for (const auto& [reason, count] : u.rejected) {
    if (reason.empty() || count == 0) std::abort();
    rejected += count;
  }
  if (u.updates != u.events.size() + rejected + u.ignored) std::abort();
  if (u.max_update_id && (*u.max_update_id < 0 || *u.max_update_id >= (std::int64_t{1} << 52))) {
    std::abort();
  }
  if (u.error && (u.updates != 0 || !u.events.empty() || u.max_update_id)) std::abort();
  if (u.error && u.error->description.size() > 1024) std::abort();
  if (u.error && u.error->retry_after && *u.error->retry_after < 0) std::abort();
  for (const auto& e : u.events) {
    if (e.message_id <= 0 || e.conversation == 0 || e.reply_to < 0) std::abort();
    if (e.time < 1375315200 || e.time >= 4102444800) std::abort();
  }
  if (u.migrations.size() > u.events.size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // One parser for the whole run, as in the daemon: state left behind by one input
  // must not change what the next one gives.
  static replywatch::connectors::telegram::UpdateParser parser;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto response = parser.parse_response(body);
  if (response.has_value()) check(*response);
  auto update = parser.parse_update(body);
  if (update.has_value()) check(*update);
  // Same input, same answer, also when read in place (the padding then holds old bytes).
  std::string copy(body);
  copy.reserve(size + 64);
  auto again = parser.parse_response_in_place(copy);
  if (again.has_value() != response.has_value()) std::abort();
  if (again.has_value() &&
      (again->events.size() != response->events.size() ||
       again->max_update_id != response->max_update_id || again->rejected != response->rejected)) {
    std::abort();
  }
  return 0;
}
