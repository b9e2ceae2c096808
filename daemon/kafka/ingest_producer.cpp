// Records are produced to explicit partitions (murmur2 of the key, as Kafka's partitioner
// computes it), so a watermark can be sent to every partition after the events it covers.
// Each batch counts its unacknowledged records; a connector's batches complete in publish
// order, which is the order its cursors may be kept in.
#include "daemon/kafka/ingest_producer.hpp"

#include <algorithm>
#include <chrono>
#include <tuple>

#include "daemon/kafka/records.hpp"

namespace replywatch::daemon::kafka {

namespace {

constexpr std::size_t kEventsPerRecord = 500;  // ~100 KB: far below the 1 MB record limit
constexpr std::int64_t kRetryPauseMs = 1000;

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct IngestProducer::Pending {
  Channel* channel = nullptr;
  std::atomic<int> remaining{1};  // its records, plus one until all are produced
  std::vector<CursorUpdate> cursors;
  std::int64_t created_ms = 0;
  bool done = false;
  bool abandoned = false;  // not all its records could be produced: its cursors are dropped
};

struct IngestProducer::Channel {
  std::string connector;
  std::deque<std::unique_ptr<Pending>> queue;  // published, not all acknowledged, in order
  std::uint64_t published = 0;
  std::uint64_t completed = 0;
};

IngestProducer::IngestProducer(const Config& config, int events_partitions, Hooks hooks)
    : bus_(config.bus),
      topic_(TopicNames(config.bus.topic_prefix).events),
      instance_(config.bus.instance),
      partitions_(events_partitions),
      hooks_(std::move(hooks)) {
  context_.name = "ingest";
  context_.secrets = bus_.secrets;
  context_.on_delivery = [this](const rd_kafka_message_t& m) { delivered(m); };
  context_.on_stats = [this](std::string_view json) { retries_ = broker_retries(json); };
}

IngestProducer::~IngestProducer() { shutdown(0); }

Result<void> IngestProducer::start() {
  auto client = make_client(bus_, RD_KAFKA_PRODUCER, context_, idempotent_producer_settings());
  if (!client) return client.error();
  client_ = std::move(*client);
  poller_ = std::thread([this] { poll_loop(); });
  return {};
}

void IngestProducer::poll_loop() {
  while (!stop_) {
    rd_kafka_poll(client_.get(), 100);
    produce_retries();
  }
}

bool IngestProducer::check_fatal() {
  if (fatal_) return true;
  char reason[512];
  if (rd_kafka_fatal_error(client_.get(), reason, sizeof reason) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    return false;
  }
  if (fatal_.exchange(true)) return true;
  const std::string text =
      "fatal producer error: " + scrub(reason, bus_.secrets) + "; no further event is acknowledged";
  context_.log(LogLevel::error, text);
  if (hooks_.fatal) hooks_.fatal("kafka ingest: " + text);
  return true;
}

void IngestProducer::retry_later(int partition, std::string key, std::string value,
                                 Pending* pending) {
  std::lock_guard lock(mutex_);
  retries_due_.push_back(
      {partition, std::move(key), std::move(value), pending, steady_ms() + kRetryPauseMs});
}

void IngestProducer::produce_retries() {
  std::deque<Retry> due;
  {
    std::lock_guard lock(mutex_);
    const std::int64_t now = steady_ms();
    while (!retries_due_.empty() && retries_due_.front().due_ms <= now) {
      due.push_back(std::move(retries_due_.front()));
      retries_due_.pop_front();
    }
  }
  for (Retry& r : due) {
    if (check_fatal() || stop_) return;
    // The record still counts in its batch's `remaining`: produce() counts it again.
    --r.pending->remaining;
    if (!produce(r.partition, r.key, r.value, r.pending, false)) {
      ++r.pending->remaining;
      retry_later(r.partition, std::move(r.key), std::move(r.value), r.pending);
    }
  }
}

IngestProducer::Channel& IngestProducer::channel(const std::string& connector) {
  auto& c = channels_[connector];
  if (!c) {
    c = std::make_unique<Channel>();
    c->connector = connector;
  }
  return *c;
}

bool IngestProducer::produce(int partition, const std::string& key, std::string& value,
                             Pending* pending, bool block) {
  for (;;) {
    if (pending) ++pending->remaining;
    const auto err = rd_kafka_producev(
        client_.get(), RD_KAFKA_V_TOPIC(topic_.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_VALUE(value.data(), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(pending), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++records_;
      return true;
    }
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      ++errors_;
      context_.log(LogLevel::error, "cannot produce to " + topic_ + " partition " +
                                        std::to_string(partition) + ": " + error_text(err) +
                                        (pending ? " (retrying)" : ""));
      if (pending && !check_fatal()) retry_later(partition, key, value, pending);
      return true;  // the batch stays unacknowledged until the record is in
    }
    if (pending) --pending->remaining;
    // The brokers are away or slow: wait for room, as long as it takes.
    if (!block || closed_) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool IngestProducer::send(EventBatch& batch, bool block) {
  const std::string producer = producer_name(batch.connector);
  const std::int64_t now = batch.received_at ? batch.received_at : connectors::wall_now();
  auto owned = std::make_unique<Pending>();
  Pending* pending = owned.get();
  pending->cursors = std::move(batch.cursors);
  batch.cursors.clear();
  pending->created_ms = steady_ms();
  {
    std::lock_guard lock(mutex_);
    Channel& c = channel(batch.connector);
    pending->channel = &c;
    c.queue.push_back(std::move(owned));
    ++c.published;
  }
  std::string value;
  bool ok = true;
  for (const auto& [from, to] : batch.migrations) {
    value.clear();
    write_migration(value, producer, now, from, to);
    const std::string key = conversation_key(pipeline::Source::telegram, to);
    ok = ok && produce(partition_for(key, partitions_), key, value, pending, block);
  }
  // A batch interleaves conversations (a poll of a busy group, a file in time order): each
  // conversation's events become one record per 500, in their order within the batch.
  std::vector<pipeline::Event> events(batch.events.begin(), batch.events.end());
  std::stable_sort(events.begin(), events.end(),
                   [](const pipeline::Event& a, const pipeline::Event& b) {
                     return std::tie(a.source, a.conversation) < std::tie(b.source, b.conversation);
                   });
  for (std::size_t i = 0; ok && i < events.size();) {
    std::size_t j = i + 1;
    while (j < events.size() && j - i < kEventsPerRecord &&
           events[j].conversation == events[i].conversation &&
           events[j].source == events[i].source) {
      ++j;
    }
    value.clear();
    write_events(value, producer, now, std::span<const pipeline::Event>(events.data() + i, j - i));
    const std::string key = conversation_key(events[i].source, events[i].conversation);
    ok = produce(partition_for(key, partitions_), key, value, pending, block);
    i = j;
  }
  if (!ok) {
    // Its records already produced still complete it; its cursors are dropped (the source
    // delivers these events again: a webhook answered 503, a file read again at start).
    pending->abandoned = true;
    pending->cursors.clear();
  }
  // Release the guard: the batch completes when its last record is acknowledged.
  rd_kafka_message_t none{};
  none._private = pending;
  delivered(none);
  return ok;
}

void IngestProducer::publish(EventBatch batch) {
  if (closed_) return;
  if (!send(batch, true)) return;
  if (hooks_.accounted) hooks_.accounted(std::move(batch));
}

bool IngestProducer::try_publish(EventBatch& batch) {
  if (closed_ || !send(batch, false)) return false;
  if (hooks_.accounted) hooks_.accounted(std::move(batch));
  return true;
}

void IngestProducer::delivered(const rd_kafka_message_t& m) {
  auto* pending = static_cast<Pending*>(m._private);
  if (m.rkt) {  // a real report, not the guard
    if (m.err) {
      ++errors_;
      context_.log(LogLevel::error, "record not written to " + topic_ + " partition " +
                                        std::to_string(m.partition) + ": " + error_text(m.err) +
                                        (pending ? " (retrying)" : ""));
      if (!pending || check_fatal()) return;
      // Its batch stays incomplete until the same record is written.
      retry_later(m.partition, std::string(static_cast<const char*>(m.key), m.key ? m.key_len : 0),
                  std::string(static_cast<const char*>(m.payload), m.payload ? m.len : 0), pending);
      return;
    }
    ++delivered_;
  }
  if (!pending || --pending->remaining > 0) return;
  std::vector<std::pair<std::string, std::vector<CursorUpdate>>> durable;
  {
    std::lock_guard lock(mutex_);
    pending->done = true;
    Channel& c = *pending->channel;
    while (!c.queue.empty() && c.queue.front()->done) {
      durable.emplace_back(c.connector, std::move(c.queue.front()->cursors));
      c.queue.pop_front();
      ++c.completed;
    }
  }
  cv_.notify_all();
  if (hooks_.durable) {
    for (auto& [connector, cursors] : durable) {
      if (!cursors.empty()) hooks_.durable(connector, std::move(cursors));
    }
  }
}

bool IngestProducer::wait_durable(const std::string& connector, const std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  Channel& c = channel(connector);
  const std::uint64_t want = c.published;
  while (c.completed < want) {
    if (stop || closed_) return false;
    cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  return true;
}

bool IngestProducer::acknowledged(const std::string& connector) const {
  std::lock_guard lock(mutex_);
  const auto it = channels_.find(connector);
  return it == channels_.end() || it->second->completed == it->second->published;
}

void IngestProducer::send_watermarks(const ConnectorProgress& progress, std::int64_t now) {
  if (!client_ || closed_) return;
  std::string value;
  for (const auto& c : progress.connectors()) {
    if (c.watermark == kNoClock) continue;
    const std::string producer = producer_name(c.name);
    value.clear();
    write_watermark(value, producer, now, c.watermark);
    for (int p = 0; p < partitions_; ++p) produce(p, producer, value, nullptr, false);
  }
}

void IngestProducer::close() {
  closed_ = true;
  cv_.notify_all();
}

void IngestProducer::shutdown(int timeout_ms) {
  close();
  if (!client_) return;
  if (timeout_ms > 0) rd_kafka_flush(client_.get(), timeout_ms);
  stop_ = true;
  if (poller_.joinable()) poller_.join();
  if (const int left = rd_kafka_outq_len(client_.get()); left > 0) {
    context_.log(LogLevel::warn, std::to_string(left) +
                                     " records not acknowledged at shutdown; their connectors' "
                                     "cursors were not kept and they are read again at start");
  }
  client_.reset();
  std::lock_guard lock(mutex_);
  retries_due_.clear();
  channels_.clear();
}

IngestProducer::Stats IngestProducer::stats() const {
  Stats s;
  s.records = records_;
  s.delivered = delivered_;
  s.errors = errors_;
  s.retries = retries_;
  std::lock_guard lock(mutex_);
  s.retrying = retries_due_.size();
  const std::int64_t now = steady_ms();
  for (const auto& [name, c] : channels_) {
    s.queued += c->queue.size();
    if (!c->queue.empty()) {
      s.oldest_unacknowledged_ms =
          std::max(s.oldest_unacknowledged_ms, now - c->queue.front()->created_ms);
    }
  }
  return s;
}

}  // namespace replywatch::daemon::kafka
