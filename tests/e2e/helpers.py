"""Shared machinery for the end-to-end tests: the daemon and Prometheus as child
processes, HTTP on loopback, /metrics parsing, `replywatch replay`, and a generator of
Telegram Desktop exports whose timestamps are relative to now.

Standard library only. Every process started here is registered and killed at exit
(and, through PR_SET_PDEATHSIG, when the test runner itself dies).
"""
import atexit
import copy
import ctypes
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

BIN = os.path.abspath(os.environ.get("REPLYWATCH_BIN", "build/replywatch"))
SRC = os.path.abspath(os.environ.get("REPLYWATCH_SOURCE", os.getcwd()))
PROMETHEUS = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("PROMTOOL_BIN", "/usr/bin/promtool")

HOUR = 3600
DAY = 86400

# ---------------------------------------------------------------------------
# processes

_children = []


def _die_with_parent():
    # Runs in the child between fork and exec: SIGKILL it when the test runner dies.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def spawn(args, stdout, stderr, **kw):
    p = subprocess.Popen(args, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                         preexec_fn=_die_with_parent, **kw)
    _children.append(p)
    return p


def _kill_all():
    for p in _children:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=10)
            except Exception:
                pass


atexit.register(_kill_all)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    """Polls `predicate` until it returns a truthy value (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, http.client.HTTPException, ValueError) as e:
            last_error = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# HTTP

def http_get(port, path, timeout=10):
    """GET http://127.0.0.1:port/path → (status, body text). Non-2xx is not an exception."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def http_json(port, path, timeout=10):
    status, body = http_get(port, path, timeout)
    if status != 200:
        raise AssertionError(f"GET {path}: HTTP {status}: {body}")
    return json.loads(body)


# ---------------------------------------------------------------------------
# Prometheus text format

def _parse_labels(s, i):
    """Parses `{a="x",b="y"}` starting at s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    assert s[i] == "{"
    i += 1
    while True:
        while s[i] in " ,":
            i += 1
        if s[i] == "}":
            return labels, i + 1
        eq = s.index("=", i)
        name = s[i:eq].strip()
        i = eq + 1
        assert s[i] == '"', s
        i += 1
        value = []
        while s[i] != '"':
            if s[i] == "\\":
                i += 1
                value.append({"n": "\n", "\\": "\\", '"': '"'}.get(s[i], s[i]))
            else:
                value.append(s[i])
            i += 1
        labels[name] = "".join(value)
        i += 1


def parse_metrics(text):
    """→ {metric name: [(labels dict, float value), ...]}; comments are skipped."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            labels, i = _parse_labels(line, brace)
            rest = line[i:].split()
        else:
            name = line[:space]
            labels = {}
            rest = line[space:].split()
        out.setdefault(name, []).append((labels, float(rest[0])))
    return out


def sample(metrics, name, **labels):
    """The one sample of `name` whose labels include `labels`; None if there is none."""
    found = [v for l, v in metrics.get(name, []) if all(l.get(k) == w for k, w in labels.items())]
    if len(found) > 1:
        raise AssertionError(f"{name}{labels}: {len(found)} samples match")
    return found[0] if found else None


def samples(metrics, name):
    return metrics.get(name, [])


# ---------------------------------------------------------------------------
# the daemon

