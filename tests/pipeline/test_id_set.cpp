// The id record against std::set: runs, gaps, out-of-order and repeated ids, 32-bit part
// boundaries, and snapshots.
#include <doctest/doctest.h>

#include <random>
#include <set>

#include "pipeline/id_set.hpp"

using replywatch::pipeline::IdSet;

TEST_CASE("id set: behaves like std::set whatever the order, and survives a snapshot") {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 200; ++round) {
    IdSet set;
    std::set<std::int64_t> ref;
    // Around a 32-bit part boundary now and then, so runs cross it.
    const std::int64_t base = round % 4 == 0 ? (std::int64_t{1} << 32) - 300 : 1 + round * 1000;
    std::int64_t next = base;
    for (int i = 0; i < 2000; ++i) {
      std::int64_t id = 0;
      const auto roll = rng() % 100;
      if (roll < 70) {
        id = next++;  // the next in a run
      } else if (roll < 80) {
        next += 1 + static_cast<std::int64_t>(rng() % 5);  // a gap
        id = next++;
      } else if (roll < 95) {
        id = base + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(next - base + 3));
      } else {
        id = (std::int64_t{1} << 56) + static_cast<std::int64_t>(rng() % 100000);  // sparse
      }
      CHECK(set.insert(id) == ref.insert(id).second);
      if (rng() % 7 == 0) {
        const std::int64_t probe = base + static_cast<std::int64_t>(rng() % 3000) - 10;
        CHECK(set.contains(probe) == (ref.count(probe) == 1));
      }
      if (rng() % 500 == 0) set.optimize();
    }
    CHECK(set.size() == ref.size());
    std::string bytes;
    set.serialize(bytes);
    std::string_view in = bytes;
    auto back = IdSet::deserialize(in);
    REQUIRE(back.has_value());
    CHECK(in.empty());
    CHECK(back->size() == ref.size());
    for (const auto id : ref) CHECK(back->contains(id));
    // Inserting after a restore still knows every id.
    for (const auto id : ref) CHECK_FALSE(back->insert(id));
    CHECK_FALSE(back->contains(base - 1));
  }
}

TEST_CASE("id set: a damaged encoding is an error, never a crash") {
  IdSet set;
  for (std::int64_t i = 1; i < 5000; i += 1 + i % 3) set.insert(i);
  std::string bytes;
  set.serialize(bytes);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    std::string_view in(bytes.data(), cut);
    CHECK_FALSE(IdSet::deserialize(in).has_value());
  }
  std::string flipped = bytes;
  for (std::size_t i = 0; i < flipped.size(); i += 5) {
    flipped[i] = static_cast<char>(flipped[i] ^ 0x33);
    std::string_view in = flipped;
    (void)IdSet::deserialize(in);  // any outcome but a crash
  }
}

TEST_CASE("id set: isolated ids among long runs round-trip exactly (the forgotten-roots shape)") {
  // A snapshot of such a set once read back as different ids: CRoaring 0.2.66's portable
  // format wrote a bitset container of 3615 ids in a form read as an array.
  std::mt19937_64 rng(5);
  IdSet set;
  std::set<std::int64_t> ref;
  std::int64_t id = 1;
  for (int i = 0; i < 3615; ++i) {
    id += 2 + static_cast<std::int64_t>(rng() % 30);
    set.insert(id);
    ref.insert(id);
    if (i % 400 == 0) set.optimize();
  }
  for (std::int64_t k = 0; k < 2000; ++k) {  // and a long run after them
    set.insert(id + 10 + k);
    ref.insert(id + 10 + k);
  }
  set.optimize();
  std::string bytes;
  set.serialize(bytes);
  std::string_view in = bytes;
  auto back = IdSet::deserialize(in);
  REQUIRE(back.has_value());
  CHECK(back->size() == ref.size());
  std::int64_t mismatches = 0;
  for (std::int64_t k = 0; k <= id + 2100; ++k)
    mismatches += back->contains(k) != (ref.count(k) == 1);
  CHECK(mismatches == 0);
  std::string again;
  back->serialize(again);
  CHECK(again == bytes);
}
