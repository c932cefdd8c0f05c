"""Late and out-of-order mentions through the session's worker (allowed lateness: one
bucket in the test configuration).

- Mentions of the open bucket and the one before, arriving out of order, are applied in
  their own bucket.
- Mentions of older buckets are counted as late, and change no decision: a negative
  burst into buckets judged calm opens nothing, and one into the buckets of a resolved
  crisis neither reopens nor escalates it.
"""

from __future__ import annotations

from typing import Any

import pytest
from kafka import KafkaProducer

from .support import (
    BUCKET_SECONDS,
    NEGATIVE_TEXTS,
    TopicLog,
    Worker,
    alert_events,
    aligned_start,
    calm,
    encode,
    event_time,
    first,
    latest_states,
    mention_events,
    produce,
    spike,
)

pytestmark = pytest.mark.integration

LATE_BURST = 150


def burst(brand: str, buckets: range, start: float, n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` negative mentions of ``brand`` spread over ``buckets`` (relative to start)."""
    events = []
    for i in range(n):
        bucket = buckets[i % len(buckets)]
        events.append(
            {
                "id": f"{brand}-{tag}-{i}",
                "brand": brand,
                "text": f"{NEGATIVE_TEXTS[i % len(NEGATIVE_TEXTS)]} #{brand}",
                "created_at": start + bucket * BUCKET_SECONDS + 1 + (i * 7) % 58,
                "author": {"id": f"late-{i}", "followers": 5000},
                "engagement": {"reposts": 50},
            }
        )
    return events


def send(producer: KafkaProducer, worker: Worker, events: list[dict[str, Any]]) -> None:
    records = [(e["brand"].encode(), encode(e)) for e in events]
    produce(producer, worker.settings.mentions_topic, records)


def detect_outcomes(worker: Worker) -> dict[str, float]:
    metrics = worker.metrics()
    return {
        outcome: metrics.total(
            "crisis_radar_mentions_processed_total", stage="detect", outcome=outcome
        )
        for outcome in ("applied", "late", "duplicate")
    }


def test_late_mentions_are_counted_and_change_no_decision(
    unique_brand: str, worker: Worker, producer: KafkaProducer, alert_log: TopicLog
) -> None:
    calm_brand, crisis_brand = f"{unique_brand}-calm", f"{unique_brand}-crisis"
    # Newer than the other tests' streams, so that no other brand's clock is ahead.
    start = aligned_start(hours_ago=1)
    calm_stream = mention_events(calm_brand, start, [calm(20)])
    crisis_stream = mention_events(crisis_brand, start, [calm(8), spike(2), calm(10)])
    before = detect_outcomes(worker)

    # 1. The streams in event-time order: the crisis opens and resolves; the calm brand
    # is quiet.
    send(producer, worker, sorted(calm_stream + crisis_stream, key=event_time))

    def applied(n: int) -> bool:
        return detect_outcomes(worker)["applied"] - before["applied"] >= n

    worker.wait("both streams applied", lambda: applied(len(calm_stream + crisis_stream)))

    def resolved() -> bool:
        return first(alert_events(alert_log, crisis_brand), "virality", "resolved") is not None

    worker.wait("the crisis brand's virality alert to resolve", resolved)
    alert_log.read_to_end()
    crisis_events = alert_events(alert_log, crisis_brand)
    assert alert_events(alert_log, calm_brand) == []

    # 2. Out of order within the allowed lateness: the calm brand's open bucket (19) and
    # the one before (18), older first.
    in_time = [
        {**e, "id": f"{e['id']}-again-{k}", "created_at": start + b * BUCKET_SECONDS + 5 + k}
        for k, (b, e) in enumerate([(18, calm_stream[0])] * 6 + [(19, calm_stream[1])] * 4)
    ]
    # 3. Beyond it: negative bursts into buckets already judged: calm ones of the calm
    # brand, and the crisis brand's spike and the buckets after it.
    late = burst(calm_brand, range(0, 17), start, LATE_BURST, "late") + burst(
        crisis_brand, range(8, 15), start, LATE_BURST, "late"
    )
    send(producer, worker, in_time + late)
    worker.wait(
        "the late mentions counted as late",
        lambda: detect_outcomes(worker)["late"] - before["late"] >= len(late),
    )
    after = detect_outcomes(worker)
    assert after["applied"] - before["applied"] == len(calm_stream + crisis_stream + in_time)
    assert after["late"] - before["late"] == len(late)

    # No decision changed: not one alert event more for either brand.
    alert_log.read_to_end()
    assert alert_events(alert_log, calm_brand) == []
    assert alert_events(alert_log, crisis_brand) == crisis_events
    # The in-time ones are in their buckets; the late ones in the counter only.
    changelog = TopicLog(worker.brokers, f"{worker.settings.app_id}-brand-state-changelog")
    try:
        changelog.read_to_end()
        states = latest_states(changelog.records)
    finally:
        changelog.close()
    calm_state = states[calm_brand]
    assert calm_state["late"] == LATE_BURST and states[crisis_brand]["late"] == LATE_BURST
    assert calm_state["mentions"] == len(calm_stream) + len(in_time)
    counts = {int(b["index"]): b["count"] for b in calm_state["buckets"]}
    counts.update({int(r[0]): int(r[1]) for r in calm_state["recent"]})
    first_bucket = int(start // BUCKET_SECONDS)
    assert counts[first_bucket + 18] == 30 + 6 and counts[first_bucket + 19] == 30 + 4, counts
    print(
        f"\nlate and out-of-order: {len(in_time)} out-of-order mentions within the lateness "
        f"applied in their buckets; {len(late)} late ones (negative bursts into judged "
        f"buckets) counted as late; alert events before {len(crisis_events)}, after "
        f"{len(alert_events(alert_log, crisis_brand))}",
        flush=True,
    )
