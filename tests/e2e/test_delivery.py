"""End to end through the real daemon: its appeals are the rules applied to the *set* of
messages, whatever the delivery — the six cases that broke before (a re-export, a backfill
in several files, replies before their parents, a connector error mid-backlog, short
windows, decreasing counters) — checked against an independent reading of the rules
(rules_reference.py), never against `replay`, which shares the pairing engine.

Each history avoids opening appeals within two hours either side of now − horizon, so
that the reference's clock (taken when comparing) and the daemon's (its watermark) agree
on which appeals the horizon has passed.
"""
import concurrent.futures
import json
import math
import os
import random
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402
import history_gen as hg  # noqa: E402
import rules_reference as rr  # noqa: E402
import telegram_helpers as th  # noqa: E402

NOW = int(time.time())
DAY = h.DAY
HOUR = h.HOUR
TOKEN_ENV = "REPLYWATCH_E2E_DELIVERY_TOKEN"
SECRET_ENV = "REPLYWATCH_E2E_DELIVERY_SECRET"


# ---------------------------------------------------------------------------
# histories

def history(seed, days, appeals_per_day, conversations=2, horizon=7 * DAY, mode="ignore"):
    """(config, normalized events) ending shortly before NOW."""
    config, events = hg.generate(seed=seed, days=days, appeals_per_day=appeals_per_day,
                                 conversations=conversations, now=NOW, horizon_secs=horizon,
                                 citizen_replies_to_citizens=mode)
    events = [rr.normalize_event(e) for e in events]
    lo, hi = NOW - horizon - 2 * HOUR, NOW - horizon + 2 * HOUR
    events = [e for e in events
              if not (e["kind"] == "message" and e["author_kind"] == "user" and lo <= e["time"] <= hi)]
    return config, events


def telegram_only(events):
    """What the Bot API can carry: no deletions (bots get none)."""
    return [e for e in events if e["kind"] != "delete"]


def export_only(events):
    """What a Telegram Desktop export holds: messages and service messages as they are
    now (no edit or deletion events), authors as peers (no bot flag, no forward flag)."""
    return [e for e in events
            if e["kind"] in ("message", "service") and e["author_kind"] in ("user", "chat")]


def bare(peer):
    """Bot API id of a supergroup or channel (−100…) → Desktop export bare id."""
    return -peer - 1000000000000


def export_docs(config, events):
    """One single-chat export per owned conversation."""
    owned = {c["id"] for a in config["agencies"] for c in a["conversations"]}
    docs = {}
    for e in sorted(events, key=lambda e: (e["conversation"], e["message_id"])):
        if e["conversation"] not in owned:
            continue
        doc = docs.setdefault(e["conversation"], {
            "name": f"chat {e['conversation']}", "type": "public_supergroup",
            "id": bare(e["conversation"]), "messages": []})
        m = {"id": e["message_id"], "type": e["kind"],
             "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(e["time"])),
             "date_unixtime": str(e["time"]), "text": "", "text_entities": []}
        peer = None
        if e["author"] is not None:
            peer = f"user{e['author']}" if e["author"] > 0 else f"channel{bare(e['author'])}"
        if e["kind"] == "service":
            m["actor"] = "someone"
            m["actor_id"] = peer
            m["action"] = "join_group_by_link"
        else:
            m["from"] = "x"
            m["from_id"] = peer
        if e["reply_to"] is not None:
            m["reply_to_message_id"] = e["reply_to"]
        doc["messages"].append(m)
    return docs