class Daemon:
    """`replywatch run` on a config whose daemon.data_dir is `data_dir`. Logs go to files."""

    def __init__(self, config_path, data_dir, log_dir=None):
        self.config_path = config_path
        self.data_dir = data_dir
        self.log_dir = log_dir or data_dir
        self.proc = None
        self.port = None
        self.runs = 0
        self._stderr = None

    @property
    def stderr_path(self):
        return os.path.join(self.log_dir, f"daemon.{self.runs}.stderr")

    def start(self, ready_timeout=30, on_spawn=None, wait=True):
        """Spawns the daemon; with `wait`, returns once http.port is written and /readyz
        answers 200. `on_spawn(proc)` runs right after the spawn."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        os.makedirs(self.data_dir, exist_ok=True)
        port_file = os.path.join(self.data_dir, "http.port")
        if os.path.exists(port_file):
            os.unlink(port_file)  # a stale port from the previous run would mislead us
        self.runs += 1
        out = open(os.path.join(self.log_dir, f"daemon.{self.runs}.stdout"), "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = spawn([BIN, "run", "--config", self.config_path], out, self._stderr)
        out.close()
        if on_spawn:
            on_spawn(self.proc)
        if not wait:
            return self

        def port_written():
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}: "
                                     + self.stderr())
            with open(port_file) as f:
                text = f.read()
            return int(text) if text.endswith("\n") else None

        self.port = wait_until(port_written, ready_timeout, what="http.port")
        wait_until(lambda: http_get(self.port, "/readyz", timeout=2)[0] == 200, ready_timeout,
                   what="/readyz 200")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def get(self, path, timeout=10):
        return http_get(self.port, path, timeout)

    def json(self, path, timeout=10):
        return http_json(self.port, path, timeout)

    def metrics_text(self):
        status, body = self.get("/metrics")
        assert status == 200, (status, body)
        return body

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit code."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._close()

    def kill(self):
        """SIGKILL: no drain, no final snapshot."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._close()

    def _close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self._stderr:
            self._stderr.close()
            self._stderr = None

    def wait_ingested(self, expected_events, timeout=300, settle=3.0):
        """Waits until the connectors delivered at least `expected_events` and nothing moved
        (events received, appeals opened/answered/unanswered) for `settle` seconds."""
        deadline = time.monotonic() + timeout
        last_key, since = None, time.monotonic()
        while True:
            if not self.alive():
                raise AssertionError("daemon died during ingest: " + self.stderr())
            m = self.metrics()
            events = sum(v for _, v in samples(m, "replywatch_connector_events_received_total"))
            key = (events,) + tuple(
                sum(v for _, v in samples(m, n)) for n in (
                    "replywatch_appeals_opened_total", "replywatch_appeals_answered_total",
                    "replywatch_appeals_unanswered_total"))
            now = time.monotonic()
            if key != last_key:
                last_key, since = key, now
            elif events >= expected_events and now - since >= settle:
                return m
            if now > deadline:
                raise AssertionError(f"ingest not done after {timeout}s: events {events} of "
                                     f"{expected_events}")
            time.sleep(0.25)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


# ---------------------------------------------------------------------------
# Prometheus

