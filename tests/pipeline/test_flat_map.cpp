// The open-addressing map against std::map under random inserts and erases.
#include "pipeline/flat_map.hpp"

#include <doctest/doctest.h>

#include <map>
#include <random>

using replywatch::pipeline::FlatMap;

TEST_CASE("FlatMap behaves like std::map under random inserts and erases") {
  std::mt19937_64 rng(7);
  FlatMap<std::int64_t, std::int64_t> flat;
  std::map<std::int64_t, std::int64_t> ref;
  for (int i = 0; i < 200000; ++i) {
    // A small key range forces long probe runs, wrap-around and backward shifts.
    const auto k = static_cast<std::int64_t>(rng() % 3000) - 1500;
    if (rng() % 3 == 0) {
      CHECK(flat.erase(k) == (ref.erase(k) == 1));
    } else {
      const bool inserted = flat.try_emplace(k, i).second;
      CHECK(inserted == ref.emplace(k, i).second);
    }
  }
  REQUIRE(flat.size() == ref.size());
  for (const auto& [k, v] : ref) {
    const auto* found = flat.find(k);
    REQUIRE(found != nullptr);
    CHECK(*found == v);
  }
  std::size_t visited = 0;
  flat.for_each([&](std::int64_t, std::int64_t) { ++visited; });
  CHECK(visited == ref.size());
}
