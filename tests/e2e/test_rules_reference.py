#!/usr/bin/env python3
"""Self-test of rules_reference.py on hand-worked fixtures, plus the metamorphic
property (delivery order, duplicates and file splits change nothing) on generated
histories. Plain python3: exit code 0 when every check passes, 1 otherwise."""
import calendar
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import history_gen  # noqa: E402
import rules_reference as rr  # noqa: E402

DAY = 86400
HOUR = 3600


def utc(y, mo, d, h=0, mi=0, s=0):
    return calendar.timegm((y, mo, d, h, mi, s))


T0 = utc(2026, 3, 2)            # Monday 2026-03-02 00:00 UTC
CONV_A = -1001800000001         # owned by alpha
CONV_B = -1001800000002         # owned by beta
CONV_X = -1001800000009         # owned by nobody
CHANNEL_A = -1001700000001      # alpha's channel (listed)
CHANNEL_U = -1001700000009      # a channel nobody lists
PRESS, NORTH = 501, 502         # alpha's people
BETA_DEPUTY = 601               # beta's person
BOT = 7000001                   # in ignore_accounts

BASE_CONFIG = {
    "horizon_secs": DAY,
    "ignore_accounts": [{"source": "telegram", "id": BOT}],
    "daemon": {"listen": "127.0.0.1:0"},          # ignored by the reference
    "agencies": [
        {"id": "alpha", "name": "Alpha", "timezone": "UTC",
         "conversations": [{"source": "telegram", "id": CONV_A}],
         "accounts": [
             {"source": "telegram", "id": CHANNEL_A, "role": "channel"},
             {"source": "telegram", "id": PRESS, "role": "press_office", "name": "P"},
             {"source": "telegram", "id": NORTH, "role": "regional_director",
              "branch": "north"},
         ]},
        {"id": "beta", "name": "Beta", "timezone": "UTC",
         "conversations": [{"source": "telegram", "id": CONV_B}],
         "accounts": [{"source": "telegram", "id": BETA_DEPUTY, "role": "deputy",
                       "branch": ""}]},
    ],
}


def registry(**changes):
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg.update(changes)
    return rr.load_registry(cfg)


def ev(mid, author, t, reply=None, kind=None, ak=None, conv=CONV_A):
    e = {"source": "telegram", "conversation": conv, "message_id": mid, "time": t}
    if author is not None:
        e["author"] = author
    if reply is not None:
        e["reply_to"] = reply
    if kind is not None:
        e["kind"] = kind
    if ak is not None:
        e["author_kind"] = ak
    return e


def delete(mid, t, author=PRESS, conv=CONV_A):
    return ev(mid, author, t, kind="delete", conv=conv)


def ap(thread, citizen, opened, at, kind, status, answer=None, agency="alpha", conv=CONV_A):
    """An expected appeal; answer = (message, time, responder, reply_s, business_s)."""
    a = {"agency": agency, "source": "telegram", "conversation": str(conv),
         "thread": thread, "citizen": str(citizen), "opened_message": opened,
         "opened_at": at, "kind": kind, "status": status}
    if answer:
        msg, t, responder, rs, bs = answer
        a.update(answer_message=msg, answered_at=t, responder=responder,
                 reply_seconds=rs, business_reply_seconds=bs)
    return a


R_PRESS = {"id": str(PRESS), "role": "press_office"}
R_NORTH = {"id": str(NORTH), "role": "regional_director", "branch": "north"}
R_ANON = {"id": str(CONV_A), "role": "anonymous_admin"}
R_CHANNEL = {"id": str(CHANNEL_A), "role": "channel"}

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def same(got, want, what):
    if got != want:
        lines = ["%s: mismatch" % what, "got:"]
        lines += ["  " + json.dumps(x, sort_keys=True) for x in got]
        lines += ["want:"] + ["  " + json.dumps(x, sort_keys=True) for x in want]
        raise AssertionError("\n".join(lines))

# ---------------------------------------------------------------------------
# pairing fixtures


