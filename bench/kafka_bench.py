#!/usr/bin/env python3
"""kafka_bench — replywatch's Kafka bus end to end, on one real broker (scripts/kafka.sh).

    python3 bench/kafka_bench.py --measure all --events 3000000 --runs 3

Three measurements (bench/README.md, "kafka_bench"):

throughput  A large normalized-event history (history_gen's, repeated over fresh
            conversation ids, cached under --cache) is linked into the ndjson connector's
            directory once the daemon is ready: ndjson → <prefix>.events → pair →
            <prefix>.appeals → aggregate. Timed until every event was received and both
            stages' consumer lag is 0; also until every event was received (ingest only).
            CPU of the daemon and of the broker JVM from /proc/PID/stat, and the daemon's
            busiest threads from /proc/PID/task/*/stat.
pair        After a throughput run the daemon is killed (kill -9: no shutdown checkpoint,
            and none is due before checkpoint_interval_secs = 60) and a second daemon with a
            new group_id, the same topic_prefix and no connectors consumes the filled events
            topic from the beginning: records/s (and events/s) from the pair lag over time.
latency     A writer thread appends 10,000 events/s to an ndjson file (fresh message ids;
            citizen messages, official answers to earlier ones, service messages). A probe
            agency gets 20 appeals/s, each answered 0.5 s later; for every probe answer the
            wall time it was written, the time /api/v1/appeals (polled every 20 ms) first
            lists its appeal as answered, and the time the agency's
            replywatch_appeals_answered_total (polled every 250 ms) counts it final.

Standard library plus the e2e helpers (tests/e2e); PyYAML for the configuration.
"""
import argparse
import collections
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
os.environ.setdefault("REPLYWATCH_SOURCE", SRC)
os.environ.setdefault("REPLYWATCH_BIN", os.path.join(SRC, "build-bench", "replywatch"))
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
import helpers as h  # noqa: E402
import history_gen as hg  # noqa: E402
import kafka_helpers as kh  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
STRIDE = 10**9          # copy k of the base history: conversation id − k·STRIDE
PARTITIONS = 6


# ---------------------------------------------------------------------------
# measuring

def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _stat_fields(path):
    with open(path) as f:
        text = f.read()
    close = text.rindex(")")
    return text[text.index("(") + 1:close], text[close + 2:].split()


def cpu(pid):
    """(user, system) CPU seconds of a process."""
    _, f = _stat_fields(f"/proc/{pid}/stat")
    return int(f[11]) / CLK, int(f[12]) / CLK


def threads_cpu(pid):
    """{tid: (comm, CPU seconds)} of a process's threads."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm, f = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            continue
        out[int(tid)] = (comm, (int(f[11]) + int(f[12])) / CLK)
    return out


def thread_roles(pid):
    """{tid: role} from one gdb backtrace of every thread (stops the process ~1 s).
    Stage runner threads are told apart by creation order: pair starts before aggregate,
    and each stage's librdkafka threads are created just before its runner thread."""
    try:
        p = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 40"],
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    roles, tid = {}, None
    marks = [("StageRunner::run", "stage"), ("IngestProducer::poll_loop", "ingest producer poll"),
             ("probe_loop", "metadata probe"), ("StatsView", "agency-stats reader"),
             ("Runner::loop", "connector"), ("Tailer::poll", "connector"),
             ("rd_kafka_broker_thread_main", "rdkafka broker"),
             ("rd_kafka_thread_main", "rdkafka main"), ("io_context", "io (HTTP, ticks)"),
             ("main", "main")]
    frames = {}
    for line in p.stdout.splitlines():
        if line.startswith("Thread ") and "(LWP " in line:
            tid = int(re.search(r"LWP (\d+)", line).group(1))
            frames[tid] = []
        elif tid is not None and line.startswith("#"):
            frames[tid].append(line)
    for t, fr in frames.items():
        text = "\n".join(fr)
        for needle, role in marks:
            if needle in text:
                roles[t] = role
                break
    stages = sorted(t for t, r in roles.items() if r == "stage")
    if len(stages) >= 2:
        roles[stages[0]] = "pair stage"
        roles[stages[1]] = "aggregate stage"
    return roles


