"""Records of the internal scored topic (``streams.scored``): one per partition and batch."""

from __future__ import annotations

import json

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams import scored


def wire(brand: str, i: int, text: str = "hello") -> dict[str, object]:
    return {"id": f"m-{i}", "brand": brand, "text": text, "source_position": [0, i]}


@pytest.mark.parametrize("partitions", [1, 2, 4, 12])
def test_a_brand_goes_where_the_default_partitioner_puts_its_key(partitions: int) -> None:
    everyone = list(range(partitions))
    for brand in ["acme", "acme-air", "globex", "ünïcode", "x" * 200]:
        expected = DefaultPartitioner()(brand.encode(), everyone, everyone)
        assert scored.partition_of(brand, partitions) == expected


def test_pack_makes_one_record_per_partition_in_order() -> None:
    brands = ["acme", "globex", "initech", "umbrella", "hooli", "acme-air"]
    mentions = [(brands[i % len(brands)], wire(brands[i % len(brands)], i)) for i in range(60)]
    records = scored.pack(mentions, 4)

    partitions = [partition for partition, _ in records]
    assert len(partitions) == len(set(partitions))  # one record per partition
    seen = []
    for partition, value in records:
        for item in scored.unpack(value):
            assert scored.partition_of(item["brand"], 4) == partition
            seen.append(item)
    assert sorted(seen, key=lambda w: w["id"]) == sorted(
        (w for _, w in mentions), key=lambda w: w["id"]
    )
    for _, value in records:
        ids = [int(item["id"][2:]) for item in scored.unpack(value)]
        assert ids == sorted(ids)  # the batch's order within a partition


def test_pack_splits_a_large_partition_into_records_under_the_limit() -> None:
    text = "y" * 50_000
    mentions = [("acme", wire("acme", i, text)) for i in range(20)]
    records = scored.pack(mentions, 2)
    assert len(records) > 1
    assert {partition for partition, _ in records} == {scored.partition_of("acme", 2)}
    # No record beyond the limit by more than one mention; the order holds across records.
    assert all(len(value) <= scored.MAX_RECORD_BYTES + 60_000 for _, value in records)
    ids = [item["id"] for _, value in records for item in scored.unpack(value)]
    assert ids == [f"m-{i}" for i in range(20)]


def test_pack_of_nothing_is_no_record() -> None:
    assert scored.pack([], 4) == []


def test_unpack_reads_batch_records_and_single_mention_records() -> None:
    batch = json.dumps({"mentions": [wire("acme", 1), wire("acme", 2)]}).encode()
    assert [w["id"] for w in scored.unpack(batch)] == ["m-1", "m-2"]
    single = json.dumps(wire("acme", 3)).encode()  # the format of earlier versions
    assert scored.unpack(single) == [wire("acme", 3)]
    assert scored.unpack(wire("acme", 4)) == [wire("acme", 4)]  # already decoded


def test_unpack_of_bytes_that_are_not_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        scored.unpack(b"\x00not json")
