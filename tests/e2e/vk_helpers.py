"""A fake VK API for the end-to-end tests, and the VK fixture shifted to the present.

FakeVk serves walls the way api.vk.com/method does (https on 127.0.0.1, port 0, with
tests/fixtures/tls): `wall.get` (newest first, each post with `comments.count` counting
thread replies too, as VK does) and `wall.getComments` (top-level comments with the first
`thread_items_count` replies in `thread.items` and `thread.count`, or one thread's replies
with `comment_id`; `count` over all, `current_level_count` over the level). Every call must
carry `access_token` and `v`: a wrong token is VK's error 5, a missing `v` error 8.

It misbehaves on request: `faults` is a list of what to do instead of answering, one per
call, spaced `fault_every` calls apart —
  "vk:N"        VK's error N ({"error": {"error_code": N, ...}}, HTTP 200 as VK does);
  "http:N"      HTTP status N with an HTML body;
  "truncated"   the body cut in half (Content-Length promises all of it);
  "slow:S"      the right answer after S seconds;
  "shuffle"     the right page with its items in another order;
  "overlap"     the page starting a few items early (the previous page's tail again).
A wall listed in `private` answers error 30 to everything; `hide_once` leaves a comment
out of one answer (a page read while another comment is deleted can), `remove` deletes it.
"""
import json
import os
import random
import secrets
import ssl
import string
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SRC = os.environ.get("REPLYWATCH_SOURCE", os.getcwd())
FIX = os.path.join(SRC, "tests", "fixtures", "vk")
TLS = os.path.join(SRC, "tests", "fixtures", "tls")
T = 1780000000
LAST = T + 691300  # the fixture's latest message


def make_token():
    rng = random.SystemRandom()
    return "vk1.a." + "".join(rng.choice(string.ascii_letters + string.digits + "-_")
                              for _ in range(120))


def make_secret(prefix):
    return prefix + secrets.token_hex(16)


# ---------------------------------------------------------------------------
# the fixture

def fixture(shift):
    """The fixture's posts and comments, dates moved by `shift` seconds → (posts, comments).
    A comment is a flat dict in getComments' shape, with `thread_of` naming the top-level
    comment whose thread holds it (None at the top level). Comment 106 (deleted by a push
    in the fixture) and 201 (known from a push) are left out; callers add what they need."""
    with open(os.path.join(FIX, "wall_get.json"), encoding="utf-8") as f:
        posts = json.load(f)["response"]["items"]
    with open(os.path.join(FIX, "comments_100.json"), encoding="utf-8") as f:
        top = json.load(f)["response"]["items"]
    comments = []
    for c in top:
        replies = c.get("thread", {}).get("items", [])
        flat = {k: v for k, v in c.items() if k != "thread"}
        flat["thread_of"] = None
        comments.append(flat)
        for r in replies:
            r = dict(r)
            r.setdefault("post_id", c["post_id"])
            r.setdefault("owner_id", c["owner_id"])
            r["thread_of"] = c["id"]
            comments.append(r)
    for p in posts:
        p["date"] += shift
        p.pop("comments", None)
    for c in comments:
        c["date"] += shift
    return posts, comments


def comment(id_, post, from_id, date, owner=-123456, thread_of=None, reply_to_comment=None,
            reply_to_user=None, text="…"):
    c = {"id": id_, "from_id": from_id, "date": date, "text": text, "post_id": post,
         "owner_id": owner, "parents_stack": [thread_of] if thread_of else [],
         "thread_of": thread_of}
    if reply_to_comment:
        c["reply_to_comment"] = reply_to_comment
    if reply_to_user:
        c["reply_to_user"] = reply_to_user
    return c


def public(c):
    return {k: v for k, v in c.items() if k != "thread_of"}


# ---------------------------------------------------------------------------
# the server