class Progress:
    """One /metrics sample: what the benchmark follows."""

    def __init__(self, daemon):
        text = daemon.metrics_text()
        m = h.parse_metrics(text)
        self.received = sum(v for _, v in h.samples(m, "replywatch_connector_events_received_total"))
        self.lag = {"pair": {}, "aggregate": {}}
        for labels, v in h.samples(m, "replywatch_kafka_consumer_lag"):
            self.lag.setdefault(labels["stage"], {})[labels["partition"]] = v
        self.produced = {l["client"]: v for l, v in
                         h.samples(m, "replywatch_kafka_produced_records_total")}
        self.checkpoints = {l["stage"]: v for l, v in
                            h.samples(m, "replywatch_kafka_checkpoints_total")}
        self.owned = {l["stage"]: v for l, v in h.samples(m, "replywatch_kafka_partitions_owned")}
        self.aborts = sum(v for _, v in h.samples(m, "replywatch_kafka_transaction_aborts_total"))
        self.transactions = {l["stage"]: v for l, v in
                             h.samples(m, "replywatch_kafka_transactions_total")}
        self.opened = sum(v for _, v in h.samples(m, "replywatch_appeals_opened_total"))
        self.answered = sum(v for _, v in h.samples(m, "replywatch_appeals_answered_total"))

    def stage_lag(self, stage):
        """Total lag of a stage once it owns every partition, else None."""
        lags = self.lag.get(stage, {})
        return sum(lags.values()) if len(lags) == PARTITIONS else None


def wait_owned(d, timeout=180):
    """Seconds until both stages own every partition and report its lag."""
    t0 = time.monotonic()
    while True:
        p = Progress(d)
        if all(p.owned.get(s) == PARTITIONS and p.stage_lag(s) is not None
               for s in ("pair", "aggregate")):
            return time.monotonic() - t0
        if not d.alive():
            raise AssertionError("daemon died: " + d.stderr()[-3000:])
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"stages own {p.owned} partitions after {timeout} s")
        time.sleep(0.1)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, q):
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


# ---------------------------------------------------------------------------
# the history

class History:
    def __init__(self, path, config, events, base_events, copies):
        self.path, self.config, self.events = path, config, events
        self.base_events, self.copies = base_events, copies


def make_history(n, seed, cache, order="time"):
    """n normalized events: history_gen's history (16 conversations, 28 days, ≈250,000
    events, in time order) repeated over fresh conversation ids (copy k: id − k·10⁹, in the
    config too), one copy after another. With order="conversation" each copy's events are
    stably sorted by conversation (the same events; each conversation's in its order).
    Cached in `cache` by (n, seed, order)."""
    os.makedirs(cache, exist_ok=True)
    suffix = "" if order == "time" else f"-{order}"
    path = os.path.join(cache, f"history-{n}-s{seed}{suffix}.ndjson")
    meta_path = path + ".meta.json"
    if os.path.exists(path) and os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        return History(path, meta["config"], meta["events"], meta["base_events"], meta["copies"])
    t0 = time.monotonic()
    config, base = hg.generate(seed=seed, days=28, appeals_per_day=2500, conversations=16,
                               now=int(time.time()))
    t_gen = time.monotonic() - t0
    copies = max(1, math.ceil(n / len(base)))
    templates = []
    for e in base:
        c = e["conversation"]
        d = dict(e)
        d["conversation"] = "\x00"
        pre, post = json.dumps(d, ensure_ascii=False).split('"\\u0000"')
        templates.append((pre, int(c), isinstance(c, str), post))
    if order == "conversation":
        templates.sort(key=lambda x: x[1])   # stable: each conversation keeps its order
    written = 0
    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        for k in range(copies):
            off = k * STRIDE
            lines = []
            for pre, c, quoted, post in templates[:n - written]:
                v = c - off
                lines.append(f'{pre}"{v}"{post}\n' if quoted else f"{pre}{v}{post}\n")
            written += len(lines)
            f.write("".join(lines))
    os.replace(tmp, path)
    for agency in config["agencies"]:
        convs = agency["conversations"]
        agency["conversations"] = [{"source": "telegram", "id": c["id"] - k * STRIDE}
                                   for k in range(copies) for c in convs]
    with open(meta_path, "w") as f:
        json.dump({"config": config, "events": written, "base_events": len(base),
                   "copies": copies}, f)
    print(f"history: {written:,} events ({len(base):,} generated in {t_gen:.1f} s, "
          f"{copies} copies), {os.path.getsize(path) / 1e6:.0f} MB in "
          f"{time.monotonic() - t0:.1f} s → {path}", flush=True)
    return History(path, config, written, len(base), copies)


# ---------------------------------------------------------------------------
# broker and daemons

