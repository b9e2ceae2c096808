#!/usr/bin/env python3
"""A seeded generator of realistic replywatch histories: NDJSON event dicts
(docs/ingest-format.md) plus a matching configuration dict.

    config, events = generate(seed=7, days=14, appeals_per_day=40, conversations=4,
                              now=int(time.time()))

What a history holds, per owned Telegram discussion group (-100180000NNNN):
channel posts mirrored into the group (author_kind automatic_forward), citizens
(Zipf-distributed activity, a few very active) opening appeals as top-level messages,
as comments on mirrored posts, or as replies to messages that were never delivered;
extra messages joining an appeal; official answers by people with roles and branches,
by the conversation itself (anonymous admins) and by the agency's channel, after
log-normal delays (median 1-3 h, sigma 1.5), some never, some after the horizon;
follow-ups replying to an answer; citizens replying to each other; now and then an
official of ANOTHER agency answering; a bot listed in ignore_accounts and a bot that is
only marked author_kind bot; service messages (joins); edits; deletions by citizens
and moderators of appeals, answers, spam and of never-delivered messages, a few of
them delivered BEFORE the message they delete. Message ids ascend per conversation
with gaps (never-delivered messages), times are non-decreasing in id order, and the
history ends shortly before `now`. A channel's own posts and an unowned chat are
included too; they pair nothing.

Delivery perturbations (they never change the set of messages):
shuffle(events, rng), duplicate(events, rng, fraction), split(events, rng, parts).
"""
import bisect
import copy
import datetime
import json
import math
import random
import zoneinfo

DAY = 86400
HOUR = 3600
DEFAULT_NOW = 1775000000          # 2026-03-31T23:33:20Z: a DST change in March

IGNORED_BOT = 7000001             # listed in ignore_accounts
MARKED_BOT = 7000002              # only author_kind bot

_AGENCY_TEMPLATES = [
    {
        "id": "akimat_almaty", "name": "Акимат г. Алматы", "timezone": "Asia/Almaty",
        "business_hours": {d: ["09:00-13:00", "14:00-18:30"] for d in
                           ("mon", "tue", "wed", "thu")} | {"fri": ["09:00-13:00", "14:00-18:00"],
                                                             "sat": ["10:00-14:00"], "sun": []},
        "target_business_secs": 10800,
    },
    {
        "id": "consulate_berlin", "name": "Консульский отдел в Берлине",
        "timezone": "Europe/Berlin",
        "business_hours": {d: ["08:30-12:30", "14:00-17:00"] for d in
                           ("mon", "tue", "wed", "thu")} | {"fri": ["08:30-13:00"]},
        "target_business_secs": 28800,
    },
    {
        "id": "hotline_ekb", "name": "Горячая линия Екатеринбург",
        "timezone": "Asia/Yekaterinburg",
        "business_hours": {d: ["08:00-20:00", "22:00-02:00"] for d in
                           ("mon", "tue", "wed", "thu", "fri")} | {"sat": ["22:00-02:00"]},
        "target_business_secs": 3600,
    },
    {
        "id": "mission_ny", "name": "Mission in New York", "timezone": "America/New_York",
        # no business_hours: every second is a business second
    },
]
_ROLES = [("press_office", ""), ("deputy", ""), ("regional_director", "north"),
          ("regional_director", "south"), ("moderator", ""), ("chairman", "")]


class _Msg:
    __slots__ = ("time", "seq", "author", "author_kind", "kind", "reply", "visible", "id")

    def __init__(self, time, seq, author, author_kind="user", kind="message", reply=None,
                 visible=True):
        self.time, self.seq, self.author, self.author_kind = time, seq, author, author_kind
        self.kind, self.reply, self.visible, self.id = kind, reply, visible, None


class _Conv:
    """One discussion group being written."""

    def __init__(self, gen, conv_id, agency, channel):
        self.gen, self.id, self.agency, self.channel = gen, conv_id, agency, channel
        self.msgs = []
        self.edits = []        # (time, author, target _Msg)
        self.deletes = []      # (time, author, target _Msg, delivered_early)
        self.posts = []        # mirrored channel posts, by time
        self.post_times = []
        self.noise = []        # service messages and the welcome bot's, by time

    def add(self, time, author, author_kind="user", kind="message", reply=None,
            visible=True):
        m = _Msg(int(time), self.gen.next_seq(), author, author_kind, kind, reply, visible)
        self.msgs.append(m)
        return m


