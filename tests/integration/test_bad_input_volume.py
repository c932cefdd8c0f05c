"""Bad input at volume: 10,000 malformed events of every kind mixed at random into a
good stream, through a worker of the test's own (configured with an allow-list of
brands, so that unknown brands are rejected too).

- Every bad event is on the dead-letter topic exactly once, with its reason code and its
  original bytes (cut at the size limit, with the full size in a header).
- Every good event is counted (ingest accepted, detect applied), and no other brand gets
  a state in the table or a metric label of its own.
- The worker never stops, and its memory stays bounded: the second half of the input
  does not grow it like the first.
"""

from __future__ import annotations

import collections
import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaProducer

from detector.model import Limits
from streams.app import REASON_HEADER
from streams.kafka_util import EmbeddedBroker

from .conftest import TEST_CONFIG
from .support import (
    Deployment,
    Worker,
    aligned_start,
    calm,
    encode,
    event_time,
    kill_worker,
    latest_states,
    mention_events,
    processed,
    read_all,
    rss_bytes,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GOOD_BRANDS = 5
GOOD_BUCKETS = 30  # 30 mentions each: 4,500 good events
# How many bad events of each kind: 10,000 in all.
BAD_MIX = {
    "too_large": 100,
    "field_too_long": 400,
    "invalid_utf8": 1_500,
    "lone_surrogate": 500,
    "invalid_json": 1_000,
    "not_an_object": 300,
    "missing_field": 300,
    "wrong_type": 300,
    "empty_field": 300,
    "bad_number": 1_500,
    "bad_timestamp": 300,
    "far_future": 1_000,
    "far_past": 1_000,
    "unknown_brand": 1_500,
}
# The reason code each kind must be dead-lettered with.
REASONS = {
    **{kind: kind for kind in BAD_MIX},
    "lone_surrogate": "invalid_utf8",
    "far_future": "timestamp_out_of_range",
    "far_past": "timestamp_out_of_range",
}
YEAR = 365.25 * 86_400
MAX_RSS_GROWTH = 64 * 2**20  # second half over first half


def bad_event(kind: str, n: int, rng: random.Random, brands: list[str], now: float) -> bytes:
    """One malformed event of ``kind``; ``n`` makes its bytes unique."""
    brand = rng.choice(brands)
    base: dict[str, Any] = {
        "id": f"bad-{kind}-{n}",
        "brand": brand,
        "text": f"malformed {kind} {n}",
        "created_at": now - 3600,
    }

    def raw(**fields: Any) -> bytes:
        return encode({**base, **fields})

    if kind == "too_large":
        return raw(
            text="y" * 9_000, padding="z" * (Limits().max_event_bytes + rng.randrange(9_000))
        )
    if kind == "field_too_long":
        return raw(text="x" * (Limits().max_text_chars + 1 + rng.randrange(2_000)))
    if kind == "invalid_utf8":
        good = raw()
        at = rng.randrange(1, len(good) - 1)
        junk = rng.choice(
            [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", bytes([0x80 + n % 64])]
        )
        return good[:at] + junk + good[at:]
    if kind == "lone_surrogate":
        field = ("brand", "text", "id")[n % 3]
        return raw().replace(
            json.dumps(base[field]).encode(), json.dumps(base[field])[:-1].encode() + b'\\udc80"', 1
        )
    if kind == "invalid_json":
        good = raw()  # cut short, after the id that makes it unique
        return good[: rng.randrange(good.index(b'", "brand"') + 1, len(good) - 1)]
    if kind == "not_an_object":
        return json.dumps([base, n] if n % 2 else f"mention {n}").encode()
    if kind == "missing_field":
        return encode(
            {k: v for k, v in base.items() if k != ("id", "brand", "text", "created_at")[n % 4]}
        )
    if kind == "wrong_type":
        return raw(**{("brand", "id", "text")[n % 3]: [n]})
    if kind == "empty_field":
        return raw(**{("brand", "id")[n % 2]: " " * (n % 4)})
    if kind == "bad_number":
        literal = (b"NaN", b"Infinity", b"-Infinity", b"1e400")[n % 4]
        marker = 424_242_424_242 + n
        obj = {**base, "author": {"followers": 1}, "engagement": {"likes": 1}}
        if n % 3 == 0:
            obj["created_at"] = marker
        elif n % 3 == 1:
            obj["author"] = {"followers": marker}
        else:
            obj["engagement"] = {"likes": marker}
        return encode(obj).replace(str(marker).encode(), literal, 1)
    if kind == "bad_timestamp":
        return raw(created_at=("yesterday", "2024-05-01T12:00:00", "", "12:00")[n % 4])
    if kind == "far_future":
        return raw(created_at=now + rng.uniform(1_000, 1_000 * YEAR))
    if kind == "far_past":
        return raw(
            created_at=rng.choice(
                [0, -1e12, 631_152_000, "1999-12-31T23:59:59Z", "0001-01-01T00:00:00+00:00"]
            )
        )
    if kind == "unknown_brand":
        return raw(brand=f"not-configured-{n}")  # a new brand every time: 1,500 of them
    raise AssertionError(kind)


def log_of(worker: Worker) -> str:
    return worker.log_path.read_text(encoding="utf-8", errors="replace")


def test_ten_thousand_malformed_events_mixed_into_good_ones(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    rng = random.Random(20261125)
    tag = f"{rng.randrange(16**6):06x}"
    brands = [f"volume-{i}-{tag}" for i in range(GOOD_BRANDS)]
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["validation"] = {"allowed_brands": brands}
    config_file = tmp_path / "allow-list.yaml"
    config_file.write_text(yaml.safe_dump(config))
    deployment = Deployment.fresh(broker.address, tmp_path, config_file, "volume")
    settings = deployment.settings
    assert settings.limits.allowed_brands == frozenset(brands)

    now = time.time()
    start = aligned_start(hours_ago=1)
    good = sorted(
        (e for b in brands for e in mention_events(b, start, [calm(GOOD_BUCKETS)])), key=event_time
    )
    bad = [
        (kind, bad_event(kind, n, rng, brands, now))
        for kind, count in BAD_MIX.items()
        for n in range(count)
    ]
    assert len(bad) == 10_000 and len({value for _, value in bad}) == len(bad)
    # Mix: the good events keep their order; each bad one goes to a random place.
    records: list[tuple[bytes | None, bytes, str | None]] = [
        (e["brand"].encode(), encode(e), None) for e in good
    ]
    for kind, value in bad:
        key = rng.choice([None, b"junk", rng.choice(brands).encode()])
        records.insert(rng.randrange(len(records) + 1), (key, value, kind))
    half = len(records) // 2

    worker = deployment.start_worker("worker")
    producer = KafkaProducer(
        bootstrap_servers=deployment.broker_list, acks="all", linger_ms=20, max_request_size=2**21
    )
    try:
        # Input only once the worker is ready: records fetched while it finishes its
        # start-up can be skipped by the consumer (see docs/delivery.md, "Known gap").
        worker.wait("the worker to be ready", lambda: "[^Worker]: Ready" in log_of(worker), 180)
        rss = [("start", rss_bytes(worker.process.pid))]
        started = time.monotonic()
        for name, part in (("first half", records[:half]), ("second half", records[half:])):
            futures = [producer.send(settings.mentions_topic, key=k, value=v) for k, v, _ in part]
            producer.flush(120)
            for future in futures:
                future.get(60)
            sent_so_far = half if name == "first half" else len(records)

            def ingested(n: int = sent_so_far) -> bool:
                return processed(worker, "ingest") >= n

            worker.wait(f"ingest to handle the {name}", ingested, 300, interval=0.5)
            rss.append((name, rss_bytes(worker.process.pid)))
        ingest_seconds = time.monotonic() - started
        worker.wait(
            "detect to apply every good event",
            lambda: processed(worker, "detect") >= len(good),
            180,
            interval=0.5,
        )
        metrics = worker.metrics()
        assert worker.alive(), worker.describe()
    finally:
        producer.close(10)
        code = kill_worker(worker, signal.SIGTERM)
    assert code == 0, worker.describe()

    letters = read_all(deployment.broker_list, settings.dead_letter_topic, timeout=120)
    kept = settings.limits.max_event_bytes
    expected = {value[:kept]: (kind, len(value)) for kind, value in bad}
    got: dict[bytes, list[Any]] = collections.defaultdict(list)
    for record in letters:
        got[record.value].append(record)
    wrong_reason = []
    for value, (kind, size) in expected.items():
        copies = got.get(value, [])
        assert len(copies) == 1, f"{kind}: {len(copies)} dead letters for {value[:80]!r}"
        headers = dict(copies[0].headers)
        if headers[REASON_HEADER].decode() != REASONS[kind]:
            wrong_reason.append((kind, headers[REASON_HEADER].decode(), value[:80]))
        assert headers["crisis-radar-original-bytes"] == str(size).encode()
        assert headers["crisis-radar-detail"]
        assert headers["crisis-radar-source"].startswith(f"{settings.mentions_topic}/".encode())
    assert wrong_reason == []
    assert len(letters) == len(bad)

    def total(name: str, **labels: str) -> float:
        return metrics.total(name, **labels)

    processed_total = "crisis_radar_mentions_processed_total"
    assert total(processed_total, stage="ingest", outcome="accepted") == len(good)
    assert total(processed_total, stage="ingest", outcome="rejected") == len(bad)
    assert total(processed_total, stage="detect", outcome="applied") == len(good)
    by_reason = collections.Counter(REASONS[kind] for kind, _ in bad)
    for reason, count in by_reason.items():
        assert total("crisis_radar_dead_letters_total", reason=reason) == count, reason
    # No state and no label for brands that were never accepted.
    states = latest_states(read_all(deployment.broker_list, deployment.changelog_topic))
    assert set(states) == set(brands)
    assert {s["mentions"] for s in states.values()} == {len(good) // GOOD_BRANDS}
    assert metrics.label_values("crisis_radar_brand_warming_up", "brand") <= set(brands)

    growth = rss[2][1] - rss[1][1]
    print(
        f"\nbad input at volume: {len(bad)} malformed events ({len(by_reason)} reason codes) "
        f"mixed into {len(good)} good ones; ingest handled all {len(records)} in "
        f"{ingest_seconds:.1f} s; dead letters {len(letters)} (each exactly once, right "
        f"reason, original bytes); good events applied "
        f"{total(processed_total, stage='detect', outcome='applied'):.0f}; brand states "
        f"{len(states)}; worker RSS "
        + ", ".join(f"{name} {value / 2**20:.0f} MiB" for name, value in rss)
        + f" (second half grew it by {growth / 2**20:.1f} MiB)",
        flush=True,
    )
    assert growth < MAX_RSS_GROWTH, rss
