"""replywatch on a real Apache Kafka broker (scripts/kafka.sh: KRaft, jars from Maven Central),
checked against the independent reading of the rules (rules_reference.py), against
`replay`'s numbers, and through kcat, a client that shares no code with the daemon.

(a) a shuffled, duplicated history in three files through connectors → Kafka → pair →
    aggregate: the appeals, the counters and the ranking are the rules'; the appeals topic,
    folded change by change, ends at the same appeals; every record's key is in the
    partition Kafka's own partitioner gives it; kafka-check says what is missing before the
    first run and nothing after it.
(d) docs/ranking-job.sh, reading agency-stats with kcat, prints /api/v1/ranking.
(b) two instances in one group read the same growing file; one is killed with kill -9
    mid-stream and restarted with an empty data directory: the appeals (their union), the
    summed counters and agency-stats are still the rules'. A third instance joining and
    leaving (stopped, killed) while records flow changes nothing either.
(e) the broker stopped for a minute under a Telegram backlog: nothing is confirmed to
    Telegram while it is away, the daemon says it is not ready and why, and it catches up.
"""
import json
import os
import random
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402
import history_gen as hg  # noqa: E402
import kafka_helpers as kh  # noqa: E402
import rules_reference as rr  # noqa: E402
import telegram_helpers as th  # noqa: E402
from test_delivery import (OWNED, check_counters, history, reference_rows, rows_of,  # noqa: E402
                           telegram_only, update_of)

PARTITIONS = 4
CLUSTER = None
TMP = None
TOKEN_ENV = "REPLYWATCH_E2E_KAFKA_TOKEN"
RANKING_JOB = os.path.join(h.SRC, "docs", "ranking-job.sh")
WINDOWS = ("1h", "24h", "7d", "30d")


def setUpModule():
    global CLUSTER, TMP
    TMP = h.TempDir("rw_kafka_")
    CLUSTER = kh.Cluster(TMP.path, nodes=1).start()


def tearDownModule():
    if CLUSTER:
        CLUSTER.stop()
    if TMP:
        TMP.cleanup()


# ---------------------------------------------------------------------------
# helpers

def merged_metrics(daemons):
    """The daemons' expositions summed series by series: what `sum` over instances gives."""
    total = {}
    for d in daemons:
        for name, series in d.metrics().items():
            for labels, v in series:
                key = (name, tuple(sorted(labels.items())))
                total[key] = total.get(key, 0) + v
    out = {}
    for (name, labels), v in total.items():
        out.setdefault(name, []).append((dict(labels), v))
    return out


def progress(daemons, partitions):
    m = merged_metrics(daemons)
    per = [sum(v for _, v in h.samples(d.metrics(), "replywatch_connector_events_received_total"))
           for d in daemons]
    key = tuple(sum(v for _, v in h.samples(m, n)) for n in (
        "replywatch_appeals_opened_total", "replywatch_appeals_answered_total",
        "replywatch_appeals_unanswered_total", "replywatch_appeals_corrected_total",
        "replywatch_kafka_transaction_aborts_total"))
    lag = sum(v for _, v in h.samples(m, "replywatch_kafka_consumer_lag"))
    # Counts wait for the clocks: a backlog counts nothing until its connector catches up,
    # so "nothing moved" alone can hold before the first count. Settled also means every
    # connector caught up (its watermark near the wall clock), and the wait for stillness
    # starts again when that becomes true.
    wm = [v for _, v in h.samples(m, "replywatch_connector_watermark_lag_seconds")]
    caught_up = all(0 <= v <= 60 for v in wm)
    key += (caught_up,)
    if not caught_up:
        lag = float("inf")
    # Every partition of both stages owned by some instance (and so its lag known).
    owned = {l["stage"]: 0 for l, _ in h.samples(m, "replywatch_kafka_partitions_owned")}
    for l, v in h.samples(m, "replywatch_kafka_partitions_owned"):
        owned[l["stage"]] += v
    if set(owned.values()) != {partitions}:
        lag = float("inf")
    return per, key, lag, m


