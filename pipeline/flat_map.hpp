// A small open-addressing hash map for the pairing hot path: linear probing,
// power-of-two capacity, backward-shift deletion (no tombstones), no per-entry
// allocation. std::unordered_map costs an allocation and a pointer chase per
// message, which alone would eat most of the replay's per-message budget. An empty
// slot holds a sentinel key (FlatKey<K>::empty()), so a probe reads one cache line,
// not an occupancy array and then the slot.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

namespace replywatch::pipeline {

/// Fibonacci hashing: spreads sequential ids (message ids are) over the table.
inline std::uint64_t mix_hash(std::uint64_t x) {
  x ^= x >> 31;
  x *= 0x9E3779B97F4A7C15ull;
  return x ^ (x >> 29);
}

struct PairKey {
  std::int64_t a = 0;
  std::int64_t b = 0;
  friend bool operator==(const PairKey&, const PairKey&) = default;
  /// The key an empty slot holds: no id is the most negative int64.
  static constexpr PairKey flat_empty() {
    return {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::min()};
  }
};

/// The sentinel of a key type: a key that is never inserted. Key types other than
/// int64 provide it as a static flat_empty().
template <class K>
struct FlatKey {
  static constexpr K empty() { return K::flat_empty(); }
};
template <>
struct FlatKey<std::int64_t> {
  static constexpr std::int64_t empty() { return std::numeric_limits<std::int64_t>::min(); }
};

struct FlatHash {
  std::uint64_t operator()(std::int64_t k) const { return mix_hash(static_cast<std::uint64_t>(k)); }
  std::uint64_t operator()(const PairKey& k) const {
    return mix_hash(static_cast<std::uint64_t>(k.a) * 0xC2B2AE3D27D4EB4Full ^
                    static_cast<std::uint64_t>(k.b));
  }
};

/// The value of a FlatMap used as a set: takes no room in a slot.
struct Empty {};

template <class K, class V, class Hash = FlatHash>
class FlatMap {
 public:
  struct Slot {
    K first;
    [[no_unique_address]] V second;
  };

  FlatMap() = default;

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  V* find(const K& key) {
    if (size_ == 0) return nullptr;
    for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
      if (slots_[i].first == key) return &slots_[i].second;
      if (vacant(i)) return nullptr;
    }
  }
  const V* find(const K& key) const { return const_cast<FlatMap*>(this)->find(key); }
  bool contains(const K& key) const { return find(key) != nullptr; }

  /// Inserts `value` unless `key` is present. Returns the stored value and whether it is new.
  std::pair<V*, bool> try_emplace(const K& key, const V& value) {
    assert(!(key == FlatKey<K>::empty()) && "the sentinel key cannot be stored");
    if ((size_ + 1) * 4 > capacity() * 3) grow();
    std::size_t i = slot_of(key);
    for (; !vacant(i); i = (i + 1) & mask_) {
      if (slots_[i].first == key) return {&slots_[i].second, false};
    }
    slots_[i] = Slot{key, value};
    ++size_;
    return {&slots_[i].second, true};
  }

  bool erase(const K& key) {
    if (size_ == 0) return false;
    std::size_t i = slot_of(key);
    for (;; i = (i + 1) & mask_) {
      if (vacant(i)) return false;
      if (slots_[i].first == key) break;
    }
    // Backward shift: pull later members of the probe run into the hole so lookups
    // never need tombstones.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask_; !vacant(j); j = (j + 1) & mask_) {
      const std::size_t home = slot_of(slots_[j].first);
      const bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
      if (movable) {
        slots_[hole] = std::move(slots_[j]);
        hole = j;
      }
    }
    slots_[hole] = Slot{FlatKey<K>::empty(), V{}};  // also frees what the value held
    --size_;
    return true;
  }

  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (!vacant(i)) f(slots_[i].first, slots_[i].second);
    }
  }

  /// After many erasures: rebuilds at the smallest capacity that keeps the load at most
  /// one half, returning the memory (a table never shrinks by itself).
  void shrink() {
    std::size_t next = 16;
    while (next < size_ * 2) next *= 2;
    if (next >= capacity()) return;
    rehash(next);
  }

  void clear() {
    slots_.clear();
    size_ = 0;
    mask_ = 0;
  }

  /// Bytes held by the table (for memory accounting in benchmarks).
  std::size_t memory_bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  std::size_t capacity() const { return slots_.size(); }
  std::size_t slot_of(const K& key) const { return Hash{}(key)&mask_; }
  bool vacant(std::size_t i) const { return slots_[i].first == FlatKey<K>::empty(); }

  void grow() { rehash(capacity() == 0 ? 16 : capacity() * 2); }

  void rehash(std::size_t next) {
    std::vector<Slot> old(next, Slot{FlatKey<K>::empty(), V{}});
    old.swap(slots_);
    mask_ = next - 1;
    for (Slot& s : old) {
      if (s.first == FlatKey<K>::empty()) continue;
      std::size_t j = slot_of(s.first);
      while (!vacant(j)) j = (j + 1) & mask_;
      slots_[j] = std::move(s);
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace replywatch::pipeline
