#!/bin/sh
# A ranking job: the league table of one window, read from replywatch's agency-stats topic
# with kcat alone (no replywatch needed). Prints the same JSON as GET /api/v1/ranking.
#
#   docs/ranking-job.sh BOOTSTRAP_SERVERS [TOPIC_PREFIX] [WINDOW] [BY]
#   docs/ranking-job.sh 127.0.0.1:9092 replywatch 7d agency
#
# WINDOW: 1h 24h 7d 30d; BY: agency responder branch. Extra kcat settings (SASL, TLS) go
# in $KCAT_OPTS, e.g. KCAT_OPTS="-X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN".
set -eu
bootstrap=$1
prefix=${2:-replywatch}
window=${3:-7d}
by=${4:-agency}

# shellcheck disable=SC2086
kcat -C -q -e -J -b "$bootstrap" -t "$prefix.agency-stats" -o beginning \
  -X isolation.level=read_committed ${KCAT_OPTS:-} |
  python3 -c '
import json, math, sys

window, by = sys.argv[1], sys.argv[2]
latest = {}                        # the compacted view: the last value of every key
for line in sys.stdin:
    m = json.loads(line)
    if m.get("payload") is None:
        latest.pop(m["key"], None)
    else:
        latest[m["key"]] = json.loads(m["payload"])

stats = [s for s in latest.values() if s["schema_version"] == 1 and s["window"] == window]
rows = []
for s in stats:
    rows += [s["row"]] if by == "agency" else s["responders" if by == "responder" else "branches"]

def order(r):
    primary = r["km_median_seconds"] if by == "agency" else r["median_seconds"]
    return (r["agency"] if by != "agency" else "",
            math.inf if primary is None else primary,
            -(r["answer_rate"] or 0), r["agency"], r["responder"], r["branch"])

out, rank_in_agency = [], {}
for i, r in enumerate(sorted(rows, key=order)):
    rank_in_agency[r["agency"]] = rank_in_agency.get(r["agency"], 0) + 1
    row = {"rank": i + 1 if by == "agency" else rank_in_agency[r["agency"]],
           "agency": r["agency"], "agency_name": r["agency_name"]}
    if by == "responder":
        row.update(responder=r["responder"], role=r["role"])
        row.update({k: r[k] for k in ("name", "branch") if r[k]})
    if by == "branch":
        row["branch"] = r["branch"]
    row["answered"] = r["answered"]
    if by == "agency":
        row.update(unanswered=r["unanswered"], open=r["open"],
                   sample_size=r["answered"] + r["unanswered"] + r["open"],
                   answer_rate=r["answer_rate"], km_median_seconds=r["km_median_seconds"])
        if r["km_median_seconds"] is None:
            row.update(km_median_note=r["km_median_note"], km_survival=r["km_survival"],
                       km_max_followup_seconds=r["km_max_followup_seconds"])
    else:
        row["sample_size"] = r["answered"]
    for k in ("median_seconds", "p90_seconds", "p99_seconds", "mean_seconds",
              "business_median_seconds", "business_p90_seconds", "within_target_rate"):
        row[k] = r[k]
    out.append(row)

print(json.dumps({"window": window, "by": by,
                  "generated_at": max((s["computed_at"] for s in stats), default=0),
                  "rows": out}, ensure_ascii=False))
' "$window" "$by"
