// The loop: consume a batch (rebalances happen here, never inside a transaction), apply it,
// flush, checkpoint what is due, send the offsets, commit. Checkpoints are chunked into the
// changelog partition of the same number as the input partition: "chunk/<i>" records of
// opaque state and a "head" record (JSON) naming the input offset they reflect, all in the
// transaction that commits that offset.
#include "daemon/kafka/stage_runner.hpp"

#include <simdjson.h>

#include <chrono>
#include <cstring>

#include "connectors/connector.hpp"
#include "daemon/json_writer.hpp"
#include "daemon/kafka/records.hpp"
#include "pipeline/binary.hpp"

namespace replywatch::daemon::kafka {

namespace {

constexpr std::size_t kBatch = 10000;
constexpr std::size_t kChunkBytes = 512 * 1024;
constexpr std::uint32_t kChunkMagic = 0x4B435752;  // "RWCK"
constexpr int kTimeoutMs = 30000;
// Fenced this often, the transactional id is another live process's: stop, do not fight.
constexpr std::int64_t kFencingWindowMs = 300000;
constexpr std::size_t kFencingLimit = 3;

using connectors::wall_now;

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint64_t fnv1a(std::string_view data) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string chunk_key(std::uint32_t i) { return "chunk/" + std::to_string(i); }

/// Records of one transaction, on the transactional producer.
class TxnOutput : public Output {
 public:
  explicit TxnOutput(rd_kafka_t* producer, ClientContext& context)
      : producer_(producer), context_(context) {}
  void send(const std::string& topic, int partition, std::string_view key,
            const std::string* value) override {
    for (;;) {
      const auto err =
          rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic.c_str()),
                            RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(key.data(), key.size()),
                            RD_KAFKA_V_VALUE(value ? const_cast<char*>(value->data()) : nullptr,
                                             value ? value->size() : 0),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++records;
        return;
      }
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        // The transaction cannot commit without this record: make it abort.
        failed = true;
        context_.log(LogLevel::error, "cannot produce to " + topic + ": " + error_text(err));
        return;
      }
      rd_kafka_poll(producer_, 10);
    }
  }
  std::uint64_t records = 0;
  bool failed = false;

 private:
  rd_kafka_t* producer_;
  ClientContext& context_;
};

}  // namespace

StageRunner::StageRunner(std::shared_ptr<const Config> config, StageSpec spec)
    : config_(std::move(config)),
      spec_(std::move(spec)),
      group_(config_->bus.group_id + "." + spec_.name),
      transactional_id_(config_->bus.group_id + "." + spec_.name + "." + config_->bus.instance) {
  for (auto* c : {&consumer_context_, &producer_context_, &reader_context_}) {
    c->name = spec_.name;
    c->secrets = config_->bus.secrets;
  }
  producer_context_.on_stats = [this](std::string_view json) {
    const std::uint64_t retries = broker_retries(json);
    std::lock_guard lock(mutex_);
    status_.retries = retries;
  };
  consumer_context_.on_rebalance = [this](rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                          rd_kafka_topic_partition_list_t* list) {
    rebalance(rk, err, list);
  };
}

StageRunner::~StageRunner() { stop(); }

Result<void> StageRunner::start() {
  const BusSettings& bus = config_->bus;
  auto consumer =
      make_client(bus, RD_KAFKA_CONSUMER, consumer_context_, group_consumer_settings(group_));
  if (!consumer) return consumer.error();
  auto producer = make_client(bus, RD_KAFKA_PRODUCER, producer_context_,
                              transactional_producer_settings(bus, transactional_id_));
  if (!producer) return producer.error();
  auto reader =
      make_client(bus, RD_KAFKA_CONSUMER, reader_context_, reader_settings(bus, spec_.name));
  if (!reader) return reader.error();
  consumer_ = std::move(*consumer);
  producer_ = std::move(*producer);
  reader_ = std::move(*reader);
  rd_kafka_poll_set_consumer(consumer_.get());
  thread_ = std::thread([this] { run(); });
  return {};
}

void StageRunner::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void StageRunner::reload(std::shared_ptr<const Config> config) {
  std::lock_guard lock(mutex_);
  config_ = config;
  for (auto& [partition, p] : partitions_) p.task->reload(config);
}

