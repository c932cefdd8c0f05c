"""Unit tests of the scenario generator (``streams.scenarios``) on short, small versions
of the scenarios (one day, scaled-down rates), and a smoke test of the benchmark script."""

from __future__ import annotations

import functools
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from detector.evaluation import parse_labels
from detector.model import Mention, parse_mention
from detector.sentiment import NEGATIVE_COMPOUND, VaderScorer
from streams.scenarios import (
    DAY,
    DEFAULT_START,
    SCENARIOS,
    Burst,
    Drift,
    Outage,
    Scenario,
    build,
)

SHORT = {"days": 1, "scale": 0.2}
LABELLED = {"small_brands", "negativity_drift", "viral_bursts"}


@functools.cache
def short(name: str, **options: Any) -> tuple[Scenario, tuple[dict[str, Any], ...]]:
    scenario = build(name, **{**SHORT, **options})
    return scenario, tuple(scenario.events())


@functools.cache
def mentions(name: str) -> tuple[Mention, ...]:
    scenario, events = short(name)
    parsed = []
    for event in events:
        mention = parse_mention(json.dumps(event).encode(), now=scenario.end)
        assert isinstance(mention, Mention), (event, mention)
        parsed.append(mention)
    return tuple(parsed)


@functools.cache
def negative(text: str) -> bool:
    return _vader().compound(text) <= NEGATIVE_COMPOUND


@functools.cache
def _vader() -> VaderScorer:
    return VaderScorer()


def count(ms: tuple[Mention, ...], brand: str, start: float, end: float) -> int:
    return sum(1 for m in ms if m.brand == brand and start <= m.created_at < end)


def negative_share(ms: tuple[Mention, ...], brand: str, start: float, end: float) -> float:
    texts = [m.text for m in ms if m.brand == brand and start <= m.created_at < end]
    assert texts, (brand, start, end)
    return sum(negative(t) for t in texts) / len(texts)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_seed_same_events(name: str) -> None:
    scenario, events = short(name)
    again = build(name, **SHORT)
    assert list(again.events()) == list(events)
    assert again.labels == scenario.labels


def test_events_factory_starts_afresh() -> None:
    scenario, events = short("small_brands")
    assert list(scenario.events()) == list(events)


def test_other_seed_other_events() -> None:
    scenario, events = short("calm_rhythm")
    other = build("calm_rhythm", seed=scenario.seed + 1, **SHORT)
    assert list(other.events()) != list(events)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_events_parse_and_are_in_order_inside_the_span(name: str) -> None:
    scenario, events = short(name)
    ms = mentions(name)
    assert len(ms) == len(events) > 1000
    assert {m.brand for m in ms} == set(scenario.brands)
    times = [m.created_at for m in ms]
    assert times == sorted(times)
    assert scenario.start <= times[0] and times[-1] < scenario.end
    assert len({m.id for m in ms}) == len(ms)
    assert all(isinstance(e["created_at"], str) for e in events)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_labels_parse_and_fall_inside_the_stream(name: str) -> None:
    scenario, _ = short(name)
    ms = mentions(name)
    labels = parse_labels(json.loads(json.dumps(scenario.labels)))
    assert set(labels) == set(scenario.brands)
    windows = [w for brand_windows in labels.values() for w in brand_windows]
    if name in LABELLED:
        assert windows
    else:
        assert not windows
    first, last = ms[0].created_at, ms[-1].created_at
    for brand, brand_windows in labels.items():
        assert brand_windows == list(scenario.windows[brand])
        for start, end in brand_windows:
            assert first <= start < end <= last
            assert count(ms, brand, start, end) > 0


