"""The one entry point of detection: ``step(state, scored, thresholds) -> StepResult``.

Time is the event time of the mention (or an explicit clock for ``tick``); the core
never reads a clock of its own.

Every mention re-judges the last ``bucket_seconds`` of its brand (the open bucket plus
the unexpired part of the one before) for virality, negativity and both together
(crisis), so an alert can open as soon as the evidence is there. Buckets are finalised
once they fall out of the allowed lateness: then drops, silences and recoveries are
judged, and the bucket is folded into the baseline (score first, then learn).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from detector import plans, rules
from detector.rules import SEVERITY_RANK, Expectation, Kind, Verdict, Window, expectation
from detector.sentiment import ScoredMention
from detector.state import DAY_SECONDS, Baseline, BrandState, Bucket, Episode
from detector.terms import count_terms, top_terms
from detector.thresholds import Thresholds
from detector.version import DETECTOR_VERSION

# Namespace of the deterministic alert ids (uuid5 of brand/kind/opening bucket).
ALERT_NAMESPACE = uuid.UUID("6f1c7a52-3d0e-5b8a-9e41-2c7d9a0b4e13")
# A gap longer than this many half-lives is folded into the baseline only this far:
# the weight of older history is already below 2**-12 by then.
_MAX_GAP_HALFLIVES = 12
# Finalised bucket volumes kept for the velocity (growth over the last buckets).
_RECENT_BUCKETS = 3
_FACTOR_BOUNDS = (0.05, 20.0)
# Language key of scored mentions whose scorer does not name a language.
UNKNOWN_LANG = "und"
# A language whose decayed count falls below this is forgotten (keeps the state bounded).
_LANG_FORGET = 0.5


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
    terms: list[dict[str, Any]] = field(default_factory=list)
    detector_version: str = DETECTOR_VERSION
    planned: dict[str, Any] | None = None  # the planned event the bucket lies in, if any

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


def mention_weight(scored: ScoredMention) -> float:
    """Reach weight of one mention: 1, plus a third for every tenfold of the author's
    followers and of the mention's reposts (1,000 followers weigh 2)."""
    m = scored.mention
    return (
        1.0 + math.log10(1 + m.author.followers) / 3.0 + math.log10(1 + m.engagement.reposts) / 3.0
    )


def is_replay(state: BrandState | None, position: Position) -> bool:
    """Whether the mention read at ``position`` was already applied to ``state``."""
    if state is None:
        return False
    last = state.positions.get(str(position.partition))
    return last is not None and position.offset <= last


def step(
    state: BrandState | None,
    scored: ScoredMention,
    thresholds: Thresholds,
    position: Position | None = None,
    *,
    owned: bool = False,
) -> StepResult:
    """Apply one scored mention to a brand's state; return the new state, the alert
    decisions it caused, and what happened to the mention. The input state is not
    modified, unless the caller owns it (``owned=True``: a state nobody else refers to,
    e.g. one just read from the table); then it is updated in place and returned."""
    mention = scored.mention
    if state is None:
        state = new_state(mention.brand)
    elif not owned:
        state = state.copy()
    if position is not None:
        if is_replay(state, position):
            state.duplicates += 1
            return StepResult(state, [], Outcome.DUPLICATE)
        state.positions[str(position.partition)] = position.offset

    index = bucket_of(mention.created_at, thresholds.bucket_seconds)

    def add(bucket: Bucket) -> None:
        bucket.count += 1
        bucket.volume += mention_weight(scored)
        bucket.reach += mention.reach
        if not scored.scored:
            bucket.unscored += 1
        else:
            pair = bucket.langs.setdefault(scored.lang or UNKNOWN_LANG, [0, 0])
            pair[0] += 1
            pair[1] += int(scored.negative)
        if scored.negative:
            bucket.negatives += 1
            count_terms(bucket.terms, mention.text, state.brand)
        _keep_sample(bucket, scored, thresholds.max_samples)

    return _apply(state, index, mention.created_at, 1, add, thresholds)


