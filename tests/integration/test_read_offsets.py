"""``read_offsets``, which the agents use to read the records the consumer left out of a
partition, against the embedded broker: exactly the asked offsets, in order, and a clear
timeout when the partition does not reach them."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from kafka import KafkaProducer

from streams.kafka_util import EmbeddedBroker, ensure_topics, read_offsets

pytestmark = pytest.mark.integration


def test_reads_exactly_the_asked_offsets_and_times_out_beyond_the_end(
    broker: EmbeddedBroker,
) -> None:
    topic = f"gap-{uuid.uuid4().hex[:8]}"
    ensure_topics([broker.address], {topic: 2})
    producer = KafkaProducer(bootstrap_servers=[broker.address], acks="all", batch_size=16)
    try:
        futures = [producer.send(topic, value=f"r{n}".encode(), partition=1) for n in range(10)]
        producer.flush(30)
        offsets = [f.get(30).offset for f in futures]
    finally:
        producer.close(10)
    assert offsets == list(range(10))

    records = asyncio.run(read_offsets([broker.address], topic, 1, 3, 6))
    assert [(r.offset, r.value) for r in records] == [(n, f"r{n}".encode()) for n in range(3, 7)]
    assert [r.value for r in asyncio.run(read_offsets([broker.address], topic, 1, 9, 9))] == [b"r9"]

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"offsets 9 to 12 of {topic}/1 not read within 2 s"):
        asyncio.run(read_offsets([broker.address], topic, 1, 9, 12, timeout=2))
    assert time.monotonic() - started < 10