def bus(cluster, prefix, group, instance, commit_ms):
    b = kh.bus_section(cluster, prefix, instance, group_id=group, partitions=PARTITIONS,
                       checkpoint_interval_secs=60, commit_interval_ms=commit_ms,
                       stats_interval_secs=5)
    b.pop("rdkafka")  # production: librdkafka's own session and heartbeat timeouts
    return b


def daemon_config(work, name, config, bus_section, connectors, **daemon):
    data = os.path.join(work, f"{name}.data")
    os.makedirs(data, exist_ok=True)
    path = os.path.join(work, f"{name}.yaml")
    extra = {"daemon": h.daemon_section(data, **daemon), "bus": bus_section}
    if connectors:
        extra["connectors"] = connectors
    hg.write_config(path, config, extra)
    return path, data


def broker_pid(cluster):
    with open(os.path.join(cluster.dir, "node1", "pid")) as f:
        return int(f.read())


def top_threads(pid, before, after, roles):
    """[(CPU seconds, tid, comm, role)] of every thread, busiest first."""
    rows = []
    for tid, (comm, c) in after.items():
        d = c - before.get(tid, (comm, 0.0))[1]
        rows.append((d, tid, comm, roles.get(tid, "")))
    rows.sort(reverse=True)
    return rows


def print_threads(rows, wall, n=6):
    for dcpu, tid, comm, role in rows[:n]:
        print(f"      thread {tid:>7} {comm:<16} {role:<22} {dcpu:6.2f} s "
              f"({100 * dcpu / wall:4.0f} % of the wall)", flush=True)
    rdk = sum(r[0] for r in rows if r[2].startswith("rdk:"))
    own = sum(r[0] for r in rows if not r[2].startswith("rdk:"))
    print(f"      librdkafka threads (all clients) {rdk:.2f} s, replywatch's own threads "
          f"{own:.2f} s", flush=True)


# ---------------------------------------------------------------------------
# 1. throughput

def run_throughput(cluster, hist, args, commit_ms, tag, keep=False):
    work = os.path.join(args.workdir, f"tp-{tag}")
    inbox = os.path.join(work, "inbox")
    os.makedirs(inbox, exist_ok=True)
    prefix = f"bench-{tag}"
    path, data = daemon_config(work, "d", hist.config, bus(cluster, prefix, prefix, "bench",
                                                           commit_ms),
                               [{"name": "events", "type": "ndjson", "path": inbox,
                                 "poll_interval_secs": 1}])
    d = h.Daemon(path, data)
    t_spawn = time.monotonic()
    d.start(ready_timeout=120)
    t_ready = time.monotonic() - t_spawn
    t_owned = wait_owned(d)
    pid, bpid = d.proc.pid, broker_pid(cluster)
    c0, b0, th0, load0 = cpu(pid), cpu(bpid), threads_cpu(pid), loadavg()
    t0 = time.monotonic()
    os.link(hist.path, os.path.join(inbox, "history.ndjson"))
    first = ingest = done = None
    n = hist.events
    last = None
    while True:
        p = Progress(d)
        t = time.monotonic() - t0
        if first is None and p.received > 0:
            first = (t, p.received)
        if ingest is None and p.received >= n:
            ingest = (t, cpu(pid), p.produced.get("ingest", 0))
        pl, al = p.stage_lag("pair"), p.stage_lag("aggregate")
        if p.received >= n and pl == 0 and al == 0:
            done = (t, cpu(pid), cpu(bpid))
            last = p
            break
        if not d.alive():
            raise AssertionError("daemon died: " + d.stderr()[-3000:])
        if t > args.timeout:
            raise AssertionError(f"not done after {args.timeout} s: received {p.received:,} "
                                 f"of {n:,}, lag pair {pl} aggregate {al}")
        time.sleep(args.sample_secs)
    th1, load1 = threads_cpu(pid), loadavg()
    roles = thread_roles(pid) if args.thread_roles else {}
    t_done, c1, b1 = done
    t_ing, ci, ingest_records = ingest
    r = {
        "tag": tag, "commit_ms": commit_ms, "events": n,
        "wall": t_done, "first": first[0], "ingest_wall": t_ing,
        "rate": n / t_done,
        # from the first sample that saw events: leaves out the wait for the first poll
        "rate_active": (n - first[1]) / (t_done - first[0]),
        "ingest_rate": (n - first[1]) / max(1e-9, t_ing - first[0]),
        "daemon_cpu": (c1[0] - c0[0], c1[1] - c0[1]),
        "ingest_cpu": (ci[0] - c0[0], ci[1] - c0[1]),
        "broker_cpu": (b1[0] - b0[0], b1[1] - b0[1]),
        "event_records": ingest_records,
        "appeal_records": last.produced.get("pair", 0),
        "pair_txns": last.transactions.get("pair", 0),
        "aggregate_txns": last.transactions.get("aggregate", 0),
        "checkpoints": last.checkpoints, "aborts": last.aborts,
        "opened": last.opened, "answered": last.answered,
        "threads": top_threads(pid, th0, th1, roles), "load": (load0, load1),
        "daemon": d, "prefix": prefix, "work": work, "ready": t_ready, "owned": t_owned,
    }
    print(f"  throughput {tag}: {n:,} events in {t_done:.2f} s = {r['rate']:,.0f} events/s "
          f"({r['rate_active']:,.0f}/s from the first events seen at {first[0]:.2f} s); "
          f"ingest {t_ing:.2f} s = {r['ingest_rate']:,.0f}/s; daemon CPU "
          f"{sum(r['daemon_cpu']):.1f} s ({r['daemon_cpu'][0]:.1f} user), broker CPU "
          f"{sum(r['broker_cpu']):.1f} s; {ingest_records:,.0f} event records "
          f"({n / max(1, ingest_records):.2f} events each), {r['appeal_records']:,.0f} appeals "
          f"records, {r['pair_txns']:.0f}/{r['aggregate_txns']:.0f} transactions, "
          f"checkpoints {dict(last.checkpoints)}, aborts {last.aborts:.0f}; start: ready after "
          f"{t_ready:.1f} s, partitions owned {t_owned:.1f} s later; "
          f"load {load0} → {load1}", flush=True)
    print_threads(r["threads"], t_done)
    if not keep:
        d.stop(timeout=120)
        r["daemon"] = None
    return r