@dataclass(frozen=True, slots=True)
class Counts:
    """An already aggregated bucket, e.g. one row of a time series of mention counts."""

    bucket_start: float
    count: int
    negatives: int = 0
    volume: float | None = None  # reach-weighted volume; the count when unknown
    reach: int = 0


def step_counts(state: BrandState | None, brand: str, counts: Counts, t: Thresholds) -> StepResult:
    """Apply a whole bucket of counts at once, judged as the mention-by-mention path
    judges it when its last mention arrives."""
    state = new_state(brand) if state is None else state.copy()
    index = bucket_of(counts.bucket_start, t.bucket_seconds)
    end = (index + 1) * t.bucket_seconds - 1e-3

    def add(bucket: Bucket) -> None:
        bucket.count += counts.count
        bucket.negatives += counts.negatives
        bucket.volume += counts.count if counts.volume is None else counts.volume
        bucket.reach += counts.reach

    return _apply(state, index, end, counts.count, add, t)


def _apply(
    state: BrandState,
    index: int,
    event_time: float,
    mentions: int,
    add: Callable[[Bucket], None],
    t: Thresholds,
) -> StepResult:
    decisions: list[AlertDecision] = []
    if state.current is None:
        state.current = index
    elif index > state.current:
        _advance(state, index, t, event_time, decisions)
    if index < state.current - t.allowed_lateness_buckets or (
        state.finalised_upto is not None and index <= state.finalised_upto
    ):
        state.late += mentions
        return StepResult(state, decisions, Outcome.LATE)

    bucket = state.buckets.get(index)
    if bucket is None:
        bucket = state.buckets[index] = Bucket(index=index)
        state.buckets = dict(sorted(state.buckets.items()))
    add(bucket)
    if mentions <= 0:
        return StepResult(state, decisions)
    state.mentions += mentions
    if state.last_mention_bucket is None or index > state.last_mention_bucket:
        state.last_mention_bucket = index
    state.silent_expected = 0.0

    silence = state.episodes.get(Kind.SILENCE.value)
    if silence is not None:
        verdict = rules.silence(0, 0.0, t)
        _resolve(state, silence, bucket, verdict, t, event_time, decisions)

    if state.warm(t.warmup_buckets):
        here, windows = _window_sums(state, bucket, event_time, t)
        share = rules.mixed_share(state.baseline, bucket.langs)
        # Most mentions cannot make a rule fire; their verdicts would decide nothing.
        if not any(rules.may_fire(sums, e[0], e[1], t) for sums, e in windows[1:]):
            return StepResult(state, decisions)
        (own, expected_own), (short, expected), (long, expected_long) = _windows(
            state, here, windows, share, t
        )
        velocity = _velocity(state, short)
        virality = rules.either(
            rules.virality(short, expected, t, velocity),
            rules.virality(long, expected_long, t, velocity),
        )
        negativity = rules.either(
            rules.negativity(short, expected, t), rules.negativity(long, expected_long, t)
        )
        # Whether the bucket itself (without what the windows carry from before) fires:
        # only that marks it as firing and extends a persistence streak.
        own_virality = rules.virality(own, expected_own, t, velocity).fires
        own_negativity = rules.negativity(own, expected_own, t).fires
        own_fires = {
            Kind.VIRALITY: own_virality,
            Kind.NEGATIVITY: own_negativity,
            Kind.CRISIS: own_virality and own_negativity,
        }
        for verdict in (virality, negativity, rules.crisis(virality, negativity)):
            if verdict.fires:
                counts = own_fires[verdict.kind]
                _on_fire(state, bucket, verdict, t, event_time, decisions, counts=counts)
    return StepResult(state, decisions)


