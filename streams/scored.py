"""Records of the internal scored topic: the scored mentions of one ingest batch that go
to one partition, as one record.

The ingest agent scores a batch of input records, then sends, for each partition of the
scored topic, one record (or a few, see ``MAX_RECORD_BYTES``) holding the scored mentions
of that batch whose brand the partition owns::

    {"mentions": [SCORED, SCORED, ...]}

where ``SCORED`` is ``detector.sentiment.to_wire`` plus ``ingested_at`` and
``source_position``. One record per partition and batch instead of one per mention keeps
the produce requests and the detect agent's per-record work independent of the stream's
rate. A brand's partition is the one Kafka's default partitioner gives its key (murmur2
of the brand, as a record keyed by the brand would get), so every mention of a brand, the
brand's table partition and the records of earlier versions (one scored mention per record,
keyed by brand, still read) agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

MENTIONS = "mentions"
# A record holds the mentions of one partition up to about this size; more make several
# records. Far below the broker's default message limit (1 MiB), above one mention at the
# largest accepted event (64 KiB).
MAX_RECORD_BYTES = 256 * 1024


@lru_cache(maxsize=65_536)
def partition_of(brand: str, partitions: int) -> int:
    """The scored topic's partition of a brand: Kafka's default partitioner for its key
    (remembered: murmur2 in Python takes longer than the rest of a mention's packing)."""
    return (murmur2(brand.encode()) & 0x7FFFFFFF) % partitions


def pack(
    mentions: Iterable[tuple[str, dict[str, Any]]], partitions: int
) -> list[tuple[int, bytes]]:
    """(partition, record value) pairs for scored mentions given as (brand, wire) pairs;
    each partition's mentions keep their order, within and across its records."""
    by_partition: dict[int, list[bytes]] = {}
    for brand, wire in mentions:
        by_partition.setdefault(partition_of(brand, partitions), []).append(orjson.dumps(wire))
    records: list[tuple[int, bytes]] = []
    for partition, encoded in sorted(by_partition.items()):
        chunk: list[bytes] = []
        size = 0
        for item in encoded:
            if chunk and size + len(item) > MAX_RECORD_BYTES:
                records.append((partition, _record(chunk)))
                chunk, size = [], 0
            chunk.append(item)
            size += len(item) + 1
        records.append((partition, _record(chunk)))
    return records


def _record(encoded: list[bytes]) -> bytes:
    return b'{"' + MENTIONS.encode() + b'":[' + b",".join(encoded) + b"]}"


def unpack(value: Any) -> list[Any]:
    """The scored mentions of a record's value (bytes, or already decoded JSON): the list
    of a batch record, or the one mention of a record of an earlier version. Raises
    ``ValueError`` for bytes that are not JSON."""
    if isinstance(value, bytes | bytearray | memoryview | str):
        value = orjson.loads(value)
    if isinstance(value, dict) and isinstance(value.get(MENTIONS), list):
        return list(value[MENTIONS])
    return [value]
