"""`replywatch replay --source vk` on VK's own JSON (tests/fixtures/vk).

The expected appeals are worked out by hand in tests/fixtures/vk/README.md. Around that
fixture:
- the same objects, taken apart (every post and comment on its own, replies out of their
  threads), shuffled, partly duplicated and spread over files in both layouts, give the
  same appeals;
- the same history mapped by this file's own reading of VK's fields into the generic
  ingest format (docs/ingest-format.md) and replayed without `--source` gives them too;
- a broken file is named with the byte where it breaks, and the other files still count.
"""
import json
import os
import random
import subprocess
import tempfile
import unittest

BIN = os.environ.get("REPLYWATCH_BIN", "build/replywatch")
SRC = os.environ.get("REPLYWATCH_SOURCE", os.getcwd())
FIX = os.path.join(SRC, "tests", "fixtures", "vk")
CONFIG = os.path.join(FIX, "config.yaml")
FILES = [os.path.join(FIX, f) for f in ("wall_get.json", "comments_100.json", "pushes.ndjson")]
T = 1780000000

# (citizen, thread, opened message, opened_at, kind, status, answer message, responder
# role, reply seconds): README.md's table.
HAND = [
    ("500001", 100, 101, T + 100, "first", "answered", 103, "community", 3600),
    ("500003", 100, 102, T + 200, "first", "answered", 105, "press_office", 7200),
    ("500004", 100, 106, T + 300, "first", "withdrawn", None, None, None),
    ("500005", 100, 107, T + 400, "first", "unanswered", None, None, None),
    ("500001", 100, 108, T + 5000, "followup", "answered", 109, "community", 600),
    ("500007", 100, 111, T + 6000, "first", "answered", 112, "community", 900),
    ("500006", 200, 201, T + 691300, "first", "open", None, None, None),
]