def tick(state: BrandState, event_time: float, thresholds: Thresholds) -> StepResult:
    """Advance a brand's clock to ``event_time`` without a mention, finalising buckets
    that can no longer receive events: alerts resolve and silences are noticed even when
    the brand's stream has stopped."""
    index = bucket_of(event_time, thresholds.bucket_seconds)
    if state.current is None or index <= state.current:
        return StepResult(state, [])
    state = state.copy()
    decisions: list[AlertDecision] = []
    _advance(state, index, thresholds, event_time, decisions)
    return StepResult(state, decisions)


def _totals(
    state: BrandState, index: int, recent: dict[int, list[float]]
) -> tuple[float, float, float, float, float] | None:
    """(count, negatives, volume, reach, unscored) of bucket ``index``, open or recently
    finalised (``recent``: the rows of ``state.recent`` by bucket index)."""
    bucket = state.buckets.get(index)
    if bucket is not None:
        return bucket.count, bucket.negatives, bucket.volume, bucket.reach, bucket.unscored
    row = recent.get(index)
    if row is not None:
        return row[1], row[2], row[3], row[4], _row_unscored(row)
    return None


def _row_unscored(row: list[float]) -> float:
    return row[5] if len(row) > 5 else 0.0


# A window's sums: (count, negatives, volume, reach, unscored) observed and (count,
# volume, reach) expected, the expectation of each bucket weighted as the bucket is.
WindowSums = tuple[list[float], list[float]]


def _window_sums(
    state: BrandState, bucket: Bucket, event_time: float, t: Thresholds
) -> tuple[Expectation, tuple[WindowSums, ...]]:
    """The expectation of ``bucket`` and the sums of three windows: the bucket alone so
    far; the short window, the last bucket_seconds of event time (the bucket so far plus
    the unexpired part of the one before); the long one, the same over
    ``long_window_buckets`` buckets. An older (late) bucket is judged whole."""
    bs = t.bucket_seconds
    start = bucket.index * bs
    elapsed = min(1.0, max(0.0, (event_time - start) / bs))
    if bucket.index != state.current:
        elapsed = 1.0
    longest = max(1, t.long_window_buckets)
    here, *befores = _expectations(state, start, longest, t)
    recent = {int(row[0]): row for row in reversed(state.recent)}  # the first of an index wins
    rows = [_totals(state, bucket.index - back, recent) for back in range(1, longest + 1)]
    own = (
        float(bucket.count),
        float(bucket.negatives),
        bucket.volume,
        float(bucket.reach),
        float(bucket.unscored),
    )
    # Only the elapsed part of the bucket has been observed.
    expected_here = (elapsed * here.count, elapsed * here.volume, elapsed * here.reach)
    sums = []
    # Every mention of a warm brand comes here: the sums are spelt out per field (the same
    # operations in the same order as a loop over the fields, at a third of the cost).
    for length in (0, 1, t.long_window_buckets):
        count, negatives, volume, reach, unscored = own
        e_count, e_volume, e_reach = expected_here
        for back in range(1, length + 1):
            weight = 1.0 if back < length else 1.0 - elapsed
            if weight <= 0:
                continue
            row = rows[back - 1]
            if row is not None:
                count += weight * row[0]
                negatives += weight * row[1]
                volume += weight * row[2]
                reach += weight * row[3]
                unscored += weight * row[4]
            before = befores[back - 1]
            e_count += weight * before.count
            e_volume += weight * before.volume
            e_reach += weight * before.reach
        sums.append(([count, negatives, volume, reach, unscored], [e_count, e_volume, e_reach]))
    return here, tuple(sums)


