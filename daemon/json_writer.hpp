// A minimal streaming JSON writer for reports, appeal records and HTTP bodies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace replywatch::daemon {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view v);
  JsonWriter& value(const char* v) { return value(std::string_view(v)); }
  JsonWriter& value(std::int64_t v);
  JsonWriter& value(std::uint64_t v);
  JsonWriter& value(int v) { return value(static_cast<std::int64_t>(v)); }
  JsonWriter& value(double v);
  JsonWriter& value(const std::optional<double>& v);
  JsonWriter& value(bool v);
  JsonWriter& null();
  /// A value that is already JSON text (written by another writer).
  JsonWriter& raw(std::string_view json);

  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }

 private:
  void separate();
  std::string& out_;
  std::vector<bool> first_;  // per open container: nothing written yet
  bool after_key_ = false;
};

/// Appends `s` as a JSON string literal (quotes, escapes, invalid UTF-8 replaced).
void append_json_string(std::string& out, std::string_view s);

/// Shortest text that reads back as the same double; integers print without ".0".
std::string format_number(double v);

}  // namespace replywatch::daemon
