"""Machinery for the end-to-end tests of the live Telegram connector (poll and webhook):
the history fixture in both forms shifted to recent times, the fake Bot API as a child
process, a daemon that keeps every HTTP body it fetched, raw webhook pushes, and a scan
of everything the processes wrote for a secret.

Standard library only; builds on helpers.py (processes started here are registered there
and killed at exit).
"""
import datetime
import json
import os
import random
import socket
import string
import subprocess
import time
import urllib.parse

import helpers as h

FAKE_BOT_API = os.path.abspath(os.environ.get("REPLYWATCH_FAKE_BOT_API",
                                              os.path.join(os.path.dirname(h.BIN), "tests",
                                                           "fake_bot_api")))
FIXTURES = os.path.join(h.SRC, "tests", "fixtures")
CA_FILE = os.path.join(FIXTURES, "tls", "ca.pem")

# The history (tests/fixtures/telegram/README.md) and the registry both forms need
# (tests/connectors/test_telegram_updates.cpp, history_registry()).
GROUP = -1001987654321
CHANNEL = -1001876543210
PRESS_OFFICE = 298765432
HELPER_BOT = 5012345678
FIRST_UPDATE_ID = 846201001
EVENT_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post")
EXPORT_UTC_OFFSET = 5 * h.HOUR  # the export's `date` is the exporting machine's UTC+5


def make_token():
    """A bot token nobody else uses: digits, ':', 35 letters, digits, '_' or '-'."""
    rng = random.SystemRandom()
    bot_id = str(rng.randint(10**9, 10**10 - 1))
    secret = "AA" + "".join(rng.choice(string.ascii_letters + string.digits + "_-")
                            for _ in range(33))
    return f"{bot_id}:{secret}"


def make_secret():
    rng = random.SystemRandom()
    return "whs_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(40))


def secrets_of(token):
    """The strings that must never be written anywhere: the token and its secret part."""
    return [token, token.split(":", 1)[1]]


# ---------------------------------------------------------------------------
# the history, shifted

def load_updates():
    """The Update objects of history_updates.json (three getUpdates pages), in order."""
    with open(os.path.join(FIXTURES, "telegram", "history_updates.json"), encoding="utf-8") as f:
        pages = json.load(f)
    return [u for page in pages for u in page["result"]]


def load_export():
    with open(os.path.join(FIXTURES, "telegram", "history_export.json"), encoding="utf-8") as f:
        return json.load(f)


def last_message_time(export):
    return max(int(m["date_unixtime"]) for m in export["messages"])


def _shift_update_value(value, delta):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("date", "edit_date") and isinstance(v, int):
                out[k] = v + delta
            else:
                out[k] = _shift_update_value(v, delta)
        return out
    if isinstance(value, list):
        return [_shift_update_value(v, delta) for v in value]
    return value


def shift_updates(updates, delta):
    """Every unix time of the updates (date, edit_date, nested ones too) moved by `delta`."""
    return [_shift_update_value(u, delta) for u in updates]


def _shift_iso(text, delta):
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S") + datetime.timedelta(seconds=delta)
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def shift_export(export, delta):
    """The export with date_unixtime/edited_unixtime and the local date/edited moved."""
    out = json.loads(json.dumps(export))
    for m in out["messages"]:
        for unix, local in (("date_unixtime", "date"), ("edited_unixtime", "edited")):
            if unix in m:
                m[unix] = str(int(m[unix]) + delta)
            if local in m:
                m[local] = _shift_iso(m[local], delta)
    return out


def shifted_history(now, end_before=h.HOUR):
    """(updates, export, delta): both forms moved so that the history's last message is
    `end_before` seconds before `now`."""
    export = load_export()
    delta = (now - end_before) - last_message_time(export)
    return shift_updates(load_updates(), delta), shift_export(export, delta), delta


def event_updates(updates):
    """The updates that become events (not my_chat_member and the like)."""
    return [u for u in updates if any(k in u for k in EVENT_KINDS)]


_GROUP_CHAT = {"id": GROUP, "title": "City akimat chat", "type": "supergroup"}
_CHANNEL_CHAT = {"id": CHANNEL, "title": "City akimat", "type": "channel"}


def _user(uid):
    return {"id": uid, "is_bot": False, "first_name": f"u{uid}"}