def _windows(
    state: BrandState, here: Expectation, sums: tuple[WindowSums, ...], share: float, t: Thresholds
) -> tuple[tuple[Window, Expectation], ...]:
    """The windows of ``_window_sums`` with their expectations."""
    baseline = state.baseline
    windows = []
    for length, (totals, expected) in zip((0, 1, t.long_window_buckets), sums, strict=True):
        count, negatives, volume, reach, unscored = totals
        window = Window(count, negatives, volume, reach, buckets=length, scored=count - unscored)
        windows.append(
            (
                window,
                Expectation(
                    count=expected[0],
                    volume=expected[1],
                    reach=expected[2],
                    negative_share=share,
                    spread=baseline.spread(expected[0]),
                    season=here.season,
                ),
            )
        )
    return tuple(windows)


def _expectations(state: BrandState, start: float, back: int, t: Thresholds) -> list[Expectation]:
    """``expectation(state.baseline, s, t)`` of the bucket starting at ``start`` and of the
    ``back`` buckets before it (latest first), memoised in the state while the baseline
    and the thresholds stay the same: the windows of every mention ask for the same few
    buckets, and the baseline changes only when a bucket is finalised (which counts it in
    ``buckets_seen``)."""
    b = state.baseline
    memo = state.memo
    version = (b.buckets_seen, b.level, b.negative_level, b.mean_weight, b.mean_reach, b.dispersion)
    # Thresholds are immutable: the same object is the same thresholds.
    if memo.get("thresholds") is not t or memo.get("baseline") != version:
        memo.update(thresholds=t, baseline=version, expected={}, windows={})
    windows: dict[tuple[float, int], list[Expectation]] = memo["windows"]
    found = windows.get((start, back))
    if found is not None:
        return found
    known: dict[float, Expectation] = memo["expected"]
    found = []
    for bucket_start in [start - i * t.bucket_seconds for i in range(back + 1)]:
        expected = known.get(bucket_start)
        if expected is None:
            expected = known[bucket_start] = expectation(b, bucket_start, t)
        found.append(expected)
    windows[(start, back)] = found
    return found


def _finalised_window(state: BrandState, whole: Window, length: int) -> Window:
    """A finalised bucket together with the finalised buckets just before it."""
    rows = state.recent[-(length - 1) :] if length > 1 else []
    count = whole.count + sum(r[1] for r in rows)
    return Window(
        count=count,
        negatives=whole.negatives + sum(r[2] for r in rows),
        volume=whole.volume + sum(r[3] for r in rows),
        reach=whole.reach + sum(r[4] for r in rows),
        buckets=1 + len(rows),
        scored=whole.judged + sum(r[1] - _row_unscored(r) for r in rows),
    )


def _velocity(state: BrandState, window: Window) -> float:
    """Growth: the window's volume over the mean volume of the last finalised buckets."""
    volumes = [row[3] for row in state.recent[-_RECENT_BUCKETS:]]
    mean = sum(volumes) / len(volumes) if volumes else 0.0
    return window.volume / mean if mean > 0 else 1.0


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
    persistence: int | None = None,
    counts: bool = True,
) -> None:
    """A rule fired for ``bucket``: extend the firing streak; open an episode once the
    streak is long enough (and no cooldown runs), or escalate an open one.

    ``counts`` says whether the firing is evidence about this bucket itself: a short
    window that is still mostly the bucket before, or the long window, can open an alert
    that needs no persistence, but neither marks the bucket as firing nor extends a
    streak (a burst that has ended must not keep its streak alive)."""
    kind = verdict.kind.value
    streak = state.streaks.get(kind)
    if counts:
        if kind not in bucket.fired:
            bucket.fired.append(kind)
        if streak is None or bucket.index > streak[1] + 1:
            streak = state.streaks[kind] = [bucket.index, bucket.index]
        streak[1] = max(streak[1], bucket.index)
    episode = state.episodes.get(kind)
    family = _family(kind)
    if episode is None:
        needed = t.open_after_buckets if persistence is None else persistence
        if needed > 1 and (
            streak is None or streak[1] != bucket.index or bucket.index - streak[0] + 1 < needed
        ):
            return
        size = _repeat_size(verdict, t)
        novelty = _novelty(state, family, bucket.index, size, t)
        if novelty is not None and novelty < math.log(t.repeat_margin):
            return  # not (enough) bigger than the brand's last volume episode: a repeat
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
        if t.cooldown_from == "opened":
            state.cooldown_until[kind] = bucket.index + t.cooldown_buckets
        _remember_peak(state, family, bucket.index, size, t)
        decisions.append(_decision(state, episode, 0, Phase.OPENED, bucket, verdict, t, event_time))
        return
    episode.recovered_buckets = 0
    _remember_peak(state, family, bucket.index, _repeat_size(verdict, t), t)
    if SEVERITY_RANK[verdict.severity.value] > SEVERITY_RANK[episode.severity]:
        episode.severity = verdict.severity.value
        decisions.append(
            _decision(
                state, episode, episode.events, Phase.ESCALATED, bucket, verdict, t, event_time
            )
        )
        episode.events += 1


