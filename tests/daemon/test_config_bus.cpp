// The `bus:` section: in-process by default; Kafka settings checked without a broker, the
// librdkafka passthrough checked by librdkafka itself, secrets from the environment or a
// private file and never in a message.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "daemon/config.hpp"

using replywatch::daemon::parse_config;

namespace {

const char* kAgency = R"(agencies:
  - id: a
    name: A
    timezone: UTC
    conversations:
      - {source: telegram, id: -1001}
)";

std::string with_bus(const std::string& bus) { return std::string(kAgency) + "bus:\n" + bus; }

std::string problems(const std::string& yaml) {
  auto r = parse_config(yaml, "c.yaml");
  REQUIRE_FALSE(r.has_value());
  return r.error().message;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("bus: in-process unless configured, with the documented Kafka defaults") {
  auto none = parse_config(kAgency, "c.yaml");
  REQUIRE(none.has_value());
  CHECK(none->bus.type == "in_process");
  CHECK_FALSE(none->bus.kafka());

  auto k = parse_config(with_bus("  type: kafka\n  bootstrap_servers: \"127.0.0.1:9092,b:9093\"\n"),
                        "c.yaml");
  REQUIRE(k.has_value());
  CHECK(k->bus.kafka());
  CHECK(k->bus.bootstrap_servers == "127.0.0.1:9092,b:9093");
  CHECK(k->bus.topic_prefix == "replywatch");
  CHECK(k->bus.group_id == "replywatch");
  CHECK(k->bus.partitions == 6);
  CHECK(k->bus.replication_factor == -1);
  CHECK(k->bus.create_topics);
  CHECK(k->bus.commit_interval_ms == 100);
  CHECK_FALSE(k->bus.instance.empty());  // the host name
  CHECK(k->bus.rdkafka.empty());
}

TEST_CASE("bus: every mistake named with its key") {
  CHECK(contains(problems(with_bus("  type: rabbitmq\n")),
                 "bus.type: must be 'in_process' or 'kafka', not 'rabbitmq'"));
  CHECK(contains(problems(with_bus("  type: kafka\n")),
                 "bus.bootstrap_servers: missing required key for type: kafka"));
  CHECK(contains(problems(with_bus("  type: kafka\n  bootstrap_servers: localhost\n")),
                 "bus.bootstrap_servers"));
  CHECK(contains(problems(with_bus("  type: in_process\n  partitions: 4\n")),
                 "bus.partitions: only for type: kafka"));
  CHECK(
      contains(problems(with_bus("  type: kafka\n  bootstrap_servers: \"h:1\"\n  partitons: 4\n")),
               "bus.partitons: unknown key"));
  CHECK(
      contains(problems(with_bus("  type: kafka\n  bootstrap_servers: \"h:1\"\n  partitions: 0\n")),
               "bus.partitions"));
  CHECK(contains(problems(with_bus("  type: kafka\n  bootstrap_servers: \"h:1\"\n"
                                   "  replication_factor: 1\n  min_insync_replicas: 2\n")),
                 "bus.min_insync_replicas: must not exceed bus.replication_factor"));
}

TEST_CASE("bus.rdkafka: passed to librdkafka, which checks it; replywatch's own keys refused") {
  auto ok = parse_config(with_bus("  type: kafka\n  bootstrap_servers: \"h:1\"\n  rdkafka:\n"
                                  "    security.protocol: SASL_SSL\n    sasl.mechanism: PLAIN\n"
                                  "    socket.timeout.ms: 20000\n"),
                         "c.yaml");
  REQUIRE(ok.has_value());
  CHECK(ok->bus.rdkafka.size() == 3);

  // Settings the exactly-once design depends on cannot be overridden.
  for (const char* key : {"enable.idempotence", "transactional.id", "isolation.level",
                          "enable.auto.commit", "group.id"}) {
    CAPTURE(key);
    const auto p = problems(with_bus(std::string("  type: kafka\n  bootstrap_servers: \"h:1\"\n"
                                                 "  rdkafka:\n    ") +
                                     key + ": x\n"));
    CHECK(contains(p, std::string("bus.rdkafka.") + key));
  }
  // librdkafka's own verdict on names and values.
  CHECK(contains(problems(with_bus("  type: kafka\n  bootstrap_servers: \"h:1\"\n  rdkafka:\n"
                                   "    no.such.setting: 1\n")),
                 "bus.rdkafka.no.such.setting"));
  CHECK(contains(problems(with_bus("  type: kafka\n  bootstrap_servers: \"h:1\"\n  rdkafka:\n"
                                   "    security.protocol: CARRIER_PIGEON\n")),
                 "bus.rdkafka.security.protocol"));
}

TEST_CASE("bus.rdkafka secrets: from the environment or a 0600 file, never echoed") {
  const std::string password = "kafka-Pa55word-value";
  ::setenv("REPLYWATCH_TEST_KAFKA_PASSWORD", password.c_str(), 1);
  auto ok = parse_config(with_bus("  type: kafka\n  bootstrap_servers: \"h:1\"\n  rdkafka:\n"
                                  "    sasl.username: monitor\n"
                                  "    sasl.password_env: REPLYWATCH_TEST_KAFKA_PASSWORD\n"),
                         "c.yaml");
  REQUIRE(ok.has_value());
  bool found = false;
  for (const auto& [key, value] : ok->bus.rdkafka) {
    if (key == "sasl.password") found = value == password;
  }
  CHECK(found);
  REQUIRE(ok->bus.secrets.size() == 1);
  CHECK(ok->bus.secrets[0] == password);

  CHECK(contains(problems(with_bus("  type: kafka\n  bootstrap_servers: \"h:1\"\n  rdkafka:\n"
                                   "    sasl.password_env: REPLYWATCH_TEST_KAFKA_UNSET\n")),
                 "environment variable 'REPLYWATCH_TEST_KAFKA_UNSET' is not set"));

  // A secret that librdkafka refuses as a value is not repeated in the message.
  ::setenv("REPLYWATCH_TEST_KAFKA_BAD", "SECRETPROTOCOL-xyz", 1);
  const auto bad =
      problems(with_bus("  type: kafka\n  bootstrap_servers: \"h:1\"\n  rdkafka:\n"
                        "    security.protocol_env: REPLYWATCH_TEST_KAFKA_BAD\n"));
  CHECK(contains(bad, "bus.rdkafka.security.protocol_env"));
  CHECK_FALSE(contains(bad, "SECRETPROTOCOL-xyz"));

  const auto dir = std::filesystem::temp_directory_path() / "replywatch_kafka_secret_test";
  std::filesystem::create_directories(dir);
  const auto file = dir / "kafka.password";
  { std::ofstream(file) << password << "\n"; }
  std::filesystem::permissions(file, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::owner_write |
                                         std::filesystem::perms::group_read);
  const std::string yaml = with_bus(
      "  type: kafka\n  bootstrap_servers: \"h:1\"\n  rdkafka:\n"
      "    sasl.password_file: " +
      file.string() + "\n");
  const auto refused = problems(yaml);
  CHECK(contains(refused, "chmod 600"));
  CHECK_FALSE(contains(refused, password));
  std::filesystem::permissions(
      file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto from_file = parse_config(yaml, "c.yaml");
  REQUIRE(from_file.has_value());
  REQUIRE(from_file->bus.secrets.size() == 1);
  CHECK(from_file->bus.secrets[0] == password);
  std::filesystem::remove_all(dir);
}
