"""Changes to faust-streaming 0.15.3's consumer that the worker relies on.

Importing this module applies them (``streams.app`` does):

- ``fetch_max_wait``: Faust builds its consumer with a fixed ``fetch_max_wait_ms`` of 1.5 s;
  an app attribute ``FETCH_MAX_WAIT_ATTRIBUTE``, when set, replaces it (see
  ``Settings.fetch_max_wait``).
- **No commit past an unacknowledged head.** The offset Faust commits comes from the
  acknowledged offsets of a partition (``Consumer._new_offset``). Faust stops at a gap at
  their head only when the smallest acknowledged offset is more than one past the
  committed offset, although the committed offset is the next one to read: a single record
  that was handed out and not acknowledged (or never handed out) while the record after it
  was acknowledged is committed past, and lost for good if the worker then stops.
  ``committable_head`` is the stricter rule: the smallest acknowledged offset must be the
  committed one (or covered by a gap Faust recorded itself).

``acknowledge_offsets`` marks offsets acknowledged that Faust never handed out (the records
the detect agent read again directly, ``streams.app.SkippedOffsets``), so that commits
can pass them once they are applied instead of stopping before them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

log = logging.getLogger("crisis_radar.worker")

FETCH_MAX_WAIT_ATTRIBUTE = "crisis_radar_fetch_max_wait"
# A partition whose commit has waited this long for the same unacknowledged offset is
# logged (once per offset).
HELD_COMMIT_LOG_SECONDS = 60.0


def committable_head(acked: list[int], committed: int | None, gap: Any = None) -> bool:
    """May a commit move on from ``committed`` (the next offset to read; None when not
    known) given the ``acked`` offsets of the partition? Only if the record at
    ``committed`` is among them, or inside a gap (``IntervalTree``) Faust recorded."""
    if not acked:
        return False
    if committed is None:
        return True  # nothing to compare with; Faust's own rule applies
    if min(acked) <= committed:
        return True
    return bool(gap) and bool(gap.overlaps(committed))


_faust_new_offset = Consumer._new_offset
_held: dict[Any, tuple[int, float]] = {}  # TP -> (committed offset, since when held there)


def _new_offset(self: Any, tp: Any) -> int | None:
    committed = self._committed_offset[tp]
    acked = self._acked[tp]
    if acked and not committable_head(acked, committed, self._gap.get(tp)):
        _log_held(tp, committed)
        return None
    _held.pop(tp, None)
    offset: int | None = _faust_new_offset(self, tp)
    return offset


def _log_held(tp: Any, committed: int) -> None:
    now = time.monotonic()
    offset, since = _held.setdefault(tp, (committed, now))
    if offset != committed:
        _held[tp] = (committed, now)
    elif since >= 0 and now - since >= HELD_COMMIT_LOG_SECONDS:
        log.warning(
            "commits of %s/%d wait for offset %d, not acknowledged for %.0f s",
            tp.topic,
            tp.partition,
            committed,
            now - since,
        )
        _held[tp] = (committed, -1.0)  # logged


def acknowledge_offsets(consumer: Any, tp: Any, first: int, last: int) -> int:
    """Mark offsets ``first`` to ``last`` of ``tp`` acknowledged in ``consumer``'s
    bookkeeping, as ``Consumer.ack`` does for a record it handed out; offsets below the
    committed one are left alone. Returns how many were newly marked."""
    committed = consumer._committed_offset[tp]
    index = consumer._acked_index[tp]
    acked = consumer._acked[tp]
    marked = 0
    for offset in range(max(first, committed or 0), last + 1):
        if offset not in index:
            index.add(offset)
            acked.append(offset)
            marked += 1
    consumer._n_acked += marked
    return marked


def _create_worker_consumer(thread: Any, transport: Any) -> Any:
    consumer = _faust_create_worker_consumer(thread, transport)
    wait = getattr(thread.app, FETCH_MAX_WAIT_ATTRIBUTE, None)
    if wait is not None:
        consumer._fetch_max_wait_ms = int(wait * 1000)  # read when the consumer starts
    return consumer


_faust_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer
AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign, assignment]
Consumer._new_offset = _new_offset  # type: ignore[method-assign]
