"""A verdict's evidence is built only when asked for, once, and is what the rule saw then."""

from __future__ import annotations

from detector import rules
from detector.rules import Expectation, Window
from detector.thresholds import Thresholds

T = Thresholds()


def expectation(count: float) -> Expectation:
    return Expectation(
        count=count,
        volume=count,
        reach=count * 100,
        negative_share=0.1,
        spread=count**0.5,
        season=1.0,
    )


def test_evidence_is_built_on_demand_once_and_rounded() -> None:
    calls = []
    window = Window(count=90.0, negatives=40.0, volume=123.45678, reach=9876.5, buckets=1)
    verdict = rules.virality(window, expectation(10.0), T, velocity=2.3456)
    assert verdict.fires
    build = verdict.evidence

    def counting() -> rules.Evidence:
        calls.append(1)
        return build()

    counted = rules.Verdict(
        verdict.kind, verdict.fires, verdict.recovered, verdict.severity, counting
    )
    assert calls == []  # nothing built yet
    assert counted.observed == {
        "count": 90.0,
        "volume": 123.457,
        "reach": 9876,
        "velocity": 2.346,
        "window_buckets": 1,
    }
    assert counted.factor == round(123.45678 / 10.0, 3)
    assert counted.statistic == "z_volume" and counted.statistic_threshold == T.virality_z
    assert calls == [1]  # built once for all fields


def test_crisis_evidence_combines_both_verdicts() -> None:
    window = Window(count=90.0, negatives=60.0, volume=90.0, reach=9000.0)
    v = rules.virality(window, expectation(10.0), T, velocity=0.0)
    n = rules.negativity(window, expectation(10.0), T)
    c = rules.crisis(v, n)
    assert c.fires == (v.fires and n.fires)
    assert c.observed == {**v.observed, **n.observed}
    exceedance = min(
        v.statistic_value / v.statistic_threshold, n.statistic_value / n.statistic_threshold
    )
    assert c.statistic_value == round(exceedance, 3)
