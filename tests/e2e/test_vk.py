"""`replywatch run` with VK connectors, in both modes, against the hand-worked fixture
(tests/fixtures/vk/README.md), shifted so that its last message is an hour old.

Poll mode (an outside monitor's token): a fake api.vk.com (vk_helpers.FakeVk, https on
127.0.0.1) serves the wall, misbehaving the way VK does — errors 6, 9 and 10 in VK's JSON,
a 502 page, a truncated body, a slow answer, pages shuffled and overlapping. Half the
history is on the wall when the daemon starts; it is killed with -9, the rest appears,
and after a restart the appeals are exactly the README's, except that comment 106 is
still there (A3 unanswered, not withdrawn). A comment that disappears while the poller
runs is withdrawn once two complete reads miss it; one answer that leaves it out is not
a deletion. A token VK refuses (error
5) marks its connector failed while another connector runs; a wall VK calls private
(error 30) holds the connector's watermark, so nothing of it is counted final.

Callback mode (the community's own server): the same history as Callback API pushes,
shuffled, partly resent (VK resends until it reads `ok`), with forged pushes (no secret,
a wrong one) that would answer an appeal, a confirmation, a malformed body, and a kill -9
right after an `ok`. The appeals are exactly the README's, A3 withdrawn.

Neither the access token, the callback secret nor the confirmation string appears in any
output, file or HTTP body of the daemon.

Environment (set by ctest): REPLYWATCH_BIN, REPLYWATCH_SOURCE.
"""
import json
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402
import telegram_helpers as th  # noqa: E402
import vk_helpers as vh  # noqa: E402

WALL = -123456
TOKEN_ENV = "REPLYWATCH_E2E_VK_TOKEN"
SECRET_ENV = "REPLYWATCH_E2E_VK_SECRET"
CONFIRM_ENV = "REPLYWATCH_E2E_VK_CONFIRM"
HOOK = "/webhooks/vk/vk_hook"
T = vh.T

# README's table: (citizen, thread, opened message, opened_at − T, kind, status, answer
# message, responder role, reply seconds).
HAND = [
    ("500001", 100, 101, 100, "first", "answered", 103, "community", 3600),
    ("500003", 100, 102, 200, "first", "answered", 105, "press_office", 7200),
    ("500004", 100, 106, 300, "first", "withdrawn", None, None, None),
    ("500005", 100, 107, 400, "first", "unanswered", None, None, None),
    ("500001", 100, 108, 5000, "followup", "answered", 109, "community", 600),
    ("500007", 100, 111, 6000, "first", "answered", 112, "community", 900),
    ("500006", 200, 201, 691300, "first", "open", None, None, None),
]


def expected(shift, poll):
    rows = []
    for r in HAND:
        r = list(r)
        r[3] = T + r[3] + shift
        if poll and r[2] == 106:
            r[5] = "unanswered"  # the poller never sees the deletion
        rows.append(tuple(r))
    return rows


def rows_of(appeals):
    return sorted(((a["citizen"], a["thread"], a["opened_message"], a["opened_at"], a["kind"],
                    a["status"], a.get("answer_message"), (a.get("responder") or {}).get("role"),
                    a.get("reply_seconds")) for a in appeals), key=lambda r: r[2])