def update_of(e):
    """One normalized event as a Bot API Update (without update_id)."""
    conv = e["conversation"]
    is_channel = e["author"] == conv and e["author_kind"] == "chat" and conv not in OWNED
    chat = {"id": conv, "type": "channel" if is_channel else "supergroup", "title": "c"}
    m = {"message_id": e["message_id"], "chat": chat, "date": e["time"], "text": "x"}
    kind, who, a = e["kind"], e["author_kind"], e["author"]
    if who in ("user", "bot") and a is not None and a < 0:
        who = "chat"  # a chat's id: the Bot API carries it as sender_chat
    if kind == "service":
        m["new_chat_members"] = [{"id": a or 1, "is_bot": False, "first_name": "n"}]
        m["from"] = {"id": a or 1, "is_bot": False, "first_name": "n"}
    elif who in ("user", "bot"):
        m["from"] = {"id": a, "is_bot": who == "bot", "first_name": "u"}
    elif who == "chat" and a == conv:
        m["sender_chat"] = chat
        if not is_channel:
            m["from"] = {"id": 1087968824, "is_bot": True, "first_name": "Group"}
    elif who == "chat":
        m["sender_chat"] = {"id": a, "type": "channel", "title": "ch"}
        m["from"] = {"id": 136817688, "is_bot": True, "first_name": "Channel"}
    else:  # automatic_forward
        m["is_automatic_forward"] = True
        m["sender_chat"] = {"id": a, "type": "channel", "title": "ch"}
        m["from"] = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
    if e["reply_to"] is not None:
        m["reply_to_message"] = {"message_id": e["reply_to"], "chat": chat, "date": e["time"]}
    if kind == "edit":
        m["edit_date"] = e["time"]
        return {"edited_channel_post" if is_channel else "edited_message": m}
    return {"channel_post" if is_channel else "message": m}


OWNED = set()


def ndjson_lines(events):
    return [json.dumps(e) for e in events]


# ---------------------------------------------------------------------------
# comparison

def rows_of(appeals):
    return sorted(th.appeal_row(a) for a in appeals)


def reference_rows(config, events, clock=None):
    reg = rr.load_registry(config)
    return rows_of(rr.appeals(reg, events, int(time.time()) if clock is None else clock))


class DeliveryTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.TempDir(f"rw_delivery_{cls.__name__}_")
        cls.work = cls.tmp.path
        cls.daemons = []

    @classmethod
    def tearDownClass(cls):
        for d in cls.daemons:
            d.kill()
        cls.tmp.cleanup()

    def start_daemon(self, name, config, connectors, env=None, **daemon_overrides):
        data = os.path.join(self.work, name)
        os.makedirs(data, exist_ok=True)
        path = os.path.join(self.work, f"{name}.yaml")
        hg.write_config(path, config, {"daemon": h.daemon_section(data, **daemon_overrides),
                                       "connectors": connectors})
        d = th.RecordingDaemon(path, data, env=env)
        type(self).daemons.append(d)
        return d.start()

    def assert_rules(self, d, config, events, what):
        got = rows_of(h.appeals_all(d))
        want = reference_rows(config, events)
        if got != want:
            missing = [r for r in want if r not in got][:5]
            extra = [r for r in got if r not in want][:5]
            self.fail(f"{what}: {len(got)} appeals, the rules say {len(want)}; "
                      f"missing {missing}; not in the rules {extra}")
        return got

    def wait_lines(self, d, n, settle=2.0, timeout=300):
        return d.wait_ingested(n, timeout=timeout, settle=settle)


def ndjson_connector(path, name="events"):
    return {"name": name, "type": "ndjson", "path": path, "poll_interval_secs": 1}


# ---------------------------------------------------------------------------
# 1. a re-export

class ReExport(DeliveryTest):
    def test_a_chat_exported_again_later_counts_nothing_twice(self):
        config, events = history(seed=11, days=30, appeals_per_day=36)
        events = export_only(events)
        exports = os.path.join(self.work, "exports")
        for conv, doc in export_docs(config, events).items():
            h.write_json_atomic(os.path.join(exports, "first", str(bare(conv)), "result.json"), doc)
        n = sum(1 for e in events if e["conversation"] in
                {c["id"] for a in config["agencies"] for c in a["conversations"]})
        d = self.start_daemon("reexport", config, [h.export_connector(exports)])
        m1 = self.wait_lines(d, n)
        before = self.assert_rules(d, config, events, "first export")
        self.assertGreater(len(before), 600, "the history is rich enough")
        counts1 = h.counters_by_agency_kind(m1)
        # Everything older than the message retention (2 × 7 days) is forgotten by now;
        # the same chats exported again are duplicates, however old.
        for conv, doc in export_docs(config, events).items():
            h.write_json_atomic(os.path.join(exports, "second", str(bare(conv)), "result.json"), doc)
        m2 = self.wait_lines(d, 2 * n)
        self.assertEqual(rows_of(h.appeals_all(d)), before)
        self.assertEqual(h.counters_by_agency_kind(m2), counts1)
        self.assertTrue(any(v for v in counts1.values()))
        late = {l["reason"]: v for l, v in h.samples(m2, "replywatch_late_messages_total")}
        self.assertEqual(late.get("before_retention", 0), 0, late)


