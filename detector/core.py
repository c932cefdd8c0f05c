"""The one entry point of detection: ``step(state, scored, thresholds) -> StepResult``.

Time is the event time of the mention (or an explicit clock for ``tick``); the core
never reads a clock of its own.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from detector.rules import RULES, RULES_BY_KIND, SEVERITY_RANK, Verdict, clipped_for_learning
from detector.sentiment import ScoredMention
from detector.state import BrandState, Bucket, Episode
from detector.thresholds import Thresholds
from detector.version import DETECTOR_VERSION

# Namespace of the deterministic alert ids (uuid5 of brand/kind/opening bucket).
ALERT_NAMESPACE = uuid.UUID("6f1c7a52-3d0e-5b8a-9e41-2c7d9a0b4e13")
# A gap longer than this many buckets is folded into the baseline only this far:
# the weight of older history is already below 2**-12 by then.
_MAX_GAP_BUCKETS_FACTOR = 12


class Phase(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Outcome(StrEnum):
    APPLIED = "applied"
    LATE = "late"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Position:
    """Where the mention was read from, to skip replays after a crash."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class AlertDecision:
    alert_id: str
    sequence: int  # 0 for opened, then one per later lifecycle event
    brand: str
    kind: str
    phase: Phase
    severity: str
    opened_at: float  # start of the bucket that opened the episode
    bucket_start: float  # start of the bucket this decision judged
    bucket_seconds: int
    event_time: float  # event time at which the decision was taken
    observed: dict[str, float]
    expected: dict[str, float]
    factor: float
    statistic: dict[str, Any]
    thresholds: dict[str, Any]
    samples: list[dict[str, Any]]
    detector_version: str = DETECTOR_VERSION

    @property
    def event_id(self) -> str:
        """Unique per lifecycle event; equal for a redelivered copy of the same event."""
        return f"{self.alert_id}/{self.sequence}-{self.phase.value}"


@dataclass(frozen=True, slots=True)
class StepResult:
    state: BrandState
    decisions: list[AlertDecision] = field(default_factory=list)
    outcome: Outcome = Outcome.APPLIED


def bucket_of(event_time: float, bucket_seconds: int) -> int:
    return math.floor(event_time / bucket_seconds)


def alert_id(brand: str, kind: str, opened_bucket_start: float) -> str:
    stamp = datetime.fromtimestamp(opened_bucket_start, UTC).isoformat()
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{brand}\n{kind}\n{stamp}"))


def new_state(brand: str) -> BrandState:
    return BrandState(brand=brand)


def step(
    state: BrandState | None,
    scored: ScoredMention,
    thresholds: Thresholds,
    position: Position | None = None,
) -> StepResult:
    """Apply one scored mention to a brand's state; return the new state, the alert
    decisions it caused, and what happened to the mention. The input state is not
    modified."""
    mention = scored.mention
    state = new_state(mention.brand) if state is None else state.copy()
    if position is not None:
        key = str(position.partition)
        last = state.positions.get(key)
        if last is not None and position.offset <= last:
            state.duplicates += 1
            return StepResult(state, [], Outcome.DUPLICATE)
        state.positions[key] = position.offset

    t = thresholds
    index = bucket_of(mention.created_at, t.bucket_seconds)
    decisions: list[AlertDecision] = []
    if state.current is None:
        state.current = index
    elif index > state.current:
        _advance(state, index, t, mention.created_at, decisions)
    if index < state.current - t.allowed_lateness_buckets or (
        state.finalised_upto is not None and index <= state.finalised_upto
    ):
        state.late += 1
        return StepResult(state, decisions, Outcome.LATE)

    bucket = state.buckets.get(index)
    if bucket is None:
        bucket = state.buckets[index] = Bucket(index=index)
        state.buckets = dict(sorted(state.buckets.items()))
    bucket.count += 1
    bucket.reach += mention.reach
    if scored.negative:
        bucket.negatives += 1
    _keep_sample(bucket, scored, t.max_samples)
    state.mentions += 1

    if state.warm(t.warmup_buckets):
        for rule in RULES:
            verdict = rule(bucket, state.baseline, t)
            if verdict.fires:
                _on_fire(state, bucket, verdict, t, mention.created_at, decisions)
    return StepResult(state, decisions)


def tick(state: BrandState, event_time: float, thresholds: Thresholds) -> StepResult:
    """Advance a brand's clock to ``event_time`` without a mention, finalising buckets
    that can no longer receive events (so episodes resolve when a stream goes quiet)."""
    state = state.copy()
    decisions: list[AlertDecision] = []
    index = bucket_of(event_time, thresholds.bucket_seconds)
    if state.current is not None and index > state.current:
        _advance(state, index, thresholds, event_time, decisions)
    return StepResult(state, decisions)


