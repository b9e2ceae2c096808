"""`replywatch run` with a live Telegram connector in poll mode against the fake Bot API
(tests/tools/fake_bot_api) over TLS.

The history fixture in both forms (getUpdates pages and a Desktop export) is shifted so
that it ends an hour ago: the daemon's clock is the wall clock and replay's the last
message, and every appeal stays days away from the 7-day horizon, so both must give the
same appeals. The fake serves the updates through a schedule of every fault it has;
the daemon must still ingest everything exactly once (a duplicate delivery counts no
appeal twice), count each fault under its error type, confirm the offset, and after a
restart ask from the persisted offset. Then a fake that answers 401 (the connector is
failed: /readyz 503 naming it, connector_up 0, /metrics and /healthz still served), and
one that answers 409 (retried every 30 s, not in a busy loop). The token appears nowhere:
not in any daemon output, not in any HTTP body, not in the state files.

Environment (set by ctest): REPLYWATCH_BIN, REPLYWATCH_SOURCE, REPLYWATCH_FAKE_BOT_API.
"""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402
import telegram_helpers as th  # noqa: E402

CONNECTOR = "tg"
TOKEN_ENV = "REPLYWATCH_E2E_BOT_TOKEN"

# Every fault of the fake, in an order that also puts faults after the first delivery
# (nothing may be lost or counted twice then) and keeps the backoff short: the slow answer
# within the deadline (300 ms) delivers the history and resets the backoff; the duplicate
# re-delivers every confirmed update; the last slow answer (17 s) outlasts the client's
# deadline (poll_timeout_secs 1 + 15 s) and is a timeout.
FAULTS = ["too_many_requests:1:1000", "server_error:2", "truncated", "slow:1:300",
          "invalid_json", "reset", "duplicate", "slow:1:17000"]
# What each fault must be counted as (duplicate and the short slow are not errors).
EXPECTED_ERRORS = {"too_many_requests": "rate_limited", "server_error": "http_5xx",
                   "truncated": "truncated_body", "invalid_json": "invalid_json",
                   "reset": "connection_reset", "slow (beyond the deadline)": "timeout"}


