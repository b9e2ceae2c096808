"""Real Apache Kafka for the end-to-end tests: clusters of 1 or 3 KRaft nodes started by
scripts/kafka.sh (jars from Maven Central, cached), and kcat as an independent client.

Standard library only."""
import json
import os
import subprocess

import helpers as h

KAFKA_SH = os.path.join(h.SRC, "scripts", "kafka.sh")
KCAT = os.environ.get("KCAT_BIN", "kcat")
# The topics of one prefix: `<prefix>.<name>`.
TOPICS = ("events", "appeals", "agency-stats", "pair-changelog", "aggregate-changelog")


class Cluster:
    def __init__(self, workdir, nodes=1):
        self.dir = os.path.join(workdir, f"kafka{nodes}")
        self.nodes = nodes
        self.bootstrap = None

    def start(self):
        subprocess.run([KAFKA_SH, "start", self.dir, str(self.nodes)], check=True,
                       stdout=subprocess.DEVNULL, timeout=240)
        with open(os.path.join(self.dir, "bootstrap")) as f:
            self.bootstrap = f.read().strip()
        return self

    def stop(self):
        subprocess.run([KAFKA_SH, "stop", self.dir], check=False, timeout=120)

    def stop_node(self, node):
        """SIGTERM: a clean broker shutdown (it comes back on the same data and port)."""
        subprocess.run([KAFKA_SH, "stop-node", self.dir, str(node)], check=True, timeout=120)

    def kill_node(self, node):
        subprocess.run([KAFKA_SH, "kill", self.dir, str(node)], check=True, timeout=60)

    def restart_node(self, node):
        subprocess.run([KAFKA_SH, "restart", self.dir, str(node)], check=True, timeout=60)

    def log(self, node=1):
        try:
            with open(os.path.join(self.dir, f"node{node}", "kafka.log"), errors="replace") as f:
                return f.read()[-5000:]
        except OSError:
            return ""


def bus_section(cluster, prefix, instance, **overrides):
    b = {"type": "kafka", "bootstrap_servers": cluster.bootstrap, "topic_prefix": prefix,
         "group_id": prefix, "instance": instance, "partitions": 4,
         "checkpoint_interval_secs": 3, "stats_interval_secs": 1, "commit_interval_ms": 100,
         "rdkafka": {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}}
    b.update(overrides)
    return b


def consume(cluster, topic, committed=True, timeout=120):
    """Every record of `topic` from the beginning, through kcat: dicts with partition,
    offset, key, payload (None for tombstones)."""
    args = [KCAT, "-C", "-b", cluster.bootstrap, "-t", topic, "-o", "beginning", "-e", "-J",
            "-q"]
    if committed:
        args += ["-X", "isolation.level=read_committed"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"kcat on {topic} exited {p.returncode}: {p.stderr}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def topics(cluster):
    """{topic: partition count} from kcat's metadata listing."""
    p = subprocess.run([KCAT, "-L", "-J", "-b", cluster.bootstrap], capture_output=True,
                       text=True, timeout=60, check=True)
    meta = json.loads(p.stdout)
    return {t["topic"]: len(t["partitions"]) for t in meta["topics"]}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (its Java partitioner), written from the algorithm's description."""
    m, r = 0x5BD1E995, 24
    h32 = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    n = len(data) // 4
    for i in range(n):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h32 = (h32 * m) & 0xFFFFFFFF
        h32 ^= k
    tail = data[4 * n:]
    if len(tail) >= 3:
        h32 ^= tail[2] << 16
    if len(tail) >= 2:
        h32 ^= tail[1] << 8
    if tail:
        h32 ^= tail[0]
        h32 = (h32 * m) & 0xFFFFFFFF
    h32 ^= h32 >> 13
    h32 = (h32 * m) & 0xFFFFFFFF
    h32 ^= h32 >> 15
    return h32


def partition_of(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
