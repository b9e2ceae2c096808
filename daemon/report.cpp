// Report rendering. All three formats show the same numbers; the table rounds
// for reading, json and csv carry full precision.
#include "daemon/report.hpp"

#include "daemon/json_writer.hpp"

#include <cmath>
#include <cstdio>

namespace replywatch::daemon {

namespace {

using pipeline::AppealKind;
using pipeline::KindSummary;

void write_summary(JsonWriter& w, const KindSummary& s, std::uint64_t withdrawn) {
  w.begin_object();
  w.field("appeals", s.appeals).field("answered", s.answered);
  w.field("unanswered", s.unanswered).field("open", s.open).field("withdrawn", withdrawn);
  w.field("answer_rate", s.answer_rate);
  w.key("reply_seconds").begin_object();
  w.field("median", s.reply_median).field("p90", s.reply_p90);
  w.field("p99", s.reply_p99).field("mean", s.reply_mean);
  w.end_object();
  w.key("business_reply_seconds").begin_object();
  w.field("median", s.business_median).field("p90", s.business_p90);
  w.end_object();
  w.field("within_target_rate", s.within_target_rate);
  w.field("km_median_seconds", s.km_median_seconds);
  w.end_object();
}

std::string render_json(const pipeline::Registry& registry, const ReplayResult& r) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("clock");
  r.clock ? w.value(*r.clock) : w.null();
  w.key("agencies").begin_array();
  for (std::size_t a = 0; a < registry.agencies.size(); ++a) {
    w.begin_object();
    w.field("agency", registry.agencies[a].id).field("name", registry.agencies[a].name);
    for (const AppealKind kind : {AppealKind::first, AppealKind::followup}) {
      w.key(pipeline::to_string(kind));
      const auto it = r.withdrawn.find({static_cast<std::int32_t>(a), kind});
      write_summary(w, r.stats->summarize(a, kind), it == r.withdrawn.end() ? 0 : it->second);
    }
    w.end_object();
  }
  w.end_array();
  w.key("rejected_messages").begin_object();
  for (const auto& [reason, n] : r.rejected_messages) w.field(reason, n);
  w.end_object();
  w.key("rejected_files").begin_array();
  for (const auto& f : r.rejected_files) {
    w.begin_object().field("file", f.file).field("error", f.error).end_object();
  }
  w.end_array();
  w.end_object();
  out += '\n';
  return out;
}

std::string render_csv(const pipeline::Registry& registry, const ReplayResult& r) {
  std::string out =
      "agency,name,kind,appeals,answered,unanswered,open,answer_rate,reply_median,reply_p90,"
      "reply_p99,reply_mean,business_reply_median,business_reply_p90,within_target_rate,"
      "km_median_seconds\n";
  for (std::size_t a = 0; a < registry.agencies.size(); ++a) {
    for (const AppealKind kind : {AppealKind::first, AppealKind::followup}) {
      const KindSummary s = r.stats->summarize(a, kind);
      out += csv_text(registry.agencies[a].id) + "," + csv_text(registry.agencies[a].name) + "," +
             std::string(pipeline::to_string(kind)) + "," + std::to_string(s.appeals) + "," +
             std::to_string(s.answered) + "," + std::to_string(s.unanswered) + "," +
             std::to_string(s.open) + "," + csv_cell(s.answer_rate) + "," +
             csv_cell(s.reply_median) + "," + csv_cell(s.reply_p90) + "," +
             csv_cell(s.reply_p99) + "," + csv_cell(s.reply_mean) + "," +
             csv_cell(s.business_median) + "," + csv_cell(s.business_p90) + "," +
             csv_cell(s.within_target_rate) + "," + csv_cell(s.km_median_seconds) + "\n";
    }
  }
  return out;
}

/// "2h 05m" style, to the second below a minute; "—" for undefined.
std::string human_seconds(const std::optional<double>& v) {
  if (!v) return "-";
  const auto total = static_cast<long long>(std::llround(*v));
  const long long d = total / 86400, h = total % 86400 / 3600, m = total % 3600 / 60,
                  s = total % 60;
  char buf[64];
  if (d > 0) {
    std::snprintf(buf, sizeof buf, "%lldd %02lldh", d, h);
  } else if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", h, m);
  } else if (m > 0) {
    std::snprintf(buf, sizeof buf, "%lldm %02llds", m, s);
  } else {
    std::snprintf(buf, sizeof buf, "%llds", s);
  }
  return buf;
}

std::string percent(const std::optional<double>& v) {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", *v * 100.0);
  return buf;
}

std::string pad(std::string s, std::size_t width, bool right) {
  // Count code points, not bytes: agency names are often Cyrillic.
  std::size_t cps = 0;
  for (unsigned char c : s) cps += (c & 0xC0) != 0x80;
  if (cps >= width) return s;
  const std::string fill(width - cps, ' ');
  return right ? fill + s : s + fill;
}

