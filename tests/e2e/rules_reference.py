#!/usr/bin/env python3
"""An independent, brute-force reference implementation of replywatch's pairing rules.

Written from README.md ("Configuration", "The rules") and docs/ingest-format.md only,
never from the C++ sources, so that end-to-end tests can use it as an oracle for the
daemon's `--appeals` output. Standard library plus PyYAML.

The result is a pure function of the SET of events and the clock:

    registry = load_registry("agencies.yaml")          # or an already parsed dict
    result = appeals(registry, events, clock)           # list of appeal dicts

    python3 rules_reference.py --config C.yaml --clock T FILE.ndjson...

Public functions: load_registry, appeals, business_seconds, parse_time, parse_id,
normalize_event, read_ndjson, appeal_sort_key, main.

Decisions where the rules leave room:
- a conversation listed by two agencies, or an agency id used twice, is a
  configuration error (ValueError); so is an interval whose start equals its end;
- "24:00" is accepted as the end of an interval (the next local midnight);
- overlapping business intervals count once (their union);
- business time is the set of instants whose LOCAL wall-clock date and time lie in an
  interval: in a spring-forward gap nothing is counted for the skipped local times, in
  a fall-back fold the repeated local hour counts twice (it really is worked twice);
- `business_hours: {}` means no business time at all; `business_hours: null` is an
  error (strict) or the same as no key (strict=False);
- an account listed twice (two agencies, or an agency and ignore_accounts) is an error
  (strict), as `replywatch check-config` says; strict=False keeps the class order;
- without --clock the command line uses the latest time of any message or service
  event (the replay's clock).
"""
import argparse
import datetime
import json
import re
import sys
import zoneinfo

DAY = 86400
DEFAULT_HORIZON = 604800
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]   # date.weekday() order
SOURCES = {"telegram", "vk", "facebook", "instagram", "mastodon", "x"}
KINDS = {"message", "service", "edit", "delete"}
AUTHOR_KINDS = {"user", "chat", "bot", "automatic_forward"}

_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()

# ---------------------------------------------------------------------------
# ids and times


def parse_id(value):
    """An id: a JSON integer or a string of decimal digits (optionally negative)."""
    if isinstance(value, bool):
        raise ValueError("bad id: %r" % (value,))
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?(0|[1-9][0-9]*)", value):
        return int(value)
    raise ValueError("bad id: %r" % (value,))


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def parse_time(value):
    """Unix seconds (int) or an RFC 3339 date-time with an offset; fractions truncated,
    a leap second (:60) is the next second."""
    if isinstance(value, bool):
        raise ValueError("bad time: %r" % (value,))
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError("bad time: %r" % (value,))
    m = _RFC3339.fullmatch(value)
    if not m:
        raise ValueError("bad time: %r" % (value,))
    date, hh, mm, ss, _fraction, offset = m.groups()
    if offset in ("Z", "z"):
        offset = "+00:00"
    extra = 0
    if ss == "60":          # leap second: counts as the next second
        ss, extra = "59", 1
    dt = datetime.datetime.fromisoformat("%sT%s:%s:%s%s" % (date, hh, mm, ss, offset))
    # timestamp() of an aware datetime is exact for whole seconds
    return int(dt.timestamp()) + extra


def normalize_event(e):
    """An NDJSON event dict -> a dict with ints and defaults filled in.
    `null` means the same as a missing field."""
    def get(k):
        return e.get(k)
    kind = get("kind") or "message"
    if kind not in KINDS:
        raise ValueError("bad kind: %r" % (kind,))
    author_kind = get("author_kind") or "user"
    if author_kind not in AUTHOR_KINDS:
        raise ValueError("bad author_kind: %r" % (author_kind,))
    source = get("source")
    if source not in SOURCES:
        raise ValueError("bad source: %r" % (source,))
    message_id = parse_id(get("message_id"))
    if message_id <= 0:
        raise ValueError("bad message_id: %r" % (message_id,))
    reply_to = get("reply_to")
    reply_to = None if reply_to is None else parse_id(reply_to)
    addressee = get("addressee")
    addressee = None if addressee is None else parse_id(addressee)
    author = get("author")
    if author is None:
        if kind != "service":
            raise ValueError("missing author")
    else:
        author = parse_id(author)
    if get("time") is None:
        raise ValueError("missing time")
    return {
        "source": source,
        "conversation": parse_id(get("conversation")),
        "message_id": message_id,
        "reply_to": reply_to,
        "addressee": addressee,
        "author": author,
        "author_kind": author_kind,
        "time": parse_time(get("time")),
        "kind": kind,
    }