class Prometheus:
    """A real Prometheus scraping `targets` every second, on a free loopback port."""

    def __init__(self, workdir, targets):
        self.dir = os.path.join(workdir, "prometheus")
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: replywatch\n"
                    "    static_configs:\n      - targets: ["
                    + ", ".join(f"'{t}'" for t in targets) + "]\n")
        self.proc = None
        self.port = None

    def start(self, timeout=60):
        for _attempt in range(3):  # a port picked free can be taken before Prometheus binds
            self.port = free_port()
            log = open(os.path.join(self.dir, "prometheus.log"), "wb")
            self.proc = spawn([PROMETHEUS, f"--config.file={self.config}",
                               f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                               f"--web.listen-address=127.0.0.1:{self.port}",
                               "--log.level=warn"], log, subprocess.STDOUT)
            log.close()
            try:
                wait_until(self._ready, timeout, interval=0.2, what="Prometheus /-/ready")
                return self
            except AssertionError:
                if self.proc.poll() is None:
                    raise
        raise AssertionError("Prometheus did not start: " + self.log())

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("exited")
        return http_get(self.port, "/-/ready", timeout=2)[0] == 200

    def log(self):
        with open(os.path.join(self.dir, "prometheus.log"), errors="replace") as f:
            return f.read()

    def query(self, expr):
        """Instant query → [(labels, float value)]."""
        status, body = http_get(self.port, "/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}))
        if status != 200:
            raise AssertionError(f"query {expr}: HTTP {status}: {body}")
        data = json.loads(body)
        assert data["status"] == "success", data
        return [(r["metric"], float(r["value"][1])) for r in data["data"]["result"]]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------
# replay

def replay(config, inputs, with_appeals=True, timeout=600):
    """`replywatch replay --format json [--appeals]` → (report, appeals list or None)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [BIN, "replay", "--config", config, "--format", "json"]
        out = os.path.join(tmp, "appeals.ndjson")
        if with_appeals:
            args += ["--appeals", out]
        p = subprocess.run(args + list(inputs), capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"replay exited {p.returncode}: {p.stderr}")
        report = json.loads(p.stdout)
        appeals = None
        if with_appeals:
            with open(out, encoding="utf-8") as f:
                appeals = [json.loads(line) for line in f]
        return report, appeals


# ---------------------------------------------------------------------------
# configuration

def write_config(path, agencies, horizon_secs=86400, daemon=None, connectors=None):
    """Writes a configuration. JSON is YAML, so the document is written as JSON."""
    doc = {"horizon_secs": horizon_secs, "agencies": [a.config() for a in agencies]}
    if daemon is not None:
        doc["daemon"] = daemon
    if connectors is not None:
        doc["connectors"] = connectors
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return path


def daemon_section(data_dir, **overrides):
    # A one-second lateness bound: counters are final a second after the watermark passes,
    # so the tests need not wait the default five minutes.
    d = {"listen": "127.0.0.1:0", "data_dir": data_dir, "snapshot_interval_secs": 60,
         "expiry_tick_secs": 1, "lateness_secs": 1}
    d.update(overrides)
    return d


def export_connector(directory, name="exports"):
    return {"name": name, "type": "telegram_export", "directory": directory,
            "poll_interval_secs": 1}


# ---------------------------------------------------------------------------
# export generator

CHANNEL_BASE = 1000000000000  # Bot API id of a supergroup or channel: -(CHANNEL_BASE + bare)


class AgencySpec:
    """One agency: its discussion group, its linked channel and its officials."""

    def __init__(self, index, agency_id=None, timezone="Asia/Almaty", chats=1):
        self.index = index
        self.id = agency_id or f"agency_{index}"
        self.name = f"Агентство №{index}"
        self.timezone = timezone
        # Bare ids of its discussion groups (Telegram Desktop's `id` of a supergroup).
        self.chat_bares = [1800000000 + index * 1000 + k for k in range(chats)]
        self.chat_bare = self.chat_bares[0]
        self.channel_bare = 1700000000 + index * 1000
        # (user id, role, branch)
        self.officials = [
            (5000000 + index * 100 + k, role, branch)
            for k, (role, branch) in enumerate([("press_office", "central"),
                                                 ("deputy", "central"),
                                                 ("regional_director", "north"),
                                                 ("specialist", "north"),
                                                 ("specialist", "")])]

    @property
    def chat_id(self):
        return -(CHANNEL_BASE + self.chat_bare)

    def chat(self, k):
        """The same agency seen through its k-th discussion group."""
        c = copy.copy(self)
        c.chat_bare = self.chat_bares[k]
        return c

    def config(self):
        accounts = [{"source": "telegram", "id": -(CHANNEL_BASE + self.channel_bare),
                     "role": "channel"}]
        for uid, role, branch in self.officials:
            a = {"source": "telegram", "id": uid, "role": role, "name": f"Official {uid}"}
            if branch:
                a["branch"] = branch
            accounts.append(a)
        return {
            "id": self.id, "name": self.name, "timezone": self.timezone,
            "business_hours": {d: ["09:00-13:00", "14:00-18:00"]
                               for d in ("mon", "tue", "wed", "thu", "fri")}
            | {"sat": ["10:00-14:00"], "sun": []},
            "target_business_secs": 3 * HOUR,
            "conversations": [{"source": "telegram", "id": -(CHANNEL_BASE + b)}
                              for b in self.chat_bares],
            "accounts": accounts,
        }


class ChatGen:
    """Builds one chat's messages on a time line, then numbers them in time order."""

    def __init__(self, spec, rng):
        self.spec = spec
        self.rng = rng
        self.protos = []  # [time, seq, fields]; fields may hold "reply_to": proto index
        self.rejected = {}

    def add(self, t, from_id=None, reply_to=None, kind="message", **extra):
        fields = {"type": kind, "from_id": from_id}
        if reply_to is not None:
            fields["reply_to"] = reply_to
        fields.update(extra)
        self.protos.append([int(t), len(self.protos), fields])
        return len(self.protos) - 1

    def reject(self, t, reason):
        """A malformed message the parser must skip and count under `reason`."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        return self.add(t, f"user{self.rng.randint(10**6, 10**7)}", malformed=reason)

    def messages(self, first_id=1):
        """The messages in id order (= time order), as Telegram Desktop writes them."""
        order = sorted(range(len(self.protos)), key=lambda i: (self.protos[i][0], i))
        ids = {}
        next_id = first_id
        for i in order:
            ids[i] = next_id
            next_id += 1 + (1 if self.rng.random() < 0.02 else 0)  # deleted messages leave gaps
        out = []
        for i in order:
            t, _, f = self.protos[i]
            m = {"id": ids[i], "type": f["type"],
                 "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)),
                 "date_unixtime": str(t)}
            if f["type"] == "service":
                m["actor"] = "someone"
                m["actor_id"] = f["from_id"]
                m["action"] = "join_group_by_link"
            else:
                m["from"] = "x"
                m["from_id"] = f["from_id"]
            if "reply_to" in f:
                m["reply_to_message_id"] = ids[f["reply_to"]]
            if "forwarded_from" in f:
                m["forwarded_from"] = f["forwarded_from"]
            m["text"] = f.get("text", "")
            m["text_entities"] = []
            bad = f.get("malformed")
            if bad == "bad_id":
                m["id"] = f"x{ids[i]}"
            elif bad == "no_export_timezone":
                del m["date_unixtime"]
            elif bad == "bad_from_id":
                m["from_id"] = "robot42"
            out.append((t, m, bad is not None))
        return out


def generate_chat(spec, rng, start, end, horizon, posts, avoid, other_officials=(),
                  max_delay=11 * HOUR, citizens=4000):
    """One agency's discussion group between `start` and `end` (unix seconds).

    `posts` channel posts, each commented on by a few citizens. An appeal (a first message
    or a follow-up) is never opened inside `avoid` = (lo, hi): that is where the daemon's
    wall clock and replay's clock (the latest message) could disagree about the horizon.
    Fates: answered after a log-uniform delay of 20 s … `max_delay` (by an official, the
    group itself or, rarely, too late: after the horizon), never answered, joined by a
    second message, followed up after the answer. Also noise: citizens replying to each
    other, officials of other agencies, service messages, malformed messages.
    """
    g = ChatGen(spec, rng)
    lo, hi = avoid
    channel = f"channel{spec.channel_bare}"
    group = f"channel{spec.chat_bare}"  # anonymous admins post as the group itself
    span = end - start

    def ok(t):
        return t < end and not (lo <= t <= hi)

    def delay():
        return int(math.exp(rng.uniform(math.log(20), math.log(max_delay))))

    def official():
        r = rng.random()
        if r < 0.08:
            return group
        if r < 0.12:
            return channel
        return f"user{rng.choice(spec.officials)[0]}"

    def citizen():
        return f"user{10**6 + spec.index * 10**5 + rng.randrange(citizens)}"

    def answer_round(parent, t_parent, author, allow_followup):
        """Decides the fate of the appeal opened by `parent` at `t_parent`."""
        if rng.random() < 0.15:  # the citizen insists before any answer: joins the appeal
            t_join = t_parent + rng.randint(30, 1800)
            if t_join < end:
                parent = g.add(t_join, author, reply_to=parent)
                t_parent = t_join
        fate = rng.random()
        if fate < 0.62:
            t_ans = t_parent + delay()
        elif fate < 0.66:
            t_ans = t_parent + horizon + rng.randint(HOUR, 6 * HOUR)  # after the horizon
        else:
            return  # never answered
        if t_ans >= end:
            return
        ans = g.add(t_ans, official(), reply_to=parent)
        if rng.random() < 0.1 and other_officials:  # another agency's official: not an answer
            t_o = t_parent + rng.randint(10, 600)
            if t_o < end:
                g.add(t_o, f"user{rng.choice(other_officials)}", reply_to=parent)
        if allow_followup and rng.random() < 0.3:
            t_f = t_ans + rng.randint(60, 3 * HOUR)
            if ok(t_f):
                f = g.add(t_f, author, reply_to=ans)
                answer_round(f, t_f, author, allow_followup=False)

    for p in range(posts):
        tp = start + int(span * (p + rng.random()) / posts)
        if tp >= end:
            continue
        post = g.add(tp, channel, forwarded_from="channel")
        for _ in range(rng.randint(1, 6)):
            t_a = tp + rng.randint(60, 4 * HOUR)
            if not ok(t_a):
                continue
            who = citizen()
            appeal = g.add(t_a, who, reply_to=post)
            if rng.random() < 0.1:  # another citizen replies to it: ignored
                t_c = t_a + rng.randint(10, 900)
                if t_c < end:
                    g.add(t_c, citizen(), reply_to=appeal)
            answer_round(appeal, t_a, who, allow_followup=True)
        if rng.random() < 0.2:
            g.add(tp + rng.randint(1, 600), citizen(), kind="service")
        if rng.random() < 0.03:
            g.reject(tp + rng.randint(1, 600), rng.choice(
                ["bad_id", "no_export_timezone", "bad_from_id"]))
    for reason in ("bad_id", "no_export_timezone", "bad_from_id"):  # at least one of each
        g.reject(rng.randint(start, end - 1), reason)
    # Pin replay's clock: the latest message of the chat is at `end`.
    g.add(end, citizen(), kind="service")
    return g


def export_doc(spec, messages):
    return {"name": spec.name, "type": "public_supergroup", "id": spec.chat_bare,
            "messages": messages}


def write_json_atomic(path, doc):
    """Writes then renames, so the watcher never sees a half-written file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


class Fixture:
    """A generated data set: agencies, export files, counts."""

    def __init__(self):
        self.agencies = []
        self.files = []
        self.file_events = {}  # path → messages in it that parse
        self.messages = 0
        self.rejected = {}
        self.clock = 0

    @property
    def events(self):
        """Messages that parse (what the connector delivers as events)."""
        return self.messages - sum(self.rejected.values())


def avoid_band(now, horizon):
    """Appeal open times at which the horizon would fall between replay's clock (the
    latest message, a few minutes before `now`) and the daemon's wall clock during the
    test (up to an hour after `now`): [now − horizon − 1 h, now − horizon + 1 h]."""
    return (now - horizon - HOUR, now - horizon + HOUR)


def make_fixture(directory, agencies, now, span, horizon, posts_per_chat, seed,
                 slice_secs=None, end_gap=600, max_delay=11 * HOUR):
    """Generates each agency's chats over [now − span, now − end_gap] and writes them under
    `directory`: one file per chat, or with `slice_secs` (seconds, or a function of the
    random generator giving each slice's length) one file per chat and time slice, named by
    the slice's start so that name order is time order across chats."""
    rng = random.Random(seed)
    fx = Fixture()
    fx.agencies = agencies
    end = now - end_gap
    start = now - span
    fx.clock = end
    others = {a.id: [uid for b in agencies if b is not a for uid, _, _ in b.officials]
              for a in agencies}
    def write(path, spec, part):
        write_json_atomic(path, export_doc(spec, [m for _, m, _ in part]))
        fx.files.append(path)
        fx.file_events[path] = sum(1 for _, _, bad in part if not bad)

    for agency in agencies:
        for k in range(len(agency.chat_bares)):
            spec = agency.chat(k)
            name = spec.id if k == 0 else f"{spec.id}_{k}"
            g = generate_chat(spec, rng, start, end, horizon, posts_per_chat,
                              avoid_band(now, horizon), others[spec.id], max_delay=max_delay)
            msgs = g.messages()
            fx.messages += len(msgs)
            for reason, n in g.rejected.items():
                fx.rejected[reason] = fx.rejected.get(reason, 0) + n
            if slice_secs is None:
                write(os.path.join(directory, name, "result.json"), spec, msgs)
                continue
            # Slice boundaries: fixed, or random lengths within (shortest, longest).
            bounds = [start]
            while bounds[-1] <= end:
                step = slice_secs if isinstance(slice_secs, int) else slice_secs(rng)
                bounds.append(bounds[-1] + step)
            i = 0
            for lo_t, hi_t in zip(bounds, bounds[1:]):
                part = []
                while i < len(msgs) and msgs[i][0] < hi_t:
                    part.append(msgs[i])
                    i += 1
                if part:
                    # The slice's start in the name: name order is time order, across chats.
                    write(os.path.join(directory, f"{lo_t:011d}_{name}.json"), spec, part)
    fx.files.sort()
    return fx


# ---------------------------------------------------------------------------
# comparisons

def appeal_key(a):
    """What must agree between replay's appeals and the daemon's /api/v1/appeals."""
    return (a["agency"], a["conversation"], a["opened_message"], a["status"], a["kind"],
            a.get("reply_seconds"), a.get("business_reply_seconds"))


def rel_close(a, b, rel):
    if a is None or b is None:
        return a is None and b is None
    if a == b:
        return True
    return abs(a - b) <= rel * max(abs(a), abs(b))


def counters_by_agency_kind(metrics):
    """{(agency, kind): (opened, answered, unanswered)} summed over sources."""
    out = {}
    for i, name in enumerate(("replywatch_appeals_opened_total",
                              "replywatch_appeals_answered_total",
                              "replywatch_appeals_unanswered_total")):
        for labels, v in samples(metrics, name):
            key = (labels["agency"], labels["kind"])
            row = out.setdefault(key, [0, 0, 0])
            row[i] += v
    return {k: tuple(v) for k, v in out.items()}


def open_by_agency(metrics):
    out = {}
    for labels, v in samples(metrics, "replywatch_appeals_open"):
        out[labels["agency"]] = out.get(labels["agency"], 0) + v
    return out


def appeals_all(daemon, page=1000, **params):
    """Every appeal /api/v1/appeals lists (following next_cursor), in its order."""
    out, cursor = [], None
    while True:
        q = dict(params, limit=page)
        if cursor is not None:
            q["cursor"] = cursor
        body = daemon.json("/api/v1/appeals?" + urllib.parse.urlencode(q), timeout=60)
        out.extend(body["appeals"])
        cursor = body["next_cursor"]
        if cursor is None:
            return out


def rejected_by_reason(metrics):
    return {l["reason"]: v for l, v in samples(metrics, "replywatch_events_rejected_total")}


class Stepper:
    """Runs a process in small steps: SIGCONT, `run` seconds, SIGSTOP, check. Between steps
    the process is stopped, so a condition seen then (a snapshot written, say) still holds
    when we act on it. Everything in the process (connector threads, timers, the HTTP
    server) runs as on a CPU starved by a cgroup quota: slower, and otherwise the same."""

    def __init__(self, run=0.003, pause=0.05):
        self.run, self.pause = run, pause
        self.pid = None
        self.steps = 0

    def attach(self, proc):
        """For Daemon.start(on_spawn=...): stops the process as soon as it exists."""
        self.pid = proc.pid
        os.kill(self.pid, signal.SIGSTOP)

    def step(self):
        os.kill(self.pid, signal.SIGCONT)
        time.sleep(self.run)
        os.kill(self.pid, signal.SIGSTOP)
        self.steps += 1
        time.sleep(self.pause)

    def step_until(self, predicate, timeout, what="condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s ({self.steps} steps) "
                                     f"waiting for {what}")
            self.step()

    def release(self):
        """Lets the process run freely again."""
        try:
            os.kill(self.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


class TempDir:
    """A temporary directory kept on failure when REPLYWATCH_KEEP_TMP is set."""

    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def cleanup(self):
        if os.environ.get("REPLYWATCH_KEEP_TMP"):
            print(f"kept {self.path}")
            return
        shutil.rmtree(self.path, ignore_errors=True)