def wait_settled(daemons, events_each, settle=5.0, timeout=300, partitions=PARTITIONS):
    """Until every daemon's connectors delivered `events_each`, nothing moved (counters,
    aborts, connectors caught up) across all of them for `settle` seconds, every partition of
    both stages is owned, none lags and every connector is caught up → merged metrics."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        for d in daemons:
            if not d.alive():
                raise AssertionError("daemon died: " + d.stderr()[-4000:])
        per, key, lag, m = progress(daemons, partitions)
        now = time.monotonic()
        if key != last:
            last, since = key, now
        elif min(per) >= events_each and lag == 0 and now - since >= settle:
            return m
        if now > deadline:
            raise AssertionError(f"not settled after {timeout}s: events {per} of {events_each}, "
                                 f"lag {lag}")
        time.sleep(0.5)


def all_appeals(daemons):
    """The union of the instances' /api/v1/appeals: each lists the agencies it aggregates."""
    out = []
    for d in daemons:
        out += h.appeals_all(d)
    return out


def record_row(a):
    """An appeals-topic appeal object as th.appeal_row's fields, every value as text (the
    topic writes ids as strings, the API some as numbers)."""
    return tuple(None if a.get(k) is None else str(a.get(k))
                 for k in th.APPEAL_FIELDS + ("responder",))


def api_row(a):
    return tuple(None if v is None else str(v) for v in th.appeal_row(a)[:-1])


def fold_appeals_topic(test, records):
    """Applies every appeal change in partition order: each `before` must be what the
    previous change left. → the final appeals as record_row tuples."""
    state = {}

    def ident(a):
        return (a["source"], a["conversation"], a["thread"], a["citizen"], a["opened_message"])

    changes = {}
    for r in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        v = json.loads(r["payload"])
        test.assertEqual(v["schema_version"], 1)
        if v["type"] != "appeal":
            continue
        changes[v["change"]] = changes.get(v["change"], 0) + 1
        agency = (v["after"] or v["before"])["agency"]
        test.assertEqual(r["key"], agency, "an appeal change keyed by its agency")
        if v["before"] is not None:
            prev = state.pop(ident(v["before"]), None)
            test.assertEqual(prev, v["before"], "a change's `before` is not the last `after`")
        if v["after"] is not None:
            test.assertNotIn(ident(v["after"]), state)
            state[ident(v["after"])] = v["after"]
    return sorted(record_row(a) for a in state.values()), changes


def first_counts(rows):
    """{agency: (answered, unanswered, open)} of the first appeals among rule rows."""
    status_at = th.APPEAL_FIELDS.index("status")
    kind_at = th.APPEAL_FIELDS.index("kind")
    out = {}
    for r in rows:
        if r[kind_at] != "first":
            continue
        c = out.setdefault(r[0], [0, 0, 0])
        if r[status_at] in ("answered", "unanswered", "open"):
            c[("answered", "unanswered", "open").index(r[status_at])] += 1
    return {k: tuple(v) for k, v in out.items()}


def event_identity(e):
    return (str(e["conversation"]), str(e["message_id"]), e.get("kind", "message"), e["time"])


def event_counts(events):
    """{identity: how many times} of normalized events."""
    out = {}
    for e in events:
        out[event_identity(e)] = out.get(event_identity(e), 0) + 1
    return out


def events_in_topic(topic, cluster=None):
    """event_counts of every event the topic's `events` records carry (through kcat)."""
    carried = []
    for r in kh.consume(cluster or CLUSTER, topic):
        v = json.loads(r["payload"])
        assert v["schema_version"] == 1, v
        carried += v.get("events", [])
    return event_counts(carried)


def kafka_check(config):
    return subprocess.run([h.BIN, "kafka-check", "--config", config, "--timeout", "20"],
                          capture_output=True, text=True, timeout=120)


