// libFuzzer target for the VK parser: any bytes, as one document and as a file of many,
// through one long-lived parser; build and run as in tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "connectors/vk/vk_parser.hpp"

namespace {

using replywatch::connectors::vk::Parsed;

// Bounds every result must keep, whatever the input.
void check(const Parsed& p) {
  for (const auto& [reason, count] : p.rejected) {
    if (reason.empty() || count == 0) std::abort();
  }
  // Every post and comment read is an event or a rejection; errors and pushes are counted
  // as rejections without being objects.
  if (p.events.size() > p.objects) std::abort();
  for (const auto& e : p.events) {
    if (e.message_id <= 0 || e.conversation == 0) std::abort();
    if (e.reply_to < 0) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static replywatch::connectors::vk::Parser parser;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  {
    Parsed p;
    const auto ok = parser.parse(text, 1780000000, p);
    if (!ok && !p.events.empty()) std::abort();  // a broken document adds nothing
    check(p);
  }
  {
    Parsed p;
    (void)parser.parse_many(text, 1780000000, p);
    check(p);
  }
  return 0;
}
