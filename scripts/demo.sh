#!/usr/bin/env bash
# The main job on the bundled sample: the replay report, then the daemon on the
# same export (timestamps moved to the last days), with where to look.
# Runs until Ctrl-C; DEMO_SECONDS=N stops it after N seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
bin="$BUILD_DIR/replywatch"
work="$BUILD_DIR/demo"
rm -rf "$work" && mkdir -p "$work/exports" "$work/data"

echo "== replay of deploy/sample/export (appeal by appeal: $work/appeals.ndjson)"
"$bin" replay --config deploy/sample/config.yaml --format table \
  --appeals "$work/appeals.ndjson" deploy/sample/export

python3 scripts/shift_export.py deploy/sample/export/result.json "$work/exports/sample" --ago 3600
port=${DEMO_PORT:-9464}
{
  cat deploy/sample/config.yaml
  cat <<YAML
daemon:
  listen: "127.0.0.1:$port"
  data_dir: $work/data
  snapshot_interval_secs: 30
connectors:
  - name: sample_exports
    type: telegram_export
    directory: $work/exports
    poll_interval_secs: 1
YAML
} >"$work/replywatch.yaml"

echo "== replywatch run --config $work/replywatch.yaml"
"$bin" run --config "$work/replywatch.yaml" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT INT TERM
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  if curl -sf "$base/readyz" >/dev/null 2>&1 &&
     curl -sf "$base/metrics" | grep -q '^replywatch_connector_events_received_total{connector="sample_exports"} [1-9]'; then
    break
  fi
  sleep 0.2
done
echo
echo "== ranking (GET $base/api/v1/ranking?window=7d&format=csv)"
curl -sf "$base/api/v1/ranking?window=7d&format=csv" || true
echo
echo "Look here:"
echo "  metrics      $base/metrics"
echo "  ranking      $base/api/v1/ranking?window=7d&by=agency   (by=responder, by=branch, format=csv)"
echo "  appeals      $base/api/v1/appeals?agency=akimat_almaty&status=open"
echo "  health       $base/healthz   $base/readyz"
echo "The daemon runs until Ctrl-C${DEMO_SECONDS:+ (or $DEMO_SECONDS s)}."
if [[ -n ${DEMO_SECONDS:-} ]]; then
  sleep "$DEMO_SECONDS"
else
  wait $pid
fi
