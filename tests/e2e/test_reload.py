"""SIGHUP configuration reload of a running `replywatch run`.

The scenario runs once (setUpClass) and records what it sees; each test asserts one part:

1. start with agency A only; its export is ingested;
2. SIGHUP with a valid new file that adds agency B (and asks for another listen port,
   which only applies at restart): reload succeeds, B's series appear (zero), the
   daemon keeps its port;
3. B's export arrives after the reload: B's counters equal `replay` with the new file;
4. SIGHUP with an invalid file (a bad time zone, and B removed): rejected, the running
   configuration kept, nothing changes, the error is logged naming the file; a later
   export of B's chat is still counted for B;
5. SIGHUP with the file deleted: rejected the same way;
6. SIGHUP with a valid file again: success is back to 1.
"""
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402

HORIZON = h.DAY
TICK = 1  # daemon.expiry_tick_secs: the engine's clock (used for the reload time) moves each tick

RELOAD_OK = "replywatch_config_last_reload_success"
RELOAD_AT = "replywatch_config_last_reload_timestamp_seconds"


def appeal_counters(m):
    return h.counters_by_agency_kind(m), h.open_by_agency(m), h.rejected_by_reason(m)


class Reload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.started = time.monotonic()
        cls.tmp = h.TempDir("rw-e2e-reload-")
        cls.addClassCleanup(cls.tmp.cleanup)
        root = cls.tmp.path
        now = int(time.time())
        a = h.AgencySpec(1, "akimat", "Asia/Almaty")
        b = h.AgencySpec(2, "police", "Europe/Moscow", chats=2)
        staging = os.path.join(root, "staging")
        exports = os.path.join(root, "exports")
        os.makedirs(exports)
        fx_a = h.make_fixture(os.path.join(staging, "a"), [a], now, 3 * h.DAY, HORIZON,
                              posts_per_chat=20, seed=11)
        # B owns two discussion groups: the export of the first arrives after the good
        # reload, the export of the second after the rejected one.
        fx_b = h.make_fixture(os.path.join(staging, "b"), [b], now, 3 * h.DAY, HORIZON,
                              posts_per_chat=20, seed=12)
        assert len(fx_b.files) == 2, fx_b.files
        cls.fx_a, cls.fx_b = fx_a, fx_b
        data = os.path.join(root, "data")
        cls.config = os.path.join(root, "config.yaml")
        daemon = h.daemon_section(data, expiry_tick_secs=TICK)
        connectors = [h.export_connector(exports)]
        h.write_config(cls.config, [a], HORIZON, daemon=daemon, connectors=connectors)

        # What B's numbers must be, from replay with the configuration that knows B.
        both = os.path.join(root, "both.yaml")
        h.write_config(both, [a, b], HORIZON, daemon=daemon, connectors=connectors)
        cls.replay_b_part1, _ = h.replay(both, fx_b.files[:1], with_appeals=False)
        cls.replay_all, _ = h.replay(both, fx_a.files + fx_b.files, with_appeals=False)

        def place(src, name):
            dst = os.path.join(exports, name)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.replace(src, dst)

        def sighup_and_wait(previous_stamp):
            before = time.time()
            cls.daemon.signal(signal.SIGHUP)
            m = h.wait_until(lambda: (lambda m: m if h.sample(m, RELOAD_AT) != previous_stamp
                                      else None)(cls.daemon.metrics()),
                             30, interval=0.2, what="the reload timestamp to move")
            return before, time.time(), m

        def write(path, agencies, **daemon_overrides):
            tmp = path + ".new"
            h.write_config(tmp, agencies, HORIZON, daemon=dict(daemon, **daemon_overrides),
                           connectors=connectors)
            os.replace(tmp, path)

        obs = cls.obs = {}
        d = cls.daemon = h.Daemon(cls.config, data)
        cls.addClassCleanup(d.kill)
        obs["start_wall"] = time.time()
        place(fx_a.files[0], "akimat/result.json")
        d.start()
        obs["m_start"] = d.wait_ingested(fx_a.events, timeout=120)
        port = d.port

        # 2. a valid change: agency B, and a listen port that only applies at restart
        time.sleep(1.1)  # so every reload below gets a timestamp of its own
        write(cls.config, [a, b], listen=f"127.0.0.1:{h.free_port()}")
        obs["good_before"], obs["good_after"], obs["m_good"] = sighup_and_wait(
            h.sample(obs["m_start"], RELOAD_AT))
        obs["port_after_reload"] = d.get("/healthz")[0] == 200 and d.port == port

        # 3. B's first export arrives after the reload
        place(fx_b.files[0], "police/result.json")
        events_1 = fx_a.events + fx_b.file_events[fx_b.files[0]]
        obs["m_b1"] = d.wait_ingested(events_1, timeout=120)

        # 4. an invalid file (unknown time zone; B left out): rejected
        time.sleep(1.1)
        bad = h.AgencySpec(3, "bad_tz", "Mars/Olympus_Mons")
        write(cls.config, [a, bad])
        obs["bad_before"], obs["bad_after"], obs["m_bad"] = sighup_and_wait(
            h.sample(obs["m_b1"], RELOAD_AT))
        time.sleep(2.5)  # ticks and scrapes go on; nothing may change
        obs["m_bad_later"] = d.metrics()
        obs["healthz_after_bad"] = d.get("/healthz")
        obs["ranking_after_bad"] = d.json("/api/v1/ranking?window=30d")
        # B's newer export still counts for B: the configuration that knows B is running.
        place(fx_b.files[1], "police_1/result.json")
        obs["m_b2"] = d.wait_ingested(fx_a.events + fx_b.events, timeout=120)

        # 5. the file is gone
        time.sleep(1.1)
        os.unlink(cls.config)
        obs["gone_before"], obs["gone_after"], obs["m_gone"] = sighup_and_wait(
            h.sample(obs["m_b2"], RELOAD_AT))

        # 6. valid again
        time.sleep(1.1)
        write(cls.config, [a, b])
        obs["again_before"], obs["again_after"], obs["m_again"] = sighup_and_wait(
            h.sample(obs["m_gone"], RELOAD_AT))
        obs["alive"] = d.alive()
        obs["stderr"] = d.stderr()
        cls.a, cls.b = a, b

    @classmethod
    def tearDownClass(cls):
        print(f"\n{cls.__name__}: {time.monotonic() - cls.started:.1f}s", file=sys.stderr)

    def stamp(self, key):
        return h.sample(self.obs[key], RELOAD_AT)

    def success(self, key):
        return h.sample(self.obs[key], RELOAD_OK)

    # -- the valid reload

    def test_valid_reload_succeeds_and_moves_the_timestamp(self):
        self.assertEqual(self.success("m_start"), 1)
        self.assertEqual(self.success("m_good"), 1)
        # The reload time is the engine's clock, which advances every tick (1 s here).
        self.assertGreaterEqual(self.stamp("m_good"), int(self.obs["good_before"]) - TICK - 1)
        self.assertLessEqual(self.stamp("m_good"), self.obs["good_after"] + 1)
        self.assertIn("configuration reloaded: 2 agencies", self.obs["stderr"])

    def test_new_agency_series_appear_at_reload(self):
        m = self.obs["m_good"]
        self.assertIsNone(h.sample(self.obs["m_start"], "replywatch_appeals_opened_total",
                                   agency="police", kind="first"))
        # Every configured agency has its counters, zero until something happens.
        for kind in ("first", "followup"):
            self.assertEqual(h.sample(m, "replywatch_appeals_opened_total", agency="police",
                                      kind=kind), 0)
        self.assertEqual(h.sample(m, "replywatch_appeals_open", agency="police"), 0)
        # A's numbers are untouched by the reload.
        self.assertEqual(appeal_counters(self.obs["m_start"])[0],
                         {k: v for k, v in appeal_counters(m)[0].items() if k[0] == "akimat"})

    def test_daemon_settings_wait_for_restart(self):
        self.assertTrue(self.obs["port_after_reload"])
        self.assertIn("take effect at the next restart", self.obs["stderr"])

    def test_export_after_reload_is_counted_for_the_new_agency(self):
        got = h.counters_by_agency_kind(self.obs["m_b1"])
        report = {a["agency"]: a for a in self.replay_b_part1["agencies"]}["police"]
        for kind in ("first", "followup"):
            s = report[kind]
            with self.subTest(kind=kind):
                self.assertGreater(s["appeals"], 0)
                self.assertEqual(got[("police", kind)],
                                 (s["appeals"], s["answered"], s["unanswered"]))

    # -- the rejected reloads

    def test_invalid_file_is_rejected(self):
        self.assertEqual(self.success("m_bad"), 0)
        self.assertGreaterEqual(self.stamp("m_bad"), int(self.obs["bad_before"]) - 1)
        self.assertLessEqual(self.stamp("m_bad"), self.obs["bad_after"] + 1)
        self.assertEqual(self.success("m_bad_later"), 0)
        self.assertEqual(self.success("m_gone"), 0)
        self.assertGreater(self.stamp("m_gone"), self.stamp("m_bad"))

    def test_running_configuration_is_kept(self):
        self.assertEqual(self.obs["healthz_after_bad"], (200, "ok\n"))
        before, after = appeal_counters(self.obs["m_b1"]), appeal_counters(self.obs["m_bad"])
        self.assertEqual(before, after)
        self.assertEqual(after, appeal_counters(self.obs["m_bad_later"]))
        # The rejected file's agency never appears; the one it dropped stays.
        agencies = {l["agency"] for l, _ in h.samples(self.obs["m_bad_later"],
                                                      "replywatch_appeals_opened_total")}
        self.assertEqual(agencies, {"akimat", "police"})
        self.assertEqual(sorted(r["agency"] for r in self.obs["ranking_after_bad"]["rows"]),
                         ["akimat", "police"])

    def test_export_after_rejected_reload_still_counts(self):
        got = h.counters_by_agency_kind(self.obs["m_b2"])
        want = {a["agency"]: a for a in self.replay_all["agencies"]}
        for agency in ("akimat", "police"):
            for kind in ("first", "followup"):
                s = want[agency][kind]
                with self.subTest(agency=agency, kind=kind):
                    self.assertEqual(got[(agency, kind)],
                                     (s["appeals"], s["answered"], s["unanswered"]))
        self.assertEqual(h.open_by_agency(self.obs["m_b2"]),
                         {a: want[a]["first"]["open"] + want[a]["followup"]["open"]
                          for a in ("akimat", "police")})

    def test_rejection_is_logged_with_the_file(self):
        log = self.obs["stderr"]
        self.assertIn("configuration reload rejected", log)
        self.assertIn(self.config + ":", log)  # file:line of the problem
        self.assertIn("Mars/Olympus_Mons", log)
        self.assertIn(self.config + ": cannot open", log)

    def test_rejection_error_line_names_the_file(self):
        # One log line carries the level, the timestamp and the file: a line-oriented log
        # collector (journald, Loki) must not see the problem as a separate, level-less line.
        pattern = re.compile(r"^\S+Z error .*" + re.escape(self.config), re.M)
        self.assertRegex(self.obs["stderr"], pattern)
        for line in self.obs["stderr"].splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (debug|info|warn|error) ",
                             "a log line without timestamp and level")

    # -- back to normal

    def test_valid_file_again(self):
        self.assertEqual(self.success("m_again"), 1)
        self.assertGreater(self.stamp("m_again"), self.stamp("m_gone") - 1)
        self.assertTrue(self.obs["alive"])

    def test_startup_sets_the_reload_timestamp(self):
        # "When the configuration was last loaded or a reload attempted": the load at start
        # counts, as with Prometheus' own prometheus_config_last_reload_success_timestamp.
        self.assertGreaterEqual(self.stamp("m_start"), int(self.obs["start_wall"]) - 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