class FakeVk:
    def __init__(self, token, faults=(), fault_every=3, private=(), tls=True):
        self.token = token
        self.faults = list(faults)
        self.fault_every = fault_every
        self.private = set(private)
        self.posts = {}     # owner → [post]
        self.comments = {}  # owner → [comment]
        self.lock = threading.Lock()
        self.calls = 0
        self.log = []       # (method, params without the token)
        self.faults_served = []
        self.problems = []  # requests that broke VK's rules (no v, ...)
        self.hidden = set()  # comments left out of the next answer that would hold them
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(TLS, "server.pem"), os.path.join(TLS, "server.key"))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}/method"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def add(self, owner, posts=(), comments=()):
        with self.lock:
            self.posts.setdefault(owner, []).extend(posts)
            self.comments.setdefault(owner, []).extend(comments)

    def hide_once(self, comment_id):
        """Leaves the comment out of one answer, as a page read while another comment is
        deleted can: it is not deleted."""
        with self.lock:
            self.hidden.add(comment_id)

    def remove(self, owner, comment_id):
        with self.lock:
            self.comments[owner] = [c for c in self.comments.get(owner, [])
                                    if c["id"] != comment_id]

    # -- answers

    def _send(self, req, status, body, content_type="application/json; charset=utf-8",
              truncate=False):
        data = body.encode() if isinstance(body, str) else body
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(data)))
        if truncate:
            req.send_header("Connection", "close")
        req.end_headers()
        req.wfile.write(data[:len(data) // 2] if truncate else data)
        if truncate:
            req.close_connection = True
            req.wfile.flush()
            try:
                req.connection.shutdown(2)
            except OSError:
                pass

    @staticmethod
    def error(code, msg):
        return json.dumps({"error": {"error_code": code, "error_msg": msg,
                                     "request_params": [{"key": "method", "value": "x"}]}})

    def _serve(self, req):
        url = urllib.parse.urlsplit(req.path)
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        method = url.path.rsplit("/", 1)[-1]
        shown = {k: v for k, v in params.items() if k != "access_token"}
        with self.lock:
            self.calls += 1
            n = self.calls
            self.log.append((method, shown))
            fault = None
            if self.faults and n % self.fault_every == 0:
                fault = self.faults.pop(0)
                self.faults_served.append(fault)
        if "v" not in params:
            self.problems.append(f"{method} without v")
            return self._send(req, 200, self.error(8, "Invalid request: v is required"))
        if params.get("access_token") != self.token:
            return self._send(req, 200, self.error(5, "User authorization failed: invalid "
                                                      "access_token (4)."))
        if fault and fault.startswith("vk:"):
            code = int(fault[3:])
            msgs = {6: "Too many requests per second", 9: "Flood control",
                    10: "Internal server error", 29: "Rate limit reached"}
            return self._send(req, 200, self.error(code, msgs.get(code, "Error")))
        if fault and fault.startswith("http:"):
            return self._send(req, int(fault[5:]), "<html><body>502 Bad Gateway</body></html>",
                              "text/html")
        if fault and fault.startswith("slow:"):
            time.sleep(float(fault[5:]))
        try:
            owner = int(params.get("owner_id", "0"))
        except ValueError:
            return self._send(req, 200, self.error(100, "One of the parameters specified "
                                                        "was missing or invalid: owner_id"))
        if owner in self.private:
            return self._send(req, 200, self.error(30, "This profile is private"))
        if method == "wall.get":
            body = self._wall_get(owner, params, fault)
        elif method == "wall.getComments":
            body = self._get_comments(owner, params, fault)
        else:
            body = self.error(3, "Unknown method passed")
        self._send(req, 200, body, truncate=fault == "truncated")

    def _page(self, items, params, fault):
        offset = int(params.get("offset", "0"))
        count = min(100, int(params.get("count", "20")))
        if fault == "overlap":
            offset = max(0, offset - 3)
        page = items[offset:offset + count]
        if fault == "shuffle":
            page = list(page)
            random.Random(len(page)).shuffle(page)
        return page

    def _wall_get(self, owner, params, fault):
        with self.lock:
            posts = sorted(self.posts.get(owner, []), key=lambda p: -p["id"])
            comments = list(self.comments.get(owner, []))
        items = []
        for p in self._page(posts, params, fault):
            p = dict(p)
            p["comments"] = {"can_post": 1, "groups_can_post": True,
                             "count": sum(1 for c in comments if c["post_id"] == p["id"])}
            items.append(p)
        return json.dumps({"response": {"count": len(posts), "items": items}},
                          ensure_ascii=False)

    def _get_comments(self, owner, params, fault):
        post = int(params.get("post_id", "0"))
        with self.lock:
            if not any(p["id"] == post for p in self.posts.get(owner, [])):
                return self.error(18, "User was deleted or banned")  # as VK says for posts
            comments = sorted((c for c in self.comments.get(owner, []) if c["post_id"] == post),
                              key=lambda c: c["id"])
        thread_items = min(10, int(params.get("thread_items_count", "0")))
        if "comment_id" in params:
            level = [c for c in comments if c["thread_of"] == int(params["comment_id"])]
        else:
            level = [c for c in comments if c["thread_of"] is None]
        items = []
        for c in self._page(level, params, fault):
            with self.lock:
                if c["id"] in self.hidden:
                    self.hidden.discard(c["id"])
                    continue
            out = public(c)
            if c["thread_of"] is None:
                replies = [r for r in comments if r["thread_of"] == c["id"]]
                out["thread"] = {"count": len(replies),
                                 "items": [public(r) for r in replies[:thread_items]],
                                 "can_post": True}
            items.append(out)
        return json.dumps({"response": {"count": len(comments), "items": items,
                                        "current_level_count": len(level), "can_post": 1,
                                        "show_reply_button": 1, "groups_can_post": True}},
                          ensure_ascii=False)