def write_config(work, name, connectors):
    with open(os.path.join(vh.FIX, "config.yaml"), encoding="utf-8") as f:
        base = f.read()
    data = os.path.join(work, name + ".data")
    os.makedirs(data, exist_ok=True)
    path = os.path.join(work, name + ".yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(base)
        f.write(json.dumps({"daemon": h.daemon_section(data)}, ensure_ascii=False)[1:-1]
                .replace('"daemon": ', "daemon: ") + "\n")
        f.write("connectors: " + json.dumps(connectors) + "\n")
    return path, data


def final_counts(d):
    m = d.metrics()
    get = lambda name, **l: sum(v for lab, v in h.samples(m, name)  # noqa: E731
                                if all(lab.get(k) == w for k, w in l.items()))
    out = {}
    for status in ("opened", "answered", "unanswered", "withdrawn"):
        out[status] = (get(f"replywatch_appeals_{status}_total", agency="akimat_vk")
                       - get("replywatch_appeals_corrected_total", agency="akimat_vk",
                             status=status))
    return out


def want_counts(rows):
    return {"opened": len(rows), "answered": sum(r[5] == "answered" for r in rows),
            "unanswered": sum(r[5] == "unanswered" for r in rows),
            "withdrawn": sum(r[5] == "withdrawn" for r in rows)}


class VkTest(unittest.TestCase):
    def setUp(self):
        self.tmp = h.TempDir("rw_vk_")
        self.work = self.tmp.path
        self.token = vh.make_token()
        self.secret = vh.make_secret("cbs_")
        self.confirm = vh.make_secret("cf")[:10]
        self.env = {TOKEN_ENV: self.token, SECRET_ENV: self.secret, CONFIRM_ENV: self.confirm}
        self.daemons = []
        self.shift = (int(time.time()) - 3600) - vh.LAST

    def tearDown(self):
        for d in self.daemons:
            d.kill()
        self.tmp.cleanup()

    def start(self, path, data, wait=True):
        d = th.RecordingDaemon(path, data, env=self.env)
        self.daemons.append(d)
        return d.start(wait=wait)

    def poller(self, fake, name="vk_walls", **extra):
        c = {"name": name, "type": "vk", "mode": "poll", "api_base_url": fake.base_url,
             "token_env": TOKEN_ENV, "ca_file": os.path.join(vh.TLS, "ca.pem"),
             "poll_interval_secs": 1, "requests_per_second": 20}
        c.update(extra)
        return c

    def assert_no_secret(self, data_dirs, bodies):
        texts = list(bodies)
        for d in self.daemons:
            texts += [d.stderr()]
            texts += d.bodies
        found = th.scan([self.token, self.secret, self.confirm], data_dirs, texts)
        self.assertEqual(found, [], "a secret leaked")

    def wait_final(self, d, want, timeout=120):
        def done():
            if not d.alive():
                raise AssertionError("the daemon died: " + d.stderr()[-3000:])
            return rows_of(h.appeals_all(d)) == want and final_counts(d) == want_counts(want)
        try:
            h.wait_until(done, timeout, interval=0.5, what="the hand-worked appeals")
        except AssertionError:
            self.assertEqual(rows_of(h.appeals_all(d)), want)
            self.assertEqual(final_counts(d), want_counts(want))
            raise


class Poll(VkTest):
    def test_through_faults_and_kill_9_the_hand_worked_appeals(self):
        posts, comments = vh.fixture(self.shift)
        first = {101, 102, 103, 104, 106, 107, 111}
        fake = vh.FakeVk(self.token, fault_every=3,
                         faults=["http:502", "shuffle", "truncated", "overlap", "vk:6",
                                 "vk:10", "slow:1", "vk:9"])
        self.addCleanup(fake.stop)
        fake.add(WALL, posts, [c for c in comments if c["id"] in first])
        path, data = write_config(self.work, "poll", [self.poller(fake)])
        d = self.start(path, data)
        h.wait_until(lambda: fake.faults == [] and len(h.appeals_all(d)) == 5, 180,
                     interval=0.5, what="the first half read through every fault")
        d.kill()
        self.daemons.remove(d)
        rest = [c for c in comments if c["id"] not in first]
        rest.append(vh.comment(201, 200, 500006, vh.LAST + self.shift))
        fake.add(WALL, comments=rest)
        d = self.start(path, data)
        self.wait_final(d, expected(self.shift, poll=True))
        self.assertEqual(fake.problems, [])
        self.assertTrue(all(m in ("wall.get", "wall.getComments") for m, _ in fake.log))
        self.assertTrue(all(p.get("v") == "5.199" for _, p in fake.log))
        self.assertEqual(h.sample(d.metrics(), "replywatch_connector_up", connector="vk_walls"), 1)
        self.assert_no_secret([data], [])

    def test_every_fault_is_counted_by_its_kind_and_long_threads_are_read(self):
        posts, comments = vh.fixture(self.shift)
        fake = vh.FakeVk(self.token, fault_every=2,
                         faults=["http:502", "truncated", "vk:6", "vk:10", "vk:9"])
        self.addCleanup(fake.stop)
        # A thread longer than getComments nests (10): eleven citizens talk under 107,
        # then the community answers it, only on the thread's second read.
        base = T + self.shift
        thread = [vh.comment(113 + k, 100, 500100 + k, base + 400 + 100 * (k + 1),
                             thread_of=107) for k in range(11)]
        thread.append(vh.comment(124, 100, WALL, base + 2200, thread_of=107,
                                 reply_to_comment=107))
        fake.add(WALL, posts, comments + thread +
                 [vh.comment(201, 200, 500006, vh.LAST + self.shift)])
        path, data = write_config(self.work, "faults", [self.poller(fake)])
        d = self.start(path, data)
        want = [r if r[2] != 107 else r[:5] + ("answered", 124, "community", 1800)
                for r in expected(self.shift, poll=True)]
        self.wait_final(d, want, timeout=180)
        self.assertIn(("wall.getComments", "107"),
                      {(m, p.get("comment_id")) for m, p in fake.log})

        def reads_of_100():
            return sum(1 for m, p in fake.log
                       if m == "wall.getComments" and p.get("post_id") == "100"
                       and "comment_id" not in p)

        # One answer without comment 106 (A3, never answered) is no deletion.
        fake.hide_once(106)
        h.wait_until(lambda: 106 not in fake.hidden, 60, what="106 left out once")
        reads = reads_of_100()
        h.wait_until(lambda: reads_of_100() >= reads + 2, 60, what="two more reads of post 100")
        self.assertEqual(rows_of(h.appeals_all(d)), want)
        # Comment 106 deleted while the poller runs: A3 is withdrawn.
        fake.remove(WALL, 106)
        self.wait_final(d, [r if r[2] != 106 else r[:5] + ("withdrawn",) + r[6:] for r in want])
        errors = {l["error_type"]: v for l, v in
                  h.samples(d.metrics(), "replywatch_connector_errors_total") if v > 0}
        for kind in ("http_5xx", "truncated_body", "rate_limited"):
            self.assertIn(kind, errors)
        self.assertGreaterEqual(errors["rate_limited"], 2)  # 6 and 9
        self.assertGreaterEqual(errors["http_5xx"], 2)  # the 502 and error 10

    def test_a_refused_token_fails_its_connector_only(self):
        fake = vh.FakeVk("another-token-entirely")
        self.addCleanup(fake.stop)
        fake.add(WALL, *vh.fixture(self.shift))
        feed = os.path.join(self.work, "feed.ndjson")
        open(feed, "w").close()
        path, data = write_config(self.work, "badtoken", [
            self.poller(fake), {"name": "feed", "type": "ndjson", "path": feed}])
        d = self.start(path, data, wait=False)
        h.wait_until(lambda: h.sample(d.metrics(), "replywatch_connector_up",
                                      connector="vk_walls") == 0, 60, what="vk_walls down")
        status, body = d.get("/readyz")
        self.assertEqual(status, 503)
        self.assertIn("connector vk_walls: failed", body)
        self.assertEqual(h.sample(d.metrics(), "replywatch_connector_up", connector="feed"), 1)
        m = d.metrics()
        self.assertGreater(h.sample(m, "replywatch_connector_errors_total", connector="vk_walls",
                                    error_type="unauthorized"), 0)
        self.assertEqual(h.appeals_all(d), [])
        self.assert_no_secret([data], [body])

    def test_a_private_wall_holds_the_watermark(self):
        posts, comments = vh.fixture(self.shift)
        fake = vh.FakeVk(self.token, private=[-777])
        self.addCleanup(fake.stop)
        fake.add(WALL, posts, comments)
        path, data = write_config(self.work, "private",
                                  [self.poller(fake, walls=[WALL, -777])])
        d = self.start(path, data)
        h.wait_until(lambda: len(h.appeals_all(d)) == 6, 60, what="the readable wall read")
        time.sleep(3)
        m = d.metrics()
        self.assertGreater(h.sample(m, "replywatch_connector_errors_total", connector="vk_walls",
                                    error_type="access_denied"), 0)
        # Nothing is final while a wall cannot be read: its appeals could not be judged.
        self.assertEqual(final_counts(d)["opened"], 0)
        lag = h.sample(m, "replywatch_connector_watermark_lag_seconds", connector="vk_walls")
        time.sleep(3)
        later = h.sample(d.metrics(), "replywatch_connector_watermark_lag_seconds",
                         connector="vk_walls")
        self.assertGreaterEqual(later, lag + 2, "the watermark moved")
        self.assertEqual(final_counts(d)["opened"], 0)


class Callback(VkTest):
    def pushes(self):
        """The fixture as Callback API pushes (posts, comments, the edit and the deletion)."""
        posts, comments = vh.fixture(self.shift)
        comments.append(vh.comment(201, 200, 500006, vh.LAST + self.shift))
        out = []
        for p in posts:
            out.append({"type": "wall_post_new", "object": p})
        for c in comments:
            o = vh.public(c)
            o["post_owner_id"] = o.pop("owner_id")
            out.append({"type": "wall_reply_new", "object": o})
        out.append({"type": "wall_reply_edit", "object": {
            "id": 102, "from_id": 500003, "date": T + 200 + self.shift, "text": "Где смета?",
            "post_owner_id": WALL, "post_id": 100}})
        out.append({"type": "wall_reply_delete", "object": {
            "owner_id": WALL, "id": 106, "deleter_id": 500004, "post_id": 100}})
        for i, p in enumerate(out):
            p.update({"group_id": -WALL, "event_id": f"ev{i:04x}", "v": "5.199",
                      "secret": self.secret})
        return out

    def send(self, d, push, secret=None):
        body = dict(push)
        if secret is not None:
            body["secret"] = secret
        status, text = th.post(d.port, HOOK, json.dumps(body, ensure_ascii=False).encode())
        self.bodies.append(text)
        return status, text

    def test_shuffled_resent_forged_and_kill_9_the_hand_worked_appeals(self):
        self.bodies = []
        path, data = write_config(self.work, "hook", [{
            "name": "vk_hook", "type": "vk", "mode": "callback", "secret_env": SECRET_ENV,
            "confirmation_env": CONFIRM_ENV}])
        d = self.start(path, data)
        # The confirmation VK asks for once, when the server is added.
        status, text = self.send(d, {"type": "confirmation", "group_id": -WALL,
                                     "secret": self.secret})
        self.assertEqual((status, text), (200, self.confirm))
        self.bodies.clear()  # the one answer that must carry it
        self.assertEqual(th.post(d.port, HOOK, None, method="GET")[0], 405)
        status, text = th.post(d.port, HOOK, b'{"type": "wall_reply_new", "object": {')
        self.assertEqual((status, text), (200, "ok"))  # VK would resend it forever
        pushes = self.pushes()
        rng = random.Random(9)
        rng.shuffle(pushes)
        # Forged: an answer to A4 (comment 107) by the community, without the secret and
        # with a wrong one. Refused, and it would have changed A4.
        forged = {"type": "wall_reply_new", "group_id": -WALL, "event_id": "forged",
                  "object": {"id": 150, "from_id": WALL, "date": T + 500 + self.shift,
                             "post_owner_id": WALL, "post_id": 100, "reply_to_comment": 107}}
        self.assertEqual(self.send(d, forged)[0], 403)
        self.assertEqual(self.send(d, forged, secret=self.secret[:-1] + "x")[0], 403)
        half = len(pushes) // 2
        for i, p in enumerate(pushes[:half]):
            self.assertEqual(self.send(d, p), (200, "ok"))
            if i % 3 == 0:
                self.assertEqual(self.send(d, p), (200, "ok"))  # VK resends
        d.kill()  # right after an `ok`: VK will not send those again
        self.daemons.remove(d)
        d = self.start(path, data)
        for p in pushes[half - 2:]:  # the last two again, as if their `ok` was lost
            self.assertEqual(self.send(d, p), (200, "ok"))
        self.assertEqual(self.send(d, forged, secret="")[0], 403)
        self.wait_final(d, expected(self.shift, poll=False))
        m = d.metrics()
        self.assertGreater(h.sample(m, "replywatch_connector_errors_total", connector="vk_hook",
                                    error_type="bad_secret"), 0)
        self.assert_no_secret([data], self.bodies)


if __name__ == "__main__":
    unittest.main()