# ---------------------------------------------------------------------------
# 2. the pair stage consuming a filled events topic

def run_pair(cluster, hist, args, first, tag):
    """`first`: a throughput result whose daemon is still running; it is killed here."""
    d1 = first["daemon"]
    p = Progress(d1)
    if p.checkpoints.get("pair", 0):
        print(f"  note: the filling daemon wrote {p.checkpoints['pair']:.0f} pair checkpoints; "
              "the new group restores them and consumes only what follows", flush=True)
    d1.kill()   # no shutdown checkpoint: the new group starts from the beginning
    work = os.path.join(args.workdir, f"pair-{tag}")
    os.makedirs(work, exist_ok=True)
    group = first["prefix"] + "-pair2"
    path, data = daemon_config(work, "d", hist.config,
                               bus(cluster, first["prefix"], group, "pairbench",
                                   first["commit_ms"]), None)
    load0 = loadavg()
    d = h.Daemon(path, data)
    d.start(ready_timeout=120)
    pid = d.proc.pid
    c0, b0, th0 = cpu(pid), cpu(broker_pid(cluster)), threads_cpu(pid)
    t0 = time.monotonic()
    series = []   # (t, pair lag, aggregate lag)
    while True:
        q = Progress(d)
        t = time.monotonic() - t0
        pl = q.stage_lag("pair")
        if pl is not None:
            series.append((t, pl, q.stage_lag("aggregate")))
            if pl == 0 and series[0][1] > 0:
                break
        if t > args.timeout:
            raise AssertionError(f"pair stage not caught up after {args.timeout} s (lag {pl})")
        time.sleep(args.sample_secs)
    c1, b1, th1, load1 = cpu(pid), cpu(broker_pid(cluster)), threads_cpu(pid), loadavg()
    roles = thread_roles(pid) if args.thread_roles else {}
    total = max(l for _, l, _ in series)
    # The rate over the middle of the curve (10 %–90 % consumed): the start (assignment,
    # reading the changelog) and the tail are left out.
    lo = next(s for s in series if s[1] <= 0.9 * total)
    hi = next(s for s in series if s[1] <= 0.1 * total)
    mid_rate = (lo[1] - hi[1]) / max(1e-9, hi[0] - lo[0])
    t_end = series[-1][0]
    per_record = hist.events / max(1, first["event_records"])
    r = {"tag": tag, "records": total, "wall": t_end, "first_lag_at": series[0][0],
         "rate": total / t_end, "mid_rate": mid_rate, "events_per_record": per_record,
         "daemon_cpu": (c1[0] - c0[0], c1[1] - c0[1]),
         "broker_cpu": (b1[0] - b0[0], b1[1] - b0[1]),
         "threads": top_threads(pid, th0, th1, roles), "load": (load0, load1)}
    print(f"  pair {tag}: {total:,.0f} records (lag first seen at {series[0][0]:.2f} s) consumed "
          f"in {t_end:.2f} s = {r['rate']:,.0f} records/s; 10–90 %: {mid_rate:,.0f} records/s "
          f"≈ {mid_rate * per_record:,.0f} events/s ({per_record:.2f} events/record); daemon CPU "
          f"{sum(r['daemon_cpu']):.1f} s, broker {sum(r['broker_cpu']):.1f} s; "
          f"aggregate lag at the end {series[-1][2]}; load {load0} → {load1}", flush=True)
    print_threads(r["threads"], t_end)
    d.stop(timeout=120)
    return r


