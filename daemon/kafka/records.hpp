// The JSON values of replywatch's topics (schema_version 1; docs/kafka.md documents each
// field). Writers append to a buffer; readers reuse their simdjson parser, so keep one per
// thread. A reader's error names the field that is wrong; the caller adds topic,
// partition and offset.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/ranking.hpp"
#include "pipeline/error.hpp"
#include "pipeline/event.hpp"
#include "pipeline/pairing.hpp"
#include "pipeline/registry.hpp"

namespace replywatch::daemon::kafka {

inline constexpr std::int64_t kSchemaVersion = 1;

/// Kafka's default partitioner (murmur2 of the key, positive, modulo the partition count),
/// the same as Java clients and librdkafka's murmur2_random compute.
std::uint32_t murmur2(std::string_view key);
int partition_for(std::string_view key, int partitions);

// ---- <prefix>.events ----

/// "telegram:-1001800004444": a conversation's events share one key, hence one partition.
std::string conversation_key(pipeline::Source source, std::int64_t conversation);

/// Events of one conversation, as the producer ("<instance>/<connector>") delivered them.
void write_events(std::string& out, std::string_view producer, std::int64_t sent_at,
                  std::span<const pipeline::Event> events);
/// Everything the producer will deliver later is newer than `watermark` (unless late).
/// Sent to every partition; also its heartbeat.
void write_watermark(std::string& out, std::string_view producer, std::int64_t sent_at,
                     std::int64_t watermark);
/// A Telegram group became a supergroup: `to` belongs to whoever owns `from`.
void write_migration(std::string& out, std::string_view producer, std::int64_t sent_at,
                     std::int64_t from, std::int64_t to);

struct EventsRecord {
  enum class Type { events, watermark, migration } type = Type::events;
  std::string producer;
  std::int64_t sent_at = 0;
  std::vector<pipeline::Event> events;  // events
  std::int64_t watermark = 0;           // watermark
  std::int64_t from = 0, to = 0;        // migration
};

// ---- <prefix>.appeals ----

struct ProducerClock {
  std::string name;
  std::int64_t watermark = pipeline::Pairing::kNoClock;
  bool retired = false;
};

/// An appeal changed: `before` null when it is new, `after` null when it is gone.
void write_appeal(std::string& out, int pair_partition, const pipeline::Registry& registry,
                  const pipeline::Appeal* before, const pipeline::Appeal* after);
/// A deleted message whose appeal the pair stage no longer holds (AppealSink).
void write_forgotten_deletion(std::string& out, int pair_partition, pipeline::Source source,
                              std::int64_t conversation, std::int64_t message);
/// The producers that deliver a conversation (whose watermarks make its clock).
void write_conversation(std::string& out, int pair_partition, pipeline::Source source,
                        std::int64_t conversation, const std::vector<std::string>& producers);
/// The watermarks of a pair partition's producers: finality and expiry run on them.
void write_clock(std::string& out, int pair_partition, std::int64_t sent_at,
                 const std::vector<ProducerClock>& producers);

/// The change an appeal record names (opened, answered, expired, withdrawn, corrected,
/// removed), from its before and after.
std::string_view change_of(const pipeline::Appeal* before, const pipeline::Appeal* after);

struct AppealsRecord {
  enum class Type { appeal, forgotten_deletion, conversation, clock } type = Type::appeal;
  int pair_partition = 0;
  std::optional<pipeline::Appeal> before, after;         // appeal
  pipeline::Source source = pipeline::Source::telegram;  // forgotten_deletion, conversation
  std::int64_t conversation = 0, message = 0;
  std::vector<std::string> producers;  // conversation
  std::int64_t sent_at = 0;            // clock
  std::vector<ProducerClock> clock;    // clock
};

// ---- <prefix>.agency-stats ----

/// "akimat|7d".
std::string stats_key(std::string_view agency, std::string_view window);
struct AgencyStats {
  std::string agency;
  std::string window;
  std::int64_t computed_at = 0;
  RankingRow row;                      // by=agency
  std::vector<RankingRow> responders;  // by=responder
  std::vector<RankingRow> branches;    // by=branch
};
void write_agency_stats(std::string& out, const AgencyStats& stats);

class RecordReader {
 public:
  RecordReader();
  ~RecordReader();
  Result<void> read(std::string_view json, EventsRecord& out);
  /// Agency and responder indexes are looked up in `registry`.
  Result<void> read(std::string_view json, const pipeline::Registry& registry, AppealsRecord& out);
  Result<void> read(std::string_view json, AgencyStats& out);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace replywatch::daemon::kafka
