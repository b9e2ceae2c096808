#!/usr/bin/env bash
# The main job on the bundled sample: replay its Telegram export and print the
# per-agency table, writing the appeal-by-appeal record next to the build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
out=${BUILD_DIR:-build}/sample-appeals.ndjson
"${BUILD_DIR:-build}"/replywatch replay --config deploy/sample/config.yaml --format table \
  --appeals "$out" deploy/sample/export
echo "appeal-by-appeal record: $out ($(wc -l <"$out") appeals)"