def backlog(appeal_at, answer_at, channel_posts):
    """A backlog longer than one getUpdates page (limit 100), in both forms: a citizen asks
    in the group (the first update), the channel posts `channel_posts` times in the channel
    itself (a chat no agency owns: events, but nothing to pair), then the press office
    answers the citizen (past the first page). → (updates, export)."""
    citizen = 412345678
    ask = {"message_id": 2000, "from": _user(citizen), "chat": _GROUP_CHAT, "date": appeal_at,
           "text": "When is the road fixed?"}
    updates = [{"message": ask}]
    for i in range(channel_posts):
        updates.append({"channel_post": {"message_id": 300 + i, "sender_chat": _CHANNEL_CHAT,
                                         "chat": _CHANNEL_CHAT, "date": appeal_at + 1 + i,
                                         "text": f"post {i}"}})
    updates.append({"message": {"message_id": 2001, "from": _user(PRESS_OFFICE),
                                "chat": _GROUP_CHAT, "date": answer_at, "text": "Tomorrow.",
                                "reply_to_message": ask}})

    def msg(mid, t, uid, reply_to=None):
        m = {"id": mid, "type": "message",
             "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t + EXPORT_UTC_OFFSET)),
             "date_unixtime": str(t), "from": f"u{uid}", "from_id": f"user{uid}",
             "text": "x", "text_entities": [{"type": "plain", "text": "x"}]}
        if reply_to:
            m["reply_to_message_id"] = reply_to
        return m

    export = {"name": "City akimat chat", "type": "public_supergroup",
              "id": -GROUP - 1000000000000,
              "messages": [msg(2000, appeal_at, citizen), msg(2001, answer_at, PRESS_OFFICE, 2000)]}
    return updates, export


def write_updates_ndjson(path, updates):
    """One update object per line, without update_id (the fake numbers them)."""
    with open(path, "w", encoding="utf-8") as f:
        for u in updates:
            f.write(json.dumps({k: v for k, v in u.items() if k != "update_id"}) + "\n")
    return path


def write_json(path, doc):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return path


# ---------------------------------------------------------------------------
# configuration

def agency_config():
    return {
        "id": "akimat",
        "name": "City akimat",
        "timezone": "Asia/Almaty",
        # Business hours make business_reply_seconds differ from reply_seconds.
        "business_hours": {d: ["09:00-13:00", "14:00-18:00"]
                           for d in ("mon", "tue", "wed", "thu", "fri")}
        | {"sat": ["10:00-14:00"], "sun": []},
        "target_business_secs": 3 * h.HOUR,
        "conversations": [{"source": "telegram", "id": GROUP}],
        "accounts": [
            {"source": "telegram", "id": CHANNEL, "role": "channel"},
            {"source": "telegram", "id": PRESS_OFFICE, "role": "press_office", "name": "Dana",
             "branch": "central"},
        ],
    }


def write_config(path, daemon=None, connectors=None, horizon_secs=7 * h.DAY):
    """JSON is YAML. Without `daemon`/`connectors`: the registry alone (for replay)."""
    doc = {
        "horizon_secs": horizon_secs,
        "ignore_accounts": [{"source": "telegram", "id": HELPER_BOT}],
        "agencies": [agency_config()],
    }
    if daemon is not None:
        doc["daemon"] = daemon
    if connectors is not None:
        doc["connectors"] = connectors
    return write_json(path, doc)


def poll_connector(port, token_env, name="tg", poll_timeout_secs=1, poll_interval_secs=1):
    """poll_interval_secs is no pause for a long-polling connector, but the runner's backoff
    after failures starts from it (default 10 s): 1 keeps a run through many faults short."""
    return {"name": name, "type": "telegram", "mode": "poll", "token_env": token_env,
            "api_base_url": f"https://127.0.0.1:{port}", "ca_file": CA_FILE,
            "poll_timeout_secs": poll_timeout_secs, "poll_interval_secs": poll_interval_secs}


def webhook_connector(path, token_env, secret_env, name="tg_hook"):
    return {"name": name, "type": "telegram", "mode": "webhook", "token_env": token_env,
            "secret_token_env": secret_env, "webhook_path": path}


# ---------------------------------------------------------------------------
# comparing appeals

APPEAL_FIELDS = ("agency", "source", "conversation", "thread", "citizen", "opened_message",
                 "opened_at", "kind", "status", "answer_message", "answered_at",
                 "reply_seconds", "business_reply_seconds")


def appeal_row(a):
    row = tuple(a.get(k) for k in APPEAL_FIELDS)
    responder = a.get("responder")
    return row + ((responder or {}).get("id"), (responder or {}).get("role"))


def appeal_rows(appeals):
    return sorted(appeal_row(a) for a in appeals)


def replay_appeals(workdir, export_doc, horizon_secs=7 * h.DAY, name="replay"):
    """`replywatch replay --appeals` on `export_doc` with the registry alone → appeals."""
    config = write_config(os.path.join(workdir, f"{name}.yaml"), horizon_secs=horizon_secs)
    export = write_json(os.path.join(workdir, f"{name}_export.json"), export_doc)
    _report, appeals = h.replay(config, [export])
    return appeals


# ---------------------------------------------------------------------------
# the fake Bot API as a process

