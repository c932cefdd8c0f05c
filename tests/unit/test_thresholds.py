"""Unit tests of ``detector.thresholds``: validation, ``from_mapping`` and ``ThresholdBook``."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from detector.core import step
from detector.errors import ConfigError, DetectorError
from detector.model import Mention
from detector.sentiment import ScoredMention
from detector.thresholds import ThresholdBook, Thresholds, threshold_keys


def test_defaults_are_valid_and_documented_values() -> None:
    t = Thresholds()
    assert t.bucket_seconds == 60
    assert t.warmup_buckets >= 1
    assert t.virality_factor > 1
    assert set(t.as_dict()) == set(threshold_keys())


def test_config_error_is_a_value_error_and_a_detector_error() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, DetectorError)


IMPOSSIBLE = [
    pytest.param("bucket_seconds", 0, id="bucket_seconds-0"),
    ("bucket_seconds", -60),
    ("allowed_lateness_buckets", -1),
    ("warmup_buckets", 0),
    ("baseline_halflife_buckets", 0.0),
    ("baseline_halflife_buckets", -5.0),
    ("baseline_halflife_buckets", math.nan),
    ("virality_min_count", 0),
    ("virality_factor", 1.0),
    ("virality_factor", 0.5),
    ("virality_factor", math.nan),
    ("virality_z", 0.0),
    ("negativity_min_count", 0),
    ("negativity_min_share", 0.0),
    ("negativity_min_share", 1.01),
    ("negativity_min_delta", -0.01),
    ("negativity_min_delta", 1.0),
    ("negativity_z", -1.0),
    ("critical_multiplier", 0.99),
    ("resolve_after_buckets", 0),
    ("cooldown_buckets", -1),
    ("max_samples", -1),
    ("max_samples", 51),
    # Seasonality and robustness.
    ("season_slot_minutes", 0),
    ("season_slot_minutes", -5),
    ("season_slot_minutes", 7),  # does not divide a day
    ("season_slot_minutes", 2880),  # longer than a day
    ("season_halflife_days", 0.0),
    ("season_halflife_days", math.inf),
    ("robust_clip_sd", 0.0),
    ("robust_clip_sd", math.nan),
    ("long_window_buckets", 0),
    ("long_window_buckets", 1441),
    ("drift_halflife_buckets", 0.0),
    ("drift_halflife_buckets", -1.0),
    # Drop and silence.
    ("drop_min_expected", 0.0),
    ("drop_min_expected", math.inf),
    ("drop_factor", 0.0),
    ("drop_factor", 1.0),
    ("drop_factor", 1.5),
    ("drop_z", 0.0),
    ("drop_after_buckets", 0),
    ("silence_min_expected", 0.0),
    ("silence_min_expected", -3.0),
    ("silence_min_expected", math.nan),
    ("silence_min_buckets", 0),
    # Lifecycle and evidence.
    ("open_after_buckets", 0),
    ("open_after_buckets", -1),
    ("recovery_ratio", 0.0),
    ("recovery_ratio", 1.01),
    ("recovery_ratio", math.nan),
    ("max_terms", -1),
    ("max_terms", 51),
    # Repeat suppression and cooldown.
    ("cooldown_from", "closed"),
    ("repeat_halflife_days", -1.0),
    ("repeat_measure", "volume"),
    ("repeat_margin", 0.99),
    ("repeat_margin", math.inf),
]


@pytest.mark.parametrize(("key", "value"), IMPOSSIBLE)
def test_impossible_value_raises_config_error_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Thresholds(**{key: value})
    assert key in str(info.value)


BOUNDARY_OK = [
    ("bucket_seconds", 1),
    ("allowed_lateness_buckets", 0),
    ("warmup_buckets", 1),
    ("virality_min_count", 1),
    ("virality_factor", 1.0001),
    ("negativity_min_share", 1.0),
    ("negativity_min_delta", 0.0),
    ("critical_multiplier", 1.0),
    ("resolve_after_buckets", 1),
    ("cooldown_buckets", 0),
    ("max_samples", 0),
    ("max_samples", 50),
    ("season_slot_minutes", 1),
    ("season_slot_minutes", 1440),
    ("robust_clip_sd", 0.1),
    ("long_window_buckets", 1),
    ("long_window_buckets", 1440),
    ("drop_factor", 0.999),
    ("drop_after_buckets", 1),
    ("silence_min_buckets", 1),
    ("open_after_buckets", 1),
    ("recovery_ratio", 1.0),
    ("max_terms", 0),
    ("max_terms", 50),
    ("cooldown_from", "opened"),
    ("repeat_measure", "count"),
    ("repeat_margin", 1.0),
]


@pytest.mark.parametrize(("key", "value"), BOUNDARY_OK)
def test_boundary_values_are_accepted(key: str, value: Any) -> None:
    assert getattr(Thresholds(**{key: value}), key) == value


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        Thresholds(
            bucket_seconds=-1, max_samples=99, virality_factor=0.5, drop_factor=2.0, max_terms=99
        )
    message = str(info.value)
    for key in ("bucket_seconds", "max_samples", "virality_factor", "drop_factor", "max_terms"):
        assert key in message


@pytest.mark.parametrize(
    ("bucket_seconds", "slot_minutes", "ok"),
    [
        (60, 5, True),
        (300, 5, True),
        (300, 60, True),
        (3600, 1440, True),
        (7, 5, False),  # a slot is not a whole number of 7 s buckets
        (600, 5, False),  # a bucket longer than a slot
        (7200, 60, False),
    ],
)
def test_season_slots_must_be_whole_numbers_of_buckets(
    bucket_seconds: int, slot_minutes: int, ok: bool
) -> None:
    values = {"bucket_seconds": bucket_seconds, "season_slot_minutes": slot_minutes}
    if ok:
        t = Thresholds(**values)
        assert (t.season_slot_minutes * 60) % t.bucket_seconds == 0
        return
    with pytest.raises(ConfigError) as info:
        Thresholds(**values)
    assert "season_slot_minutes" in str(info.value)


def test_thresholds_are_immutable() -> None:
    t = Thresholds()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.bucket_seconds = 30  # type: ignore[misc]


# --------------------------------------------------------------------------------------
# from_mapping
# --------------------------------------------------------------------------------------


def test_from_mapping_empty_gives_base() -> None:
    assert Thresholds.from_mapping({}) == Thresholds()
    base = Thresholds(warmup_buckets=7)
    assert Thresholds.from_mapping({}, base=base) == base


def test_from_mapping_overrides_and_keeps_base_values() -> None:
    base = Thresholds(warmup_buckets=7, cooldown_buckets=2)
    t = Thresholds.from_mapping({"virality_factor": 4, "cooldown_buckets": 5}, base=base)
    assert t.virality_factor == 4.0 and isinstance(t.virality_factor, float)
    assert t.cooldown_buckets == 5
    assert t.warmup_buckets == 7  # from base, not from the class defaults


def test_from_mapping_round_trips_as_dict() -> None:
    t = Thresholds(
        bucket_seconds=30,
        virality_z=5.5,
        max_samples=3,
        season_slot_minutes=60,
        drop_after_buckets=7,
        recovery_ratio=0.25,
        max_terms=9,
    )
    assert Thresholds.from_mapping(t.as_dict()) == t


def test_from_mapping_takes_integers_for_float_keys_of_the_new_rules() -> None:
    t = Thresholds.from_mapping({"recovery_ratio": 1, "silence_min_expected": 20})
    assert t.recovery_ratio == 1.0 and isinstance(t.recovery_ratio, float)
    assert t.silence_min_expected == 20.0 and isinstance(t.silence_min_expected, float)
    with pytest.raises(ConfigError) as info:
        Thresholds.from_mapping({"drop_factor": 0}, where="brands.acme")
    assert str(info.value).startswith("brands.acme:") and "drop_factor" in str(info.value)


def test_from_mapping_refuses_unknown_key() -> None:
    with pytest.raises(ConfigError) as info:
        Thresholds.from_mapping({"virality_factr": 3.0}, where="brands.acme")
    message = str(info.value)
    assert message.startswith("brands.acme")
    assert "'virality_factr'" in message and "unknown key" in message
    assert "virality_factor" in message  # the known keys are listed as a hint


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("bucket_seconds", True, "expected a number"),
        ("virality_factor", False, "expected a number"),
        ("bucket_seconds", "60", "expected an integer"),
        ("virality_z", "4.0", "expected a number"),
        ("warmup_buckets", 30.0, "expected an integer"),
        ("warmup_buckets", None, "expected an integer"),
        ("negativity_min_share", [0.4], "expected a number"),
        ("season_slot_minutes", 7.5, "expected an integer"),
        ("open_after_buckets", True, "expected a number"),
        ("recovery_ratio", "half", "expected a number"),
        ("drop_after_buckets", 5.0, "expected an integer"),
        ("max_terms", None, "expected an integer"),
        ("cooldown_from", 1, "expected a string"),
        ("repeat_measure", None, "expected a string"),
    ],
)
def test_from_mapping_refuses_wrong_types(key: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        Thresholds.from_mapping({key: value}, where="thresholds")
    message = str(info.value)
    assert message.startswith(f"thresholds.{key}:")
    assert expected in message
    assert repr(value) in message


@pytest.mark.parametrize("values", [["bucket_seconds", 60], "bucket_seconds=60", None])
def test_from_mapping_refuses_a_non_mapping(values: Any) -> None:
    with pytest.raises(ConfigError, match="^thresholds"):
        Thresholds.from_mapping(values)


def test_from_mapping_refuses_impossible_values_with_where_and_key() -> None:
    with pytest.raises(ConfigError) as info:
        Thresholds.from_mapping({"resolve_after_buckets": 0}, where="brands.globex")
    message = str(info.value)
    assert message.startswith("brands.globex:")
    assert "resolve_after_buckets" in message


# --------------------------------------------------------------------------------------
# ThresholdBook
# --------------------------------------------------------------------------------------


def test_threshold_book_for_brand() -> None:
    defaults = Thresholds(warmup_buckets=10)
    acme = Thresholds(virality_factor=5.0)
    book = ThresholdBook(defaults=defaults, brands={"acme": acme})
    assert book.for_brand("acme") is acme
    assert book.for_brand("globex") is defaults
    assert ThresholdBook().for_brand("acme") == Thresholds()


# --------------------------------------------------------------------------------------
# Known bug: a value the validation accepts makes the core crash.
# --------------------------------------------------------------------------------------


def test_infinite_halflife_is_refused_or_works() -> None:
    try:
        t = Thresholds(baseline_halflife_buckets=math.inf)
    except ConfigError:
        return  # refusing it is a valid fix
    state = None
    for i, seconds in enumerate((0.0, 60.0, 180.0, 300.0)):
        mention = Mention(id=str(i), brand="acme", text="x", created_at=1_700_000_000.0 + seconds)
        state = step(state, ScoredMention(mention=mention, compound=0.5), t).state
    assert state is not None and state.baseline.buckets_seen >= 1


def test_the_shipped_configuration_documents_every_threshold() -> None:
    yaml = pytest.importorskip("yaml")
    path = Path(__file__).resolve().parents[2] / "config" / "crisis-radar.yaml"
    defaults = yaml.safe_load(path.read_text(encoding="utf-8"))["thresholds"]["defaults"]
    assert set(defaults) == set(threshold_keys())
    Thresholds.from_mapping(defaults, where="thresholds.defaults")
