"""Serialised brand state (``BrandState.to_dict`` / ``from_dict``): exact round trips
through JSON, the packed time-of-day profile of version 3, reading version 2, and clear
errors on damaged values (the worker then starts the brand afresh)."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.core import Counts, Position, step, step_counts
from detector.model import Author, Engagement, Mention
from detector.sentiment import ScoredMention
from detector.state import (
    READABLE_VERSIONS,
    STATE_VERSION,
    Baseline,
    BrandState,
    count_array,
    float_array,
    pack_counts,
    pack_floats,
    unpack_counts,
    unpack_floats,
)
from detector.thresholds import Thresholds

T = Thresholds()
MIDNIGHT = 1_699_833_600.0  # a Monday, 00:00 UTC


def day_old_state(seed: int = 3, buckets: int = 1500) -> BrandState:
    """A brand that has run for a day (every time-of-day slot learned) and then received
    single mentions, so that its open buckets hold samples and terms."""
    rng = random.Random(seed)
    state: BrandState | None = None
    for i in range(buckets):
        count = 20 + rng.randrange(10)
        counts = Counts(MIDNIGHT + i * 60, count, negatives=rng.randrange(4), reach=count * 90)
        state = step_counts(state, "acme", counts, T).state
    assert state is not None
    at = MIDNIGHT + buckets * 60
    for k in range(40):
        mention = Mention(
            id=f"m{k}",
            brand="acme",
            text="the refund never came, awful support" if k % 3 else "lovely crew",
            created_at=at + k,
            author=Author(id=f"u{k}", followers=10 * k),
            engagement=Engagement(reposts=k % 4),
        )
        scored = ScoredMention(mention, -0.7 if k % 3 else 0.6)
        state = step(state, scored, T, Position(0, k)).state
    return state


def as_version_2(data: dict[str, Any]) -> dict[str, Any]:
    """The same state as version 2 wrote it: the profile as JSON lists."""
    old = json.loads(json.dumps(data))
    old["v"] = 2
    baseline = old["baseline"]
    baseline["daily"] = list(unpack_floats(baseline["daily"]))
    baseline["daily_n"] = list(unpack_counts(baseline["daily_n"]))
    return old


def test_day_old_state_round_trips_exactly_through_json() -> None:
    state = day_old_state()
    assert len(state.baseline.daily) == 288 and min(state.baseline.daily_n) > 0
    assert len(set(state.baseline.daily)) > 200  # learned, not the initial 1.0s
    assert any(b.samples for b in state.buckets.values())
    data = state.to_dict()
    assert data["v"] == STATE_VERSION == 3
    assert isinstance(data["baseline"]["daily"], str)
    wire = json.dumps(data, allow_nan=False)
    restored = BrandState.from_dict(json.loads(wire))
    assert restored == state
    assert restored.baseline.daily == state.baseline.daily  # bit for bit
    assert restored.to_dict() == data
    # Held as C arrays, not lists of Python floats (a quarter of the memory).
    assert restored.baseline.daily.typecode == "d" and restored.baseline.daily_n.itemsize == 4


def test_packing_takes_lists_and_arrays_alike() -> None:
    daily = [1.0, 0.1, 1.2345678901234567, 3.0e300, -0.0]
    assert unpack_floats(pack_floats(daily)).tolist() == daily
    assert pack_floats(daily) == pack_floats(unpack_floats(pack_floats(daily)))
    assert unpack_counts(pack_counts([0, 7, 2**32 - 1])).tolist() == [0, 7, 2**32 - 1]
    for bad in ([-1], [2**32]):
        with pytest.raises(ValueError, match="count"):
            pack_counts(bad)


def test_version_2_is_read_as_the_same_state() -> None:
    state = day_old_state(seed=8)
    old = as_version_2(state.to_dict())
    assert isinstance(old["baseline"]["daily"], list)
    restored = BrandState.from_dict(old)
    assert restored == state
    assert restored.to_dict() == state.to_dict()  # written back as version 3
    assert len(json.dumps(state.to_dict())) < len(json.dumps(old))


def test_a_stored_version_2_value_is_read() -> None:
    """A version-2 value as the worker of the previous release wrote it to the changelog."""
    daily = [1.0] * 288
    daily[7] = 1.2345678901234567
    daily_n = [0] * 288
    daily_n[7] = 3
    wire = json.dumps(
        {
            "v": 2,
            "brand": "acme",
            "current": 28333333,
            "finalised_upto": 28333330,
            "buckets": [
                {
                    "index": 28333333,
                    "count": 2,
                    "negatives": 1,
                    "volume": 3.5,
                    "reach": 120,
                    "samples": [{"rank": [1, 0, 10], "id": "m1", "text": "bad"}],
                    "terms": {"bad": 1},
                    "fired": [],
                }
            ],
            "baseline": {
                "buckets_seen": 40,
                "level": 12.5,
                "dispersion": 1.25,
                "mean_weight": 1.5,
                "negative_level": 1.5,
                "mean_reach": 900.0,
                "slow_count": 12.0,
                "slow_negatives": 1.0,
                "drift_count": 300.0,
                "drift_negatives": 20.0,
                "daily": daily,
                "daily_n": daily_n,
                "weekly": [1.0] * 7,
                "weekly_n": [0] * 7,
            },
            "previous": None,
            "recent": [[28333330.0, 12, 1, 18.0, 900]],
            "episodes": [],
            "streaks": {},
            "cooldown_until": {},
            "last_mention_bucket": 28333333,
            "silent_expected": 0.0,
            "positions": {"0": 41},
            "mentions": 52,
            "late": 0,
            "duplicates": 0,
        }
    )
    state = BrandState.from_dict(json.loads(wire))
    assert state.baseline.daily.tolist() == daily and state.baseline.daily_n.tolist() == daily_n
    assert state.buckets[28333333].terms == {"bad": 1}
    assert state.positions == {"0": 41} and state.peaks == {}
    again = BrandState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state


def test_fresh_state_round_trips() -> None:
    state = BrandState(brand="acme")
    data = state.to_dict()
    assert data["baseline"]["daily"] == "" and data["baseline"]["daily_n"] == ""
    assert BrandState.from_dict(json.loads(json.dumps(data))) == state


@pytest.mark.parametrize("version", [None, 1, 4, 99, "3", True])
def test_other_versions_are_refused(version: object) -> None:
    data = BrandState(brand="acme").to_dict()
    data["v"] = version
    assert version not in READABLE_VERSIONS or version is True
    with pytest.raises(ValueError, match="version"):
        BrandState.from_dict(data)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(
    daily=st.lists(finite, max_size=300),
    counts=st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=300),
)
def test_packing_is_exact(daily: list[float], counts: list[int]) -> None:
    back = unpack_floats(json.loads(json.dumps(pack_floats(daily))))
    assert [struct.pack("<d", x) for x in back] == [struct.pack("<d", x) for x in daily]
    assert unpack_counts(json.loads(json.dumps(pack_counts(counts)))).tolist() == counts


@settings(max_examples=100, deadline=None)
@given(daily=st.lists(finite, min_size=1, max_size=288), seen=st.integers(0, 10**6))
def test_baseline_round_trips(daily: list[float], seen: int) -> None:
    baseline = Baseline(buckets_seen=seen, level=2.5)
    baseline.daily = float_array(daily)
    baseline.daily_n = count_array(i % 7 for i in range(len(daily)))
    assert Baseline.from_dict(json.loads(json.dumps(baseline.to_dict()))) == baseline


@pytest.mark.parametrize(
    "packed",
    [
        "not base64!",
        "AAAA",  # 3 bytes: not whole float64 items
        pack_floats([1.0, math.nan]),
        pack_floats([math.inf]),
    ],
)
def test_damaged_packed_floats_are_value_errors(packed: str) -> None:
    with pytest.raises(ValueError):
        unpack_floats(packed)


def test_damaged_state_is_refused_with_the_errors_the_worker_handles() -> None:
    data = day_old_state().to_dict()
    for damage in ("@@@", 5, None, pack_floats([math.nan] * 288)):
        broken = json.loads(json.dumps(data))
        broken["baseline"]["daily"] = damage
        with pytest.raises((KeyError, TypeError, ValueError)):
            BrandState.from_dict(broken)
    broken = json.loads(json.dumps(data))
    broken["baseline"]["daily_n"] = "AAAAAA"  # 4.5 bytes of uint32s
    with pytest.raises(ValueError):
        BrandState.from_dict(broken)


def test_counts_out_of_range_are_refused_when_packing() -> None:
    with pytest.raises(ValueError):
        pack_counts([2**32])
    with pytest.raises(ValueError):
        pack_counts([-1])


def test_serialisation_does_not_share_mutable_values_with_the_state() -> None:
    state = day_old_state()
    data = state.to_dict()
    snapshot = json.dumps(data)
    state.baseline.daily[0] += 1.0
    state.baseline.daily_n[0] += 1
    for bucket in state.buckets.values():
        bucket.samples.clear()
        bucket.terms.clear()
    assert json.dumps(data) == snapshot
    restored = BrandState.from_dict(data)
    restored.baseline.daily[1] += 1.0
    next(iter(restored.buckets.values())).terms["x"] = 1
    assert json.dumps(data) == snapshot
