"""Writes COUNT records to partition 0 of TOPIC with kafka-python, batches compressed with
CODEC (none, gzip, snappy, lz4, zstd): key k<i>, value value-<i>-<codec>, header n=<i>, all
in one batch (linger), acks=all.

Usage: produce.py BOOTSTRAP TOPIC CODEC COUNT
"""
import json
import os
import sys

from kafka import KafkaProducer


def security():
    """kafka-python's TLS and SASL settings: $HUBGATE_KAFKA_PY_CONFIG, JSON keyword arguments
    (tests/src/secured.rs writes them), or none."""
    text = os.environ.get("HUBGATE_KAFKA_PY_CONFIG", "")
    return json.loads(text) if text else {}


def main():
    bootstrap, topic, codec, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        **security(),
        acks="all",
        linger_ms=100,
        compression_type=None if codec == "none" else codec,
    )
    for i in range(count):
        producer.send(
            topic,
            key=f"k{i}".encode(),
            value=f"value-{i}-{codec}".encode(),
            headers=[("n", str(i).encode())],
            partition=0,
        )
    producer.flush()
    producer.close()


if __name__ == "__main__":
    main()