def read_ndjson(path):
    """The event dicts of one NDJSON file (blank and '#' comment lines skipped)."""
    out = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            s = line.strip(" \t\r\n")
            if not s or s.startswith("#"):
                continue
            out.append(json.loads(s))
    return out

# ---------------------------------------------------------------------------
# configuration


class Agency:
    def __init__(self, id, name, timezone, hours, holidays, target, conversations,
                 accounts):
        self.id = id
        self.name = name
        self.timezone = timezone
        self.tz = zoneinfo.ZoneInfo(timezone)
        self.hours = hours            # None (every second counts) or {weekday: [(s, e)]}
        self.holidays = holidays      # set of datetime.date
        self.target = target
        self.conversations = conversations   # list of (source, id)
        self.accounts = accounts      # {(source, id): {"role", "name", "branch"}}


class Registry:
    def __init__(self, horizon, c2c, ignore, agencies):
        self.horizon = horizon
        self.citizen_replies_to_citizens = c2c
        self.ignore = ignore          # set of (source, id)
        self.agencies = agencies      # list of Agency
        self.owner = {}               # (source, conversation) -> Agency
        for a in agencies:
            for key in a.conversations:
                if key in self.owner:
                    raise ValueError("conversation %s:%d listed by two agencies" % key)
                self.owner[key] = a


def _hhmm(s, allow_24=False):
    m = re.fullmatch(r"(\d{2}):(\d{2})", s)
    if not m:
        raise ValueError("bad time of day %r" % (s,))
    h, mi = int(m.group(1)), int(m.group(2))
    if allow_24 and h == 24 and mi == 0:
        return DAY
    if h > 23 or mi > 59:
        raise ValueError("bad time of day %r" % (s,))
    return h * 3600 + mi * 60


def _interval(text):
    parts = text.split("-")
    if len(parts) != 2:
        raise ValueError("bad interval %r" % (text,))
    s, e = _hhmm(parts[0].strip()), _hhmm(parts[1].strip(), allow_24=True)
    if s == e:
        raise ValueError("empty or ambiguous interval %r" % (text,))
    return (s, e)


def _date(value):
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value))


def _key(entry):
    source = entry["source"]
    if source not in SOURCES:
        raise ValueError("bad source %r" % (source,))
    return (source, parse_id(entry["id"]))


