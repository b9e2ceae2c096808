"""`replywatch replay` and `check-config` as a user runs them, on fixture files.

The expected numbers are worked out by hand in tests/fixtures/replay/README.md.
"""
import csv
import io
import json
import os
import subprocess
import tempfile
import unittest

BIN = os.environ.get("REPLYWATCH_BIN", "build/replywatch")
SRC = os.environ.get("REPLYWATCH_SOURCE", os.getcwd())
FIX = os.path.join(SRC, "tests", "fixtures", "replay")
CONFIG = os.path.join(FIX, "config.yaml")
DISCUSSION = os.path.join(FIX, "discussion.json")


def run(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120)
    # A signal (crash) shows as a negative return code.
    assert p.returncode >= 0, f"replywatch died with signal {-p.returncode}: {p.stderr}"
    return p


def replay_json(*inputs, extra=()):
    p = run("replay", "--config", CONFIG, *extra, *inputs)
    return p, json.loads(p.stdout)


class ReplayReport(unittest.TestCase):
    def test_report_numbers(self):
        p, report = replay_json(DISCUSSION)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(report["clock"], 1772512200)
        [agency] = report["agencies"]
        self.assertEqual(agency["agency"], "akimat")
        self.assertEqual(agency["name"], "Акимат")
        first = agency["first"]
        self.assertEqual((first["appeals"], first["answered"], first["unanswered"], first["open"]),
                         (3, 2, 1, 0))
        self.assertAlmostEqual(first["answer_rate"], 2 / 3)
        self.assertEqual(first["reply_seconds"],
                         {"median": 29700, "p90": 52020, "p99": 57042, "mean": 29700})
        self.assertEqual(first["business_reply_seconds"], {"median": 2700, "p90": 3420})
        self.assertAlmostEqual(first["within_target_rate"], 2 / 3)
        self.assertEqual(first["km_median_seconds"], 57600)
        followup = agency["followup"]
        self.assertEqual((followup["appeals"], followup["open"]), (1, 1))
        self.assertIsNone(followup["answer_rate"])
        self.assertIsNone(followup["reply_seconds"]["median"])
        self.assertIsNone(followup["km_median_seconds"])
        self.assertEqual(report["rejected_messages"], {"bad_id": 1, "no_export_timezone": 1})
        self.assertEqual(report["rejected_files"], [])

    def test_appeals_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "appeals.ndjson")
            p = run("replay", "--config", CONFIG, "--appeals", out, DISCUSSION)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out, encoding="utf-8") as f:
                appeals = [json.loads(line) for line in f]
        by_message = {a["opened_message"]: a for a in appeals}
        self.assertEqual(sorted(by_message), [2, 3, 5, 8])
        a = by_message[2]
        self.assertEqual(a["status"], "answered")
        self.assertEqual(a["conversation"], "-1001800004444")
        self.assertEqual((a["thread"], a["citizen"], a["kind"]), (1, "1001", "first"))
        self.assertEqual((a["answer_message"], a["reply_seconds"], a["business_reply_seconds"]),
                         (4, 1800, 1800))
        self.assertEqual(a["responder"], {"id": "500201", "role": "press_office",
                                          "branch": "central"})
        self.assertEqual(by_message[3]["status"], "unanswered")
        self.assertNotIn("answer_message", by_message[3])
        self.assertEqual((by_message[5]["kind"], by_message[5]["status"]), ("followup", "open"))
        c = by_message[8]
        self.assertEqual(c["responder"], {"id": "-1001800004444", "role": "anonymous_admin"})
        self.assertEqual((c["reply_seconds"], c["business_reply_seconds"]), (57600, 3600))

    def test_export_timezone_admits_old_messages(self):
        p, report = replay_json(DISCUSSION, extra=("--export-timezone", "Asia/Almaty"))
        self.assertEqual(p.returncode, 0, p.stderr)
        first = report["agencies"][0]["first"]
        self.assertEqual((first["appeals"], first["open"]), (4, 1))
        self.assertEqual(report["rejected_messages"], {"bad_id": 1})

    def test_bad_file_is_named_and_others_still_count(self):
        truncated = os.path.join(FIX, "truncated.json")
        p, report = replay_json(truncated, DISCUSSION)
        self.assertEqual(p.returncode, 2)
        self.assertIn("truncated.json", p.stderr)
        self.assertEqual(report["agencies"][0]["first"]["appeals"], 3)
        [rejected] = report["rejected_files"]
        self.assertTrue(rejected["file"].endswith("truncated.json"))
        self.assertTrue(rejected["error"])

    def test_hostile_inputs_never_crash(self):
        with tempfile.TemporaryDirectory() as tmp:
            inputs = {
                "garbage.json": os.urandom(4096),
                "empty.json": b"",
                "nested.json": b"[" * 200000 + b"]" * 200000,
                "utf8.json": b'{"name":"\xff\xfe","type":"public_supergroup","id":1,"messages":[]}',
                "notexport.json": b'{"hello": "world"}',
                "array.json": b"[1, 2, 3]",
            }
            paths = []
            for name, data in inputs.items():
                path = os.path.join(tmp, name)
                with open(path, "wb") as f:
                    f.write(data)
                paths.append(path)
            paths.append(os.path.join(tmp, "missing.json"))
            paths.append(tmp)  # a directory without result.json
            p, report = replay_json(*paths, DISCUSSION)
            self.assertEqual(p.returncode, 2)
            self.assertEqual(len(report["rejected_files"]), len(paths))
            for path in paths:
                self.assertIn(os.path.basename(path), p.stderr)
            self.assertEqual(report["agencies"][0]["first"]["appeals"], 3)

    def test_csv_and_table_show_the_same_numbers(self):
        p = run("replay", "--config", CONFIG, "--format", "csv", DISCUSSION)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = list(csv.DictReader(io.StringIO(p.stdout)))
        self.assertEqual([(r["agency"], r["kind"]) for r in rows],
                         [("akimat", "first"), ("akimat", "followup")])
        self.assertEqual(rows[0]["reply_median"], "29700")
        self.assertEqual(rows[0]["km_median_seconds"], "57600")
        self.assertEqual(rows[1]["answer_rate"], "")
        t = run("replay", "--config", CONFIG, "--format", "table", DISCUSSION)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("8h 15m", t.stdout)   # median 29700 s
        self.assertIn("66.7%", t.stdout)    # answer rate 2/3
        self.assertIn("16h 00m", t.stdout)  # KM median 57600 s

    def test_usage_errors(self):
        self.assertEqual(run("replay", DISCUSSION).returncode, 1)
        self.assertEqual(run("replay", "--config", CONFIG).returncode, 1)
        bad = run("replay", "--config", CONFIG, "--format", "xml", DISCUSSION)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("--format", bad.stderr)
        tz = run("replay", "--config", CONFIG, "--export-timezone", "Mars/Base", DISCUSSION)
        self.assertEqual(tz.returncode, 1)
        self.assertIn("Mars/Base", tz.stderr)
        self.assertEqual(run("frobnicate").returncode, 1)

    def test_help_explains_every_flag(self):
        main = run("--help")
        self.assertEqual(main.returncode, 0)
        for word in ("replay", "check-config", "--version"):
            self.assertIn(word, main.stdout)
        replay = run("replay", "--help")
        self.assertEqual(replay.returncode, 0)
        for flag in ("--config", "--appeals", "--format", "--export-timezone", "--help"):
            self.assertIn(flag, replay.stdout)