@check
def basic_answer_followup_duplicates_order_unowned():
    t = T0
    events = [
        ev(10, 1001, t + 100),              # citizen 1001, thread 10: opens "first"
        ev(11, 1001, t + 200, reply=10),    # same citizen, same thread: joins
        ev(12, NORTH, t + 1000, reply=11),  # official reply to 1001's message: answers,
                                            # reply 1000-100 = 900, no hours -> business 900
        ev(13, 1001, t + 2000, reply=12),   # reply to the answer: thread 10, opens "followup"
        ev(14, PRESS, t + 2600, reply=13),  # answers it: 600 s, press_office, no branch
        # a chat nobody owns pairs nothing
        ev(10, 1001, t + 100, conv=CONV_X),
        ev(11, PRESS, t + 200, reply=10, conv=CONV_X),
    ]
    want = [
        ap(10, 1001, 10, t + 100, "first", "answered", (12, t + 1000, R_NORTH, 900, 900)),
        ap(10, 1001, 13, t + 2000, "followup", "answered", (14, t + 2600, R_PRESS, 600, 600)),
    ]
    reg = registry()
    same(rr.appeals(reg, events, t + 3000), want, "in order")
    # delivery in reverse order with redeliveries: id order decides, duplicates nothing
    delivered = list(reversed(events)) + [copy.deepcopy(events[2]), copy.deepcopy(events[0])]
    same(rr.appeals(reg, delivered, t + 3000), want, "reversed + duplicates")


@check
def threads_missing_parent_and_forward_reply():
    t = T0
    events = [
        ev(20, 2001, t, reply=5),             # parent 5 never delivered: thread 5, opens
        ev(21, PRESS, t + 60, reply=20),      # answers (2001, 5): 60 s
        ev(22, 2002, t + 100, reply=30),      # reply_to 30 >= own id: no parent, thread 30
        ev(30, 2002, t + 200),                # top level: thread 30 -> joins the appeal of 22
        ev(31, PRESS, t + 400, reply=30),     # answers the appeal opened by 22: 300 s
        ev(32, 2003, t + 500, reply=32),      # reply_to own id: no parent, thread 32, opens
        ev(40, 2004, t + 550, kind="edit"),   # an edit is not the message
        ev(41, 2004, t + 600, reply=40),      # parent 40 missing: thread 40, opens
        ev(42, PRESS, t + 700, reply=40),     # official reply to a missing parent: nothing
        ev(43, 2005, t + 800, reply=41),      # thread of 41 is 40 -> but 41 is by another
                                              # citizen: (ignore) nothing
        ev(44, 2004, t + 900, reply=43),      # 2004 replies to 2005: nothing
        ev(45, 2005, t + 950, reply=44),      # 2005 replies to 2004: nothing
    ]
    want = [
        ap(5, 2001, 20, t, "first", "answered", (21, t + 60, R_PRESS, 60, 60)),
        ap(30, 2002, 22, t + 100, "first", "answered", (31, t + 400, R_PRESS, 300, 300)),
        ap(32, 2003, 32, t + 500, "first", "open"),
        ap(40, 2004, 41, t + 600, "first", "open"),
    ]
    same(rr.appeals(registry(), events, t + 1000), want, "threads")


@check
def thread_of_chain_is_root():
    t = T0
    events = [
        ev(1, CHANNEL_U, t, ak="automatic_forward"),   # mirrored post, thread 1, ignored
        ev(2, 2101, t + 10, reply=1),                  # citizen, thread 1: opens
        ev(3, PRESS, t + 20, reply=2),                 # answers
        ev(4, 2101, t + 30, reply=3),                  # follow-up, thread 1 (via 3 -> 2 -> 1)
        ev(5, 2102, t + 40, reply=4),                  # other citizen: nothing
        ev(6, 2101, t + 50, reply=5),                  # 2101 replies to 2102: nothing
        ev(7, PRESS, t + 60, reply=6),                 # official reply to 6 (citizen 2101,
                                                       # thread 1): answers the follow-up
    ]
    want = [
        ap(1, 2101, 2, t + 10, "first", "answered", (3, t + 20, R_PRESS, 10, 10)),
        ap(1, 2101, 4, t + 30, "followup", "answered", (7, t + 60, R_PRESS, 30, 30)),
    ]
    same(rr.appeals(registry(), events, t + 100), want, "chain")


