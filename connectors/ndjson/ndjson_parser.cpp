// Parses the generic ingest format (one JSON object per line) with simdjson On-Demand and
// tails files of it in bounded chunks, resuming from a cursor.
#include "connectors/ndjson/ndjson_parser.hpp"

#include "connectors/json_scan.hpp"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <system_error>
#include <utility>
#include <vector>

namespace replywatch::connectors::ndjson {

namespace {

using json_scan::is_json_space;
using json_scan::trim_json_space;
using json_scan::kFirstTime;
using json_scan::kEndTime;

namespace od = simdjson::ondemand;
using pipeline::AuthorHint;
using pipeline::EventKind;
using simdjson::error_code;

// The file reader's read size: large enough to amortize the system call, small enough that
// a daemon tailing many files keeps little memory per poll.
constexpr std::size_t kChunkBytes = std::size_t{64} << 10;

constexpr std::string_view kNotJson = "not_json";
constexpr std::string_view kNotAnObject = "not_an_object";
constexpr std::string_view kDuplicateField = "duplicate_field";
constexpr std::string_view kMissingSource = "missing_source";
constexpr std::string_view kBadSource = "bad_source";
constexpr std::string_view kMissingConversation = "missing_conversation";
constexpr std::string_view kBadConversation = "bad_conversation";
constexpr std::string_view kMissingMessageId = "missing_message_id";
constexpr std::string_view kBadMessageId = "bad_message_id";
constexpr std::string_view kBadReplyTo = "bad_reply_to";
constexpr std::string_view kBadAddressee = "bad_addressee";
constexpr std::string_view kMissingAuthor = "missing_author";
constexpr std::string_view kBadAuthor = "bad_author";
constexpr std::string_view kMissingTime = "missing_time";
constexpr std::string_view kBadTime = "bad_time";
constexpr std::string_view kTimeOutOfRange = "time_out_of_range";
constexpr std::string_view kBadAuthorKind = "bad_author_kind";
constexpr std::string_view kBadKind = "bad_kind";
constexpr std::string_view kLineTooLong = "line_too_long";

constexpr std::array<std::string_view, 19> kReasons = {
    kLineTooLong,         kNotJson,         kNotAnObject,
    kDuplicateField,      kMissingSource,   kBadSource,
    kMissingConversation, kBadConversation, kMissingMessageId,
    kBadMessageId,        kBadReplyTo,      kBadAddressee,
    kMissingAuthor,       kBadAuthor,       kMissingTime,
    kBadTime,             kTimeOutOfRange,  kBadAuthorKind,
    kBadKind,
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A JSON-grammar integer ("-"? ("0" | [1-9][0-9]*)) that fits in 64 bits. from_chars alone
// would take "007", which as a string id could be a different id than 7 at the source.
bool canonical_integer(std::string_view text, std::int64_t& out) {
  std::size_t digits = text.starts_with('-') ? 1 : 0;
  if (digits >= text.size() || !is_digit(text[digits])) return false;
  if (text[digits] == '0' && digits + 1 != text.size()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && ptr == end;
}

// "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" (RFC 3339 section 5.6, where T and Z
// may be lowercase) as unix seconds. The fraction is dropped: unix seconds floor it. A leap
// second (:60) counts as the next second, as POSIX arithmetic does.
bool parse_rfc3339(std::string_view text, std::int64_t& out) {
  auto number = [&](std::size_t pos, std::size_t len, int& value) {
    value = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (!is_digit(text[i])) return false;
      value = value * 10 + (text[i] - '0');
    }
    return true;
  };
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') {
    return false;
  }
  int year, month, day, hour, minute, second;
  if (!number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day) || !number(11, 2, hour) ||
      !number(14, 2, minute) || !number(17, 2, second)) {
    return false;
  }
  std::size_t pos = 19;
  if (text[pos] == '.') {
    const std::size_t first = ++pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
    if (pos == first || pos == text.size()) return false;
  }
  int offset_seconds = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    if (pos + 1 != text.size()) return false;
  } else if (text[pos] == '+' || text[pos] == '-') {
    int offset_hour, offset_minute;
    if (pos + 6 != text.size() || text[pos + 3] != ':' || !number(pos + 1, 2, offset_hour) ||
        !number(pos + 4, 2, offset_minute) || offset_hour > 23 || offset_minute > 59) {
      return false;
    }
    offset_seconds = (offset_hour * 60 + offset_minute) * 60;
    if (text[pos] == '-') offset_seconds = -offset_seconds;
  } else {
    return false;
  }
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) return false;
  const std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  out = days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  return true;
}

