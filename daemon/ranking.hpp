// The league table: rows of window statistics, ranked and rendered as JSON or CSV. The
// aggregate stage builds rows from its windows; on Kafka, the serving side reads them back
// from the agency-stats topic, where each row travels as JSON (row_json / parse_row).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/error.hpp"
#include "pipeline/rolling.hpp"

namespace replywatch::daemon {

struct RankingRow {
  std::string agency;
  std::string agency_name;
  std::string responder_id;  // by=responder
  std::string role, name, branch;
  pipeline::WindowSummary s;
  /// Agency rows: the cohort (appeals opened in the window, withdrawn ones left out).
  std::uint64_t sample() const { return s.answered + s.unanswered + s.open; }
};

/// `by`: agency | responder | branch. Sorts and ranks the rows: agencies by the
/// Kaplan–Meier median (silence cannot buy a place), then answer rate; responders and
/// branches by median within their agency.
std::string ranking_json(std::vector<RankingRow> rows, std::string_view window, std::string_view by,
                         std::int64_t now);
std::string ranking_csv(std::vector<RankingRow> rows, std::string_view by);

/// One row as a JSON object (every field, for the agency-stats topic), and back.
void append_row_json(std::string& out, const RankingRow& row);
Result<RankingRow> parse_row(std::string_view json);

}  // namespace replywatch::daemon
