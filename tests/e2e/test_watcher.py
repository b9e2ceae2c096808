"""The telegram_export connector of `replywatch run` as exports land in its directory.

A file is ingested once its size and mtime have held still for one poll
(poll_interval_secs: 1 here): an export still being written, a chunk every 0.3 s, must not
be read half-way (no invalid_export error), and is counted once complete. A file that is
not an export is refused once, counted under invalid_export, and the daemon goes on.
"""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers as h  # noqa: E402

HORIZON = h.DAY


def errors(m, error_type):
    return h.sample(m, "replywatch_connector_errors_total", error_type=error_type) or 0


class Watcher(unittest.TestCase):
    def setUp(self):
        self.tmp = h.TempDir("rw-e2e-watcher-")
        self.addCleanup(self.tmp.cleanup)
        root = self.tmp.path
        self.specs = [h.AgencySpec(1, "akimat", "Asia/Almaty", chats=2)]
        self.fx = h.make_fixture(os.path.join(root, "staging"), self.specs, int(time.time()),
                                 2 * h.DAY, HORIZON, posts_per_chat=30, seed=3)
        self.exports = os.path.join(root, "exports")
        os.makedirs(self.exports)
        data = os.path.join(root, "data")
        self.config = h.write_config(os.path.join(root, "config.yaml"), self.specs, HORIZON,
                                     daemon=h.daemon_section(data),
                                     connectors=[h.export_connector(self.exports)])
        self.daemon = h.Daemon(self.config, data)
        self.addCleanup(self.daemon.kill)
        self.daemon.start()

    def test_export_written_slowly_is_read_once_complete(self):
        src = self.fx.files[0]
        with open(src, "rb") as f:
            data = f.read()
        dst = os.path.join(self.exports, "result.json")
        chunks = 10
        with open(dst, "wb") as f:
            for i in range(chunks):
                f.write(data[i * len(data) // chunks:(i + 1) * len(data) // chunks])
                f.flush()
                time.sleep(0.3)  # less than a poll: the file never holds still for one
        m = self.daemon.wait_ingested(self.fx.file_events[src], timeout=60)
        self.assertEqual(h.sample(m, "replywatch_connector_events_received_total"),
                         self.fx.file_events[src])
        self.assertEqual(errors(m, "invalid_export"), 0,
                         "a file still being written was parsed: " + self.daemon.stderr())

    def test_bad_file_is_refused_once_and_the_rest_goes_on(self):
        with open(os.path.join(self.exports, "broken.json"), "w") as f:
            f.write('{"name": "x", "type": "public_supergroup", "id": 1, "messages": [')
        m = h.wait_until(lambda: (lambda m: m if errors(m, "invalid_export") else None)(
            self.daemon.metrics()), 30, interval=0.2, what="the refusal")
        time.sleep(3)  # three more polls: the unchanged file is not retried
        m = self.daemon.metrics()
        self.assertEqual(errors(m, "invalid_export"), 1)
        self.assertIn("broken.json", self.daemon.stderr())
        self.assertEqual(h.sample(m, "replywatch_connector_up"), 1)
        # Good exports arriving next are ingested as usual (rename: appears complete).
        for src in self.fx.files:
            dst = os.path.join(self.exports, os.path.relpath(src, os.path.dirname(
                os.path.dirname(src))))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(src, dst + ".part")
            os.replace(dst + ".part", dst)
        m = self.daemon.wait_ingested(self.fx.events, timeout=60)
        self.assertEqual(h.sample(m, "replywatch_connector_events_received_total"),
                         self.fx.events)
        report, _ = h.replay(self.config, self.fx.files, with_appeals=False)
        first = report["agencies"][0]["first"]
        self.assertEqual(h.counters_by_agency_kind(m)[("akimat", "first")],
                         (first["appeals"], first["answered"], first["unanswered"]))
        self.assertEqual(errors(m, "invalid_export"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