def ranking_job(prefix, window, by="agency"):
    p = subprocess.run(["sh", RANKING_JOB, CLUSTER.bootstrap, prefix, window, by],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"ranking-job.sh exited {p.returncode}: {p.stderr}")
    return json.loads(p.stdout)


class KafkaTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.daemons = []
        self.work = os.path.join(TMP.path, self.id().split(".")[-1])
        os.makedirs(self.work, exist_ok=True)

    def tearDown(self):
        for d in self.daemons:
            d.kill()

    def write_config(self, name, config, connectors, bus, **daemon_overrides):
        data = os.path.join(self.work, f"{name}.data")
        os.makedirs(data, exist_ok=True)
        path = os.path.join(self.work, f"{name}.yaml")
        hg.write_config(path, config, {"daemon": h.daemon_section(data, **daemon_overrides),
                                       "bus": bus, "connectors": connectors})
        return path, data

    def start(self, path, data, env=None):
        d = th.RecordingDaemon(path, data, env=env)
        self.daemons.append(d)
        d.start(ready_timeout=90)
        return d

    def assert_rules(self, got, config, events, what):
        want = reference_rows(config, events)
        if got != want:
            missing = [r for r in want if r not in got][:5]
            extra = [r for r in got if r not in want][:5]
            self.fail(f"{what}: {len(got)} appeals, the rules say {len(want)}; "
                      f"missing {missing}; not in the rules {extra}")
        return want

    def assert_ranking(self, daemon, rows, report):
        """/api/v1/ranking (from agency-stats) against the rules' counts and replay's rates."""
        counts = first_counts(rows)
        replay = {a["agency"]: a["first"] for a in report["agencies"]}
        body = daemon.json("/api/v1/ranking?window=30d")
        self.assertEqual(sorted(r["agency"] for r in body["rows"]), sorted(replay))
        for r in body["rows"]:
            with self.subTest(agency=r["agency"]):
                self.assertEqual((r["answered"], r["unanswered"], r["open"]),
                                 counts.get(r["agency"], (0, 0, 0)))
                first = replay[r["agency"]]
                self.assertEqual((r["answered"], r["unanswered"], r["open"]),
                                 (first["answered"], first["unanswered"], first["open"]))
                self.assertAlmostEqual(r["answer_rate"], first["answer_rate"], places=9)
                self.assertAlmostEqual(r["within_target_rate"], first["within_target_rate"],
                                       places=9)
                self.assertAlmostEqual(r["mean_seconds"], first["reply_seconds"]["mean"],
                                       places=6)
        return body


# ---------------------------------------------------------------------------
# (a) + (d)

