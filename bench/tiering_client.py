#!/usr/bin/env python3
"""Producer and consumer of bench/tiering.sh (confluent-kafka, i.e. librdkafka); one JSON line out.

produce: BYTES of SIZE-byte records (acks=1, no client compression unless --compression). Values are text-like and
         come from a pool of 8192 distinct records (8 MiB at 1 KiB, more than zstd's window), so
         the remote tier's chunk compression sees data about as compressible as JSON logs, not
         one value repeated.
consume: partition 0 from offset 0 until COUNT records arrived; MB/s of record values.
"""
import argparse, json, random, sys, time

from confluent_kafka import Consumer, Producer, TopicPartition

WORDS = [b"strata", b"tier", b"segment", b"offset", b"claim", b"kafka", b"bucket", b"batch",
         b"replay", b"audit", b"consumer", b"manifest", b"chunk", b"cache", b"epoch", b"fetch"]


def value_pool(size: int, count: int = 8192) -> list:
    rng = random.Random(42)
    pool = []
    for _ in range(count):
        out = bytearray()
        while len(out) < size:
            out += rng.choice(WORDS) + b" " + str(rng.randint(0, 10**9)).encode() + b" "
        pool.append(bytes(out[:size]))
    return pool


def produce(args) -> dict:
    producer = Producer({
        "bootstrap.servers": args.bootstrap, "acks": "1", "compression.type": args.compression,
        "linger.ms": 5, "batch.size": 1048576, "queue.buffering.max.messages": 1000000,
        "queue.buffering.max.kbytes": 1048576, "enable.idempotence": False, "log_level": 3,
    })
    pool = value_pool(args.size)
    count = args.bytes // args.size
    errors = [0]

    def report(err, _msg):
        if err is not None:
            errors[0] += 1

    start = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(args.topic, pool[i % len(pool)], partition=0, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(300)
    elapsed = time.perf_counter() - start
    return {"mode": "produce", "records": count, "errors": errors[0] + left,
            "seconds": round(elapsed, 3), "mb_per_s": round(count * args.size / elapsed / 1e6, 1)}


def consume(args) -> dict:
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap, "group.id": f"tier-bench-{time.time_ns()}",
        "enable.auto.commit": False, "fetch.max.bytes": 67108864,
        "max.partition.fetch.bytes": 16777216, "fetch.wait.max.ms": 500,
        "queued.max.messages.kbytes": 262144, "log_level": 3,
    })
    consumer.assign([TopicPartition(args.topic, 0, 0)])
    got, nbytes, expected_offset = 0, 0, 0
    start = time.perf_counter()
    idle_since = start
    while got < args.count:
        batch = consumer.consume(num_messages=10000, timeout=1.0)
        for message in batch:
            if message.error() is not None:
                raise SystemExit(f"consume error: {message.error()}")
            if message.offset() != expected_offset:
                raise SystemExit(f"offset {message.offset()}, expected {expected_offset}")
            expected_offset += 1
            got += 1
            nbytes += len(message.value() or b"")
        if batch:
            idle_since = time.perf_counter()
        elif time.perf_counter() - idle_since > 30:
            break  # the broker stopped delivering: report what arrived rather than hang
    elapsed = time.perf_counter() - start
    consumer.close()
    return {"mode": "consume", "records": got, "expected": args.count,
            "seconds": round(elapsed, 3), "mb_per_s": round(nbytes / elapsed / 1e6, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["produce", "consume"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--bytes", type=int, default=1 << 30, help="produce: total value bytes")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--compression", default="none", help="produce: the producer's codec")
    parser.add_argument("--count", type=int, default=0, help="consume: records to read")
    args = parser.parse_args()
    print(json.dumps(produce(args) if args.mode == "produce" else consume(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
