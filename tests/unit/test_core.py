"""Unit tests of ``detector.core.step`` / ``tick`` and ``detector.alerts.to_event``.

Mentions are scored with a fake, deterministic compound (-0.8 negative, 0.5 positive)
instead of VADER, and fed by a synthetic stream: N mentions per 60 s bucket with a given
negative share, spread evenly inside each bucket.
"""

from __future__ import annotations

import copy
import json
import math
import random
import uuid
from datetime import datetime
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
    step,
    tick,
)
from detector.errors import ConfigError
from detector.model import Author, Mention
from detector.sentiment import NEGATIVE_COMPOUND, ScoredMention
from detector.state import Baseline, BrandState
from detector.thresholds import Thresholds
from detector.version import DETECTOR_VERSION

BS = 60
T0 = float(1_700_000_000 // BS * BS)  # a bucket boundary, 2023-11-14
DEFAULT = Thresholds()
NEG, POS = -0.8, 0.5
FOLLOWERS = 100
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "alert-v1.schema.json"


def start(i: int) -> float:
    """Start of the i-th bucket of a synthetic stream."""
    return T0 + i * BS


def index(i: int) -> int:
    """Absolute bucket index of the i-th bucket of a synthetic stream."""
    return bucket_of(start(i), BS)


def scored(
    mention_id: str, created_at: float, compound: float, brand: str = "acme"
) -> ScoredMention:
    mention = Mention(
        id=mention_id,
        brand=brand,
        text=f"mention {mention_id}",
        created_at=created_at,
        author=Author(id="u", followers=FOLLOWERS),
    )
    return ScoredMention(mention=mention, compound=compound)


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's Poisson sampler: fine for the small means used here."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Stream:
    """A synthetic brand stream fed through ``step``, bucket by bucket, in event-time order.

    Keeps the latest state and every decision. With ``check_inputs`` it also asserts, at
    every step, that the input state was not modified.
    """

    def __init__(
        self,
        thresholds: Thresholds = DEFAULT,
        brand: str = "acme",
        *,
        with_positions: bool = False,
        check_inputs: bool = False,
    ) -> None:
        self.t = thresholds
        self.brand = brand
        self.with_positions = with_positions
        self.check_inputs = check_inputs
        self.state: BrandState | None = None
        self.bucket = 0  # next bucket to feed, relative to T0
        self.seq = 0
        self.decisions: list[AlertDecision] = []

    def fork(self, state: BrandState | None) -> Stream:
        other = copy.copy(self)
        other.state = state
        other.decisions = []
        return other

    def run(
        self,
        buckets: int,
        per_bucket: int,
        negative_fraction: float = 0.1,
        rng: random.Random | None = None,
    ) -> list[AlertDecision]:
        """Feed ``buckets`` buckets of ``per_bucket`` mentions (Poisson around it if ``rng``);
        return the decisions they caused."""
        new: list[AlertDecision] = []
        for _ in range(buckets):
            count = poisson(rng, per_bucket) if rng is not None else per_bucket
            for k in range(count):
                # Negatives spread evenly, so every prefix of the bucket has the same share.
                negative = math.floor((k + 1) * negative_fraction) > math.floor(
                    k * negative_fraction
                )
                when = start(self.bucket) + (k + 0.5) * BS / count
                new += self.send(when, NEG if negative else POS)
            self.bucket += 1
        return new

    def send(self, when: float, compound: float) -> list[AlertDecision]:
        self.seq += 1
        position = Position(partition=0, offset=self.seq) if self.with_positions else None
        before = copy.deepcopy(self.state.to_dict()) if self.check_inputs and self.state else None
        result = step(
            self.state, scored(f"m{self.seq}", when, compound, self.brand), self.t, position
        )
        if before is not None:
            assert self.state is not None and self.state.to_dict() == before
            assert result.state is not self.state
        assert result.outcome is Outcome.APPLIED
        self.state = result.state
        self.decisions += result.decisions
        return result.decisions


def of_kind(decisions: list[AlertDecision], kind: str) -> list[AlertDecision]:
    return [d for d in decisions if d.kind == kind]


def phases(decisions: list[AlertDecision]) -> list[Phase]:
    return [d.phase for d in decisions]


def baseline_copy(baseline: Baseline) -> Baseline:
    return Baseline.from_dict(baseline.to_dict())


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
    assert 25 < s.state.baseline.mean_count < 35
    assert 0.05 < s.state.baseline.negative_share < 0.15


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
    assert of_kind(s.decisions, "negativity") == []
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
    assert o.observed["count"] >= DEFAULT.virality_factor * o.expected["count"]
    assert o.statistic["value"] >= o.statistic["threshold"]
    # Resolved by the third quiet bucket after the spike (65, 66, 67), which is finalised
    # when the stream reaches bucket 67 + allowed lateness + 1 = 70.
    assert r.bucket_start == start(64 + DEFAULT.resolve_after_buckets)
    assert start(70) <= r.event_time < start(71)
    assert r.opened_at == o.opened_at
    assert s.state is not None and s.state.episodes == {}


def test_negativity_rise_opens_negativity_alert_not_virality() -> None:
    s = Stream()
    s.run(60, 30, 0.1)
    s.run(5, 30, 0.7)  # buckets 60..64, same volume
    s.run(20, 30, 0.1)
    assert of_kind(s.decisions, "virality") == []
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
    assert r.bucket_start == start(64 + DEFAULT.resolve_after_buckets)


def test_volume_spike_does_not_poison_the_baseline() -> None:
    s = Stream()
    s.run(60, 30)  # buckets 0..59; finalised through 56
    assert s.state is not None
    pre = baseline_copy(s.state.baseline)
    s.run(5, 180)  # buckets 60..64
    s.run(3, 30)  # buckets 65..67: finalised through 64, the last spike bucket
    assert s.state.finalised_upto == index(64)
    post = s.state.baseline
    # What the baseline would be had it learned the spike as is.
    naive = baseline_copy(pre)
    for count in [30, 30, 30, 180, 180, 180, 180, 180]:
        naive.learn(count, count * 0.1, count * FOLLOWERS, DEFAULT.baseline_halflife_buckets)
    assert post.buckets_seen == naive.buckets_seen
    assert post.mean_count < 1.5 * pre.mean_count
    assert post.mean_count - pre.mean_count < 0.25 * (naive.mean_count - pre.mean_count)


def test_negativity_rise_does_not_poison_the_baseline_share() -> None:
    s = Stream()
    s.run(60, 30, 0.1)
    assert s.state is not None
    pre = baseline_copy(s.state.baseline)
    s.run(5, 30, 0.7)
    s.run(3, 30, 0.1)
    post = s.state.baseline
    naive = baseline_copy(pre)
    for negatives in [3, 3, 3, 21, 21, 21, 21, 21]:
        naive.learn(30, negatives, 30 * FOLLOWERS, DEFAULT.baseline_halflife_buckets)
    rise, naive_rise = (
        post.negative_share - pre.negative_share,
        naive.negative_share - pre.negative_share,
    )
    assert naive_rise > 0
    assert rise < 0.5 * naive_rise


def test_escalation_same_alert_id_and_increasing_sequence() -> None:
    s = Stream()
    s.run(60, 30)
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
    assert vir[1].factor >= DEFAULT.virality_factor * DEFAULT.critical_multiplier
    assert vir[1].opened_at == start(60)


def test_cooldown_blocks_reopening_then_allows_it_with_a_new_id() -> None:
    s = Stream()
    s.run(60, 30)
    s.run(5, 150)  # spike A: buckets 60..64
    s.run(6, 30)  # 65..70: resolved at bucket 67, emitted at bucket 70
    first = of_kind(s.decisions, "virality")
    assert phases(first) == [Phase.OPENED, Phase.RESOLVED]
    resolved_bucket = 64 + DEFAULT.resolve_after_buckets
    assert first[1].bucket_start == start(resolved_bucket)

    s.run(1, 30)  # 71
    during = s.run(2, 150)  # spike B: 72..73, well inside the cooldown
    assert s.state is not None
    assert "virality" in s.state.buckets[index(73)].fired  # B did cross the thresholds...
    assert during == []  # ...but opened nothing
    s.run(resolved_bucket + DEFAULT.cooldown_buckets + 5 - s.bucket, 30)

    after = s.run(2, 150)  # spike C, after the cooldown
    c_start = s.bucket - 2
    assert phases(after)[:1] == [Phase.OPENED]
    assert after[0].alert_id != first[0].alert_id
    assert after[0].alert_id == alert_id("acme", "virality", start(c_start))
    assert after[0].sequence == 0


# --------------------------------------------------------------------------------------
# Determinism of alert ids
# --------------------------------------------------------------------------------------


def spike_run(seed: int, brand: str = "acme", spike_at: int = 60) -> list[AlertDecision]:
    rng = random.Random(seed)
    s = Stream(brand=brand)
    s.run(spike_at, 30, rng=rng)
    s.run(5, 180, rng=rng)
    s.run(15, 30, rng=rng)
    return s.decisions


def test_same_stream_twice_gives_identical_decisions() -> None:
    first, second = spike_run(11), spike_run(11)
    assert first  # the scenario does raise alerts
    assert first == second
    assert [encode(to_event(d)) for d in first] == [encode(to_event(d)) for d in second]


def test_alert_id_depends_only_on_brand_kind_and_opening_bucket() -> None:
    reference = spike_run(11)[0]
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
        alert_id("acme", "negativity", start(60)),
    }
    assert len(ids) == 4