# ---------------------------------------------------------------------------
# 2. a backfill from several files, and a file that never settles

class SeveralFiles(DeliveryTest):
    def test_an_answer_in_the_next_file_is_not_beaten_by_expiry(self):
        config, _ = history(seed=3, days=1, appeals_per_day=1, conversations=1, horizon=DAY)
        conv = config["agencies"][0]["conversations"][0]["id"]
        press = config["agencies"][0]["accounts"][1]["id"]
        t = NOW - 3 * DAY
        ask = {"source": "telegram", "conversation": conv, "message_id": 10, "author": 412345,
               "time": t}
        answer = {"source": "telegram", "conversation": conv, "message_id": 11, "reply_to": 10,
                  "author": press, "time": t + 600}
        folder = os.path.join(self.work, "two_files")
        os.makedirs(folder)
        with open(os.path.join(folder, "a.ndjson"), "w") as f:
            f.write(json.dumps(ask) + "\n")
        with open(os.path.join(folder, "b.ndjson"), "w") as f:
            f.write(json.dumps(answer) + "\n")
        d = self.start_daemon("two_files", config, [ndjson_connector(folder)])
        self.wait_lines(d, 2)
        appeals = h.appeals_all(d)
        self.assertEqual([(a["opened_message"], a["status"], a.get("reply_seconds")) for a in appeals],
                         [(10, "answered", 600)])
        events = [rr.normalize_event(e) for e in (ask, answer)]
        self.assert_rules(d, config, events, "a.ndjson + b.ndjson")

    def test_a_file_that_never_settles_holds_only_its_own_conversations(self):
        config, _ = history(seed=4, days=1, appeals_per_day=1, conversations=2, horizon=DAY)
        convs = [c["id"] for a in config["agencies"] for c in a["conversations"]]
        press = {c["id"]: a["accounts"][1]["id"] for a in config["agencies"] for c in a["conversations"]}
        t = NOW - 3 * DAY
        # Conversation A comes in exports; conversation B through an ndjson file.
        a_ask = {"id": 10, "type": "message", "date_unixtime": str(t), "from": "x",
                 "from_id": "user412345", "text": "", "text_entities": [],
                 "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))}
        a_answer = dict(a_ask, id=11, from_id=f"user{press[convs[0]]}", reply_to_message_id=10,
                        date_unixtime=str(t + 600))
        exports = os.path.join(self.work, "settling")
        doc = {"name": "a", "type": "public_supergroup", "id": bare(convs[0]), "messages": [a_ask]}
        h.write_json_atomic(os.path.join(exports, "a.json"), doc)
        folder = os.path.join(self.work, "b_events")
        os.makedirs(folder)
        b_ask = {"source": "telegram", "conversation": convs[1], "message_id": 5, "author": 777001,
                 "time": t}
        with open(os.path.join(folder, "b.ndjson"), "w") as f:
            f.write(json.dumps(b_ask) + "\n")
        # b.json is being written (its size keeps changing) from before the daemon starts:
        # the exports connector has input it has not delivered, so conversation A's appeal
        # may not expire; B's, delivered only by the ndjson connector, expires on its own
        # clock.
        stop = threading.Event()
        later = dict(doc, messages=[a_ask, a_answer])

        def keep_writing():
            k = 0
            while not stop.is_set():
                with open(os.path.join(exports, "b.json"), "w") as f:
                    json.dump(later, f)
                    f.write(" " * (k % 7))
                k += 1
                time.sleep(0.2)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            time.sleep(0.5)
            d = self.start_daemon("settling", config,
                                  [h.export_connector(exports), ndjson_connector(folder, "b_events")])
            self.wait_lines(d, 2)
            time.sleep(3)
            by_msg = {(a["conversation"], a["opened_message"]): a["status"] for a in h.appeals_all(d)}
            self.assertEqual(by_msg[(str(convs[0]), 10)], "open", "expiry ran ahead of a settling file")
            self.assertEqual(by_msg[(str(convs[1]), 5)], "unanswered",
                             "one connector's unsettled file froze another's conversations")
            # Never caught up since the start: its lag is the daemon's whole run so far.
            lag = h.sample(d.metrics(), "replywatch_connector_watermark_lag_seconds",
                           connector="exports")
            self.assertGreaterEqual(lag, 3)
        finally:
            stop.set()
            writer.join()
        with open(os.path.join(exports, "b.json"), "w") as f:
            json.dump(later, f)
        h.wait_until(lambda: {a["opened_message"]: a["status"] for a in h.appeals_all(d)
                              if a["conversation"] == str(convs[0])}.get(10) == "answered",
                     60, what="the settled file's answer")


# ---------------------------------------------------------------------------
# 3. replies before their parents: shuffled files, parallel webhook pushes

class OutOfOrder(DeliveryTest):
    def test_five_shuffled_files_with_duplicates(self):
        config, events = history(seed=20, days=20, appeals_per_day=46, conversations=3)
        rng = random.Random(5)
        delivered = hg.shuffle(hg.duplicate(list(events), rng, 0.03), rng)
        folder = os.path.join(self.work, "shuffled")
        os.makedirs(folder)
        parts = hg.split(delivered, rng, 5)
        for i, part in enumerate(parts):
            hg.write_ndjson(os.path.join(folder, f"part-{i}.ndjson"), part)
        d = self.start_daemon("shuffled", config, [ndjson_connector(folder)])
        m = self.wait_lines(d, len(delivered))
        got = self.assert_rules(d, config, events, "five shuffled files")
        self.assertGreater(len(got), 800)
        late = {l["reason"]: v for l, v in h.samples(m, "replywatch_late_messages_total")}
        self.assertEqual(late.get("before_retention", 0) + late.get("parent_forgotten", 0), 0, late)

    def test_webhook_pushes_in_any_order_over_parallel_connections(self):
        config, events = history(seed=21, days=6, appeals_per_day=40, conversations=2)
        events = telegram_only(events)
        OWNED.update(c["id"] for a in config["agencies"] for c in a["conversations"])
        token, secret = th.make_token(), th.make_secret()
        env = {TOKEN_ENV: token, SECRET_ENV: secret}
        d = self.start_daemon("pushes", config,
                              [th.webhook_connector("/telegram/hook", TOKEN_ENV, SECRET_ENV, "hook")],
                              env=env)
        updates = [update_of(e) for e in events]
        rng = random.Random(8)
        for i, u in enumerate(updates):
            u["update_id"] = 500000 + i
        order = list(updates) + rng.sample(updates, len(updates) // 30)  # redeliveries
        rng.shuffle(order)

        def push(u):
            status, _ = th.post(d.port, "/telegram/hook", json.dumps(u).encode(),
                                {"X-Telegram-Bot-Api-Secret-Token": secret})
            return status

        # Telegram opens up to 40 connections: so do we.
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(push, order))
        self.assertEqual(set(statuses), {200})
        self.wait_lines(d, len(order))
        self.assert_rules(d, config, events, "webhook pushes out of order")


# ---------------------------------------------------------------------------
# 4. a connector error mid-backlog

FAULTS = ["none:3", "too_many_requests:1:1000", "none:2", "server_error:2", "none:2",
          "truncated", "none:1", "reset", "none:3", "invalid_json", "duplicate", "none:2",
          "too_many_requests:1:1000", "slow:1:300"]


class BacklogThroughFaults(DeliveryTest):
    def test_a_long_bot_api_backlog_through_faults(self):
        config, events = history(seed=25, days=25, appeals_per_day=42, conversations=2)
        events = telegram_only(events)
        OWNED.update(c["id"] for a in config["agencies"] for c in a["conversations"])
        token = th.make_token()
        updates_file = th.write_updates_ndjson(os.path.join(self.work, "backlog.ndjson"),
                                               [update_of(e) for e in events])
        fake = th.FakeBotApiProcess(self.work, "fake", token, updates_file=updates_file,
                                    faults=FAULTS).start()
        try:
            d = self.start_daemon("backlog", config,
                                  [th.poll_connector(fake.port, TOKEN_ENV, "tg")],
                                  env={TOKEN_ENV: token})
            last = th.FIRST_UPDATE_ID + len(events) - 1
            h.wait_until(lambda: (fake.status() or {}).get("confirmed_offset", 0) > last, 300,
                         what="every update confirmed")
            m = self.wait_lines(d, len(events))
            got = self.assert_rules(d, config, events, "a 25-day backlog through faults")
            self.assertGreater(len(got), 900)
            errors = th.errors_by_type(m, "tg")
            for kind in ("rate_limited", "http_5xx", "truncated_body", "connection_reset",
                         "invalid_json"):
                self.assertIn(kind, errors)
            # The counters, less their corrections, count exactly the rules' appeals.
            check_counters(self, m, got)
        finally:
            fake.stop()


def check_counters(test, metrics, rows):
    status_at = th.APPEAL_FIELDS.index("status")
    kind_at = th.APPEAL_FIELDS.index("kind")
    want = {}
    for r in rows:
        key = (r[0], r[kind_at])
        w = want.setdefault(key, {"opened": 0, "answered": 0, "unanswered": 0, "withdrawn": 0})
        w["opened"] += 1
        if r[status_at] != "open":
            w[r[status_at]] += 1
    for (agency, kind), w in want.items():
        for status, n in w.items():
            counted = h.sample(metrics, f"replywatch_appeals_{status}_total", agency=agency, kind=kind)
            corrected = h.sample(metrics, "replywatch_appeals_corrected_total", agency=agency,
                                 kind=kind, status=status)
            with test.subTest(agency=agency, kind=kind, status=status):
                test.assertEqual(counted - corrected, n)


# ---------------------------------------------------------------------------
# 5. short windows

class Windows(DeliveryTest):
    def test_each_window_means_its_cohort(self):
        # A steady stream: a first appeal every 15 s for 3 days, each answered after a
        # log-normal delay with median 7200 s (σ 0.8), in one conversation.
        config, _ = history(seed=6, days=1, appeals_per_day=1, conversations=1)
        conv = config["agencies"][0]["conversations"][0]["id"]
        agency = config["agencies"][0]["id"]
        press = config["agencies"][0]["accounts"][1]["id"]
        rng = random.Random(77)
        lines, mid = [], 1
        for k in range(3 * DAY // 15):
            t = NOW - 3 * DAY + 15 * k
            lines.append({"source": "telegram", "conversation": conv, "message_id": mid,
                          "author": 10_000_000 + k, "time": t})
            reply = rng.lognormvariate(math.log(7200), 0.8)
            if t + reply < NOW - 60:
                lines.append({"source": "telegram", "conversation": conv, "message_id": mid + 1,
                              "reply_to": mid, "author": press, "time": int(t + reply)})
            mid += 2
        lines.sort(key=lambda e: e["message_id"])
        folder = os.path.join(self.work, "stream")
        os.makedirs(folder)
        hg.write_ndjson(os.path.join(folder, "stream.ndjson"), lines)
        d = self.start_daemon("stream", config, [ndjson_connector(folder)])
        m = self.wait_lines(d, len(lines))
        km = {l["window"]: v for l, v in h.samples(m, "replywatch_km_median_reply_seconds")
              if l["agency"] == agency}
        self.assertNotIn("1h", km, "an hour of follow-up cannot show a median of two hours")
        for window in ("24h", "7d", "30d"):
            with self.subTest(window=window):
                self.assertLess(abs(km[window] - 7200) / 7200, 0.05, km)
        one_hour = d.json("/api/v1/ranking?window=1h")["rows"][0]
        self.assertIsNone(one_hour["km_median_seconds"])
        self.assertIn("too few", one_hour["km_median_note"])
        self.assertLessEqual(one_hour["km_max_followup_seconds"], 3600)
        print(f"\nwindows: KM median {km} (truth 7200 s)")


# ---------------------------------------------------------------------------
# 6. counters never go down, and promtool accepts the exposition

COUNTER = re.compile(r"^(replywatch_\w+?(_total|_bucket|_count|_sum))(\{[^}]*\})? (\S+)$")


class Counters(DeliveryTest):
    def test_no_series_decreases_through_corrections_and_promtool_accepts_it(self):
        config, events = history(seed=30, days=10, appeals_per_day=40, conversations=2,
                                 horizon=2 * DAY)
        rng = random.Random(3)
        # Answers held back and delivered late: appeals expire, then the answers correct them.
        late = [e for e in events if e["kind"] == "message" and e["reply_to"] is not None
                and rng.random() < 0.3]
        early = [e for e in events if e not in late]
        folder = os.path.join(self.work, "late")
        os.makedirs(folder)
        hg.write_ndjson(os.path.join(folder, "a.ndjson"), early)
        # A retention longer than the history: every late answer can still be paired.
        d = self.start_daemon("counters", config, [ndjson_connector(folder)],
                              message_retention_secs=30 * DAY)
        self.wait_lines(d, len(early))
        seen = {}
        decreased = []
        stop = threading.Event()

        def scrape():
            while not stop.is_set():
                for line in d.metrics_text().splitlines():
                    mt = COUNTER.match(line)
                    if not mt:
                        continue
                    key, value = mt.group(1) + (mt.group(3) or ""), float(mt.group(4))
                    if value < seen.get(key, value):
                        decreased.append((key, seen[key], value))
                    seen[key] = value
                time.sleep(0.1)

        scraper = threading.Thread(target=scrape)
        scraper.start()
        try:
            hg.write_ndjson(os.path.join(folder, "b.ndjson"), late)
            m = self.wait_lines(d, len(events))
        finally:
            stop.set()
            scraper.join()
        self.assertEqual(decreased, [])
        corrected = sum(v for l, v in h.samples(m, "replywatch_appeals_corrected_total"))
        self.assertGreater(corrected, 0, "late answers corrected appeals already final")
        got = self.assert_rules(d, config, events, "late answers")
        check_counters(self, m, got)
        out = subprocess.run([h.PROMTOOL, "check", "metrics"], input=d.metrics_text(),
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


# ---------------------------------------------------------------------------
# the smaller fixes

class Fixes(DeliveryTest):
    def test_readyz_fails_for_a_missing_export_directory(self):
        config, _ = history(seed=1, days=1, appeals_per_day=1, conversations=1)
        missing = os.path.join(self.work, "no_such_dir")
        data = os.path.join(self.work, "ready")
        os.makedirs(data)
        path = os.path.join(self.work, "ready.yaml")
        hg.write_config(path, config, {"daemon": h.daemon_section(data),
                                       "connectors": [h.export_connector(missing)]})
        d = th.RecordingDaemon(path, data)
        type(self).daemons.append(d)
        d.start(wait=False)
        status, body = h.wait_until(lambda: (lambda r: r if r[0] == 503 else None)(d.get("/readyz")),
                                    30, what="/readyz 503")
        self.assertIn("exports", body)
        self.assertIn(missing, body)

    def test_json_errors_are_valid_json(self):
        config, _ = history(seed=1, days=1, appeals_per_day=1, conversations=1)
        d = self.start_daemon("errors", config, [])
        for target in ('/api/v1/appeals?cursor=%22', '/api/v1/appeals?status=%22%5C',
                       '/api/v1/appeals?agency=%22x%22', '/api/v1/ranking?window=%22'):
            status, body = d.get(target)
            with self.subTest(target=target):
                self.assertIn(status, (400, 404))
                self.assertIn("error", json.loads(body))

    def test_check_config_refuses_plain_http_off_this_machine(self):
        config, _ = history(seed=1, days=1, appeals_per_day=1, conversations=1)
        path = os.path.join(self.work, "http.yaml")
        env = dict(os.environ, **{TOKEN_ENV: th.make_token()})
        for url, ok in (("http://api.example.org", False), ("http://10.0.0.5:8081", False),
                        ("http://127.0.0.1:8081", True), ("http://[::1]:8081", True),
                        ("http://localhost:8081", True), ("https://api.example.org", True)):
            connector = {"name": "tg", "type": "telegram", "mode": "poll", "token_env": TOKEN_ENV,
                         "api_base_url": url}
            hg.write_config(path, config, {"connectors": [connector]})
            out = subprocess.run([h.BIN, "check-config", "--config", path], env=env,
                                 capture_output=True, text=True)
            with self.subTest(url=url):
                self.assertEqual(out.returncode == 0, ok, out.stderr)
                if not ok:
                    self.assertIn("in clear", out.stderr)
                    self.assertNotIn(env[TOKEN_ENV], out.stderr)

    def test_retention_shorter_than_horizon_plus_lateness_is_refused(self):
        config, _ = history(seed=1, days=1, appeals_per_day=1, conversations=1, horizon=DAY)
        path = os.path.join(self.work, "retention.yaml")
        hg.write_config(path, config, {"daemon": {"message_retention_secs": DAY,
                                                  "lateness_secs": 600}})
        out = subprocess.run([h.BIN, "check-config", "--config", path], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn("daemon.message_retention_secs", out.stderr)
        self.assertIn(str(DAY + 600), out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
