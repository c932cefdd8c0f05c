"""Offline replay of raw mention events through the same path the worker takes:
validate, score, ``step`` per brand. Used by the ``backtest`` command."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from detector.core import AlertDecision, Outcome, bucket_of, step, tick
from detector.model import Limits, Rejection, admit_brand, parse_mention
from detector.sentiment import SentimentScorer, score
from detector.state import BrandState
from detector.thresholds import ThresholdBook


@dataclass
class ReplayStats:
    mentions: int = 0
    applied: int = 0
    late: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    first_event: dict[str, float] = field(default_factory=dict)
    last_event: dict[str, float] = field(default_factory=dict)


class Replayer:
    """Feeds raw events one by one; keeps every brand's state like the worker's table."""

    def __init__(
        self,
        book: ThresholdBook,
        scorer: SentimentScorer,
        limits: Limits | None = None,
        now: float = float("inf"),
    ) -> None:
        self.book = book
        self.scorer = scorer
        self.limits = limits or Limits()
        self.now = now
        self.states: dict[str, BrandState] = {}
        self.stats = ReplayStats()
        self.clock = float("-inf")
        self._ticked_bucket = -(2**62)

    def feed(self, raw: bytes) -> list[AlertDecision]:
        self.stats.mentions += 1
        parsed = parse_mention(raw, now=self.now, limits=self.limits)
        if isinstance(parsed, Rejection):
            self.stats.rejected[parsed.reason.value] += 1
            return []
        brand = parsed.brand
        refused = admit_brand(brand in self.states, len(self.states), self.limits)
        if refused is not None:
            self.stats.rejected[refused.reason.value] += 1
            return []
        # The replay owns its states: each is updated in place.
        result = step(
            self.states.get(brand),
            score(parsed, self.scorer),
            self.book.for_brand(brand),
            owned=True,
        )
        self.states[brand] = result.state
        decisions = result.decisions + self._tick_others(brand, parsed.created_at)
        if result.outcome is Outcome.LATE:
            self.stats.late += 1
        else:
            self.stats.applied += 1
            first = self.stats.first_event.get(brand, parsed.created_at)
            self.stats.first_event[brand] = min(first, parsed.created_at)
            last = self.stats.last_event.get(brand, parsed.created_at)
            self.stats.last_event[brand] = max(last, parsed.created_at)
        return decisions

    def _tick_others(self, brand: str, event_time: float) -> list[AlertDecision]:
        """Advance every other brand to the stream's clock (the newest event time seen)
        once per bucket, so that silences are noticed and alerts resolve."""
        if event_time <= self.clock:
            return []
        self.clock = event_time
        tick_bucket = bucket_of(event_time, self.book.defaults.bucket_seconds)
        if tick_bucket <= self._ticked_bucket:
            return []
        self._ticked_bucket = tick_bucket
        decisions: list[AlertDecision] = []
        for other, state in self.states.items():
            if other != brand:
                result = tick(state, event_time, self.book.for_brand(other))
                self.states[other] = result.state
                decisions += result.decisions
        return decisions