_VOLUME_FAMILY = (Kind.VIRALITY.value, Kind.CRISIS.value)


def _family(kind: str) -> str | None:
    """The family whose episodes are one story for repeat suppression: virality and
    crisis (a volume surge, with or without negativity); None for the other kinds."""
    return "volume" if kind in _VOLUME_FAMILY else None


def _repeat_size(verdict: Verdict, t: Thresholds) -> float:
    """The size of a surge as repeat suppression compares it (``repeat_measure``): its
    factor, or the mentions per bucket of the window that fired."""
    if t.repeat_measure == "count":
        buckets = max(1.0, float(verdict.observed.get("window_buckets", 1)))
        return float(verdict.observed.get("count", 0.0)) / buckets
    return verdict.factor


def _decayed_peak(state: BrandState, family: str, index: int, t: Thresholds) -> float:
    """Log of the family's remembered peak size, decayed to bucket ``index``."""
    log_peak, at = state.peaks[family]
    halflife = t.repeat_halflife_days * DAY_SECONDS / t.bucket_seconds
    return float(log_peak * 0.5 ** (max(0.0, index - at) / halflife))


def _novelty(
    state: BrandState, family: str | None, index: int, size: float, t: Thresholds
) -> float | None:
    """Log of how far ``size`` beats the decayed peak of the family's last episode
    (None: repeat suppression is off, does not apply, or nothing is remembered)."""
    if family is None or t.repeat_halflife_days <= 0 or family not in state.peaks:
        return None
    return math.log(max(size, 1e-9)) - _decayed_peak(state, family, index, t)


def _remember_peak(
    state: BrandState, family: str | None, index: int, size: float, t: Thresholds
) -> None:
    """Remember the largest size of the family's open episode (it decays from there)."""
    if family is None or t.repeat_halflife_days <= 0:
        return
    value = math.log(max(size, 1e-9))
    if family in state.peaks and value <= _decayed_peak(state, family, index, t):
        return
    state.peaks[family] = [value, float(index)]