class History(KafkaTest):
    def test_a_shuffled_history_through_kafka_is_the_rules(self):
        config, events = history(seed=41, days=20, appeals_per_day=40, conversations=3)
        rng = random.Random(41)
        delivered = hg.shuffle(hg.duplicate(list(events), rng, 0.03), rng)
        folder = os.path.join(self.work, "in")
        os.makedirs(folder)
        for i, part in enumerate(hg.split(delivered, rng, 3)):
            hg.write_ndjson(os.path.join(folder, f"part-{i}.ndjson"), part)
        prefix = f"hist{os.getpid()}"
        bus = kh.bus_section(CLUSTER, prefix, "a", partitions=PARTITIONS)
        path, data = self.write_config("a", config, [
            {"name": "events", "type": "ndjson", "path": folder, "poll_interval_secs": 1}], bus)

        # Before the first run nothing exists: kafka-check names every topic, one line each.
        before = kafka_check(path)
        self.assertEqual(before.returncode, 1, before.stdout + before.stderr)
        for t in kh.TOPICS:
            self.assertIn(f"missing: topic {prefix}.{t}: missing", before.stdout)

        d = self.start(path, data)
        m = wait_settled([d], len(delivered))
        got = rows_of(h.appeals_all(d))
        want = self.assert_rules(got, config, events, "through Kafka")
        self.assertGreater(len(got), 700, "the history is rich enough")
        check_counters(self, m, got)

        # replay on the same messages, in order, in one file.
        replay_in = os.path.join(self.work, "replay.ndjson")
        hg.write_ndjson(replay_in, sorted(events, key=lambda e: (e["conversation"],
                                                                 e["message_id"])))
        report, replayed = h.replay(path, [replay_in])
        self.assertEqual(rows_of(replayed), want)
        ranking = self.assert_ranking(d, got, report)

        # The appeals topic, folded change by change through kcat, ends at the same appeals.
        records = kh.consume(CLUSTER, f"{prefix}.appeals")
        folded, changes = fold_appeals_topic(self, records)
        self.assertEqual(folded, sorted(api_row(a) for a in h.appeals_all(d)))
        for change in ("opened", "answered", "expired", "corrected"):
            self.assertGreater(changes.get(change, 0), 0, changes)
        for r in records:
            if json.loads(r["payload"])["type"] == "appeal":
                self.assertEqual(r["partition"], kh.partition_of(r["key"], PARTITIONS), r["key"])

        # Events: keyed by source and conversation, in the partition Kafka's partitioner
        # gives the key; every message delivered is in one record (duplicates included).
        ev = kh.consume(CLUSTER, f"{prefix}.events")
        carried = 0
        for r in ev:
            v = json.loads(r["payload"])
            self.assertEqual(v["schema_version"], 1)
            if v["type"] == "watermark":  # a producer's watermark goes to every partition
                self.assertEqual(r["key"], v["producer"])
                continue
            self.assertEqual(r["partition"], kh.partition_of(r["key"], PARTITIONS), r["key"])
            if v["type"] == "events":
                for e in v["events"]:
                    self.assertEqual(r["key"], f"{e['source']}:{e['conversation']}")
                carried += len(v["events"])
        self.assertEqual(carried, len(delivered))

        # agency-stats: compacted, one key per agency and window, and what /api/v1/ranking says.
        self.assertEqual(kh.topics(CLUSTER)[f"{prefix}.agency-stats"], PARTITIONS)
        # The rows are rewritten every second: the job's view equals the API's read just
        # before or just after it.
        def same_as_api(window, by):
            for _ in range(5):
                path = f"/api/v1/ranking?window={window}&by={by}"
                before, job, after = d.json(path), ranking_job(prefix, window, by), d.json(path)
                if job in (before, after):
                    return
            self.assertEqual(job, after)

        for window in WINDOWS:
            with self.subTest(window=window):
                same_as_api(window, "agency")
        for by in ("responder", "branch"):
            with self.subTest(by=by):
                same_as_api("30d", by)
        self.assertTrue(ranking["rows"])

        after = kafka_check(path)
        self.assertEqual(after.returncode, 0, after.stdout + after.stderr)
        self.assertNotIn("missing:", after.stdout)

        # The changelogs hold checkpoints: stopping and starting again on an empty data
        # directory restores every partition from Kafka and changes nothing.
        self.assertEqual(d.stop(), 0)
        path2, fresh = self.write_config("a2", config, [
            {"name": "events", "type": "ndjson", "path": folder, "poll_interval_secs": 1}], bus)
        d2 = self.start(path2, fresh)
        m2 = wait_settled([d2], len(delivered))
        self.assertEqual(rows_of(h.appeals_all(d2)), want)
        check_counters(self, m2, want)
        for stage in ("pair", "aggregate"):
            self.assertEqual(h.sample(m2, "replywatch_kafka_restores_total", stage=stage),
                             PARTITIONS, f"{stage}: every partition restored from its changelog")


# ---------------------------------------------------------------------------
# (b)

