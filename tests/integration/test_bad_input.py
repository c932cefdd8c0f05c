"""Bad input interleaved with a crisis stream: every bad event lands on the dead-letter
topic with its original bytes (cut at the size limit) and its reason code, is counted on
/metrics, and neither stops the worker nor keeps the good events around it from raising
the brand's alert."""

from __future__ import annotations

import collections
import json
import time
import uuid
from typing import Any

import pytest
from kafka import KafkaProducer

from detector.model import Limits
from streams.app import REASON_HEADER

from .support import (
    BUCKET_SECONDS,
    CALM_PER_BUCKET,
    TopicLog,
    Worker,
    alert_events,
    aligned_start,
    calm,
    encode,
    first,
    iso_to_epoch,
    mention_events,
    produce,
    spike,
)

pytestmark = pytest.mark.integration

CALM_BEFORE, SPIKE_BUCKETS, CALM_AFTER = 10, 2, 3
YEAR = 365.25 * 86400
DROP = object()  # marks a field to leave out of an event


def bad_events(brand: str, created_at: float) -> list[tuple[str, bytes]]:
    """(expected reason code, raw value) of events the worker must dead-letter. Each value
    is unique, so a dead letter can be matched to what was sent by its bytes."""
    tag = uuid.uuid4().hex[:8]

    def event(name: str, **fields: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "id": f"bad-{name}-{tag}",
            "brand": brand,
            "text": f"bad input {name}",
            "created_at": created_at,
        }
        return {k: v for k, v in {**base, **fields}.items() if v is not DROP}

    def raw(name: str, **fields: Any) -> bytes:
        return encode(event(name, **fields))

    nan_head = json.dumps(event("nan-followers"))[:-1]
    return [
        ("invalid_json", f'{{"id": "bad-json-{tag}", "brand": "{brand}", "text": '.encode()),
        (
            "invalid_utf8",
            f'{{"id": "bad-utf8-{tag}", "brand": "{brand}", "text": "'.encode() + b'caf\xe9 \xff"}',
        ),
        ("not_an_object", json.dumps([event("array")]).encode()),
        ("missing_field", raw("no-brand", brand=DROP)),
        ("wrong_type", raw("brand-number", brand=12345)),
        ("empty_field", raw("brand-blank", brand="   ")),
        ("bad_timestamp", raw("yesterday", created_at="yesterday")),
        ("bad_timestamp", raw("no-offset", created_at="2024-05-01T12:00:00")),
        ("timestamp_out_of_range", raw("year-1990", created_at=631_152_000)),
        ("timestamp_out_of_range", raw("future", created_at=time.time() + 10 * YEAR)),
        ("bad_number", f'{nan_head}, "author": {{"id": "a", "followers": NaN}}}}'.encode()),
        ("bad_number", raw("negative-likes", engagement={"likes": -3})),
        ("field_too_long", raw("long-text", text="x" * 10_001)),
        ("too_large", raw("huge", text="y" * 9_000, padding="z" * 70_000)),
    ]


def test_bad_input_is_dead_lettered_and_good_input_still_alerts(
    unique_brand: str,
    worker: Worker,
    producer: KafkaProducer,
    alert_log: TopicLog,
    dead_letter_log: TopicLog,
) -> None:
    brand = unique_brand
    start = aligned_start(hours_ago=2)
    good = mention_events(brand, start, [calm(CALM_BEFORE), spike(SPIKE_BUCKETS), calm(CALM_AFTER)])
    bad = bad_events(brand, created_at=start + 60.5)
    # Spread the bad events through the good ones: before warm-up ends, and in the spike.
    records = [(brand.encode(), encode(e)) for e in good]
    spike_at = CALM_BEFORE * CALM_PER_BUCKET
    positions = [5 + i * (spike_at // len(bad)) for i in range(len(bad) // 2)]
    positions += [spike_at + 7 + i * 23 for i in range(len(bad) - len(positions))]
    for position, (_, value) in sorted(zip(positions, bad, strict=True), reverse=True):
        records.insert(position, (brand.encode(), value))

    before = worker.metrics()
    produce(producer, worker.settings.mentions_topic, records)

    # 1. Every bad event is on the dead-letter topic, with its bytes and reason; an event
    # over the size limit keeps its first max_event_bytes, with its full size in a header.
    kept = Limits().max_event_bytes
    expected = {value[:kept]: reason for reason, value in bad}
    original_size = {value[:kept]: len(value) for _, value in bad}
    assert len(expected) == len(bad)

    def dead_letters() -> list[Any] | None:
        found = [r for r in dead_letter_log.with_key(brand.encode()) if r.value in expected]
        return found if len(found) >= len(bad) else None

    letters = worker.wait(f"{len(bad)} dead letters for {brand}", dead_letters)
    got = {}
    for record in letters:
        headers = dict(record.headers)
        assert REASON_HEADER in headers, record.headers
        got[record.value] = headers[REASON_HEADER].decode()
        assert (
            headers.get("crisis-radar-original-bytes") == str(original_size[record.value]).encode()
        )
        assert headers.get("crisis-radar-source", b"").startswith(
            f"{worker.settings.mentions_topic}/".encode()
        )
    assert len(letters) == len(bad), "an event was dead-lettered more than once"
    mismatched = {
        expected[value][:12] + ": " + value[:60].decode("utf-8", "replace"): got[value]
        for value in expected
        if got.get(value) != expected[value]
    }
    assert not mismatched, f"wrong reason codes (expected: raw -> got): {mismatched}"
    assert not [r for r in dead_letter_log.with_key(brand.encode()) if r.value not in expected]

    # 2. The good events around them still raise the brand's virality alert.
    def opened() -> dict[str, Any] | None:
        return first(alert_events(alert_log, brand), "virality", "opened")

    alert = worker.wait(f"a virality alert for {brand}", opened)
    spike_start = start + CALM_BEFORE * BUCKET_SECONDS
    assert spike_start <= iso_to_epoch(alert["data"]["opened_at"]) < spike_start + 120

    # 3. /metrics counts every rejection by reason, and every good event.
    after = worker.wait_processed(before, len(good))

    def delta(name: str, **labels: str) -> float:
        return after.total(name, **labels) - before.total(name, **labels)

    for reason, count in collections.Counter(reason for reason, _ in bad).items():
        assert delta("crisis_radar_dead_letters_total", reason=reason) == count, reason
    assert delta("crisis_radar_dead_letters_total") == len(bad)
    processed = "crisis_radar_mentions_processed_total"
    assert delta(processed, stage="ingest", outcome="rejected") == len(bad)
    assert delta(processed, stage="ingest", outcome="accepted") == len(good)
    assert delta(processed, stage="detect", outcome="applied") == len(good)

    # 4. The worker survived all of it.
    assert worker.alive(), worker.describe()