def _resolve(
    state: BrandState,
    episode: Episode,
    bucket: Bucket,
    verdict: Verdict,
    t: Thresholds,
    event_time: float,
    decisions: list[AlertDecision],
) -> None:
    decisions.append(
        _decision(state, episode, episode.events, Phase.RESOLVED, bucket, verdict, t, event_time)
    )
    del state.episodes[episode.kind]
    if t.cooldown_from == "resolved":
        state.cooldown_until[episode.kind] = bucket.index + 1 + t.cooldown_buckets


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
    # Deep inside a long silence there is nothing more to learn or resolve: empty buckets
    # are folded in only up to ``max_gap``; buckets holding mentions always are.
    max_gap = max(1, int(_MAX_GAP_HALFLIVES * t.baseline_halflife_buckets))
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
    """Judge a bucket that can no longer change, then let the baseline learn from it."""
    start = bucket.index * t.bucket_seconds
    expected = expectation(state.baseline, start, t)
    expected = replace(expected, negative_share=rules.mixed_share(state.baseline, bucket.langs))
    whole = Window(
        bucket.count, bucket.negatives, bucket.volume, bucket.reach, scored=bucket.scored
    )
    verdicts: dict[str, Verdict] = {}
    _learn_drift(state.baseline, bucket, t)
    if state.warm(t.warmup_buckets):
        virality = rules.virality(whole, expected, t, 1.0)
        negativity = rules.negativity(whole, expected, t)
        recent = _finalised_window(state, whole, t.long_window_buckets)
        verdicts = {
            Kind.VIRALITY.value: virality,
            Kind.NEGATIVITY.value: negativity,
            Kind.CRISIS.value: rules.crisis(virality, negativity),
            Kind.DROP.value: rules.drop(
                recent, rules.scaled(expected, recent.buckets, state.baseline), t
            ),
        }
        drop = verdicts[Kind.DROP.value]
        if drop.fires and bucket.count > 0:
            _on_fire(state, bucket, drop, t, event_time, decisions, t.drop_after_buckets)
        _check_silence(state, bucket, expected, t, event_time, decisions)
        drift = rules.drift(state.baseline, t)
        if drift.fires:
            _on_fire(state, bucket, drift, t, event_time, decisions)
        verdicts[Kind.NEGATIVITY.value] = rules.either(negativity, drift)

    for kind, streak in list(state.streaks.items()):
        if streak[1] < bucket.index:
            del state.streaks[kind]  # it did not fire in this bucket: the streak is broken
    for kind, episode in list(state.episodes.items()):
        if bucket.index <= episode.opened_bucket or kind not in verdicts:
            continue  # buckets up to the opening one are not evidence of recovery
        if kind not in bucket.fired and verdicts[kind].recovered:
            episode.recovered_buckets += 1
        else:
            episode.recovered_buckets = 0
        if episode.recovered_buckets >= t.resolve_after_buckets:
            _resolve(state, episode, bucket, verdicts[kind], t, event_time, decisions)

    # An outage of the stream is not what is normal for the brand: nothing is learned
    # while a silence is open. A drop is learned clipped (see _learn), so a lasting fall
    # in volume becomes the new normal at a bounded pace and its alert resolves.
    if Kind.SILENCE.value not in state.episodes:
        planned = bool(t.plans) and plans.active(t.plans, start) is not None
        if planned:
            expected = expectation(state.baseline, start, t, with_plans=False)
        _learn(state.baseline, bucket, expected, t, state.warm(t.warmup_buckets), planned)
    state.previous = bucket
    keep = max(_RECENT_BUCKETS, t.long_window_buckets)
    row = [float(bucket.index), bucket.count, bucket.negatives, bucket.volume, bucket.reach]
    if bucket.unscored:
        row.append(float(bucket.unscored))
    state.recent = [*state.recent, row][-keep:]


def _check_silence(
    state: BrandState,
    bucket: Bucket,
    expected: Expectation,
    t: Thresholds,
    event_time: float,
    decisions: list[AlertDecision],
) -> None:
    last = state.last_mention_bucket
    if bucket.count > 0 or last is None or bucket.index <= last:
        return
    state.silent_expected += expected.count
    if Kind.SILENCE.value in state.episodes:
        return
    verdict = rules.silence(bucket.index - last, state.silent_expected, t)
    if verdict.fires:
        _on_fire(state, bucket, verdict, t, event_time, decisions, persistence=1)


def _learn_drift(baseline: Baseline, bucket: Bucket, t: Thresholds) -> None:
    """Fold a finalised bucket into the decayed sums of the drift window. A bucket in
    which the negativity rule already fired adds only the slow baseline share of
    negatives: the drift window is for what the bucket rules cannot see, and a short
    burst must not keep it raised for an hour after."""
    keep = 0.5 ** (1.0 / t.drift_halflife_buckets)
    negatives = float(bucket.negatives)
    if Kind.NEGATIVITY.value in bucket.fired or Kind.CRISIS.value in bucket.fired:
        negatives = min(negatives, bucket.scored * baseline.slow_negative_share)
    baseline.drift_count = baseline.drift_count * keep + bucket.scored
    baseline.drift_negatives = baseline.drift_negatives * keep + negatives