void StageRunner::fail(const std::string& why) {
  if (fatal_) return;
  fatal_ = true;
  {
    std::lock_guard lock(mutex_);
    status_.running = false;
    status_.problem = why;
  }
  log_error("kafka " + spec_.name + ": " + why);
  if (on_fatal) on_fatal(why);
}

/// True when the call succeeded; otherwise handles what the error needs and returns false.
bool StageRunner::handle(rd_kafka_error_t* raw, const char* what) {
  if (!raw) return true;
  ErrorPtr error(raw);
  const std::string text = scrub(rd_kafka_error_string(raw), config_->bus.secrets);
  if (rd_kafka_error_is_fatal(raw)) {
    const auto code = rd_kafka_error_code(raw);
    const bool fenced = code == RD_KAFKA_RESP_ERR__FENCED ||
                        code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
                        code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
    const std::int64_t now = steady_ms();
    if (fenced) fenced_at_.push_back(now);
    while (!fenced_at_.empty() && now - fenced_at_.front() > kFencingWindowMs) {
      fenced_at_.pop_front();
    }
    // Fenced again and again: another live process holds the same transactional id.
    if (fenced_at_.size() >= kFencingLimit) {
      fail(std::string(what) + ": " + text + " (another process uses transactional id " +
           transactional_id_ + ": is bus.instance unique?)");
      return false;
    }
    producer_context_.log(LogLevel::error, std::string(what) + ": " + text +
                                               "; a new producer takes over and the open "
                                               "transaction's work is redone");
    renew_ = true;
    aborted_ = true;
    return false;
  }
  {
    std::lock_guard lock(mutex_);
    status_.problem = std::string(what) + ": " + text;
  }
  producer_context_.log(LogLevel::warn, std::string(what) + ": " + text);
  if (rd_kafka_error_txn_requires_abort(raw) || !rd_kafka_error_is_retriable(raw)) {
    aborted_ = true;
  }
  return false;
}

bool StageRunner::renew_producer() { return replace_producer() && init_transactions(); }

bool StageRunner::replace_producer() {
  renew_ = false;
  txn_open_ = false;
  rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  producer_.reset();
  auto producer = make_client(config_->bus, RD_KAFKA_PRODUCER, producer_context_,
                              transactional_producer_settings(config_->bus, transactional_id_));
  if (!producer) {
    fail("cannot create a new producer: " + producer.error().message);
    return false;
  }
  producer_ = std::move(*producer);
  {
    std::lock_guard lock(mutex_);
    ++status_.producers_renewed;
  }
  return true;
}

