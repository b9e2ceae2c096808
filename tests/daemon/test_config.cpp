// Strict configuration: valid files load; every kind of mistake is reported with
// file, line and key path, all at once.
#include "daemon/config.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <stdlib.h>

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

namespace {

const char* kAgencyOnly = R"(agencies:
  - id: a
    name: A
    timezone: UTC
    conversations:
      - {source: telegram, id: -1001}
)";

std::string with_connectors(const std::string& connectors) {
  return std::string(kAgencyOnly) + "connectors:\n" + connectors;
}

}  // namespace

TEST_CASE("telegram connectors: tokens from the environment or a private file, never echoed") {
  const std::string token = "123456:AAE-secretTOKENvalue_xyz";
  ::setenv("REPLYWATCH_TEST_TOKEN", token.c_str(), 1);
  ::setenv("REPLYWATCH_TEST_SECRET", "hook-secret_1", 1);
  auto ok = parse_config(with_connectors("  - {name: bot, type: telegram, token_env: REPLYWATCH_TEST_TOKEN}\n"),
                         "c.yaml");
  REQUIRE_MESSAGE(ok.has_value(), (ok.has_value() ? "" : ok.error().message));
  CHECK(ok->connectors[0].token == token);
  CHECK(ok->connectors[0].mode == "poll");
  CHECK(ok->connectors[0].api_base_url == "https://api.telegram.org");
  CHECK(ok->connectors[0].webhook_path == "/telegram/bot");

  const auto missing = problems(with_connectors(
      "  - {name: bot, type: telegram, token_env: REPLYWATCH_TEST_NOT_SET}\n"));
  CHECK(contains(missing, "connectors[0].token_env: environment variable 'REPLYWATCH_TEST_NOT_SET' is not set"));

  ::setenv("REPLYWATCH_TEST_BAD_TOKEN", "not a token 123456:AAE-secretTOKENvalue_xyz", 1);
  const auto bad = problems(with_connectors(
      "  - {name: bot, type: telegram, token_env: REPLYWATCH_TEST_BAD_TOKEN}\n"));
  CHECK(contains(bad, "does not hold a bot token"));
  CHECK_FALSE(contains(bad, "secretTOKENvalue"));

  const auto webhook = problems(with_connectors(
      "  - {name: bot, type: telegram, mode: webhook, token_env: REPLYWATCH_TEST_TOKEN}\n"));
  CHECK(contains(webhook, "connectors[0].secret_token_env: webhook mode needs secret_token_env"));
  auto hooked = parse_config(with_connectors(
                                 "  - {name: bot, type: telegram, mode: webhook, token_env: "
                                 "REPLYWATCH_TEST_TOKEN, secret_token_env: REPLYWATCH_TEST_SECRET, "
                                 "webhook_path: /hooks/akimat}\n"),
                             "c.yaml");
  REQUIRE(hooked.has_value());
  CHECK(hooked->connectors[0].secret_token == "hook-secret_1");
  CHECK(hooked->connectors[0].webhook_path == "/hooks/akimat");

  const auto unknown = problems(with_connectors(
      "  - {name: bot, type: telegram, token_env: REPLYWATCH_TEST_TOKEN, directory: /x}\n"));
  CHECK(contains(unknown, "connectors[0].directory: unknown key 'directory'"));
}

TEST_CASE("telegram connectors: a token file readable by others is refused") {
  const auto dir = std::filesystem::temp_directory_path() / "replywatch_token_test";
  std::filesystem::create_directories(dir);
  const auto file = dir / "bot.token";
  {
    std::ofstream(file) << "123456:AAE-secretTOKENvalue_xyz\n";
  }
  std::filesystem::permissions(file, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::owner_write |
                                         std::filesystem::perms::others_read);
  const std::string yaml =
      with_connectors("  - {name: bot, type: telegram, token_file: " + file.string() + "}\n");
  const auto refused = problems(yaml);
  CHECK(contains(refused, "is accessible by group or others; chmod 600"));
  CHECK_FALSE(contains(refused, "secretTOKENvalue"));
  std::filesystem::permissions(file, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::owner_write);
  auto ok = parse_config(yaml, "c.yaml");
  REQUIRE(ok.has_value());
  CHECK(ok->connectors[0].token == "123456:AAE-secretTOKENvalue_xyz");
  std::filesystem::remove_all(dir);
}

TEST_CASE("daemon and connector sections are validated too") {
  const auto msg = problems(std::string(kAgencyOnly) +
                            "daemon:\n  listen: nowhere\n  snapshot_interval_secs: 0\n"
                            "connectors:\n  - {name: x, type: carrier_pigeon}\n"
                            "  - {name: y, type: ndjson}\n  - {name: y, type: ndjson, path: /p}\n");
  CHECK(contains(msg, "daemon.listen: expected HOST:PORT"));
  CHECK(contains(msg, "daemon.snapshot_interval_secs: must be between 1 and"));
  CHECK(contains(msg, "connectors[0].type: unknown connector type 'carrier_pigeon' (known: "
                      "telegram_export, ndjson, telegram, vk)"));
  CHECK(contains(msg, "connectors[1].path: missing required key 'path'"));
  CHECK(contains(msg, "connectors[2].name: connector name 'y' is already used"));
}

