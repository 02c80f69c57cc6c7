"""A transactional producer (confluent-kafka) is refused at once, not after its timeout.

Strata has no transactions. It answers FindCoordinator for the transactional id with itself, and
InitProducerId with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which librdkafka treats as fatal:
init_transactions(10) must fail well within its 10 s with a fatal, non-retriable error. An
idempotent producer on the same broker is unaffected.
Prints `OK ...`; exits non-zero with a message otherwise."""
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

bootstrap, topic = sys.argv[1], sys.argv[2]

transactional = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{topic}-txn"})
started = time.monotonic()
try:
    transactional.init_transactions(10)
    raise AssertionError("init_transactions succeeded on a broker without transactions")
except KafkaException as e:
    error = e.args[0]
elapsed = time.monotonic() - started
assert elapsed < 3, f"init_transactions took {elapsed:.1f} s to fail: {error}"
assert error.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, error
assert error.fatal() and not error.retriable(), error

idempotent = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
idempotent.produce(topic, b"after the refusal", partition=0)
assert idempotent.flush(20) == 0
reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader"})
reader.assign([TopicPartition(topic, 0, 0)])
message, deadline = None, time.time() + 20
while message is None and time.time() < deadline:
    message = reader.poll(0.5)
    if message is not None and message.error():
        message = None
reader.close()
assert message is not None and message.value() == b"after the refusal", message
print(f"OK refused in {elapsed:.2f} s: {error.str()}")
