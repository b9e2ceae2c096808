// The VK poller's cursor: each wall's posts and the comment counts last read in full.
#include "connectors/vk/poller.hpp"

#include <doctest/doctest.h>

using replywatch::connectors::vk::Poller;

TEST_CASE("vk cursor: counts round-trip, and a damaged cursor only costs a re-read") {
  const std::map<std::int64_t, std::int64_t> counts{{100, 9}, {200, 0}, {4000000000LL, 12}};
  CHECK(Poller::format_counts(counts) == "100:9,200:0,4000000000:12");
  CHECK(Poller::parse_counts(Poller::format_counts(counts)) == counts);
  CHECK(Poller::parse_counts("").empty());
  // Whatever cannot be read is dropped: that post is read again, nothing is skipped.
  const auto damaged = Poller::parse_counts("100:9,x:3,200:-1,:5,300:,400:7,500");
  CHECK(damaged == std::map<std::int64_t, std::int64_t>{{100, 9}, {400, 7}});
}