# --------------------------------------------------------------------------------------
# Lateness, replays, immutability, persistence
# --------------------------------------------------------------------------------------


def _counts(state: BrandState) -> dict[int, tuple[int, int]]:
    return {i: (b.count, b.negatives) for i, b in state.buckets.items()}


@pytest.mark.parametrize(("bucket", "outcome"), [(0, Outcome.LATE), (6, Outcome.LATE)])
def test_event_older_than_lateness_is_late_and_not_counted(bucket: int, outcome: Outcome) -> None:
    s = Stream()
    s.run(10, 30)  # buckets 0..9
    state = s.state
    assert state is not None
    assert state.current == index(9)
    assert state.finalised_upto == index(9) - DEFAULT.allowed_lateness_buckets - 1
    result = step(state, scored("late", start(bucket) + 30, NEG), DEFAULT)
    assert result.outcome is outcome
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
    s.run(60, 30)
    s.run(5, 180, 0.7)  # opens both kinds of alert and escalates
    s.run(12, 30)  # resolves them
    assert {d.phase for d in s.decisions} == set(Phase)
    state = s.state
    assert state is not None
    snapshot = copy.deepcopy(state.to_dict())
    late = step(state, scored("late", start(0), NEG), DEFAULT)
    dup = step(state, scored("dup", start(s.bucket), NEG), DEFAULT, Position(0, 1))
    ticked = tick(state, start(s.bucket + 100), DEFAULT)
    assert (late.outcome, dup.outcome) == (Outcome.LATE, Outcome.DUPLICATE)
    assert ticked.state.current == index(s.bucket + 100)
    assert state.to_dict() == snapshot


