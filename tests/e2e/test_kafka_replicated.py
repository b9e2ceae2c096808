"""Three Kafka brokers (KRaft, scripts/kafka.sh), topics with replication 3 and
min.insync.replicas=2, and one broker killed with kill -9 while a history streams in:
nothing is lost, nothing is doubled. Checked against the independent reading of the rules
(rules_reference.py) and, for the events topic, through kcat: every message delivered is
in exactly one record, so the idempotent producer's retries to the new leaders wrote
nothing twice.
"""
import json
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402
import history_gen as hg  # noqa: E402
import kafka_helpers as kh  # noqa: E402
import telegram_helpers as th  # noqa: E402
from test_delivery import check_counters, history, reference_rows, rows_of  # noqa: E402
from test_kafka import event_counts, events_in_topic, kafka_check, wait_settled  # noqa: E402

PARTITIONS = 3


class ThreeBrokers(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.TempDir("rw_kafka3_")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.cluster = kh.Cluster(cls.tmp.path, nodes=3).start()
        cls.addClassCleanup(cls.cluster.stop)

    def test_a_broker_killed_mid_stream_loses_and_doubles_nothing(self):
        config, events = history(seed=44, days=20, appeals_per_day=40, conversations=3)
        rng = random.Random(44)
        delivered = hg.shuffle(list(events), rng)
        work = self.tmp.path
        source = os.path.join(work, "stream.ndjson")
        open(source, "w").close()
        data = os.path.join(work, "data")
        os.makedirs(data)
        prefix = f"rep{os.getpid()}"
        # session.timeout.ms as the one-broker tests; the killed broker's partitions move
        # when the controllers notice (broker.session.timeout.ms, set by kafka.sh).
        bus = kh.bus_section(self.cluster, prefix, "a", partitions=PARTITIONS,
                             replication_factor=3, min_insync_replicas=2)
        path = os.path.join(work, "config.yaml")
        hg.write_config(path, config, {
            "daemon": h.daemon_section(data, message_retention_secs=40 * h.DAY),
            "bus": bus,
            "connectors": [{"name": "events", "type": "ndjson", "path": source,
                            "poll_interval_secs": 1}]})
        d = h.Daemon(path, data)
        self.addCleanup(d.kill)
        d.start(ready_timeout=120)
        chunks = 30
        for k in range(chunks):
            part = delivered[k * len(delivered) // chunks:(k + 1) * len(delivered) // chunks]
            with open(source, "a") as f:
                f.write("".join(json.dumps(e) + "\n" for e in part))
            time.sleep(0.4)
            if k == 8:
                self.cluster.kill_node(2)  # SIGKILL: leaders and the coordinator may move
        m = wait_settled([d], len(delivered), settle=6, timeout=400, partitions=PARTITIONS)
        got = rows_of(h.appeals_all(d))
        want = reference_rows(config, events)
        if got != want:
            missing = [r for r in want if r not in got][:5]
            extra = [r for r in got if r not in want][:5]
            self.fail(f"{len(got)} appeals, the rules say {len(want)}; missing {missing}; "
                      f"not in the rules {extra}")
        self.assertGreater(len(got), 800)
        check_counters(self, m, got)

        # The events topic through kcat (two brokers left, read_committed): each message
        # delivered once is in exactly one record.
        carried = events_in_topic(f"{prefix}.events", self.cluster)
        self.assertEqual(carried, event_counts(delivered), "an event lost or written twice")

        # With the broker back, kafka-check finds every topic replicated 3 times with
        # min.insync.replicas=2.
        self.cluster.restart_node(2)
        check = None
        for _ in range(30):
            check = kafka_check(path)
            if check.returncode == 0:
                break
            time.sleep(2)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        for t in kh.TOPICS:
            self.assertIn(f"ok: topic {prefix}.{t}: min.insync.replicas=2", check.stdout)
        print(f"\nthree brokers: {len(got)} appeals exact, {len(delivered)} events once each",
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