# ---------------------------------------------------------------------------
# 3. latency

LIVE_BASE = -1003000000000
PROBE_CONV = -1003999999999


def live_config(n_convs, seed=5):
    """history_gen's agencies with `n_convs` live conversations dealt round-robin, plus an
    agency `probe` with one conversation and one official, the sampled appeals' own."""
    config, _ = hg.generate(seed=seed, days=1, appeals_per_day=4, conversations=4)
    agencies = config["agencies"]
    for a in agencies:
        a["conversations"] = []
    convs = []
    for i in range(n_convs):
        a = agencies[i % len(agencies)]
        cid = LIVE_BASE - i
        a["conversations"].append({"source": "telegram", "id": cid})
        officials = [x["id"] for x in a["accounts"] if x["role"] != "channel"]
        convs.append((cid, officials))
    probe = json.loads(json.dumps(agencies[-1]))
    probe["id"], probe["name"] = "probe", "Probe"
    probe.pop("business_hours", None)
    probe.pop("holidays", None)
    probe["conversations"] = [{"source": "telegram", "id": PROBE_CONV}]
    probe["accounts"] = [{"source": "telegram", "id": 5999000001, "role": "press_office",
                          "name": "probe official"}]
    agencies.append(probe)
    return config, convs, 5999000001


class Writer(threading.Thread):
    """Appends `rate` events/s to `path` in 10 ms ticks: 30 % citizens opening appeals
    (top-level messages), 27 % officials answering one written 0.2–2 s earlier, the rest
    service messages; on top, the probe conversation: an appeal every 50 ms, answered 0.5 s
    later. Records the wall time after each tick's write + flush."""

    TICK = 0.01

    def __init__(self, path, rate, duration, convs, probe_official):
        super().__init__(daemon=True)
        self.path, self.rate, self.duration = path, rate, duration
        self.convs, self.probe_official = convs, probe_official
        self.samples = []        # [opened_at, appeal id, answer id, written wall time]
        self.lock = threading.Lock()
        self.written = 0
        self.behind = 0.0
        self.started = self.ended = None
        self.stop = False

    def run(self):
        ids = {c: 0 for c, _ in self.convs}
        ids[PROBE_CONV] = 0
        waiting = {c: collections.deque() for c, _ in self.convs}
        probe_due = collections.deque()   # (tick due, opened_at, appeal id)
        per_tick = int(round(self.rate * self.TICK))
        citizen = 0
        j = 0
        f = open(self.path, "a", encoding="utf-8")
        start = time.monotonic()
        self.started = time.time()
        k = 0
        while not self.stop and time.monotonic() - start < self.duration:
            now = time.time()
            t = int(now)
            lines = []
            new_samples = []
            if k % 5 == 0:               # a probe appeal every 50 ms
                ids[PROBE_CONV] += 1
                citizen += 1
                m = ids[PROBE_CONV]
                lines.append(f'{{"source":"telegram","conversation":"{PROBE_CONV}",'
                             f'"message_id":"{m}","author":"{600000000 + citizen}",'
                             f'"time":{t}}}\n')
                probe_due.append((k + 50, t, m))
            while probe_due and probe_due[0][0] <= k:   # its answer 0.5 s later
                _, opened_at, appeal = probe_due.popleft()
                ids[PROBE_CONV] += 1
                m = ids[PROBE_CONV]
                lines.append(f'{{"source":"telegram","conversation":"{PROBE_CONV}",'
                             f'"message_id":"{m}","reply_to":"{appeal}",'
                             f'"author":"{self.probe_official}","time":{t}}}\n')
                new_samples.append([opened_at, appeal, m, None])
            for _ in range(per_tick - len(lines)):
                conv, officials = self.convs[j % len(self.convs)]
                kind = j % 100
                j += 1
                ids[conv] += 1
                m = ids[conv]
                w = waiting[conv]
                if kind < 27 and w and now - w[0][1] >= 0.2:
                    appeal, _ = w.popleft()
                    lines.append(f'{{"source":"telegram","conversation":"{conv}",'
                                 f'"message_id":"{m}","reply_to":"{appeal}",'
                                 f'"author":"{officials[m % len(officials)]}","time":{t}}}\n')
                elif kind < 57:
                    citizen += 1
                    lines.append(f'{{"source":"telegram","conversation":"{conv}",'
                                 f'"message_id":"{m}","author":"{600000000 + citizen}",'
                                 f'"time":{t}}}\n')
                    w.append((m, now))
                    while w and now - w[0][1] > 2.0:   # too old: stays unanswered
                        w.popleft()
                else:
                    lines.append(f'{{"source":"telegram","conversation":"{conv}",'
                                 f'"message_id":"{m}","kind":"service","time":{t}}}\n')
            f.write("".join(lines))
            f.flush()
            wrote = time.time()
            for s in new_samples:
                s[3] = wrote
            with self.lock:
                self.samples.extend(new_samples)
                self.written += len(lines)
            k += 1
            sleep = start + k * self.TICK - time.monotonic()
            if sleep > 0:
                time.sleep(sleep)
            else:
                self.behind = max(self.behind, -sleep)
        f.close()
        self.ended = time.time()