// How a field's value turned out. A JSON error ends the whole line; a wrong value ends it too,
// but with the field's own reason.
enum class Got { value, null, wrong, json_error };

// Reads the value's type and, for null, checks the atom: On-Demand's type() looks only at
// the first byte, and "nul" must not pass as an absent field.
Got peek_type(od::value& value, od::json_type& type) {
  if (value.type().get(type)) return Got::json_error;
  if (type != od::json_type::null) return Got::value;
  bool is_null = false;
  if (value.is_null().get(is_null) || !is_null) return Got::json_error;
  return Got::null;
}

// An integer given as a JSON number or as a decimal string; ids above 2^53 survive either
// way because the digits are read here rather than through a double.
Got read_integer(od::value& value, std::int64_t& out) {
  od::json_type type;
  if (Got got = peek_type(value, type); got != Got::value) return got;
  if (type == od::json_type::number) {
    const std::string_view token = trim_json_space(value.raw_json_token());
    return canonical_integer(token, out) ? Got::value : Got::wrong;
  }
  if (type != od::json_type::string) return Got::wrong;
  std::string_view text;
  if (value.get_string().get(text)) return Got::json_error;
  return canonical_integer(text, out) ? Got::value : Got::wrong;
}

Got read_string(od::value& value, std::string_view& out) {
  od::json_type type;
  if (Got got = peek_type(value, type); got != Got::value) return got;
  if (type != od::json_type::string) return Got::wrong;
  if (value.get_string().get(out)) return Got::json_error;
  return Got::value;
}

Got read_time(od::value& value, std::int64_t& out) {
  od::json_type type;
  if (Got got = peek_type(value, type); got != Got::value) return got;
  if (type == od::json_type::number) return read_integer(value, out);
  if (type != od::json_type::string) return Got::wrong;
  std::string_view text;
  if (value.get_string().get(text)) return Got::json_error;
  return parse_rfc3339(text, out) ? Got::value : Got::wrong;
}

// JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and then only
// whitespace. Checked on the token rather than by simdjson's number parser, which refuses
// valid numbers outside double range (1e400) that an ignored payload may well hold.
bool is_json_number(std::string_view token) {
  token = trim_json_space(token);
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t first = i;
    while (i < token.size() && is_digit(token[i])) ++i;
    return i - first;
  };
  if (i < token.size() && token[i] == '-') ++i;
  if (i < token.size() && token[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return false;
  }
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == token.size();
}

// Levels of nesting a line may have, its own object counting as the first. On-Demand tracks
// depth without enforcing its limit (1024): release builds walk on, while unoptimized builds
// (SIMDJSON_DEVELOPMENT_CHECKS) abort a little before it on malformed input. So the depth is
// measured before simdjson sees the line, with a margin below its limit.
constexpr int kMaxDepth = 1000;

// True when brackets outside strings nest at most `max_depth` deep and no closer comes
// before its opener (which no JSON can have). Strings are tracked as simdjson's first stage
// does: a quote ends a string unless escaped.
bool nesting_within(std::string_view json, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        if (--depth < 0) return false;
        break;
      default: break;
    }
  }
  return true;
}