bool StageRunner::init_transactions() {
  while (!stop_) {
    if (renew_ && !replace_producer()) return false;
    if (handle(rd_kafka_init_transactions(producer_.get(), kTimeoutMs),
               "initialising transactions")) {
      std::lock_guard lock(mutex_);
      status_.running = true;
      status_.problem.clear();
      return true;
    }
    if (fatal_) return false;
    aborted_ = false;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return false;
}

void StageRunner::run() {
  if (!init_transactions()) return;
  {
    PartitionList topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), spec_.input.c_str(), RD_KAFKA_PARTITION_UA);
    if (const auto err = rd_kafka_subscribe(consumer_.get(), topics.get()); err) {
      fail("cannot subscribe to " + spec_.input + ": " + error_text(err));
      return;
    }
  }
  std::vector<rd_kafka_message_t*> messages(kBatch);
  const int wait_ms =
      static_cast<int>(std::min<std::int64_t>(config_->bus.commit_interval_ms, 1000));
  LogLimiter bad_log(10, 60);
  while (!stop_ && !fatal_) {
    const auto n = static_cast<ssize_t>(poll_batch(messages, wait_ms));
    rd_kafka_poll(producer_.get(), 0);
    const std::int64_t now = wall_now();
    TxnOutput out(producer_.get(), producer_context_);
    auto begin = [&] {
      if (txn_open_) return true;
      if (!handle(rd_kafka_begin_transaction(producer_.get()), "beginning a transaction")) {
        return false;
      }
      txn_open_ = true;
      return true;
    };
    {
      std::lock_guard lock(mutex_);
      std::uint64_t replayed = 0;
      for (ssize_t i = 0; i < n; ++i) {
        rd_kafka_message_t* m = messages[static_cast<std::size_t>(i)];
        if (m->err) {
          if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            status_.problem = "consuming " + spec_.input + ": " + rd_kafka_message_errstr(m);
            consumer_context_.log(LogLevel::warn, status_.problem);
          }
          rd_kafka_message_destroy(m);
          continue;
        }
        auto it = partitions_.find(m->partition);
        if (it == partitions_.end() || m->offset < it->second.position) {
          rd_kafka_message_destroy(m);  // not ours any more, or fetched before a reset
          continue;
        }
        Partition& p = it->second;
        const bool silent = m->offset < p.silent_until;
        if (!silent && !txn_open_ && !begin()) {
          // The rest of the batch is read again after the reset.
          for (ssize_t j = i; j < n; ++j) rd_kafka_message_destroy(messages[j]);
          aborted_ = true;
          break;
        }
        const std::string_view key(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
        const std::string_view value(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
        auto applied = p.task->apply(key, value, silent ? nullptr : &out, now);
        if (!applied) {
          ++status_.bad_records;
          long long suppressed = 0;
          if (bad_log.allow(now, suppressed)) {
            log_warn(
                "kafka " + spec_.name + ": " + spec_.input + " partition " +
                std::to_string(m->partition) + " offset " + std::to_string(m->offset) + ": " +
                applied.error().message + " (skipped)" +
                (suppressed ? " (" + std::to_string(suppressed) + " similar suppressed)" : ""));
          }
        }
        if (silent) ++replayed;
        p.position = m->offset + 1;
        rd_kafka_message_destroy(m);
      }
      for (ssize_t i = 0; i < n; ++i) messages[static_cast<std::size_t>(i)] = nullptr;
      status_.replayed += replayed;
      if (!aborted_) {
        const bool periodic_due =
            spec_.periodic_ms > 0 && steady_ms() - last_periodic_ >= spec_.periodic_ms;
        for (auto& [partition, p] : partitions_) {
          if (p.replaying()) continue;
          const bool checkpoint_due =
              p.position > p.checkpointed &&
              now - p.last_checkpoint >= config_->bus.checkpoint_interval_secs;
          if (!txn_open_ && !(periodic_due || checkpoint_due || n > 0)) continue;
          if (!begin()) {
            aborted_ = true;
            break;
          }
          p.task->flush(out, now);
          if (periodic_due) p.task->periodic(out, now);
          if (checkpoint_due) write_checkpoint(partition, p, out, now);
        }
        if (periodic_due) last_periodic_ = steady_ms();
      }
    }
    if (out.failed) aborted_ = true;
    {
      std::lock_guard lock(mutex_);
      status_.produced += out.records;
    }
    if (txn_open_) commit();
    if (renew_ && !renew_producer()) break;
    if (aborted_) reset_all();
  }
  // Shut down: a last checkpoint of everything, so the next owner starts at once.
  if (!fatal_ && !renew_) {
    TxnOutput out(producer_.get(), producer_context_);
    {
      std::lock_guard lock(mutex_);
      for (auto& [partition, p] : partitions_) {
        if (p.replaying() || p.position <= p.checkpointed) continue;
        if (!txn_open_ && !handle(rd_kafka_begin_transaction(producer_.get()), "beginning")) break;
        txn_open_ = true;
        write_checkpoint(partition, p, out, wall_now());
      }
    }
    if (txn_open_) commit();
    if (txn_open_) handle(rd_kafka_abort_transaction(producer_.get(), kTimeoutMs), "aborting");
  }
  rd_kafka_consumer_close(consumer_.get());
  {
    std::lock_guard lock(mutex_);
    partitions_.clear();
    status_.running = false;
  }
}

std::size_t StageRunner::poll_batch(std::vector<rd_kafka_message_t*>& out, int wait_ms) {
  // One rd_kafka_consumer_poll at a time, not the batch API: in librdkafka before 2.1 a batch
  // can hold records fetched before a seek or a rebalance served inside the same call, and
  // applying one of those past a reset would skip the records between. For the same reason
  // records polled before a repositioning (rebalance, reset) in this batch are dropped: the
  // new positions fetch them again.
  std::size_t n = 0;
  std::uint64_t epoch = positioning_;
  const std::int64_t deadline = steady_ms() + wait_ms;
  while (n < out.size() && !stop_ && !fatal_) {
    const auto left = static_cast<int>(std::max<std::int64_t>(0, deadline - steady_ms()));
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), left);
    if (positioning_ != epoch) {
      for (std::size_t i = 0; i < n; ++i) rd_kafka_message_destroy(out[i]);
      n = 0;
      epoch = positioning_;
    }
    if (m) {
      out[n++] = m;
    } else if (left == 0) {
      break;
    }
  }
  return n;
}

