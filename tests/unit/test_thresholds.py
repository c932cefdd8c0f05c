"""Unit tests of ``detector.thresholds``: validation, ``from_mapping`` and ``ThresholdBook``."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from detector.core import step
from detector.errors import ConfigError, DetectorError
from detector.model import Mention
from detector.sentiment import ScoredMention
from detector.thresholds import ThresholdBook, Thresholds


def test_defaults_are_valid_and_documented_values() -> None:
    t = Thresholds()
    assert t.bucket_seconds == 60
    assert t.warmup_buckets >= 1
    assert t.virality_factor > 1
    assert set(t.as_dict()) == {f.name for f in dataclasses.fields(Thresholds)}


def test_config_error_is_a_value_error_and_a_detector_error() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, DetectorError)


IMPOSSIBLE = [
    ("bucket_seconds", 0),
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
]


@pytest.mark.parametrize(("key", "value"), BOUNDARY_OK)
def test_boundary_values_are_accepted(key: str, value: Any) -> None:
    assert getattr(Thresholds(**{key: value}), key) == value


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        Thresholds(bucket_seconds=0, max_samples=99, virality_factor=0.5)
    message = str(info.value)
    for key in ("bucket_seconds", "max_samples", "virality_factor"):
        assert key in message


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
    t = Thresholds(bucket_seconds=30, virality_z=5.5, max_samples=3)
    assert Thresholds.from_mapping(t.as_dict()) == t


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
