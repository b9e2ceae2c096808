#!/usr/bin/env bash
# Apache Kafka (KRaft) on 127.0.0.1 for replywatch's tests: fetched once from Maven
# Central with mvn into a cache, formatted and started as 1 or 3 combined
# broker+controller nodes, stopped by PID.
#
#   scripts/kafka.sh fetch                 jars into $KAFKA_CACHE (default ~/.cache/replywatch/kafka-4.4.0)
#   scripts/kafka.sh start DIR [NODES]     format and start NODES nodes (1 or 3) under DIR; waits until
#                                          every node answers; DIR/bootstrap holds host:port,...
#   scripts/kafka.sh stop DIR              stop every node of DIR (SIGTERM, then SIGKILL)
#   scripts/kafka.sh kill DIR NODE         kill -9 node NODE (1-based): the fault tests
#   scripts/kafka.sh stop-node DIR NODE    stop node NODE cleanly (SIGTERM)
#   scripts/kafka.sh restart DIR NODE      start node NODE again on its data
#
# Needs Java 17 and Maven (Debian: openjdk-17-jre-headless, maven) and kcat.
set -euo pipefail

KAFKA_VERSION=4.4.0
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/replywatch/kafka-$KAFKA_VERSION}
JAVA=${JAVA:-java}
HEAP=${KAFKA_HEAP:--Xmx256m}

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
  if [[ -f $CACHE/.complete ]]; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found (Debian package: maven)"
  mkdir -p "$CACHE/libs"
  echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION from Maven Central into $CACHE" >&2
  mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$CACHE/libs" -DincludeScope=runtime >&2
  ls "$CACHE"/libs/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka_2.13 jar missing after fetch"
  touch "$CACHE/.complete"
}

free_ports() {  # N free TCP ports on 127.0.0.1
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

node_props() {  # DIR NODE NODES BROKER_PORT CONTROLLER_PORT VOTERS
  local dir=$1 node=$2 nodes=$3 bport=$4 cport=$5 voters=$6
  local rf=$((nodes < 3 ? nodes : 3)) isr=$((nodes < 3 ? 1 : 2))
  cat <<EOF
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/node$node/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
log.cleaner.backoff.ms=1000
log.segment.bytes=16777216
EOF
}

log4j_config() {  # FILE
  cat <<EOF
<Configuration status="warn">
  <Appenders>
    <File name="file" fileName="$1"><PatternLayout pattern="%d %p %c{1}: %m%n"/></File>
  </Appenders>
  <Loggers>
    <Root level="warn"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.server.KafkaServer" level="info"/>
    <Logger name="kafka.server.BrokerServer" level="info"/>
  </Loggers>
</Configuration>
EOF
}

launch() {  # DIR NODE
  local dir=$1 node=$2
  local nd=$dir/node$node
  # shellcheck disable=SC2086
  setsid "$JAVA" $HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k \
    -Dlog4j2.configurationFile="$nd/log4j2.xml" -cp "$CACHE/libs/*" kafka.Kafka "$nd/node.properties" \
    >"$nd/stdout" 2>&1 </dev/null &
  echo $! >"$nd/pid"
}

wait_ready() {  # DIR NODES TIMEOUT
  local dir=$1 nodes=$2 timeout=$3 waited=0
  local bootstrap
  bootstrap=$(cat "$dir/bootstrap")
  while :; do
    local seen
    seen=$(kcat -L -b "$bootstrap" -m 2 2>/dev/null | sed -n 's/^ *\([0-9]*\) brokers:$/\1/p' | head -1 || true)
    [[ ${seen:-0} -ge $nodes ]] && return 0
    ((waited >= timeout * 10)) && die "the cluster under $dir did not answer with $nodes brokers in ${timeout}s (logs: $dir/node*/kafka.log)"
    sleep 0.1
    waited=$((waited + 1))
  done
}

start() {
  local dir=$1 nodes=${2:-1}
  [[ $nodes == 1 || $nodes == 3 ]] || die "NODES is 1 or 3"
  fetch
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for pidfile in "$dir"/node*/pid; do
    if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      die "a node under $dir is still running (scripts/kafka.sh stop $dir)"
    fi
  done
  rm -rf "$dir"/node* "$dir/bootstrap"  # a fresh cluster each start
  read -r -a ports <<<"$(free_ports $((2 * nodes)))"
  local voters="" bootstrap=""
  for ((i = 1; i <= nodes; i++)); do
    voters+="${voters:+,}$i@127.0.0.1:${ports[$((2 * i - 1))]}"
    bootstrap+="${bootstrap:+,}127.0.0.1:${ports[$((2 * i - 2))]}"
  done
  local cluster
  cluster=$("$JAVA" -cp "$CACHE/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  for ((i = 1; i <= nodes; i++)); do
    local nd=$dir/node$i
    mkdir -p "$nd/data"
    node_props "$dir" "$i" "$nodes" "${ports[$((2 * i - 2))]}" "${ports[$((2 * i - 1))]}" "$voters" >"$nd/node.properties"
    log4j_config "$nd/kafka.log" >"$nd/log4j2.xml"
    "$JAVA" -cp "$CACHE/libs/*" -Dlog4j2.configurationFile="$nd/log4j2.xml" kafka.tools.StorageTool \
      format -t "$cluster" -c "$nd/node.properties" >"$nd/format.out" 2>&1 ||
      die "formatting node $i failed: $(cat "$nd/format.out")"
  done
  echo "$bootstrap" >"$dir/bootstrap"
  for ((i = 1; i <= nodes; i++)); do launch "$dir" "$i"; done
  wait_ready "$dir" "$nodes" 120
  echo "$bootstrap"
}

stop_node() {  # DIR NODE SIGNAL
  local pidfile=$1/node$2/pid
  [[ -f $pidfile ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$3" "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop() {
  local dir=$1
  for nd in "$dir"/node*; do
    [[ -d $nd ]] && stop_node "$dir" "${nd##*node}" TERM
  done
}

case ${1:-} in
  fetch) fetch ;;
  start) [[ $# -ge 2 ]] || die "usage: kafka.sh start DIR [NODES]"; start "$2" "${3:-1}" ;;
  stop) [[ $# -eq 2 ]] || die "usage: kafka.sh stop DIR"; stop "$2" ;;
  kill) [[ $# -eq 3 ]] || die "usage: kafka.sh kill DIR NODE"; stop_node "$2" "$3" KILL ;;
  stop-node) [[ $# -eq 3 ]] || die "usage: kafka.sh stop-node DIR NODE"; stop_node "$2" "$3" TERM ;;
  restart)
    [[ $# -eq 3 ]] || die "usage: kafka.sh restart DIR NODE"
    launch "$2" "$3"
    ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 1 ;;
esac