def run_latency(cluster, args, commit_ms, poll_secs, tag):
    work = os.path.join(args.workdir, f"lat-{tag}")
    inbox = os.path.join(work, "inbox")
    os.makedirs(inbox, exist_ok=True)
    live = os.path.join(inbox, "live.ndjson")
    open(live, "w").close()
    config, convs, probe_official = live_config(args.live_conversations)
    prefix = f"bench-{tag}"
    path, data = daemon_config(work, "d", config, bus(cluster, prefix, prefix, "bench", commit_ms),
                               [{"name": "events", "type": "ndjson", "path": inbox,
                                 "poll_interval_secs": poll_secs}],
                               lateness_secs=args.lateness)
    d = h.Daemon(path, data)
    d.start(ready_timeout=120)
    wait_owned(d)
    pid, bpid = d.proc.pid, broker_pid(cluster)
    load0 = loadavg()
    writer = Writer(live, args.rate, args.latency_secs, convs, probe_official)
    seen = {}           # answer id → wall time the API listed it answered
    finals = []         # (wall time, probe answered_total)
    api_ms = []
    stop = threading.Event()

    def api_poll():
        while not stop.is_set():
            with writer.lock:
                out = [s for s in writer.samples if s[2] not in seen]
            if out:
                opened_at, appeal = out[0][0], out[0][1]
                q = urllib.parse.urlencode({"agency": "probe", "status": "answered",
                                            "limit": 1000,
                                            "cursor": f"{opened_at}_{PROBE_CONV}_{appeal - 1}"})
                t_req = time.time()
                try:
                    body = d.json("/api/v1/appeals?" + q)
                except Exception:
                    body = {"appeals": []}
                t_got = time.time()
                api_ms.append(1000 * (t_got - t_req))
                for a in body["appeals"]:
                    if a.get("answer_message") is not None:
                        seen.setdefault(int(a["answer_message"]), t_got)
            stop.wait(0.02)

    metrics_ms = []

    def metrics_poll():
        while not stop.is_set():
            t_req = time.time()
            try:
                text = d.metrics_text()
            except Exception:
                text = ""
            now = time.time()
            metrics_ms.append(1000 * (now - t_req))
            n = 0.0
            for line in text.splitlines():
                if line.startswith("replywatch_appeals_answered_total{") and \
                        'agency="probe"' in line:
                    n += float(line.rsplit(" ", 1)[1])
            finals.append((now, n))
            stop.wait(0.25)

    c0, b0, th0 = cpu(pid), cpu(bpid), threads_cpu(pid)
    threads = [threading.Thread(target=api_poll, daemon=True),
               threading.Thread(target=metrics_poll, daemon=True)]
    writer.start()
    for t in threads:
        t.start()
    writer.join()
    time.sleep(args.lateness + poll_secs + 5)   # let the last answers through
    stop.set()
    for t in threads:
        t.join()
    c1, b1, th1, load1 = cpu(pid), cpu(bpid), threads_cpu(pid), loadavg()
    roles = thread_roles(pid) if args.thread_roles else {}
    p = Progress(d)
    d.stop(timeout=120)
    elapsed = writer.ended - writer.started
    warm = writer.started + args.warmup
    api, fin = [], []
    samples = [s for s in writer.samples if s[3] >= warm]
    all_samples = writer.samples
    for s in samples:
        if s[2] in seen:
            api.append(seen[s[2]] - s[3])
    # Final: the k-th probe answer is counted once the counter reaches k.
    fi = 0
    for k, s in enumerate(all_samples, start=1):
        while fi < len(finals) and finals[fi][1] < k:
            fi += 1
        if fi < len(finals) and s[3] >= warm:
            fin.append(finals[fi][0] - s[3])
    r = {"tag": tag, "commit_ms": commit_ms, "poll": poll_secs, "rate": writer.written / elapsed,
         "behind": writer.behind, "samples": len(samples), "api": api, "final": fin,
         "missing_api": len(samples) - len(api), "missing_final": len(samples) - len(fin),
         "daemon_cpu": sum(c1) - sum(c0), "broker_cpu": sum(b1) - sum(b0), "elapsed": elapsed,
         "api_ms": api_ms, "threads": top_threads(pid, th0, th1, roles), "load": (load0, load1),
         "received": p.received}
    print(f"  latency {tag} (poll_interval_secs {poll_secs}, commit_interval_ms {commit_ms}, "
          f"lateness_secs {args.lateness}): wrote {writer.written:,} events in {elapsed:.1f} s "
          f"= {r['rate']:,.0f}/s (at most {1000 * writer.behind:.0f} ms behind), received "
          f"{p.received:,.0f}; {len(samples)} probe answers after the {args.warmup} s warm-up",
          flush=True)
    print(f"    answered in /api/v1/appeals: min {1000 * min(api or [float('nan')]):.0f} ms, p50 {1000 * median(api):.0f} ms, p90 "
          f"{1000 * pct(api, 0.9):.0f} ms, p99 {1000 * pct(api, 0.99):.0f} ms, max "
          f"{1000 * max(api or [float('nan')]):.0f} ms; not seen {r['missing_api']}", flush=True)
    print(f"    counted final (answered_total): min {1000 * min(fin or [float('nan')]):.0f} ms, p50 {1000 * median(fin):.0f} ms, p90 "
          f"{1000 * pct(fin, 0.9):.0f} ms, p99 {1000 * pct(fin, 0.99):.0f} ms, max "
          f"{1000 * max(fin or [float('nan')]):.0f} ms; not counted {r['missing_final']}",
          flush=True)
    print(f"    API request p50 {median(api_ms):.1f} ms, p99 {pct(api_ms, 0.99):.1f} ms, /metrics "
          f"p50 {median(metrics_ms):.1f} ms; daemon "
          f"CPU {r['daemon_cpu']:.1f} s ({100 * r['daemon_cpu'] / elapsed:.0f} % of a core), "
          f"broker {r['broker_cpu']:.1f} s ({100 * r['broker_cpu'] / elapsed:.0f} %); "
          f"load {load0} → {load1}", flush=True)
    print_threads(r["threads"], elapsed)
    return r


