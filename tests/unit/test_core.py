"""Unit tests of ``detector.core.step`` / ``tick`` and ``detector.alerts.to_event``.

Mentions are scored with a fake, deterministic compound (-0.8 negative, 0.5 positive)
instead of VADER, and fed by a synthetic stream: N mentions per bucket with a given
negative share, spread evenly inside each bucket. Most tests use the default 60 s
buckets from a Tuesday evening; the seasonal ones use 5 min (or 2 h) buckets from a
Monday midnight so that days and weeks stay cheap to simulate.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.alerts import DEFAULT_SOURCE, encode, to_event
from detector.core import (
    AlertDecision,
    Outcome,
    Phase,
    Position,
    StepResult,
    alert_id,
    bucket_of,
    mention_weight,
    step,
    tick,
)
from detector.errors import ConfigError
from detector.model import Author, Engagement, Mention
from detector.rules import expectation
from detector.sentiment import NEGATIVE_COMPOUND, ScoredMention
from detector.state import TERMS_KEPT, Baseline, BrandState
from detector.terms import count_terms, top_terms
from detector.thresholds import Thresholds
from detector.version import DETECTOR_VERSION

BS = 60
T0 = float(1_700_000_000 // BS * BS)  # a bucket boundary, 2023-11-14T22:13:00Z (Tuesday)
MONDAY = 1_699_833_600.0  # 2023-11-13T00:00:00Z, a Monday midnight
DAY = 86_400
DEFAULT = Thresholds()
NEG, POS = -0.8, 0.5
FOLLOWERS = 100
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "alert-v1.schema.json"
KINDS = ("virality", "negativity", "crisis", "drop", "silence")


def start(i: int) -> float:
    """Start of the i-th bucket of a default synthetic stream."""
    return T0 + i * BS


def index(i: int) -> int:
    """Absolute bucket index of the i-th bucket of a default synthetic stream."""
    return bucket_of(start(i), BS)


def scored(
    mention_id: str,
    created_at: float,
    compound: float,
    brand: str = "acme",
    *,
    text: str | None = None,
    followers: int = FOLLOWERS,
    reposts: int = 0,
) -> ScoredMention:
    mention = Mention(
        id=mention_id,
        brand=brand,
        text=f"mention {mention_id}" if text is None else text,
        created_at=created_at,
        author=Author(id="u", followers=followers),
        engagement=Engagement(reposts=reposts),
    )
    return ScoredMention(mention=mention, compound=compound)


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's Poisson sampler: fine for the means used here (well below 700)."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Stream:
    """A synthetic brand stream fed through ``step``, bucket by bucket, in event-time order.

    Keeps the latest state, every decision, and the buckets (relative to ``origin``) in
    which each kind fired. With ``check_inputs`` it also asserts, at every step, that the
    input state was not modified.
    """

    def __init__(
        self,
        thresholds: Thresholds = DEFAULT,
        brand: str = "acme",
        *,
        origin: float = T0,
        with_positions: bool = False,
        check_inputs: bool = False,
    ) -> None:
        self.t = thresholds
        self.bs = thresholds.bucket_seconds
        self.origin = origin
        self.brand = brand
        self.with_positions = with_positions
        self.check_inputs = check_inputs
        self.state: BrandState | None = None
        self.bucket = 0  # next bucket to feed, relative to origin
        self.seq = 0
        self.decisions: list[AlertDecision] = []
        self.fired: dict[str, set[int]] = defaultdict(set)

    def start(self, i: float) -> float:
        return self.origin + i * self.bs

    def relative(self, when: float) -> float:
        """Bucket number (relative to origin) of an instant."""
        return (when - self.origin) / self.bs

    def fork(self, state: BrandState | None = None) -> Stream:
        other = copy.copy(self)
        other.state = self.state if state is None else state
        other.decisions = []
        other.fired = defaultdict(set, {k: set(v) for k, v in self.fired.items()})
        return other

    def warm_up(self, buckets: int = 60, per_bucket: int = 30) -> None:
        """``run(buckets, per_bucket)`` on a fresh stream, simulated once per setting."""
        assert self.state is None and self.bucket == 0
        if self.with_positions or self.check_inputs:
            self.run(buckets, per_bucket)
            return
        key = (self.t, self.brand, self.origin, buckets, per_bucket)
        if key not in _WARM:
            fresh = Stream(self.t, self.brand, origin=self.origin)
            fresh.run(buckets, per_bucket)
            assert fresh.decisions == [] and fresh.state is not None
            _WARM[key] = (fresh.state, fresh.seq)
        self.state, self.seq = _WARM[key]  # never modified: step() copies its input
        self.bucket = buckets

    def run(
        self,
        buckets: int,
        per_bucket: float,
        negative_fraction: float = 0.1,
        rng: random.Random | None = None,
        **mention: Any,
    ) -> list[AlertDecision]:
        """Feed ``buckets`` buckets of ``per_bucket`` mentions (Poisson around it if ``rng``);
        return the decisions they caused."""
        counts = [
            poisson(rng, per_bucket) if rng is not None else round(per_bucket)
            for _ in range(buckets)
        ]
        return self.feed(counts, negative_fraction, **mention)

    def feed(
        self, counts: Sequence[int], negative_fraction: float = 0.1, **mention: Any
    ) -> list[AlertDecision]:
        """One bucket per count, its mentions spread evenly inside the bucket."""
        new: list[AlertDecision] = []
        for count in counts:
            for k in range(count):
                # Negatives spread evenly, so every prefix of the bucket has the same share.
                negative = math.floor((k + 1) * negative_fraction) > math.floor(
                    k * negative_fraction
                )
                when = self.start(self.bucket) + (k + 0.5) * self.bs / count
                new += self.send(when, NEG if negative else POS, **mention)
            self.bucket += 1
        return new

    def send(self, when: float, compound: float, **mention: Any) -> list[AlertDecision]:
        self.seq += 1
        position = Position(partition=0, offset=self.seq) if self.with_positions else None
        before = copy.deepcopy(self.state.to_dict()) if self.check_inputs and self.state else None
        result = step(
            self.state,
            scored(f"m{self.seq}", when, compound, self.brand, **mention),
            self.t,
            position,
        )
        if before is not None:
            assert self.state is not None and self.state.to_dict() == before
            assert result.state is not self.state
        assert result.outcome is Outcome.APPLIED
        self._took(result)
        return result.decisions

    def tick_to(self, i: float) -> list[AlertDecision]:
        """Advance the clock to the start of relative bucket ``i`` without a mention."""
        assert self.state is not None
        result = tick(self.state, self.start(i), self.t)
        self._took(result)
        self.bucket = max(self.bucket, math.ceil(i))
        return result.decisions

    def _took(self, result: StepResult) -> None:
        self.state = result.state
        self.decisions += result.decisions
        first = bucket_of(self.origin, self.bs)
        buckets = list(result.state.buckets.values())
        if result.state.previous is not None:  # the bucket finalised last
            buckets.append(result.state.previous)
        for b in buckets:
            for kind in b.fired:
                self.fired[kind].add(b.index - first)

    def expected(self, i: float) -> float:
        """The count the current baseline expects of relative bucket ``i``."""
        assert self.state is not None
        return expectation(self.state.baseline, self.start(i), self.t).count


_WARM: dict[tuple[Any, ...], tuple[BrandState, int]] = {}


def of_kind(decisions: list[AlertDecision], kind: str) -> list[AlertDecision]:
    return [d for d in decisions if d.kind == kind]


def phases(decisions: list[AlertDecision]) -> list[Phase]:
    return [d.phase for d in decisions]


def baseline_copy(baseline: Baseline) -> Baseline:
    return Baseline.from_dict(baseline.to_dict())


def naive_level(pre: Baseline, counts: list[float], t: Thresholds) -> float:
    """The level an unclipped learner (a plain exponentially weighted mean with the same
    weights, no seasonality, no robustness) would reach from ``pre`` after ``counts``."""
    level, seen = pre.level, pre.buckets_seen
    for count in counts:
        alpha = max(1.0 - 0.5 ** (1.0 / t.baseline_halflife_buckets), 1.0 / (seen + 1))
        level += alpha * (count - level)
        seen += 1
    return level


# --------------------------------------------------------------------------------------
# Warm-up and steady streams
# --------------------------------------------------------------------------------------


def test_no_decision_during_warmup_even_for_a_huge_spike() -> None:
    s = Stream()
    s.run(20, 30)
    s.run(5, 300)  # x10 for five buckets
    s.run(2, 30)
    assert s.decisions == []
    assert s.state is not None
    assert s.state.baseline.buckets_seen < DEFAULT.warmup_buckets  # the spike was in warm-up
    # Control: the very same spike once the baseline is warm does raise an alert.
    warm = Stream()
    warm.run(DEFAULT.warmup_buckets + 10, 30)
    assert Phase.OPENED in phases(warm.run(5, 300))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_steady_noisy_stream_raises_no_alert(seed: int) -> None:
    rng = random.Random(seed)
    s = Stream()
    s.run(120, 30, 0.1, rng=rng)
    assert s.decisions == []
    assert s.state is not None and s.state.warm(DEFAULT.warmup_buckets)
    e = expectation(s.state.baseline, s.start(s.bucket), DEFAULT)
    assert 25 < e.count < 35
    assert 0.05 < e.negative_share < 0.15
    assert s.state.baseline.dispersion < 2.0  # Poisson noise: variance close to the mean


# --------------------------------------------------------------------------------------
# Virality and negativity episodes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [5, 6])
def test_volume_spike_opens_one_virality_alert_then_resolves_it(factor: int) -> None:
    rng = random.Random(7)
    s = Stream()
    s.run(60, 30, rng=rng)
    s.run(5, 30 * factor, rng=rng)  # buckets 60..64
    s.run(20, 30, rng=rng)  # buckets 65..84
    assert of_kind(s.decisions, "negativity") == of_kind(s.decisions, "crisis") == []
    vir = of_kind(s.decisions, "virality")
    opened = [d for d in vir if d.phase is Phase.OPENED]
    resolved = [d for d in vir if d.phase is Phase.RESOLVED]
    assert len(opened) == 1 and len(resolved) == 1
    o, r = opened[0], resolved[0]
    assert vir[0] is o and vir[-1] is r
    assert {d.alert_id for d in vir} == {o.alert_id}
    assert [d.sequence for d in vir] == list(range(len(vir)))
    assert o.opened_at == o.bucket_start == start(60)
    # It opens on the mention that first crosses 3x the baseline, so it opens as a warning.
    assert o.severity == "warning"
    assert o.observed["volume"] >= DEFAULT.virality_factor * o.expected["volume"]
    assert o.statistic["name"] == "z_volume"
    assert o.statistic["value"] >= o.statistic["threshold"] == DEFAULT.virality_z
    # Resolved on the resolve_after_buckets-th finalised bucket after the last one that
    # fired, and emitted when that bucket falls out of the allowed lateness.
    last_fired = max(s.fired["virality"])
    assert last_fired >= 64
    assert r.bucket_start == start(last_fired + DEFAULT.resolve_after_buckets)
    lag = DEFAULT.allowed_lateness_buckets + 1
    assert r.bucket_start + lag * BS <= r.event_time < r.bucket_start + (lag + 1) * BS
    assert r.opened_at == o.opened_at
    assert s.state is not None and s.state.episodes == {}


def test_negativity_rise_opens_negativity_alert_not_virality() -> None:
    s = Stream()
    s.warm_up()
    s.run(5, 30, 0.7)  # buckets 60..64, same volume
    s.run(20, 30, 0.1)
    assert of_kind(s.decisions, "virality") == of_kind(s.decisions, "crisis") == []
    neg = of_kind(s.decisions, "negativity")
    o, r = neg[0], neg[-1]
    assert (o.phase, r.phase) == (Phase.OPENED, Phase.RESOLVED)
    assert set(phases(neg[1:-1])) <= {Phase.ESCALATED}  # at most an escalation in between
    assert {d.alert_id for d in neg} == {o.alert_id}
    assert [d.sequence for d in neg] == list(range(len(neg)))
    assert o.opened_at == o.bucket_start == start(60)
    assert o.observed["count"] >= DEFAULT.negativity_min_count
    assert o.observed["negative_share"] >= DEFAULT.negativity_min_share
    assert o.statistic["value"] >= o.statistic["threshold"]
    last_fired = max(s.fired["negativity"])
    assert last_fired >= 64
    assert r.bucket_start == start(last_fired + DEFAULT.resolve_after_buckets)


def test_volume_spike_does_not_poison_the_baseline() -> None:
    s = Stream()
    s.warm_up()  # buckets 0..59; finalised through 56
    assert s.state is not None
    pre = baseline_copy(s.state.baseline)
    expected_before = s.expected(68)
    s.run(5, 180)  # buckets 60..64
    s.run(3, 30)  # buckets 65..67: finalised through 64, the last spike bucket
    assert s.state.finalised_upto == index(64)
    post = s.state.baseline
    assert post.buckets_seen == pre.buckets_seen + 8
    # What the level would be had it learned the spike as is.
    naive = naive_level(pre, [30, 30, 30, 180, 180, 180, 180, 180], DEFAULT)
    assert naive > pre.level + 10
    assert post.level - pre.level < 0.25 * (naive - pre.level)
    # And what the next bucket is expected to hold barely moved.
    assert s.expected(68) - expected_before < 0.5 * (naive - pre.level)
    assert s.expected(68) < 1.25 * expected_before


def test_negativity_rise_does_not_poison_the_baseline_share() -> None:
    s = Stream()
    s.warm_up()
    assert s.state is not None
    pre = baseline_copy(s.state.baseline)
    s.run(5, 30, 0.7)
    s.run(3, 30, 0.1)
    post = s.state.baseline
    # An unclipped learner of the negative share.
    naive = pre.negative_share
    seen = pre.buckets_seen
    for negatives in [3, 3, 3, 21, 21, 21, 21, 21]:
        alpha = max(1.0 - 0.5 ** (1.0 / DEFAULT.baseline_halflife_buckets), 1.0 / (seen + 1))
        naive += alpha * (negatives / 30 - naive)
        seen += 1
    rise, naive_rise = post.negative_share - pre.negative_share, naive - pre.negative_share
    assert naive_rise > 0.03
    assert rise < 0.5 * naive_rise


def test_escalation_same_alert_id_and_increasing_sequence() -> None:
    s = Stream()
    s.warm_up()
    s.run(1, 105)  # bucket 60: ~3.5x
    s.run(1, 300)  # bucket 61: ~10x
    s.run(15, 30)
    assert of_kind(s.decisions, "negativity") == []
    vir = of_kind(s.decisions, "virality")
    assert [(d.phase, d.severity, d.sequence) for d in vir] == [
        (Phase.OPENED, "warning", 0),
        (Phase.ESCALATED, "critical", 1),
        (Phase.RESOLVED, "critical", 2),
    ]
    assert len({d.alert_id for d in vir}) == 1
    assert len({d.event_id for d in vir}) == 3
    assert vir[0].bucket_start == start(60) and vir[1].bucket_start == start(61)
    assert vir[1].factor >= 1 + (DEFAULT.virality_factor - 1) * DEFAULT.critical_multiplier
    assert vir[1].opened_at == start(60)


def test_cooldown_blocks_reopening_then_allows_it_with_a_new_id() -> None:
    s = Stream()
    s.warm_up()
    s.run(5, 150)  # spike A: buckets 60..64
    while Phase.RESOLVED not in phases(s.run(1, 30)):  # quiet until A resolves
        assert s.bucket < 85
    first = of_kind(s.decisions, "virality")
    assert (first[0].phase, first[-1].phase) == (Phase.OPENED, Phase.RESOLVED)
    resolved_bucket = round(s.relative(first[-1].bucket_start))

    b_start = s.bucket
    assert b_start + 1 < resolved_bucket + 1 + DEFAULT.cooldown_buckets
    during = s.run(2, 150)  # spike B: well inside the cooldown
    assert {b_start, b_start + 1} <= s.fired["virality"]  # B did cross the thresholds...
    assert during == []  # ...but opened nothing
    s.run(resolved_bucket + DEFAULT.cooldown_buckets + 10 - s.bucket, 30)
    assert of_kind(s.decisions, "virality") == first

    after = s.run(2, 150)  # spike C, after the cooldown
    c_start = s.bucket - 2
    assert phases(after)[:1] == [Phase.OPENED]
    assert after[0].alert_id != first[0].alert_id
    assert after[0].alert_id == alert_id("acme", "virality", start(c_start))
    assert after[0].sequence == 0


# --------------------------------------------------------------------------------------
# Persistence, recovery level, crisis
# --------------------------------------------------------------------------------------


def test_persistence_single_bucket_spike_does_not_open_and_four_buckets_do() -> None:
    t = Thresholds(open_after_buckets=3)
    base = Stream(t)
    base.warm_up()
    short = base.fork()
    short.run(1, 150)  # bucket 60 only
    short.run(15, 30)
    assert 60 in short.fired["virality"]  # it did fire...
    assert short.decisions == []  # ...but not for long enough
    long = base.fork()
    long.run(4, 150)  # buckets 60..63
    long.run(15, 30)
    vir = of_kind(long.decisions, "virality")
    assert phases(vir) == [Phase.OPENED, Phase.RESOLVED]
    # It opens in the third consecutive firing bucket, and its id says so.
    assert vir[0].opened_at == vir[0].bucket_start == start(62)
    assert vir[0].alert_id == alert_id("acme", "virality", start(62))
    # Control: the same single-bucket spike opens with the default persistence of 1.
    default = Stream()
    default.warm_up()
    assert phases(default.run(1, 150))[:1] == [Phase.OPENED]


@pytest.mark.parametrize(
    ("needed", "spike_buckets", "per_bucket"),
    [
        (3, 2, 300),  # two buckets of 10x: the short window fires in the third one too
        (5, 1, 600),  # one bucket of 20x: the long window fires for four more buckets
    ],
)
def test_persistence_a_spike_shorter_than_needed_does_not_open(
    needed: int, spike_buckets: int, per_bucket: int
) -> None:
    s = Stream(Thresholds(open_after_buckets=needed))
    s.warm_up()
    s.run(spike_buckets, per_bucket)  # then back to normal
    s.run(15, 30)
    assert set(range(60, 60 + spike_buckets)) <= s.fired["virality"]
    assert of_kind(s.decisions, "virality") == []


@pytest.mark.parametrize(
    ("recovery_ratio", "plateau", "recovers_during_plateau"),
    [
        # 2.5x: under the opening factor (3x) but above the recovery level (1 + 2 * 0.5
        # = 2x): not recovered, it resolves only 3 buckets after the plateau (70).
        (0.5, 75, False),
        # 1.2x: below the recovery level, the plateau buckets count.
        (0.5, 36, True),
        # With recovery_ratio 1, anything under the opening factor is a recovery.
        (1.0, 75, True),
    ],
)
def test_alert_resolves_only_below_the_recovery_level(
    recovery_ratio: float, plateau: int, recovers_during_plateau: bool
) -> None:
    t = Thresholds(recovery_ratio=recovery_ratio)
    s = Stream(t)
    s.warm_up()
    s.run(2, 150)  # buckets 60..61
    s.run(6, plateau)  # buckets 62..67
    s.run(10, 30)  # buckets 68..77
    vir = of_kind(s.decisions, "virality")
    assert vir[0].phase is Phase.OPENED and vir[0].opened_at == start(60)
    assert [d.phase for d in vir].count(Phase.RESOLVED) == 1
    assert vir[-1].phase is Phase.RESOLVED
    assert set(phases(vir[1:-1])) <= {Phase.ESCALATED}
    last_fired = max(s.fired["virality"])
    after_plateau = 67 + t.resolve_after_buckets  # 68, 69, 70
    assert last_fired + t.resolve_after_buckets < after_plateau  # it stopped firing early
    if recovers_during_plateau:
        # Resolved during the plateau: at the earliest resolve_after_buckets after the
        # bucket last fired, later while the long window still holds the spike.
        resolved = vir[-1].bucket_start
        assert start(last_fired + t.resolve_after_buckets) <= resolved < start(after_plateau)
    else:
        assert vir[-1].bucket_start == start(after_plateau)


def test_crisis_opens_only_when_virality_and_negativity_fire_together() -> None:
    base = Stream()
    base.warm_up()
    both, loud, sour = base.fork(), base.fork(), base.fork()
    both.run(3, 150, 0.7)
    loud.run(3, 150, 0.1)
    sour.run(3, 30, 0.7)
    for s in (both, loud, sour):
        s.run(12, 30, 0.1)
    assert {d.kind for d in loud.decisions} == {"virality"}
    assert {d.kind for d in sour.decisions} == {"negativity"}
    assert {d.kind for d in both.decisions} == {"virality", "negativity", "crisis"}
    crisis = of_kind(both.decisions, "crisis")
    assert crisis[0].phase is Phase.OPENED and crisis[-1].phase is Phase.RESOLVED
    assert {d.alert_id for d in crisis} == {alert_id("acme", "crisis", start(60))}
    o = crisis[0]
    assert o.opened_at == start(60)
    assert o.statistic["name"] == "combined_exceedance"
    assert o.statistic["value"] >= o.statistic["threshold"] == 1.0
    # The crisis carries the evidence of both rules.
    assert {"volume", "negative_share", "velocity"} <= set(o.observed)
    assert o.observed["negative_share"] >= DEFAULT.negativity_min_share
    assert o.factor >= DEFAULT.virality_factor
    # The crisis opens no earlier than both of its parts.
    first = {k: of_kind(both.decisions, k)[0] for k in ("virality", "negativity")}
    position = {id(d): i for i, d in enumerate(both.decisions)}
    assert all(position[id(o)] > position[id(d)] for d in first.values())


# --------------------------------------------------------------------------------------
# Sliding window, reach weighting, velocity
# --------------------------------------------------------------------------------------


def test_burst_straddling_a_bucket_boundary_still_fires() -> None:
    s = Stream()
    s.warm_up()  # buckets 0..59
    # Buckets 60 and 61 hold their 30 usual mentions, plus a burst of 90 in the last 30 s
    # of 60 and the first 30 s of 61: 75 mentions each, only 2.5x, under the factor 3 of
    # a whole bucket. The last 60 s at the middle of the burst hold ~120.
    times = [start(b) + (k + 0.5) * 2 for b in (60, 61) for k in range(30)]
    times += [start(61) - 30 + (k + 0.5) * 60 / 90 for k in range(90)]
    for when in sorted(times):
        s.send(when, POS)
    s.bucket = 62
    assert s.state is not None
    counts = {i: b.count for i, b in s.state.buckets.items()}
    assert counts[index(60)] == counts[index(61)] == 75
    assert counts[index(60)] < DEFAULT.virality_factor * s.expected(60)
    vir = of_kind(s.decisions, "virality")
    assert phases(vir) == [Phase.OPENED]
    assert vir[0].bucket_start == start(61)
    assert vir[0].observed["count"] >= DEFAULT.virality_factor * vir[0].expected["count"]
    s.run(12, 30)
    assert phases(of_kind(s.decisions, "virality")) == [Phase.OPENED, Phase.RESOLVED]


def test_mention_weight_grows_with_followers_and_reposts() -> None:
    def weight(followers: int, reposts: int) -> float:
        return mention_weight(scored("w", T0, POS, followers=followers, reposts=reposts))

    assert weight(0, 0) == 1.0
    assert weight(999, 0) == pytest.approx(2.0)
    assert weight(999, 999) == pytest.approx(3.0)
    assert weight(10**6, 0) > weight(10**3, 0) > weight(10, 0) > weight(0, 0)


def test_virality_is_reach_weighted() -> None:
    base = Stream()
    base.warm_up()
    # The same number of mentions as usual, from authors with a huge audience.
    famous = base.fork()
    famous.run(1, 30, followers=10**12, reposts=10**9)  # each mention weighs 8
    vir = of_kind(famous.decisions, "virality")
    assert phases(vir) == [Phase.OPENED]
    o = vir[0]
    assert o.observed["count"] < DEFAULT.virality_factor * o.expected["count"]
    assert o.observed["volume"] >= DEFAULT.virality_factor * o.expected["volume"]
    assert o.observed["reach"] > 1000 * o.expected["reach"]
    assert o.observed["velocity"] >= DEFAULT.virality_factor  # it grew that fast
    # Control: usual authors, same count: nothing.
    usual = base.fork()
    usual.run(1, 30)
    assert usual.decisions == []


@pytest.mark.parametrize("long_window", [5, 1])
def test_long_window_catches_a_wave_too_small_for_one_bucket(long_window: int) -> None:
    t = Thresholds(long_window_buckets=long_window)
    s = Stream(t)
    s.run(60, 3)  # a small brand
    s.run(5, 12)  # 4x for five buckets, but never virality_min_count in one bucket
    s.run(12, 3)
    assert t.virality_min_count > 12
    vir = of_kind(s.decisions, "virality")
    if long_window == 1:
        assert vir == []
        return
    assert phases(vir) == [Phase.OPENED, Phase.RESOLVED]
    o = vir[0]
    assert o.observed["window_buckets"] == long_window
    assert o.observed["count"] >= t.virality_min_count
    assert o.observed["volume"] >= t.virality_factor * o.expected["volume"]
    assert 60 <= s.relative(o.bucket_start) < 65


@functools.cache
def _slow_negativity(t: Thresholds = DEFAULT) -> tuple[AlertDecision, ...]:
    """A brand whose negative share creeps from 10 % to 60 % over four hours."""
    s = Stream(t)
    s.warm_up()
    for k in range(240):
        s.run(1, 30, 0.1 + 0.5 * k / 240)
    s.run(30, 30, 0.6)
    return tuple(s.decisions)


def test_drift_rule_catches_negativity_that_creeps_up() -> None:
    decisions = _slow_negativity()
    neg = of_kind(list(decisions), "negativity")
    assert neg and neg[0].phase is Phase.OPENED
    o = neg[0]
    # The bucket rule, whose baseline follows the creep, did not see it; the drift did.
    assert o.statistic["name"] == "wilson_lower_negative_share_drift"
    assert o.statistic["value"] >= o.statistic["threshold"]
    assert o.observed["negative_share"] >= DEFAULT.drift_min_share
    slow_share = o.expected["negative_share"]  # the slow baseline share
    assert slow_share + DEFAULT.negativity_min_delta <= o.observed["negative_share"]
    assert {d.kind for d in decisions} == {"negativity"}


def test_the_drift_floor_decides_how_early_a_creep_is_reported() -> None:
    early = of_kind(list(_slow_negativity()), "negativity")[0]
    strict = Thresholds(drift_min_share=0.5)
    late = of_kind(list(_slow_negativity(strict)), "negativity")[0]
    assert early.observed["negative_share"] < 0.5 <= late.observed["negative_share"]
    assert early.bucket_start < late.bucket_start


# --------------------------------------------------------------------------------------
# Drop and silence
# --------------------------------------------------------------------------------------


def test_drop_opens_after_drop_after_buckets_not_before_and_resolves_on_recovery() -> None:
    needed = DEFAULT.drop_after_buckets
    base = Stream()
    base.run(60, 50)
    brief = base.fork()
    brief.run(needed - 1, 10)  # 20 % of normal, for fewer buckets than needed
    brief.run(15, 50)
    assert brief.decisions == []

    long = base.fork()
    long.run(12, 10)  # buckets 60..71
    long.run(20, 50)  # 72..91
    assert [d.kind for d in long.decisions] == ["drop", "drop"]
    o, r = long.decisions
    assert (o.phase, r.phase) == (Phase.OPENED, Phase.RESOLVED)
    # Judged on finalised buckets (over the long window): it opens on the needed-th
    # consecutive bucket that fired, not before.
    fired = sorted(long.fired["drop"])
    first = fired[0]
    assert fired[: needed + 1] == list(range(first, first + needed + 1))
    opened = first + needed - 1
    assert 60 + needed - 1 <= opened < 60 + needed + DEFAULT.long_window_buckets
    assert o.alert_id == r.alert_id == alert_id("acme", "drop", start(opened))
    assert o.opened_at == o.bucket_start == start(opened)
    # Emitted once that bucket leaves the allowed lateness.
    lag = DEFAULT.allowed_lateness_buckets + 1
    assert start(opened + lag) <= o.event_time < start(opened + lag + 1)
    assert o.factor <= DEFAULT.drop_factor
    assert o.statistic["name"] == "z_count"
    assert o.statistic["value"] <= o.statistic["threshold"] == -DEFAULT.drop_z
    # Resolved after the volume came back, by resolve_after_buckets recovered buckets.
    assert max(fired) < 72 + DEFAULT.long_window_buckets
    resolved = round(long.relative(r.bucket_start))
    assert 72 + DEFAULT.resolve_after_buckets - 1 <= resolved < 72 + 10
    assert long.state is not None and long.state.episodes == {}


def test_a_sustained_drop_opens_even_with_a_longer_persistence() -> None:
    # Regression: a drop used to inflate the dispersion it was judged with, and never
    # opened with a longer persistence.
    s = Stream(Thresholds(drop_after_buckets=10))
    s.run(200, 50)
    s.run(60, 10)  # an hour at 20 % of normal, without any noise
    assert phases(of_kind(s.decisions, "drop")) == [Phase.OPENED]


def test_a_lasting_lower_level_is_eventually_learned() -> None:
    s = Stream()
    s.run(200, 25)
    s.run(600, 8)  # ten hours at a third of the old level: the new normal
    assert s.state is not None
    assert s.expected(s.bucket) < 1.5 * 8
    assert "drop" not in s.state.episodes


def test_silence_opens_on_tick_and_the_next_mention_resolves_it() -> None:
    s = Stream()
    s.warm_up()  # buckets 0..59, then nothing
    state = s.state
    assert state is not None
    opened_at = 59 + DEFAULT.silence_min_buckets  # the 5th empty bucket
    finalised_then = opened_at + DEFAULT.allowed_lateness_buckets + 1
    assert s.fork().tick_to(finalised_then - 1) == []  # not yet
    opened = s.tick_to(finalised_then)
    assert phases(opened) == [Phase.OPENED]
    o = opened[0]
    assert o.kind == "silence"  # not a drop: there is nothing to judge a drop on
    assert o.opened_at == o.bucket_start == start(opened_at)
    assert o.event_time == start(finalised_then)
    assert o.severity == "critical"
    assert o.observed["count"] == 0
    assert o.observed["silent_buckets"] == DEFAULT.silence_min_buckets
    assert o.expected["count"] >= DEFAULT.silence_min_expected
    assert o.samples == [] and o.terms == []
    # Ticking further opens nothing more.
    assert s.tick_to(finalised_then + 30) == []
    # The next mention resolves it, with the same id.
    resolved = s.run(1, 1)
    assert [(d.kind, d.phase, d.alert_id, d.sequence) for d in resolved] == [
        ("silence", Phase.RESOLVED, o.alert_id, 1)
    ]
    assert o.alert_id == alert_id("acme", "silence", start(opened_at))
    assert s.state is not None and s.state.episodes == {}
    assert of_kind(s.decisions, "drop") == []


@pytest.mark.parametrize(("gap", "opens"), [(6, False), (12, True)])
def test_silence_needs_enough_expected_mentions(gap: int, opens: bool) -> None:
    # A small brand: 2 mentions a bucket. 6 silent buckets (12 expected) are no alarm;
    # 12 of them (24 expected, above silence_min_expected = 15) are.
    s = Stream()
    s.run(60, 2)
    assert s.expected(60) == pytest.approx(2.0, rel=0.2)
    assert gap >= DEFAULT.silence_min_buckets
    decisions = s.tick_to(59 + gap + DEFAULT.allowed_lateness_buckets + 1)
    assert s.state is not None and s.state.finalised_upto == index(59 + gap)
    assert [d.kind for d in decisions] == (["silence"] if opens else [])


def test_baseline_does_not_learn_the_zeros_of_an_open_silence() -> None:
    s = Stream()
    s.warm_up()
    early = s.fork()
    early.tick_to(70)
    assert phases(of_kind(early.decisions, "silence")) == [Phase.OPENED]
    assert early.state is not None
    learned = baseline_copy(early.state.baseline)
    later = early.fork()
    later.tick_to(300)  # four more hours of silence
    assert later.state is not None
    # (The decayed sums of the drift window are a window, not what is normal.)
    window_keys = {"drift_count", "drift_negatives"}
    assert {k: v for k, v in later.state.baseline.to_dict().items() if k not in window_keys} == {
        k: v for k, v in learned.to_dict().items() if k not in window_keys
    }
    assert later.expected(300) == pytest.approx(30, rel=0.1)
    # Control: a brand whose silence is never alarming learns the empty buckets.
    quiet_t = Thresholds(silence_min_expected=1e9)
    quiet = Stream(quiet_t)
    quiet.warm_up()
    quiet.tick_to(300)
    assert quiet.decisions == []
    assert quiet.state is not None
    assert quiet.state.baseline.buckets_seen > learned.buckets_seen + 200
    assert quiet.expected(300) < 0.8 * later.expected(300)


# --------------------------------------------------------------------------------------
# Seasonality
# --------------------------------------------------------------------------------------

SEASON = Thresholds(bucket_seconds=300, season_slot_minutes=60)
PER_DAY = DAY // SEASON.bucket_seconds


def rhythm(bucket: int) -> float:
    """Mentions per 5-minute bucket of a brand with a daily rhythm: 5 at 03:00, 25 at
    15:00, a smooth sinusoid in between (1 to 5 a minute: the shape of a brand with 10 to
    50 a minute, scaled down to keep a week of mentions cheap)."""
    hour = (bucket % PER_DAY) * SEASON.bucket_seconds / 3600
    return 15.0 - 10.0 * math.cos(2 * math.pi * (hour - 3) / 24)


@functools.cache
def _rhythm_week() -> tuple[dict[int, BrandState], tuple[tuple[AlertDecision, ...], ...], int]:
    """A week (Monday to Sunday) of the daily rhythm with Poisson noise: the state after
    each day, the decisions of each day, and the largest count fed between 14:00 and
    16:00 from Monday to Thursday."""
    rng = random.Random(2024)
    s = Stream(SEASON, origin=MONDAY)
    states: dict[int, BrandState] = {}
    per_day: list[tuple[AlertDecision, ...]] = []
    peak_counts: list[int] = []
    for day in range(7):
        counts = [poisson(rng, rhythm(s.bucket + k)) for k in range(PER_DAY)]
        per_day.append(tuple(s.feed(counts)))
        assert s.state is not None
        states[day + 1] = s.state
        if day < 4:
            peak_counts += counts[14 * 12 : 16 * 12]
    return states, tuple(per_day), max(peak_counts)


def _rhythm_stream(days: int) -> Stream:
    """A stream that has been fed the first ``days`` days of the rhythm week."""
    s = Stream(SEASON, origin=MONDAY)
    s.state = _rhythm_week()[0][days]
    s.bucket = days * PER_DAY
    return s


def test_daily_rhythm_is_learned_and_judged_by_time_of_day() -> None:
    _, per_day, burst = _rhythm_week()
    for day, decisions in enumerate(per_day[1:], start=1):  # the days after the first
        assert decisions == (), (day, [(d.kind, d.phase, d.bucket_start) for d in decisions])
    rng = random.Random(5)
    s = _rhythm_stream(4)  # Monday to Thursday
    friday = 4 * PER_DAY
    night, peak = friday + 3 * 12, friday + 15 * 12
    # Expectations follow the rhythm (5x in truth; a flat baseline would give 1x).
    assert s.expected(peak) >= 2.5 * s.expected(night)
    assert s.expected(night) < 15 < s.expected(peak)  # 15: the daily mean
    # A count that was ordinary at the afternoon peak ...
    assert burst >= max(rhythm(peak), DEFAULT.virality_min_count)
    afternoon = s.fork()
    afternoon.feed([poisson(rng, rhythm(afternoon.bucket + k)) for k in range(peak - friday)])
    assert afternoon.feed([burst, burst]) == []
    # ... is a burst at night.
    at_night = s.fork()
    at_night.feed([poisson(rng, rhythm(at_night.bucket + k)) for k in range(night - friday)])
    opened = at_night.feed([burst, burst])
    assert [(d.kind, d.phase) for d in opened][:1] == [("virality", Phase.OPENED)]
    assert opened[0].bucket_start == at_night.start(night)


WEEKLY = Thresholds(
    bucket_seconds=7200,
    season_slot_minutes=1440,
    warmup_buckets=12,
    # A sensitive drop rule, so that a weekend judged like a weekday is a drop.
    drop_factor=0.7,
    drop_z=3.0,
    drop_after_buckets=3,
)
WEEKLY_PER_DAY = DAY // WEEKLY.bucket_seconds


def test_weekend_volume_is_learned_per_weekday() -> None:
    rng = random.Random(7)
    weekday_rate = 80.0  # mentions per 2-hour bucket; half of it on Saturdays and Sundays
    s = Stream(WEEKLY, origin=MONDAY)

    def days(first: int, last: int, rate: float | None = None) -> list[AlertDecision]:
        new: list[AlertDecision] = []
        for day in range(first, last):
            usual = weekday_rate / 2 if day % 7 >= 5 else weekday_rate
            lam = usual if rate is None else rate
            new += s.feed([poisson(rng, lam) for _ in range(WEEKLY_PER_DAY)])
        return new

    days(0, 7)  # a first week, from a Monday: whatever it raised ...
    assert s.state is not None and s.state.episodes == {}  # ... it is over
    for day in range(7, 21):  # two more weeks: no alert at all, weekends included
        assert days(day, day + 1) == [], day
    # A Saturday is expected at about half a Wednesday.
    saturday = s.expected(21 * WEEKLY_PER_DAY + 5 * WEEKLY_PER_DAY + 6)
    wednesday = s.expected(21 * WEEKLY_PER_DAY + 2 * WEEKLY_PER_DAY + 6)
    assert 0.4 < saturday / wednesday < 0.65
    assert 0.4 * weekday_rate < saturday < 0.65 * weekday_rate < wednesday
    # Control: a weekday at the weekend volume is a drop (the rule is sensitive enough).
    days(21, 23)  # Monday, Tuesday
    assert [(d.kind, d.phase) for d in days(23, 24, weekday_rate / 2)] == [("drop", Phase.OPENED)]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "KNOWN LIMITATION: weekday factors are learned per bucket against a level that is "
        "still settling in a brand's first days; the first weekday learned (the second "
        "day of history) absorbs that transient (about x1.4 for a stream with no weekly "
        "pattern) and keeps it for weeks"
    ),
)
def test_a_brand_without_weekly_pattern_expects_the_same_every_weekday() -> None:
    s = _rhythm_stream(7)  # Monday to Sunday, the same rhythm every day
    assert all(decisions == () for decisions in _rhythm_week()[1][1:])
    monday, tuesday = 7 * PER_DAY + 15 * 12, 8 * PER_DAY + 15 * 12
    assert s.expected(monday) == pytest.approx(s.expected(tuesday), rel=0.25)
    assert s.expected(monday) == pytest.approx(rhythm(monday), rel=0.25)


def test_a_finer_season_slot_on_a_stored_state_does_not_crash() -> None:
    evening = MONDAY + 20 * 3600
    s = Stream(Thresholds(season_slot_minutes=60), origin=evening)
    s.warm_up()  # 20:00 to 21:00
    assert s.state is not None and len(s.state.baseline.daily) == 24
    finer = Thresholds(season_slot_minutes=15)
    result = step(s.state, scored("next", s.start(s.bucket) + 1, POS), finer)
    assert result.outcome is Outcome.APPLIED
    ticked = tick(result.state, s.start(s.bucket + 10), finer)
    assert len(ticked.state.baseline.daily) == 96


# --------------------------------------------------------------------------------------
# Top terms
# --------------------------------------------------------------------------------------

COMPLAINTS = [
    "@acmehelp my Acme rocket battery exploded https://t.co/xyz #fail www.acme.com/recall",
    "the acme battery exploded again, refund now! @AcmeSupport",
    "battery fire!!! never again acme http://x.y/z",
]
COMPLAINT_WORDS = {"rocket", "battery", "exploded", "refund", "fire"}


def test_alert_terms_are_the_words_of_the_negative_mentions() -> None:
    t = Thresholds(max_terms=50)
    s = Stream(t)
    s.run(60, 30, 0.1, text="acme is just fine")  # the usual few negatives say so
    for b in range(60, 63):
        for k in range(150):
            negative = k % 10 < 7
            text = COMPLAINTS[k % 3] if negative else "lovely acme rocket"
            s.send(start(b) + k * BS / 150, NEG if negative else POS, text=text)
    s.bucket = 63
    opened = [d for d in s.decisions if d.phase is Phase.OPENED]
    assert {d.kind for d in opened} == {"virality", "negativity", "crisis"}
    for d in opened:
        terms = {x["term"]: x["count"] for x in d.terms}
        assert terms, d.kind
        # Words of the negative mentions only: no stopwords, handles, links, hashtags,
        # brand name, nor words of the positive mentions ("lovely").
        assert set(terms) <= COMPLAINT_WORDS | {"fine"}
        assert d.terms[0]["term"] == "battery"  # in every complaint
        assert [x["count"] for x in d.terms] == sorted((x["count"] for x in d.terms), reverse=True)
        assert all(isinstance(c, int) and c >= 1 for c in terms.values())
        event_terms = to_event(d)["data"]["top_terms"]
        assert event_terms == d.terms
    # Bounded by max_terms.
    few = Stream(Thresholds(max_terms=2))
    few.warm_up()
    few.run(2, 150, 0.7, text=COMPLAINTS[0])
    assert few.decisions and all(len(d.terms) <= 2 for d in few.decisions)
    assert any(len(d.terms) == 2 for d in few.decisions)
    none = Stream(Thresholds(max_terms=0))
    none.warm_up()
    none.run(2, 150, 0.7, text=COMPLAINTS[0])
    assert none.decisions and all(d.terms == [] for d in none.decisions)


def test_count_terms_drops_noise_and_keeps_a_bounded_summary() -> None:
    terms: dict[str, int] = {}
    count_terms(terms, COMPLAINTS[0], "acme")
    assert terms == {"rocket": 1, "battery": 1, "exploded": 1}
    count_terms(terms, "Das ist nicht gut, die BATTERIE!", "acme")
    assert set(terms) == {"rocket", "battery", "exploded", "gut", "batterie"}
    # A multi-word brand: each of its words is left out.
    other: dict[str, int] = {}
    count_terms(other, "Acme Air lost my luggage", "acme air")
    assert set(other) == {"lost", "luggage"}
    # Misra-Gries: never more than TERMS_KEPT words, and a word present in every text
    # keeps a count within n / (TERMS_KEPT + 1) of its true one.
    summary: dict[str, int] = {}
    texts = 1000
    for i in range(texts):
        word = "".join(chr(97 + (i // 26**p) % 26) for p in range(3))
        count_terms(summary, f"zz{word} battery", "acme")
        assert len(summary) <= TERMS_KEPT
    assert summary["battery"] >= texts - 2 * texts / (TERMS_KEPT + 1)
    assert top_terms(summary, 1) == [{"term": "battery", "count": summary["battery"]}]
    assert len(top_terms(summary, 100)) == len(summary)


# --------------------------------------------------------------------------------------
# Determinism of alert ids
# --------------------------------------------------------------------------------------


@functools.cache
def reference_run() -> tuple[AlertDecision, ...]:
    return tuple(spike_run(11))


def spike_run(seed: int, brand: str = "acme", spike_at: int = 60) -> list[AlertDecision]:
    rng = random.Random(seed)
    s = Stream(brand=brand)
    s.run(spike_at, 30, rng=rng)
    s.run(5, 180, rng=rng)
    s.run(15, 30, rng=rng)
    return s.decisions


def test_same_stream_twice_gives_identical_decisions() -> None:
    first, second = list(reference_run()), spike_run(11)
    assert first  # the scenario does raise alerts
    assert first == second
    assert [encode(to_event(d)) for d in first] == [encode(to_event(d)) for d in second]


def test_alert_id_depends_only_on_brand_kind_and_opening_bucket() -> None:
    reference = reference_run()[0]
    assert reference.phase is Phase.OPENED and reference.opened_at == start(60)
    assert reference.alert_id == alert_id("acme", "virality", start(60))
    assert uuid.UUID(reference.alert_id).version == 5
    # Other noise, other mention ids, same opening bucket: same id.
    assert spike_run(12)[0].alert_id == reference.alert_id
    # Another brand, another kind, another opening bucket: another id.
    other_brand = spike_run(11, brand="globex")[0]
    assert other_brand.alert_id == alert_id("globex", "virality", start(60))
    later = spike_run(11, spike_at=61)[0]
    assert later.opened_at == start(61)
    ids = {
        reference.alert_id,
        other_brand.alert_id,
        later.alert_id,
        *(alert_id("acme", kind, start(60)) for kind in KINDS),
    }
    assert len(ids) == 3 + len(KINDS) - 1


# --------------------------------------------------------------------------------------
# Lateness, replays, immutability, persistence
# --------------------------------------------------------------------------------------


def _counts(state: BrandState) -> dict[int, tuple[int, int]]:
    return {i: (b.count, b.negatives) for i, b in state.buckets.items()}


@pytest.mark.parametrize("bucket", [0, 6])
def test_event_older_than_lateness_is_late_and_not_counted(bucket: int) -> None:
    s = Stream()
    s.run(10, 30)  # buckets 0..9
    state = s.state
    assert state is not None
    assert state.current == index(9)
    assert state.finalised_upto == index(9) - DEFAULT.allowed_lateness_buckets - 1
    result = step(state, scored("late", start(bucket) + 30, NEG), DEFAULT)
    assert result.outcome is Outcome.LATE
    assert result.decisions == []
    assert _counts(result.state) == _counts(state)
    assert result.state.baseline == state.baseline
    assert result.state.mentions == state.mentions
    assert result.state.late == state.late + 1


@pytest.mark.parametrize("bucket", [7, 8, 9])
def test_event_within_lateness_is_applied_and_counted(bucket: int) -> None:
    s = Stream()
    s.run(10, 30)
    state = s.state
    assert state is not None
    before = state.buckets[index(bucket)]
    result = step(state, scored("lateish", start(bucket) + 30, NEG), DEFAULT)
    assert result.outcome is Outcome.APPLIED
    after = result.state.buckets[index(bucket)]
    assert (after.count, after.negatives) == (before.count + 1, before.negatives + 1)
    assert after.reach == before.reach + FOLLOWERS
    assert after.volume == pytest.approx(
        before.volume + mention_weight(scored("w", T0, NEG)), rel=1e-12
    )
    assert result.state.mentions == state.mentions + 1
    assert result.state.late == state.late
    assert result.state.current == state.current  # an older event does not move the clock


def test_lateness_applies_before_any_bucket_is_finalised() -> None:
    first = step(None, scored("first", start(10), POS), DEFAULT)
    assert first.state.current == index(10) and first.state.finalised_upto is None
    too_old = step(first.state, scored("old", start(7) + 59, POS), DEFAULT)
    assert too_old.outcome is Outcome.LATE and too_old.state.buckets.keys() == {index(10)}
    in_time = step(first.state, scored("ok", start(8), POS), DEFAULT)
    assert in_time.outcome is Outcome.APPLIED
    assert in_time.state.buckets.keys() == {index(8), index(10)}


def test_negative_cut_off_is_inclusive() -> None:
    at = step(None, scored("a", start(0), NEGATIVE_COMPOUND), DEFAULT).state
    above = step(None, scored("b", start(0), NEGATIVE_COMPOUND + 0.001), DEFAULT).state
    assert at.buckets[index(0)].negatives == 1
    assert above.buckets[index(0)].negatives == 0


def test_replayed_position_is_a_duplicate() -> None:
    s = Stream()
    s.run(3, 10)
    assert s.state is not None
    m = scored("replayed", start(3) + 1, NEG)
    first = step(s.state, m, DEFAULT, Position(partition=0, offset=5))
    assert first.outcome is Outcome.APPLIED
    assert first.state.positions == {"0": 5}
    second = step(first.state, m, DEFAULT, Position(partition=0, offset=5))
    assert second.outcome is Outcome.DUPLICATE and second.decisions == []
    assert _counts(second.state) == _counts(first.state)
    assert second.state.mentions == first.state.mentions
    assert second.state.duplicates == first.state.duplicates + 1
    expected = first.state.to_dict()
    expected["duplicates"] += 1
    assert second.state.to_dict() == expected
    # Older offsets of that partition are replays too; other partitions are independent.
    older = scored("older", start(3) + 2, POS)
    assert step(first.state, older, DEFAULT, Position(0, 4)).outcome is Outcome.DUPLICATE
    other = step(first.state, m, DEFAULT, Position(partition=1, offset=5))
    assert other.outcome is Outcome.APPLIED
    assert other.state.positions == {"0": 5, "1": 5}
    newer = step(first.state, older, DEFAULT, Position(0, 6))
    assert newer.outcome is Outcome.APPLIED
    assert newer.state.mentions == first.state.mentions + 1


def test_step_and_tick_do_not_mutate_their_input() -> None:
    s = Stream(with_positions=True, check_inputs=True)
    s.warm_up()
    s.run(5, 180, 0.7)  # opens every kind of spike alert and escalates
    s.run(12, 30)  # resolves them
    s.run(12, 6)  # a drop ...
    assert {d.phase for d in s.decisions} == set(Phase)
    assert {"virality", "negativity", "crisis", "drop"} <= {d.kind for d in s.decisions}
    state = s.state
    assert state is not None and "drop" in state.episodes and state.streaks
    snapshot = copy.deepcopy(state.to_dict())
    late = step(state, scored("late", start(0), NEG), DEFAULT)
    dup = step(state, scored("dup", start(s.bucket), NEG), DEFAULT, Position(0, 1))
    ticked = tick(state, start(s.bucket + 100), DEFAULT)  # ... then a silence
    assert (late.outcome, dup.outcome) == (Outcome.LATE, Outcome.DUPLICATE)
    assert ticked.state.current == index(s.bucket + 100)
    assert "silence" in ticked.state.episodes
    assert state.to_dict() == snapshot


def test_state_round_trips_through_json_and_behaves_the_same() -> None:
    rng = random.Random(5)
    s = Stream(with_positions=True)
    s.run(60, 30, rng=rng)
    s.run(5, 150, rng=rng)  # spike A, resolved afterwards: sets a cooldown
    s.run(20, 30, rng=rng)
    s.run(2, 200, 0.6, rng=rng, text="the battery exploded")  # spike B: open episodes
    state = s.state
    assert state is not None
    assert state.episodes and state.cooldown_until and state.positions and state.buckets
    assert state.previous is not None and state.streaks
    assert any(b.samples for b in state.buckets.values())
    assert any(b.terms for b in state.buckets.values())
    assert any(b.fired for b in state.buckets.values())
    assert any(n > 0 for n in state.baseline.daily_n)

    wire = json.dumps(state.to_dict(), allow_nan=False)
    restored = BrandState.from_dict(json.loads(wire))
    assert restored.to_dict() == state.to_dict()
    assert restored == state

    a, b = s.fork(state), s.fork(restored)
    a.run(10, 30, rng=random.Random(9))
    b.run(10, 30, rng=random.Random(9))
    a.tick_to(a.bucket + 20)  # and a silence
    b.tick_to(b.bucket + 20)
    assert a.decisions and a.decisions == b.decisions
    assert "silence" in {d.kind for d in a.decisions}
    assert a.state is not None and b.state is not None
    assert a.state.to_dict() == b.state.to_dict()


def test_open_silence_state_round_trips_through_json() -> None:
    s = Stream()
    s.warm_up()
    s.tick_to(75)
    assert s.state is not None and "silence" in s.state.episodes
    restored = BrandState.from_dict(json.loads(json.dumps(s.state.to_dict())))
    assert restored == s.state
    again = step(restored, scored("back", s.start(75) + 1, POS), DEFAULT)
    assert [(d.kind, d.phase) for d in again.decisions] == [("silence", Phase.RESOLVED)]


def test_state_from_dict_refuses_other_versions() -> None:
    data = BrandState(brand="acme").to_dict()
    data["v"] = 99
    with pytest.raises(ValueError, match="version"):
        BrandState.from_dict(data)
    # The state of the previous release (no version 2 baseline) is refused too.
    data["v"] = 1
    with pytest.raises(ValueError, match="version"):
        BrandState.from_dict(data)


# --------------------------------------------------------------------------------------
# tick() and gaps in event time
# --------------------------------------------------------------------------------------


def test_tick_resolves_an_alert_once_the_stream_goes_quiet() -> None:
    s = Stream()
    s.warm_up()
    opened = s.run(5, 120)  # buckets 60..64, then nothing at all
    assert phases(opened)[:1] == [Phase.OPENED]
    state = s.state
    assert state is not None
    # Once the last spike bucket is finalised, the empty buckets count as recovered.
    last_fired = max(s.fired["virality"])
    resolved_bucket = last_fired + DEFAULT.resolve_after_buckets
    emitted = resolved_bucket + DEFAULT.allowed_lateness_buckets + 1
    early = tick(state, start(emitted - 1), DEFAULT)
    assert early.decisions == [] and "virality" in early.state.episodes
    on_time = tick(early.state, start(emitted), DEFAULT)
    assert phases(on_time.decisions) == [Phase.RESOLVED]
    r = on_time.decisions[0]
    assert (r.alert_id, r.sequence) == (opened[0].alert_id, len(opened))
    assert r.event_time == start(emitted) and r.bucket_start == start(resolved_bucket)
    assert "virality" not in on_time.state.episodes
    # One tick far ahead does the same in one go, and notices the silence as well.
    direct = tick(state, start(emitted + 10) + 12.5, DEFAULT)
    assert [(d.kind, d.phase, d.event_time) for d in direct.decisions] == [
        ("virality", Phase.RESOLVED, start(emitted + 10) + 12.5),
        ("silence", Phase.OPENED, start(emitted + 10) + 12.5),
    ]
    assert direct.decisions[0].alert_id == opened[0].alert_id


def test_tick_backwards_or_on_an_empty_state_does_nothing() -> None:
    s = Stream()
    s.run(5, 10)
    assert s.state is not None
    back = tick(s.state, start(1), DEFAULT)
    assert back.decisions == [] and back.state.to_dict() == s.state.to_dict()
    empty = tick(BrandState(brand="acme"), start(10), DEFAULT)
    assert empty.decisions == [] and empty.state.current is None


@pytest.mark.parametrize("alarm_on_silence", [True, False])
def test_a_year_long_gap_is_folded_in_a_bounded_number_of_buckets(
    alarm_on_silence: bool,
) -> None:
    t = DEFAULT if alarm_on_silence else Thresholds(silence_min_expected=1e9)
    s = Stream(t)
    s.warm_up()
    opened = s.run(2, 120)
    assert phases(opened)[:1] == [Phase.OPENED]
    pre = s.state
    assert pre is not None
    far = start(61) + 365 * 86_400.0
    result: StepResult = step(pre, scored("a-year-later", far, POS), t)
    assert result.outcome is Outcome.APPLIED
    new = result.state
    assert new.current == bucket_of(far, BS)
    assert new.finalised_upto == new.current - t.allowed_lateness_buckets - 1
    assert list(new.buckets) == [new.current] and new.buckets[new.current].count == 1
    assert new.episodes == {}
    folded = new.baseline.buckets_seen - pre.baseline.buckets_seen
    if alarm_on_silence:
        # The virality resolves, the silence opens, and the mention ends it.
        assert [(d.kind, d.phase) for d in result.decisions] == [
            ("virality", Phase.RESOLVED),
            ("silence", Phase.OPENED),
            ("silence", Phase.RESOLVED),
        ]
        assert result.decisions[0].alert_id == opened[0].alert_id
        assert folded < t.silence_min_buckets + 5  # the silence was not learned
    else:
        assert [(d.kind, d.phase) for d in result.decisions] == [("virality", Phase.RESOLVED)]
        # The baseline learned the silence ... without walking through the ~525 600 empty
        # buckets one by one.
        assert 0 < folded <= 12 * t.baseline_halflife_buckets
        assert new.baseline.level < 0.25 * pre.baseline.level
    following = step(new, scored("next", far + BS, POS), t)
    assert following.outcome is Outcome.APPLIED and following.state.current == new.current + 1


# --------------------------------------------------------------------------------------
# The alert event (CloudEvents 1.0)
# --------------------------------------------------------------------------------------


@functools.cache
def _all_kinds() -> tuple[AlertDecision, ...]:
    return tuple(_all_kinds_decisions())


def _all_kinds_decisions() -> list[AlertDecision]:
    """Decisions of every kind and phase: an escalating spike that turns sour (virality,
    negativity, crisis), a drop, then a silence ended by a mention."""
    s = Stream()
    s.warm_up()
    s.run(1, 105)
    s.run(1, 300, 0.7, text="refund my exploded battery")
    s.run(15, 30)
    s.run(8, 5)  # a drop
    s.run(10, 30)
    s.tick_to(s.bucket + 12)  # a silence ...
    s.run(1, 3)  # ... ended
    return s.decisions


def _parse_iso_z(text: str) -> float:
    assert text.endswith("Z") and "+00:00" not in text
    return datetime.fromisoformat(text[:-1] + "+00:00").timestamp()


def _strict_json(raw: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(raw, parse_constant=refuse)


def test_every_kind_and_phase_is_produced() -> None:
    decisions = list(_all_kinds())
    assert {d.kind for d in decisions} == set(KINDS)
    assert {d.phase for d in decisions} == set(Phase)
    for kind in KINDS:
        mine = of_kind(decisions, kind)
        assert mine[0].phase is Phase.OPENED and mine[-1].phase is Phase.RESOLVED, kind
        assert len({d.alert_id for d in mine}) == 1, kind


def test_to_event_is_a_cloudevent_with_the_decision_in_data() -> None:
    decisions = list(_all_kinds())
    for d in decisions:
        ev = to_event(d)
        assert ev["specversion"] == "1.0"
        assert ev["id"] == d.event_id == f"{d.alert_id}/{d.sequence}-{d.phase.value}"
        assert ev["source"] == DEFAULT_SOURCE
        assert ev["type"] == f"io.crisis-radar.alert.{d.kind}.{d.phase.value}.v1"
        assert ev["subject"] == d.brand == "acme"
        assert ev["datacontenttype"] == "application/json"
        assert _parse_iso_z(ev["time"]) == pytest.approx(d.event_time, abs=1e-6)
        data = ev["data"]
        assert data["alert_id"] == d.alert_id
        assert (data["sequence"], data["kind"], data["phase"]) == (d.sequence, d.kind, d.phase)
        assert data["severity"] == d.severity
        assert _parse_iso_z(data["opened_at"]) == d.opened_at
        assert _parse_iso_z(data["window"]["start"]) == d.bucket_start
        assert data["window"]["seconds"] == BS
        assert data["detector_version"] == DETECTOR_VERSION
        assert data["thresholds"] == DEFAULT.as_dict()
        assert data["observed"] == d.observed and data["expected"] == d.expected
        assert data["top_terms"] == d.terms
        assert [sample["id"] for sample in data["samples"]] == [x["id"] for x in d.samples]
        assert len(data["samples"]) <= DEFAULT.max_samples
        if d.kind != "silence":
            assert data["samples"], d.event_id
        for sample, original in zip(data["samples"], d.samples, strict=True):
            assert "rank" not in sample
            assert _parse_iso_z(sample["created_at"]) == pytest.approx(original["created_at"])
        assert _strict_json(encode(ev)) == json.loads(json.dumps(ev))
    assert len({to_event(d)["id"] for d in decisions}) == len(decisions)
    sour = [d for d in decisions if d.kind == "crisis" and d.phase is Phase.OPENED][0]
    assert {"refund", "exploded", "battery"} <= {x["term"] for x in sour.terms}


def test_to_event_matches_the_published_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    decisions = list(_all_kinds())
    assert {d.kind for d in decisions} == set(KINDS)
    for d in decisions:
        event = json.loads(encode(to_event(d)))
        errors = [e.message for e in validator.iter_errors(event)]
        assert errors == [], (d.event_id, errors)
    # And the schema is not vacuous: broken events are refused.
    for path, value in [
        (("data", "phase"), "reopened"),
        (("data", "kind"), "outage"),
        (("type",), "io.crisis-radar.alert.outage.opened.v1"),
        (("data", "top_terms"), [{"term": "x", "count": 0}]),
    ]:
        broken = json.loads(encode(to_event(decisions[0])))
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert not validator.is_valid(broken), path
    missing = json.loads(encode(to_event(decisions[0])))
    del missing["data"]["top_terms"]
    assert not validator.is_valid(missing)


def test_drift_alert_matches_the_published_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    decisions = _slow_negativity()
    assert decisions
    for d in decisions:
        errors = [e.message for e in validator.iter_errors(json.loads(encode(to_event(d))))]
        assert errors == [], (d.event_id, errors)


def test_encoding_is_deterministic() -> None:
    decisions = list(_all_kinds())
    for d in decisions:
        assert encode(to_event(d)) == encode(to_event(d))
    rerun = _all_kinds_decisions()  # simulated again, from scratch
    assert [encode(to_event(d)) for d in decisions] == [encode(to_event(d)) for d in rerun]


def test_to_event_source_is_configurable_and_id_is_not_affected() -> None:
    d = _all_kinds()[0]
    ev = to_event(d, source="urn:crisis-radar:detector:eu-1")
    assert ev["source"] == "urn:crisis-radar:detector:eu-1"
    assert ev["id"] == to_event(d)["id"]


# --------------------------------------------------------------------------------------
# Property: random small streams
# --------------------------------------------------------------------------------------

SMALL_RULES: dict[str, Any] = {
    "bucket_seconds": BS,
    "virality_min_count": 2,
    "virality_factor": 1.5,
    "virality_z": 1.0,
    "negativity_min_count": 2,
    "negativity_min_share": 0.3,
    "negativity_min_delta": 0.05,
    "negativity_z": 0.5,
    "drop_min_expected": 0.5,
    "drop_factor": 0.6,
    "drop_z": 0.5,
    "silence_min_expected": 1.0,
    "max_samples": 2,
    "max_terms": 2,
}
small_thresholds = st.builds(
    lambda lateness, warmup, halflife, resolve, cooldown, persist, drop_after, silent: Thresholds(
        **SMALL_RULES,
        allowed_lateness_buckets=lateness,
        warmup_buckets=warmup,
        baseline_halflife_buckets=halflife,
        resolve_after_buckets=resolve,
        cooldown_buckets=cooldown,
        open_after_buckets=persist,
        drop_after_buckets=drop_after,
        silence_min_buckets=silent,
    ),
    st.integers(0, 2),
    st.integers(1, 4),
    st.sampled_from([1.0, 4.0, 60.0]),
    st.integers(1, 3),
    st.integers(0, 3),
    st.integers(1, 2),
    st.integers(1, 2),
    st.integers(1, 3),
)
operations = st.lists(
    st.one_of(
        # a mention: seconds after the previous one (may be negative), compound, replay?
        st.tuples(
            st.just("mention"),
            st.integers(-150, 200),
            st.floats(-1.0, 1.0),
            st.booleans(),
        ),
        # a tick: seconds after the latest mention time
        st.tuples(st.just("tick"), st.integers(0, 900), st.just(0.0), st.just(False)),
        # a burst: this many mentions one second apart, all with this compound
        st.tuples(st.just("burst"), st.integers(2, 12), st.floats(-1.0, 1.0), st.just(False)),
    ),
    min_size=30,  # long enough to warm up, alert, recover and go silent
    max_size=120,
)
HORIZON = 4 * 3600.0


@settings(max_examples=100, deadline=None, database=None)
@given(t=small_thresholds, ops=operations)
def test_random_streams_keep_the_alert_lifecycle_consistent(
    t: Thresholds, ops: list[tuple[str, int, float, bool]]
) -> None:
    state: BrandState | None = None
    now, offset, steps = T0, 0, 0
    open_alerts: dict[str, list[Any]] = {}  # kind -> [alert_id, last sequence]
    seen_ids: set[str] = set()
    expanded = []
    for op, seconds, compound, replay in ops:
        if op == "burst":
            expanded += [("mention", 1, compound, False)] * seconds
        else:
            expanded.append((op, seconds, compound, replay))
    for op, seconds, compound, replay in expanded:
        if op == "mention":
            now = min(max(now + seconds, T0), T0 + HORIZON)
            is_replay = replay and offset > 0
            if not is_replay:
                offset += 1
            before = state.to_dict() if state is not None else None
            result = step(state, scored(f"m{steps}", now, compound), t, Position(0, offset))
            steps += 1
            if state is not None:
                assert state.to_dict() == before
            if is_replay:
                assert result.outcome is Outcome.DUPLICATE and result.decisions == []
        else:
            if state is None:
                continue
            result = tick(state, now + seconds, t)
        if result.decisions:
            assert result.state.baseline.buckets_seen >= t.warmup_buckets
        for d in result.decisions:
            assert d.brand == "acme" and d.bucket_seconds == BS
            assert d.kind in KINDS
            assert len(d.terms) <= t.max_terms and len(d.samples) <= t.max_samples
            if d.phase is Phase.OPENED:
                assert d.kind not in open_alerts
                assert d.alert_id not in seen_ids
                assert d.sequence == 0
                assert d.alert_id == alert_id("acme", d.kind, d.opened_at)
                open_alerts[d.kind] = [d.alert_id, 0]
                seen_ids.add(d.alert_id)
            else:
                assert d.kind in open_alerts, f"{d.phase} of an alert never opened"
                assert open_alerts[d.kind][0] == d.alert_id
                assert d.sequence == open_alerts[d.kind][1] + 1
                assert d.bucket_start >= d.opened_at
                open_alerts[d.kind][1] = d.sequence
                if d.phase is Phase.RESOLVED:
                    assert d.bucket_start > d.opened_at  # recovered after it opened
                    del open_alerts[d.kind]
        state = result.state
        assert {k: e.alert_id for k, e in state.episodes.items()} == {
            k: v[0] for k, v in open_alerts.items()
        }
        assert state.mentions + state.late + state.duplicates == steps
    if state is not None:
        wire = json.dumps(state.to_dict(), allow_nan=False)
        assert BrandState.from_dict(json.loads(wire)) == state


# --------------------------------------------------------------------------------------
# Regressions of earlier bugs
# --------------------------------------------------------------------------------------


def test_resolution_only_counts_buckets_after_the_opening_one() -> None:
    try:
        t = Thresholds(allowed_lateness_buckets=5, resolve_after_buckets=3)
    except ConfigError:
        return  # refusing the combination is a valid fix
    s = Stream(t)
    s.warm_up()
    s.run(1, 180)  # one-bucket spike at bucket 60
    s.run(15, 30)
    vir = of_kind(s.decisions, "virality")
    assert vir and vir[0].phase is Phase.OPENED and vir[0].opened_at == start(60)
    resolved = [d for d in vir if d.phase is Phase.RESOLVED]
    assert len(resolved) == 1
    assert resolved[0].bucket_start >= start(60) + t.resolve_after_buckets * BS


def test_short_halflife_never_drops_buckets_holding_mentions() -> None:
    t = Thresholds(baseline_halflife_buckets=0.1, warmup_buckets=1_000)  # rules stay off
    s = Stream(t)
    s.run(4, 10)  # buckets 0..3
    s.run(1, 40)  # bucket 4
    s.run(1, 10)  # bucket 5
    s.bucket += 1  # bucket 6 stays empty: the clock jumps from 5 to 7
    s.run(1, 10)
    assert s.state is not None and s.state.finalised_upto == index(4)
    # Buckets 0..4 are finalised; all of them hold mentions, so all must be learned ...
    assert s.state.baseline.buckets_seen == 5
    # ... and with a 0.1-bucket half-life the level is essentially the last one (40).
    season = expectation(s.state.baseline, start(4), t).season
    assert s.state.baseline.level * season > 30


def test_utc_helper_is_consistent_with_the_synthetic_calendar() -> None:
    assert datetime.fromtimestamp(MONDAY, UTC).strftime("%A %H:%M") == "Monday 00:00"
    assert datetime.fromtimestamp(T0, UTC).strftime("%A %H:%M") == "Tuesday 22:13"


# --------------------------------------------------------------------------------------
# Repeat suppression
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("halflife_days", "second_per_bucket", "reopens"),
    [
        (0.0, 150, True),  # off: every surge after the cooldown opens again
        (14.0, 150, False),  # on: a surge no bigger than the last one is the same story
        (14.0, 400, True),  # on: a bigger surge is news
    ],
)
def test_repeat_suppression_opens_only_surges_bigger_than_the_last(
    halflife_days: float, second_per_bucket: int, reopens: bool
) -> None:
    t = Thresholds(repeat_halflife_days=halflife_days)
    s = Stream(t)
    s.warm_up()
    s.run(3, 150)  # the first surge, x5
    s.run(30, 30)  # resolved, then past the cooldown
    s.run(3, second_per_bucket)
    s.run(10, 30)
    opened = [d for d in of_kind(s.decisions, "virality") if d.phase is Phase.OPENED]
    assert len(opened) == (2 if reopens else 1)
    assert opened[0].opened_at == start(60)
    # The state carries the memory through JSON like any other part of it.
    assert s.state is not None
    restored = BrandState.from_dict(json.loads(json.dumps(s.state.to_dict())))
    assert restored.to_dict() == s.state.to_dict()


@pytest.mark.parametrize(
    ("measure", "margin", "second_per_bucket", "reopens"),
    [
        ("factor", 1.0, 180, True),  # x6 beats the remembered x5
        ("factor", 1.5, 180, False),  # ... but not by half as much again
        ("factor", 1.5, 300, True),  # x10 does
        ("count", 1.0, 180, True),  # 180 mentions a bucket beat the remembered 150
        ("count", 1.5, 180, False),
        ("count", 1.5, 300, True),
    ],
)
def test_repeat_suppression_measure_and_margin(
    measure: str, margin: float, second_per_bucket: int, reopens: bool
) -> None:
    t = Thresholds(repeat_halflife_days=14.0, repeat_measure=measure, repeat_margin=margin)
    s = Stream(t)
    s.warm_up()
    s.run(3, 150)  # the first surge
    s.run(30, 30)  # resolved, then past the cooldown
    s.run(3, second_per_bucket)
    s.run(10, 30)
    opened = [d for d in of_kind(s.decisions, "virality") if d.phase is Phase.OPENED]
    assert len(opened) == (2 if reopens else 1)
    assert s.state is not None
    log_peak, _ = s.state.peaks["volume"]
    if measure == "count":  # the remembered size is mentions per bucket, not a factor
        assert math.exp(log_peak) >= 150


def test_cooldown_from_opened_counts_from_the_opening_not_the_resolution() -> None:
    cooldown = 40
    by_open = Stream(Thresholds(cooldown_buckets=cooldown, cooldown_from="opened"))
    by_resolve = Stream(Thresholds(cooldown_buckets=cooldown))
    for s in (by_open, by_resolve):
        s.warm_up()
        s.run(5, 150)  # spike A: buckets 60..64, opened at 60
        s.run(cooldown - 5 + 2, 30)  # quiet: A resolves; the opening is cooldown + 2 ago
        s.run(2, 150)  # spike B
        s.run(10, 30)
    for s, reopens in ((by_open, True), (by_resolve, False)):
        opened = [d for d in of_kind(s.decisions, "virality") if d.phase is Phase.OPENED]
        assert len(opened) == (2 if reopens else 1)
        assert opened[0].opened_at == start(60)
    # Inside the cooldown counted from the opening, nothing opens even after A resolved.
    early = Stream(Thresholds(cooldown_buckets=cooldown, cooldown_from="opened"))
    early.warm_up()
    early.run(5, 150)
    early.run(20, 30)
    assert Phase.RESOLVED in phases(of_kind(early.decisions, "virality"))
    early.run(2, 150)
    assert [d.phase for d in of_kind(early.decisions, "virality")].count(Phase.OPENED) == 1