@check
def author_classes():
    t = T0
    events = [
        ev(50, None, t, kind="service"),                 # service: thread 50, never pairs
        ev(51, PRESS, t + 10, reply=50),                 # official reply to a service: nothing
        ev(52, 3001, t + 20, reply=50),                  # citizen (parent service): opens, thread 50
        ev(53, BOT, t + 30, reply=52),                   # ignore_accounts: nothing
        ev(54, CONV_A, t + 40, reply=52, ak="chat"),     # the group itself: answers, anonymous_admin
        ev(55, 3002, t + 100),                           # citizen: opens (3002, 55)
        ev(56, BETA_DEPUTY, t + 110, reply=55),          # foreign official: nothing
        ev(57, 7000099, t + 120, reply=55, ak="bot"),    # a bot: nothing
        ev(58, 7000099, t + 130, ak="bot"),              # a bot never appeals
        ev(59, CHANNEL_U, t + 140, ak="automatic_forward"),  # unlisted channel forward: ignored
        ev(60, 3003, t + 150, reply=59),                 # citizen comment on it: opens (3003, 59)
        ev(61, CHANNEL_A, t + 160, ak="automatic_forward"),  # listed channel: official, no parent: nothing
        ev(62, 3004, t + 170, reply=61),                 # citizen: opens (3004, 61)
        ev(63, CHANNEL_A, t + 200, reply=62, ak="chat"), # the channel answers: role channel, 30 s
        ev(64, 8888, t + 210, ak="chat"),                # a chat nobody lists is a citizen: opens
        ev(65, PRESS, t + 300, reply=55),                # answers 3002 after the foreign reply: 200 s
        ev(66, NORTH, t + 400, reply=60, ak="bot"),      # an account wins over author_kind bot: 250 s
        ev(67, BETA_DEPUTY, t + 410),                    # foreign official top level: not a citizen
        ev(68, BOT, t + 420, ak="user"),                 # ignored account top level: nothing
        ev(69, 3005, t + 430, reply=67),                 # citizen replying to the foreign official:
                                                         # opens (3005, 67)
    ]
    want = [
        ap(50, 3001, 52, t + 20, "first", "answered", (54, t + 40, R_ANON, 20, 20)),
        ap(55, 3002, 55, t + 100, "first", "answered", (65, t + 300, R_PRESS, 200, 200)),
        ap(59, 3003, 60, t + 150, "first", "answered", (66, t + 400, R_NORTH, 250, 250)),
        ap(61, 3004, 62, t + 170, "first", "answered", (63, t + 200, R_CHANNEL, 30, 30)),
        ap(64, 8888, 64, t + 210, "first", "open"),
        ap(67, 3005, 69, t + 430, "first", "open"),
    ]
    same(rr.appeals(registry(), events, t + 1000), want, "author classes")


@check
def foreign_agency_in_its_own_conversation():
    # beta's deputy is official in beta's chat; alpha's press office is foreign there
    t = T0
    events = [
        ev(1, 3101, t, conv=CONV_B),
        ev(2, PRESS, t + 10, reply=1, conv=CONV_B),          # foreign: nothing
        ev(3, BETA_DEPUTY, t + 20, reply=1, conv=CONV_B),    # answers: deputy, empty branch
        ev(4, CONV_B, t + 30, conv=CONV_B, ak="chat"),       # the group itself, top level
        ev(5, 3102, t + 40, reply=4, conv=CONV_B),           # citizen replying to it: opens
        ev(6, CONV_B, t + 50, reply=5, conv=CONV_B, ak="chat"),  # anonymous admin answers
    ]
    want = [
        ap(1, 3101, 1, t, "first", "answered",
           (3, t + 20, {"id": str(BETA_DEPUTY), "role": "deputy"}, 20, 20), "beta", CONV_B),
        ap(4, 3102, 5, t + 40, "first", "answered",
           (6, t + 50, {"id": str(CONV_B), "role": "anonymous_admin"}, 10, 10), "beta", CONV_B),
    ]
    same(rr.appeals(registry(), events, t + 100), want, "beta")


@check
def ignore_list_precedence_and_source():
    # 503 is both in ignore_accounts and an alpha account: ignored wins (the order of
    # the classes). The ignore list is per source: 7000001 on vk is a citizen.
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["ignore_accounts"].append({"source": "telegram", "id": 503})
    cfg["agencies"][0]["accounts"].append({"source": "telegram", "id": 503, "role": "deputy"})
    cfg["agencies"][0]["conversations"].append({"source": "vk", "id": -201234567})
    try:
        rr.load_registry(cfg)                # check-config rejects this configuration
    except ValueError:
        pass
    else:
        raise AssertionError("an account both ignored and official was accepted")
    reg = rr.load_registry(cfg, strict=False)
    t = T0
    events = [
        ev(1, 3201, t),                      # opens
        ev(2, 503, t + 10, reply=1),         # ignored: nothing
        ev(3, 503, t + 20),                  # ignored: no appeal either
        ev(4, PRESS, t + 30, reply=1),       # answers: 30 s
        {"source": "vk", "conversation": "-201234567", "message_id": "88123",
         "author": str(BOT), "time": t + 40},                      # a vk citizen: opens
        {"source": "vk", "conversation": "-201234567", "message_id": "88124",
         "reply_to": "88123", "author": "-201234567", "author_kind": "chat",
         "time": t + 100},                                          # the community answers
    ]
    want = [
        ap(1, 3201, 1, t, "first", "answered", (4, t + 30, R_PRESS, 30, 30)),
        ap(88123, BOT, 88123, t + 40, "first", "answered",
           (88124, t + 100, {"id": "-201234567", "role": "anonymous_admin"}, 60, 60),
           conv=-201234567),
    ]
    for a in want[1:]:
        a["source"] = "vk"
    got = rr.appeals(reg, events, t + 200)
    same(sorted(got, key=rr.appeal_sort_key), sorted(want, key=rr.appeal_sort_key), "ignore")