def test_label_convention_onset_to_end_plus_ten_minutes() -> None:
    scenario, _ = short("viral_bursts")
    bursts = [e for e in scenario.effects if isinstance(e, Burst)]
    expected = sorted((b.brand, b.start, b.end + 600.0) for b in bursts)
    got = sorted((brand, s, e) for brand, ws in scenario.windows.items() for s, e in ws)
    assert got == expected
    drift_scenario, _ = short("negativity_drift")
    for drift in (e for e in drift_scenario.effects if isinstance(e, Drift)):
        ((start, end),) = drift_scenario.windows[drift.brand]
        share = drift.share(start)
        assert share is not None and 0.30 <= share < 0.31
        assert end == drift.plateau_end + 600.0


def test_default_spans_and_sizes() -> None:
    """The full suite spans several days per scenario and stays under ~1.5 M mentions
    (estimated from the mean rates, without generating it)."""
    total = 0.0
    for name in SCENARIOS:
        scenario = build(name)
        assert 3 <= scenario.days <= 8
        assert scenario.start == DEFAULT_START
        short_version, _ = short(name)
        short_total = len(short(name)[1]) / SHORT["scale"]
        total += short_total * scenario.days / short_version.days
    assert total < 1_600_000


def test_daily_rhythm_is_visible_in_calm_rhythm() -> None:
    scenario, _ = short("calm_rhythm")
    ms = mentions("calm_rhythm")
    day = scenario.start
    peaks = {"calm-office": 14, "calm-leisure": 20, "calm-retail": 12}
    for brand, peak in peaks.items():
        trough = (peak + 12) % 24
        peak_count = count(ms, brand, day + (peak - 1) * 3600, day + (peak + 1) * 3600)
        night_count = count(ms, brand, day + (trough - 1) * 3600, day + (trough + 1) * 3600)
        assert peak_count >= 2 * night_count, (brand, peak_count, night_count)


def test_weekly_rhythm_is_visible_in_calm_rhythm() -> None:
    thursday, _ = short("calm_rhythm")
    saturday_start = DEFAULT_START + 2 * DAY
    assert datetime.fromtimestamp(saturday_start, UTC).weekday() == 5
    saturday, saturday_events = short("calm_rhythm", start=saturday_start)
    weekday = Counter(m.brand for m in mentions("calm_rhythm"))
    weekend = Counter(e["brand"] for e in saturday_events)
    assert weekend["calm-office"] < 0.75 * weekday["calm-office"]  # weekend factor 0.55
    assert weekend["calm-leisure"] > 1.2 * weekday["calm-leisure"]  # weekend factor 1.4


def test_small_brands_rates_and_crisis() -> None:
    scenario, _ = short("small_brands", scale=1.0)
    per_day = Counter(e["brand"] for e in short("small_brands", scale=1.0)[1])
    nominal = {"small-a": 0.2, "small-b": 0.5, "small-c": 1.0, "small-d": 2.0, "small-e": 3.0}
    for brand, rate in nominal.items():
        assert 0.6 * rate * 1440 < per_day[brand] < 1.6 * rate * 1440 + 50, brand
    ((start, end),) = scenario.windows["small-c"]
    crisis = [e for e in scenario.events() if e["brand"] == "small-c"]
    times = [datetime.fromisoformat(e["created_at"]).timestamp() for e in crisis]
    inside = sum(1 for t in times if start <= t < end - 600)
    before = sum(1 for t in times if start - 3600 <= t < start)
    assert inside >= 3 * before / 2  # 30 min at x10 vs 60 min at x1
    texts = [e["text"] for e, t in zip(crisis, times, strict=True) if start <= t < end - 600]
    assert sum(negative(t) for t in texts) / len(texts) > 0.6


