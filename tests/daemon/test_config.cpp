// Strict configuration: valid files load; every kind of mistake is reported with
// file, line and key path, all at once.
#include "daemon/config.hpp"

#include <doctest/doctest.h>

#include <string>

using replywatch::daemon::parse_config;

namespace {

const char* kValid = R"(horizon_secs: 604800
citizen_replies_to_citizens: ignore
ignore_accounts:
  - {source: telegram, id: 7000001}
agencies:
  - id: akimat_almaty
    name: "Акимат г. Алматы"
    timezone: Asia/Almaty
    business_hours:
      mon: ["09:00-13:00", "14:00-18:30"]
      tue: ["22:00-02:00"]
      sun: []
    holidays: ["2026-12-16"]
    target_business_secs: 10800
    conversations:
      - {source: telegram, id: -1001800004444}
    accounts:
      - {source: telegram, id: -1001700002222, role: channel}
      - {source: telegram, id: 500201, role: press_office, name: "Пресс-служба", branch: almaty}
  - id: berlin
    name: Berlin
    timezone: Europe/Berlin
    conversations:
      - {source: telegram, id: -1009900001111}
)";

std::string problems(const std::string& yaml) {
  auto r = parse_config(yaml, "agencies.yaml");
  REQUIRE_FALSE(r.has_value());
  return r.error().message;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("a valid configuration loads with its registry") {
  auto r = parse_config(kValid, "agencies.yaml");
  REQUIRE_MESSAGE(r.has_value(), (r.has_value() ? "" : r.error().message));
  const auto& reg = *r->registry;
  REQUIRE(reg.agencies.size() == 2);
  CHECK(reg.horizon_secs == 604800);
  CHECK(reg.agencies[0].name == "Акимат г. Алматы");
  CHECK(reg.agencies[0].accounts.size() == 2);
  CHECK(reg.agencies[0].accounts[1].branch == "almaty");
  CHECK(*reg.agencies[0].target_business_secs == 10800);
  CHECK(reg.agency_of_conversation(replywatch::pipeline::Source::telegram, -1001800004444) == 0);
  CHECK(reg.lookup_account(replywatch::pipeline::Source::telegram, 7000001).ignored);
  CHECK(reg.lookup_account(replywatch::pipeline::Source::telegram, 500201).agency == 0);
}

TEST_CASE("unknown keys are named with their path, line and the known keys") {
  const auto msg = problems(replace(kValid, "    holidays:", "    holydays:"));
  CHECK(contains(msg, "agencies.yaml:13: agencies[0].holydays: unknown key 'holydays'"));
  CHECK(contains(msg, "known: id, name, timezone"));
}

TEST_CASE("duplicate keys are errors naming both lines") {
  const auto msg = problems(replace(kValid, "horizon_secs: 604800\n",
                                    "horizon_secs: 604800\nhorizon_secs: 3600\n"));
  CHECK(contains(msg, "agencies.yaml:2: horizon_secs: duplicate key 'horizon_secs' (first at line 1)"));
}

TEST_CASE("telegram conversation ids must be Bot API ids") {
  const auto msg = problems(replace(kValid, "id: -1001800004444", "id: 1800004444"));
  CHECK(contains(msg, "agencies.yaml:16: agencies[0].conversations[0].id:"));
  CHECK(contains(msg, "-1001800004444"));
}

TEST_CASE("ids must be integers and agency ids labels") {
  const auto msg = problems(replace(replace(kValid, "id: 500201", "id: 5002o1"),
                                    "id: akimat_almaty", "id: Akimat-Almaty"));
  CHECK(contains(msg, "agencies[0].accounts[1].id: expected an integer"));
  CHECK(contains(msg, "agencies[0].id: agency id 'Akimat-Almaty' must match [a-z0-9_]+"));
}

TEST_CASE("bad time ranges are named") {
  const auto msg = problems(replace(kValid, "\"14:00-18:30\"", "\"14:00-25:30\""));
  CHECK(contains(msg, "agencies.yaml:10: agencies[0].business_hours.mon[1]: bad interval '14:00-25:30'"));
  const auto empty = problems(replace(kValid, "\"22:00-02:00\"", "\"09:00-09:00\""));
  CHECK(contains(empty, "business_hours.tue[0]: empty interval"));
  const auto day = problems(replace(kValid, "      sun: []", "      sunday: []"));
  CHECK(contains(day, "business_hours.sunday: unknown key 'sunday' (known: mon, tue"));
}

TEST_CASE("unknown time zones are named") {
  const auto msg = problems(replace(kValid, "Asia/Almaty", "Asia/Atlantis"));
  CHECK(contains(msg, "agencies.yaml:8: agencies[0].timezone:"));
  CHECK(contains(msg, "Asia/Atlantis"));
  const auto escape = problems(replace(kValid, "Asia/Almaty", "../../etc/passwd"));
  CHECK(contains(escape, "agencies[0].timezone:"));
}

TEST_CASE("an account listed under two agencies is an error naming both") {
  const auto msg = problems(replace(kValid, "      - {source: telegram, id: -1009900001111}\n",
                                    "      - {source: telegram, id: -1009900001111}\n"
                                    "    accounts:\n"
                                    "      - {source: telegram, id: 500201, role: press}\n"));
  CHECK(contains(msg, "agencies[1].accounts[0]: account telegram id 500201 is already listed "
                      "under agency 'akimat_almaty' (line 19)"));
}

TEST_CASE("a conversation owned twice, or an ignored account made official, is an error") {
  const auto twice = problems(replace(kValid, "id: -1009900001111", "id: -1001800004444"));
  CHECK(contains(twice, "conversation telegram id -1001800004444 is already listed"));
  const auto ignored = problems(replace(kValid, "id: 7000001", "id: 500201"));
  CHECK(contains(ignored, "account telegram id 500201 is already listed under ignore_accounts"));
}

TEST_CASE("every problem is listed at once, in line order") {
  std::string yaml = replace(kValid, "horizon_secs: 604800", "horizon_secs: -5");
  yaml = replace(yaml, "citizen_replies_to_citizens: ignore", "citizen_replies_to_citizens: maybe");
  yaml = replace(yaml, "Europe/Berlin", "Europe/Berlinn");
  yaml = replace(yaml, "\"2026-12-16\"", "\"2026-02-30\"");
  const auto msg = problems(yaml);
  const auto lines = std::count(msg.begin(), msg.end(), '\n') + 1;
  CHECK(lines == 4);
  CHECK(msg.find("horizon_secs") < msg.find("citizen_replies_to_citizens"));
  CHECK(contains(msg, "holidays[0]: bad date '2026-02-30'"));
  CHECK(contains(msg, "Europe/Berlinn"));
}

TEST_CASE("missing required keys and wrong shapes") {
  const auto msg = problems("agencies:\n  - id: x\n    conversations: {}\n");
  CHECK(contains(msg, "agencies[0].name: missing required key 'name'"));
  CHECK(contains(msg, "agencies[0].timezone: missing required key 'timezone'"));
  CHECK(contains(msg, "agencies[0].conversations: expected a list"));
  CHECK(contains(problems("just a string\n"), "(top level): expected a mapping"));
  CHECK(contains(problems(""), "the configuration is empty"));
}

TEST_CASE("YAML syntax errors name the line") {
  const auto msg = problems("agencies:\n  - id: [x,\n");
  CHECK(contains(msg, "agencies.yaml:"));
  CHECK(contains(msg, "YAML syntax error"));
}