def test_state_round_trips_through_json_and_behaves_the_same() -> None:
    rng = random.Random(5)
    s = Stream(with_positions=True)
    s.run(60, 30, rng=rng)
    s.run(5, 150, rng=rng)  # spike A, resolved afterwards: sets a cooldown
    s.run(20, 30, rng=rng)
    s.run(2, 200, 0.6, rng=rng)  # spike B after the cooldown: open episodes
    state = s.state
    assert state is not None
    assert state.episodes and state.cooldown_until and state.positions and state.buckets
    assert any(b.samples for b in state.buckets.values())

    wire = json.dumps(state.to_dict())
    restored = BrandState.from_dict(json.loads(wire))
    assert restored.to_dict() == state.to_dict()
    assert restored == state

    a, b = s.fork(state), s.fork(restored)
    a.run(10, 30, rng=random.Random(9))
    b.run(10, 30, rng=random.Random(9))
    assert a.decisions and a.decisions == b.decisions
    assert a.state is not None and b.state is not None
    assert a.state.to_dict() == b.state.to_dict()


def test_state_from_dict_refuses_other_versions() -> None:
    data = BrandState(brand="acme").to_dict()
    data["v"] = 99
    with pytest.raises(ValueError, match="version"):
        BrandState.from_dict(data)


