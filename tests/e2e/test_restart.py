"""Crash and restart of `replywatch run` in the middle of a large ingest: nothing lost,
nothing counted twice.

Data: three agencies' discussion groups, ~235k messages over the last three days, horizon
one day, split into ~220 files by time slices of each chat (5 to 40 min, and one in ten
8 to 12 h long), named by the slice's start. The slicing keeps the uninterrupted run
deterministic: files are ingested in name order = time order, and while a backlog is
delivered the daemon expires appeals by the latest event time, so an appeal could only be
expired before its answer arrives if a file ingested before the answer reached past the
appeal's horizon. Answers come at most 11 h (+30 min of joining messages) after the
appeal and slices are at most 12 h long: none does (12 h < 24 h − 11.5 h). Run A,
uninterrupted, must also equal `replay` on the same files.

Runs B: fresh data directory, start, wait until a snapshot holding part of the ingest was
written (daemon.snapshot_interval_secs: 1), go on a little (1, 8 or 20 steps: work that is
lost), kill -9, restart on the same data directory, wait until done, and compare with run
A: appeal counters per agency and kind, the open gauge, rejected messages, and the whole
/api/v1/appeals listing. Also SIGTERM (drain, final snapshot) mid-ingest and after the
ingest, then restart.

This machine ingests the whole export in ~0.2 s, before the first snapshot is due. So the
daemon runs in small CPU steps until the interruption (SIGCONT, 1 ms, SIGSTOP, 100 ms
pause: see helpers.Stepper), as under a tight cgroup CPU quota: everything in it runs
slower and otherwise the same. A copy of the interrupted data directory is restored by a
probe daemon watching an empty directory, to prove the snapshot holds some but not all of
the events.
"""
import os
import shutil
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402

HORIZON = h.DAY
POSTS_PER_CHAT = 9000


def slice_length(rng):
    """Mostly short slices (one bus batch each), one in ten long (two batches): ~170 files,
    ~190 batches, three times what the bus holds in flight (64), so periodic snapshots fall
    in the middle of the ingest, some in the middle of a file."""
    if rng.random() < 0.9:
        return rng.randint(300, 40 * 60)
    return rng.randint(8 * h.HOUR, 12 * h.HOUR)


def final_state(daemon, metrics):
    return {
        "counters": h.counters_by_agency_kind(metrics),
        "open": h.open_by_agency(metrics),
        "rejected": h.rejected_by_reason(metrics),
        "appeals": sorted(h.appeals_all(daemon),
                          key=lambda a: (a["conversation"], a["opened_message"])),
    }


