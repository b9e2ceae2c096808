// Ranking order, rendering, and the row's JSON form (read back with simdjson's DOM: rows
// are small, and a missing or mistyped field is an error naming it).
#include "daemon/ranking.hpp"

#include <simdjson.h>

#include <algorithm>
#include <limits>
#include <map>

#include "daemon/json_writer.hpp"
#include "daemon/report.hpp"

namespace replywatch::daemon {

namespace {

std::string_view km_note_code(pipeline::KmNote n) {
  switch (n) {
    case pipeline::KmNote::none:
      return "none";
    case pipeline::KmNote::no_appeals:
      return "no_appeals";
    case pipeline::KmNote::too_few_closed:
      return "too_few_closed";
  }
  return "none";
}

void sort_rows(std::vector<RankingRow>& rows, std::string_view by) {
  auto key = [&](const RankingRow& r) {
    const auto& primary = by == "agency" ? r.s.km_median_seconds : r.s.median;
    return primary.value_or(std::numeric_limits<double>::infinity());
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const RankingRow& x, const RankingRow& y) {
    if (by != "agency" && x.agency != y.agency) return x.agency < y.agency;
    if (key(x) != key(y)) return key(x) < key(y);
    if (x.s.answer_rate.value_or(0) != y.s.answer_rate.value_or(0)) {
      return x.s.answer_rate.value_or(0) > y.s.answer_rate.value_or(0);
    }
    // Equal numbers: a stable order whatever order the rows came in (agency-stats).
    return std::tie(x.agency, x.responder_id, x.branch) <
           std::tie(y.agency, y.responder_id, y.branch);
  });
}

}  // namespace

std::string ranking_json(std::vector<RankingRow> rows, std::string_view window, std::string_view by,
                         std::int64_t now) {
  sort_rows(rows, by);
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.field("window", window).field("by", by).field("generated_at", now);
  w.key("rows").begin_array();
  std::map<std::string, int> rank_in_agency;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const RankingRow& r = rows[i];
    w.begin_object();
    w.field("rank", static_cast<std::int64_t>(by == "agency" ? i + 1 : ++rank_in_agency[r.agency]));
    w.field("agency", r.agency).field("agency_name", r.agency_name);
    if (by == "responder") {
      w.field("responder", r.responder_id).field("role", r.role);
      if (!r.name.empty()) w.field("name", r.name);
      if (!r.branch.empty()) w.field("branch", r.branch);
    }
    if (by == "branch") w.field("branch", r.branch);
    w.field("answered", r.s.answered);
    if (by == "agency") {
      w.field("unanswered", r.s.unanswered).field("open", r.s.open);
      w.field("sample_size", r.sample());
      w.field("answer_rate", r.s.answer_rate);
      w.field("km_median_seconds", r.s.km_median_seconds);
      if (!r.s.km_median_seconds) {
        w.field("km_median_note", pipeline::to_string(r.s.km_note));
        w.field("km_survival", r.s.km_survival)
            .field("km_max_followup_seconds", r.s.km_max_followup);
      }
    } else {
      w.field("sample_size", r.s.answered);
    }
    w.field("median_seconds", r.s.median).field("p90_seconds", r.s.p90);
    w.field("p99_seconds", r.s.p99).field("mean_seconds", r.s.mean);
    w.field("business_median_seconds", r.s.business_median);
    w.field("business_p90_seconds", r.s.business_p90);
    w.field("within_target_rate", r.s.within_target_rate);
    w.end_object();
  }
  w.end_array().end_object();
  out += '\n';
  return out;
}