# --------------------------------------------------------------------------------------
# tick() and gaps in event time
# --------------------------------------------------------------------------------------


def test_tick_resolves_an_alert_once_the_stream_goes_quiet() -> None:
    s = Stream()
    s.run(60, 30)
    opened = s.run(5, 150)  # buckets 60..64, then silence
    assert phases(opened) == [Phase.OPENED]
    state = s.state
    assert state is not None
    # Ticking to bucket 69 finalises through 66: only two quiet buckets so far.
    early = tick(state, start(69), DEFAULT)
    assert early.decisions == [] and "virality" in early.state.episodes
    # Bucket 70 finalises bucket 67, the third quiet one.
    on_time = tick(early.state, start(70), DEFAULT)
    assert phases(on_time.decisions) == [Phase.RESOLVED]
    r = on_time.decisions[0]
    assert (r.alert_id, r.sequence) == (opened[0].alert_id, 1)
    assert r.event_time == start(70) and r.bucket_start == start(67)
    assert on_time.state.episodes == {}
    # One tick far ahead does the same in one go.
    direct = tick(state, start(75) + 12.5, DEFAULT)
    assert [(d.phase, d.alert_id, d.event_time) for d in direct.decisions] == [
        (Phase.RESOLVED, opened[0].alert_id, start(75) + 12.5)
    ]


def test_tick_backwards_or_on_an_empty_state_does_nothing() -> None:
    s = Stream()
    s.run(5, 10)
    assert s.state is not None
    back = tick(s.state, start(1), DEFAULT)
    assert back.decisions == [] and back.state.to_dict() == s.state.to_dict()
    empty = tick(BrandState(brand="acme"), start(10), DEFAULT)
    assert empty.decisions == [] and empty.state.current is None


def test_a_year_long_gap_is_folded_in_a_bounded_number_of_buckets() -> None:
    s = Stream()
    s.run(60, 30)
    opened = s.run(2, 150)
    assert phases(opened) == [Phase.OPENED]
    pre = s.state
    assert pre is not None
    far = start(61) + 365 * 86_400.0
    result: StepResult = step(pre, scored("a-year-later", far, POS), DEFAULT)
    assert result.outcome is Outcome.APPLIED
    assert [(d.phase, d.alert_id) for d in result.decisions] == [
        (Phase.RESOLVED, opened[0].alert_id)
    ]
    new = result.state
    assert new.current == bucket_of(far, BS)
    assert new.finalised_upto == new.current - DEFAULT.allowed_lateness_buckets - 1
    assert list(new.buckets) == [new.current] and new.buckets[new.current].count == 1
    # The baseline has decayed (12 half-lives at least) ...
    assert new.baseline.mean_count < pre.baseline.mean_count * 2.0**-10
    # ... without walking through the ~525 600 empty buckets one by one.
    folded = new.baseline.buckets_seen - pre.baseline.buckets_seen
    assert 0 < folded <= 12 * DEFAULT.baseline_halflife_buckets
    following = step(new, scored("next", far + BS, POS), DEFAULT)
    assert following.outcome is Outcome.APPLIED and following.state.current == new.current + 1


# --------------------------------------------------------------------------------------
# The alert event (CloudEvents 1.0)
# --------------------------------------------------------------------------------------


def _escalation_decisions() -> list[AlertDecision]:
    s = Stream()
    s.run(60, 30)
    s.run(1, 105)
    s.run(1, 300, 0.7)
    s.run(15, 30)
    return s.decisions


