"""End to end through a real Prometheus: a generated Telegram Desktop export is dropped
into the watched directory of `replywatch run`, Prometheus scrapes the daemon every
second, and what Prometheus' query API returns must equal what `replywatch replay`
computes from the same export.

Data: two agencies' discussion groups, a few hundred messages over the last three days,
horizon one day, so the export holds answered, unanswered (past the horizon), open and
follow-up appeals. No appeal opens within an hour of `now − horizon`, where the daemon's
wall clock and replay's clock (the latest message, ten minutes before now) could disagree.
"""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402

HORIZON = h.DAY
# The daemon's quantiles come from a sketch with relative accuracy 0.5 % (the metric's HELP
# says 1 %); it interpolates between the representatives of the two neighbouring ranks, as
# replay does between the exact values, so every quantile is within the accuracy of the
# exact one whatever the sample size. 1 % is the documented bound.
QUANTILE_TOLERANCE = 0.01


class PrometheusEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.started = time.monotonic()
        cls.tmp = h.TempDir("rw-e2e-prom-")
        cls.addClassCleanup(cls.tmp.cleanup)
        root = cls.tmp.path
        now = int(time.time())
        cls.specs = [h.AgencySpec(1, "akimat_almaty", "Asia/Almaty"),
                        h.AgencySpec(2, "mchs_moscow", "Europe/Moscow")]
        exports = os.path.join(root, "exports")
        cls.fx = h.make_fixture(exports, cls.specs, now, 3 * h.DAY, HORIZON,
                                posts_per_chat=30, seed=20260301)
        data = os.path.join(root, "data")
        cls.config = h.write_config(os.path.join(root, "config.yaml"), cls.specs, HORIZON,
                                    daemon=h.daemon_section(data),
                                    connectors=[h.export_connector(exports)])
        cls.report, _ = h.replay(cls.config, cls.fx.files, with_appeals=False)

        cls.daemon = h.Daemon(cls.config, data)
        cls.addClassCleanup(cls.daemon.kill)
        cls.daemon.start()
        cls.daemon.wait_ingested(cls.fx.events, timeout=120)
        cls.metrics_text = cls.daemon.metrics_text()

        cls.prom = h.Prometheus(root, [f"127.0.0.1:{cls.daemon.port}"])
        cls.addClassCleanup(cls.prom.stop)
        cls.prom.start()
        # The first scrape can take a while after start: poll until the series are there.
        expected_series = 2 * len(cls.specs)
        h.wait_until(lambda: len(cls.prom.query("replywatch_appeals_opened_total"))
                     >= expected_series
                     and cls.prom.query('replywatch_reply_quantile_seconds{window="30d"}')
                     and cls.prom.query("replywatch_appeals_open"),
                     timeout=60, interval=0.5, what="the first scrape in Prometheus")
        cls.setup_seconds = time.monotonic() - cls.started

    def query_by(self, expr, *keys):
        """Query → {tuple of label values: value}, each key present once."""
        out = {}
        for labels, v in self.prom.query(expr):
            k = tuple(labels.get(x) for x in keys)
            self.assertNotIn(k, out, f"{expr}: two series for {k}")
            out[k] = v
        return out

    def agencies(self):
        return {a["agency"]: a for a in self.report["agencies"]}

    def test_fixture_is_rich_enough(self):
        # Otherwise the comparisons below prove little.
        self.assertEqual(sorted(self.agencies()), sorted(a.id for a in self.specs))
        for a in self.report["agencies"]:
            f = a["first"]
            self.assertGreaterEqual(f["answered"], 30, a["agency"])
            self.assertGreater(f["unanswered"], 0, a["agency"])
            self.assertGreater(f["open"], 0, a["agency"])
            self.assertGreater(a["followup"]["appeals"], 0, a["agency"])
        self.assertTrue(self.report["rejected_messages"])
        self.assertEqual(self.report["rejected_files"], [])

    def test_counters_equal_replay(self):
        opened = self.query_by("replywatch_appeals_opened_total", "agency", "kind")
        answered = self.query_by("replywatch_appeals_answered_total", "agency", "kind")
        unanswered = self.query_by("replywatch_appeals_unanswered_total", "agency", "kind")
        for agency, a in self.agencies().items():
            for kind in ("first", "followup"):
                s = a[kind]
                with self.subTest(agency=agency, kind=kind):
                    self.assertEqual(opened[(agency, kind)], s["appeals"])
                    self.assertEqual(answered[(agency, kind)], s["answered"])
                    self.assertEqual(unanswered[(agency, kind)], s["unanswered"])

    def test_open_gauge_equals_replay(self):
        open_ = self.query_by("sum by (agency) (replywatch_appeals_open)", "agency")
        for agency, a in self.agencies().items():
            with self.subTest(agency=agency):
                self.assertEqual(open_[(agency,)], a["first"]["open"] + a["followup"]["open"])

    def test_quantiles_within_sketch_accuracy(self):
        q = self.query_by('replywatch_reply_quantile_seconds{window="30d"}',
                          "agency", "kind", "q")
        for agency, a in self.agencies().items():
            for kind in ("first", "followup"):
                exact = a[kind]["reply_seconds"]
                for quantile, name in (("0.5", "median"), ("0.9", "p90"), ("0.99", "p99")):
                    with self.subTest(agency=agency, kind=kind, quantile=quantile):
                        self.assertIsNotNone(exact[name])
                        got = q.get((agency, kind, quantile))
                        self.assertIsNotNone(got, "series missing")
                        self.assertTrue(h.rel_close(got, exact[name], QUANTILE_TOLERANCE),
                                        f"daemon {got} vs replay {exact[name]}")

    def test_answer_ratio_equals_replay(self):
        r = self.query_by('replywatch_answer_ratio{window="30d"}', "agency", "kind")
        for agency, a in self.agencies().items():
            for kind in ("first", "followup"):
                with self.subTest(agency=agency, kind=kind):
                    self.assertAlmostEqual(r[(agency, kind)], a[kind]["answer_rate"], places=9)

    def test_within_target_and_histograms_equal_replay(self):
        target = self.query_by('replywatch_within_target_ratio{window="30d"}', "agency")
        count = self.query_by("sum by (agency, kind) (replywatch_reply_seconds_count)",
                              "agency", "kind")
        total = self.query_by("sum by (agency, kind) (replywatch_reply_seconds_sum)",
                              "agency", "kind")
        for agency, a in self.agencies().items():
            with self.subTest(agency=agency):
                self.assertAlmostEqual(target[(agency,)], a["first"]["within_target_rate"],
                                       places=9)
                for kind in ("first", "followup"):
                    s = a[kind]
                    self.assertEqual(count[(agency, kind)], s["answered"])
                    # The mean is exact in both (sums are kept, not sketched).
                    self.assertAlmostEqual(total[(agency, kind)],
                                           s["reply_seconds"]["mean"] * s["answered"], places=3)

    def test_rejected_messages_equal_replay(self):
        r = self.query_by("replywatch_events_rejected_total", "reason")
        self.assertEqual({k[0]: v for k, v in r.items()},
                         {k: float(v) for k, v in self.report["rejected_messages"].items()})
        self.assertEqual(self.report["rejected_messages"], self.fx.rejected)

    def test_scrape_is_healthy(self):
        up = self.query_by('up{job="replywatch"}', "instance")
        self.assertEqual(list(up.values()), [1.0])
        self.assertEqual(self.query_by("replywatch_connector_up", "connector"),
                         {("exports",): 1.0})

    def test_promtool_accepts_metrics(self):
        p = subprocess.run([h.PROMTOOL, "check", "metrics"], input=self.metrics_text,
                           capture_output=True, text=True, timeout=60)
        problems = sorted(set((p.stdout + p.stderr).splitlines()))
        self.assertEqual(p.returncode, 0, "promtool check metrics:\n" + "\n".join(problems))

    @classmethod
    def tearDownClass(cls):
        print(f"\n{cls.__name__}: setup {getattr(cls, 'setup_seconds', 0):.1f}s, "
              f"{cls.fx.messages if hasattr(cls, 'fx') else 0} messages", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