def run(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode >= 0, f"replywatch died with signal {-p.returncode}: {p.stderr}"
    return p


def replay(inputs, source="vk"):
    """→ (process, report, appeals as HAND's tuples, sorted)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "appeals.ndjson")
        extra = ["--source", source] if source else []
        p = run("replay", "--config", CONFIG, "--appeals", out, *extra, *inputs)
        rows = []
        if os.path.exists(out):
            with open(out) as f:
                for line in f:
                    a = json.loads(line)
                    rows.append((a["citizen"], a["thread"], a["opened_message"], a["opened_at"],
                                 a["kind"], a["status"], a.get("answer_message"),
                                 (a.get("responder") or {}).get("role"), a.get("reply_seconds")))
    report = json.loads(p.stdout) if p.stdout.strip() else None
    return p, report, sorted(rows, key=lambda r: r[2])


def documents():
    """Every JSON document of the fixture files, in file order."""
    decoder = json.JSONDecoder()
    docs = []
    for path in FILES:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos == len(text):
                break
            doc, pos = decoder.raw_decode(text, pos)
            docs.append(doc)
    return docs


def objects():
    """Posts and comments on their own (replies taken out of their threads, given their
    wall and post), and the pushes as they are."""
    out = []

    def comment(c, parent=None):
        c = dict(c)
        replies = (c.pop("thread", None) or {}).get("items", [])
        if parent:
            c.setdefault("owner_id", parent["owner_id"])
            c.setdefault("post_id", parent["post_id"])
        out.append(c)
        for r in replies:
            comment(r, c)

    for doc in documents():
        if "response" in doc:
            for item in doc["response"]["items"]:
                if "post_type" in item:
                    out.append(item)
                else:
                    comment(item)
        else:
            out.append(doc)
    return out


def as_ingest_events(objs):
    """This test's own reading of VK's fields, in the generic ingest format."""
    lines = []
    for o in objs:
        if "type" in o:  # a push
            kind = {"wall_reply_new": "message", "wall_reply_edit": "edit",
                    "wall_reply_delete": "delete"}.get(o["type"])
            if kind is None:
                continue
            c = o["object"]
            owner = c.get("post_owner_id", c.get("owner_id"))
        else:
            kind, c, owner = "message", o, o["owner_id"]
        if not isinstance(c.get("id"), int):
            continue
        e = {"source": "vk", "conversation": str(owner), "message_id": c["id"], "kind": kind}
        if kind == "delete":
            e.update(author=str(owner), time=T)
        else:
            e.update(author=str(c["from_id"]), time=c["date"],
                     author_kind="chat" if c["from_id"] < 0 else "user")
        if "post_id" in c:  # a comment
            stack = c.get("parents_stack") or []
            e["reply_to"] = c.get("reply_to_comment") or (stack[-1] if stack else c["post_id"])
            if c.get("reply_to_user"):
                e["addressee"] = str(c["reply_to_user"])
        lines.append(json.dumps(e))
    return lines


class ReplayVk(unittest.TestCase):
    maxDiff = None

    def test_the_hand_worked_fixture(self):
        p, report, rows = replay(FILES)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(rows, HAND)
        self.assertEqual(report["clock"], T + 691300)
        [agency] = report["agencies"]
        first = agency["first"]
        self.assertEqual((first["appeals"], first["answered"], first["unanswered"],
                          first["open"], first["withdrawn"]), (5, 3, 1, 1, 1))
        self.assertEqual(first["reply_seconds"],
                         {"median": 3600, "p90": 6480, "p99": 7128, "mean": 3900})
        self.assertEqual(first["answer_rate"], 0.75)
        self.assertEqual(first["km_median_seconds"], 5400)
        self.assertEqual(agency["followup"]["reply_seconds"]["median"], 600)
        self.assertEqual(report["rejected_messages"], {"bad_id": 1})

    def test_taken_apart_shuffled_duplicated_split_gives_the_same(self):
        objs = objects()
        for seed in range(6):
            rng = random.Random(seed)
            mixed = objs + rng.sample(objs, len(objs) // 3)
            rng.shuffle(mixed)
            with tempfile.TemporaryDirectory() as tmp:
                paths = []
                for k in range(3):
                    part = mixed[k::3]
                    path = os.path.join(tmp, f"part{k}.json")
                    with open(path, "w", encoding="utf-8") as f:
                        if k == 1:  # pretty-printed, documents one after another
                            f.write("\n".join(json.dumps(o, ensure_ascii=False, indent=2)
                                              for o in part))
                        else:  # one per line, as an archive of pushes is kept
                            f.write("".join(json.dumps(o) + "\n" for o in part))
                    paths.append(path)
                # A wall.getComments page for the comments of part 0, too.
                page = {"response": {"count": 0, "items": [o for o in mixed[0::3]
                                                           if "post_id" in o]}}
                path = os.path.join(tmp, "page.json")
                with open(path, "w") as f:
                    json.dump(page, f)
                paths.append(path)
                rng.shuffle(paths)
                p, _, rows = replay(paths)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(rows, HAND, f"seed {seed}")

    def test_an_independent_mapping_through_the_generic_format_agrees(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "events.ndjson")
            with open(path, "w") as f:
                f.write("\n".join(as_ingest_events(objects())) + "\n")
            p, _, rows = replay([path], source=None)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(rows, HAND)

    def test_a_broken_file_is_named_and_the_rest_counts(self):
        with tempfile.TemporaryDirectory() as tmp:
            broken = os.path.join(tmp, "broken.json")
            with open(FILES[1], encoding="utf-8") as f:
                text = f.read()
            good = '{"id":1,"from_id":5,"date":1780000000,"owner_id":-123456,"post_type":"post"}\n'
            with open(broken, "w", encoding="utf-8") as f:
                f.write(good + text[:len(text) // 2])
            p, report, rows = replay([FILES[0], broken, FILES[2]])
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("broken.json", p.stderr)
            self.assertIn(f"byte {len(good)}:", p.stderr)
            [rejected] = report["rejected_files"]
            self.assertIn("never ends", rejected["error"])
            # Nothing of the broken file counts, not even its good first document.
            self.assertEqual([(r[2], r[5]) for r in rows], [(101, "unanswered"), (201, "open")])

    def test_a_reply_to_another_citizen_opens_an_appeal_when_configured(self):
        # 104 (500002) replies inside 101's thread (500001's): ignored by default (HAND);
        # with citizen_replies_to_citizens: appeal it opens one, never answered.
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "config.yaml")
            with open(CONFIG, encoding="utf-8") as f:
                text = f.read()
            with open(config, "w", encoding="utf-8") as f:
                f.write("citizen_replies_to_citizens: appeal\n" + text)
            out = os.path.join(tmp, "appeals.ndjson")
            p = run("replay", "--config", config, "--appeals", out, "--source", "vk", *FILES)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out) as f:
                rows = [json.loads(line) for line in f]
            extra = [(a["citizen"], a["thread"], a["status"]) for a in rows
                     if a["opened_message"] == 104]
            self.assertEqual(extra, [("500002", 100, "unanswered")])
            self.assertEqual(len(rows), len(HAND) + 1)

    def test_a_directory_is_its_files_and_a_missing_file_is_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            archive = os.path.join(tmp, "archive")
            os.makedirs(os.path.join(archive, "nested"))  # not a file: not read
            for path in FILES:
                with open(path, "rb") as f, \
                        open(os.path.join(archive, os.path.basename(path)), "wb") as g:
                    g.write(f.read())
            with open(os.path.join(archive, "notes.txt"), "w") as f:
                f.write("not JSON\n")
            missing = os.path.join(tmp, "missing.json")
            p, report, rows = replay([archive, missing])
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(rows, HAND)
            self.assertEqual(sorted(os.path.basename(r["file"]) for r in report["rejected_files"]),
                             ["missing.json", "notes.txt"])
            self.assertIn("missing.json: cannot open", p.stderr)
            self.assertIn("notes.txt: byte 0: expected a JSON object", p.stderr)

    def test_unknown_source_is_a_usage_error(self):
        p = run("replay", "--config", CONFIG, "--source", "myspace", FILES[0])
        self.assertEqual(p.returncode, 1)
        self.assertIn("--source must be", p.stderr)


if __name__ == "__main__":
    unittest.main()
