"""``SkippedOffsets``: the offsets of a partition the consumer leaves out, as gaps between
the records it hands out, or as a tail it passed while the agent was idle.

The consumer here is a stand-in with the four things ``SkippedOffsets`` asks a Faust
consumer (assignment, committed offsets, position, flow); the integration tests run the
real one (tests/integration/test_crash_restart.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from faust.types import TP

from streams import app as app_module
from streams.app import Gap, SkippedOffsets

TOPIC = "mentions"
P0, P1 = TP(TOPIC, 0), TP(TOPIC, 1)


@dataclass
class Consumer:
    positions: dict[TP, int]
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    flow_active: bool = True
    earliest: int = 0

    def assignment(self) -> set[TP]:
        return set(self.positions) | {TP("other-topic", 0)}

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest for tp in tps}


@dataclass
class App:
    _consumer: Consumer
    consumer_generation_id: int = 1


@dataclass
class Message:
    tp: TP
    offset: int


@dataclass
class Event:
    message: Message


async def handed(skipped: SkippedOffsets, tp: TP, *offsets: int) -> list[Gap | None]:
    with skipped.busy():
        return [await skipped.check(Event(Message(tp, offset))) for offset in offsets]


def idle(skipped: SkippedOffsets) -> None:
    skipped.waiting()
    skipped.last_work = time.monotonic() - app_module.LEFT_BEHIND_IDLE_SECONDS - 1


async def test_a_jump_between_handed_offsets_is_a_gap() -> None:
    skipped = SkippedOffsets(App(Consumer({P0: 0}, {P0: 5})), "ingest", TOPIC)  # type: ignore[arg-type]
    gaps = await handed(skipped, P0, 5, 6, 7, 10, 11)
    assert gaps == [None, None, None, Gap(TOPIC, 0, 8, 9), None]
    assert await handed(skipped, P0, 9) == [None]  # an older offset again: no gap


@pytest.mark.parametrize("committed", [1, 5])
async def test_records_left_out_before_the_first_one_handed_out_are_a_gap(committed: int) -> None:
    # The committed offset is the first one due; with one or several records left out
    # before the first record handed out, they are a gap all the same.
    app = App(Consumer({P0: 0}, {P0: committed}))
    skipped = SkippedOffsets(app, "detect", TOPIC)  # type: ignore[arg-type]
    assert await handed(skipped, P0, 6, 7) == [Gap(TOPIC, 0, committed, 5), None]
    # A new generation starts at the committed offset again.
    app._consumer._committed_offset[P0] = 8
    app.consumer_generation_id = 2
    assert await handed(skipped, P0, 8) == [None]


async def test_without_a_committed_offset_the_partition_starts_at_its_first_record() -> None:
    consumer = Consumer({P0: 0}, {P0: None}, earliest=3)
    skipped = SkippedOffsets(App(consumer), "detect", TOPIC)  # type: ignore[arg-type]
    assert await handed(skipped, P0, 4, 5) == [Gap(TOPIC, 0, 3, 3), None]


async def test_an_idle_agent_with_a_passed_tail_is_told_where_it_starts() -> None:
    consumer = Consumer({P0: 12, P1: 4}, {P0: 0, P1: 4})
    skipped = SkippedOffsets(App(consumer), "ingest", TOPIC)  # type: ignore[arg-type]
    await handed(skipped, P0, 7, 8, 9)
    assert await skipped.left_behind() == []  # the agent just worked
    idle(skipped)
    # P0: handed up to 9, the consumer is at 12: 10 and 11 were passed. P1: nothing handed
    # out, the consumer is at the committed offset: nothing passed.
    assert await skipped.left_behind() == [(P0, 10, 12)]
    assert await skipped.left_behind() == []  # not again right away
    consumer.positions[P1] = 6  # P1's first two records passed before any was handed out
    assert await skipped.left_behind() == [(P1, 4, 6)]


async def test_no_tail_is_reported_before_the_agent_waits_for_records() -> None:
    skipped = SkippedOffsets(App(Consumer({P0: 12}, {P0: 3})), "detect", TOPIC)  # type: ignore[arg-type]
    skipped.last_work = time.monotonic() - app_module.LEFT_BEHIND_IDLE_SECONDS - 1
    assert await skipped.left_behind() == []  # e.g. still reading the control topic
    skipped.waiting()
    skipped.last_work = time.monotonic() - app_module.LEFT_BEHIND_IDLE_SECONDS - 1
    assert await skipped.left_behind() == [(P0, 3, 12)]


@pytest.mark.parametrize("state", ["working", "flow stopped", "caught up"])
async def test_no_tail_is_reported_while_it_could_still_arrive(state: str) -> None:
    consumer = Consumer({P0: 12})
    skipped = SkippedOffsets(App(consumer), "detect", TOPIC)  # type: ignore[arg-type]
    await handed(skipped, P0, 9)
    idle(skipped)
    if state == "working":
        with skipped.busy():
            assert await skipped.left_behind() == []
        return
    if state == "flow stopped":
        consumer.flow_active = False
    else:
        consumer.positions[P0] = 10
    assert await skipped.left_behind() == []


async def test_a_new_generation_starts_from_the_committed_offsets() -> None:
    consumer = Consumer({P0: 12}, {P0: 11})
    app = App(consumer)
    skipped = SkippedOffsets(app, "detect", TOPIC)  # type: ignore[arg-type]
    await handed(skipped, P0, 5)
    app.consumer_generation_id = 2
    idle(skipped)
    assert await skipped.left_behind() == [(P0, 11, 12)]


async def test_a_partition_without_a_known_start_is_left_alone() -> None:
    skipped = SkippedOffsets(App(Consumer({P0: 12}, {P0: None})), "ingest", TOPIC)  # type: ignore[arg-type]
    idle(skipped)
    assert await skipped.left_behind() == []
