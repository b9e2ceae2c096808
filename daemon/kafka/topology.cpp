// Wiring of the stages through Kafka, and this instance's view of them for /metrics and
// /readyz. The ingest stage stays on the io thread as in one process; its cursors are
// kept only once Kafka acknowledged what they cover.
#include "daemon/kafka/topology.hpp"

#include <boost/asio/post.hpp>
#include <chrono>

#include "daemon/kafka/tasks.hpp"
#include "pipeline/binary.hpp"

namespace replywatch::daemon::kafka {

namespace {

using prometheus::MetricType;

constexpr std::uint32_t kMagic = 0x52574B49;  // "RWKI"
constexpr std::uint32_t kVersion = 1;
constexpr std::int64_t kUnacknowledgedMs = 10000;  // longer: not ready

/// A stage whose partitions each run a `Task` (constructed from partition, config, layout).
template <class Task>
StageSpec stage_spec(std::string name, std::string input, std::string changelog, Layout layout) {
  StageSpec spec;
  spec.name = std::move(name);
  spec.input = std::move(input);
  spec.changelog = std::move(changelog);
  spec.fresh = [layout](int p, std::shared_ptr<const Config> c) {
    return std::make_unique<Task>(p, std::move(c), layout);
  };
  spec.restore = [layout](int p, std::shared_ptr<const Config> c,
                          std::string_view state) -> Result<std::unique_ptr<PartitionTask>> {
    auto task = std::make_unique<Task>(p, std::move(c), layout);
    if (auto ok = task->restore(state); !ok) return ok.error();
    return std::unique_ptr<PartitionTask>(std::move(task));
  };
  return spec;
}

}  // namespace

KafkaTopology::KafkaTopology(boost::asio::io_context& io, std::shared_ptr<const Config> config,
                             std::function<void(const std::string&)> fatal)
    : io_(io),
      config_(std::move(config)),
      fatal_(std::move(fatal)),
      ingest_(config_),
      last_reload_(connectors::wall_now()) {}

KafkaTopology::~KafkaTopology() { stop(); }

Result<void> KafkaTopology::start() {
  ClientContext admin;
  admin.name = "admin";
  admin.secrets = config_->bus.secrets;
  auto layout = ensure_topics(config_->bus, admin, 30000);
  if (!layout) return layout.error();
  layout_ = *layout;
  log_info("kafka: " + config_->bus.bootstrap_servers + ", topics " + config_->bus.topic_prefix +
           ".* (events " + std::to_string(layout_.events) + " partitions, appeals " +
           std::to_string(layout_.appeals) + "), instance " + config_->bus.instance);

  IngestProducer::Hooks hooks;
  hooks.accounted = [this](EventBatch&& batch) {
    auto shared = std::make_shared<EventBatch>(std::move(batch));
    boost::asio::post(io_, [this, shared] { ingest_.account(*shared); });
  };
  hooks.durable = [this](const std::string& connector, std::vector<CursorUpdate>&& cursors) {
    auto shared = std::make_shared<std::vector<CursorUpdate>>(std::move(cursors));
    boost::asio::post(io_, [this, connector, shared] { ingest_.take_cursors(connector, *shared); });
  };
  hooks.fatal = fatal_;
  producer_ = std::make_unique<IngestProducer>(*config_, layout_.events, std::move(hooks));
  if (auto ok = producer_->start(); !ok) return ok;

  const TopicNames topics(config_->bus.topic_prefix);
  StageSpec pair = stage_spec<PairTask>("pair", topics.events, topics.pair_changelog, layout_);
  StageSpec aggregate =
      stage_spec<AggregateTask>("aggregate", topics.appeals, topics.aggregate_changelog, layout_);
  aggregate.periodic_ms = config_->bus.stats_interval_secs * 1000;
  pair_ = std::make_unique<StageRunner>(config_, std::move(pair));
  aggregate_ = std::make_unique<StageRunner>(config_, std::move(aggregate));
  for (auto* runner : {pair_.get(), aggregate_.get()}) {
    runner->on_fatal = fatal_;
    if (auto ok = runner->start(); !ok) return ok;
  }
  stats_ = std::make_unique<StatsView>(*config_, layout_.stats);
  if (auto ok = stats_->start(); !ok) return ok;
  prober_ = std::thread([this] { probe_loop(); });
  return {};
}

void KafkaTopology::probe_loop() {
  ClientContext context;
  context.name = "probe";
  context.secrets = config_->bus.secrets;
  auto client = make_client(config_->bus, RD_KAFKA_PRODUCER, context, {});
  if (!client) return;
  while (!stop_) {
    const rd_kafka_metadata_t* md = nullptr;
    const auto err = rd_kafka_metadata(client->get(), 0, nullptr, &md, 3000);
    if (md) rd_kafka_metadata_destroy(md);
    {
      std::lock_guard lock(probe_mutex_);
      probe_error_ = err ? error_text(err) : std::string();
    }
    brokers_ok_ = !err;
    for (int i = 0; i < 20 && !stop_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void KafkaTopology::stop() {
  if (stop_.exchange(true)) return;
  // Connectors have stopped: what they published goes out first, then the stages finish
  // their transactions and checkpoint.
  if (producer_) producer_->shutdown(10000);
  if (pair_) pair_->stop();
  if (aggregate_) aggregate_->stop();
  if (stats_) stats_->stop();
  if (prober_.joinable()) prober_.join();
}

bool KafkaTopology::push(EventBatch&& batch, std::int64_t) {
  return producer_ && producer_->try_publish(batch);
}

void KafkaTopology::tick(std::int64_t now) {
  ingest_.tick(now);
  if (producer_) producer_->send_watermarks(ingest_.progress(), now);
}

void KafkaTopology::connector_success(const std::string& c, std::int64_t now, bool caught_up) {
  // As in one process: a connector that just caught up moves its watermark at once.
  if (ingest_.success(c, now, caught_up)) tick(now);
}

void KafkaTopology::reload(std::shared_ptr<const Config> config) {
  config_ = config;
  ingest_.reload(config);
  if (pair_) pair_->reload(config);
  if (aggregate_) aggregate_->reload(config);
  last_reload_ = connectors::wall_now();
  last_reload_ok_ = true;
}

void KafkaTopology::reload_failed(std::int64_t now) {
  last_reload_ = now;
  last_reload_ok_ = false;
}

std::string KafkaTopology::serialize() const {
  std::string out;
  pipeline::BinaryWriter w(out);
  w.put(kMagic);
  w.put(kVersion);
  std::string ingest;
  ingest_.serialize(ingest);
  w.put_bytes(ingest);
  return out;
}

Result<void> KafkaTopology::restore(std::string_view snapshot) {
  pipeline::BinaryReader r(snapshot);
  std::uint32_t magic = 0, version = 0;
  std::string_view ingest;
  if (!r.get(magic) || magic != kMagic) return make_error("not a replywatch Kafka ingest snapshot");
  if (!r.get(version) || version != kVersion || !r.get_bytes(ingest) || !r.at_end()) {
    return make_error("snapshot damaged or of an unsupported version");
  }
  return ingest_.restore(ingest);
}

std::vector<prometheus::MetricFamily> KafkaTopology::collect(std::int64_t now) const {
  Families out;
  ingest_.collect(now, out);
  if (aggregate_) {
    aggregate_->with_tasks<AggregateTask>([&](const std::vector<const AggregateTask*>& tasks) {
      for (const auto* t : tasks) {
        Families part;
        t->stage().collect(now, part);
        merge_families(out, std::move(part));
      }
      return 0;
    });
  }
  if (pair_) {
    auto late = family("replywatch_late_messages_total",
                       "Messages that could not simply be applied in order, by reason "
                       "(connector: the producer, <instance>/<connector>; from the events "
                       "partitions this instance pairs).",
                       MetricType::Counter);
    std::map<std::string, LateCounts> all;
    for (const auto& c : config_->connectors) all.try_emplace(producer_->producer_name(c.name));
    pair_->with_tasks<PairTask>([&](const std::vector<const PairTask*>& tasks) {
      for (const auto* t : tasks) {
        for (const auto& [producer, counts] : t->stage().late()) {
          auto& sum = all[producer];
          for (std::size_t i = 0; i < counts.size(); ++i) sum[i] += counts[i];
        }
      }
      return 0;
    });
    for (const auto& [producer, counts] : all) {
      for (std::size_t i = 0; i < kLateReasons.size(); ++i) {
        add_value(late,
                  {label("connector", producer), label("reason", std::string(kLateReasons[i]))},
                  static_cast<double>(counts[i]));
      }
    }
    out.push_back(std::move(late));
  }

  auto lag =
      family("replywatch_kafka_consumer_lag",
             "Records of a partition this instance consumes not yet processed.", MetricType::Gauge);
  auto owned = family("replywatch_kafka_partitions_owned",
                      "Input partitions this instance's stage is assigned.", MetricType::Gauge);
  auto transactions = family("replywatch_kafka_transactions_total",
                             "Transactions committed by the stage.", MetricType::Counter);
  auto aborts = family("replywatch_kafka_transaction_aborts_total",
                       "Transactions aborted (their work is redone from the checkpoints).",
                       MetricType::Counter);
  auto rebalances =
      family("replywatch_kafka_rebalances_total",
             "Consumer group rebalances the stage took part in.", MetricType::Counter);
  auto bad = family("replywatch_kafka_bad_records_total",
                    "Input records that could not be read (logged with partition and offset) "
                    "and were skipped.",
                    MetricType::Counter);
  auto checkpoints = family("replywatch_kafka_checkpoints_total",
                            "Stage checkpoints written to the changelog.", MetricType::Counter);
  auto checkpoint_bytes =
      family("replywatch_kafka_checkpoint_bytes_total",
             "Bytes of stage state written to the changelog.", MetricType::Counter);
  auto restores =
      family("replywatch_kafka_restores_total",
             "Partition states restored from the changelog on assignment.", MetricType::Counter);
  auto renewed = family("replywatch_kafka_producers_renewed_total",
                        "Transactional producers replaced after a fatal error (their open "
                        "transaction's work redone).",
                        MetricType::Counter);
  auto replayed =
      family("replywatch_kafka_replayed_records_total",
             "Input records replayed after a restore (already committed).", MetricType::Counter);
  auto produced = family("replywatch_kafka_produced_records_total",
                         "Records handed to Kafka, by client.", MetricType::Counter);
  auto errors = family("replywatch_kafka_producer_errors_total",
                       "Records Kafka refused or could not take, by client.", MetricType::Counter);
  auto retries = family("replywatch_kafka_producer_retries_total",
                        "Produce requests retried by librdkafka, by client.", MetricType::Counter);
  for (const StageRunner* runner : {pair_.get(), aggregate_.get()}) {
    if (!runner) continue;
    const auto s = runner->status();
    const Labels stage{label("stage", runner->name())};
    const std::string topic = runner->name() == "pair"
                                  ? TopicNames(config_->bus.topic_prefix).events
                                  : TopicNames(config_->bus.topic_prefix).appeals;
    for (const auto& p : s.partitions) {
      if (p.lag < 0) continue;
      add_value(lag,
                {label("partition", std::to_string(p.partition)), label("stage", runner->name()),
                 label("topic", topic)},
                static_cast<double>(p.lag));
    }
    add_value(owned, stage, static_cast<double>(s.partitions.size()));
    add_value(transactions, stage, static_cast<double>(s.transactions));
    add_value(aborts, stage, static_cast<double>(s.aborts));
    add_value(rebalances, stage, static_cast<double>(s.rebalances));
    add_value(bad, stage, static_cast<double>(s.bad_records));
    add_value(checkpoints, stage, static_cast<double>(s.checkpoints));
    add_value(checkpoint_bytes, stage, static_cast<double>(s.checkpoint_bytes));
    add_value(restores, stage, static_cast<double>(s.restores));
    add_value(renewed, stage, static_cast<double>(s.producers_renewed));
    add_value(replayed, stage, static_cast<double>(s.replayed));
    add_value(produced, {label("client", runner->name())}, static_cast<double>(s.produced));
    add_value(retries, {label("client", runner->name())}, static_cast<double>(s.retries));
  }
  if (producer_) {
    const auto s = producer_->stats();
    add_value(produced, {label("client", "ingest")}, static_cast<double>(s.records));
    add_value(errors, {label("client", "ingest")}, static_cast<double>(s.errors));
    add_value(retries, {label("client", "ingest")}, static_cast<double>(s.retries));
  }
  if (stats_) add_value(bad, {label("stage", "stats")}, static_cast<double>(stats_->bad_records()));
  auto up = family("replywatch_kafka_brokers_reachable",
                   "1 if the brokers answered the last metadata request.", MetricType::Gauge);
  add_value(up, {}, brokers_ok_ ? 1 : 0);
  for (auto* f :
       {&lag, &owned, &transactions, &aborts, &rebalances, &bad, &checkpoints, &checkpoint_bytes,
        &restores, &renewed, &replayed, &produced, &errors, &retries, &up}) {
    out.push_back(std::move(*f));
  }

  auto reload_ok = family("replywatch_config_last_reload_success",
                          "1 if the last configuration load succeeded.", MetricType::Gauge);
  add_value(reload_ok, {}, last_reload_ok_ ? 1 : 0);
  out.push_back(std::move(reload_ok));
  auto reload_at =
      family("replywatch_config_last_reload_timestamp_seconds",
             "When the configuration was last loaded or a reload attempted.", MetricType::Gauge);
  add_value(reload_at, {}, static_cast<double>(last_reload_));
  out.push_back(std::move(reload_at));
  return out;
}

std::string KafkaTopology::ranking_json(std::size_t window, const std::string& by,
                                        std::int64_t) const {
  return stats_ ? stats_->ranking_json(window, by) : std::string("{}\n");
}

std::string KafkaTopology::ranking_csv(std::size_t window, const std::string& by,
                                       std::int64_t) const {
  return stats_ ? stats_->ranking_csv(window, by) : std::string();
}

Result<std::string> KafkaTopology::appeals_json(const std::string& agency,
                                                const std::string& status, std::size_t limit,
                                                const std::string& cursor) const {
  if (!aggregate_) return make_error("not started");
  return aggregate_->with_tasks<AggregateTask>([&](const std::vector<const AggregateTask*>& tasks) {
    std::vector<const AggregateStage*> stages;
    for (const auto* t : tasks) stages.push_back(&t->stage());
    return AggregateStage::appeals_json(stages, agency, status, limit, cursor);
  });
}

std::vector<std::string> KafkaTopology::not_ready() const {
  std::vector<std::string> out;
  if (!brokers_ok_) {
    std::lock_guard lock(probe_mutex_);
    out.push_back("kafka: brokers " + config_->bus.bootstrap_servers + " not answering (" +
                  probe_error_ + ")");
  }
  if (producer_) {
    const auto s = producer_->stats();
    if (s.oldest_unacknowledged_ms > kUnacknowledgedMs) {
      out.push_back("kafka: " + std::to_string(s.queued) + " batch(es) not acknowledged for " +
                    std::to_string(s.oldest_unacknowledged_ms / 1000) + " s");
    }
    if (s.retrying > 0) {
      out.push_back("kafka: " + std::to_string(s.retrying) +
                    " event record(s) refused by the brokers, retrying (see the log)");
    }
  }
  for (const StageRunner* runner : {pair_.get(), aggregate_.get()}) {
    if (!runner) continue;
    const auto s = runner->status();
    if (!s.running) {
      out.push_back("kafka " + runner->name() + ": not running" +
                    (s.problem.empty() ? "" : " (" + s.problem + ")"));
    }
  }
  if (stats_ && !stats_->caught_up()) out.push_back("kafka: agency-stats not read to its end yet");
  return out;
}

}  // namespace replywatch::daemon::kafka
