"""What the detect agent keeps of brand states: each table value once, deflated, no older
values, and no more memory than its length."""

from __future__ import annotations

import gc
import random
import sys
import tracemalloc
from typing import Any

import orjson
import pytest

from detector.state import BrandState
from streams.app import BrandBatch, decode_state, encode_state

BRANDS = 200


def _state(brand: str, mentions: int = 0) -> BrandState:
    """A state of a few kB of JSON, as a brand's state with some history is."""
    state = BrandState(brand=brand, mentions=mentions)
    rng = random.Random(brand)
    state.recent = [
        [float(i), *(round(rng.uniform(0, 100), 3) for _ in range(4))] for i in range(200)
    ]
    return state


class Event:
    """What a table write needs of the event that caused it: a weak reference."""


def _traced(make: Any) -> tuple[list[bytes], int]:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        values = make()
        return values, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_an_encoded_state_takes_its_length_in_memory() -> None:
    states = [_state(f"brand-{i}") for i in range(BRANDS)]
    values, traced = _traced(lambda: [encode_state(s) for s in states])
    length = sum(map(len, values))
    assert length / BRANDS > 2000
    # A bytes object's header is 33 bytes, the allocator rounds up, the list is the rest.
    assert traced <= length + 128 * BRANDS, (traced, length)
    assert decode_state(values[0])["brand"] == "brand-0"


def test_a_batch_keeps_no_value_the_table_no_longer_holds() -> None:
    table: dict[str, bytes] = {
        f"brand-{i}": encode_state(_state(f"brand-{i}")) for i in range(BRANDS)
    }
    batch = BrandBatch(table, keep=BRANDS)
    event = Event()
    for _round in range(3):
        old = dict(table)
        batch.begin()
        batch.event = event
        for brand in old:
            state = batch.get(brand)
            assert state is not None
            state.mentions += 1
            batch.put(brand, state)
        batch.end()
        batch.write()
        # The table holds new values, and nothing else holds the old ones: only ``old``
        # and getrefcount's argument refer to them (counted outside ``assert``, which
        # keeps its operands).
        assert all(table[brand] is not old[brand] for brand in old)
        references = {brand: sys.getrefcount(old[brand]) for brand in old}
        assert set(references.values()) == {2}, references
    assert {decode_state(v)["mentions"] for v in table.values()} == {3}
    # Read again (not changed), each brand's decoded state comes from the keep.
    batch.begin()
    states = [batch.get(brand) for brand in table]
    batch.end()
    assert all(s is not None and s.mentions == 3 for s in states)
    references = {brand: sys.getrefcount(table[brand]) for brand in table}
    assert set(references.values()) == {3}, references  # the table, the keep, the argument


def test_a_state_is_stored_deflated_and_plain_json_is_still_read() -> None:
    state = _state("acme", mentions=7)
    stored = encode_state(state)
    plain = orjson.dumps(state.to_dict())
    assert len(stored) < 0.6 * len(plain)
    assert decode_state(stored) == decode_state(plain) == state.to_dict()
    assert BrandState.from_dict(decode_state(stored)) == state
    # What releases before wrote to the changelog, and a value that is neither.
    assert decode_state(bytearray(plain))["mentions"] == 7
    with pytest.raises(ValueError, match="does not inflate"):
        decode_state(b"x" + plain)
