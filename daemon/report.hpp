// Renders replay results: the per-agency report (json, csv, table) and the
// appeal-by-appeal record (one JSON object per line).
#pragma once

#include "daemon/replay.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace replywatch::daemon {

enum class ReportFormat { json, csv, table };

bool parse_report_format(std::string_view text, ReportFormat& out);

std::string render_report(const pipeline::Registry& registry, const ReplayResult& result,
                          ReportFormat format);

/// A CSV field: quoted (quotes doubled) when it holds a comma, quote or line break.
std::string csv_text(std::string_view s);
/// A number as CSV writes it; empty where undefined.
std::string csv_cell(const std::optional<double>& v);

class JsonWriter;

/// One appeal as a JSON object, into a writer (an array element, a field value).
void write_appeal(JsonWriter& w, const pipeline::Registry& registry, const pipeline::Appeal& appeal);
/// One appeal as a JSON line (with trailing newline).
void append_appeal_line(std::string& out, const pipeline::Registry& registry,
                        const pipeline::Appeal& appeal);

}  // namespace replywatch::daemon
