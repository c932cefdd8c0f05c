"""Reads the mention topic in batches with a plain aiokafka consumer.

The mention topic carries one record per mention, the only topic the worker reads at
that rate. A Faust agent pays for every record: the consumer's per-message callback
with its flow-control wait, the stream's event and acknowledgement bookkeeping, and
task switches, about a third of a worker's time when the ingest agent read this topic
(docs/performance.md). Reading stays stateless here (the brand states live with the
detect agent), so a consumer of its own, in a consumer group of its own
(``<app_id>-ingest``), hands whole fetched batches to the handler instead.

What it guarantees (docs/delivery.md):

- A batch's offsets are committed only after the handler returned, i.e. once the
  broker has every record the handler sent for it. A crash replays what was not
  committed; the detect agent skips a replayed mention by its source position.
- A handler that fails (the broker unreachable, say) does not lose the batch: the
  reader logs it, goes back to the batch's first offsets and tries again after a pause.
- Before its partitions are taken away in a rebalance, and when the worker stops, the
  reader finishes the batch in hand and commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import ConsumerStoppedError, KafkaError
from mode import Service

log = logging.getLogger("crisis_radar.worker")

# Committed offsets trail the handled ones by at most this long: a crash replays that
# much (skipped as duplicates downstream), a commit per batch would cost a round trip.
COMMIT_SECONDS = 1.0
# A failed batch is read again after this pause.
RETRY_SECONDS = 2.0
# At stop, the batch in hand gets this long to finish before the reader gives up on it
# (it is then not committed, and the next worker reads it again).
STOP_SECONDS = 15.0

Handler = Callable[[list[Any]], Awaitable[None]]


class MentionReader(Service):
    """Hands the records of ``topic`` to ``handle`` in batches of up to ``batch_size``,
    each partition's records in offset order, and commits what ``handle`` is done with."""

    def __init__(
        self,
        handle: Handler,
        *,
        topic: str,
        brokers: list[str],
        group_id: str,
        batch_size: int,
        session_timeout: float,
        rebalance_timeout: float,
        fetch_max_wait: float = 0.5,
        wait_seconds: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.handle = handle
        self.topic = topic
        self.brokers = brokers
        self.group_id = group_id
        self.batch_size = batch_size
        self.session_timeout = session_timeout
        self.rebalance_timeout = rebalance_timeout
        self.fetch_max_wait = fetch_max_wait
        self.wait_seconds = wait_seconds
        self.consumer: AIOKafkaConsumer | None = None
        self.batch_lock = asyncio.Lock()  # held while a batch is handled and committed
        self.handled: dict[TopicPartition, int] = {}  # next offset to handle
        self.uncommitted: dict[TopicPartition, int] = {}
        self.last_commit = time.monotonic()
        self.stopping = False

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the partition's end, per assigned partition the consumer has
        fetched from (its high-water mark is known)."""
        consumer = self.consumer
        if consumer is None:
            return {}
        lags = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            next_offset = self.handled.get(tp)
            if highwater is None or next_offset is None:
                continue
            lags[(tp.topic, tp.partition)] = highwater - next_offset
        return lags

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.brokers,
            group_id=self.group_id,
            client_id=f"{self.group_id}-reader",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_size,
            fetch_max_wait_ms=int(self.fetch_max_wait * 1000),
            session_timeout_ms=int(self.session_timeout * 1000),
            rebalance_timeout_ms=int(self.rebalance_timeout * 1000),
            heartbeat_interval_ms=int(min(3.0, self.session_timeout / 3) * 1000),
        )

    async def _connect(self) -> AIOKafkaConsumer:
        """A started consumer subscribed to the topic; waits for a broker to answer."""
        attempt = 0
        while True:
            consumer = self._consumer()
            try:
                await consumer.start()
            except KafkaError as exc:
                attempt += 1
                log.warning(
                    "ingest: cannot connect to Kafka at %s yet (%r); attempt %d, retrying in "
                    "%.0f s",
                    ",".join(self.brokers),
                    exc,
                    attempt,
                    RETRY_SECONDS,
                )
                await consumer.stop()
                await asyncio.sleep(RETRY_SECONDS)
                continue
            consumer.subscribe([self.topic], listener=_Rebalance(self))
            return consumer

    @Service.task
    async def _read(self) -> None:
        self.consumer = consumer = await self._connect()
        log.info("ingest: reading %s as consumer group %s", self.topic, self.group_id)
        while not self.stopping:
            try:
                fetched = await consumer.getmany(
                    timeout_ms=int(self.wait_seconds * 1000), max_records=self.batch_size
                )
            except ConsumerStoppedError:
                return
            if fetched and not self.stopping:
                async with self.batch_lock:
                    await self._handle(consumer, fetched)
            if self.uncommitted and time.monotonic() - self.last_commit >= COMMIT_SECONDS:
                async with self.batch_lock:
                    await self.commit()

    async def _handle(
        self, consumer: AIOKafkaConsumer, fetched: Mapping[TopicPartition, list[Any]]
    ) -> None:
        # A partition taken away since the fetch is no longer ours to handle.
        assigned = consumer.assignment()
        fetched = {tp: records for tp, records in fetched.items() if tp in assigned and records}
        if not fetched:
            return
        records = [record for part in fetched.values() for record in part]
        try:
            await self.handle(records)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the batch is read again, nothing is lost
            log.error(
                "ingest: a batch of %d records failed (%r); reading it again in %.0f s",
                len(records),
                exc,
                RETRY_SECONDS,
                exc_info=not isinstance(exc, KafkaError),
            )
            for tp, part in fetched.items():
                consumer.seek(tp, part[0].offset)
            await asyncio.sleep(RETRY_SECONDS)
            return
        for tp, part in fetched.items():
            self.handled[tp] = self.uncommitted[tp] = part[-1].offset + 1

    async def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        """Commit the offsets handled since the last commit, of ``partitions`` (default:
        those assigned). Best effort: what a commit misses is read again after a
        restart, and skipped downstream as a replay."""
        consumer, offsets = self.consumer, self.uncommitted
        self.last_commit = time.monotonic()
        if consumer is None or not offsets:
            return
        ours = consumer.assignment() if partitions is None else partitions
        offsets = {tp: offset for tp, offset in offsets.items() if tp in ours}
        self.uncommitted = {}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            log.warning(
                "ingest: could not commit offsets %s (%r); a restart reads them again",
                {f"{tp.topic}/{tp.partition}": o for tp, o in sorted(offsets.items())},
                exc,
            )

    async def on_stop(self) -> None:
        """Finish the batch in hand (for at most ``STOP_SECONDS``), commit, leave the group."""
        self.stopping = True
        consumer = self.consumer
        if consumer is None:
            return
        try:
            await asyncio.wait_for(self.batch_lock.acquire(), STOP_SECONDS)
        except TimeoutError:
            log.warning("ingest: the batch in hand did not finish within %.0f s", STOP_SECONDS)
        else:
            try:
                await self.commit()
            finally:
                self.batch_lock.release()
        await consumer.stop()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, reader: MentionReader) -> None:
        self.reader = reader

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # The batch in hand is finished and committed while the partitions are ours.
        async with self.reader.batch_lock:
            await self.reader.commit(set(revoked))
        for tp in revoked:
            self.reader.handled.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        consumer = self.reader.consumer
        if consumer is None:
            return
        for tp in assigned:
            try:
                committed = await consumer.committed(tp)
            except KafkaError:
                continue
            self.reader.handled[tp] = committed or 0
        log.info(
            "ingest: assigned %s",
            ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(assigned)) or "nothing",
        )
