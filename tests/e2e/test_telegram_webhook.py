"""`replywatch run` with a Telegram connector in webhook mode: Telegram's pushes arrive on
the daemon's own HTTP server at the connector's webhook_path, each carrying the header
X-Telegram-Bot-Api-Secret-Token.

The history fixture's updates, shifted to end an hour ago, are pushed one by one as
Telegram would (200 each), and the appeals must equal `replywatch replay --appeals` on the
equally shifted Desktop export. A push with a wrong or missing secret is 401 and ingests
nothing; a body over 1 MiB is 413 (also chunked); malformed JSON is 200 (Telegram would
retry it forever) and counted as invalid_json; GET on the path is 405. Pushes repeated
(Telegram retries) and a restart count nothing twice. A push answered 200 is durable: it
survives kill -9 right after the answer (Telegram forgets what it got 200 for). Neither
the bot token nor the webhook secret appears in any output of the daemon or any body it
answered.

Environment (set by ctest): REPLYWATCH_BIN, REPLYWATCH_SOURCE.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402
import telegram_helpers as th  # noqa: E402

CONNECTOR = "tg_hook"
PATH = "/telegram/akimat-hook"
TOKEN_ENV = "REPLYWATCH_E2E_HOOK_BOT_TOKEN"
SECRET_ENV = "REPLYWATCH_E2E_HOOK_SECRET"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
LIMIT = 1 << 20


class TelegramWebhook(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = h.TempDir("rw_tg_hook_")
        cls.work = cls.tmp.path
        cls.token = th.make_token()
        cls.secret = th.make_secret()
        now = int(time.time())
        cls.updates, cls.export, cls.delta = th.shifted_history(now)
        cls.n_events = len(th.event_updates(cls.updates))
        cls.expected = th.replay_appeals(cls.work, cls.export)
        data_dir = os.path.join(cls.work, "data")
        os.makedirs(data_dir)
        config = th.write_config(os.path.join(cls.work, "webhook.yaml"),
                                 daemon=h.daemon_section(data_dir),
                                 connectors=[th.webhook_connector(PATH, TOKEN_ENV, SECRET_ENV,
                                                                  CONNECTOR)])
        cls.daemon = th.RecordingDaemon(config, data_dir,
                                        env={TOKEN_ENV: cls.token, SECRET_ENV: cls.secret})
        cls.daemon.start()
        cls.bodies = []  # what the webhook answered
        cls.pushed = False

    @classmethod
    def tearDownClass(cls):
        cls.daemon.kill()
        cls.tmp.cleanup()

    # ---- plumbing ----

    def push(self, body, secret=None, headers=None, method="POST"):
        hdrs = dict(headers or {})
        if secret is not None:
            hdrs[HEADER] = secret
        status, text = th.post(self.daemon.port, PATH, body, hdrs, method=method)
        self.bodies.append(text)
        return status

    def events(self):
        return h.sample(self.daemon.metrics(), "replywatch_connector_events_received_total",
                        connector=CONNECTOR) or 0

    def errors(self):
        return th.errors_by_type(self.daemon.metrics(), CONNECTOR)

    def push_history(self):
        """Pushes every update once (the first test to need it does)."""
        if type(self).pushed:
            return
        for u in self.updates:
            body = json.dumps(u).encode()
            self.assertEqual(self.push(body, self.secret), 200, u["update_id"])
        type(self).pushed = True

    # ---- the tests (in name order) ----

    def test_1_pushes_give_replays_appeals(self):
        self.assertEqual(len(self.expected), 6, self.expected)
        self.assertEqual(h.sample(self.daemon.metrics(), "replywatch_connector_up",
                                  connector=CONNECTOR), 1)
        self.push_history()
        # Applied before the answer: no waiting needed, but let a tick pass anyway.
        m = self.daemon.wait_ingested(self.n_events, timeout=30, settle=1.5)
        self.assertEqual(h.sample(m, "replywatch_connector_events_received_total",
                                  connector=CONNECTOR), self.n_events)
        self.assertEqual(th.appeal_rows(self.daemon.appeals()), th.appeal_rows(self.expected))
        self.assertEqual(th.opened_total(m), len(self.expected))
        self.assertEqual(self.errors(), {})
        self.assertEqual(self.daemon.get("/readyz")[0], 200)

    def test_2_wrong_or_missing_secret_is_401_and_ingests_nothing(self):
        self.push_history()
        before_events = self.events()
        before_bad = self.errors().get("bad_secret", 0)
        # A new message from a new citizen: it would open an appeal if it were taken.
        probe = json.loads(json.dumps(self.updates[-1]))
        probe["update_id"] = th.FIRST_UPDATE_ID + 1000
        probe["message"]["message_id"] = 1300
        probe["message"]["from"]["id"] = 111222333
        body = json.dumps(probe).encode()
        wrong = [self.secret[:-1] + ("x" if self.secret[-1] != "x" else "y"),  # same length
                 self.secret[:-1],                       # a prefix
                 self.secret + "0",                      # longer
                 "", self.secret.upper(),
                 self.secret[:10] + "-" + self.secret[11:],   # one byte inside
                 self.token]                             # the bot token is not the secret
        for secret in wrong:
            with self.subTest(secret_len=len(secret)):
                self.assertEqual(self.push(body, secret), 401)
        self.assertEqual(self.push(body, None), 401)  # no header at all
        self.assertEqual(self.events(), before_events)
        self.assertEqual(self.errors().get("bad_secret", 0), before_bad + len(wrong) + 1)
        self.assertEqual(th.appeal_rows(self.daemon.appeals()), th.appeal_rows(self.expected))
        # The header's name is case-insensitive, and then the same push is taken.
        self.assertEqual(self.push(body, None, {HEADER.lower(): self.secret}), 200)
        self.assertEqual(self.events(), before_events + 1)
        self.assertEqual(len(self.daemon.appeals()), len(self.expected) + 1)
        type(self).expected = self.expected + [a for a in self.daemon.appeals()
                                               if a["opened_message"] == 1300]

    def test_3_bodies_over_1_mib_are_413(self):
        self.push_history()
        before = self.events()
        opened = th.opened_total(self.daemon.metrics())
        pad = json.dumps(self.updates[2]).encode()
        big = pad[:-1] + b', "padding": "' + b"x" * (2 * LIMIT) + b'"}'
        self.assertEqual(self.push(big, self.secret), 413)
        self.assertEqual(self.push(big, None), 413)  # the size is checked first
        # Just over the limit, and exactly at it (whitespace after a valid update).
        self.assertEqual(self.push(pad + b" " * (LIMIT + 1 - len(pad)), self.secret), 413)
        self.assertEqual(self.push(pad + b" " * (LIMIT - len(pad)), self.secret), 200)
        # Chunked: the limit holds while the body arrives.
        chunk = b"x" * 65536
        chunked = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(32)) + b"0\r\n\r\n"
        status, text = th.post(self.daemon.port, PATH, None,
                               {HEADER: self.secret, "Content-Type": "application/json",
                                "Transfer-Encoding": "chunked"},
                               raw_body=chunked)
        self.bodies.append(text)
        self.assertEqual(status, 413)
        # Only the push at the limit was taken: a duplicate, received and counted nowhere.
        self.assertEqual(self.events(), before + 1)
        self.assertEqual(th.opened_total(self.daemon.metrics()), opened)
        self.assertTrue(self.daemon.alive())

    def test_4_malformed_json_is_200_and_counted(self):
        before = self.events()
        before_invalid = self.errors().get("invalid_json", 0)
        bad = [b"{", b"not json", b'{"update_id": }', b"[1,2,3]", b'"just a string"', b""]
        for body in bad:
            with self.subTest(body=body[:20]):
                self.assertEqual(self.push(body, self.secret), 200)
        self.assertEqual(self.errors().get("invalid_json", 0) - before_invalid, len(bad))
        self.assertEqual(self.events(), before)
        self.assertEqual(self.daemon.get("/readyz")[0], 200)

    def test_5_other_methods_are_405(self):
        for method in ("GET", "PUT", "DELETE"):
            with self.subTest(method=method):
                self.assertEqual(self.push(None, self.secret, method=method), 405)
        status, _ = self.daemon.get(PATH)
        self.assertEqual(status, 405)

    def final_opened(self, d, appeals):
        """opened_total once every appeal is final (a lateness and a tick after its time)."""
        return h.wait_until(lambda: (lambda n: n if n == appeals else None)(
            th.opened_total(d.metrics())), 30, what=f"{appeals} openings counted")

    def test_6_repeated_pushes_and_restart_count_nothing_twice(self):
        self.push_history()
        opened = self.final_opened(self.daemon, len(self.daemon.appeals()))
        events = self.events()
        # Telegram retries a push it thinks failed: the same updates again.
        for u in self.updates:
            self.assertEqual(self.push(json.dumps(u).encode(), self.secret), 200)
        self.assertEqual(self.events(), events + self.n_events)
        self.assertEqual(th.opened_total(self.daemon.metrics()), opened)
        # Restart on the same data directory: the pushes were made durable.
        self.assertEqual(self.daemon.stop(), 0, self.daemon.stderr())
        self.daemon.start()
        self.assertEqual(self.final_opened(self.daemon, opened), opened)
        self.assertEqual(th.appeal_rows(self.daemon.appeals()), th.appeal_rows(self.expected))
        for u in self.updates:
            self.assertEqual(self.push(json.dumps(u).encode(), self.secret), 200)
        self.assertEqual(th.opened_total(self.daemon.metrics()), opened)

    def test_7_an_acknowledged_push_survives_a_crash(self):
        """A 200 tells Telegram to forget the update, as a confirmed offset does in poll
        mode, where the offset moves only once the batch is in a snapshot on disk. So a
        push must be durable before it is acknowledged: kill -9 right after the 200, and
        the restarted daemon must still have it."""
        data_dir = os.path.join(self.work, "crash")
        os.makedirs(data_dir)
        config = th.write_config(os.path.join(self.work, "crash.yaml"),
                                 daemon=h.daemon_section(data_dir),
                                 connectors=[th.webhook_connector(PATH, TOKEN_ENV, SECRET_ENV,
                                                                  CONNECTOR)])
        d = th.RecordingDaemon(config, data_dir,
                               env={TOKEN_ENV: self.token, SECRET_ENV: self.secret})
        try:
            d.start()
            ask = next(u for u in self.updates
                       if "message" in u and u["message"]["message_id"] == 1202)
            status, text = th.post(d.port, PATH, json.dumps(ask).encode(),
                                   {HEADER: self.secret})
            self.bodies.append(text)
            self.assertEqual(status, 200)
            d.kill()  # within milliseconds of the 200
            d.start()
            m = d.metrics()
            self.assertEqual(
                h.sample(m, "replywatch_connector_events_received_total", connector=CONNECTOR),
                1, "an update acknowledged with 200 was lost by a crash")
            self.assertEqual(self.final_opened(d, 1), 1)
        finally:
            d.kill()
            self.daemon.bodies.extend(d.bodies)

    def test_9_no_secret_anywhere(self):
        self.daemon.stop()
        found = th.scan(th.secrets_of(self.token) + [self.secret], directories=[self.work],
                        texts=self.bodies + self.daemon.bodies)
        self.assertEqual(found, [], "the bot token or the webhook secret leaked")


if __name__ == "__main__":
    unittest.main(verbosity=2)
