"""Planned events: the expected volume is raised during the plan, the plan is not learned
as normal, and alerts inside a plan say so."""

from __future__ import annotations

import dataclasses
import json

import pytest

from detector.alerts import encode, to_event
from detector.errors import ConfigError
from detector.plans import PlannedEvent, active, parse_expect
from detector.rules import expectation
from detector.thresholds import Thresholds, updated

from .test_core import BS, DEFAULT, SCHEMA_PATH, Stream, of_kind, start


def planned(first: int, last: int, expect: float, plan_id: str = "launch") -> Thresholds:
    """Default thresholds with a plan covering relative buckets first..last."""
    plan = PlannedEvent(plan_id, start(first), start(last + 1), expect, "spring launch")
    return dataclasses.replace(DEFAULT, plans=(plan,))


def opened(decisions: list, kind: str) -> list:
    return [d for d in of_kind(decisions, kind) if d.phase.value == "opened"]


def test_a_surge_the_plan_expects_opens_no_alert() -> None:
    plain, inside = Stream(), Stream(planned(60, 69, 4.0))
    for s in (plain, inside):
        s.warm_up()
        s.run(5, 90)  # 3x the normal 30 per bucket
        s.run(15, 30)
    assert opened(plain.decisions, "virality"), "the surge alone must alert without a plan"
    assert inside.decisions == []


def test_a_surge_far_beyond_the_plan_alerts_and_says_it_was_planned() -> None:
    s = Stream(planned(60, 69, 2.0))
    s.warm_up()
    s.run(5, 400)
    s.run(15, 30)
    alerts = opened(s.decisions, "virality")
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.planned == {
        "id": "launch",
        "start": start(60),
        "end": start(70),
        "expect": 2.0,
        "note": "spring launch",
    }
    assert s.state is not None
    raised = expectation(s.state.baseline, start(62), s.t)
    normal = expectation(s.state.baseline, start(62), s.t, with_plans=False)
    assert raised.count == pytest.approx(2 * normal.count)
    assert raised.reach == pytest.approx(2 * normal.reach)
    assert expectation(s.state.baseline, start(70), s.t).count == pytest.approx(
        expectation(s.state.baseline, start(70), s.t, with_plans=False).count
    )
    event = json.loads(encode(to_event(alert)))
    assert event["data"]["planned"]["start"] == "2023-11-14T23:13:00Z"
    assert event["data"]["planned"]["expect"] == 2.0
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    errors = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(event))
    assert errors == []


def test_alerts_outside_the_plan_carry_no_plan() -> None:
    s = Stream(planned(200, 210, 3.0))
    s.warm_up()
    s.run(5, 400)
    alerts = opened(s.decisions, "virality")
    assert alerts and all(a.planned is None for a in alerts)


def test_negativity_is_judged_as_usual_inside_a_plan() -> None:
    s = Stream(planned(60, 69, 3.0))
    s.warm_up()
    s.run(5, 30, 0.7)
    negativity = opened(s.decisions, "negativity")
    assert negativity and negativity[0].planned is not None


def test_the_planned_surge_is_not_learned_as_normal() -> None:
    plain, inside = Stream(), Stream(planned(60, 79, 3.0))
    for s in (plain, inside):
        s.warm_up()
        s.run(20, 90)
        s.run(5, 30)
    before = Stream()
    before.warm_up()
    assert plain.state and inside.state and before.state
    level = before.state.baseline.level
    # Unplanned, the surge alerts and is learned clipped to one spread above normal; a
    # planned one is clipped the same way, and without the alert.
    assert opened(plain.decisions, "virality") and inside.decisions == []
    assert inside.state.baseline.level <= plain.state.baseline.level + 1e-9
    assert inside.state.baseline.level < level * 1.1


def test_overlapping_plans_take_the_largest_multiple() -> None:
    a = PlannedEvent("a", 0, 100, 2.0)
    b = PlannedEvent("b", 50, 150, 5.0)
    assert active([a, b], 10) is a
    assert active([a, b], 60) is b
    assert active([a, b], 120) is b
    assert active([a, b], 150) is None


@pytest.mark.parametrize(
    ("text", "value"), [("3x", 3.0), ("2.5X", 2.5), ("4", 4.0), ("250%", 2.5), (" 0.5x ", 0.5)]
)
def test_parse_expect(text: str, value: float) -> None:
    assert parse_expect(text) == value


@pytest.mark.parametrize("text", ["", "x3", "three", "3xx", "%"])
def test_parse_expect_refuses_garbage(text: str) -> None:
    with pytest.raises(ConfigError, match="not a multiple"):
        parse_expect(text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "", "start": 0, "end": 1, "expect": 2}, "id"),
        ({"id": "has space", "start": 0, "end": 1, "expect": 2}, "id"),
        ({"id": "a", "start": 10, "end": 10, "expect": 2}, "end must come after"),
        ({"id": "a", "start": 0, "end": float("nan"), "expect": 2}, "end must come after"),
        ({"id": "a", "start": 0, "end": 1, "expect": 0}, "expect"),
        ({"id": "a", "start": 0, "end": 1, "expect": float("inf")}, "expect"),
        ({"id": "a", "start": 0, "end": 1, "expect": 2, "note": "n" * 501}, "note"),
    ],
)
def test_invalid_plans_are_refused_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PlannedEvent(**kwargs)


def test_plans_are_not_a_threshold() -> None:
    t = planned(0, 1, 2.0)
    assert "plans" not in t.as_dict()
    with pytest.raises(ConfigError, match="unknown key 'plans'"):
        updated(DEFAULT, {"plans": []}, "thresholds")
    assert t.bucket_seconds == BS