void StageRunner::commit() {
  PartitionList offsets(rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size())));
  {
    std::lock_guard lock(mutex_);
    for (const auto& [partition, p] : partitions_) {
      const std::int64_t offset = std::max(p.position, p.silent_until);
      if (offset < 0) continue;
      rd_kafka_topic_partition_list_add(offsets.get(), spec_.input.c_str(), partition)->offset =
          offset;
    }
  }
  bool sent = aborted_ || offsets->cnt == 0;
  while (!sent && !stop_ && !aborted_ && !fatal_ && !renew_) {
    rd_kafka_consumer_group_metadata_t* group = rd_kafka_consumer_group_metadata(consumer_.get());
    sent = handle(
        rd_kafka_send_offsets_to_transaction(producer_.get(), offsets.get(), group, kTimeoutMs),
        "sending offsets");
    rd_kafka_consumer_group_metadata_destroy(group);
    if (!sent && !aborted_ && !fatal_) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  bool committed = false;
  while (sent && !aborted_ && !fatal_) {
    committed = handle(rd_kafka_commit_transaction(producer_.get(), kTimeoutMs), "committing");
    if (renew_) break;
    if (committed || aborted_ || fatal_) break;
    if (stop_) {
      aborted_ = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // retriable: the same again
  }
  if (committed) {
    txn_open_ = false;
    std::lock_guard lock(mutex_);
    ++status_.transactions;
    status_.problem.clear();
    return;
  }
  if (fatal_) return;
  // Abort: whatever the tasks did in this transaction is undone by resetting them.
  aborted_ = true;
  while (!renew_ && !handle(rd_kafka_abort_transaction(producer_.get(), kTimeoutMs), "aborting") &&
         !fatal_ && !renew_ && !stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  txn_open_ = false;
  std::lock_guard lock(mutex_);
  ++status_.aborts;
}

void StageRunner::reset_all() {
  aborted_ = false;
  if (stop_ || fatal_) return;
  std::vector<int> owned;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [partition, p] : partitions_) owned.push_back(partition);
  }
  if (owned.empty()) return;
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(owned.size())));
  for (int p : owned) rd_kafka_topic_partition_list_add(list.get(), spec_.input.c_str(), p);
  prepare(list.get());
  ++positioning_;
  // A seek that fails for any partition (or times out, leaving the fetcher's state unknown)
  // would let the consumer go on past the restored position: assign the positions instead,
  // which restarts every partition's fetcher where its state is.
  std::string problem;
  if (ErrorPtr e{rd_kafka_seek_partitions(consumer_.get(), list.get(), kTimeoutMs)}) {
    problem = rd_kafka_error_string(e.get());
  }
  for (int i = 0; i < list->cnt && problem.empty(); ++i) {
    if (list->elems[i].err) {
      problem = "partition " + std::to_string(list->elems[i].partition) + ": " +
                error_text(list->elems[i].err);
    }
  }
  if (!problem.empty()) {
    log_warn("kafka " + spec_.name + ": seeking after an abort failed (" + problem +
             "); assigning the restored positions instead");
    // prepare() left each element's offset at its restored position; the seek only set errors.
    for (int i = 0; i < list->cnt; ++i) list->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (const auto err = rd_kafka_assign(consumer_.get(), list.get()); err) {
      fail("cannot reposition " + spec_.input + " after an abort: " + error_text(err));
      return;
    }
  }
  log_warn("kafka " + spec_.name + ": transaction aborted; " + std::to_string(owned.size()) +
           " partition(s) restored from their checkpoints");
}

void StageRunner::rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t* list) {
  ++positioning_;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    prepare(list);
    rd_kafka_assign(rk, list);
    std::string names;
    for (int i = 0; i < list->cnt; ++i) {
      names += (names.empty() ? "" : ",") + std::to_string(list->elems[i].partition);
    }
    log_info("kafka " + spec_.name + ": assigned " + spec_.input + " partitions [" + names + "]");
  } else {
    std::lock_guard lock(mutex_);
    partitions_.clear();
    rd_kafka_assign(rk, nullptr);
  }
  std::lock_guard lock(mutex_);
  ++status_.rebalances;
}

