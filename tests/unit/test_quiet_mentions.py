"""The core skips the verdicts of a mention that cannot make a rule fire
(``rules.may_fire``); nothing it decides or keeps may differ from judging every mention."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector import rules
from detector.alerts import to_event
from detector.rules import Expectation, Window
from detector.thresholds import Thresholds
from tests.unit.test_core import NEG, POS, Stream

T = Thresholds()
SMALL = Thresholds(
    virality_min_count=5, negativity_min_count=5, negativity_min_share=0.2, virality_factor=1.5
)

amount = st.floats(min_value=0.0, max_value=2_000.0, allow_subnormal=False)
part = st.floats(min_value=0.0, max_value=1.0, allow_subnormal=False)


@given(
    count=st.integers(min_value=0, max_value=2_000).map(float),
    negative=part,
    unscored=part,
    weight=st.floats(min_value=0.5, max_value=5.0),
    e_count=amount,
    e_weight=st.floats(min_value=0.5, max_value=5.0),
    spread=st.floats(min_value=0.01, max_value=100.0),
    share=part,
    t=st.sampled_from([T, SMALL]),
)
def test_a_window_that_may_not_fire_fires_no_rule(
    count: float,
    negative: float,
    unscored: float,
    weight: float,
    e_count: float,
    e_weight: float,
    spread: float,
    share: float,
    t: Thresholds,
) -> None:
    observed = [count, count * negative, count * weight, count * 100.0, count * unscored]
    window = Window(*observed[:4], buckets=1, scored=count - observed[4])
    expected = Expectation(
        count=e_count,
        volume=e_count * e_weight,
        reach=e_count * 100.0,
        negative_share=share,
        spread=spread,
        season=1.0,
    )
    if not rules.may_fire(observed, expected.count, expected.volume, t):
        assert not rules.virality(window, expected, t, velocity=0.0).fires
        assert not rules.negativity(window, expected, t).fires


def run(seed: int, t: Thresholds) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A calm brand, a volume spike, a negativity rise, a crisis and late mentions."""
    rng = random.Random(seed)
    stream = Stream(t, with_positions=True)
    stream.run(70, 30, rng=rng)
    stream.run(4, 150, rng=rng)  # virality
    stream.run(10, 30, rng=rng)
    stream.run(4, 30, negative_fraction=0.7, rng=rng)  # negativity
    stream.run(10, 30, rng=rng)
    stream.run(4, 140, negative_fraction=0.8, rng=rng)  # both
    for k in range(40):  # late mentions into the buckets just before
        when = stream.start(stream.bucket - 1 - k % 2) + rng.random() * t.bucket_seconds
        stream.send(when, NEG if rng.random() < 0.5 else POS)
    stream.run(20, 30, rng=rng)
    assert stream.state is not None
    events = [to_event(decision) for decision in stream.decisions]
    return events, stream.state.to_dict()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_skipping_quiet_mentions_changes_no_decision_and_no_state(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = Thresholds(warmup_buckets=30)
    checked = {"quiet": 0, "all": 0}
    may_fire = rules.may_fire

    def counting(*args: Any) -> bool:
        checked["all"] += 1
        answer = may_fire(*args)
        checked["quiet"] += not answer
        return answer

    monkeypatch.setattr(rules, "may_fire", counting)
    events, state = run(seed, t)
    monkeypatch.setattr(rules, "may_fire", lambda *args: True)
    every_events, every_state = run(seed, t)

    kinds = {event["data"]["kind"] for event in events}
    assert {"virality", "negativity", "crisis"} <= kinds
    assert events == every_events
    assert state == every_state
    # Most windows were quiet (this stream has many that are not): the skip is taken.
    assert checked["quiet"] > 0.6 * checked["all"]
