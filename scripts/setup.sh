#!/usr/bin/env bash
# Installs every Debian package replywatch needs to build and test. Idempotent:
# packages already installed are left alone. Runs as root or through sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates tzdata curl
  libboost1.81-dev    # Asio, Beast, system::result (Debian's default 1.74 fails under C++20)
  libssl-dev
  libsimdjson-dev
  libyaml-cpp-dev
  libroaring-dev      # CRoaring: the per-conversation record of every message id applied
  librdkafka-dev
  prometheus-cpp-dev
  doctest-dev
  python3             # command-line and end-to-end tests
  python3-yaml        # deploy checks read the alert rules
  prometheus          # end-to-end tests and promtool (rules, dashboard PromQL)
  openjdk-17-jre-headless maven  # Apache Kafka for the Kafka tests (scripts/kafka.sh fetch)
  kcat                # an independent Kafka client in the tests and docs/ranking-job.sh
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

fetch_kafka() {
  # Kafka's jars from Maven Central into scripts/kafka/lib (cached: a second run is a no-op).
  bash "$(dirname "$0")/kafka.sh" fetch
}

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  fetch_kafka
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  SUDO=(sudo)
fi
echo "setup: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}"
fetch_kafka