@check
def citizens_replying_to_citizens():
    t = T0
    events = [
        ev(70, 4001, t),                  # opens (4001, 70)
        ev(71, 4002, t + 10, reply=70),   # a reply to another citizen
        ev(72, PRESS, t + 20, reply=71),  # official reply to 4002
        ev(73, 4001, t + 30, reply=71),   # 4001 replying to 4002
        ev(74, 4002, t + 40, reply=71),   # 4002 replying to own message
        ev(75, PRESS, t + 50, reply=73),  # official reply to 4001's message 73
    ]
    # ignore (default): 71 nothing; 72 nothing ((4002, 70) has no appeal); 73 nothing;
    # 74 opens (4002, 70) "first"; 75 answers (4001, 70) although 73 itself did nothing
    want_ignore = [
        ap(70, 4001, 70, t, "first", "answered", (75, t + 50, R_PRESS, 50, 50)),
        ap(70, 4002, 74, t + 40, "first", "open"),
    ]
    same(rr.appeals(registry(), events, t + 100), want_ignore, "ignore")
    # appeal: 71 opens (4002, 70); 72 answers it; 73 joins (4001, 70); 74 opens a
    # follow-up for 4002; 75 answers (4001, 70)
    want_appeal = [
        ap(70, 4001, 70, t, "first", "answered", (75, t + 50, R_PRESS, 50, 50)),
        ap(70, 4002, 71, t + 10, "first", "answered", (72, t + 20, R_PRESS, 10, 10)),
        ap(70, 4002, 74, t + 40, "followup", "open"),
    ]
    same(rr.appeals(registry(citizen_replies_to_citizens="appeal"), events, t + 100),
         want_appeal, "appeal")


@check
def horizon_and_clock():
    t = T0
    h = DAY                          # BASE_CONFIG's horizon
    clock = t + 10 * DAY
    events = [
        ev(80, 5001, t),                        # opens (5001, 80)
        ev(81, 5001, t + h, reply=80),          # exactly at the horizon: joins
        ev(82, 5001, t + h + 1, reply=80),      # past it: 80 unanswered, 82 opens "followup"
        ev(83, PRESS, t + 2 * h + 1, reply=82), # exactly at 82's horizon: answered, 86400 s
        ev(84, 5002, t),                        # opens (5002, 84)
        ev(85, PRESS, t + h + 1, reply=84),     # too late: unanswered
        ev(86, PRESS, t + h + 2, reply=84),     # nothing open any more: nothing
        ev(87, 5002, t + h + 100, reply=85),    # reply to the late answer: "followup", never
                                                # answered, past its horizon at the clock
        ev(88, 5003, t + 5000),                 # opens
        ev(89, PRESS, t + 4000, reply=88),      # an id after 88 with an earlier time:
                                                # answered, reply max(0, -1000) = 0
        ev(90, 5004, clock - h),                # clock == opened_at + horizon: open
        ev(91, 5005, clock - h - 1),            # clock > opened_at + horizon: unanswered
    ]
    want = [
        ap(80, 5001, 80, t, "first", "unanswered"),
        ap(80, 5001, 82, t + h + 1, "followup", "answered",
           (83, t + 2 * h + 1, R_PRESS, h, h)),
        ap(84, 5002, 84, t, "first", "unanswered"),
        ap(84, 5002, 87, t + h + 100, "followup", "unanswered"),
        ap(88, 5003, 88, t + 5000, "first", "answered", (89, t + 4000, R_PRESS, 0, 0)),
        ap(90, 5004, 90, clock - h, "first", "open"),
        ap(91, 5005, 91, clock - h - 1, "first", "unanswered"),
    ]
    same(rr.appeals(registry(), events, clock), want, "horizon")
    # the default horizon is 7 days
    reg = rr.load_registry({"agencies": BASE_CONFIG["agencies"]})
    assert reg.horizon == 604800 and reg.citizen_replies_to_citizens == "ignore"
    got = rr.appeals(reg, [ev(1, 5010, t), ev(2, PRESS, t + 7 * DAY, reply=1)], t + 8 * DAY)
    same(got, [ap(1, 5010, 1, t, "first", "answered",
                  (2, t + 7 * DAY, R_PRESS, 7 * DAY, 7 * DAY))], "default horizon")