// Walks a value nobody reads. On-Demand would skip it by counting brackets alone and let
// `"raw":[1 2]` or `"raw":]` through; a line is accepted only if all of it is JSON, so that
// a lenient reading never becomes a format integrators rely on.
error_code validate(od::value& value, int depth) {
  // nesting_within has bounded the depth already; this keeps the recursion bounded on its own.
  if (depth > kMaxDepth) return simdjson::DEPTH_ERROR;
  od::json_type type;
  if (error_code e = value.type().get(type)) return e;
  switch (type) {
    case od::json_type::object: {
      od::object object;
      if (error_code e = value.get_object().get(object)) return e;
      for (auto result : object) {
        od::field field;
        if (error_code e = std::move(result).get(field)) return e;
        if (error_code e = field.unescaped_key().error()) return e;
        if (error_code e = validate(field.value(), depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::array: {
      od::array array;
      if (error_code e = value.get_array().get(array)) return e;
      for (auto result : array) {
        od::value element;
        if (error_code e = std::move(result).get(element)) return e;
        if (error_code e = validate(element, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::number:
      return is_json_number(value.raw_json_token()) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
    case od::json_type::string: return value.get_string().error();
    case od::json_type::boolean: return value.get_bool().error();
    case od::json_type::null: {
      bool is_null = false;
      if (error_code e = value.is_null().get(is_null)) return e;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::INCORRECT_TYPE;
}

bool parse_author_kind(std::string_view text, AuthorHint& out) {
  if (text == "user") {
    out = AuthorHint::user;
  } else if (text == "chat") {
    out = AuthorHint::chat;
  } else if (text == "bot") {
    out = AuthorHint::bot;
  } else if (text == "automatic_forward") {
    out = AuthorHint::automatic_forward;
  } else {
    return false;
  }
  return true;
}

bool parse_kind(std::string_view text, EventKind& out) {
  if (text == "message") {
    out = EventKind::message;
  } else if (text == "service") {
    out = EventKind::service;
  } else if (text == "edit") {
    out = EventKind::edit;
  } else if (text == "delete") {
    out = EventKind::remove;
  } else {
    return false;
  }
  return true;
}

enum Field : unsigned {
  kSource = 1u << 0,
  kConversation = 1u << 1,
  kMessageId = 1u << 2,
  kReplyTo = 1u << 3,
  kAuthor = 1u << 4,
  kAuthorKind = 1u << 5,
  kTime = 1u << 6,
  kKind = 1u << 7,
  kAddressee = 1u << 8,
};

Field field_of(std::string_view key) {
  if (key == "source") return kSource;
  if (key == "conversation") return kConversation;
  if (key == "message_id") return kMessageId;
  if (key == "reply_to") return kReplyTo;
  if (key == "author") return kAuthor;
  if (key == "author_kind") return kAuthorKind;
  if (key == "time") return kTime;
  if (key == "kind") return kKind;
  if (key == "addressee") return kAddressee;
  return Field{0};
}

// One line's fields as they are read; the event is only built once all of them passed.
class LineReader {
 public:
  std::string_view run(od::parser& parser, simdjson::padded_string_view json,
                       pipeline::Event& event) {
    if (!nesting_within(std::string_view(json.data(), json.length()), kMaxDepth)) {
      return kNotJson;
    }
    od::document doc;
    if (parser.iterate(json).get(doc)) return kNotJson;
    od::json_type type;
    if (doc.type().get(type)) return kNotJson;
    if (type != od::json_type::object) return not_an_object(doc, type);
    od::object root;
    if (doc.get_object().get(root)) return kNotJson;
    for (auto result : root) {
      od::field field;
      if (std::move(result).get(field)) return kNotJson;
      // Unescaped, so that an integrator's JSON library escaping a key does not hide it.
      std::string_view key;
      if (field.unescaped_key().get(key)) return kNotJson;
      const Field which = field_of(key);
      if (which == 0) {
        if (validate(field.value(), 2)) return kNotJson;
        continue;
      }
      if (seen_ & which) return kDuplicateField;
      seen_ |= which;
      if (std::string_view reason = read_field(which, field.value()); !reason.empty()) {
        return reason;
      }
    }
    // On-Demand stops at the end of the object; anything after it is still not JSON.
    if (!doc.current_location().error()) return kNotJson;
    return finish(event);
  }

 private:
  // A line that is JSON but not an object is told apart from one that is not JSON at all.
  // type() judges by the first byte only, so the document is read in full to be sure.
  static std::string_view not_an_object(od::document& doc, od::json_type type) {
    error_code error = simdjson::SUCCESS;
    switch (type) {
      case od::json_type::array: {
        od::array array;
        error = doc.get_array().get(array);
        if (error) break;  // a failed array must not be iterated
        for (auto result : array) {
          od::value element;
          error = std::move(result).get(element);
          if (!error) error = validate(element, 2);
          if (error) break;
        }
        if (!error && !doc.current_location().error()) error = simdjson::TRAILING_CONTENT;
        break;
      }
      case od::json_type::null: {
        bool is_null = false;
        error = doc.is_null().get(is_null);
        if (!error && !is_null) error = simdjson::N_ATOM_ERROR;
        break;
      }
      case od::json_type::boolean: error = doc.get_bool().error(); break;
      case od::json_type::number: error = doc.get_number().error(); break;
      case od::json_type::string: error = doc.get_string().error(); break;
      default: break;
    }
    return error ? kNotJson : kNotAnObject;
  }

  std::string_view read_field(Field which, od::value& value) {
    std::string_view text;
    Got got = Got::value;
    switch (which) {
      case kSource:
        got = read_string(value, text);
        if (got == Got::value && !pipeline::parse_source(text, event_.source)) {
          got = Got::wrong;
        }
        if (got == Got::value) has_source_ = true;
        return verdict(got, kBadSource);
      case kConversation:
        got = read_integer(value, event_.conversation);
        if (got == Got::value && event_.conversation == 0) got = Got::wrong;
        if (got == Got::value) has_conversation_ = true;
        return verdict(got, kBadConversation);
      case kMessageId:
        got = read_integer(value, event_.message_id);
        if (got == Got::value && event_.message_id <= 0) got = Got::wrong;
        if (got == Got::value) has_message_id_ = true;
        return verdict(got, kBadMessageId);
      case kReplyTo:
        got = read_integer(value, event_.reply_to);
        if (got == Got::value && event_.reply_to <= 0) got = Got::wrong;
        return verdict(got, kBadReplyTo);
      case kAddressee:
        got = read_integer(value, event_.addressee);
        if (got == Got::value && event_.addressee == 0) got = Got::wrong;
        return verdict(got, kBadAddressee);
      case kAuthor:
        got = read_integer(value, event_.author);
        if (got == Got::value && event_.author == 0) got = Got::wrong;
        if (got == Got::value) has_author_ = true;
        return verdict(got, kBadAuthor);
      case kAuthorKind:
        got = read_string(value, text);
        if (got == Got::value && !parse_author_kind(text, event_.author_hint)) got = Got::wrong;
        return verdict(got, kBadAuthorKind);
      case kTime:
        got = read_time(value, event_.time);
        if (got == Got::value && (event_.time < kFirstTime || event_.time >= kEndTime)) {
          return kTimeOutOfRange;
        }
        if (got == Got::value) has_time_ = true;
        return verdict(got, kBadTime);
      case kKind:
        got = read_string(value, text);
        if (got == Got::value && !parse_kind(text, event_.kind)) got = Got::wrong;
        return verdict(got, kBadKind);
    }
    return {};
  }

  static std::string_view verdict(Got got, std::string_view wrong) {
    if (got == Got::json_error) return kNotJson;
    if (got == Got::wrong) return wrong;
    return {};
  }

  std::string_view finish(pipeline::Event& event) {
    if (!has_source_) return kMissingSource;
    if (!has_conversation_) return kMissingConversation;
    if (!has_message_id_) return kMissingMessageId;
    if (!has_author_) {
      if (event_.kind != EventKind::service) return kMissingAuthor;
      // A hint about nobody would only mislead the registry.
      event_.author = 0;
      event_.author_hint = AuthorHint::unknown;
    }
    if (!has_time_) return kMissingTime;
    event = event_;
    return {};
  }

  pipeline::Event event_;  // null optional fields leave their defaults here
  unsigned seen_ = 0;
  bool has_source_ = false;
  bool has_conversation_ = false;
  bool has_message_id_ = false;
  bool has_author_ = false;
  bool has_time_ = false;
};

bool is_blank_or_comment(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && is_json_space(line[i])) ++i;
  return i == line.size() || line[i] == '#';
}

}  // namespace

std::span<const std::string_view> rejection_reasons() { return kReasons; }

struct Parser::State {
  od::parser parser;
  std::vector<char> padded;  // the current line plus simdjson's padding, reused
};

Parser::Parser() : state_(std::make_unique<State>()) {}
Parser::~Parser() = default;
Parser::Parser(Parser&&) noexcept = default;
Parser& Parser::operator=(Parser&&) noexcept = default;

std::string_view Parser::parse_line(std::string_view line, pipeline::Event& event) {
  if (line.size() > kMaxLineBytes) return kLineTooLong;
  // Editors on Windows start files with a byte order mark; it is not part of the JSON.
  if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  if (is_blank_or_comment(line)) return kSkip;
  std::vector<char>& padded = state_->padded;
  if (padded.size() < line.size() + simdjson::SIMDJSON_PADDING) {
    padded.resize(line.size() + simdjson::SIMDJSON_PADDING);
  }
  std::memcpy(padded.data(), line.data(), line.size());
  std::memset(padded.data() + line.size(), 0, simdjson::SIMDJSON_PADDING);
  LineReader reader;
  return reader.run(state_->parser,
                    simdjson::padded_string_view(padded.data(), line.size(), padded.size()), event);
}

namespace {

// Closes the descriptor on every return path.
struct Descriptor {
  int fd = -1;
  ~Descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

Error io_error(const std::string& path, std::string_view what, int error) {
  return make_error(path + ": " + std::string(what) + ": " +
                    std::generic_category().message(error));
}

}  // namespace

Result<ReadSummary> read_new_lines(
    const std::string& path, FileCursor& cursor, std::size_t max_bytes,
    const std::function<void(const pipeline::Event&)>& on_event,
    const std::function<void(std::string_view reason, std::uint64_t line_offset)>& on_rejected) {
  // Non-blocking so that a FIFO put at the path cannot hang the poller in open().
  Descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)};
  if (file.fd < 0) return io_error(path, "cannot open", errno);
  struct stat info {};
  if (::fstat(file.fd, &info) != 0) return io_error(path, "cannot stat", errno);
  if (S_ISDIR(info.st_mode)) return io_error(path, "cannot read", EISDIR);
  if (!S_ISREG(info.st_mode)) return make_error(path + ": cannot read: not a regular file");

  ReadSummary summary;
  const auto device = static_cast<std::uint64_t>(info.st_dev);
  const auto inode = static_cast<std::uint64_t>(info.st_ino);
  const auto size = static_cast<std::uint64_t>(info.st_size);
  if (cursor.inode != 0 && (cursor.device != device || cursor.inode != inode)) {
    summary.replaced = true;
  } else if (size < cursor.offset) {
    // copytruncate-style rotation. A file truncated and regrown past the cursor between two
    // polls, or deleted and recreated under a reused inode number and already longer, cannot
    // be told apart from an append and is read on from the old offset.
    summary.truncated = true;
  }
  if (summary.replaced || summary.truncated) {
    cursor.offset = 0;
    cursor.in_long_line = false;
  }
  cursor.device = device;
  cursor.inode = inode;

  // One parser per thread, reused across calls. A callback that reads another file on this
  // thread is harmless: each parse_line finishes before its callback runs.
  thread_local Parser parser;
  const std::uint64_t budget = std::max<std::uint64_t>(max_bytes, 1);
  std::vector<char> buffer;  // bytes from cursor.offset on, not yet consumed
  std::size_t start = 0;     // buffer index of cursor.offset
  std::size_t scanned = 0;   // buffer index up to which no '\n' follows start
  std::uint64_t read_offset = cursor.offset;
  bool eof = false;

  auto consume = [&](std::size_t count) {
    start += count;
    scanned = start;
    cursor.offset += count;
    summary.bytes += count;
  };

  for (;;) {
    while (summary.bytes < budget && start < buffer.size()) {
      const char* first = buffer.data() + scanned;
      const auto* newline =
          static_cast<const char*>(std::memchr(first, '\n', buffer.size() - scanned));
      if (cursor.in_long_line) {
        if (newline == nullptr) {
          consume(buffer.size() - start);
          break;
        }
        consume(static_cast<std::size_t>(newline - (buffer.data() + start)) + 1);
        cursor.in_long_line = false;
        continue;
      }
      if (newline == nullptr) {
        scanned = buffer.size();
        if (buffer.size() - start > kMaxLineBytes) {
          // Rejected before its end arrives, so that memory stays bounded by the line limit.
          const std::uint64_t line_offset = cursor.offset;
          consume(buffer.size() - start);
          cursor.in_long_line = true;
          ++summary.lines;
          ++summary.rejected;
          if (on_rejected) on_rejected(kLineTooLong, line_offset);
        }
        break;
      }
      const std::string_view line(buffer.data() + start,
                                  static_cast<std::size_t>(newline - (buffer.data() + start)));
      const std::uint64_t line_offset = cursor.offset;
      pipeline::Event event;
      const std::string_view reason = parser.parse_line(line, event);
      consume(line.size() + 1);
      ++summary.lines;
      if (reason.empty()) {
        ++summary.events;
        if (on_event) on_event(event);
      } else if (reason == kSkip) {
        ++summary.skipped;
      } else {
        ++summary.rejected;
        if (on_rejected) on_rejected(reason, line_offset);
      }
    }
    if (summary.bytes >= budget || eof) break;

    // Drop what was consumed, then append the next chunk.
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(start));
    scanned -= start;
    start = 0;
    const std::size_t old_size = buffer.size();
    buffer.resize(old_size + kChunkBytes);
    ssize_t count;
    do {
      count =
          ::pread(file.fd, buffer.data() + old_size, kChunkBytes, static_cast<off_t>(read_offset));
    } while (count < 0 && errno == EINTR);
    if (count < 0) return io_error(path, "cannot read", errno);
    buffer.resize(old_size + static_cast<std::size_t>(count));
    read_offset += static_cast<std::uint64_t>(count);
    eof = count == 0;
  }
  // Stopped by the budget: say there is more unless everything seen has been consumed.
  summary.at_end = eof || (start == buffer.size() && read_offset >= size);
  return summary;
}

}  // namespace replywatch::connectors::ndjson
