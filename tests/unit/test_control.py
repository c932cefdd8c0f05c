"""The live view of the control topic: records in, effective thresholds and plans out.
No broker: records are applied as the worker's follower applies them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from detector.errors import ConfigError
from detector.plans import PlannedEvent
from detector.thresholds import ThresholdBook, Thresholds
from streams.control import (
    LiveConfig,
    Override,
    Plan,
    parse_assignments,
    parse_instant,
    plan_key,
    plan_record,
    thresholds_record,
)

BOOK = ThresholdBook(
    defaults=Thresholds(virality_factor=3.0),
    brands={"acme": Thresholds(virality_factor=5.0, negativity_min_share=0.5)},
)


def record(scope: str, values: dict[str, Any], by: str = "alice@ops") -> tuple[bytes, bytes]:
    return thresholds_record(Override(scope, values, by, "2026-11-25T10:00:00Z", "noisy"))


def test_precedence_file_then_live_star_then_live_brand() -> None:
    live = LiveConfig(BOOK)
    assert live.for_brand("acme").virality_factor == 5.0
    assert live.for_brand("other").virality_factor == 3.0
    live.apply(*record("*", {"virality_factor": 4.0, "virality_z": 6.0}))
    assert live.for_brand("other").virality_factor == 4.0
    assert live.for_brand("acme").virality_factor == 4.0  # live "*" beats the file
    assert live.for_brand("acme").negativity_min_share == 0.5  # untouched keys stay
    live.apply(*record("acme", {"virality_factor": 8}))
    acme = live.for_brand("acme")
    assert (acme.virality_factor, acme.virality_z) == (8.0, 6.0)
    assert live.for_brand("other").virality_factor == 4.0
    assert live.source_of("acme", "virality_factor").startswith("live (acme) by alice@ops")
    assert live.source_of("acme", "virality_z").startswith("live (*)")
    assert live.source_of("acme", "negativity_min_share") == "file (brand)"
    assert live.source_of("acme", "drop_z") == "file"


def test_a_tombstone_returns_to_the_file() -> None:
    live = LiveConfig(BOOK)
    key, value = record("acme", {"virality_factor": 8.0})
    live.apply(key, value)
    assert live.for_brand("acme").virality_factor == 8.0
    applied = live.apply(key, None)
    assert applied.action == "removed" and "virality_factor" in applied.message
    assert live.for_brand("acme").virality_factor == 5.0


def test_the_applied_message_says_who_what_and_when() -> None:
    live = LiveConfig(BOOK)
    first = live.apply(*record("acme", {"virality_factor": 8.0}))
    assert first.kind == "thresholds" and first.action == "applied"
    assert "alice@ops" in first.message and "2026-11-25T10:00:00Z" in first.message
    assert "virality_factor (file) -> 8.0" in first.message and "(noisy)" in first.message
    second = live.apply(*record("acme", {"virality_z": 5.0}, by="bob@ops"))
    assert "virality_z (file) -> 5.0" in second.message
    assert "virality_factor 8.0 -> (file)" in second.message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"virality_factor": 0.5}, "virality_factor must be > 1"),
        ({"virality_factor": "high"}, "expected a number"),
        ({"warmup_buckets": 2.5}, "expected an integer"),
        ({"no_such_key": 1}, "unknown key 'no_such_key'"),
        ({"bucket_seconds": 30}, "cannot change live"),
        ({"season_slot_minutes": 10}, "cannot change live"),
    ],
)
def test_invalid_records_are_refused_and_change_nothing(
    values: dict[str, Any], message: str
) -> None:
    live = LiveConfig(BOOK)
    live.apply(*record("acme", {"virality_factor": 8.0}))
    with pytest.raises(ConfigError, match=message):
        live.apply(*record("acme", values))
    assert live.for_brand("acme").virality_factor == 8.0


def test_an_invalid_change_for_every_brand_is_refused() -> None:
    live = LiveConfig(BOOK)
    with pytest.raises(ConfigError, match="drop_factor must be in"):
        live.apply(*record("*", {"drop_factor": 1.5}))
    assert live.overrides == {}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (b"thresholds/acme", b"{not json", "not JSON"),
        (b"thresholds/acme", b"[1, 2]", "not a JSON object"),
        (b"thresholds/acme", json.dumps({"version": 2, "values": {}}).encode(), "version"),
        (b"thresholds/acme", json.dumps({"version": 1, "values": 3}).encode(), "mapping"),
        (b"thresholds/ACME Air", json.dumps({"version": 1, "values": {}}).encode(), "normalised"),
        (b"plan/acme", b"{}", "plan/BRAND/ID"),
        (b"reboot/everything", b"{}", "unknown control key"),
        (None, b"{}", "without a key"),
        (b"\xff\xfe", b"{}", "not UTF-8"),
    ],
)
def test_malformed_records_are_refused_with_a_reason(
    key: bytes | None, value: bytes, message: str
) -> None:
    live = LiveConfig(BOOK)
    with pytest.raises(ConfigError, match=message):
        live.apply(key, value)


def test_plans_attach_to_their_brand_and_can_be_removed() -> None:
    live = LiveConfig(BOOK)
    event = PlannedEvent("tv-spot", 1_800_000_000.0, 1_800_003_600.0, 3.0, "TV spot")
    applied = live.apply(*plan_record(Plan("acme", event, "carol@marketing", "now")))
    assert "expect 3x" in applied.message and "carol@marketing" in applied.message
    assert live.for_brand("acme").plans == (event,)
    assert live.for_brand("other").plans == ()
    assert live.for_brand("acme").virality_factor == 5.0  # plans leave thresholds alone
    live.apply(plan_key("acme", "tv-spot"), None)
    assert live.for_brand("acme").plans == ()


def test_an_invalid_plan_record_is_refused() -> None:
    live = LiveConfig(BOOK)
    body = {"version": 1, "start": "2026-12-01T18:00:00Z", "end": "2026-12-01T17:00:00Z"}
    with pytest.raises(ConfigError, match="expect must be a number"):
        live.apply(plan_key("acme", "x"), json.dumps(body).encode())
    body["expect"] = 3
    with pytest.raises(ConfigError, match="end must come after"):
        live.apply(plan_key("acme", "x"), json.dumps(body).encode())
    assert live.plans.get("acme", {}) == {}


def test_snapshot_rebuilds_the_same_view() -> None:
    live = LiveConfig(BOOK)
    live.apply(*record("*", {"virality_z": 6.0}))
    live.apply(*record("acme", {"virality_factor": 8.0}))
    event = PlannedEvent("launch", 1_800_000_000.0, 1_800_003_600.0, 2.5)
    live.apply(*plan_record(Plan("acme", event, "x", "y")))
    copy = LiveConfig(BOOK)
    for key, value in live.snapshot():
        copy.apply(key, value)
    for brand in ("acme", "other"):
        assert copy.for_brand(brand) == live.for_brand(brand)


def test_parse_assignments_reads_yaml_scalars_and_refuses_unknown_keys() -> None:
    assert parse_assignments(["virality_factor=4", "negativity_min_share=0.45"]) == {
        "virality_factor": 4,
        "negativity_min_share": 0.45,
    }
    for bad, message in [
        (["virality_factor"], "not key=value"),
        (["=4"], "not key=value"),
        (["virality_factor="], "not key=value"),
        (["virality_fact=4"], "unknown threshold"),
        (["plans=[]"], "unknown threshold"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_assignments(bad)


def test_parse_instant_needs_an_offset() -> None:
    assert parse_instant("2026-12-01T18:00:00Z", "--from") == 1_796_148_000.0
    assert parse_instant("2026-12-01T19:00+01:00", "--from") == 1_796_148_000.0
    with pytest.raises(ConfigError, match="no UTC offset"):
        parse_instant("2026-12-01T18:00", "--from")
    with pytest.raises(ConfigError, match="not an ISO-8601"):
        parse_instant("tomorrow", "--to")