class FakeBotApiProcess:
    """tests/tools/fake_bot_api: serves `updates_file` on 127.0.0.1 with scripted faults."""

    def __init__(self, workdir, name, token, updates_file=None, faults=(), tls=True,
                 first_update_id=FIRST_UPDATE_ID):
        self.dir = workdir
        self.name = name
        self.status_file = os.path.join(workdir, f"{name}.status.json")
        self.stdout_path = os.path.join(workdir, f"{name}.stdout")
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        self.args = [FAKE_BOT_API, "--token", token, "--first-update-id", str(first_update_id),
                     "--status-file", self.status_file]
        if tls:
            self.args.append("--tls")
        if updates_file:
            self.args += ["--updates", updates_file]
        for f in faults:
            self.args += ["--fault", f]
        self.proc = None
        self.port = None

    def start(self, timeout=20):
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        self.proc = h.spawn(self.args, out, err)
        out.close()
        err.close()

        def port_line():
            if self.proc.poll() is not None:
                raise AssertionError(f"fake_bot_api exited with {self.proc.returncode}: "
                                     + self.stderr())
            with open(self.stdout_path, encoding="utf-8") as f:
                for line in f:
                    if line.startswith("port ") and line.endswith("\n"):
                        return int(line.split()[1])
            return None

        self.port = h.wait_until(port_line, timeout, what=f"{self.name}: 'port N'")
        h.wait_until(lambda: self.status() is not None, timeout,
                     what=f"{self.name}: status file")
        return self

    def status(self):
        """{port, confirmed_offset, get_updates_calls, pending, faults_pending,
        unauthorized_calls}, or None before the first write."""
        try:
            with open(self.status_file, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def stderr(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------
# the daemon, keeping what it answered

class RecordingDaemon(h.Daemon):
    """helpers.Daemon that keeps every body it fetched (`bodies`), for the secret scan."""

    def __init__(self, config_path, data_dir, log_dir=None, env=None):
        super().__init__(config_path, data_dir, log_dir)
        self.bodies = []
        self.env = env or {}

    def start(self, ready_timeout=30, on_spawn=None, wait=True):
        # The daemon reads the token from its environment: give it ours for the spawn only.
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            super().start(ready_timeout=ready_timeout, on_spawn=on_spawn, wait=False)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.port = h.wait_until(self._port_written, ready_timeout, what="http.port")
        if wait:
            h.wait_until(lambda: self.get("/readyz", timeout=2)[0] == 200, ready_timeout,
                         what="/readyz 200")
        return self

    def _port_written(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}: " + self.stderr())
        with open(os.path.join(self.data_dir, "http.port")) as f:
            text = f.read()
        return int(text) if text.endswith("\n") else None

    def get(self, path, timeout=10):
        status, body = h.http_get(self.port, path, timeout)
        self.bodies.append(body)
        return status, body

    def json(self, path, timeout=10):
        status, body = self.get(path, timeout)
        if status != 200:
            raise AssertionError(f"GET {path}: HTTP {status}: {body}")
        return json.loads(body)

    def appeals(self):
        return h.appeals_all(self)

    def metric(self, name, **labels):
        return h.sample(self.metrics(), name, **labels)


def errors_by_type(metrics, connector):
    return {l["error_type"]: v for l, v in h.samples(metrics, "replywatch_connector_errors_total")
            if l.get("connector") == connector}


def opened_total(metrics):
    return sum(v for _, v in h.samples(metrics, "replywatch_appeals_opened_total"))


# ---------------------------------------------------------------------------
# webhook pushes over a raw socket

def post(port, path, body, headers=None, timeout=10, method="POST", raw_body=None):
    """Sends one request with `body` (bytes, framed by Content-Length) on a fresh connection
    and reads the answer even when the server answered before taking the whole body (413).
    `raw_body` is sent as it is after the headers (say, chunked). → (status, body text)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    for k, v in (headers or {}).items():
        head.append(f"{k}: {v}")
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"") + (raw_body or b"")
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered (and closed) before reading everything: read that answer
        chunks = []
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            raw = b"".join(chunks)
            if b"\r\n\r\n" in raw:
                head_text, _, rest = raw.partition(b"\r\n\r\n")
                length = None
                for line in head_text.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                if length is not None and len(rest) >= length:
                    break
    raw = b"".join(chunks)
    if not raw:
        raise AssertionError(f"{method} {path}: no answer")
    head_text, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head_text.split(b" ", 2)[1])
    return status, rest.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# the secret scan

def scan(secrets, directories=(), texts=()):
    """Every place (file path, or 'body #i') where one of `secrets` occurs."""
    found = []
    for d in directories:
        for root, _dirs, files in os.walk(d):
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                for s in secrets:
                    for form in {s.encode(), urllib.parse.quote(s, safe="").encode()}:
                        if form in data:
                            found.append(f"{path}: {s[:4]}…")
    for i, t in enumerate(texts):
        for s in secrets:
            if s in t:
                found.append(f"body #{i}: {s[:4]}…")
    return found
