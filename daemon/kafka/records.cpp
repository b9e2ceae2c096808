// Record values are written field by field with JsonWriter and read with simdjson
// On-Demand, one pass per record, unknown fields skipped (a later schema may add some).
// Ids are written as strings, as the ingest format asks of producers; both forms are read.
#include "daemon/kafka/records.hpp"

#include <simdjson.h>

#include <charconv>
#include <cstring>

#include "daemon/json_writer.hpp"

namespace replywatch::daemon::kafka {

namespace {

namespace od = simdjson::ondemand;
using pipeline::Appeal;
using pipeline::AppealKind;
using pipeline::AppealStatus;
using pipeline::AuthorHint;
using pipeline::Event;
using pipeline::EventKind;
using pipeline::Source;

std::string_view hint_name(AuthorHint h) {
  switch (h) {
    case AuthorHint::user:
      return "user";
    case AuthorHint::chat:
      return "chat";
    case AuthorHint::bot:
      return "bot";
    case AuthorHint::automatic_forward:
      return "automatic_forward";
    case AuthorHint::unknown:
      return "unknown";
  }
  return "unknown";
}

bool parse_hint(std::string_view s, AuthorHint& out) {
  for (auto h : {AuthorHint::user, AuthorHint::chat, AuthorHint::bot, AuthorHint::automatic_forward,
                 AuthorHint::unknown}) {
    if (s == hint_name(h)) {
      out = h;
      return true;
    }
  }
  return false;
}

std::string_view kind_name(EventKind k) {
  switch (k) {
    case EventKind::message:
      return "message";
    case EventKind::service:
      return "service";
    case EventKind::edit:
      return "edit";
    case EventKind::remove:
      return "delete";
  }
  return "message";
}

bool parse_kind(std::string_view s, EventKind& out) {
  for (auto k : {EventKind::message, EventKind::service, EventKind::edit, EventKind::remove}) {
    if (s == kind_name(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

void id_field(JsonWriter& w, std::string_view key, std::int64_t id) {
  w.field(key, std::string_view(std::to_string(id)));
}

void envelope(JsonWriter& w, std::string_view type) {
  w.begin_object().field("schema_version", kSchemaVersion).field("type", type);
}

// ---- reading ----

/// An id: a JSON integer or a string of decimal digits that fits in int64.
bool read_id(od::value v, std::int64_t& out) {
  od::json_type t;
  if (v.type().get(t)) return false;
  if (t == od::json_type::number) return !v.get_int64().get(out);
  if (t != od::json_type::string) return false;
  std::string_view s;
  if (v.get_string().get(s) || s.empty()) return false;
  // As the ingest format: no leading zeros ("007" could be another platform's id, not 7).
  const std::size_t digits = s[0] == '-' ? 1 : 0;
  if (s.size() > digits + 1 && s[digits] == '0') return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool read_int(od::value v, std::int64_t& out) { return !v.get_int64().get(out); }

bool read_text(od::value v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return false;
  out.assign(s);
  return true;
}

Error wrong(std::string_view record, std::string_view field) {
  return make_error(std::string(record) + " record: field '" + std::string(field) +
                    "' is missing or has the wrong type");
}

/// Iterates an object's fields, handing each (key, value) to `f`, which returns false for a
/// bad value (its key is then named). Unknown keys are skipped by `f` returning true.
template <class F>
Result<void> for_fields(od::object obj, std::string_view record, F&& f) {
  for (auto result : obj) {
    od::field field;
    if (std::move(result).get(field)) return make_error(std::string(record) + " record: not JSON");
    std::string_view key;
    if (field.unescaped_key().get(key)) {
      return make_error(std::string(record) + " record: not JSON");
    }
    if (!f(key, field.value())) return wrong(record, key);
  }
  return {};
}

Result<void> read_event(od::value v, Event& e) {
  od::object obj;
  if (v.get_object().get(obj)) return make_error("events record: an event is not an object");
  bool has_source = false, has_conversation = false, has_id = false, has_time = false;
  auto ok = for_fields(obj, "events", [&](std::string_view key, od::value value) {
    std::string_view s;
    if (key == "source") {
      return has_source = !value.get_string().get(s) && pipeline::parse_source(s, e.source);
    }
    if (key == "conversation") return has_conversation = read_id(value, e.conversation);
    if (key == "message_id") return has_id = read_id(value, e.message_id);
    if (key == "reply_to") return read_id(value, e.reply_to);
    if (key == "author") return read_id(value, e.author);
    if (key == "addressee") return read_id(value, e.addressee);
    if (key == "author_kind") return !value.get_string().get(s) && parse_hint(s, e.author_hint);
    if (key == "time") return has_time = read_int(value, e.time);
    if (key == "kind") return !value.get_string().get(s) && parse_kind(s, e.kind);
    return true;
  });
  if (!ok) return ok;
  if (!has_source) return wrong("events", "source");
  if (!has_conversation) return wrong("events", "conversation");
  if (!has_id || e.message_id <= 0) return wrong("events", "message_id");
  if (!has_time) return wrong("events", "time");
  return {};
}

bool read_appeal(od::value v, const pipeline::Registry& registry, Appeal& a) {
  od::object obj;
  if (v.get_object().get(obj)) return false;
  std::string agency;
  bool has_agency = false, has_source = false, has_conversation = false, has_message = false;
  auto ok = for_fields(obj, "appeals", [&](std::string_view key, od::value value) {
    std::string_view s;
    if (key == "source") {
      return has_source = !value.get_string().get(s) && pipeline::parse_source(s, a.source);
    }
    if (key == "agency") return has_agency = read_text(value, agency);
    if (key == "conversation") return has_conversation = read_id(value, a.conversation);
    if (key == "thread") return read_id(value, a.thread);
    if (key == "citizen") return read_id(value, a.citizen);
    if (key == "opened_message") return has_message = read_id(value, a.opened_message);
    if (key == "opened_at") return read_int(value, a.opened_at);
    if (key == "answer_message") return read_id(value, a.answer_message);
    if (key == "answered_at") return read_int(value, a.answered_at);
    if (key == "responder") return read_id(value, a.responder);
    if (key == "reply_seconds") return read_int(value, a.reply_seconds);
    if (key == "business_reply_seconds") return read_int(value, a.business_reply_seconds);
    if (key == "kind") {
      if (value.get_string().get(s)) return false;
      if (s == "first")
        a.kind = AppealKind::first;
      else if (s == "followup")
        a.kind = AppealKind::followup;
      else
        return false;
      return true;
    }
    if (key == "status") {
      if (value.get_string().get(s)) return false;
      for (auto st : {AppealStatus::open, AppealStatus::answered, AppealStatus::unanswered,
                      AppealStatus::withdrawn}) {
        if (s == pipeline::to_string(st)) {
          a.status = st;
          return true;
        }
      }
      return false;
    }
    return true;
  });
  if (!ok || !has_agency || !has_source || !has_conversation || !has_message) return false;
  a.agency = registry.agency_index(agency);
  a.responder_account = -1;
  if (a.status == AppealStatus::answered && a.agency >= 0) {
    const auto found = registry.lookup_account(a.source, a.responder);
    a.responder_account = found.agency == a.agency ? found.account : -1;
  }
  return true;
}

void appeal_object(JsonWriter& w, const pipeline::Registry& registry, const Appeal& a) {
  const bool known = a.agency >= 0 && static_cast<std::size_t>(a.agency) < registry.agencies.size();
  w.begin_object();
  w.field("agency", known ? std::string_view(registry.agencies[a.agency].id) : "");
  w.field("source", pipeline::to_string(a.source));
  id_field(w, "conversation", a.conversation);
  id_field(w, "thread", a.thread);
  id_field(w, "citizen", a.citizen);
  id_field(w, "opened_message", a.opened_message);
  w.field("opened_at", a.opened_at);
  w.field("kind", pipeline::to_string(a.kind));
  w.field("status", pipeline::to_string(a.status));
  if (a.status == AppealStatus::answered) {
    id_field(w, "answer_message", a.answer_message);
    w.field("answered_at", a.answered_at);
    id_field(w, "responder", a.responder);
    w.field("reply_seconds", a.reply_seconds);
    w.field("business_reply_seconds", a.business_reply_seconds);
  }
  w.end_object();
}

}  // namespace

std::uint32_t murmur2(std::string_view key) {
  constexpr std::uint32_t m = 0x5bd1e995;
  constexpr int r = 24;
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const auto length = static_cast<std::uint32_t>(key.size());
  std::uint32_t h = 0x9747b28c ^ length;
  std::size_t i = 0;
  for (; i + 4 <= key.size(); i += 4) {
    std::uint32_t k = static_cast<std::uint32_t>(data[i]) |
                      static_cast<std::uint32_t>(data[i + 1]) << 8 |
                      static_cast<std::uint32_t>(data[i + 2]) << 16 |
                      static_cast<std::uint32_t>(data[i + 3]) << 24;
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (key.size() - i) {
    case 3:
      h ^= static_cast<std::uint32_t>(data[i + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<std::uint32_t>(data[i + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= data[i];
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

int partition_for(std::string_view key, int partitions) {
  return static_cast<int>((murmur2(key) & 0x7fffffff) % static_cast<std::uint32_t>(partitions));
}

std::string conversation_key(Source source, std::int64_t conversation) {
  std::string key(pipeline::to_string(source));
  key += ':';
  key += std::to_string(conversation);
  return key;
}

void write_events(std::string& out, std::string_view producer, std::int64_t sent_at,
                  std::span<const Event> events) {
  JsonWriter w(out);
  envelope(w, "events");
  w.field("producer", producer).field("sent_at", sent_at);
  w.key("events").begin_array();
  for (const Event& e : events) {
    w.begin_object();
    w.field("source", pipeline::to_string(e.source));
    id_field(w, "conversation", e.conversation);
    id_field(w, "message_id", e.message_id);
    if (e.reply_to != 0) id_field(w, "reply_to", e.reply_to);
    if (e.author != 0) id_field(w, "author", e.author);
    if (e.addressee != 0) id_field(w, "addressee", e.addressee);
    w.field("author_kind", hint_name(e.author_hint));
    w.field("time", e.time);
    w.field("kind", kind_name(e.kind));
    w.end_object();
  }
  w.end_array().end_object();
}

void write_watermark(std::string& out, std::string_view producer, std::int64_t sent_at,
                     std::int64_t watermark) {
  JsonWriter w(out);
  envelope(w, "watermark");
  w.field("producer", producer).field("sent_at", sent_at).field("watermark", watermark);
  w.end_object();
}

void write_migration(std::string& out, std::string_view producer, std::int64_t sent_at,
                     std::int64_t from, std::int64_t to) {
  JsonWriter w(out);
  envelope(w, "migration");
  w.field("producer", producer).field("sent_at", sent_at).field("source", "telegram");
  id_field(w, "from", from);
  id_field(w, "to", to);
  w.end_object();
}

std::string_view change_of(const Appeal* before, const Appeal* after) {
  if (!before) return "opened";
  if (!after) return "removed";
  if (before->status == AppealStatus::open && before->kind == after->kind) {
    switch (after->status) {
      case AppealStatus::answered:
        return "answered";
      case AppealStatus::unanswered:
        return "expired";
      case AppealStatus::withdrawn:
        return "withdrawn";
      case AppealStatus::open:
        break;
    }
  }
  return "corrected";
}

void write_appeal(std::string& out, int pair_partition, const pipeline::Registry& registry,
                  const Appeal* before, const Appeal* after) {
  JsonWriter w(out);
  envelope(w, "appeal");
  w.field("change", change_of(before, after)).field("pair_partition", pair_partition);
  w.key("before");
  if (before) {
    appeal_object(w, registry, *before);
  } else {
    w.null();
  }
  w.key("after");
  if (after) {
    appeal_object(w, registry, *after);
  } else {
    w.null();
  }
  w.end_object();
}

void write_forgotten_deletion(std::string& out, int pair_partition, Source source,
                              std::int64_t conversation, std::int64_t message) {
  JsonWriter w(out);
  envelope(w, "forgotten_deletion");
  w.field("pair_partition", pair_partition).field("source", pipeline::to_string(source));
  id_field(w, "conversation", conversation);
  id_field(w, "message_id", message);
  w.end_object();
}

void write_conversation(std::string& out, int pair_partition, Source source,
                        std::int64_t conversation, const std::vector<std::string>& producers) {
  JsonWriter w(out);
  envelope(w, "conversation");
  w.field("pair_partition", pair_partition).field("source", pipeline::to_string(source));
  id_field(w, "conversation", conversation);
  w.key("producers").begin_array();
  for (const auto& p : producers) w.value(std::string_view(p));
  w.end_array().end_object();
}

void write_clock(std::string& out, int pair_partition, std::int64_t sent_at,
                 const std::vector<ProducerClock>& producers) {
  JsonWriter w(out);
  envelope(w, "clock");
  w.field("pair_partition", pair_partition).field("sent_at", sent_at);
  w.key("producers").begin_array();
  for (const auto& p : producers) {
    w.begin_object().field("name", std::string_view(p.name));
    w.key("watermark");
    if (p.watermark == pipeline::Pairing::kNoClock) {
      w.null();
    } else {
      w.value(p.watermark);
    }
    w.field("retired", p.retired).end_object();
  }
  w.end_array().end_object();
}

std::string stats_key(std::string_view agency, std::string_view window) {
  std::string key(agency);
  key += '|';
  key += window;
  return key;
}

void write_agency_stats(std::string& out, const AgencyStats& s) {
  JsonWriter w(out);
  envelope(w, "agency_stats");
  w.field("agency", std::string_view(s.agency)).field("window", std::string_view(s.window));
  w.field("computed_at", s.computed_at);
  std::string row;
  append_row_json(row, s.row);
  w.key("row").raw(row);
  for (auto [name, rows] :
       {std::pair{"responders", &s.responders}, std::pair{"branches", &s.branches}}) {
    w.key(name).begin_array();
    for (const RankingRow& r : *rows) {
      row.clear();
      append_row_json(row, r);
      w.raw(row);
    }
    w.end_array();
  }
  w.end_object();
}

// ---- RecordReader ----

struct RecordReader::State {
  od::parser parser;
  std::vector<char> padded;
  simdjson::dom::parser dom;

  Result<od::document> iterate(std::string_view json) {
    if (padded.size() < json.size() + simdjson::SIMDJSON_PADDING) {
      padded.resize(json.size() + simdjson::SIMDJSON_PADDING);
    }
    std::memcpy(padded.data(), json.data(), json.size());
    std::memset(padded.data() + json.size(), 0, simdjson::SIMDJSON_PADDING);
    od::document doc;
    if (parser.iterate(simdjson::padded_string_view(padded.data(), json.size(), padded.size()))
            .get(doc)) {
      return make_error("not JSON");
    }
    return doc;
  }
};

RecordReader::RecordReader() : state_(std::make_unique<State>()) {}
RecordReader::~RecordReader() = default;

namespace {

/// The envelope's checks: an object, schema_version 1, the type among `types`.
template <class OnField>
Result<void> read_envelope(od::document& doc, std::string_view topic, std::string& type,
                           OnField&& on_field) {
  od::object obj;
  if (doc.get_object().get(obj)) {
    od::json_type type;
    const bool looks_like_object = !doc.type().get(type) && type == od::json_type::object;
    return make_error(std::string(topic) +
                      (looks_like_object ? " record: not JSON" : " record: not an object"));
  }
  std::int64_t version = 0;
  auto ok = for_fields(obj, topic, [&](std::string_view key, od::value value) {
    if (key == "schema_version") return read_int(value, version);
    if (key == "type") return read_text(value, type);
    return on_field(key, value);
  });
  if (!ok) return ok;
  if (version != kSchemaVersion) {
    return make_error(std::string(topic) + " record: schema_version " + std::to_string(version) +
                      " is not supported (this build reads " + std::to_string(kSchemaVersion) +
                      ")");
  }
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return make_error(std::string(topic) + " record: text after the object");
  }
  return {};
}

}  // namespace

Result<void> RecordReader::read(std::string_view json, EventsRecord& out) {
  auto doc = state_->iterate(json);
  if (!doc) return make_error("events record: not JSON");
  out = EventsRecord{};
  std::string type;
  Error event_error;
  bool bad_event = false, has_producer = false, has_watermark = false, has_from = false,
       has_to = false;
  auto ok = read_envelope(*doc, "events", type, [&](std::string_view key, od::value value) {
    if (key == "producer") return has_producer = read_text(value, out.producer);
    if (key == "sent_at") return read_int(value, out.sent_at);
    if (key == "watermark") return has_watermark = read_int(value, out.watermark);
    if (key == "from") return has_from = read_id(value, out.from);
    if (key == "to") return has_to = read_id(value, out.to);
    if (key == "events") {
      od::array events;
      if (value.get_array().get(events)) return false;
      for (auto element : events) {
        od::value v;
        if (std::move(element).get(v)) return false;
        Event e;
        if (auto r = read_event(v, e); !r) {
          event_error = r.error();
          bad_event = true;
          return true;
        }
        out.events.push_back(e);
      }
      return true;
    }
    return true;
  });
  if (bad_event) return event_error;
  if (!ok) return ok;
  if (!has_producer || out.producer.empty()) return wrong("events", "producer");
  if (type == "events") {
    out.type = EventsRecord::Type::events;
  } else if (type == "watermark") {
    out.type = EventsRecord::Type::watermark;
    if (!has_watermark) return wrong("watermark", "watermark");
  } else if (type == "migration") {
    out.type = EventsRecord::Type::migration;
    if (!has_from || !has_to) return wrong("migration", has_from ? "to" : "from");
  } else {
    return make_error("events record: unknown type '" + type + "'");
  }
  return {};
}

Result<void> RecordReader::read(std::string_view json, const pipeline::Registry& registry,
                                AppealsRecord& out) {
  auto doc = state_->iterate(json);
  if (!doc) return make_error("appeals record: not JSON");
  out = AppealsRecord{};
  std::string type;
  bool has_partition = false, has_conversation = false, has_clock = false;
  auto ok = read_envelope(*doc, "appeals", type, [&](std::string_view key, od::value value) {
    std::int64_t v = 0;
    std::string_view s;
    if (key == "pair_partition") {
      if (!read_int(value, v) || v < 0 || v > 100000) return false;
      out.pair_partition = static_cast<int>(v);
      return has_partition = true;
    }
    if (key == "before" || key == "after") {
      bool is_null = false;
      if (value.is_null().get(is_null)) return false;
      if (is_null) return true;
      Appeal a;
      if (!read_appeal(value, registry, a)) return false;
      (key == "before" ? out.before : out.after) = a;
      return true;
    }
    if (key == "source") return !value.get_string().get(s) && pipeline::parse_source(s, out.source);
    if (key == "conversation") return has_conversation = read_id(value, out.conversation);
    if (key == "message_id") return read_id(value, out.message);
    if (key == "sent_at") return read_int(value, out.sent_at);
    if (key == "producers") {
      od::array items;
      if (value.get_array().get(items)) return false;
      for (auto item : items) {
        od::value p;
        if (std::move(item).get(p)) return false;
        od::json_type t;
        if (p.type().get(t)) return false;
        if (t == od::json_type::string) {
          std::string name;
          if (!read_text(p, name)) return false;
          out.producers.push_back(std::move(name));
          continue;
        }
        od::object obj;
        if (p.get_object().get(obj)) return false;
        ProducerClock c;
        bool named = false;
        auto fields = for_fields(obj, "appeals", [&](std::string_view k, od::value f) {
          if (k == "name") return named = read_text(f, c.name);
          if (k == "retired") return !f.get_bool().get(c.retired);
          if (k == "watermark") {
            bool null = false;
            if (f.is_null().get(null)) return false;
            return null || read_int(f, c.watermark);
          }
          return true;
        });
        if (!fields || !named) return false;
        out.clock.push_back(std::move(c));
        has_clock = true;
      }
      return true;
    }
    return true;
  });
  if (!ok) return ok;
  if (!has_partition) return wrong("appeals", "pair_partition");
  if (type == "appeal") {
    out.type = AppealsRecord::Type::appeal;
    if (!out.before && !out.after) return wrong("appeal", "after");
    if (out.before && out.after && !pipeline::same_appeal(*out.before, *out.after)) {
      return make_error("appeal record: before and after are different appeals");
    }
  } else if (type == "forgotten_deletion") {
    out.type = AppealsRecord::Type::forgotten_deletion;
    if (!has_conversation || out.message <= 0) return wrong("forgotten_deletion", "message_id");
  } else if (type == "conversation") {
    out.type = AppealsRecord::Type::conversation;
    if (!has_conversation) return wrong("conversation", "conversation");
  } else if (type == "clock") {
    out.type = AppealsRecord::Type::clock;
    (void)has_clock;
  } else {
    return make_error("appeals record: unknown type '" + type + "'");
  }
  return {};
}

Result<void> RecordReader::read(std::string_view json, AgencyStats& out) {
  simdjson::dom::element doc;
  if (state_->dom.parse(json.data(), json.size()).get(doc)) {
    return make_error("agency-stats record: not JSON");
  }
  out = AgencyStats{};
  std::int64_t version = 0;
  std::string_view type, agency, window;
  if (doc["schema_version"].get_int64().get(version) || version != kSchemaVersion) {
    return make_error("agency-stats record: schema_version " + std::to_string(version) +
                      " is not supported");
  }
  if (doc["type"].get_string().get(type) || type != "agency_stats") {
    return wrong("agency-stats", "type");
  }
  if (doc["agency"].get_string().get(agency)) return wrong("agency-stats", "agency");
  if (doc["window"].get_string().get(window)) return wrong("agency-stats", "window");
  if (doc["computed_at"].get_int64().get(out.computed_at)) {
    return wrong("agency-stats", "computed_at");
  }
  out.agency.assign(agency);
  out.window.assign(window);
  simdjson::dom::element row;
  if (doc["row"].get(row)) return wrong("agency-stats", "row");
  auto parsed = parse_row(simdjson::minify(row));
  if (!parsed) return make_error("agency-stats record: " + parsed.error().message);
  out.row = std::move(*parsed);
  for (auto [name, rows] :
       {std::pair{"responders", &out.responders}, std::pair{"branches", &out.branches}}) {
    simdjson::dom::array items;
    if (doc[name].get_array().get(items)) return wrong("agency-stats", name);
    for (auto item : items) {
      auto r = parse_row(simdjson::minify(item));
      if (!r) return make_error("agency-stats record: " + r.error().message);
      rows->push_back(std::move(*r));
    }
  }
  return {};
}

}  // namespace replywatch::daemon::kafka
