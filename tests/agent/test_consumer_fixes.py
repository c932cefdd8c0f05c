"""The consumer's commit rule (``streams.consumer_fixes``) on faust-streaming's own
``Consumer._new_offset`` bookkeeping: a commit never passes a record that was not
acknowledged, and offsets the agent acknowledges itself let it pass them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from streams import consumer_fixes
from streams.consumer_fixes import acknowledge_offsets, committable_head

P0 = TP("scored", 0)


def consumer(committed: int | None, *acked: int) -> Any:
    """A Faust consumer with just the bookkeeping ``_new_offset`` and ``ack`` use."""
    c: Any = object.__new__(Consumer)
    c._acked = defaultdict(list)
    c._acked_index = defaultdict(set)
    c._gap = defaultdict(IntervalTree)
    c._committed_offset = defaultdict(lambda: None)
    c._committed_offset[P0] = committed
    c._n_acked = 0
    for offset in acked:
        c._acked[P0].append(offset)
        c._acked_index[P0].add(offset)
    return c


def test_faust_alone_commits_past_one_unacknowledged_record() -> None:
    # The defect the rule is there for: committed offset 31 is the next to read; 31 was
    # never acknowledged, 32 and 33 were. Faust's own rule commits 34, past 31.
    assert consumer_fixes._faust_new_offset(consumer(31, 32, 33), P0) == 34


@pytest.mark.parametrize("missing", [1, 2, 5])
def test_no_commit_past_an_unacknowledged_head(missing: int) -> None:
    c = consumer(31, *range(31 + missing, 40))
    assert c._new_offset(P0) is None
    assert c._acked[P0] == list(range(31 + missing, 40))  # kept for later


def test_the_acknowledged_run_from_the_committed_offset_is_committed() -> None:
    c = consumer(31, 33, 31, 32, 35)
    assert c._new_offset(P0) == 34
    c._committed_offset[P0] = 34
    assert c._new_offset(P0) is None  # 34 not acknowledged: held
    c._acked[P0].append(34)
    assert c._new_offset(P0) == 36


def test_a_gap_faust_recorded_at_the_head_is_passed() -> None:
    c = consumer(31, 33, 34)
    c._gap[P0].addi(31, 33)
    assert c._new_offset(P0) == 35


def test_without_a_committed_offset_faust_s_rule_applies() -> None:
    assert consumer(None, 5, 6)._new_offset(P0) == 7


def test_offsets_read_again_directly_are_acknowledged_once() -> None:
    c = consumer(10, 13, 14)
    assert c._new_offset(P0) is None  # 10 to 12 were left out by the consumer
    assert acknowledge_offsets(c, P0, 8, 12) == 3  # 8 and 9 are below the committed offset
    assert acknowledge_offsets(c, P0, 10, 12) == 0
    assert c._n_acked == 3
    assert c._new_offset(P0) == 15


def test_committable_head() -> None:
    assert not committable_head([], 3)
    assert committable_head([3, 4], 3)
    assert committable_head([9], None)
    assert not committable_head([4], 3)
    assert committable_head([4], 3, IntervalTree.from_tuples([(3, 4)]))