TEST_CASE("vk connectors: walls from the agencies, secrets from the environment, each mode's keys") {
  const std::string vk_agency = R"(agencies:
  - id: akimat_vk
    name: Akimat
    timezone: Asia/Almaty
    conversations:
      - {source: vk, id: -123456}
      - {source: telegram, id: -1001800004444}
    accounts:
      - {source: vk, id: -123456, role: community}
connectors:
)";
  const std::string token = "vk1.a.secretVKtokenVALUE-_x";
  ::setenv("REPLYWATCH_TEST_VK_TOKEN", token.c_str(), 1);
  ::setenv("REPLYWATCH_TEST_VK_SECRET", "cb-secret-value", 1);
  ::setenv("REPLYWATCH_TEST_VK_CONFIRM", "a1b2c3d4", 1);
  auto poll = parse_config(
      vk_agency + "  - {name: walls, type: vk, token_env: REPLYWATCH_TEST_VK_TOKEN}\n", "c.yaml");
  REQUIRE_MESSAGE(poll.has_value(), (poll.has_value() ? "" : poll.error().message));
  const auto& p = poll->connectors[0];
  CHECK(p.mode == "poll");
  CHECK(p.token == token);
  CHECK(p.walls == std::vector<std::int64_t>{-123456});  // the vk conversations only
  CHECK(p.api_base_url == "https://api.vk.com/method");
  CHECK(p.api_version == "5.199");
  CHECK(p.poll_interval_secs == 60);
  CHECK(p.posts_lookback == 50);
  CHECK_FALSE(p.pushes());

  auto listed = parse_config(vk_agency +
                                 "  - {name: walls, type: vk, token_env: REPLYWATCH_TEST_VK_TOKEN, "
                                 "walls: [-1, 42], poll_interval_secs: 5, posts_lookback: 7}\n",
                             "c.yaml");
  REQUIRE(listed.has_value());
  CHECK(listed->connectors[0].walls == std::vector<std::int64_t>{-1, 42});
  CHECK(listed->connectors[0].poll_interval_secs == 5);
  CHECK(listed->connectors[0].posts_lookback == 7);

  auto hook = parse_config(vk_agency +
                               "  - {name: hook, type: vk, mode: callback, secret_env: "
                               "REPLYWATCH_TEST_VK_SECRET, confirmation_env: "
                               "REPLYWATCH_TEST_VK_CONFIRM}\n",
                           "c.yaml");
  REQUIRE_MESSAGE(hook.has_value(), (hook.has_value() ? "" : hook.error().message));
  CHECK(hook->connectors[0].pushes());
  CHECK(hook->connectors[0].secret == "cb-secret-value");
  CHECK(hook->connectors[0].confirmation == "a1b2c3d4");
  CHECK(hook->connectors[0].webhook_path == "/webhooks/vk/hook");

  const auto bad = problems(vk_agency +
                            "  - {name: hook, type: vk, mode: callback, token_env: "
                            "REPLYWATCH_TEST_VK_TOKEN, walls: [0]}\n"
                            "  - {name: w, type: vk, token_env: REPLYWATCH_TEST_VK_TOKEN, "
                            "api_base_url: 'http://api.example.com/method', walls: [0]}\n"
                            "  - {name: m, type: vk, mode: push, token_env: REPLYWATCH_TEST_VK_TOKEN}\n");
  CHECK(contains(bad, "connectors[0]: missing 'secret_env' or 'secret_file'"));
  CHECK(contains(bad, "connectors[0]: missing 'confirmation_env' or 'confirmation_file'"));
  CHECK(contains(bad, "connectors[0].token_env: only in poll mode"));
  CHECK(contains(bad, "connectors[1].api_base_url: plain http:// would send the access token"));
  CHECK(contains(bad, "connectors[1].walls[0]: a wall is a community"));
  CHECK(contains(bad, "connectors[2].mode: must be 'poll' or 'callback', not 'push'"));
  CHECK_FALSE(contains(bad, "secretVKtokenVALUE"));

  const auto none = problems(std::string(R"(agencies:
  - id: a
    name: A
    timezone: Asia/Almaty
    conversations: [{source: telegram, id: -1001800004444}]
connectors:
  - {name: walls, type: vk, token_env: REPLYWATCH_TEST_VK_TOKEN}
)"));
  CHECK(contains(none, "connectors.walls.walls: no wall to poll"));
}