class _Gen:
    def __init__(self, rng):
        self.rng = rng
        self.seq = 0

    def next_seq(self):
        self.seq += 1
        return self.seq


def _lognormal(rng, median, sigma=1.5):
    return median * math.exp(rng.gauss(0.0, sigma))


def _time_value(rng, t, tz):
    """t as an int or as an RFC 3339 string (Z, the agency's offset, or a fraction)."""
    r = rng.random()
    if r < 0.7:
        return t
    if r < 0.8:
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    if r < 0.9:
        return datetime.datetime.fromtimestamp(t, tz).isoformat()
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S") + ".%03dZ" % rng.randrange(1000)


def _id_value(rng, v):
    return str(v) if rng.random() < 0.3 else v


def generate(seed=1, days=14, appeals_per_day=40, conversations=4, now=DEFAULT_NOW,
             citizen_replies_to_citizens=None, horizon_secs=604800, oddities=True):
    """(config dict, list of NDJSON event dicts). `oddities` adds a few replies whose
    reply_to is not below the message's own id (producers do send such things)."""
    rng = random.Random(seed)
    gen = _Gen(rng)
    n_agencies = max(2, min(len(_AGENCY_TEMPLATES), (conversations + 1) // 2))
    end = now - rng.randrange(300, 1800)
    start = end - days * DAY
    if citizen_replies_to_citizens is None:
        citizen_replies_to_citizens = rng.choice(["ignore", "ignore", "appeal"])

    # --- the registry
    agencies = []
    for k in range(n_agencies):
        t = copy.deepcopy(_AGENCY_TEMPLATES[k])
        tz = zoneinfo.ZoneInfo(t["timezone"])
        # two holidays inside the history, as local dates
        hol = set()
        for _ in range(2):
            hol.add(datetime.datetime.fromtimestamp(rng.uniform(start, end), tz).date())
        t["holidays"] = sorted(d.isoformat() for d in hol)
        t["conversations"] = []
        channel = -1001700000000 - (k + 1) * 1111
        t["accounts"] = [{"source": "telegram", "id": channel, "role": "channel",
                          "name": t["name"] + " | канал"}]
        for j in range(rng.randrange(3, 6)):
            role, branch = _ROLES[j]
            acc = {"source": "telegram", "id": 5000000000 + (k + 1) * 1000 + j * 7,
                   "role": role, "name": "%s %d" % (role, j)}
            if branch:
                acc["branch"] = branch
            t["accounts"].append(acc)
        agencies.append(t)
    convs = []
    for c in range(conversations):
        a = agencies[c % n_agencies]
        conv_id = -1001800000000 - (c + 1) * 1013
        a["conversations"].append({"source": "telegram", "id": conv_id})
        # most groups mirror their agency's (listed) channel; every third one mirrors an
        # unlisted regional channel, whose forwards are then only "ignored"
        if c % 3 == 2:
            channel = -1001600000000 - (c + 1) * 777
        else:
            channel = a["accounts"][0]["id"]
        convs.append(_Conv(gen, conv_id, a, channel))
    unowned = _Conv(gen, -1001899999999, None, -1001699999999)
    config = {
        "horizon_secs": horizon_secs,
        "citizen_replies_to_citizens": citizen_replies_to_citizens,
        "ignore_accounts": [{"source": "telegram", "id": IGNORED_BOT}],
        "agencies": agencies,
    }

    # --- citizens: Zipf activity
    n_citizens = 40 + 20 * conversations + int(appeals_per_day * days / 8)
    citizens = [400000000 + 37 * i for i in range(n_citizens)]
    weights = [1.0 / (i + 1) ** 0.9 for i in range(n_citizens)]
    cum = []
    acc_w = 0.0
    for w in weights:
        acc_w += w
        cum.append(acc_w)

    def citizen(exclude=None):
        while True:
            c = citizens[bisect.bisect_left(cum, rng.random() * acc_w)]
            if c != exclude:
                return c

    for conv in convs:
        _write_conv(rng, conv, agencies, start, end, appeals_per_day / conversations,
                    citizen, horizon_secs, oddities)
    _write_unowned(rng, unowned, start, end, citizen)

    # --- events
    events = []
    for conv in convs + [unowned]:
        events.extend(_conv_events(rng, conv, end))
    # the channels' own posts (conversations no agency owns), one id sequence per channel
    by_channel = {}
    for conv in convs:
        tz = zoneinfo.ZoneInfo(conv.agency["timezone"])
        by_channel.setdefault(conv.channel, []).extend((p.time, p.seq, tz) for p in conv.posts)
    for channel, posts in sorted(by_channel.items()):
        posts.sort(key=lambda x: (x[0], x[1]))
        for i, (time, seq, tz) in enumerate(posts):
            events.append((time, seq, {
                "source": "telegram", "conversation": _id_value(rng, channel),
                "message_id": _id_value(rng, 100 + i), "author": channel,
                "author_kind": "chat", "time": _time_value(rng, time, tz)}))
    events.sort(key=lambda x: (x[0], x[1]))
    return config, [e for _, _, e in events]


def _write_conv(rng, conv, agencies, start, end, rate_per_day, citizen, horizon, oddities):
    a = conv.agency
    tz = zoneinfo.ZoneInfo(a["timezone"])
    people = [x["id"] for x in a["accounts"] if x["role"] != "channel"]
    moderator = people[-1]
    foreign = [x["id"] for o in agencies if o is not a for x in o["accounts"]
               if x["role"] != "channel"]
    median = rng.uniform(1, 3) * HOUR

    # channel posts mirrored into the group, and joins with the welcome bot
    t = start
    while True:
        t += rng.expovariate(3.0 / DAY)
        if t >= end:
            break
        p = conv.add(t, conv.channel, "automatic_forward")
        conv.posts.append(p)
        conv.post_times.append(p.time)
    t = start
    while True:
        t += rng.expovariate(5.0 / DAY)
        if t >= end:
            break
        who = citizen()
        s = conv.add(t, who if rng.random() < 0.7 else None, kind="service")
        conv.noise.append(s)
        if rng.random() < 0.6:
            conv.noise.append(conv.add(t + rng.randrange(0, 5), IGNORED_BOT, "bot", reply=s))
    conv.noise.sort(key=lambda m: (m.time, m.seq))
    noise_times = [m.time for m in conv.noise]
    # messages that never reach us (deleted before collection, other bots' traffic)
    invisible = []
    t = start
    while True:
        t += rng.expovariate(4.0 / DAY)
        if t >= end:
            break
        invisible.append(conv.add(t, citizen(), visible=False))
    # officials' own announcements (no parent, or replying to a post)
    t = start
    while True:
        t += rng.expovariate(1.0 / DAY)
        if t >= end:
            break
        conv.add(t, rng.choice(people), reply=_recent_post(rng, conv, t, 1.0))

    # appeals: Poisson arrivals, thinned by the local hour of day
    def accept(t):
        h = datetime.datetime.fromtimestamp(t, tz).hour
        return rng.random() < (0.25 if h < 7 or h >= 23 else 1.0)

    rate = rate_per_day / (16 / 24 + 0.25 * 8 / 24)
    t = start
    while True:
        t += rng.expovariate(rate / DAY)
        if t >= end:
            break
        if not accept(t):
            continue
        c = citizen()
        r = rng.random()
        if r < 0.5:
            reply = _recent_post(rng, conv, t, 0.9)
        elif r < 0.85:
            reply = None
        elif r < 0.93:
            earlier = [m for m in invisible if m.time <= t]
            reply = rng.choice(earlier[-20:]) if earlier else None
        else:
            i = bisect.bisect_right(noise_times, int(t))
            reply = rng.choice(conv.noise[max(0, i - 5):i]) if i else None
        if rng.random() < 0.03:          # spam, removed by a moderator soon after
            m = conv.add(t, c, reply=reply)
            conv.deletes.append((m.time + rng.randrange(30, 3600), moderator, m,
                                 rng.random() < 0.1))
            continue
        _appeal(rng, conv, c, t, reply, end, people, foreign, moderator, median,
                horizon, citizen, depth=0)

    if oddities:
        for _ in range(max(1, int(rate_per_day * (end - start) / DAY / 200))):
            t = rng.uniform(start, end)
            conv.add(t, citizen(), reply=("future", rng.randrange(0, 4)))


def _recent_post(rng, conv, t, p):
    """A mirrored post from the last two days before t, with probability p."""
    i = bisect.bisect_right(conv.post_times, int(t))
    if i == 0 or rng.random() >= p:
        return None
    lo = i - 1
    while lo > 0 and conv.post_times[lo - 1] > t - 2 * DAY and i - lo < 6:
        lo -= 1
    return conv.posts[rng.randrange(lo, i)]


def _appeal(rng, conv, c, t, reply, end, people, foreign, moderator, median, horizon,
            citizen, depth):
    first = conv.add(t, c, reply=reply)
    mine = [first]
    # more messages joining the appeal
    while rng.random() < 0.3:
        u = mine[-1].time + _lognormal(rng, 300, 1.0)
        if u >= end:
            break
        mine.append(conv.add(u, c, reply=rng.choice([first, reply, mine[-1]])))
    if rng.random() < 0.02:              # the same citizen again, after the horizon
        u = t + horizon + rng.uniform(HOUR, 3 * DAY)
        if u < end:
            conv.add(u, c, reply=first)
    # edits and the citizen's own deletions
    for m in mine:
        if rng.random() < 0.1:
            conv.edits.append((m.time + rng.randrange(10, 1800), c, m))
    if rng.random() < 0.04:
        victim = rng.choice(mine)
        conv.deletes.append((victim.time + rng.randrange(60, 2 * DAY), c, victim,
                             rng.random() < 0.25))
    # another citizen replying to this one
    if rng.random() < 0.15:
        other = citizen(exclude=c)
        u = t + _lognormal(rng, 900, 1.0)
        if u < end:
            o = conv.add(u, other, reply=rng.choice([m for m in mine if m.time <= u]))
            if rng.random() < 0.3:       # and an official answering the other citizen
                v = u + _lognormal(rng, median, 1.5)
                if v < end:
                    conv.add(v, rng.choice(people), reply=o)
    # a bot marked only by author_kind, replying to the citizen
    if rng.random() < 0.05:
        conv.add(t + rng.randrange(1, 60), MARKED_BOT, "bot", reply=first)
    # an official of another agency, now and then
    if rng.random() < 0.05:
        u = t + _lognormal(rng, median / 2, 1.0)
        if u < end:
            conv.add(u, rng.choice(foreign), reply=rng.choice([m for m in mine if m.time <= u]))
    # the answer
    r = rng.random()
    if r < 0.12:
        return
    if r < 0.15:
        delay = horizon + rng.uniform(HOUR, 3 * DAY)
    else:
        delay = _lognormal(rng, median, 1.5)
    ta = t + delay
    if ta >= end:
        return
    who = rng.random()
    if who < 0.7:
        author, kind = rng.choice(people), "user"
    elif who < 0.85:
        author, kind = conv.id, "chat"
    else:
        author, kind = conv.agency["accounts"][0]["id"], "chat"
    target = rng.choice([m for m in mine if m.time <= ta])
    ans = conv.add(ta, author, kind, reply=target)
    if rng.random() < 0.05:
        conv.edits.append((ans.time + rng.randrange(10, 600), author, ans))
    if rng.random() < 0.01:              # a moderator deletes the answer
        conv.deletes.append((ans.time + rng.randrange(60, DAY), moderator, ans, False))
    # a follow-up replying to the answer
    if depth < 2 and rng.random() < 0.25:
        u = ta + _lognormal(rng, 1800, 1.2)
        if u < end:
            _appeal(rng, conv, c, u, ans, end, people, foreign, moderator, median,
                    horizon, citizen, depth + 1)


def _write_unowned(rng, conv, start, end, citizen):
    t = start
    while True:
        t += rng.expovariate(6.0 / DAY)
        if t >= end:
            break
        m = conv.add(t, citizen())
        if rng.random() < 0.5:
            conv.add(t + _lognormal(rng, HOUR), conv.id, "chat", reply=m)


def _conv_events(rng, conv, end):
    """Assign ids (ascending in time, with gaps) and write the conversation's events as
    (delivery time, order, event) triples."""
    msgs = sorted(conv.msgs, key=lambda m: (m.time, m.seq))
    next_id = rng.randrange(1, 50)
    for m in msgs:
        m.id = next_id
        next_id += 1 if rng.random() < 0.93 else rng.randrange(2, 7)
    tz = zoneinfo.ZoneInfo(conv.agency["timezone"]) if conv.agency else datetime.timezone.utc
    out = []
    by_msg = {}
    for m in msgs:
        if not m.visible or m.time >= end:      # lost, or has not happened yet
            continue
        e = {"source": "telegram", "conversation": _id_value(rng, conv.id),
             "message_id": _id_value(rng, m.id), "time": _time_value(rng, m.time, tz)}
        if m.kind != "message":
            e["kind"] = m.kind
        if m.author is not None:
            e["author"] = _id_value(rng, m.author)
        if m.author_kind != "user" or rng.random() < 0.3:
            e["author_kind"] = m.author_kind
        if isinstance(m.reply, _Msg):
            e["reply_to"] = _id_value(rng, m.reply.id)
        elif isinstance(m.reply, tuple):          # ("future", k): reply_to >= own id
            e["reply_to"] = m.id + m.reply[1]
        elif rng.random() < 0.05:
            e["reply_to"] = None                  # null is the same as leaving it out
        by_msg[id(m)] = len(out)
        out.append([m.time, m.seq, e])
    for time, author, target in conv.edits:
        if time >= end:                 # has not happened yet
            continue
        e = {"source": "telegram", "conversation": _id_value(rng, conv.id),
             "message_id": _id_value(rng, target.id), "author": _id_value(rng, author),
             "time": _time_value(rng, time, tz), "kind": "edit"}
        out.append([time, 0, e])
    for time, author, target, early in conv.deletes:
        if time >= end:
            continue
        e = {"source": "telegram", "conversation": _id_value(rng, conv.id),
             "message_id": _id_value(rng, target.id), "author": _id_value(rng, author),
             "time": _time_value(rng, time, tz), "kind": "delete"}
        if early:
            out.append([target.time, target.seq - 0.5, e])   # delivered before it
        else:
            out.append([time, 0, e])
    # an edit and a deletion of messages that were never delivered
    gone = [m for m in msgs if not m.visible and m.time + 90 < end]
    if gone:
        m = rng.choice(gone)
        out.append([m.time + 60, 0, {"source": "telegram", "conversation": conv.id,
                                     "message_id": m.id, "author": m.author,
                                     "time": m.time + 60, "kind": "edit"}])
        m = rng.choice(gone)
        out.append([m.time + 90, 0, {"source": "telegram", "conversation": conv.id,
                                     "message_id": m.id, "author": m.author,
                                     "time": m.time + 90, "kind": "delete"}])
    return [tuple(x) for x in out]

# ---------------------------------------------------------------------------
# delivery perturbations


def shuffle(events, rng):
    """The same events in a random order."""
    out = list(events)
    rng.shuffle(out)
    return out


def duplicate(events, rng, fraction):
    """The events plus copies of about `fraction` of them, each copy at a random place."""
    n = len(events)
    k = int(round(n * fraction))
    items = [(float(i), 0, e) for i, e in enumerate(events)]
    for _ in range(k if n else 0):
        items.append((rng.uniform(0, n), 1, copy.deepcopy(events[rng.randrange(n)])))
    items.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in items]


def split(events, rng, parts):
    """The events dealt into `parts` lists (e.g. files), each keeping the relative order."""
    out = [[] for _ in range(parts)]
    for e in events:
        out[rng.randrange(parts)].append(e)
    return out

# ---------------------------------------------------------------------------
# files


def write_ndjson(path, events):
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")


def write_config(path, config, extra=None):
    """The configuration as YAML; `extra` (e.g. daemon:, connectors:) is merged in."""
    import yaml
    doc = dict(config)
    if extra:
        doc.update(extra)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, allow_unicode=True, sort_keys=False)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="write a generated history")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--appeals-per-day", type=float, default=40)
    ap.add_argument("--conversations", type=int, default=4)
    ap.add_argument("--now", type=int, default=DEFAULT_NOW)
    ap.add_argument("--config-out", required=True)
    ap.add_argument("--events-out", required=True)
    args = ap.parse_args()
    cfg, evs = generate(args.seed, args.days, args.appeals_per_day, args.conversations,
                        args.now)
    write_config(args.config_out, cfg)
    write_ndjson(args.events_out, evs)
