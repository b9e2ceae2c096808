#!/usr/bin/env python3
"""Copies a Telegram Desktop export with every timestamp moved so that its
latest message lands `--ago` seconds before now (the daemon's rolling windows
are relative to the wall clock; the bundled sample is from the past)."""
import argparse
import datetime
import json
import os
import time


def messages(doc):
    if "messages" in doc:
        yield from doc["messages"]
    for section in ("chats", "left_chats"):
        for chat in doc.get(section, {}).get("list", []):
            yield from chat.get("messages", [])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("input")
    ap.add_argument("output_dir")
    ap.add_argument("--ago", type=int, default=3600)
    args = ap.parse_args()
    with open(args.input, encoding="utf-8") as f:
        doc = json.load(f)
    latest = max(int(m["date_unixtime"]) for m in messages(doc) if "date_unixtime" in m)
    shift = int(time.time()) - args.ago - latest
    for m in messages(doc):
        if "date_unixtime" in m:
            t = int(m["date_unixtime"]) + shift
            m["date_unixtime"] = str(t)
            m["date"] = datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%S")
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "result.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
