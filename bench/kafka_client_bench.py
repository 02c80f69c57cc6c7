#!/usr/bin/env python3
"""Drives one Kafka broker with the confluent-kafka (librdkafka) client and prints one JSON line.

produce: sends COUNT records of SIZE bytes with the given acks and compression, measures MB/s of
         record values and the p50/p99 produce latency (send -> delivery report, sampled).
consume: reads COUNT records from offset 0 of partition 0 and measures MB/s.
The same script drives Strata and Tansu, so the client is never the difference.
"""
import argparse, json, os, random, sys, time

from confluent_kafka import Consumer, Producer, TopicPartition


def payload(size: int) -> bytes:
    # Text-like bytes: compressible about as well as JSON logs, so codecs matter as in real use.
    words = [b"strata", b"tier", b"segment", b"offset", b"claim", b"kafka", b"bucket", b"batch"]
    rng = random.Random(size)
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" " + str(rng.randint(0, 10**6)).encode() + b" "
    return bytes(out[:size])


def produce(args) -> dict:
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "compression.type": args.compression,
        "linger.ms": 5,
        "batch.size": 1048576,
        "queue.buffering.max.messages": 1000000,
        "queue.buffering.max.kbytes": 1048576,
        "enable.idempotence": False,
        "log_level": 3,
    })
    value = payload(args.size)
    latencies = []
    errors = [0]

    def sampled(sent_at):
        def report(err, _msg):
            if err is not None:
                errors[0] += 1
            else:
                latencies.append(time.perf_counter() - sent_at)
        return report

    def count_errors(err, _msg):
        if err is not None:
            errors[0] += 1

    start = time.perf_counter()
    for i in range(args.count):
        callback = sampled(time.perf_counter()) if i % 200 == 0 else count_errors
        while True:
            try:
                producer.produce(args.topic, value, partition=0, on_delivery=callback)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p):
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 2)

    return {
        "mode": "produce", "size": args.size, "acks": args.acks, "compression": args.compression,
        "records": args.count, "errors": errors[0], "seconds": round(elapsed, 3),
        "mb_per_s": round(args.count * args.size / elapsed / 1e6, 1),
        "records_per_s": round(args.count / elapsed),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99),
    }


def consume(args) -> dict:
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": f"bench-{os.getpid()}",
        "enable.auto.commit": False,
        "fetch.max.bytes": 52428800,
        "max.partition.fetch.bytes": 10485760,
        "fetch.wait.max.ms": 100,
        "log_level": 3,
    })
    consumer.assign([TopicPartition(args.topic, 0, 0)])
    got, nbytes = 0, 0
    start = time.perf_counter()
    deadline = start + args.timeout
    idle_since = time.perf_counter()
    while got < args.count and time.perf_counter() < deadline:
        batch = consumer.consume(num_messages=10000, timeout=1.0)
        for message in batch:
            if message.error() is None:
                got += 1
                nbytes += len(message.value() or b"")
        if batch:
            idle_since = time.perf_counter()
        elif time.perf_counter() - idle_since > 15:
            break  # the broker stopped delivering: report what arrived rather than hang
    elapsed = time.perf_counter() - start
    consumer.close()
    return {
        "mode": "consume", "records": got, "expected": args.count, "seconds": round(elapsed, 3),
        "mb_per_s": round(nbytes / elapsed / 1e6, 1), "records_per_s": round(got / elapsed),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["produce", "consume"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=200000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--acks", default="1")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--timeout", type=float, default=120, help="seconds a consume may take")
    args = parser.parse_args()
    result = produce(args) if args.mode == "produce" else consume(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