def _keep_sample(bucket: Bucket, scored: ScoredMention, limit: int) -> None:
    if limit <= 0:
        return
    m = scored.mention
    rank = [int(scored.negative), m.engagement.reposts, m.author.followers]
    if len(bucket.samples) >= limit and rank <= bucket.samples[-1]["rank"]:
        return
    bucket.samples.append(
        {
            "rank": rank,
            "id": m.id,
            "text": m.text[:280],
            "created_at": m.created_at,
            "compound": round(scored.compound, 4),
            "reposts": m.engagement.reposts,
            "followers": m.author.followers,
            "repost_of": m.repost_of,
        }
    )
    bucket.samples.sort(key=lambda s: s["rank"], reverse=True)
    del bucket.samples[limit:]


def _on_fire(
    state: BrandState,
    bucket: Bucket,
    verdict: Verdict,
    t: Thresholds,
    event_time: float,
    decisions: list[AlertDecision],
) -> None:
    kind = verdict.kind.value
    if kind not in bucket.fired:
        bucket.fired.append(kind)
    episode = state.episodes.get(kind)
    if episode is None:
        if bucket.index < state.cooldown_until.get(kind, bucket.index):
            return
        opened_start = float(bucket.index * t.bucket_seconds)
        episode = Episode(
            alert_id=alert_id(state.brand, kind, opened_start),
            kind=kind,
            opened_bucket=bucket.index,
            severity=verdict.severity.value,
        )
        state.episodes[kind] = episode
        decisions.append(_decision(state, episode, 0, Phase.OPENED, bucket, verdict, t, event_time))
        return
    episode.quiet_buckets = 0
    if SEVERITY_RANK[verdict.severity.value] > SEVERITY_RANK[episode.severity]:
        episode.severity = verdict.severity.value
        decisions.append(
            _decision(
                state, episode, episode.events, Phase.ESCALATED, bucket, verdict, t, event_time
            )
        )
        episode.events += 1


def _advance(
    state: BrandState,
    new_current: int,
    t: Thresholds,
    event_time: float,
    decisions: list[AlertDecision],
) -> None:
    """Move the brand's clock to bucket ``new_current``: finalise every bucket that has
    fallen out of the allowed lateness, empty ones included."""
    assert state.current is not None
    last_to_finalise = new_current - t.allowed_lateness_buckets - 1
    first = (
        state.finalised_upto + 1
        if state.finalised_upto is not None
        else min(state.buckets, default=state.current)
    )
    max_gap = max(1, int(_MAX_GAP_BUCKETS_FACTOR * t.baseline_halflife_buckets))
    # Deep inside a long silence there is nothing more to learn or resolve: empty buckets
    # are folded in only up to ``max_gap``; buckets holding mentions always are.
    indices = set(range(first, min(last_to_finalise, first + max_gap - 1) + 1))
    indices.update(i for i in state.buckets if i <= last_to_finalise)
    for index in sorted(indices):
        bucket = state.buckets.pop(index, None) or Bucket(index=index)
        _finalise(state, bucket, t, event_time, decisions)
    if last_to_finalise >= first:
        state.finalised_upto = last_to_finalise
    state.current = new_current


def _finalise(
    state: BrandState,
    bucket: Bucket,
    t: Thresholds,
    event_time: float,
    decisions: list[AlertDecision],
) -> None:
    baseline = state.baseline
    for kind, episode in list(state.episodes.items()):
        if bucket.index <= episode.opened_bucket:
            continue  # buckets up to the opening one are not evidence of recovery
        if kind in bucket.fired:
            episode.quiet_buckets = 0
            continue
        episode.quiet_buckets += 1
        if episode.quiet_buckets >= t.resolve_after_buckets:
            verdict = RULES_BY_KIND[kind](bucket, baseline, t)
            decisions.append(
                _decision(
                    state, episode, episode.events, Phase.RESOLVED, bucket, verdict, t, event_time
                )
            )
            del state.episodes[kind]
            state.cooldown_until[kind] = bucket.index + 1 + t.cooldown_buckets
    count, negatives = clipped_for_learning(bucket, baseline, t)
    baseline.learn(count, negatives, float(bucket.reach), t.baseline_halflife_buckets)


def _decision(
    state: BrandState,
    episode: Episode,
    sequence: int,
    phase: Phase,
    bucket: Bucket,
    verdict: Verdict,
    t: Thresholds,
    event_time: float,
) -> AlertDecision:
    return AlertDecision(
        alert_id=episode.alert_id,
        sequence=sequence,
        brand=state.brand,
        kind=episode.kind,
        phase=phase,
        severity=episode.severity,
        opened_at=float(episode.opened_bucket * t.bucket_seconds),
        bucket_start=float(bucket.index * t.bucket_seconds),
        bucket_seconds=t.bucket_seconds,
        event_time=event_time,
        observed=dict(verdict.observed),
        expected=dict(verdict.expected),
        factor=verdict.factor,
        statistic={
            "name": verdict.statistic,
            "value": verdict.statistic_value,
            "threshold": verdict.statistic_threshold,
        },
        thresholds=t.as_dict(),
        samples=[{k: v for k, v in s.items() if k != "rank"} for s in bucket.samples],
    )
