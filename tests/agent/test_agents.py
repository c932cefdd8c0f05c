"""Agent tests: ``detect`` driven through Faust's ``agent.test_context()``, and ingest's
batch handler given the records its consumer would hand over.

Values are put on an in-memory channel; what the app would produce is read from the
``RecordingProducer`` (see conftest), state from the in-memory table, and counters from
the test's own Prometheus registry.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest

from detector.core import Position, step
from detector.sentiment import VaderScorer, from_wire
from detector.state import BrandState
from streams.app import REASON_HEADER, decode_state
from streams.scored import partition_of
from tests.agent.conftest import (
    BRAND,
    T0,
    TEST_SETTINGS,
    TEST_THRESHOLDS,
    Harness,
    input_record,
    make_harness,
    mention_bytes,
    scored_record,
    wait_until,
)

MENTIONS = TEST_SETTINGS.mentions_topic
SCORED = TEST_SETTINGS.scored_topic
ALERTS = TEST_SETTINGS.alerts_topic
DEAD_LETTER = TEST_SETTINGS.dead_letter_topic
ALERT_TYPE = "io.crisis-radar.alert.{kind}.{phase}.v1"


def brand_state(harness: Harness, brand: str = BRAND) -> dict[str, Any]:
    stored = harness.radar.table[brand]
    assert isinstance(stored, bytes), f"no state for {brand!r}: {stored!r}"
    return decode_state(stored)


def scored_mentions(harness: Harness) -> list[Any]:
    """The scored mentions of every record sent to the scored topic, in order."""
    return [wire for record in harness.sent(SCORED) for wire in record.json()["mentions"]]


def mentions_applied(harness: Harness, brand: str = BRAND) -> int:
    stored = harness.radar.table.get(brand)
    return 0 if stored is None else int(decode_state(stored)["mentions"])


# --------------------------------------------------------------------------------------
# ingest
# --------------------------------------------------------------------------------------


async def test_ingest_forwards_a_scored_mention_keyed_by_brand(
    harness: Harness, vader: VaderScorer
) -> None:
    text = "I love my new acme rocket, it is great!"
    await harness.radar.ingest([input_record(mention_bytes(text=text), key=b"Acme")])
    assert harness.processed("ingest", "accepted") == 1

    [record] = harness.sent(SCORED)
    # One record per batch and partition; the partition is the normalised brand's.
    assert record.partition == partition_of("acme", TEST_SETTINGS.partitions)
    [wire] = record.json()["mentions"]
    scored = from_wire(wire)
    assert scored.mention.id == "m-1"
    assert scored.mention.brand == "acme"
    assert scored.mention.created_at == T0 + 20
    assert scored.mention.author.followers == 1200
    assert scored.mention.engagement.reposts == 3
    assert scored.compound == pytest.approx(vader.compound(text))
    assert not scored.negative
    assert harness.processed("ingest", "rejected") == 0
    assert harness.sent(DEAD_LETTER) == []


async def test_ingest_output_is_accepted_by_detect(harness: Harness) -> None:
    raw = mention_bytes(text="this is the worst service ever")
    await harness.radar.ingest([input_record(raw, key=b"acme")])
    assert harness.processed("ingest", "accepted") == 1
    [record] = harness.sent(SCORED)

    # The scored topic carries JSON bytes, which the detect agent decodes itself.
    async with harness.radar.detect.test_context() as agent:
        await agent.put(record.value, partition=record.partition)
        await wait_until(lambda: mentions_applied(harness) == 1, "state of acme")

    state = brand_state(harness)
    assert state["brand"] == "acme"
    [bucket] = state["buckets"]
    assert (bucket["count"], bucket["negatives"]) == (1, 1)
    assert harness.processed("detect", "applied") == 1


async def test_a_replay_of_ingest_is_applied_once(harness: Harness) -> None:
    # Ingest crashed after forwarding an input record but before committing it, so the
    # record is read and forwarded again: two scored records, at two offsets of the
    # scored topic, carrying the same source position.
    raw = mention_bytes(text="this is the worst service ever")
    await harness.radar.ingest([input_record(raw, key=b"acme", offset=0)])
    await harness.radar.ingest([input_record(raw, key=b"acme", offset=0)])
    assert harness.processed("ingest", "accepted") == 2
    first, second = scored_mentions(harness)
    assert first["source_position"] == second["source_position"]

    async with harness.radar.detect.test_context() as agent:
        for record in harness.sent(SCORED):
            await agent.put(record.value, partition=record.partition)
        await wait_until(lambda: harness.processed("detect", "duplicate") == 1, "the replay")

    [bucket] = brand_state(harness)["buckets"]
    assert bucket["count"] == 1
    assert harness.processed("detect", "applied") == 1


async def test_ingest_interleaves_the_partitions_of_a_batch_by_event_time(
    harness: Harness,
) -> None:
    # Two input partitions, each handed over in a run of its own; partition 1 holds its
    # records out of event-time order, which must stay as it is (offset order).
    def record(partition: int, offset: int, second: float) -> Any:
        raw = mention_bytes(id=f"p{partition}-{offset}", created_at=T0 + second)
        return input_record(raw, key=b"acme", offset=offset, partition=partition)

    batch = [record(0, 0, 1), record(0, 1, 3), record(0, 2, 5)]
    batch += [record(1, 0, 2), record(1, 1, 6), record(1, 2, 4)]
    await harness.radar.ingest(batch)
    order = [wire["id"] for wire in scored_mentions(harness)]
    assert order == ["p0-0", "p1-0", "p0-1", "p0-2", "p1-1", "p1-2"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(b'{"id": "m-1", "brand": ', "invalid_json", id="truncated-json"),
        pytest.param(b"\xff\xfe not utf-8", "invalid_utf8", id="not-utf8"),
        pytest.param(b'["acme", "text"]', "not_an_object", id="json-array"),
        pytest.param(mention_bytes(text=None), "missing_field", id="no-text"),
        pytest.param(mention_bytes(created_at="yesterday"), "bad_timestamp", id="bad-time"),
    ],
)
async def test_ingest_dead_letters_bad_input_and_keeps_running(
    harness: Harness, raw: bytes, reason: str
) -> None:
    # Raises inside the test if the handler failed on the bad event.
    await harness.radar.ingest(
        [input_record(raw, key=b"acme", offset=0), input_record(mention_bytes(), b"acme", 1)]
    )
    assert harness.processed("ingest", "accepted") == 1

    assert harness.dead_letters(reason) == 1
    assert harness.processed("ingest", "rejected") == 1
    [dead] = harness.sent(DEAD_LETTER)
    assert dead.value == raw  # the original bytes, untouched
    assert dead.key == b"acme"
    assert dead.headers[REASON_HEADER] == reason.encode()
    assert dead.headers["crisis-radar-source"] == f"{MENTIONS}/0/0".encode()
    assert dead.headers["crisis-radar-detail"]
    assert len(scored_mentions(harness)) == 1  # only the good event went on


async def test_ingest_counts_every_dead_letter_reason_separately(harness: Harness) -> None:
    bad = [b"{", b"{", b"42", mention_bytes(brand="")]
    await harness.radar.ingest([input_record(raw, offset=i) for i, raw in enumerate(bad)])
    assert len(harness.sent(DEAD_LETTER)) == len(bad)

    assert harness.dead_letters("invalid_json") == 2
    assert harness.dead_letters("not_an_object") == 1
    assert harness.dead_letters("empty_field") == 1
    assert harness.dead_letters("too_large") == 0  # pre-created label, still zero
    assert harness.processed("ingest", "rejected") == len(bad)
    assert scored_mentions(harness) == []
    sources = [r.headers["crisis-radar-source"] for r in harness.sent(DEAD_LETTER)]
    assert sources == [f"{MENTIONS}/0/{offset}".encode() for offset in range(len(bad))]


# --------------------------------------------------------------------------------------
# detect
# --------------------------------------------------------------------------------------

WARMUP_BUCKETS = 4
PER_BUCKET = 2
SPIKE = 24


async def test_detect_learns_a_baseline_then_alerts_on_a_spike(harness: Harness) -> None:
    warm_up = [
        scored_record(b * PER_BUCKET + k, T0 + 60 * b + k, compound=0.5)
        for b in range(WARMUP_BUCKETS)
        for k in range(PER_BUCKET)
    ]
    spike_start = T0 + 60 * WARMUP_BUCKETS
    spike = [scored_record(len(warm_up) + k, spike_start + k, compound=0.0) for k in range(SPIKE)]
    warming = harness.sample("crisis_radar_brand_warming_up", brand=BRAND)

    async with harness.radar.detect.test_context() as agent:
        for record in warm_up[:PER_BUCKET]:
            await agent.put(record, key=BRAND.encode())
        await wait_until(lambda: mentions_applied(harness) == PER_BUCKET, "first bucket")
        warming = harness.sample("crisis_radar_brand_warming_up", brand=BRAND)
        for record in warm_up[PER_BUCKET:]:
            await agent.put(record, key=BRAND.encode())
        await wait_until(lambda: mentions_applied(harness) == len(warm_up), "warm-up")
        alerts_after_warm_up = list(harness.sent(ALERTS))
        for record in spike:
            await agent.put(record, key=BRAND.encode())
        await wait_until(lambda: mentions_applied(harness) == len(warm_up) + SPIKE, "the spike")

    assert warming == 1
    assert alerts_after_warm_up == []

    # The brand's state is in the table as the JSON bytes its changelog record carries.
    state = brand_state(harness)
    assert state["brand"] == BRAND
    assert state["baseline"]["buckets_seen"] == WARMUP_BUCKETS
    assert state["baseline"]["level"] == pytest.approx(PER_BUCKET)
    assert [e["kind"] for e in state["episodes"]] == ["virality"]
    assert state["positions"] == {"0": len(warm_up) + SPIKE - 1}
    changelog = harness.sent(harness.changelog_topic)
    assert 0 < len(changelog) <= len(warm_up) + SPIKE  # at most one write per brand and batch
    last_key = changelog[-1].key
    assert last_key is not None and json.loads(last_key) == BRAND
    assert decode_state(changelog[-1].value) == state

    # Opened when the window reached the opening factor, escalated at the critical one:
    # both lifecycle events of one alert.
    alerts = [r.json() for r in harness.sent(ALERTS)]
    assert [a["type"] for a in alerts] == [
        ALERT_TYPE.format(kind="virality", phase="opened"),
        ALERT_TYPE.format(kind="virality", phase="escalated"),
    ]
    assert all(r.key == BRAND.encode() for r in harness.sent(ALERTS))
    opened, escalated = alerts
    assert opened["specversion"] == "1.0"
    assert opened["source"] == TEST_SETTINGS.alert_source
    assert opened["subject"] == BRAND
    assert opened["data"]["alert_id"] == escalated["data"]["alert_id"]
    assert opened["id"] != escalated["id"]
    assert opened["data"]["severity"] == "warning"
    assert escalated["data"]["severity"] == "critical"
    assert opened["data"]["observed"]["count"] >= TEST_THRESHOLDS.virality_min_count
    # The sliding window spans the spike's bucket and part of the one before.
    assert PER_BUCKET <= opened["data"]["expected"]["count"] <= 2 * PER_BUCKET
    assert opened["data"]["window"] == {"start": "2023-11-14T22:17:00Z", "seconds": 60}
    assert opened["data"]["thresholds"]["warmup_buckets"] == TEST_THRESHOLDS.warmup_buckets

    def emitted(phase: str) -> float:
        return harness.sample(
            "crisis_radar_alerts_emitted_total", brand=BRAND, kind="virality", phase=phase
        )

    assert (emitted("opened"), emitted("escalated"), emitted("resolved")) == (1, 1, 0)
    assert harness.sample("crisis_radar_alert_open", brand=BRAND, kind="virality") == 1
    assert harness.sample("crisis_radar_brand_warming_up", brand=BRAND) == 0
    assert harness.sample("crisis_radar_brand_bucket_mentions", brand=BRAND) == SPIKE
    assert harness.processed("detect", "applied") == len(warm_up) + SPIKE


async def test_detect_skips_a_replayed_offset_without_changing_state(harness: Harness) -> None:
    records = [scored_record(i, T0 + i, compound=-0.6) for i in range(3)]
    async with harness.radar.detect.test_context() as agent:
        for record in records:  # offsets 0, 1, 2 of partition 0
            await agent.put(record, key=BRAND.encode())
        await wait_until(lambda: mentions_applied(harness) == 3, "three mentions")
        before = copy.deepcopy(brand_state(harness))
        changelog_writes = len(harness.sent(harness.changelog_topic))

        # Redeliver offsets 1 and 2, as a consumer does after a crash before its commit.
        agent.sent_offset = 1
        for record in records[1:]:
            await agent.put(record, key=BRAND.encode())
        await wait_until(lambda: harness.processed("detect", "duplicate") == 2, "duplicates")

    assert brand_state(harness) == before
    assert before["positions"] == {"0": 2}
    assert harness.processed("detect", "applied") == 3
    assert len(harness.sent(harness.changelog_topic)) == changelog_writes
    assert harness.sent(ALERTS) == []


async def test_detect_applies_the_same_offset_of_another_partition(harness: Harness) -> None:
    async with harness.radar.detect.test_context() as agent:
        await agent.put(scored_record(0, T0, 0.1), key=BRAND.encode(), partition=0)
        agent.sent_offset = 0
        await agent.put(scored_record(1, T0 + 1, 0.1), key=BRAND.encode(), partition=1)
        await wait_until(lambda: mentions_applied(harness) == 2, "both mentions")

    assert brand_state(harness)["positions"] == {"0": 0, "1": 0}
    assert harness.processed("detect", "duplicate") == 0


async def test_detect_keeps_one_state_per_brand(harness: Harness) -> None:
    async with harness.radar.detect.test_context() as agent:
        await agent.put(scored_record(0, T0, 0.3, brand="acme"), key=b"acme")
        await agent.put(scored_record(1, T0, -0.3, brand="globex"), key=b"globex")
        await agent.put(scored_record(2, T0 + 1, -0.3, brand="globex"), key=b"globex")
        await wait_until(lambda: mentions_applied(harness, "globex") == 2, "globex")

    assert mentions_applied(harness, "acme") == 1
    assert brand_state(harness, "globex")["buckets"][0]["negatives"] == 2


async def test_detect_dead_letters_an_unreadable_record_and_keeps_running(
    harness: Harness,
) -> None:
    async with harness.radar.detect.test_context() as agent:
        await agent.put({"brand": "acme", "compound": "very"}, key=b"acme")
        await agent.put(scored_record(0, T0, 0.2), key=b"acme")
        await wait_until(lambda: mentions_applied(harness) == 1, "the good record")

    assert harness.processed("detect", "corrupt") == 1
    assert harness.dead_letters("corrupt_internal") == 1
    [dead] = harness.sent(DEAD_LETTER)
    assert dead.headers[REASON_HEADER] == b"corrupt_internal"
    assert dead.headers["crisis-radar-source"] == f"{SCORED}/0/0".encode()


async def test_detect_batch_writes_each_brand_once_after_its_alerts(vader: VaderScorer) -> None:
    """One batch: every mention applied in order (a replayed offset inside the batch
    skipped), the alerts it decides sent, then each touched brand's state written once,
    equal to the state of applying the same mentions one at a time."""
    acme = [
        scored_record(b * PER_BUCKET + k, T0 + 60 * b + k, compound=0.5)
        for b in range(WARMUP_BUCKETS)
        for k in range(PER_BUCKET)
    ]
    spike_start = T0 + 60 * WARMUP_BUCKETS
    acme += [scored_record(len(acme) + k, spike_start + k, compound=0.0) for k in range(SPIKE)]
    # globex only in the spike's bucket: the partition clock ticks nobody for it.
    globex = [scored_record(100 + k, spike_start + k, -0.6, brand="globex") for k in range(3)]
    records = [(r, BRAND) for r in acme[:-1]] + [(r, "globex") for r in globex]
    records.append((acme[-1], BRAND))
    replayed = 2  # acme's third mention, read again inside the same batch
    settings = replace(TEST_SETTINGS, batch_size=len(records) + 1, batch_seconds=5)

    async with make_harness(settings, vader) as harness:
        async with harness.radar.detect.test_context() as agent:
            for record, brand in records:
                await agent.put(record, key=brand.encode(), wait=False)
            agent.sent_offset = replayed
            await agent.put(records[replayed][0], key=BRAND.encode(), wait=False)
            await wait_until(lambda: mentions_applied(harness) == len(acme), "the batch", 10)

        changelog = harness.sent(harness.changelog_topic)
        assert sorted(json.loads(r.key or b"") for r in changelog) == ["acme", "globex"]
        kinds = [r.topic for r in harness.producer.records]
        assert kinds.count(ALERTS) == 2  # opened and escalated
        last_alert = max(i for i, topic in enumerate(kinds) if topic == ALERTS)
        assert kinds.index(harness.changelog_topic) > last_alert  # alerts first, state second
        assert harness.processed("detect", "duplicate") == 1
        assert harness.processed("detect", "applied") == len(records)

        one_at_a_time: dict[str, BrandState | None] = {BRAND: None, "globex": None}
        for offset, (record, brand) in enumerate(records):
            scored = from_wire(record)
            state = one_at_a_time[brand]
            result = step(state, scored, TEST_THRESHOLDS, Position(0, offset))
            one_at_a_time[brand] = result.state
        for brand, state in one_at_a_time.items():
            assert state is not None
            assert brand_state(harness, brand) == state.to_dict()


async def test_detect_counts_the_brands_a_batch_creates_against_the_limit(
    vader: VaderScorer,
) -> None:
    """Brands created earlier in the same batch count toward ``max_brands``, although
    their states reach the table only when the batch ends."""
    brands = ["acme", "globex", "initech", "acme"]
    limits = replace(TEST_SETTINGS.limits, max_brands=2)
    settings = replace(TEST_SETTINGS, limits=limits, batch_size=len(brands), batch_seconds=5)
    async with make_harness(settings, vader) as harness:
        async with harness.radar.detect.test_context() as agent:
            for i, brand in enumerate(brands):
                await agent.put(scored_record(i, T0 + i, 0.1, brand=brand), wait=False)
            await wait_until(lambda: mentions_applied(harness) == 2, "the batch")

        assert mentions_applied(harness, "globex") == 1
        assert harness.radar.table.get("initech") is None
        assert harness.dead_letters("too_many_brands") == 1
        [dead] = harness.sent(DEAD_LETTER)
        assert dead.headers["crisis-radar-source"] == f"{MENTIONS}/0/2".encode()


async def test_detect_writes_changed_states_at_checkpoints_then_acknowledges(
    vader: VaderScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changed states stay in hand until a checkpoint writes them: when it is due, or
    when ``MAX_CHANGED_STATES`` of them have changed, also inside a record (one holds up
    to an ingest batch of mentions). An event is acknowledged only by the checkpoint
    after its batch, so its offset is never committed before its states are written."""
    import streams.app

    monkeypatch.setattr(streams.app, "MAX_CHANGED_STATES", 2)
    settings = replace(TEST_SETTINGS, checkpoint_seconds=60)
    brands = ["a", "b", "c", "d", "e", "a"]
    first = [
        {**scored_record(k, T0 + k, compound=0.2, brand=brand), "source_position": [0, k]}
        for k, brand in enumerate(brands)
    ]
    second = [
        {**scored_record(10 + k, T0 + 10 + k, compound=0.2, brand=brand)}
        for k, brand in enumerate(["f", "g"])
    ]

    async with make_harness(settings, vader) as harness:
        async with harness.radar.detect.test_context() as agent:
            to_message = agent.to_message

            def delivered(*args: Any, **kwargs: Any) -> Any:
                message = to_message(*args, **kwargs)
                message.incref()  # the reference Faust's conductor takes for the stream
                return message

            monkeypatch.setattr(agent, "to_message", delivered)
            one = await agent.put(json.dumps({"mentions": first}).encode(), partition=0)
            await wait_until(lambda: mentions_applied(harness, "a") == 2, "the first record")
            written = [json.loads(r.key or b"") for r in harness.sent(harness.changelog_topic)]
            assert written == brands  # two at a time
            assert not one.message.acked  # its batch ended after the last checkpoint

            two = await agent.put(json.dumps({"mentions": second}).encode(), partition=0)
            await wait_until(lambda: mentions_applied(harness, "g") == 1, "the second record")
            # The checkpoint inside the second batch covered it: acknowledged once its
            # writes are delivered.
            await wait_until(lambda: one.message.acked, "the first record acknowledged")
            assert not two.message.acked

        state = None
        for offset, wire in enumerate(first):
            if wire["brand"] == "a":
                state = step(state, from_wire(wire), TEST_THRESHOLDS, Position(0, offset)).state
        assert state is not None
        assert brand_state(harness, "a") == state.to_dict()


async def test_detect_keeps_decoded_states_between_batches_while_the_table_agrees(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import streams.app

    decoded: list[Any] = []
    load_state = streams.app._load_state

    def counting(stored: Any, brand: str) -> Any:
        if stored is not None:
            decoded.append(stored)
        return load_state(stored, brand)

    monkeypatch.setattr(streams.app, "_load_state", counting)
    async with harness.radar.detect.test_context() as agent:
        for i in range(3):  # one batch each
            await agent.put(scored_record(i, T0 + i, compound=-0.6), key=BRAND.encode())
            await wait_until(lambda i=i: mentions_applied(harness) == i + 1, f"mention {i}")
        assert decoded == []  # the state written by a batch is what the next one took

        # A new value in the table (as a rebalance's recovery puts there) is read afresh.
        state = brand_state(harness)
        state["mentions"] = 100
        harness.radar.table.data[BRAND] = json.dumps(state).encode()
        await agent.put(scored_record(3, T0 + 3, compound=-0.6), key=BRAND.encode())
        await wait_until(lambda: mentions_applied(harness) == 101, "the fourth mention")
    assert len(decoded) == 1
    assert brand_state(harness)["positions"] == {"0": 3}