class TelegramPoll(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = h.TempDir("rw_tg_poll_")
        cls.work = cls.tmp.path
        cls.token = th.make_token()
        cls.env = {TOKEN_ENV: cls.token}
        cls.daemons = []
        cls.fakes = []
        cls.replay_outputs = []
        now = int(time.time())
        cls.updates, cls.export, cls.delta = th.shifted_history(now)
        cls.updates_file = th.write_updates_ndjson(os.path.join(cls.work, "updates.ndjson"),
                                                   cls.updates)
        cls.last_id = th.FIRST_UPDATE_ID + len(cls.updates) - 1
        cls.n_events = len(th.event_updates(cls.updates))
        cls.expected = th.replay_appeals(cls.work, cls.export)

    @classmethod
    def tearDownClass(cls):
        for d in cls.daemons:
            d.kill()
        for f in cls.fakes:
            f.stop()
        cls.tmp.cleanup()

    # ---- plumbing ----

    def fake(self, name, faults=(), updates=True):
        f = th.FakeBotApiProcess(self.work, name, self.token,
                                 updates_file=self.updates_file if updates else None,
                                 faults=faults)
        self.fakes.append(f)
        return f.start()

    def daemon(self, name, fake, **daemon_overrides):
        data_dir = os.path.join(self.work, name)
        os.makedirs(data_dir, exist_ok=True)
        config = os.path.join(self.work, f"{name}.yaml")
        th.write_config(config, daemon=h.daemon_section(data_dir, **daemon_overrides),
                        connectors=[th.poll_connector(fake.port, TOKEN_ENV, CONNECTOR)])
        d = th.RecordingDaemon(config, data_dir, env=self.env)
        self.daemons.append(d)
        return d

    def retarget(self, d, fake):
        """Points the daemon's configuration at another fake (read at the next start)."""
        th.write_config(d.config_path, daemon=h.daemon_section(d.data_dir),
                        connectors=[th.poll_connector(fake.port, TOKEN_ENV, CONNECTOR)])

    def assert_no_secret(self):
        found = th.scan(th.secrets_of(self.token), directories=[self.work],
                        texts=[b for d in self.daemons for b in d.bodies])
        self.assertEqual(found, [], "the bot token leaked")

    def wait_status(self, fake, predicate, timeout, what):
        return h.wait_until(lambda: (lambda s: s if s and predicate(s) else None)(fake.status()),
                            timeout, interval=0.05, what=f"{fake.name}: {what}")

    # ---- the tests ----

    def test_1_faults_restart_and_replay_agree(self):
        self.assertEqual(len(self.expected), 6, self.expected)  # the history's six appeals
        started = time.monotonic()
        fake = self.fake("fake_faults", FAULTS)
        d = self.daemon("poll", fake)
        d.start()

        # Every update confirmed, every fault served, and a request after the last fault.
        self.wait_status(fake, lambda s: s["faults_pending"] == 0
                         and s["confirmed_offset"] == self.last_id + 1, 120,
                         "all faults served and every update confirmed")
        h.wait_until(lambda: th.errors_by_type(d.metrics(), CONNECTOR).get("timeout"), 60,
                     what="the slow answer counted as a timeout")
        calls = fake.status()["get_updates_calls"]
        self.wait_status(fake, lambda s: s["get_updates_calls"] >= calls + 1, 30,
                         "a getUpdates after the timeout")
        m = d.wait_ingested(2 * self.n_events, timeout=120, settle=3.0)
        ingest_secs = time.monotonic() - started

        # The duplicate fault re-delivered every update: received twice, counted once.
        events = h.sample(m, "replywatch_connector_events_received_total", connector=CONNECTOR)
        self.assertEqual(events, 2 * self.n_events)
        got = d.appeals()
        self.assertEqual(th.appeal_rows(got), th.appeal_rows(self.expected))
        opened = th.opened_total(m)
        self.assertEqual(opened, len(self.expected))
        self.assertEqual(len({(a["conversation"], a["opened_message"]) for a in got}), len(got))

        # Each fault under its error type.
        errors = th.errors_by_type(m, CONNECTOR)
        for fault, error_type in EXPECTED_ERRORS.items():
            with self.subTest(fault=fault, error_type=error_type):
                self.assertGreaterEqual(errors.get(error_type, 0), 1,
                                        f"{fault}: no {error_type} in {errors}")
        with self.subTest("server_error:2 counted twice"):
            self.assertEqual(errors.get("http_5xx"), 2, errors)
        self.assertEqual(h.sample(m, "replywatch_connector_up", connector=CONNECTOR), 1)
        self.assertGreaterEqual(h.sample(m, "replywatch_connector_last_success_timestamp_seconds",
                                         connector=CONNECTOR), time.time() - 30)
        self.assertEqual(d.get("/readyz")[0], 200)

        # Restart on the same data directory and the same fake: nothing counted twice,
        # nothing re-delivered, the fake's confirmed offset does not go back.
        self.assertEqual(d.stop(), 0, d.stderr())
        calls = fake.status()["get_updates_calls"]
        d.start()
        self.wait_status(fake, lambda s: s["get_updates_calls"] >= calls + 2, 30,
                         "two getUpdates after the restart")
        m2 = d.metrics()
        self.assertEqual(fake.status()["confirmed_offset"], self.last_id + 1)
        self.assertEqual(th.opened_total(m2), opened)
        self.assertEqual(h.sample(m2, "replywatch_connector_events_received_total",
                                  connector=CONNECTOR), events)
        self.assertEqual(th.appeal_rows(d.appeals()), th.appeal_rows(self.expected))

        # Restart against a fresh fake that still holds the whole history under the same
        # ids (as Telegram would after a crash before confirming): the first getUpdates
        # must carry the persisted offset, which confirms everything at once, so nothing
        # is delivered again.
        self.assertEqual(d.stop(), 0, d.stderr())
        fresh = self.fake("fake_fresh")
        self.assertEqual(fresh.status()["pending"], len(self.updates))
        self.retarget(d, fresh)
        d.start()
        first = self.wait_status(fresh, lambda s: s["get_updates_calls"] >= 1, 30,
                                 "the first getUpdates after the restart")
        self.assertEqual(first["confirmed_offset"], self.last_id + 1,
                         f"the first getUpdates did not carry offset {self.last_id + 1}: "
                         f"{first}")
        self.assertEqual(first["pending"], 0)
        self.wait_status(fresh, lambda s: s["get_updates_calls"] >= 2, 30, "a second getUpdates")
        m3 = d.wait_ingested(events, timeout=30, settle=1.5)
        self.assertEqual(h.sample(m3, "replywatch_connector_events_received_total",
                                  connector=CONNECTOR), events)
        self.assertEqual(th.opened_total(m3), opened)
        self.assertEqual(th.appeal_rows(d.appeals()), th.appeal_rows(self.expected))
        self.assertEqual(d.stop(), 0, d.stderr())
        print(f"\npoll scenario: ingest through every fault {ingest_secs:.1f} s, "
              f"errors {errors}", file=sys.stderr)
        self.assert_no_secret()

    def test_2_unauthorized_fails_the_connector(self):
        fake = self.fake("fake_401", ["unauthorized:1000"])
        d = self.daemon("unauthorized", fake)
        d.start(wait=False)
        status, body = h.wait_until(
            lambda: (lambda r: r if r[0] == 503 else None)(d.get("/readyz", timeout=2)), 30,
            what="/readyz 503")
        self.assertIn(f"connector {CONNECTOR}", body)
        self.assertIn("unauthorized", body.lower())
        m = d.metrics()
        self.assertEqual(h.sample(m, "replywatch_connector_up", connector=CONNECTOR), 0)
        self.assertGreaterEqual(th.errors_by_type(m, CONNECTOR).get("unauthorized", 0), 1)
        self.assertEqual(d.get("/healthz")[0], 200)
        self.assertEqual(d.get("/metrics")[0], 200)
        # A fatal error is not retried in a loop (the next try is minutes away).
        calls = self.wait_status(fake, lambda s: s["get_updates_calls"] >= 1, 10,
                                 "the 401 getUpdates in the status file")["get_updates_calls"]
        time.sleep(3)
        self.assertEqual(fake.status()["get_updates_calls"], calls)
        self.assertEqual(th.errors_by_type(d.metrics(), CONNECTOR).get("unauthorized"), calls)
        self.assertEqual(d.get("/readyz")[0], 503)
        t0 = time.monotonic()
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertLess(time.monotonic() - t0, 3, "SIGTERM waited for the 5 min retry")
        self.assert_no_secret()

    def test_3_conflict_is_retried_slowly(self):
        fake = self.fake("fake_409", ["conflict:1000"], updates=False)
        d = self.daemon("conflict", fake)
        d.start()
        h.wait_until(lambda: th.errors_by_type(d.metrics(), CONNECTOR).get("conflict"), 30,
                     what="a conflict error")
        first_at = time.monotonic()
        calls = self.wait_status(fake, lambda s: s["get_updates_calls"] >= 1, 10,
                                 "the 409 getUpdates in the status file")["get_updates_calls"]
        time.sleep(5)
        later = fake.status()["get_updates_calls"]
        self.assertLessEqual(later - calls, 1, "getUpdates in a loop after 409")
        self.assertLessEqual(later, 3)
        errors = th.errors_by_type(d.metrics(), CONNECTOR)
        self.assertLessEqual(errors.get("conflict", 0), 2, errors)
        # ... but retried: about 30 s after the first conflict, a second one.
        h.wait_until(lambda: th.errors_by_type(d.metrics(), CONNECTOR).get("conflict", 0) >= 2,
                     45, interval=0.5, what="the retry after 30 s")
        waited = time.monotonic() - first_at
        self.assertGreaterEqual(waited, 25, f"retried after {waited:.1f} s")
        self.assertEqual(d.get("/readyz")[0], 200)  # a conflict is not fatal
        t0 = time.monotonic()
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertLess(time.monotonic() - t0, 3, "SIGTERM waited for the 30 s retry")
        self.assert_no_secret()

    def test_4_backlog_of_several_pages_pairs_like_replay(self):
        """After downtime Telegram holds more than one page (100) of updates. Until the last
        page is in, expiry must wait (the connector is not caught up), or an appeal whose
        answer is on a later page expires first. Horizon 1 h; the appeal was opened 3 h
        ago and answered 30 min later, on the second page."""
        now = int(time.time())
        updates, export = th.backlog(now - 3 * h.HOUR, now - 3 * h.HOUR + 30 * 60, 150)
        expected = th.replay_appeals(self.work, export, horizon_secs=h.HOUR, name="backlog")
        self.assertEqual([(a["status"], a["reply_seconds"]) for a in expected],
                         [("answered", 1800)])
        path = th.write_updates_ndjson(os.path.join(self.work, "backlog.ndjson"), updates)
        fake = th.FakeBotApiProcess(self.work, "fake_backlog", self.token, updates_file=path)
        self.fakes.append(fake)
        fake.start()
        data_dir = os.path.join(self.work, "backlog")
        os.makedirs(data_dir, exist_ok=True)
        config = th.write_config(os.path.join(self.work, "backlog.yaml"),
                                 daemon=h.daemon_section(data_dir),
                                 connectors=[th.poll_connector(fake.port, TOKEN_ENV, CONNECTOR)],
                                 horizon_secs=h.HOUR)
        d = th.RecordingDaemon(config, data_dir, env=self.env)
        self.daemons.append(d)
        d.start()
        last = th.FIRST_UPDATE_ID + len(updates) - 1
        self.wait_status(fake, lambda s: s["confirmed_offset"] == last + 1, 60,
                         "the whole backlog confirmed")
        d.wait_ingested(len(updates), timeout=60, settle=1.5)
        got = d.appeals()
        self.assertEqual(th.appeal_rows(got), th.appeal_rows(expected),
                         "the answer on the second page came after the appeal had expired")
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assert_no_secret()

    def test_5_sigterm_cancels_a_held_long_poll(self):
        fake = self.fake("fake_idle", updates=False)
        data_dir = os.path.join(self.work, "idle")
        os.makedirs(data_dir, exist_ok=True)
        config = th.write_config(os.path.join(self.work, "idle.yaml"),
                                 daemon=h.daemon_section(data_dir),
                                 connectors=[th.poll_connector(fake.port, TOKEN_ENV, CONNECTOR,
                                                               poll_timeout_secs=50)])
        d = th.RecordingDaemon(config, data_dir, env=self.env)
        self.daemons.append(d)
        d.start()
        self.wait_status(fake, lambda s: s["get_updates_calls"] >= 1, 10, "a held getUpdates")
        time.sleep(1)
        self.assertEqual(th.errors_by_type(d.metrics(), CONNECTOR), {})
        t0 = time.monotonic()
        self.assertEqual(d.stop(timeout=30), 0, d.stderr())
        took = time.monotonic() - t0
        self.assertLess(took, 3, f"SIGTERM took {took:.1f} s with a 50 s long poll held")
        self.assertEqual(fake.status()["get_updates_calls"], 1)
        self.assertNotIn(" warn ", d.stderr())  # a shutdown is not an error
        self.assert_no_secret()

    def test_9_no_secret_anywhere(self):
        """Whatever the other tests did or where they stopped: every daemon output, every
        body fetched, the fakes' output and the data directories."""
        for d in self.daemons:
            if d.alive():
                d.stop()
        self.assert_no_secret()


if __name__ == "__main__":
    unittest.main(verbosity=2)
