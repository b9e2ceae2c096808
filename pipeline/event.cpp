// Names of sources as they appear in configuration, labels and outputs.
#include "pipeline/event.hpp"

#include <array>

namespace replywatch::pipeline {

namespace {
constexpr std::array<std::string_view, 6> kSourceNames = {"telegram", "vk",       "facebook",
                                                          "instagram", "mastodon", "x"};
}

std::string_view to_string(Source s) { return kSourceNames[static_cast<std::size_t>(s)]; }

bool parse_source(std::string_view text, Source& out) {
  for (std::size_t i = 0; i < kSourceNames.size(); ++i) {
    if (kSourceNames[i] == text) {
      out = static_cast<Source>(i);
      return true;
    }
  }
  return false;
}

}  // namespace replywatch::pipeline