class TwoInstances(KafkaTest):
    def growing_history(self, seed, appeals_per_day):
        """A shuffled 20-day history with 2 % duplicates, and the empty file it will be
        appended to → (config, events, delivered, file, its connector)."""
        config, events = history(seed=seed, days=20, appeals_per_day=appeals_per_day,
                                 conversations=4)
        rng = random.Random(seed)
        delivered = hg.shuffle(hg.duplicate(list(events), rng, 0.02), rng)
        source = os.path.join(self.work, "stream.ndjson")
        open(source, "w").close()
        connector = {"name": "events", "type": "ndjson", "path": source, "poll_interval_secs": 1}
        return config, events, delivered, source, connector

    def instance_config(self, name, config, connectors, prefix):
        # The file grows for ten seconds or more with a shuffled 20-day history: the
        # watermark passes most of it, so a retention longer than the history keeps every
        # late message pairable (the rules'), and expired appeals are corrected by late
        # answers.
        return self.write_config(name, config, connectors,
                                 kh.bus_section(CLUSTER, prefix, name, partitions=PARTITIONS),
                                 message_retention_secs=40 * h.DAY)

    def test_one_of_two_killed_and_restarted_empty_changes_nothing(self):
        config, events, delivered, source, connector = self.growing_history(42, 40)
        prefix = f"two{os.getpid()}"
        pa, da = self.instance_config("a", config, [connector], prefix)
        pb, db = self.instance_config("b", config, [connector], prefix)
        a = self.start(pa, da)
        b = self.start(pb, db)
        # Both read the same file (a redundant reader, for availability): every event
        # reaches Kafka twice and must count once.
        chunks = [delivered[k * len(delivered) // 25:(k + 1) * len(delivered) // 25]
                  for k in range(25)]
        for k, chunk in enumerate(chunks):
            with open(source, "a") as f:
                f.write("".join(json.dumps(e) + "\n" for e in chunk))
            time.sleep(0.4)
            if k == 10:
                b.kill()  # SIGKILL: no flush, no final checkpoint, an open transaction
                time.sleep(2)
                shutil_rmtree(db)
                os.makedirs(db)
                b = self.start(pb, db)
        m = wait_settled([a, b], len(delivered), settle=6)
        got = rows_of(all_appeals([a, b]))
        want = self.assert_rules(got, config, events, "two instances, one killed")
        self.assertGreater(len(got), 900)
        check_counters(self, m, got)
        # Each agency is aggregated by one instance: no appeal is listed by both.
        listed = [len(h.appeals_all(x)) for x in (a, b)]
        self.assertEqual(sum(listed), len(got))
        report, _ = h.replay(pa, [source], with_appeals=False)
        for x in (a, b):
            self.assert_ranking(x, want, report)
            self.assertEqual(x.json("/api/v1/ranking?window=7d"),
                             a.json("/api/v1/ranking?window=7d"))
        self.assertGreater(sum(v for _, v in h.samples(m, "replywatch_kafka_rebalances_total")), 0)
        lag = {(l["stage"], l["partition"]): v
               for l, v in h.samples(m, "replywatch_kafka_consumer_lag")}
        self.assertEqual(len({k for k in lag if k[0] == "pair"}), PARTITIONS, lag)

    def test_rebalances_while_records_flow_change_nothing(self):
        # The file grows while instance c joins, leaves, is killed and joins again, so each
        # rebalance finds records fetched and not yet applied by a: applied after the
        # rebalance, they would skip what lies between the restored checkpoint and them.
        config, events, delivered, source, connector = self.growing_history(44, 60)
        idle = os.path.join(self.work, "idle.ndjson")
        open(idle, "w").close()
        prefix = f"churn{os.getpid()}"
        pa, da = self.instance_config("a", config, [connector], prefix)
        pc, dc = self.instance_config("c", config,
                                      [{"name": "idle", "type": "ndjson", "path": idle}], prefix)
        a = self.start(pa, da)

        def write():
            chunks = 40
            for k in range(chunks):
                with open(source, "a") as f:
                    part = delivered[k * len(delivered) // chunks:
                                     (k + 1) * len(delivered) // chunks]
                    f.write("".join(json.dumps(e) + "\n" for e in part))
                time.sleep(0.5)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            for round_ in range(4):
                c = self.start(pc, dc)
                time.sleep(2)
                if round_ % 2:
                    c.kill()  # no final checkpoint, an open transaction
                else:
                    self.assertEqual(c.stop(timeout=120), 0, c.stderr()[-4000:])
                self.daemons.remove(c)
                time.sleep(1)
        finally:
            writer.join()
        c = self.start(pc, dc)
        h.wait_until(lambda: h.sample(a.metrics(), "replywatch_connector_events_received_total")
                     >= len(delivered), 120, what="every line read")
        m = wait_settled([a, c], 0, settle=6)
        got = rows_of(all_appeals([a, c]))
        self.assert_rules(got, config, events, "rebalances while records flow")
        check_counters(self, m, got)
        self.assertGreaterEqual(
            sum(v for _, v in h.samples(a.metrics(), "replywatch_kafka_rebalances_total")), 8)


def shutil_rmtree(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------
# (e)

class BrokerOutage(KafkaTest):
    def test_a_minute_without_the_broker_confirms_nothing_and_catches_up(self):
        config, events = history(seed=43, days=12, appeals_per_day=40, conversations=2)
        events = telegram_only(events)
        OWNED.update(c["id"] for a in config["agencies"] for c in a["conversations"])
        token = th.make_token()
        updates = th.write_updates_ndjson(os.path.join(self.work, "backlog.ndjson"),
                                          [update_of(e) for e in events])
        pages = len(events) // 100 + 1
        # One page a second: the backlog takes about a minute when the broker is up.
        fake = th.FakeBotApiProcess(self.work, "fake", token, updates_file=updates,
                                    faults=[f"slow:{pages + 200}:700"]).start()
        self.addCleanup(fake.stop)
        prefix = f"outage{os.getpid()}"
        bus = kh.bus_section(CLUSTER, prefix, "a", partitions=PARTITIONS)
        path, data = self.write_config("a", config,
                                       [th.poll_connector(fake.port, TOKEN_ENV, "tg")], bus)
        d = self.start(path, data, env={TOKEN_ENV: token})

        def confirmed():
            if not d.alive():
                raise AssertionError("the daemon died: " + d.stderr()[-4000:])
            return (fake.status() or {}).get("confirmed_offset", 0)

        h.wait_until(lambda: confirmed() > th.FIRST_UPDATE_ID + 1000, 120,
                     what="a thousand updates confirmed")
        CLUSTER.stop_node(1)
        try:
            time.sleep(8)  # what was in flight settles
            s0 = fake.status()
            samples = []
            for _ in range(13):
                time.sleep(4)
                s = fake.status()
                samples.append((s["confirmed_offset"], s["get_updates_calls"]))
            status, body = d.get("/readyz")
            m = d.metrics()
        finally:
            CLUSTER.restart_node(1)
        self.assertEqual(set(samples), {(s0["confirmed_offset"], s0["get_updates_calls"])},
                         "the connector confirmed or fetched updates while Kafka was away")
        self.assertLess(s0["confirmed_offset"], th.FIRST_UPDATE_ID + len(events))
        self.assertEqual(status, 503, body)
        self.assertIn("kafka", body)
        self.assertEqual(h.sample(m, "replywatch_kafka_brokers_reachable"), 0)
        last = th.FIRST_UPDATE_ID + len(events) - 1
        h.wait_until(lambda: confirmed() > last, 300, what="every update confirmed after the outage")
        m = wait_settled([d], len(events))
        got = rows_of(h.appeals_all(d))
        self.assert_rules(got, config, events, "a broker outage mid-backlog")
        check_counters(self, m, got)
        h.wait_until(lambda: d.get("/readyz")[0] == 200, 60, what="ready again")
        m = d.metrics()
        print(f"\noutage: aborts {h.samples(m, 'replywatch_kafka_transaction_aborts_total')}, "
              f"renewed {h.samples(m, 'replywatch_kafka_producers_renewed_total')}",
              file=sys.stderr)
        # Every update is in the events topic exactly once (an edit is an update of its own).
        self.assertEqual(events_in_topic(f"{prefix}.events"), event_counts(events))

if __name__ == "__main__":
    unittest.main()