class CheckConfig(unittest.TestCase):
    def test_valid(self):
        p = run("check-config", "--config", CONFIG)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_invalid_lists_every_problem(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("horizon_secs: soon\nagencies:\n  - id: Bad-Id\n    name: x\n"
                    "    timezone: Nowhere/City\n    conversations: []\n    colour: red\n")
        try:
            p = run("check-config", "--config", f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(p.returncode, 1)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 4, p.stderr)
        self.assertIn(":1: horizon_secs: expected an integer", lines[0])
        self.assertIn(":3: agencies[0].id:", lines[1])
        self.assertIn(":5: agencies[0].timezone:", lines[2])
        self.assertIn(":7: agencies[0].colour: unknown key", lines[3])

    def test_missing_file(self):
        p = run("check-config", "--config", "/nonexistent/replywatch.yaml")
        self.assertEqual(p.returncode, 1)
        self.assertIn("/nonexistent/replywatch.yaml", p.stderr)


class KafkaBusOffline(unittest.TestCase):
    """check-config judges the `bus:` section without contacting anything; kafka-check needs
    a Kafka bus and says so; a broker that is not there is named, not waited for forever."""

    def config_with(self, bus):
        with open(CONFIG) as f:
            text = f.read()
        f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        f.write(text + "\nbus:\n" + bus)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_check_config_validates_the_bus_offline(self):
        ok = run("check-config", "--config", self.config_with(
            "  type: kafka\n  bootstrap_servers: \"127.0.0.1:1\"\n"
            "  rdkafka: {security.protocol: PLAINTEXT}\n"))
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("127.0.0.1:1", ok.stdout + ok.stderr)
        bad = run("check-config", "--config", self.config_with(
            "  type: kafka\n  bootstrap_servers: \"127.0.0.1:1\"\n"
            "  rdkafka: {enable.idempotence: false, no.such.key: 1}\n"))
        self.assertEqual(bad.returncode, 1)
        self.assertIn("bus.rdkafka.enable.idempotence", bad.stderr)
        self.assertIn("bus.rdkafka.no.such.key", bad.stderr)

    def test_kafka_check_usage(self):
        p = run("kafka-check")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("--config", p.stderr)
        p = run("kafka-check", "--config", CONFIG)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("has no `bus: {type: kafka}` section", p.stderr)

    def test_kafka_check_names_an_unreachable_cluster(self):
        p = run("kafka-check", "--config", self.config_with(
            "  type: kafka\n  bootstrap_servers: \"127.0.0.1:1\"\n"), "--timeout", "2")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("missing: brokers", p.stdout)
        self.assertIn("127.0.0.1:1", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