def test_negativity_drift_share_rises_and_control_stays() -> None:
    scenario, _ = short("negativity_drift")
    ms = mentions("negativity_drift")
    slow = next(e for e in scenario.effects if isinstance(e, Drift) and e.brand == "drift-slow")
    hour = 3600.0
    before = negative_share(ms, "drift-slow", slow.start - 2 * hour, slow.start)
    middle = negative_share(ms, "drift-slow", slow.start + 5 * hour, slow.start + 7 * hour)
    plateau = negative_share(ms, "drift-slow", slow.ramp_end, slow.plateau_end)
    assert before < 0.2 < middle < 0.4 < plateau
    control = negative_share(ms, "drift-control", slow.ramp_end, slow.plateau_end)
    assert control < 0.2
    # Volume does not move with the drift.
    calm = count(ms, "drift-slow", slow.start - 2 * hour, slow.start)
    drifting = count(ms, "drift-slow", slow.ramp_end, slow.ramp_end + 2 * hour)
    assert 0.7 < drifting / calm < 1.4


def test_viral_bursts_are_mostly_reposts_of_one_negative_post() -> None:
    scenario, events = short("viral_bursts")
    ms = mentions("viral_bursts")
    bursts = [e for e in scenario.effects if isinstance(e, Burst)]
    assert len(bursts) >= 3 and all(10 <= b.minutes <= 20 for b in bursts)
    for burst in bursts:
        assert 4.0 <= burst.volume_factor <= 8.0
        inside = [
            e
            for e, m in zip(events, ms, strict=True)
            if m.brand == burst.brand and burst.start <= m.created_at < burst.end
        ]
        before = count(ms, burst.brand, burst.start - 3600, burst.start) * burst.minutes / 60
        assert len(inside) >= 2 * before, (burst, len(inside), before)
        reposted = Counter(e.get("repost_of") for e in inside if e.get("repost_of"))
        (viral_id, reposts), *_ = reposted.most_common(1)
        assert reposts >= 0.35 * len(inside)
        viral = next(e for e in events if e["id"] == viral_id)
        assert negative(viral["text"])


def test_planned_spikes_are_daily_and_not_negative() -> None:
    scenario, _ = short("planned_spikes")
    ms = mentions("planned_spikes")
    assert scenario.watch and all(w.name == "planned" for w in scenario.watch)
    for burst in (e for e in scenario.effects if isinstance(e, Burst)):
        assert burst.planned
        inside = count(ms, burst.brand, burst.start, burst.end)
        before = count(ms, burst.brand, burst.start - 3600, burst.start) * burst.minutes / 60
        assert inside >= 1.4 * before
        assert negative_share(ms, burst.brand, burst.start, burst.end) < 0.2
    hours = {(w.brand, datetime.fromtimestamp(w.start, UTC).hour) for w in scenario.watch}
    assert hours == {("planned-newsletter", 9), ("planned-show", 19)}


def test_outages_silence_and_drop() -> None:
    scenario, _ = short("outages")
    ms = mentions("outages")
    stop, drop = (e for e in scenario.effects if isinstance(e, Outage))
    assert (stop.brand, stop.keep, drop.brand, drop.keep) == (
        "outage-stop",
        0.0,
        "outage-drop",
        0.3,
    )
    assert stop.end - stop.start == drop.end - drop.start == 7200
    assert count(ms, "outage-stop", stop.start, stop.end) == 0
    assert count(ms, "outage-stop", stop.start - 600, stop.start) > 0
    assert count(ms, "outage-stop", stop.end, stop.end + 600) > 0
    during = count(ms, "outage-drop", drop.start, drop.end)
    before = count(ms, "outage-drop", drop.start - 7200, drop.start)
    assert 0 < during < 0.5 * before
    watched = {(w.brand, w.name) for w in scenario.watch}
    assert ("outage-stop", "outage") in watched and ("outage-drop", "recovery") in watched


def test_unknown_scenario() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        build("nope")


def test_benchmark_script_runs_on_a_tiny_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.scenarios import main

    status = main(
        ["--only", "small_brands", "--days", "1", "--scale", "0.5", "--out-dir", str(tmp_path)]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "TOTAL" in out and "small_brands" in out and "goal recall" in out
    assert (tmp_path / "small_brands.jsonl").exists()
    labels = json.loads((tmp_path / "small_brands.labels.json").read_text())
    assert len(labels["small-c"]) == 1