std::string render_table(const pipeline::Registry& registry, const ReplayResult& r) {
  const std::vector<std::pair<std::string, std::size_t>> cols = {
      {"agency", 20}, {"kind", 8},    {"appeals", 8}, {"answered", 9}, {"unansw.", 8},
      {"open", 6},    {"rate", 7},    {"median", 9},  {"p90", 9},      {"p99", 9},
      {"mean", 9},    {"bus.med", 9}, {"bus.p90", 9}, {"target", 7},   {"KM med", 9}};
  std::string out;
  if (r.clock) {
    out += "clock: " + std::to_string(*r.clock) + " (latest message time, unix seconds)\n";
  }
  for (std::size_t i = 0; i < cols.size(); ++i) {
    out += pad(cols[i].first, cols[i].second, i >= 2) + (i + 1 < cols.size() ? " " : "\n");
  }
  for (std::size_t a = 0; a < registry.agencies.size(); ++a) {
    for (const AppealKind kind : {AppealKind::first, AppealKind::followup}) {
      const KindSummary s = r.stats->summarize(a, kind);
      const std::vector<std::string> cells = {
          registry.agencies[a].id,        std::string(pipeline::to_string(kind)),
          std::to_string(s.appeals),      std::to_string(s.answered),
          std::to_string(s.unanswered),   std::to_string(s.open),
          percent(s.answer_rate),         human_seconds(s.reply_median),
          human_seconds(s.reply_p90),     human_seconds(s.reply_p99),
          human_seconds(s.reply_mean),    human_seconds(s.business_median),
          human_seconds(s.business_p90),  percent(s.within_target_rate),
          human_seconds(s.km_median_seconds)};
      for (std::size_t i = 0; i < cols.size(); ++i) {
        out += pad(cells[i], cols[i].second, i >= 2) + (i + 1 < cols.size() ? " " : "\n");
      }
    }
  }
  if (!r.rejected_messages.empty()) {
    out += "rejected messages:";
    for (const auto& [reason, n] : r.rejected_messages) out += " " + reason + "=" + std::to_string(n);
    out += "\n";
  }
  for (const auto& f : r.rejected_files) out += "rejected file: " + f.file + ": " + f.error + "\n";
  return out;
}

}  // namespace

std::string csv_cell(const std::optional<double>& v) { return v ? format_number(*v) : ""; }

std::string csv_text(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

bool parse_report_format(std::string_view text, ReportFormat& out) {
  if (text == "json") out = ReportFormat::json;
  else if (text == "csv") out = ReportFormat::csv;
  else if (text == "table") out = ReportFormat::table;
  else return false;
  return true;
}

std::string render_report(const pipeline::Registry& registry, const ReplayResult& result,
                          ReportFormat format) {
  switch (format) {
    case ReportFormat::json:
      return render_json(registry, result);
    case ReportFormat::csv:
      return render_csv(registry, result);
    case ReportFormat::table:
      return render_table(registry, result);
  }
  return {};
}

void write_appeal(JsonWriter& w, const pipeline::Registry& registry, const pipeline::Appeal& a) {
  const auto& agency = registry.agencies[static_cast<std::size_t>(a.agency)];
  w.begin_object();
  w.field("agency", agency.id).field("source", pipeline::to_string(a.source));
  w.field("conversation", std::to_string(a.conversation)).field("thread", a.thread);
  w.field("citizen", std::to_string(a.citizen)).field("opened_message", a.opened_message);
  w.field("opened_at", a.opened_at).field("kind", pipeline::to_string(a.kind));
  w.field("status", pipeline::to_string(a.status));
  if (a.status == pipeline::AppealStatus::answered) {
    w.field("answer_message", a.answer_message).field("answered_at", a.answered_at);
    w.key("responder").begin_object().field("id", std::to_string(a.responder));
    if (a.responder_account >= 0 &&
        static_cast<std::size_t>(a.responder_account) < agency.accounts.size()) {
      const auto& acc = agency.accounts[static_cast<std::size_t>(a.responder_account)];
      w.field("role", acc.role);
      if (!acc.branch.empty()) w.field("branch", acc.branch);
    } else if (a.responder_account == -1) {
      w.field("role", "anonymous_admin");  // the conversation itself
    } else {
      w.field("role", "former_account");  // no longer listed after a reload
    }
    w.end_object();
    w.field("reply_seconds", a.reply_seconds);
    w.field("business_reply_seconds", a.business_reply_seconds);
  }
  w.end_object();
}

void append_appeal_line(std::string& out, const pipeline::Registry& registry,
                        const pipeline::Appeal& a) {
  JsonWriter w(out);
  write_appeal(w, registry, a);
  out += '\n';
}

}  // namespace replywatch::daemon
