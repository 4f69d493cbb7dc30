"""Reads a whole topic with kafka-python (a client independent of hubgate and rskafka).

Usage: read_topic.py BOOTSTRAP TOPIC
Prints one JSON object per record: partition, offset, key/value (base64, null when absent)
and headers ([name, base64 value] pairs), sorted by partition then offset.
"""
import base64
import json
import os
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def security():
    """kafka-python's TLS and SASL settings: $HUBGATE_KAFKA_PY_CONFIG, JSON keyword arguments
    (tests/src/secured.rs writes them), or none."""
    text = os.environ.get("HUBGATE_KAFKA_PY_CONFIG", "")
    return json.loads(text) if text else {}


def b64(b):
    return None if b is None else base64.b64encode(b).decode()


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        **security(),
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=5000,
        request_timeout_ms=20000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        print(f"topic {topic} not found", file=sys.stderr)
        sys.exit(2)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    end = consumer.end_offsets(tps)
    out = []
    remaining = {tp for tp in tps if end[tp] > consumer.position(tp)}
    deadline = time.monotonic() + 60
    while remaining:
        if time.monotonic() > deadline:
            print(f"timed out reading {topic}; missing {remaining}", file=sys.stderr)
            sys.exit(3)
        batch = consumer.poll(timeout_ms=1000)
        if not batch and all(consumer.position(tp) >= end[tp] for tp in remaining):
            break
        for tp, records in batch.items():
            for r in records:
                if r.offset >= end[tp]:
                    continue
                out.append({
                    "partition": r.partition,
                    "offset": r.offset,
                    "key": b64(r.key),
                    "value": b64(r.value),
                    "headers": [[k, b64(v)] for k, v in (r.headers or [])],
                })
        remaining = {tp for tp in remaining if consumer.position(tp) < end[tp]}
    consumer.close()
    for rec in sorted(out, key=lambda r: (r["partition"], r["offset"])):
        print(json.dumps(rec))


if __name__ == "__main__":
    main()