std::string ranking_csv(std::vector<RankingRow> rows, std::string_view by) {
  sort_rows(rows, by);
  const auto& cell = csv_cell;
  const auto& text = csv_text;
  std::string out =
      "rank,agency,agency_name,responder,role,branch,answered,unanswered,open,sample_size,"
      "answer_rate,km_median_seconds,median_seconds,p90_seconds,p99_seconds,mean_seconds,"
      "business_median_seconds,business_p90_seconds,within_target_rate\n";
  std::map<std::string, int> rank_in_agency;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const RankingRow& r = rows[i];
    const auto rank = by == "agency" ? static_cast<int>(i + 1) : ++rank_in_agency[r.agency];
    out += std::to_string(rank) + "," + text(r.agency) + "," + text(r.agency_name) + "," +
           text(r.responder_id) + "," + text(r.role) + "," + text(r.branch) + "," +
           std::to_string(r.s.answered) + "," + std::to_string(r.s.unanswered) + "," +
           std::to_string(r.s.open) + "," +
           std::to_string(by == "agency" ? r.sample() : r.s.answered) + "," +
           cell(r.s.answer_rate) + "," + cell(r.s.km_median_seconds) + "," + cell(r.s.median) +
           "," + cell(r.s.p90) + "," + cell(r.s.p99) + "," + cell(r.s.mean) + "," +
           cell(r.s.business_median) + "," + cell(r.s.business_p90) + "," +
           cell(r.s.within_target_rate) + "\n";
  }
  return out;
}

void append_row_json(std::string& out, const RankingRow& r) {
  JsonWriter w(out);
  w.begin_object();
  w.field("agency", r.agency).field("agency_name", r.agency_name);
  w.field("responder", r.responder_id).field("role", r.role).field("name", r.name);
  w.field("branch", r.branch);
  const auto& s = r.s;
  w.field("answered", s.answered).field("unanswered", s.unanswered).field("open", s.open);
  w.field("within_target", s.within_target);
  w.field("answer_rate", s.answer_rate).field("within_target_rate", s.within_target_rate);
  w.field("median_seconds", s.median).field("p90_seconds", s.p90).field("p99_seconds", s.p99);
  w.field("mean_seconds", s.mean);
  w.field("business_median_seconds", s.business_median);
  w.field("business_p90_seconds", s.business_p90);
  w.field("km_median_seconds", s.km_median_seconds);
  w.field("km_note", km_note_code(s.km_note))
      .field("km_median_note", pipeline::to_string(s.km_note));
  w.field("km_survival", s.km_survival).field("km_max_followup_seconds", s.km_max_followup);
  w.end_object();
}

Result<RankingRow> parse_row(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc)) return make_error("row: not JSON");
  RankingRow r;
  std::string missing;
  auto text = [&](const char* key, std::string& out) {
    std::string_view v;
    if (doc[key].get_string().get(v)) {
      missing = key;
      return;
    }
    out.assign(v);
  };
  auto count = [&](const char* key, std::uint64_t& out) {
    if (doc[key].get_uint64().get(out)) missing = key;
  };
  auto number = [&](const char* key, double& out) {
    if (doc[key].get_double().get(out)) missing = key;
  };
  auto optional = [&](const char* key, std::optional<double>& out) {
    simdjson::dom::element e;
    if (doc[key].get(e)) {
      missing = key;
    } else if (e.is_null()) {
      out.reset();
    } else if (double v = 0; e.get_double().get(v)) {
      missing = key;
    } else {
      out = v;
    }
  };
  text("agency", r.agency);
  text("agency_name", r.agency_name);
  text("responder", r.responder_id);
  text("role", r.role);
  text("name", r.name);
  text("branch", r.branch);
  auto& s = r.s;
  count("answered", s.answered);
  count("unanswered", s.unanswered);
  count("open", s.open);
  count("within_target", s.within_target);
  optional("answer_rate", s.answer_rate);
  optional("within_target_rate", s.within_target_rate);
  optional("median_seconds", s.median);
  optional("p90_seconds", s.p90);
  optional("p99_seconds", s.p99);
  optional("mean_seconds", s.mean);
  optional("business_median_seconds", s.business_median);
  optional("business_p90_seconds", s.business_p90);
  optional("km_median_seconds", s.km_median_seconds);
  std::string note;
  text("km_note", note);
  number("km_survival", s.km_survival);
  number("km_max_followup_seconds", s.km_max_followup);
  if (!missing.empty()) return make_error("row: missing or mistyped '" + missing + "'");
  bool known = false;
  for (auto n :
       {pipeline::KmNote::none, pipeline::KmNote::no_appeals, pipeline::KmNote::too_few_closed}) {
    if (note == km_note_code(n)) {
      s.km_note = n;
      known = true;
    }
  }
  if (!known) return make_error("row: unknown km_note '" + note + "'");
  return r;
}

}  // namespace replywatch::daemon