@check
def withdrawn_and_deletions():
    t = T0
    clock = t + 2 * HOUR
    events = [
        delete(100, t + 50, author=6001),       # delivered BEFORE the message it deletes
        ev(100, 6001, t),                       # opens, deleted, not answered: withdrawn
        ev(102, 6002, t + 100),                 # opens
        ev(103, PRESS, t + 200, reply=102),     # answers: 100 s
        delete(102, t + 300, author=6002),      # answered stays answered
        delete(103, t + 300),                   # deleting the answer changes nothing
        ev(105, 6004, t + 400),                 # opens
        ev(106, 6004, t + 410, reply=105),      # joins
        delete(106, t + 420, author=6004),      # deleting a joined message: nothing
        ev(107, PRESS, t + 500, reply=106),     # the deleted message is still a parent: answers
        ev(108, 6005, t + 600),                 # opens
        delete(108, t + 650, author=6005),
        ev(109, PRESS, t + 700, reply=108),     # answers the deleted appeal: answered
        ev(110, 6006, t + 800, reply=108),      # reply to a deleted message of another
                                                # citizen: nothing (ignore)
        delete(999, t + 900),                   # a message never delivered: nothing
        ev(105, 6004, t + 950, kind="edit"),    # an edit: nothing
        ev(111, 6007, t - 3 * DAY),             # opens
        ev(112, 6007, t - 2 * DAY + 1, reply=111),  # past the horizon (by 1 s): 111
                                                     # unanswered, 112 opens a followup
        delete(111, t),                         # 111 unanswered -> withdrawn
        ev(113, 6008, t - 3 * DAY),             # unanswered at the clock...
        delete(113, t, author=6008),            # ... but deleted: withdrawn
    ]
    want = [
        ap(100, 6001, 100, t, "first", "withdrawn"),
        ap(102, 6002, 102, t + 100, "first", "answered", (103, t + 200, R_PRESS, 100, 100)),
        ap(105, 6004, 105, t + 400, "first", "answered", (107, t + 500, R_PRESS, 100, 100)),
        ap(108, 6005, 108, t + 600, "first", "answered", (109, t + 700, R_PRESS, 100, 100)),
        ap(111, 6007, 111, t - 3 * DAY, "first", "withdrawn"),
        ap(111, 6007, 112, t - 2 * DAY + 1, "followup", "unanswered"),
        ap(113, 6008, 113, t - 3 * DAY, "first", "withdrawn"),
    ]
    same(rr.appeals(registry(), events, clock), want, "withdrawn")