def _learn(
    baseline: Baseline,
    bucket: Bucket,
    expected: Expectation,
    t: Thresholds,
    warm: bool,
    planned: bool = False,
) -> None:
    """Fold a finalised bucket into the baseline. Once warm, a count beyond
    ``robust_clip_sd`` spreads is clipped to that edge, and a bucket that fired is
    clipped to one spread above normal, so a spike does not inflate the baseline that
    judges it. A bucket inside a planned event (``expected`` is then the unplanned
    expectation) is clipped to one spread either side. While warming up the weight is
    the plain running mean."""
    b = baseline
    slot_seconds = t.season_slot_minutes * 60
    buckets_per_slot = slot_seconds // t.bucket_seconds
    b.ensure_slots(DAY_SECONDS // slot_seconds)
    count = float(bucket.count)
    e, sd = expected.count, expected.spread
    if warm:
        count = min(max(count, e - t.robust_clip_sd * sd), e + t.robust_clip_sd * sd)
    # The seasonal profile learns from the robustly clipped count, so a spike that comes
    # back at the same time every day becomes normal; the level learns a spike only up to
    # one spread above normal.
    if warm and planned:
        count = min(max(count, e - sd), e + sd)
    profile_count = count
    if warm and (Kind.VIRALITY.value in bucket.fired or Kind.CRISIS.value in bucket.fired):
        count = min(count, e + sd)
    if warm and Kind.DROP.value in bucket.fired:
        count = max(count, e - sd)  # a drop under way is not learned either
    scale = count / bucket.count if bucket.count else 0.0
    # The share is the scored mentions'; unscored ones are assumed to be like them.
    if bucket.scored > 0:
        negatives = bucket.negatives * bucket.count / bucket.scored * scale
    else:
        negatives = count * b.negative_share
    if Kind.NEGATIVITY.value in bucket.fired or Kind.CRISIS.value in bucket.fired:
        negatives = min(negatives, count * b.negative_share)

    alpha = max(1.0 - 0.5 ** (1.0 / t.baseline_halflife_buckets), 1.0 / (b.buckets_seen + 1))
    season = max(expected.season, 1e-6)
    if b.buckets_seen > 0:
        residual = (count - e) ** 2 / max(e, 1.0)
        b.dispersion = max(1.0, b.dispersion + alpha * (residual - b.dispersion))
    b.level += alpha * (count / season - b.level)
    b.negative_level += alpha * (negatives / season - b.negative_level)
    b.mean_reach += alpha * (bucket.reach * scale / season - b.mean_reach)
    if bucket.count:
        b.mean_weight += alpha * (bucket.volume / bucket.count - b.mean_weight)
    _learn_languages(b, bucket, t)
    slow_halflife = t.season_halflife_days * DAY_SECONDS / t.bucket_seconds
    slow = max(1.0 - 0.5 ** (1.0 / slow_halflife), 1.0 / (b.buckets_seen + 1))
    b.slow_count += slow * (count - b.slow_count)
    slow_negatives = negatives
    if Kind.NEGATIVITY.value in bucket.fired or Kind.CRISIS.value in bucket.fired:
        slow_negatives = min(negatives, count * b.slow_negative_share)
    b.slow_negatives += slow * (slow_negatives - b.slow_negatives)

    if warm and b.level > 0:
        slot, weekday, daily_eff, weekly_eff = b.factors(
            bucket.index * t.bucket_seconds, slot_seconds, buckets_per_slot
        )
        halflife_days = t.season_halflife_days
        a_daily = max(
            1.0 / (b.daily_n[slot] + 1),
            1.0 - 0.5 ** (1.0 / (halflife_days * buckets_per_slot)),
        )
        ratio = profile_count / (b.level * weekly_eff)
        b.daily[slot] = _bounded(b.daily[slot] + a_daily * (ratio - b.daily[slot]))
        b.daily_n[slot] += 1
        buckets_per_day = DAY_SECONDS // t.bucket_seconds
        a_weekly = max(
            1.0 / (b.weekly_n[weekday] + 1),
            1.0 - 0.5 ** (1.0 / (halflife_days / 7.0 * buckets_per_day)),
        )
        if b.buckets_seen >= buckets_per_day:  # the first day's level is still settling
            ratio = profile_count / (b.level * daily_eff)
            b.weekly[weekday] = _bounded(b.weekly[weekday] + a_weekly * (ratio - b.weekly[weekday]))
            b.weekly_n[weekday] += 1
        if (bucket.index * t.bucket_seconds) % DAY_SECONDS < t.bucket_seconds:
            _normalise(b)
    b.buckets_seen += 1


def _learn_languages(b: Baseline, bucket: Bucket, t: Thresholds) -> None:
    """Fold the bucket's scored mentions per language into decayed sums (the same memory
    as the level). A bucket in which negativity fired adds each language's negatives only
    up to that language's expected share, as the overall share does."""
    if not bucket.langs and not b.langs:
        return
    keep = 0.5 ** (1.0 / t.baseline_halflife_buckets)
    fired = Kind.NEGATIVITY.value in bucket.fired or Kind.CRISIS.value in bucket.fired
    overall = b.negative_share
    for lang in sorted(set(b.langs) | set(bucket.langs)):
        n, count_negative = bucket.langs.get(lang, (0, 0))
        negatives = float(count_negative)
        old_n, old_neg = b.langs.get(lang, (0.0, 0.0))
        if fired and n:
            own = (old_neg + rules.LANGUAGE_SHARE_PRIOR * overall) / (
                old_n + rules.LANGUAGE_SHARE_PRIOR
            )
            negatives = min(negatives, n * own)
        new_n = old_n * keep + n
        if new_n < _LANG_FORGET and n == 0:
            del b.langs[lang]
            continue
        b.langs[lang] = [new_n, old_neg * keep + negatives]


def _bounded(factor: float) -> float:
    low, high = _FACTOR_BOUNDS
    return min(max(factor, low), high)


def _normalise(b: Baseline) -> None:
    """Keep the profiles' means at 1 (over the slots that have data), moving their scale
    into the level: level and profile are otherwise free to drift against each other."""
    for factors, seen in ((b.daily, b.daily_n), (b.weekly, b.weekly_n)):
        learned = [f for f, n in zip(factors, seen, strict=True) if n > 0]
        if not learned:
            continue
        mean = sum(learned) / len(learned)
        if mean <= 0:
            continue
        for i, n in enumerate(seen):
            if n > 0:
                factors[i] /= mean
        b.level *= mean
        b.negative_level *= mean
        b.mean_reach *= mean


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
    samples = [{k: v for k, v in s.items() if k != "rank"} for s in bucket.samples]
    terms = dict(bucket.terms)
    before = state.buckets.get(bucket.index - 1) or state.previous
    if before is not None and before.index == bucket.index - 1:
        for term, n in before.terms.items():
            terms[term] = terms.get(term, 0) + n
        seen = {s["id"] for s in samples}
        extra = [s for s in before.samples if s["id"] not in seen]
        samples += [{k: v for k, v in s.items() if k != "rank"} for s in extra]
        samples = samples[: t.max_samples]
    plan = plans.active(t.plans, bucket.index * t.bucket_seconds) if t.plans else None
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
        samples=samples,
        terms=top_terms(terms, t.max_terms),
        planned=plan.as_dict() if plan is not None else None,
    )