class Restart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.started = time.monotonic()
        cls.timings = {}
        cls.tmp = h.TempDir("rw-e2e-restart-")
        cls.addClassCleanup(cls.tmp.cleanup)
        root = cls.root = cls.tmp.path
        now = int(time.time())
        cls.specs = [h.AgencySpec(1, "akimat_almaty", "Asia/Almaty"),
                     h.AgencySpec(2, "mchs_moscow", "Europe/Moscow"),
                     h.AgencySpec(3, "hokimiyat", "Asia/Tashkent")]
        cls.exports = os.path.join(root, "exports")
        t = time.monotonic()
        cls.fx = h.make_fixture(cls.exports, cls.specs, now, 3 * h.DAY, HORIZON,
                                POSTS_PER_CHAT, seed=4242, slice_secs=slice_length)
        cls.timings["generate"] = time.monotonic() - t
        cls.report, cls.replay_appeals = h.replay(cls.config_for("replay"), cls.fx.files)

        t = time.monotonic()
        cls.a = cls.daemon_for("a")
        cls.addClassCleanup(cls.a.kill)
        cls.a.start()
        m = cls.a.wait_ingested(cls.fx.events, timeout=300)
        cls.timings["run A ingest"] = time.monotonic() - t
        cls.state_a = final_state(cls.a, m)

    @classmethod
    def tearDownClass(cls):
        print(f"\n{cls.__name__}: {cls.fx.messages} messages in {len(cls.fx.files)} files; "
              + ", ".join(f"{k} {v:.1f}s" for k, v in cls.timings.items())
              + f"; total {time.monotonic() - cls.started:.1f}s", file=sys.stderr)

    @classmethod
    def config_for(cls, name):
        data = os.path.join(cls.root, f"data-{name}")
        return h.write_config(os.path.join(cls.root, f"config-{name}.yaml"), cls.specs, HORIZON,
                              daemon=h.daemon_section(data, snapshot_interval_secs=1,
                                                      expiry_tick_secs=1),
                              connectors=[h.export_connector(cls.exports)])

    @classmethod
    def daemon_for(cls, name):
        config = cls.config_for(name)
        return h.Daemon(config, os.path.join(cls.root, f"data-{name}"))

    # -- helpers

    def assert_same_as_a(self, state, what):
        """Everything equal to run A; on failure, one message with every difference."""
        a = self.state_a
        problems = []
        for key in ("counters", "open", "rejected"):
            if state[key] != a[key]:
                diff = {k: (a[key].get(k), state[key].get(k))
                        for k in sorted(set(a[key]) | set(state[key]))
                        if a[key].get(k) != state[key].get(k)}
                problems.append(f"{key} (run A, this run): {diff}")
        got = {}
        for x in state["appeals"]:
            got.setdefault((x["conversation"], x["opened_message"]), []).append(x)
        want = {(x["conversation"], x["opened_message"]): x for x in a["appeals"]}
        twice = [v for v in got.values() if len(v) > 1]
        missing = [want[k] for k in want if k not in got]
        extra = [v[0] for k, v in got.items() if k not in want]
        changed = [(want[k], got[k][0]) for k in want if k in got and got[k][0] != want[k]]
        if twice or missing or extra or changed:
            problems.append(
                f"/api/v1/appeals: {len(twice)} listed twice, {len(missing)} missing, "
                f"{len(extra)} extra, {len(changed)} changed; e.g. twice {twice[:1]}, missing "
                f"{missing[:1]}, extra {extra[:1]}, changed (run A, this run) {changed[:2]}")
            statuses, examples = {}, {}
            for before, after in changed:
                k = (before["status"], after["status"])
                statuses[k] = statuses.get(k, 0) + 1
                examples.setdefault(k, (before, after))
            problems.append(f"status changes (run A → this run): {statuses}")
            for k, (before, after) in examples.items():
                fields = {f: (before.get(f), after.get(f)) for f in set(before) | set(after)
                          if before.get(f) != after.get(f)}
                problems.append(f"e.g. {k}: conversation {before['conversation']} message "
                                f"{before['opened_message']} opened_at {before['opened_at']}: "
                                f"{fields}")
        if problems:
            self.fail(f"{what}: differs from run A:\n  " + "\n  ".join(problems))

    def interrupted_run(self, name, extra_steps, stop, after="state.snap"):
        """Starts on a fresh data directory, in small CPU steps; once the file `after`
        exists in the data directory (the first snapshot, or http.port: the daemon is up),
        runs `extra_steps` more steps (for a crash: work that is lost and must be redone),
        `stop(daemon, stepper)`s it, checks that the state it left holds some but not all
        events, and restarts it, free-running, on the same data directory until done."""
        t = time.monotonic()
        run = 0.002
        steps = extra_steps
        lo, hi = 0, None  # step counts known to hold nothing / everything
        for attempt in range(10):
            d = self.daemon_for(f"{name}-{attempt}")
            self.addCleanup(d.kill)
            stepper = h.Stepper(run=run, pause=0.1)
            d.start(on_spawn=stepper.attach, wait=False)
            marker = os.path.join(d.data_dir, after)
            stepper.step_until(lambda: os.path.exists(marker), 300, what=after)
            for _ in range(steps):
                stepper.step()
            stop(d, stepper)
            stepper.release()
            restored = self.probe(f"{name}-{attempt}", d.data_dir)
            if 0 < restored < self.fx.events:
                break
            # The state holds none (or all) of the ingest: the exports were still
            # settling, or this machine is slower (faster) than the steps assume. Bisect
            # on the number of steps; when the bracket closes, take finer steps.
            if restored:
                hi = steps
            else:
                lo = steps
            if hi is None:
                steps = steps * 2 + 10
            elif hi - lo > 1:
                steps = (lo + hi) // 2
            else:
                run /= 2
                lo, hi, steps = 0, None, extra_steps
        else:
            self.fail(f"never stopped in the middle of the ingest (last held {restored})")
        print(f"\n  {name}: stopped after {stepper.steps} steps of {run * 1000:.1f} ms; its "
              f"state holds {restored:.0f} of {self.fx.events} events", file=sys.stderr)
        d.start()
        m = d.wait_ingested(self.fx.events, timeout=300)
        self.timings[name] = time.monotonic() - t
        return final_state(d, m)

    def probe(self, name, data_dir):
        """Events in the snapshot of `data_dir`: a copy restored by a daemon whose connector
        watches an empty directory."""
        probe_dir = os.path.join(self.root, f"probe-{name}")
        shutil.copytree(data_dir, os.path.join(probe_dir, "data"))
        empty = os.path.join(probe_dir, "empty")
        os.makedirs(empty)
        config = h.write_config(os.path.join(probe_dir, "config.yaml"), self.specs, HORIZON,
                                daemon=h.daemon_section(os.path.join(probe_dir, "data")),
                                connectors=[h.export_connector(empty)])
        p = h.Daemon(config, os.path.join(probe_dir, "data"))
        try:
            p.start()
            return h.sample(p.metrics(), "replywatch_connector_events_received_total") or 0
        finally:
            p.kill()

    @staticmethod
    def kill9(d, stepper):
        d.kill()  # SIGKILL works on a stopped process

    @staticmethod
    def sigterm(d, stepper):
        d.signal(signal.SIGTERM)
        stepper.release()
        code = d.stop(timeout=120)
        assert code == 0, f"exit code {code} after SIGTERM: {d.stderr()}"

    # -- tests

    def test_fixture_is_large_and_rich(self):
        self.assertGreaterEqual(self.fx.messages, 200000)
        self.assertGreaterEqual(len(self.fx.files), 100)
        for a in self.report["agencies"]:
            for kind in ("first", "followup"):
                s = a[kind]
                self.assertGreater(min(s["answered"], s["unanswered"], s["open"]), 0,
                                   (a["agency"], kind))

    def test_run_a_equals_replay(self):
        want = {(a["agency"], k): (a[k]["appeals"], a[k]["answered"], a[k]["unanswered"])
                for a in self.report["agencies"] for k in ("first", "followup")}
        self.assertEqual(self.state_a["counters"], want)
        self.assertEqual(self.state_a["open"],
                         {a["agency"]: a["first"]["open"] + a["followup"]["open"]
                          for a in self.report["agencies"]})
        self.assertEqual(self.state_a["rejected"],
                         {k: float(v) for k, v in self.report["rejected_messages"].items()})
        self.assertEqual({h.appeal_key(a) for a in self.state_a["appeals"]},
                         {h.appeal_key(a) for a in self.replay_appeals})

    def test_kill9_right_after_a_snapshot(self):
        self.assert_same_as_a(self.interrupted_run("kill9-early", 1, self.kill9),
                              "kill -9 one step after the first snapshot")

    def test_kill9_a_while_after_a_snapshot(self):
        self.assert_same_as_a(self.interrupted_run("kill9-mid", 8, self.kill9),
                              "kill -9 eight steps after the first snapshot")

    def test_kill9_late(self):
        self.assert_same_as_a(self.interrupted_run("kill9-late", 20, self.kill9),
                              "kill -9 twenty steps after the first snapshot")

    def test_sigterm_mid_ingest_then_restart(self):
        # The drain delivers what is queued and writes a final snapshot, usually in the
        # middle of a file (its cursor comes with its last batch): the restart reads it again.
        self.assert_same_as_a(self.interrupted_run("sigterm", 5, self.sigterm, "http.port"),
                              "SIGTERM during the ingest")

    def test_sigterm_after_ingest_then_restart(self):
        # Run A's own daemon: drained, restarted on its data directory, same numbers.
        d = self.daemon_for("a")
        self.assertEqual(self.a.stop(timeout=120), 0, self.a.stderr())
        d.runs = self.a.runs
        self.addCleanup(d.kill)
        d.start()
        m = d.wait_ingested(self.fx.events, timeout=120)
        self.assertEqual(h.sample(m, "replywatch_connector_events_received_total"),
                         self.fx.events, "events delivered again after a clean restart")
        self.assert_same_as_a(final_state(d, m), "SIGTERM after the ingest")


if __name__ == "__main__":
    unittest.main(verbosity=2)
