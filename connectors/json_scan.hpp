// Small pieces every simdjson On-Demand parser of untrusted payloads here shares:
// the plausible-time window, whitespace, raw key matching and integer tokens.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <system_error>

namespace replywatch::connectors::json_scan {

/// Every source agrees on what a plausible event time is; outside this window it is
/// nearly always a zero, or milliseconds where seconds belong.
inline constexpr std::int64_t kFirstTime = 1375315200;  // 2013-08-01T00:00:00Z
inline constexpr std::int64_t kEndTime = 4102444800;    // 2100-01-01T00:00:00Z

inline bool is_json_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/// A raw token without the whitespace simdjson leaves after it.
inline std::string_view trim_json_space(std::string_view token) {
  while (!token.empty() && is_json_space(token.back())) token.remove_suffix(1);
  return token;
}

/// A key compared in the input buffer, unescaped: platforms never escape ASCII keys,
/// so an escaped key reads as an unknown one. The closing quote keeps "chat" from
/// matching "chat_shared"; simdjson's buffer padding keeps the read in bounds.
inline bool key_is(const char* raw, std::string_view name) {
  return std::memcmp(raw, name.data(), name.size()) == 0 && raw[name.size()] == '"';
}

/// An integer from a number's raw token, which runs on through trailing whitespace.
/// A fraction, an exponent or an overflow fails: for us that is a wrong-typed field.
inline bool token_to_int(std::string_view token, std::int64_t& out) {
  const char* end = token.data() + token.size();
  auto [ptr, ec] = std::from_chars(token.data(), end, out);
  if (ec != std::errc{}) return false;
  while (ptr != end && is_json_space(*ptr)) ++ptr;
  return ptr == end;
}

}  // namespace replywatch::connectors::json_scan