@check
def ids_and_times_as_strings():
    # ids as strings, RFC 3339 times with offsets, fractions, lowercase, null fields
    conv = str(CONV_A)
    events = [
        {"source": "telegram", "conversation": conv, "message_id": "12",
         "author": "500201", "author_kind": "user", "time": "2026-03-02T14:10:00+05:00"},
        {"source": "telegram", "conversation": conv, "message_id": 13, "reply_to": "12",
         "author": str(PRESS), "time": "2026-03-02t09:20:00.999z", "kind": None,
         "author_kind": None},
        {"source": "telegram", "conversation": conv, "message_id": 14, "reply_to": None,
         "author": 500202, "time": "2026-03-01T23:40:00-09:30"},
        {"source": "telegram", "conversation": conv, "message_id": 15, "reply_to": 14,
         "author": str(NORTH), "time": "2026-06-30T23:59:60Z"},
    ]
    # 14:10+05:00 = 09:10Z = 1772442600; 09:20:00.999Z -> 1772443200; 23:40-09:30 is
    # 09:10Z as well; the leap second is 2026-07-01T00:00:00Z = 1782864000 (> horizon)
    assert rr.parse_time("2026-03-02T09:10:00Z") == 1772442600
    assert rr.parse_time("2026-03-02T09:10:00.999Z") == 1772442600
    assert rr.parse_time(1772442600) == 1772442600
    for bad in ("2026-03-02T09:10:00", "1772442600", "2026-03-02T09:10Z", 1772442600.5, True):
        try:
            rr.parse_time(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted %r" % (bad,))
    want = [
        ap(12, 500201, 12, 1772442600, "first", "answered",
           (13, 1772443200, R_PRESS, 600, 600)),
        ap(14, 500202, 14, 1772442600, "first", "unanswered"),
    ]
    same(rr.appeals(registry(), events, 1782864000), want, "strings")

# ---------------------------------------------------------------------------
# business seconds


def agency(tz, hours=None, holidays=()):
    a = {"id": "cal", "name": "Cal", "timezone": tz, "holidays": list(holidays),
         "conversations": [{"source": "telegram", "id": CONV_A}], "accounts": []}
    if hours is not None:
        a["business_hours"] = hours
    return rr.load_registry({"agencies": [a]}).agencies[0]


def bs(a, start, end):
    return rr.business_seconds(a, start, end)


@check
def business_split_shift_missing_day_no_hours():
    a = agency("UTC", {"mon": ["09:00-13:00", "14:00-18:00"]})
    # Mon 08:00 -> Mon 15:30: 09-13 (4 h) + 14-15:30 (1.5 h) = 19800
    assert bs(a, utc(2026, 3, 2, 8), utc(2026, 3, 2, 15, 30)) == 19800
    # inside the lunch break: 0; Mon 12:00 -> Tue 10:00: 1 h + 4 h = 18000 (tue missing)
    assert bs(a, utc(2026, 3, 2, 13, 10), utc(2026, 3, 2, 13, 50)) == 0
    assert bs(a, utc(2026, 3, 2, 12), utc(2026, 3, 3, 10)) == 18000
    # Saturday, a day left out: 0; a whole week: 8 h
    assert bs(a, utc(2026, 3, 7, 10), utc(2026, 3, 7, 12)) == 0
    assert bs(a, utc(2026, 3, 2), utc(2026, 3, 9)) == 8 * HOUR
    # no business_hours key: every second counts; an empty mapping: none
    assert bs(agency("UTC"), utc(2026, 3, 7, 10), utc(2026, 3, 7, 12)) == 7200
    assert bs(agency("UTC", {}), utc(2026, 3, 2), utc(2026, 3, 9)) == 0
    # the agency's time zone: Asia/Tashkent is UTC+5 (no DST). Mon 09:00 local = 04:00Z
    t = agency("Asia/Tashkent", {"mon": ["09:00-13:00", "14:00-18:00"]})
    assert bs(t, utc(2026, 3, 2, 4), utc(2026, 3, 2, 8)) == 4 * HOUR
    # 09:00Z-13:00:01Z is 14:00-18:00:01 local: 4 h; 03:00Z-04:00Z is 08-09 local: 0
    assert bs(t, utc(2026, 3, 2, 9), utc(2026, 3, 2, 13, 0, 1)) == 4 * HOUR
    assert bs(t, utc(2026, 3, 2, 3), utc(2026, 3, 2, 4)) == 0


@check
def business_holiday():
    hours = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    a = agency("UTC", hours, ["2026-03-03"])          # Tuesday is a holiday
    # Mon 16:00 -> Wed 10:00: Mon 1 h + Tue 0 + Wed 1 h = 7200
    assert bs(a, utc(2026, 3, 2, 16), utc(2026, 3, 4, 10)) == 7200
    assert bs(a, utc(2026, 3, 3, 8), utc(2026, 3, 3, 18)) == 0


@check
def business_past_midnight():
    a = agency("UTC", {"mon": ["22:00-02:00"], "sun": ["22:00-02:00"]})
    # Mon 23:00 -> Tue 01:30: 2.5 h of Monday's night shift
    assert bs(a, utc(2026, 3, 2, 23), utc(2026, 3, 3, 1, 30)) == 9000
    # Tuesday has no hours of its own: Tue 01:00 -> Tue 23:00 is the hour 01-02
    assert bs(a, utc(2026, 3, 3, 1), utc(2026, 3, 3, 23)) == 3600
    # the week wraps: Sun 21:00 -> Mon 03:00 is Sunday's 22:00-02:00 = 4 h
    assert bs(a, utc(2026, 3, 8, 21), utc(2026, 3, 9, 3)) == 4 * HOUR
    # Tuesday a holiday: Monday's shift stops at midnight -> 1 h
    b = agency("UTC", {"mon": ["22:00-02:00"]}, ["2026-03-03"])
    assert bs(b, utc(2026, 3, 2, 23), utc(2026, 3, 3, 1, 30)) == 3600
    # Monday a holiday: Monday's shift is cancelled, also after midnight -> 0
    c = agency("UTC", {"mon": ["22:00-02:00"]}, ["2026-03-02"])
    assert bs(c, utc(2026, 3, 2, 20), utc(2026, 3, 3, 3)) == 0
    # overlapping intervals count once; "24:00" ends at midnight
    d = agency("UTC", {"mon": ["09:00-12:00", "11:00-13:00", "20:00-24:00"]})
    assert bs(d, utc(2026, 3, 2), utc(2026, 3, 3)) == 8 * HOUR


@check
def business_daylight_saving_berlin():
    # 2026-03-29 (Sunday) 02:00 CET -> 03:00 CEST; 2026-10-25 (Sunday) 03:00 CEST -> 02:00 CET
    spring = agency("Europe/Berlin", {"sun": ["01:00-04:00"]})
    # the whole day: local 01:00-02:00 CET (00:00-01:00Z) and 03:00-04:00 CEST
    # (01:00-02:00Z); 02:00-03:00 local never happens -> 2 h
    assert bs(spring, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)) == 2 * HOUR
    # fall back: local 01:00-04:00 spans 23:00Z (Sat) to 03:00Z: 4 real hours
    assert bs(spring, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == 4 * HOUR
    # a whole-night interval over the change: local 00:00-06:00 on 2026-03-29 is
    # 23:00Z (Sat) to 04:00Z = 5 h
    night = agency("Europe/Berlin", {"sun": ["00:00-06:00"]})
    assert bs(night, utc(2026, 3, 28, 23), utc(2026, 3, 29, 4)) == 5 * HOUR
    assert bs(night, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == 5 * HOUR
    # weekdays across the change: Fri 2026-03-27 09:00 CET = 08:00Z -> Mon 2026-03-30
    # 08:00Z = 10:00 CEST: Friday 8 h + Monday 09:00-10:00 = 9 h (a fixed +01:00 would
    # give 8 h)
    week = agency("Europe/Berlin", {d: ["09:00-17:00"] for d in
                                    ("mon", "tue", "wed", "thu", "fri")})
    assert bs(week, utc(2026, 3, 27, 8), utc(2026, 3, 30, 8)) == 9 * HOUR
    # and the way back: Fri 2026-10-23 16:00 CEST = 14:00Z -> Mon 2026-10-26 09:00Z =
    # 10:00 CET: 1 h + 1 h
    assert bs(week, utc(2026, 10, 23, 14), utc(2026, 10, 26, 9)) == 2 * HOUR


@check
def business_through_appeals():
    # the answer's business seconds come from the owning agency's calendar:
    # Tashkent (UTC+5), split shift Mon-Fri 09-13/14-18, Tuesday 2026-03-03 a holiday
    hours = {d: ["09:00-13:00", "14:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["agencies"][0].update(timezone="Asia/Tashkent", business_hours=hours,
                              holidays=["2026-03-03"])
    cfg["horizon_secs"] = 7 * DAY
    reg = rr.load_registry(cfg)
    opened = utc(2026, 3, 2, 12)      # Mon 17:00 local: 1 h of Monday left
    answered = utc(2026, 3, 4, 5)     # Wed 10:00 local: 1 h of Wednesday
    events = [ev(1, 9001, opened), ev(2, PRESS, answered, reply=1)]
    want = [ap(1, 9001, 1, opened, "first", "answered",
               (2, answered, R_PRESS, answered - opened, 7200))]
    same(rr.appeals(reg, events, answered + 10), want, "business via appeals")

# ---------------------------------------------------------------------------
# configuration and command line


@check
def configuration_from_yaml_and_cli():
    import yaml
    t = T0
    events = [ev(10, 1001, t + 100), ev(12, NORTH, t + 1000, reply=10),
              ev(20, 1002, t + 200)]
    want = [
        ap(10, 1001, 10, t + 100, "first", "answered", (12, t + 1000, R_NORTH, 900, 900)),
        ap(20, 1002, 20, t + 200, "first", "unanswered"),
    ]
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "c.yaml")
        with open(cfg, "w") as f:
            yaml.safe_dump(BASE_CONFIG, f)
            f.write("connectors: []\n")
        files = []
        for i, part in enumerate([events[:1], events[1:]]):
            files.append(os.path.join(d, "e%d.ndjson" % i))
            with open(files[-1], "w") as f:
                f.write("# a comment\n\n")
                for e in part:
                    f.write(json.dumps(e) + "\r\n")
        clock = t + 200 + DAY + 1
        same(rr.appeals(rr.load_registry(cfg), events, clock), want, "yaml")
        out = subprocess.run([sys.executable, os.path.join(HERE, "rules_reference.py"),
                              "--config", cfg, "--clock", str(clock)] + files,
                             check=True, capture_output=True, text=True).stdout
        same([json.loads(line) for line in out.splitlines()], want, "cli")
    # a conversation owned twice is a configuration error
    bad = copy.deepcopy(BASE_CONFIG)
    bad["agencies"][1]["conversations"].append({"source": "telegram", "id": CONV_A})
    try:
        rr.load_registry(bad)
    except ValueError:
        pass
    else:
        raise AssertionError("a conversation owned twice was accepted")

# ---------------------------------------------------------------------------
# generated histories: delivery changes nothing


@check
def metamorphic_generated():
    for seed in (1, 2, 3, 4):
        cfg, events = history_gen.generate(seed=seed, days=12, appeals_per_day=60,
                                           conversations=4 + seed % 3,
                                           now=history_gen.DEFAULT_NOW + seed * 3 * DAY)
        reg = rr.load_registry(cfg)
        clock = history_gen.DEFAULT_NOW + seed * 3 * DAY
        want = rr.appeals(reg, events, clock)
        statuses = set(a["status"] for a in want)
        assert statuses == {"open", "answered", "unanswered", "withdrawn"}, statuses
        assert set(a["kind"] for a in want) == {"first", "followup"}
        rng = random.Random(seed)
        for name, delivered in [
            ("shuffle", history_gen.shuffle(events, rng)),
            ("duplicate", history_gen.duplicate(events, rng, 0.2)),
            ("split", [e for part in history_gen.split(events, rng, 3) for e in part]),
            ("split+shuffle+dup", [e for part in reversed(history_gen.split(
                history_gen.duplicate(history_gen.shuffle(events, rng), rng, 0.1), rng, 4))
                for e in part]),
        ]:
            got = rr.appeals(reg, delivered, clock)
            assert got == want, "seed %d: %s changed the appeals" % (seed, name)
        # the generator is deterministic
        assert history_gen.generate(seed=seed, days=12, appeals_per_day=60,
                                    conversations=4 + seed % 3,
                                    now=clock) == (cfg, events)


@check
def generated_history_shape():
    import time as _time
    now = history_gen.DEFAULT_NOW
    cfg, events = history_gen.generate(seed=11, days=30, appeals_per_day=300,
                                       conversations=6, now=now)
    start = _time.time()
    result = rr.appeals(rr.load_registry(cfg), events, now)
    elapsed = _time.time() - start
    assert len(events) > 20000, len(events)
    assert elapsed < 20, elapsed
    norm = [rr.normalize_event(e) for e in events]
    assert max(e["time"] for e in norm) < now
    # ids ascending with non-decreasing times, per conversation
    owned = set(c["id"] for a in cfg["agencies"] for c in a["conversations"])
    per = {}
    for e in norm:
        if e["kind"] in ("message", "service"):
            per.setdefault(e["conversation"], {})[e["message_id"]] = e["time"]
    for conv, msgs in per.items():
        ids = sorted(msgs)
        assert all(msgs[a] <= msgs[b] for a, b in zip(ids, ids[1:])), conv
        if conv in owned:
            assert any(b - a > 1 for a, b in zip(ids, ids[1:])), conv   # gaps
    kinds = set(e["kind"] for e in norm)
    assert kinds == {"message", "service", "edit", "delete"}, kinds
    assert any(e["author_kind"] == "bot" for e in norm)
    assert any(e["author_kind"] == "automatic_forward" for e in norm)
    roles = set(a["responder"]["role"] for a in result if "responder" in a)
    assert {"anonymous_admin", "channel"} <= roles, roles
    assert any("branch" in a["responder"] for a in result if "responder" in a)
    # a deletion delivered before its message
    early = 0
    delivered_ids = set((e["conversation"], e["message_id"]) for e in norm
                        if e["kind"] in ("message", "service"))
    seen = set()
    for e in norm:
        key = (e["conversation"], e["message_id"])
        if e["kind"] == "delete" and key in delivered_ids and key not in seen:
            early += 1
        if e["kind"] in ("message", "service"):
            seen.add(key)
    assert early > 0


def main():
    failed = 0
    for fn in CHECKS:
        try:
            fn()
        except Exception:
            failed += 1
            print("FAIL %s" % fn.__name__)
            traceback.print_exc()
    print("test_rules_reference: %d checks, %d passed, %d failed"
          % (len(CHECKS), len(CHECKS) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