void StageRunner::prepare(rd_kafka_topic_partition_list_t* list) {
  // Committed offsets: what earlier owners' transactions already hold. "Unstable" while a
  // transaction that commits them is still open: wait for it to end.
  PartitionList committed(rd_kafka_topic_partition_list_copy(list));
  for (int attempt = 0; !stop_; ++attempt) {
    const auto err = rd_kafka_committed(consumer_.get(), committed.get(), kTimeoutMs);
    bool unstable = err != RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < committed->cnt; ++i) {
      unstable = unstable || committed->elems[i].err == RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT;
    }
    if (!unstable) break;
    if (attempt % 25 == 0) {
      log_info("kafka " + spec_.name + ": waiting for committed offsets (" +
               error_text(err ? err : RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::shared_ptr<const Config> config;
  {
    std::lock_guard lock(mutex_);
    config = config_;
  }
  for (int i = 0; i < list->cnt; ++i) {
    auto& elem = list->elems[i];
    const int partition = elem.partition;
    Result<Checkpoint> checkpoint = make_error("");
    for (int attempt = 0; !stop_; ++attempt) {
      checkpoint = read_checkpoint(partition);
      if (checkpoint) break;
      log_warn("kafka " + spec_.name + ": " + spec_.changelog + " partition " +
               std::to_string(partition) + ": " + checkpoint.error().message + " (retrying)");
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    Partition p;
    if (checkpoint && !checkpoint->damage.empty()) {
      log_error("kafka " + spec_.name + ": " + spec_.changelog + " partition " +
                std::to_string(partition) + ": " + checkpoint->damage +
                "; rebuilding from the beginning of " + spec_.input);
    } else if (checkpoint && checkpoint->input_offset >= 0) {
      auto task = spec_.restore(partition, config, checkpoint->state);
      if (task) {
        p.task = std::move(*task);
        p.position = checkpoint->input_offset;
        p.checkpointed = checkpoint->input_offset;
        p.chunks = checkpoint->chunks;
      } else {
        log_error("kafka " + spec_.name + ": " + spec_.changelog + " partition " +
                  std::to_string(partition) + ": checkpoint unusable (" + task.error().message +
                  "); rebuilding from the beginning of " + spec_.input);
      }
    }
    const bool restored = p.task != nullptr;
    if (!restored) p.task = spec_.fresh(partition, config);
    p.last_checkpoint = wall_now();
    const std::int64_t committed_offset = committed->elems[i].offset;
    p.silent_until = committed_offset >= 0 ? committed_offset : -1;
    elem.offset = p.position >= 0 ? p.position : RD_KAFKA_OFFSET_BEGINNING;
    std::lock_guard lock(mutex_);
    if (restored) ++status_.restores;
    partitions_[partition] = std::move(p);
  }
}

Result<StageRunner::Checkpoint> StageRunner::read_checkpoint(int partition) {
  PartitionList assignment(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(assignment.get(), spec_.changelog.c_str(), partition)->offset =
      RD_KAFKA_OFFSET_BEGINNING;
  if (const auto err = rd_kafka_assign(reader_.get(), assignment.get()); err) {
    return make_error("cannot read: " + error_text(err));
  }
  std::map<std::string, std::string> latest;  // compaction's view: the last value per key
  const auto deadline = steady_ms() + 120000;
  std::string problem;
  while (!stop_) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(reader_.get(), 500);
    if (!m) {
      if (steady_ms() > deadline) {
        problem = "no end of partition within 120 s";
        break;
      }
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      rd_kafka_message_destroy(m);
      break;
    }
    if (m->err) {
      problem = rd_kafka_message_errstr(m);
      rd_kafka_message_destroy(m);
      if (steady_ms() > deadline) break;
      continue;
    }
    std::string key(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
    if (m->payload) {
      latest[std::move(key)].assign(static_cast<const char*>(m->payload), m->len);
    } else {
      latest.erase(key);
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(reader_.get(), nullptr);
  if (!problem.empty() && steady_ms() > deadline) return make_error(problem);
  Checkpoint out;
  const auto damaged = [](std::string why) {
    Checkpoint c;
    c.damage = std::move(why);
    return c;
  };
  const auto head = latest.find("head");
  if (head == latest.end()) return out;  // never checkpointed
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::int64_t generation = 0, chunks = 0, bytes = 0, offset = 0;
  std::uint64_t checksum = 0;
  if (parser.parse(head->second).get(doc) || doc["input_offset"].get_int64().get(offset) ||
      doc["generation"].get_int64().get(generation) || doc["chunks"].get_int64().get(chunks) ||
      doc["bytes"].get_int64().get(bytes) || doc["checksum"].get_uint64().get(checksum) ||
      chunks < 0 || bytes < 0) {
    return damaged("checkpoint head damaged");
  }
  out.state.reserve(static_cast<std::size_t>(bytes));
  for (std::int64_t i = 0; i < chunks; ++i) {
    const auto chunk = latest.find(chunk_key(static_cast<std::uint32_t>(i)));
    if (chunk == latest.end()) {
      return damaged("checkpoint chunk " + std::to_string(i) + " missing");
    }
    pipeline::BinaryReader r(chunk->second);
    std::uint32_t magic = 0, index = 0;
    std::int64_t chunk_generation = 0;
    if (!r.get(magic) || magic != kChunkMagic || !r.get(chunk_generation) || !r.get(index) ||
        chunk_generation != generation || index != i) {
      return damaged("checkpoint chunk " + std::to_string(i) + " is not of generation " +
                     std::to_string(generation));
    }
    out.state.append(chunk->second, r.position(), std::string::npos);
  }
  if (static_cast<std::int64_t>(out.state.size()) != bytes || fnv1a(out.state) != checksum) {
    return damaged("checkpoint of generation " + std::to_string(generation) +
                   " fails its checksum");
  }
  out.input_offset = offset;
  out.chunks = static_cast<std::uint32_t>(chunks);
  return out;
}

void StageRunner::write_checkpoint(int partition, Partition& p, Output& out, std::int64_t now) {
  std::string state;
  p.task->serialize(state);
  const std::int64_t generation = p.position;
  const auto chunks = static_cast<std::uint32_t>((state.size() + kChunkBytes - 1) / kChunkBytes);
  std::string value;
  for (std::uint32_t i = 0; i < chunks; ++i) {
    value.clear();
    pipeline::BinaryWriter w(value);
    w.put(kChunkMagic);
    w.put(generation);
    w.put(i);
    value.append(state, i * kChunkBytes, kChunkBytes);
    out.send(spec_.changelog, partition, chunk_key(i), &value);
  }
  for (std::uint32_t i = chunks; i < p.chunks; ++i) {
    out.send(spec_.changelog, partition, chunk_key(i), nullptr);  // left from a larger one
  }
  value.clear();
  JsonWriter w(value);
  w.begin_object()
      .field("schema_version", kSchemaVersion)
      .field("type", "checkpoint")
      .field("stage", std::string_view(spec_.name))
      .field("partition", partition)
      .field("input_offset", p.position)
      .field("generation", generation)
      .field("chunks", static_cast<std::int64_t>(chunks))
      .field("bytes", static_cast<std::int64_t>(state.size()))
      .field("checksum", fnv1a(state))
      .field("written_at", now)
      .end_object();
  out.send(spec_.changelog, partition, "head", &value);
  p.checkpointed = p.position;
  p.last_checkpoint = now;
  p.chunks = chunks;
  ++status_.checkpoints;
  status_.checkpoint_bytes += state.size();
}

StageRunner::Status StageRunner::status() const {
  std::lock_guard lock(mutex_);
  Status s = status_;
  s.partitions.clear();
  for (const auto& [partition, p] : partitions_) {
    PartitionStatus ps;
    ps.partition = partition;
    ps.position = p.position;
    std::int64_t low = 0, high = 0;
    if (consumer_ &&
        rd_kafka_get_watermark_offsets(consumer_.get(), spec_.input.c_str(), partition, &low,
                                       &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      // The consumer's position, not the next record's offset: read_committed skips the
      // transaction markers, which occupy offsets and are no work.
      std::int64_t at = p.position;
      rd_kafka_topic_partition_list_t* one = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(one, spec_.input.c_str(), partition);
      if (rd_kafka_position(consumer_.get(), one) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          one->elems[0].offset >= 0) {
        at = std::max(at, one->elems[0].offset);
      }
      rd_kafka_topic_partition_list_destroy(one);
      ps.lag = std::max<std::int64_t>(0, high - std::max(at, low));
    }
    s.partitions.push_back(ps);
  }
  return s;
}

}  // namespace replywatch::daemon::kafka