# ---------------------------------------------------------------------------

def summary_throughput(results):
    by = collections.defaultdict(list)
    for r in results:
        by[r["commit_ms"]].append(r)
    print("\nthroughput (medians):")
    base = None
    for commit, rs in sorted(by.items()):
        rate = median([r["rate"] for r in rs])
        base = base or rate
        print(f"  commit_interval_ms {commit:>5}: {len(rs)} runs, end to end "
              f"{rate:,.0f} events/s (runs {', '.join(format(r['rate'], ',.0f') for r in rs)}; "
              f"{rate / base:.2f}×), from the first events seen "
              f"{median([r['rate_active'] for r in rs]):,.0f}/s, ingest only "
              f"{median([r['ingest_rate'] for r in rs]):,.0f}/s; daemon CPU "
              f"{median([sum(r['daemon_cpu']) for r in rs]):.1f} s "
              f"({median([r['events'] / sum(r['daemon_cpu']) for r in rs]):,.0f} events per "
              f"CPU second), broker CPU {median([sum(r['broker_cpu']) for r in rs]):.1f} s; "
              f"goal ≥ 200,000 events/s: {'met' if rate >= 200000 else 'missed'}; load "
              f"{rs[0]['load'][0]} … {rs[-1]['load'][1]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--measure", choices=["throughput", "pair", "latency", "all"], default="all")
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--order", choices=["time", "conversation"], default="time",
                    help="throughput: the history in time order (as collected: ~1 event per "
                         "Kafka record) or grouped by conversation (up to 500 per record)")
    ap.add_argument("--sample-secs", type=float, default=0.5,
                    help="throughput and pair: /metrics polling interval (a scrape of a "
                         "full daemon costs ~80 ms of its io thread and holds the aggregate "
                         "stage's lock)")
    ap.add_argument("--runs", type=int, default=3, help="throughput runs per commit interval")
    ap.add_argument("--commit-ms", default="100,1000",
                    help="commit_interval_ms values for throughput and pair (comma separated)")
    ap.add_argument("--pair-runs", type=int, default=1,
                    help="pair measurements per commit interval (each after a throughput run)")
    ap.add_argument("--rate", type=int, default=10000, help="latency: events/s written")
    ap.add_argument("--latency-secs", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--latency-commit-ms", default="100,1000")
    ap.add_argument("--latency-runs", type=int, default=1)
    ap.add_argument("--poll-secs", default="1",
                    help="latency: ndjson poll_interval_secs values (1 is the minimum)")
    ap.add_argument("--lateness", type=int, default=1, help="latency: daemon.lateness_secs")
    ap.add_argument("--live-conversations", type=int, default=32)
    ap.add_argument("--cache", default="/tmp/kbench-cache")
    ap.add_argument("--workdir", default="/tmp/kbench")
    ap.add_argument("--keep-workdir", action="store_true")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--thread-roles", action="store_true",
                    help="name the busiest threads with one gdb backtrace after each run")
    args = ap.parse_args()
    commits = [int(x) for x in args.commit_ms.split(",")]

    if not os.path.exists(h.BIN):
        sys.exit(f"no daemon at {h.BIN}: build it (bench/README.md)")
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    print(f"kafka_bench: {h.BIN}, load {loadavg()}, {os.cpu_count()} CPUs", flush=True)
    hist = None
    if args.measure in ("throughput", "pair", "all"):
        hist = make_history(args.events, args.seed, args.cache, args.order)
    cluster = kh.Cluster(args.workdir, nodes=1)
    t_start = time.monotonic()
    try:
        cluster.start()
        print(f"broker {cluster.bootstrap} (pid {broker_pid(cluster)}), load {loadavg()}",
              flush=True)
        tp, pr, lat = [], [], []
        if args.measure in ("throughput", "pair", "all"):
            for commit in commits:
                runs = args.runs if args.measure != "pair" else args.pair_runs
                for i in range(runs):
                    want_pair = args.measure in ("pair", "all") and i >= runs - args.pair_runs
                    tag = f"c{commit}-r{i + 1}"
                    r = run_throughput(cluster, hist, args, commit, tag, keep=want_pair)
                    tp.append(r)
                    if want_pair:
                        pr.append(run_pair(cluster, hist, args, r, tag))
        if args.measure in ("latency", "all"):
            for commit in [int(x) for x in args.latency_commit_ms.split(",")]:
                for poll in [int(x) for x in args.poll_secs.split(",")]:
                    for i in range(args.latency_runs):
                        lat.append(run_latency(cluster, args, commit, poll,
                                               f"lat-c{commit}-p{poll}-r{i + 1}"))
        if tp and args.measure != "pair":
            summary_throughput(tp)
        if pr:
            print("\npair stage consume rate:")
            for r in pr:
                print(f"  {r['tag']}: {r['mid_rate']:,.0f} records/s ≈ "
                      f"{r['mid_rate'] * r['events_per_record']:,.0f} events/s (10–90 %), "
                      f"{r['rate']:,.0f} records/s overall; load {r['load'][0]} → {r['load'][1]}")
        if lat:
            print("\nlatency:")
            for r in lat:
                print(f"  {r['tag']}: API answered p50 {1000 * median(r['api']):.0f} ms / p99 "
                      f"{1000 * pct(r['api'], 0.99):.0f} ms; final p50 "
                      f"{1000 * median(r['final']):.0f} ms / p99 "
                      f"{1000 * pct(r['final'], 0.99):.0f} ms (goal: lateness_secs + 100 ms = "
                      f"{args.lateness * 1000 + 100} ms); {r['rate']:,.0f} events/s; load "
                      f"{r['load'][0]} → {r['load'][1]}")
        print(f"\ntotal {time.monotonic() - t_start:.0f} s, load {loadavg()}")
    finally:
        cluster.stop()
        if not args.keep_workdir:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