def load_registry(config, strict=True):
    """The registry from a replywatch YAML file (path) or an already parsed dict.

    strict (default) also rejects, like `replywatch check-config`, an account listed
    twice (under two agencies, or under an agency and ignore_accounts) and
    `business_hours: null`; with strict=False such a configuration is taken as it is
    and the order of the author classes decides."""
    if not isinstance(config, dict):
        import yaml
        with open(config, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    horizon = config.get("horizon_secs")
    horizon = DEFAULT_HORIZON if horizon is None else int(horizon)
    c2c = config.get("citizen_replies_to_citizens") or "ignore"
    if c2c not in ("ignore", "appeal"):
        raise ValueError("citizen_replies_to_citizens must be ignore or appeal")
    ignore = set(_key(x) for x in (config.get("ignore_accounts") or []))
    agencies = []
    seen = set()
    account_owner = {}
    for a in config.get("agencies") or []:
        aid = str(a["id"])
        if aid in seen:
            raise ValueError("agency %s listed twice" % aid)
        seen.add(aid)
        bh = a.get("business_hours")
        if strict and "business_hours" in a and bh is None:
            raise ValueError("agency %s: business_hours must be a mapping" % aid)
        if bh is None:
            hours = None
        else:
            hours = {}
            for day, intervals in bh.items():
                if day not in WEEKDAYS:
                    raise ValueError("bad weekday %r" % (day,))
                hours[day] = [_interval(x) for x in (intervals or [])]
        holidays = set(_date(x) for x in (a.get("holidays") or []))
        accounts = {}
        for acc in a.get("accounts") or []:
            key = _key(acc)
            if strict and (key in ignore or key in account_owner):
                raise ValueError("account %s:%d listed twice" % key)
            account_owner[key] = aid
            accounts[key] = {
                "role": acc.get("role"),
                "name": acc.get("name"),
                "branch": acc.get("branch") or "",
            }
        conversations = [_key(c) for c in a["conversations"]]
        agencies.append(Agency(aid, a["name"], a["timezone"], hours, holidays,
                               a.get("target_business_secs"), conversations, accounts))
    return Registry(horizon, c2c, ignore, agencies)

# ---------------------------------------------------------------------------
# business seconds

_transitions_cache = {}


def _offset(tz, t):
    return int(datetime.datetime.fromtimestamp(t, tz).utcoffset().total_seconds())


def _year_transitions(tz, year):
    """Instants x in (start of `year`, start of `year`+1] (UTC) with
    offset(x - 1) != offset(x). Found by an hourly scan plus bisection (no zone changes
    its offset twice within an hour)."""
    key = (str(tz), year)
    if key not in _transitions_cache:
        ys = int(datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
        ye = int(datetime.datetime(year + 1, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
        found = []
        t = ys
        off_t = _offset(tz, t)
        while t < ye:
            n = min(t + 3600, ye)
            off_n = _offset(tz, n)
            if off_n != off_t:
                lo, hi = t, n          # offset(lo) == off_t, offset(hi) != off_t
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if _offset(tz, mid) == off_t:
                        lo = mid
                    else:
                        hi = mid
                found.append(hi)
            t, off_t = n, off_n
        _transitions_cache[key] = found
    return _transitions_cache[key]


def _offset_segments(tz, a, b):
    """[a, b) cut into pieces [u, v) of constant UTC offset: (u, v, offset)."""
    ya = datetime.datetime.fromtimestamp(a, datetime.timezone.utc).year - 1
    yb = datetime.datetime.fromtimestamp(b, datetime.timezone.utc).year
    cuts = []
    for y in range(ya, yb + 1):
        cuts.extend(x for x in _year_transitions(tz, y) if a < x < b)
    points = [a] + sorted(set(cuts)) + [b]
    return [(u, v, _offset(tz, u)) for u, v in zip(points, points[1:]) if u < v]


def _day_base(d):
    """A local date's midnight in 'naive local seconds' (local wall clock read as UTC)."""
    return (d.toordinal() - _EPOCH_ORDINAL) * DAY


def _business_naive(agency, n1, n2):
    """Merged business intervals, in naive local seconds, that may touch [n1, n2)."""
    first = datetime.date.fromordinal(n1 // DAY + _EPOCH_ORDINAL) - datetime.timedelta(days=1)
    last = datetime.date.fromordinal(n2 // DAY + _EPOCH_ORDINAL)
    pieces = []
    d = first
    while d <= last:
        if d not in agency.holidays:
            base = _day_base(d)
            for s, e in agency.hours.get(WEEKDAYS[d.weekday()], []):
                start = base + s
                end = base + e if e > s else base + DAY + e
                # the part past midnight never falls on a holiday
                if end > base + DAY and (d + datetime.timedelta(days=1)) in agency.holidays:
                    end = base + DAY
                if start < end:
                    pieces.append((start, end))
        d += datetime.timedelta(days=1)
    pieces.sort()
    merged = []
    for s, e in pieces:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def business_seconds(agency, start, end):
    """Seconds of [start, end] (unix seconds) inside the agency's business hours."""
    if end <= start:
        return 0
    if agency.hours is None:
        return end - start
    total = 0
    for u, v, off in _offset_segments(agency.tz, start, end):
        n1, n2 = u + off, v + off
        for s, e in _business_naive(agency, n1, n2):
            lo, hi = max(s, n1), min(e, n2)
            if lo < hi:
                total += hi - lo
    return total

# ---------------------------------------------------------------------------
# pairing

SERVICE, IGNORED, OFFICIAL, FOREIGN, CITIZEN = "service", "ignored", "official", "foreign", "citizen"


def _classify(registry, agency, m):
    """(class, responder or None) of a normalized message in `agency`'s conversation."""
    if m["kind"] == "service":
        return SERVICE, None
    key = (m["source"], m["author"])
    if key in registry.ignore:
        return IGNORED, None
    if key in agency.accounts:
        acc = agency.accounts[key]
        responder = {"id": str(m["author"]), "role": acc["role"]}
        if acc["branch"]:
            responder["branch"] = acc["branch"]
        return OFFICIAL, responder
    if m["author"] == m["conversation"]:
        return OFFICIAL, {"id": str(m["author"]), "role": "anonymous_admin"}
    for other in registry.agencies:
        if other is not agency and key in other.accounts:
            return FOREIGN, None
    if m["author_kind"] in ("bot", "automatic_forward"):
        return IGNORED, None
    return CITIZEN, None


def appeal_sort_key(a):
    """The order of appeals(): (agency, conversation, opened_message), source last."""
    return (a["agency"], int(a["conversation"]), a["opened_message"], a["source"])


def appeals(registry, events, clock):
    """Every appeal of the history `events` (NDJSON event dicts) at `clock`."""
    horizon = registry.horizon
    messages = {}     # (source, conversation) -> {message_id: normalized message}
    deleted = {}      # (source, conversation) -> set of message_id
    for raw in events:
        e = normalize_event(raw)
        conv = (e["source"], e["conversation"])
        if e["kind"] in ("message", "service"):
            messages.setdefault(conv, {}).setdefault(e["message_id"], e)  # first wins
        elif e["kind"] == "delete":
            deleted.setdefault(conv, set()).add(e["message_id"])
        # edits never pair and do not count as the message

    result = []
    for conv in sorted(messages):
        agency = registry.owner.get(conv)
        if agency is None:
            continue
        msgs = messages[conv]
        gone = deleted.get(conv, set())
        info = {}         # message_id -> (class, thread, author)
        open_ = {}        # (citizen, thread) -> appeal dict
        had = set()       # (citizen, thread) that ever had an appeal
        conv_appeals = []

        def open_appeal(m, citizen, thread):
            a = {
                "agency": agency.id,
                "source": conv[0],
                "conversation": str(conv[1]),
                "thread": thread,
                "citizen": str(citizen),
                "opened_message": m["message_id"],
                "opened_at": m["time"],
                "kind": "followup" if (citizen, thread) in had else "first",
                "status": "open",
            }
            had.add((citizen, thread))
            open_[(citizen, thread)] = a
            conv_appeals.append(a)

        for mid in sorted(msgs):
            m = msgs[mid]
            p = m["reply_to"]
            parent = p if (p is not None and p in msgs and p < mid) else None
            if parent is not None:
                thread = info[parent][1]
            elif p is not None:
                thread = p
            else:
                thread = mid
            cls, responder = _classify(registry, agency, m)
            info[mid] = (cls, thread, m["author"])
            pinfo = info[parent] if parent is not None else None

            if cls == CITIZEN:
                c = m["author"]
                if (registry.citizen_replies_to_citizens == "ignore" and pinfo is not None
                        and pinfo[0] == CITIZEN and pinfo[2] != c):
                    continue
                a = open_.get((c, thread))
                if a is not None and m["time"] <= a["opened_at"] + horizon:
                    continue                       # joins the open appeal
                if a is not None:
                    a["status"] = "unanswered"
                    del open_[(c, thread)]
                open_appeal(m, c, thread)
            elif cls == OFFICIAL:
                # The citizen it names (ndjson `addressee`), or else its citizen parent's.
                if m.get("addressee"):
                    c = m["addressee"]
                elif pinfo is not None and pinfo[0] == CITIZEN:
                    c = pinfo[2]
                else:
                    continue
                a = open_.pop((c, thread), None)
                if a is None:
                    continue
                if m["time"] > a["opened_at"] + horizon:
                    a["status"] = "unanswered"
                else:
                    a["status"] = "answered"
                    a["answer_message"] = mid
                    a["answered_at"] = m["time"]
                    a["responder"] = responder
                    a["reply_seconds"] = max(0, m["time"] - a["opened_at"])
                    a["business_reply_seconds"] = business_seconds(
                        agency, a["opened_at"], max(m["time"], a["opened_at"]))
            # service, ignored and foreign messages do nothing

        for a in open_.values():
            if clock > a["opened_at"] + horizon:
                a["status"] = "unanswered"
        for a in conv_appeals:
            if a["opened_message"] in gone and a["status"] != "answered":
                a["status"] = "withdrawn"
        result.extend(conv_appeals)
    result.sort(key=appeal_sort_key)
    return result

# ---------------------------------------------------------------------------
# command line


def main(argv=None):
    ap = argparse.ArgumentParser(description="replywatch pairing rules, reference version")
    ap.add_argument("--config", required=True)
    ap.add_argument("--clock", type=int, default=None,
                    help="unix seconds (default: the latest message time)")
    ap.add_argument("files", nargs="+", metavar="FILE.ndjson")
    args = ap.parse_args(argv)
    registry = load_registry(args.config)
    events = []
    for path in args.files:
        events.extend(read_ndjson(path))
    clock = args.clock
    if clock is None:
        times = [normalize_event(e)["time"] for e in events
                 if (e.get("kind") or "message") in ("message", "service")]
        clock = max(times) if times else 0
    out = sys.stdout
    for a in appeals(registry, events, clock):
        out.write(json.dumps(a, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