def _parse_iso_z(text: str) -> float:
    assert text.endswith("Z") and "+00:00" not in text
    return datetime.fromisoformat(text[:-1] + "+00:00").timestamp()


def _strict_json(raw: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(raw, parse_constant=refuse)


def test_to_event_is_a_cloudevent_with_the_decision_in_data() -> None:
    decisions = _escalation_decisions()
    assert {d.phase for d in decisions} == set(Phase)
    assert {d.kind for d in decisions} == {"virality", "negativity"}
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
        assert [sample["id"] for sample in data["samples"]] == [x["id"] for x in d.samples]
        assert 0 < len(data["samples"]) <= DEFAULT.max_samples
        for sample, original in zip(data["samples"], d.samples, strict=True):
            assert "rank" not in sample
            assert _parse_iso_z(sample["created_at"]) == pytest.approx(original["created_at"])
        assert _strict_json(encode(ev)) == json.loads(json.dumps(ev))
    assert len({to_event(d)["id"] for d in decisions}) == len(decisions)


def test_to_event_matches_the_published_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    decisions = _escalation_decisions()
    assert {d.phase for d in decisions} == set(Phase)
    for d in decisions:
        event = json.loads(encode(to_event(d)))
        errors = [e.message for e in validator.iter_errors(event)]
        assert errors == [], (d.event_id, errors)
    # And the schema is not vacuous: a broken event is refused.
    broken = json.loads(encode(to_event(decisions[0])))
    broken["data"]["phase"] = "reopened"
    assert not validator.is_valid(broken)


def test_encoding_is_deterministic() -> None:
    decisions = _escalation_decisions()
    for d in decisions:
        assert encode(to_event(d)) == encode(to_event(d))
    rerun = _escalation_decisions()
    assert [encode(to_event(d)) for d in decisions] == [encode(to_event(d)) for d in rerun]


def test_to_event_source_is_configurable_and_id_is_not_affected() -> None:
    d = _escalation_decisions()[0]
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
    "max_samples": 2,
}
small_thresholds = st.builds(
    lambda lateness, warmup, halflife, resolve, cooldown: Thresholds(
        **SMALL_RULES,
        allowed_lateness_buckets=lateness,
        warmup_buckets=warmup,
        baseline_halflife_buckets=halflife,
        resolve_after_buckets=resolve,
        cooldown_buckets=cooldown,
    ),
    st.integers(0, 2),
    st.integers(1, 4),
    st.sampled_from([1.0, 4.0, 60.0]),
    st.integers(1, 3),
    st.integers(0, 3),
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
    ),
    max_size=120,
)
HORIZON = 4 * 3600.0


@settings(max_examples=150, deadline=None, database=None)
@given(t=small_thresholds, ops=operations)
def test_random_streams_keep_the_alert_lifecycle_consistent(
    t: Thresholds, ops: list[tuple[str, int, float, bool]]
) -> None:
    state: BrandState | None = None
    now, offset, steps = T0, 0, 0
    open_alerts: dict[str, list[Any]] = {}  # kind -> [alert_id, last sequence]
    seen_ids: set[str] = set()
    for op, seconds, compound, replay in ops:
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
                open_alerts[d.kind][1] = d.sequence
                if d.phase is Phase.RESOLVED:
                    del open_alerts[d.kind]
        state = result.state
        assert {k: e.alert_id for k, e in state.episodes.items()} == {
            k: v[0] for k, v in open_alerts.items()
        }
        assert state.mentions + state.late + state.duplicates == steps
    if state is not None:
        assert BrandState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


# --------------------------------------------------------------------------------------
# Known bugs
# --------------------------------------------------------------------------------------


def test_resolution_only_counts_buckets_after_the_opening_one() -> None:
    try:
        t = Thresholds(allowed_lateness_buckets=5, resolve_after_buckets=3)
    except ConfigError:
        return  # refusing the combination is a valid fix
    s = Stream(t)
    s.run(60, 30)
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
    # ... and with a 0.1-bucket half-life the baseline is essentially the last one (40).
    assert s.state.baseline.mean_count > 30
