"""``Checkpoints``: when the detect agent's next checkpoint is due, with the last one's wait
for the broker in a task of its own; and ``Turns``, the event loop's turns during a batch."""

from __future__ import annotations

import asyncio
import time

import pytest

from streams.app import Checkpoints, Turns


async def test_a_checkpoint_is_due_after_the_interval_once_the_last_one_is_delivered() -> None:
    checkpoints = Checkpoints(0.05)
    assert not checkpoints.due()  # just made
    checkpoints.last -= 1.0
    assert checkpoints.due()
    delivered = asyncio.Event()
    acknowledged: list[str] = []

    async def wait_for_broker() -> None:
        await delivered.wait()
        acknowledged.append("ack")

    checkpoints.on_the_way(wait_for_broker())
    assert not checkpoints.due()  # the interval is up, but the last one is on its way
    delivered.set()
    await checkpoints.settled()
    assert acknowledged == ["ack"]
    assert checkpoints.due()


async def test_a_failed_delivery_is_raised_by_the_next_checkpoint() -> None:
    checkpoints = Checkpoints(0.0)

    async def broker_gone() -> None:
        raise ConnectionError("no broker")

    checkpoints.on_the_way(broker_gone())
    with pytest.raises(ConnectionError):
        await checkpoints.settled()
    await checkpoints.settled()  # raised once; nothing on its way now
    assert checkpoints.due()


async def test_turns_let_other_tasks_run_during_a_long_batch() -> None:
    turns = Turns(0.002)
    ran: list[float] = []

    async def other() -> None:
        ran.append(time.monotonic())

    task = asyncio.ensure_future(other())
    end = time.monotonic() + 0.05
    while time.monotonic() < end and not ran:  # a batch that never awaits by itself
        await turns.take()
    await task
    assert ran and ran[0] < end


async def test_turns_are_not_taken_before_their_time() -> None:
    turns = Turns(60.0)
    ran: list[bool] = []

    async def other() -> None:
        ran.append(True)

    task = asyncio.ensure_future(other())
    for _ in range(100):
        await turns.take()
    assert ran == []
    await task
