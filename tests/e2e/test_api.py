"""The JSON/CSV API of `replywatch run` against `replywatch replay` on the same export.

/api/v1/appeals, paged 7 at a time by following next_cursor, must list exactly the
appeals of `replay --appeals` (every field), whatever the agency and status filter;
/api/v1/ranking must agree with replay's per-agency numbers, per responder and per
branch with the answered appeals replay attributes to them, and its CSV form must hold
the same rows as its JSON form.
"""
import csv
import io
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402

HORIZON = h.DAY
PAGE = 7
# Quantiles come from the daemon's sketch: within its accuracy (0.5 %, documented as 1 %)
# of the exact value, see test_prometheus_e2e.py.
QUANTILE_TOLERANCE = 0.01


def exact_quantile(values, q):
    """Replay's definition: rank q·(n−1), linear interpolation."""
    v = sorted(values)
    if not v:
        return None
    r = q * (len(v) - 1)
    lo = int(r)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (r - lo)


class Api(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.started = time.monotonic()
        cls.tmp = h.TempDir("rw-e2e-api-")
        cls.addClassCleanup(cls.tmp.cleanup)
        root = cls.tmp.path
        now = int(time.time())
        cls.specs = [h.AgencySpec(1, "akimat_almaty", "Asia/Almaty"),
                     h.AgencySpec(2, "mchs_moscow", "Europe/Moscow"),
                     h.AgencySpec(3, "hokimiyat", "Asia/Tashkent")]
        exports = os.path.join(root, "exports")
        cls.fx = h.make_fixture(exports, cls.specs, now, 3 * h.DAY, HORIZON,
                                posts_per_chat=35, seed=777)
        data = os.path.join(root, "data")
        cls.config = h.write_config(os.path.join(root, "config.yaml"), cls.specs, HORIZON,
                                    daemon=h.daemon_section(data),
                                    connectors=[h.export_connector(exports)])
        cls.report, cls.appeals = h.replay(cls.config, cls.fx.files)
        cls.daemon = h.Daemon(cls.config, data)
        cls.addClassCleanup(cls.daemon.kill)
        cls.daemon.start()
        cls.daemon.wait_ingested(cls.fx.events, timeout=120)
        cls.requests = 0

    @classmethod
    def tearDownClass(cls):
        print(f"\n{cls.__name__}: {len(cls.appeals)} appeals, {cls.requests} paged requests, "
              f"{time.monotonic() - cls.started:.1f}s", file=sys.stderr)

    # -- helpers

    def pages(self, **params):
        """Follows next_cursor from the first page; → (appeals, pages)."""
        out, pages, cursor = [], [], None
        for _ in range(10000):
            q = dict(params, limit=PAGE)
            if cursor is not None:
                q["cursor"] = cursor
            body = self.daemon.json("/api/v1/appeals?" + urllib.parse.urlencode(q))
            type(self).requests += 1
            self.assertEqual(set(body), {"appeals", "next_cursor"})
            pages.append(body["appeals"])
            out.extend(body["appeals"])
            cursor = body["next_cursor"]
            if cursor is None:
                return out, pages
            self.assertEqual(len(body["appeals"]), PAGE, "a page before the last is short")
        self.fail("next_cursor never became null")

    def expected(self, agency=None, status=None):
        return [a for a in self.appeals
                if (agency is None or a["agency"] == agency)
                and (status is None or a["status"] == status)]

    def assert_same_appeals(self, got, want):
        def ident(a):
            return (a["conversation"], a["opened_message"])
        self.assertEqual(len({ident(a) for a in got}), len(got), "an appeal listed twice")
        self.assertEqual({h.appeal_key(a) for a in got}, {h.appeal_key(a) for a in want})
        # Not only the compared key: every field is the same as replay's line.
        by_id = {ident(a): a for a in want}
        for a in got:
            self.assertEqual(a, by_id[ident(a)])

    # -- /api/v1/appeals

    def test_fixture_is_rich_enough(self):
        statuses = {a["status"] for a in self.appeals}
        self.assertEqual(statuses, {"open", "answered", "unanswered"})
        self.assertEqual({a["kind"] for a in self.appeals}, {"first", "followup"})
        self.assertEqual({a["agency"] for a in self.appeals}, {s.id for s in self.specs})
        self.assertGreater(len(self.appeals), 20 * PAGE)
        self.assertTrue(any(a.get("business_reply_seconds") not in (None, a.get("reply_seconds"))
                            for a in self.appeals), "business time never differs")
        roles = {a["responder"]["role"] for a in self.appeals if a["status"] == "answered"}
        self.assertIn("anonymous_admin", roles)
        self.assertIn("channel", roles)

    def test_all_appeals_paged(self):
        got, pages = self.pages()
        self.assert_same_appeals(got, self.expected())
        order = [(a["opened_at"], int(a["conversation"]), a["opened_message"]) for a in got]
        self.assertEqual(order, sorted(order), "pages are not in (opened_at, conversation, "
                                               "message) order")
        self.assertLessEqual(len(pages[-1]), PAGE)

    def test_filtered_by_agency_and_status(self):
        for spec in self.specs:
            for status in (None, "open", "answered", "unanswered"):
                with self.subTest(agency=spec.id, status=status):
                    params = {"agency": spec.id}
                    if status:
                        params["status"] = status
                    got, _ = self.pages(**params)
                    want = self.expected(spec.id, status)
                    self.assertTrue(want)
                    self.assert_same_appeals(got, want)
        for status in ("open", "answered", "unanswered"):
            with self.subTest(agency=None, status=status):
                got, _ = self.pages(status=status)
                self.assert_same_appeals(got, self.expected(status=status))

    def test_page_size_bounds(self):
        body = self.daemon.json("/api/v1/appeals?limit=1000")
        self.assertEqual(len(body["appeals"]), min(1000, len(self.appeals)))
        body = self.daemon.json("/api/v1/appeals?limit=1")
        self.assertEqual(len(body["appeals"]), 1)
        self.assertIsNotNone(body["next_cursor"])

    # -- /api/v1/ranking

    def ranking(self, by, fmt="json", window="30d"):
        q = urllib.parse.urlencode({"window": window, "by": by, "format": fmt})
        status, body = self.daemon.get("/api/v1/ranking?" + q)
        self.assertEqual(status, 200, body)
        return body

    def test_ranking_by_agency_equals_replay(self):
        body = json.loads(self.ranking("agency"))
        self.assertEqual((body["window"], body["by"]), ("30d", "agency"))
        rows = body["rows"]
        self.assertEqual(sorted(r["agency"] for r in rows), sorted(s.id for s in self.specs))
        self.assertEqual([r["rank"] for r in rows], list(range(1, len(rows) + 1)))
        kms = [r["km_median_seconds"] if r["km_median_seconds"] is not None else float("inf")
               for r in rows]
        self.assertEqual(kms, sorted(kms), "agencies are ranked by the Kaplan-Meier median")
        replay = {a["agency"]: a for a in self.report["agencies"]}
        for r in rows:
            first = replay[r["agency"]]["first"]
            with self.subTest(agency=r["agency"]):
                self.assertEqual(r["agency_name"], replay[r["agency"]]["name"])
                self.assertEqual((r["answered"], r["unanswered"], r["open"]),
                                 (first["answered"], first["unanswered"], first["open"]))
                # The window's cohort: every appeal opened in it, open ones included.
                self.assertEqual(r["sample_size"],
                                 first["answered"] + first["unanswered"] + first["open"])
                self.assertAlmostEqual(r["answer_rate"], first["answer_rate"], places=9)
                self.assertAlmostEqual(r["within_target_rate"], first["within_target_rate"],
                                       places=9)
                self.assertAlmostEqual(r["mean_seconds"], first["reply_seconds"]["mean"],
                                       places=6)
                for mine, theirs in (("median_seconds", "median"), ("p90_seconds", "p90"),
                                     ("p99_seconds", "p99")):
                    self.assertTrue(h.rel_close(r[mine], first["reply_seconds"][theirs],
                                                QUANTILE_TOLERANCE),
                                    f"{mine}: {r[mine]} vs replay {first['reply_seconds'][theirs]}")
                for mine, theirs in (("business_median_seconds", "median"),
                                     ("business_p90_seconds", "p90")):
                    self.assertTrue(h.rel_close(r[mine], first["business_reply_seconds"][theirs],
                                                QUANTILE_TOLERANCE),
                                    f"{mine}: {r[mine]} vs replay "
                                    f"{first['business_reply_seconds'][theirs]}")

    def test_ranking_by_responder_equals_replay(self):
        rows = json.loads(self.ranking("responder"))["rows"]
        answered = [a for a in self.appeals if a["status"] == "answered"]
        want = {}
        for a in answered:
            want.setdefault((a["agency"], a["responder"]["id"]), []).append(a)
        self.assertEqual({(r["agency"], r["responder"]) for r in rows}, set(want))
        per_agency = {}
        for r in rows:
            per_agency.setdefault(r["agency"], []).append(r)
            mine = want[(r["agency"], r["responder"])]
            with self.subTest(agency=r["agency"], responder=r["responder"]):
                self.assertEqual(r["answered"], len(mine))
                self.assertEqual(r["sample_size"], len(mine))
                self.assertEqual(r["role"], mine[0]["responder"]["role"])
                self.assertEqual(r.get("branch"), mine[0]["responder"].get("branch"))
                exact = exact_quantile([a["reply_seconds"] for a in mine], 0.5)
                self.assertTrue(h.rel_close(r["median_seconds"], exact, QUANTILE_TOLERANCE),
                                f"median {r['median_seconds']} vs exact {exact}")
        replay = {a["agency"]: a for a in self.report["agencies"]}
        for agency, rs in per_agency.items():
            with self.subTest(agency=agency):
                # Rows of an agency are contiguous, ranked 1..k by median.
                idx = [i for i, r in enumerate(rows) if r["agency"] == agency]
                self.assertEqual(idx, list(range(idx[0], idx[0] + len(idx))))
                self.assertEqual([r["rank"] for r in rs], list(range(1, len(rs) + 1)))
                medians = [r["median_seconds"] for r in rs]
                self.assertEqual(medians, sorted(medians))
                # Responder rows cover both kinds: together, every answered appeal.
                self.assertEqual(sum(r["answered"] for r in rs),
                                 replay[agency]["first"]["answered"]
                                 + replay[agency]["followup"]["answered"])

    def test_ranking_by_branch_equals_replay(self):
        rows = json.loads(self.ranking("branch"))["rows"]
        want = {}
        for a in self.appeals:
            if a["status"] == "answered" and a["responder"].get("branch"):
                key = (a["agency"], a["responder"]["branch"])
                want[key] = want.get(key, 0) + 1
        self.assertEqual({(r["agency"], r["branch"]): r["answered"] for r in rows}, want)

    def test_csv_has_the_same_rows_as_json(self):
        for by in ("agency", "responder", "branch"):
            with self.subTest(by=by):
                rows = json.loads(self.ranking(by))["rows"]
                table = list(csv.DictReader(io.StringIO(self.ranking(by, "csv"))))
                self.assertEqual(len(table), len(rows))
                for j, c in zip(rows, table):
                    for field in ("rank", "answered", "sample_size"):
                        self.assertEqual(int(c[field]), j[field], field)
                    self.assertEqual(c["agency"], j["agency"])
                    self.assertEqual(c["agency_name"], j["agency_name"])
                    if by == "agency":
                        self.assertEqual(int(c["unanswered"]), j["unanswered"])
                        self.assertEqual(int(c["open"]), j["open"])
                    if by == "responder":
                        self.assertEqual(c["responder"], j["responder"])
                        self.assertEqual(c["role"], j["role"])
                    if by in ("responder", "branch"):
                        self.assertEqual(c["branch"], j.get("branch", ""))
                    for field in ("answer_rate", "median_seconds", "p90_seconds", "p99_seconds",
                                  "mean_seconds", "business_median_seconds",
                                  "business_p90_seconds", "within_target_rate"):
                        if field in j:
                            want = j[field]
                            self.assertEqual(float(c[field]) if c[field] else None, want, field)
                    if by == "agency":
                        # Open appeals age between the two requests: allow a little.
                        km = float(c["km_median_seconds"]) if c["km_median_seconds"] else None
                        self.assertTrue(h.rel_close(km, j["km_median_seconds"], 0.01))

    def test_other_windows_are_consistent(self):
        # Everything closed within the last three days: the 7d counts equal the 30d ones.
        seven = {r["agency"]: r for r in json.loads(self.ranking("agency", window="7d"))["rows"]}
        thirty = {r["agency"]: r for r in json.loads(self.ranking("agency", "json", "30d"))["rows"]}
        for agency in thirty:
            for field in ("answered", "unanswered", "open", "sample_size"):
                self.assertEqual(seven[agency][field], thirty[agency][field], (agency, field))
        hour = json.loads(self.ranking("agency", window="1h"))["rows"]
        for r in hour:
            self.assertLessEqual(r["sample_size"], thirty[r["agency"]]["sample_size"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
