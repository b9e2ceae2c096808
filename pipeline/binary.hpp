// Little-endian binary encoding for state snapshots; the reader is bounds-checked
// so a damaged snapshot is an error, never a crash.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace replywatch::pipeline {

namespace detail {
template <class T, bool = std::is_enum_v<T>>
struct WireType {
  using type = std::make_unsigned_t<T>;
};
template <class T>
struct WireType<T, true> {
  using type = std::make_unsigned_t<std::underlying_type_t<T>>;
};
}  // namespace detail

class BinaryWriter {
 public:
  explicit BinaryWriter(std::string& out) : out_(out) {}

  template <class T>
    requires std::is_integral_v<T> || std::is_enum_v<T>
  void put(T v) {
    using U = typename detail::WireType<T>::type;
    auto u = static_cast<U>(v);
    for (std::size_t i = 0; i < sizeof(U); ++i) out_.push_back(static_cast<char>((u >> (8 * i)) & 0xFF));
  }
  void put_bytes(std::string_view s) {
    put(static_cast<std::uint64_t>(s.size()));
    out_.append(s);
  }

 private:
  std::string& out_;
};

class BinaryReader {
 public:
  explicit BinaryReader(std::string_view in) : in_(in) {}

  template <class T>
    requires std::is_integral_v<T> || std::is_enum_v<T>
  bool get(T& v) {
    using U = typename detail::WireType<T>::type;
    if (in_.size() - pos_ < sizeof(U)) return fail();
    U u = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) {
      u |= static_cast<U>(static_cast<U>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i));
    }
    pos_ += sizeof(U);
    v = static_cast<T>(u);
    return true;
  }
  bool get_bytes(std::string_view& s) {
    std::uint64_t n = 0;
    if (!get(n) || n > in_.size() - pos_) return fail();
    s = in_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  bool get_string(std::string& s) {
    std::string_view v;
    if (!get_bytes(v)) return false;
    s.assign(v);
    return true;
  }
  /// A count of items of at least `min_item_bytes` each: rejects counts the
  /// remaining bytes cannot hold, so a damaged count cannot force a huge allocation.
  bool get_count(std::uint64_t& n, std::size_t min_item_bytes) {
    if (!get(n)) return false;
    if (min_item_bytes > 0 && n > (in_.size() - pos_) / min_item_bytes) return fail();
    return true;
  }

  /// The bytes not read yet; skip() then passes over what another reader consumed.
  std::string_view rest() const { return in_.substr(pos_); }
  bool skip(std::size_t n) {
    if (n > in_.size() - pos_) return fail();
    pos_ += n;
    return true;
  }

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }
  std::size_t position() const { return pos_; }

 private:
  bool fail() {
    ok_ = false;
    return false;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace replywatch::pipeline
