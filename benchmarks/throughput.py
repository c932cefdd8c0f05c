"""Throughput benchmark of one worker process on the embedded broker (run by hand, not in CI).

    python -m benchmarks.throughput [--mentions 100000] [--brands 200] [--workers 1,2]
        [--rate 5000] [--brand-count 10000] [--out-dir DIR] [--profile DIR]

One run starts its own embedded Tansu broker and real worker processes
(``python -m streams.cli worker``, configured like the integration tests) and measures:

1. baselines over the very texts of the corpus: the bare VADER loop
   (``SentimentIntensityAnalyzer().polarity_scores``), the same scoring each distinct text
   once, the raw aiokafka consume rate of the pre-loaded topic, a minimal one-process
   pipeline (aiokafka + ``json.loads`` + VADER + a count per brand), and the cost of the
   brand state's serialisation;
2. end to end: N simulated mentions (~30 % reposts repeating an earlier text of the brand
   exactly, brands of Zipf-distributed sizes, a firehose of ``--event-rate`` per event
   second) pre-loaded into the mentions topic; every brand's state, with a day of history
   at its rate, written into the table's changelog; then one (or two) worker processes
   started on it and timed until the detect agent has handled all N
   (``crisis_radar_mentions_processed_total{stage="detect"}``); worker CPU time and peak
   RSS (``VmHWM`` of ``/proc/PID/status``); optionally a py-spy profile, ranked;
3. latency: a fresh worker with warm brands is offered mentions at a fixed rate with
   ``created_at`` = now. Per mention: the producer's timestamp (offer), ``ingested_at``
   carried on the scored topic (ingest), and the timestamp of the brand-state changelog
   record written after it (decision), joined by the mention's source position;
4. memory: peak RSS of one worker whose table holds ``--brand-count`` warm brands.

Progress goes to stderr, the report to stdout, and with ``--out-dir`` the figures to
``throughput.json``. The machine matters: the broker, the workers and this script share
its cores, and ``docs/performance.md`` records the figures with the machine they came from.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from streams import scored as scored_batch
from streams.kafka_util import EMBEDDED_ENV, EmbeddedBroker, ensure_topics, free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_TABLE = "brand-state"  # streams.app.STATE_TABLE (not imported: keeps Faust out)
DETECTED = "crisis_radar_mentions_processed_total"
GOAL_VADER_RATIO = 1.5
GOAL_P99_SECONDS = 1.0
GOAL_RSS_MB = 250.0
WORKER_START_TIMEOUT = 180.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the mention corpus ----------------------------------------------------------------------

_STEMS = (
    "acme", "north", "globex", "umbra", "initech", "vertex", "hooli", "stark", "wayne", "tyrell",
    "soylent", "cyber", "oscorp", "wonka", "aperture", "gringott", "monarch", "pied", "vandelay",
    "dunder", "sirius", "nakatomi", "zorg", "omni", "massive", "bluth", "krusty", "sterling",
    "prestige", "virtucon", "yoyodyne", "weyland", "ollivander", "duff", "nimbus", "polar",
)  # fmt: skip
_SECTORS = (
    ("air", "flight"), ("bank", "card"), ("mobile", "phone"), ("foods", "snack"),
    ("motors", "car"), ("energy", "bill"), ("stream", "subscription"), ("wear", "jacket"),
    ("home", "sofa"), ("rail", "train"), ("tech", "laptop"), ("mart", "delivery"),
)  # fmt: skip
_CITIES = ("Lisbon", "Denver", "Osaka", "Leeds", "Lyon", "Austin", "Porto", "Graz", "Turin")
_OPENERS = (
    "", "", "", "", "Honestly, ", "Update: ", "PSA: ", "So ", "Ok so ", "Wow. ", "Ugh, ",
    "Day {n}: ", "Again?! ", "Quick one: ", "Hey ",
)  # fmt: skip
_POSITIVE = (
    "@{handle} the new {product} is brilliant, setup took two minutes",
    "huge thanks to the @{handle} team in {city} for sorting my {product} so fast",
    "really impressed with @{handle} today, friendly and helpful staff",
    "my {product} from @{handle} arrived early and works perfectly",
    "@{handle} customer care just fixed everything in one call, great job",
    "loving the @{handle} {product}, best purchase this year",
    "shoutout to @{handle} for the refund, quick and painless",
    "@{handle} nailed it with the {product} update, so much smoother now",
)  # fmt: skip
_NEUTRAL = (
    "does anyone know if @{handle} ships the {product} to {city}?",
    "@{handle} what are the opening hours in {city} on Sunday",
    "comparing the {product} from @{handle} with the other options",
    "just got an email from @{handle} about my {product} order {n}",
    "reading the @{handle} terms for the {product} before I decide",
    "@{handle} is the {product} plan changing next month",
    "waiting at the @{handle} counter in {city}, queue number {n}",
    "@{handle} how do I change the address on order {n}",
)  # fmt: skip
_NEGATIVE = (
    "@{handle} my {product} stopped working after two days, terrible support",
    "worst experience ever with @{handle}, still waiting for a refund on order {n}",
    "@{handle} charged me twice and nobody answers the phone. unacceptable",
    "so disappointed with the {product} from @{handle}, awful quality",
    "@{handle} cancelled again without notice, I am furious",
    "never buying from @{handle} again, what a horrible mess in {city}",
    "@{handle} hour {n} on hold. this is a joke",
    "@{handle} the {product} is broken and the app keeps crashing, useless",
)  # fmt: skip
_CLOSERS = (
    "", "", "", "", "!", "!!", ".", " #fail", " #help", " thanks!", " lol", " :(", " :)",
    " 🙄", " 😡", " 🙏", " 👍", " cc @{friend}", " ref {n}", " smh", " wtf", " 10/10",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    handle: str
    product: str
    negative_share: float


def make_brands(count: int, rng: random.Random) -> list[Brand]:
    brands = []
    for i in range(count):
        stem = _STEMS[i % len(_STEMS)]
        sector, product = _SECTORS[(i // len(_STEMS)) % len(_SECTORS)]
        suffix = "" if i < len(_STEMS) * len(_SECTORS) else str(i)
        name = f"{stem}-{sector}{suffix}"
        handle = f"{stem.title()}{sector.title()}{suffix}"
        brands.append(Brand(name, handle, product, rng.uniform(0.08, 0.25)))
    return brands


def brand_weights(count: int, exponent: float = 1.0) -> list[float]:
    """Zipf-like sizes: the i-th brand is mentioned ~1/i^exponent as often as the first."""
    return [1.0 / (i + 1) ** exponent for i in range(count)]


def compose_text(brand: Brand, rng: random.Random) -> str:
    """A short original post about ``brand``; numbers and closers make most originals
    distinct, as they are in a real stream."""
    roll = rng.random()
    if roll < brand.negative_share:
        templates = _NEGATIVE
    elif roll < brand.negative_share + 0.4:
        templates = _POSITIVE
    else:
        templates = _NEUTRAL
    fill = {
        "handle": brand.handle,
        "product": brand.product,
        "city": rng.choice(_CITIES),
        "n": rng.randrange(2, 99_999),
        "friend": f"user{rng.randrange(1, 9999)}",
    }
    text = rng.choice(_OPENERS) + rng.choice(templates) + rng.choice(_CLOSERS)
    text = text.format(**fill)
    return text[0].upper() + text[1:]


@dataclass
class Corpus:
    """Mention events (input contract, ``created_at`` in epoch seconds until encoded)."""

    events: list[dict[str, Any]]
    brands: list[Brand]
    reposts: int
    start: float
    span_seconds: float

    @property
    def texts(self) -> list[str]:
        return [e["text"] for e in self.events]

    def describe(self) -> dict[str, Any]:
        texts = self.texts
        per_brand = Counter(e["brand"] for e in self.events)
        sizes = sorted(per_brand.values(), reverse=True)
        return {
            "mentions": len(self.events),
            "brands": len(self.brands),
            "brands_mentioned": len(per_brand),
            "largest_brand_share": round(sizes[0] / len(texts), 4) if sizes else 0.0,
            "repost_share": round(self.reposts / max(1, len(texts)), 4),
            "distinct_texts": len(set(texts)),
            "mean_text_chars": round(sum(map(len, texts)) / max(1, len(texts)), 1),
            "event_seconds": round(self.span_seconds, 1),
            "event_rate": round(len(texts) / self.span_seconds, 1) if self.span_seconds else 0,
        }

    def records(self) -> list[tuple[bytes, bytes]]:
        """(key, value) records, ``created_at`` as ISO-8601."""
        out = []
        for event in self.events:
            wire = dict(event)
            wire["created_at"] = iso(event["created_at"])
            out.append((event["brand"].encode(), json.dumps(wire).encode()))
        return out


def generate(
    n: int,
    brand_count: int,
    *,
    seed: int,
    start: float,
    span_seconds: float,
    repost_share: float = 0.3,
    floor_per_brand: int = 0,
    exponent: float = 1.0,
) -> Corpus:
    """``n`` mentions of ``brand_count`` brands over ``span_seconds`` of event time from
    ``start``, in event-time order. Each brand gets at least ``floor_per_brand`` (spread over
    the span), the rest is drawn by Zipf-like brand size. A share ``repost_share`` repeats
    an earlier text of the same brand exactly (a repost)."""
    rng = random.Random(seed)
    brands = make_brands(brand_count, rng)
    floor = min(floor_per_brand, n // max(1, brand_count))
    picks = [b for b in range(brand_count) for _ in range(floor)]
    picks += rng.choices(range(brand_count), brand_weights(brand_count, exponent), k=n - len(picks))
    times = sorted(start + rng.random() * span_seconds for _ in picks)
    rng.shuffle(picks)
    recent: dict[int, list[dict[str, Any]]] = defaultdict(list)
    events: list[dict[str, Any]] = []
    reposts = 0
    serial = Counter[int]()
    for at, b in zip(times, picks, strict=True):
        brand = brands[b]
        serial[b] += 1
        mention_id = f"{brand.name}-{serial[b]}"
        author = {"id": f"u{rng.randrange(1, 2_000_000)}", "followers": 0}
        history = recent[b]
        if history and rng.random() < repost_share:
            # Recent posts are reposted more than old ones.
            original = history[-1 - min(len(history) - 1, int(rng.expovariate(0.2)))]
            author["followers"] = int(rng.lognormvariate(5.0, 1.5))
            event = {
                "id": mention_id,
                "brand": brand.name,
                "text": original["text"],
                "created_at": at,
                "platform": original["platform"],
                "lang": "en",
                "author": author,
                "engagement": {"reposts": 0, "likes": 0, "replies": 0},
                "repost_of": original["id"],
            }
            reposts += 1
        else:
            author["followers"] = int(rng.lognormvariate(5.5, 1.6))
            event = {
                "id": mention_id,
                "brand": brand.name,
                "text": compose_text(brand, rng),
                "created_at": at,
                "platform": rng.choice(("x", "bluesky", "mastodon", "threads")),
                "lang": "en",
                "author": author,
                "engagement": {
                    "reposts": int(rng.lognormvariate(0.5, 1.2)),
                    "likes": int(rng.lognormvariate(1.5, 1.3)),
                    "replies": int(rng.lognormvariate(0.2, 1.0)),
                },
            }
            history.append(event)
            del history[:-200]
        events.append(event)
    return Corpus(events, brands, reposts, start, span_seconds)


def iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")


# --- baselines -------------------------------------------------------------------------------


def vader_loop(texts: Sequence[str], keep: dict[str, float] | None = None) -> float:
    """Seconds the bare VADER loop takes over ``texts`` (``keep`` collects the compound
    score of each text)."""
    analyzer = SentimentIntensityAnalyzer()
    started = time.perf_counter()
    if keep is None:
        for text in texts:
            analyzer.polarity_scores(text)
    else:
        for text in texts:
            keep[text] = analyzer.polarity_scores(text)["compound"]
    return time.perf_counter() - started


async def _consume(
    brokers: str, topic: str, n: int, handle: Callable[[bytes], None] | None
) -> float:
    """Seconds to read ``n`` records of ``topic`` from the beginning with aiokafka
    (``getmany`` batches, no consumer group), calling ``handle`` on each value."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=brokers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions:
            await asyncio.sleep(0.1)
            await consumer._client.force_metadata_update()  # noqa: SLF001
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        count = 0
        started = time.perf_counter()
        while count < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            for records in batches.values():
                count += len(records)
                if handle is not None:
                    for record in records:
                        handle(record.value)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def raw_consume(brokers: str, topic: str, n: int) -> float:
    return asyncio.run(_consume(brokers, topic, n, None))


def minimal_pipeline(brokers: str, topic: str, n: int) -> float:
    """aiokafka + json.loads + VADER + count per brand (negatives too), in one process."""
    analyzer = SentimentIntensityAnalyzer()
    counts: Counter[str] = Counter()
    negatives: Counter[str] = Counter()

    def handle(value: bytes) -> None:
        event = json.loads(value)
        brand = event["brand"]
        counts[brand] += 1
        if analyzer.polarity_scores(event["text"])["compound"] <= -0.05:
            negatives[brand] += 1

    return asyncio.run(_consume(brokers, topic, n, handle))


# --- broker, producer, workers ---------------------------------------------------------------


def preload(
    brokers: str, topic: str, records: Sequence[tuple[bytes, bytes]], partitions: int
) -> tuple[int, float]:
    """Write records, keyed as Faust and Kafka's default partitioner key them, as fast as
    the producer batches them; return (count, seconds).

    The embedded broker answers a wrong end offset for a partition whose last write was
    a multi-record batch (see DESIGN.md), and consumers then miss the rest of that batch.
    So the last record of every partition is written alone, in a batch of its own."""
    from aiokafka.partitioner import DefaultPartitioner

    choose = DefaultPartitioner()
    all_partitions = list(range(partitions))
    placed = [(choose(key, all_partitions, all_partitions), key, value) for key, value in records]
    last = {partition: i for i, (partition, _, _) in enumerate(placed)}
    tail = set(last.values())
    started = time.perf_counter()
    for batch_size, chosen in ((512 * 1024, False), (16, True)):
        producer = KafkaProducer(
            bootstrap_servers=brokers,
            acks=1,
            linger_ms=20 if not chosen else 0,
            batch_size=batch_size,
            max_request_size=8 * 1024 * 1024,
            client_id="crisis-radar-bench-preload",
        )
        try:
            futures = [
                producer.send(topic, key=key, value=value, partition=partition)
                for i, (partition, key, value) in enumerate(placed)
                if (i in tail) == chosen
            ]
            producer.flush(300)
            for future in futures:
                future.get(60)
        finally:
            producer.close(10)
    return len(placed), time.perf_counter() - started


@dataclass
class Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def total(self, name: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(v for (n, lab), v in self.samples.items() if n == name and wanted <= lab)

    def buckets(self, name: str) -> list[tuple[float, float]]:
        """(upper bound, cumulative count) of a histogram, ascending."""
        rows = [
            (float(dict(lab)["le"]), v)
            for (n, lab), v in self.samples.items()
            if n == f"{name}_bucket"
        ]
        return sorted(rows)


def scrape(port: int, timeout: float = 5.0) -> Scrape:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - loopback
        text = answer.read().decode("utf-8")
    return Scrape(
        {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
    )


def histogram_quantile(
    before: list[tuple[float, float]], after: list[tuple[float, float]], q: float
) -> float | None:
    """Prometheus-style quantile (linear inside a bucket) of the observations between two
    scrapes of a histogram; None without observations, inf beyond the last finite bound."""
    start = dict(before)
    rows = [(le, count - start.get(le, 0.0)) for le, count in after]
    total = rows[-1][1] if rows else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le, cumulative in rows:
        if cumulative >= rank:
            if math.isinf(le):
                return math.inf
            inside = cumulative - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, cumulative
    return math.inf


def proc_status(pid: int, key: str) -> int | None:
    """A ``kB`` value of /proc/PID/status (e.g. VmHWM, the peak RSS), in bytes."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_times(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of a process so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far."""
    times = cpu_times(pid)
    return None if times is None else sum(times)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def scrape(self) -> Scrape:
        if not self.alive():
            raise RuntimeError(
                f"worker {self.pid} exited with code {self.process.returncode}; "
                f"log {self.log_path}:\n{self.log_tail()}"
            )
        return scrape(self.port)


class Stalled(TimeoutError):
    """The workers stopped making progress; ``samples`` are the (time, count) polls."""

    def __init__(self, message: str, samples: list[tuple[float, float]]) -> None:
        super().__init__(message)
        self.samples = samples


# A run that stalls this close to the end is timed up to its last progress and reported
# with the number of mentions that never arrived (see docs/performance.md).
NEARLY_ALL = 0.99


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when this benchmark's process dies, so that a
    killed benchmark leaves no worker behind (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _stop_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@dataclass
class Run:
    """Worker processes of one consumer group (one app id) and their topics."""

    app_id: str
    mentions_topic: str
    partitions: int
    workers: list[WorkerProcess] = field(default_factory=list)
    # Worker environment on top of the embedded broker's settings (e.g. the producer's
    # batch size); set for the whole benchmark run from the command line.
    extra_env: ClassVar[dict[str, str]] = {}
    stall_seconds: ClassVar[float] = 60.0

    @property
    def scored_topic(self) -> str:
        return f"{self.app_id}-scored-mentions"

    @property
    def changelog_topic(self) -> str:
        return f"{self.app_id}-{STATE_TABLE}-changelog"

    def env(self, broker: EmbeddedBroker, data_dir: Path, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_RADAR_")}
        env.update(EMBEDDED_ENV)
        env.update(
            {
                "CRISIS_RADAR_BROKERS": broker.address,
                "CRISIS_RADAR_APP_ID": self.app_id,
                "CRISIS_RADAR_MENTIONS_TOPIC": self.mentions_topic,
                "CRISIS_RADAR_ALERTS_TOPIC": f"{self.app_id}-alerts",
                "CRISIS_RADAR_DEAD_LETTER_TOPIC": f"{self.app_id}-dead-letters",
                "CRISIS_RADAR_PARTITIONS": str(self.partitions),
                "CRISIS_RADAR_WEB_PORT": str(port),
                "CRISIS_RADAR_DATA_DIR": str(data_dir),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, broker: EmbeddedBroker, run_dir: Path, count: int) -> None:
        for i in range(count):
            port = free_port()
            log_path = run_dir / f"{self.app_id}-worker{i}.log"
            with log_path.open("ab") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", "streams.cli", "worker"],
                    env=self.env(broker, run_dir / f"{self.app_id}-data{i}", port),
                    cwd=REPO_ROOT,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_terminate_with_parent,
                )
            self.workers.append(WorkerProcess(process, port, log_path))

    def wait_up(self, timeout: float = WORKER_START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            while True:
                try:
                    worker.scrape()
                    break
                except (OSError, ValueError) as exc:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"worker {worker.pid} not up: {exc}") from exc
                    time.sleep(0.2)

    def detected(self) -> list[float]:
        """Mentions each worker's detect agent has handled (any outcome). A worker whose
        web server does not answer for a moment (start-up, a rebalance) is asked again;
        a worker that has exited raises."""
        counts = []
        for worker in self.workers:
            for attempt in range(50):
                try:
                    counts.append(worker.scrape().total(DETECTED, stage="detect"))
                    break
                except (OSError, ValueError):
                    if attempt == 49:
                        raise
                    time.sleep(0.2)
        return counts

    def wait_detected(
        self, n: int, timeout: float, interval: float = 1.0
    ) -> list[tuple[float, float]]:
        """Poll until the workers' detect agents have handled ``n`` mentions in all;
        return the (wall time, total) samples taken. (A scrape of /metrics costs the
        worker several milliseconds: polling more often slows down what it measures.)"""
        samples: list[tuple[float, float]] = []
        deadline = time.monotonic() + timeout
        last_report = last_change = time.monotonic()
        while True:
            total = sum(self.detected())
            now = time.time()
            if samples and total != samples[-1][1]:
                last_change = time.monotonic()
            samples.append((now, total))
            if total >= n:
                return samples
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {total:.0f} of {n} mentions detected in {timeout} s")
            if time.monotonic() - last_change > self.stall_seconds:
                raise Stalled(
                    f"stalled at {total:.0f} of {n} mentions: no progress for "
                    f"{self.stall_seconds:.0f} s",
                    samples,
                )
            if time.monotonic() - last_report > 10:
                log(f"  {total:,.0f} / {n:,} detected")
                last_report = time.monotonic()
            time.sleep(interval)

    def diagnose(self, brokers: str) -> str:
        """What each worker has done and holds, and the group's committed offsets: for a
        run that did not finish."""
        lines = [f"run {self.app_id}:"]
        for worker in self.workers:
            try:
                metrics = worker.scrape()
            except (OSError, ValueError, RuntimeError) as exc:
                lines.append(f"  worker {worker.pid}: {exc}")
                continue
            done = {
                f"{dict(lab).get('stage')}/{dict(lab).get('outcome')}": v
                for (name, lab), v in metrics.samples.items()
                if name == DETECTED
            }
            lag = sorted(
                (dict(lab)["topic"], int(dict(lab)["partition"]), int(v))
                for (name, lab), v in metrics.samples.items()
                if name == "crisis_radar_consumer_lag_records"
            )
            lines.append(f"  worker {worker.pid} (log {worker.log_path}): {done}; lag {lag}")
        try:
            from kafka import KafkaConsumer
            from kafka import TopicPartition as KafkaTopicPartition

            # Committed offsets of the group, asked without joining it.
            consumer = KafkaConsumer(
                bootstrap_servers=[brokers], group_id=self.app_id, enable_auto_commit=False
            )
            try:
                tps = [KafkaTopicPartition(self.mentions_topic, p) for p in range(self.partitions)]
                ends = consumer.end_offsets(tps)
                rows = [(tp.partition, consumer.committed(tp), ends[tp]) for tp in tps]
            finally:
                consumer.close()
            lines.append(f"  {self.mentions_topic}: (partition, committed, end offset) {rows}")
        except Exception as exc:  # noqa: BLE001 - diagnostics must not hide the failure
            lines.append(f"  committed offsets unavailable: {exc!r}")
        return "\n".join(lines)

    def stop(self) -> None:
        for worker in self.workers:
            stop_process(worker.process, timeout=20)


# --- warm brand states --------------------------------------------------------------------
#
# A brand is judged only after ``warmup_buckets`` buckets, and in a live firehose its state
# holds a learned day profile, open buckets with samples, and the baseline of its usual
# volume. Replaying a day of mentions per brand would take hours, so each run writes such
# states straight into the worker's table changelog before the worker starts (the worker
# restores its table from there): a day of buckets per brand, counted at the brand's rate
# in the corpus, built with the detection core's ``step_counts``. Brands of similar rate
# and negative share share one simulated history.


@dataclass(frozen=True, slots=True)
class BrandRate:
    per_bucket: float  # mentions per bucket
    negative_share: float
    weight: float  # mean reach weight of a mention
    reach: float  # mean reach of a mention


def brand_rates(
    corpus: Corpus, compounds: dict[str, float], bucket_seconds: int, scale: float = 1.0
) -> dict[str, BrandRate]:
    """Each brand's volume per bucket (times ``scale``), negative share and reach in the
    corpus; ``compounds`` maps texts to their VADER compound."""
    counts: Counter[str] = Counter()
    negatives: Counter[str] = Counter()
    weights: defaultdict[str, float] = defaultdict(float)
    reaches: Counter[str] = Counter()
    for event in corpus.events:
        brand = event["brand"]
        counts[brand] += 1
        if compounds.get(event["text"], 0.0) <= -0.05:
            negatives[brand] += 1
        followers = event["author"]["followers"]
        reposts = event["engagement"]["reposts"]
        weights[brand] += 1.0 + math.log10(1 + followers) / 3.0 + math.log10(1 + reposts) / 3.0
        reaches[brand] += max(1, followers)
    buckets = max(corpus.span_seconds, 1.0) / bucket_seconds
    return {
        brand: BrandRate(
            per_bucket=n / buckets * scale,
            negative_share=negatives[brand] / n,
            weight=weights[brand] / n,
            reach=reaches[brand] / n,
        )
        for brand, n in counts.items()
    }


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def warm_states(
    rates: dict[str, BrandRate], end: float, buckets: int, seed: int, rate_step: float = 0.2
) -> tuple[dict[str, Any], int]:
    """Brand states (``to_dict`` values) after ``buckets`` buckets of calm history ending
    at ``end`` (a bucket boundary); returns them and the number of histories simulated."""
    from config.settings import load_settings
    from detector.core import Counts, step_counts

    thresholds = load_settings({}).thresholds
    classes: dict[tuple[int, int], list[str]] = defaultdict(list)
    for brand, rate in rates.items():
        key = (
            round(math.log(max(rate.per_bucket, 0.01)) / rate_step),
            round(rate.negative_share * 20),
        )
        classes[key].append(brand)
    states: dict[str, Any] = {}
    for number, members in enumerate(classes.values()):
        t = thresholds.for_brand(members[0])
        bs = t.bucket_seconds
        mean = sum(rates[b].per_bucket for b in members) / len(members)
        share = sum(rates[b].negative_share for b in members) / len(members)
        weight = sum(rates[b].weight for b in members) / len(members)
        reach = sum(rates[b].reach for b in members) / len(members)
        rng = random.Random(seed * 7919 + number)
        state = None
        first = int(end // bs) - buckets
        for i in range(buckets):
            count = _poisson(rng, mean)
            spread = math.sqrt(max(count * share * (1 - share), 0.0))
            bad = min(count, max(0, round(count * share + rng.gauss(0.0, spread))))
            counts = Counts(
                (first + i) * bs,
                count,
                negatives=bad,
                volume=count * weight,
                reach=int(count * reach),
            )
            state = step_counts(state, members[0], counts, t).state
        assert state is not None
        for brand in members:
            own = state.copy()
            own.brand = brand
            states[brand] = own.to_dict()
    return states, len(classes)


def seed_table(brokers: str, run: Run, states: dict[str, Any]) -> float:
    """Write brand states into the run's table changelog as the worker writes them, in the
    partition the worker will use for each brand (that of the brand's key on the scored
    topic), one record per producer batch (the embedded broker's end offsets are only
    right that way). Returns the seconds it took."""
    from aiokafka.partitioner import DefaultPartitioner

    from streams.app import encode_state_value

    ensure_topics(
        [brokers], {run.changelog_topic: run.partitions, run.scored_topic: run.partitions}
    )
    partitioner = DefaultPartitioner()
    partitions = list(range(run.partitions))
    producer = KafkaProducer(
        bootstrap_servers=brokers,
        acks=1,
        linger_ms=0,
        batch_size=16,
        max_request_size=8 * 1024 * 1024,
        client_id="crisis-radar-bench-seed",
    )
    started = time.perf_counter()
    try:
        futures = [
            producer.send(
                run.changelog_topic,
                key=json.dumps(brand).encode(),
                value=encode_state_value(state),
                partition=partitioner(brand.encode(), partitions, partitions),
            )
            for brand, state in states.items()
        ]
        producer.flush(300)
        for future in futures:
            future.get(60)
    finally:
        producer.close(10)
    return time.perf_counter() - started


def prepare_run(
    broker: EmbeddedBroker,
    run: Run,
    rates: dict[str, BrandRate],
    end: float,
    history_buckets: int,
    seed: int,
) -> dict[str, Any]:
    started = time.perf_counter()
    states, histories = warm_states(rates, end, history_buckets, seed)
    simulated = time.perf_counter() - started
    written = seed_table(broker.address, run, states)
    sizes = [len(json.dumps(state, separators=(",", ":"))) for state in states.values()]
    sample = list(states.values())[:: max(1, len(states) // 50)]
    python_bytes = [deep_size(json.loads(json.dumps(state))) for state in sample]
    log(
        f"  {len(states):,} warm brand states ({histories} simulated histories of "
        f"{history_buckets} buckets, {simulated:.1f} s), written in {written:.1f} s"
    )
    return {
        "brands": len(states),
        "histories": histories,
        "history_buckets": history_buckets,
        "mean_state_json_bytes": round(sum(sizes) / max(1, len(sizes))),
        # What the worker's memory store holds per brand (the decoded JSON value).
        "mean_state_python_bytes": round(sum(python_bytes) / max(1, len(python_bytes))),
    }


# --- phase 2: end-to-end throughput ----------------------------------------------------------


@dataclass
class Throughput:
    workers: int
    mentions: int
    seconds: float
    startup_seconds: float
    rate: float
    worker_cpu_seconds: list[float]
    worker_system_cpu_seconds: list[float]
    broker_cpu_seconds: float
    peak_rss_bytes: list[int]
    detected_per_worker: list[float]
    missing: int = 0  # mentions never detected (the run stalled just before the end)
    seeded: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def wait_for_first(run: Run, timeout: float) -> float:
    """Wait until the run's workers have detected a mention; return how many they have."""
    deadline = time.monotonic() + timeout
    while True:
        count = sum(run.detected())
        if count > 0:
            return count
        if time.monotonic() > deadline:
            raise TimeoutError(f"no mention detected {timeout:.0f} s after start-up")
        time.sleep(0.05)


def finish_time(samples: list[tuple[float, float]], n: int) -> float:
    """When the count reached ``n``, interpolated between the last two polls."""
    done_time, done_count = samples[-1]
    if len(samples) < 2:
        return done_time
    before_time, before_count = samples[-2]
    if done_count <= before_count:
        return done_time
    share = (n - before_count) / (done_count - before_count)
    return before_time + share * (done_time - before_time)


def measure_throughput(
    broker: EmbeddedBroker,
    run_dir: Path,
    topic: str,
    n: int,
    workers: int,
    partitions: int,
    timeout: float,
    prepare: Callable[[Run], dict[str, Any]] | None = None,
    profile_dir: Path | None = None,
) -> Throughput:
    """Start ``workers`` worker processes of a new consumer group on ``topic`` (after
    ``prepare``, which seeds the table) and time them until ``n`` mentions are detected."""
    run = Run(f"bench-{workers}w-{uuid.uuid4().hex[:8]}", topic, partitions)
    seeded = prepare(run) if prepare is not None else None
    broker_cpu = cpu_seconds(broker.process.pid) if broker.process else None
    launched = time.time()
    run.start(broker, run_dir, workers)
    profiler: subprocess.Popen[bytes] | None = None
    try:
        run.wait_up()
        # Wait for the first processed mention: group join, topic creation and table
        # recovery are start-up, not throughput.
        first_count = wait_for_first(run, WORKER_START_TIMEOUT)
        first_time = time.time()
        cpu_start = [cpu_seconds(w.pid) or 0.0 for w in run.workers]
        system_start = [(cpu_times(w.pid) or (0.0, 0.0))[1] for w in run.workers]
        if profile_dir is not None:
            profiler = start_profiler(run.workers[0].pid, profile_dir / "worker.pyspy.txt")
        missing = 0
        try:
            samples = run.wait_detected(n, timeout)
            done_time, done_count = finish_time(samples, n), float(n)
        except Stalled as stall:
            log(run.diagnose(broker.address))
            done_count = stall.samples[-1][1]
            if done_count < NEARLY_ALL * n:
                raise
            # Timed to the first poll that saw the final count.
            done_time = next(t for t, c in stall.samples if c == done_count)
            missing = int(n - done_count)
            log(f"  {missing} mentions never arrived; timed up to the last progress")
        except TimeoutError:
            log(run.diagnose(broker.address))
            raise
        cpu_end = [cpu_seconds(w.pid) or 0.0 for w in run.workers]
        system_end = [(cpu_times(w.pid) or (0.0, 0.0))[1] for w in run.workers]
        profile = None
        if profiler is not None:
            stop_profiler(profiler)
            profiler = None
            assert profile_dir is not None
            profile = summarise_profile(profile_dir / "worker.pyspy.txt")
        rss = [proc_status(w.pid, "VmHWM") or 0 for w in run.workers]
        per_worker = run.detected()
        broker_end = cpu_seconds(broker.process.pid) if broker.process else None
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        run.stop()
    seconds = done_time - first_time
    return Throughput(
        workers=workers,
        mentions=n,
        seconds=round(seconds, 3),
        startup_seconds=round(first_time - launched, 2),
        rate=round((done_count - first_count) / seconds, 1) if seconds > 0 else 0.0,
        missing=missing,
        worker_cpu_seconds=[round(b - a, 2) for a, b in zip(cpu_start, cpu_end, strict=True)],
        worker_system_cpu_seconds=[
            round(b - a, 2) for a, b in zip(system_start, system_end, strict=True)
        ],
        broker_cpu_seconds=round((broker_end or 0.0) - (broker_cpu or 0.0), 2),
        peak_rss_bytes=rss,
        detected_per_worker=per_worker,
        seeded=seeded,
        profile=profile,
    )


# --- phase 3: latency at a fixed offered rate ------------------------------------------------

_PLACEHOLDER = "@@created_at@@"


def live_templates(corpus: Corpus) -> list[tuple[bytes, bytes, bytes]]:
    """(key, prefix, suffix) per corpus event: value = prefix + ISO time + suffix."""
    out = []
    for i, event in enumerate(corpus.events):
        wire = dict(event, id=f"live-{i}", created_at=_PLACEHOLDER)
        prefix, suffix = json.dumps(wire).encode().split(_PLACEHOLDER.encode())
        out.append((event["brand"].encode(), prefix, suffix))
    return out


def offer(
    brokers: str,
    topic: str,
    templates: Sequence[tuple[bytes, bytes, bytes]],
    rate: float,
    seconds: float,
    partitions: int,
) -> tuple[dict[tuple[int, int], float], float]:
    """Send mentions at ``rate`` per second for ``seconds`` with ``created_at`` = now, then
    one more per partition in a batch of its own (so that the embedded broker's end
    offsets are right: see ``preload``); return the producer timestamp (s) of each
    (partition, offset) and the achieved rate."""
    producer = KafkaProducer(
        bootstrap_servers=brokers, acks=1, linger_ms=2, client_id="crisis-radar-bench-offer"
    )
    futures = []
    total = int(rate * seconds)
    started = time.time()
    sent = 0
    try:
        while sent < total:
            now = time.time()
            due = min(total, int((now - started) * rate) + 1)
            while sent < due:
                key, prefix, suffix = templates[sent % len(templates)]
                stamp = time.time()
                value = prefix + iso(stamp).encode() + suffix
                futures.append(
                    producer.send(topic, key=key, value=value, timestamp_ms=int(stamp * 1000))
                )
                sent += 1
            time.sleep(0.001)
        elapsed = time.time() - started
        producer.flush(120)
    finally:
        producer.close(10)
    sealer = KafkaProducer(
        bootstrap_servers=brokers, acks=1, linger_ms=0, batch_size=16, client_id="bench-seal"
    )
    from aiokafka.partitioner import DefaultPartitioner

    choose = DefaultPartitioner()
    everywhere = list(range(partitions))
    sealing = {choose(t[0], everywhere, everywhere): t for t in reversed(templates)}
    try:
        for partition, (key, prefix, suffix) in sorted(sealing.items()):
            stamp = time.time()
            value = prefix + iso(stamp).encode() + suffix
            futures.append(
                sealer.send(
                    topic, key=key, value=value, partition=partition, timestamp_ms=int(stamp * 1000)
                )
            )
        sealer.flush(60)
    finally:
        sealer.close(10)
    offered: dict[tuple[int, int], float] = {}
    for future in futures:
        meta = future.get(60)
        offered[(meta.partition, meta.offset)] = meta.timestamp / 1000.0
    return offered, sent / elapsed


async def _read_from(
    brokers: str, topic: str, start: dict[int, int], handle: Callable[[Any], None]
) -> None:
    """Read ``topic`` from the given offsets to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=brokers,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(start)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start[tp.partition])
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > start[tp.partition]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    handle(record)
                if records and records[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()


async def _end_offsets(brokers: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


_POSITIONS = re.compile(rb'"positions":\{"(\d+)":(\d+)\}')


def decision_times(brokers: str, run: Run, start: dict[int, int]) -> dict[tuple[int, int], float]:
    """Source position -> timestamp (s) of the first brand-state changelog record written
    after the mention at that position was applied (every brand of this benchmark lives on
    one input partition, so its state holds exactly one position)."""
    from streams.app import state_json

    decided: dict[tuple[int, int], float] = {}

    def handle(record: Any) -> None:
        found = _POSITIONS.search(state_json(record.value or b""))
        if found is None:
            return
        position = (int(found.group(1)), int(found.group(2)))
        stamp = record.timestamp / 1000.0
        if position not in decided or stamp < decided[position]:
            decided[position] = stamp

    asyncio.run(_read_from(brokers, run.changelog_topic, start, handle))
    return decided


def ingest_times(brokers: str, run: Run, start: dict[int, int]) -> dict[tuple[int, int], float]:
    """Source position -> ``ingested_at`` (wall time the ingest agent received it)."""
    ingested: dict[tuple[int, int], float] = {}

    def handle(record: Any) -> None:
        for value in scored_batch.unpack(record.value):
            position = value.get("source_position")
            if isinstance(position, list) and len(position) == 2:
                ingested[(position[0], position[1])] = float(value.get("ingested_at", 0.0))

    asyncio.run(_read_from(brokers, run.scored_topic, start, handle))
    return ingested


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def q(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)], 4)

    return {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0), "count": len(ordered)}


def measure_latency(
    broker: EmbeddedBroker,
    run_dir: Path,
    corpus: Corpus,
    compounds: dict[str, float],
    rate: float,
    seconds: float,
    partitions: int,
    timeout: float,
    history_buckets: int,
    seed: int,
) -> dict[str, Any]:
    """A fresh worker with warm brand states (their usual volume being this offered rate)
    is offered ``rate`` mentions/s for ``seconds``; every mention's offer, ingest and
    decision times are read back from the topics."""
    topic = f"bench-live-{int(rate)}-{uuid.uuid4().hex[:8]}"
    ensure_topics([broker.address], {topic: partitions})
    run = Run(f"bench-live-{uuid.uuid4().hex[:8]}", topic, partitions)
    bucket_seconds = 60
    rates = brand_rates(corpus, compounds, bucket_seconds, scale=rate / corpus_rate(corpus))
    end = time.time() // bucket_seconds * bucket_seconds
    seeded = prepare_run(broker, run, rates, end, history_buckets, seed)
    templates = live_templates(corpus)
    run.start(broker, run_dir, 1)
    worker = run.workers[0]
    try:
        run.wait_up()
        # A few mentions first: the worker has joined its group and restored its table
        # once it detects them. (Not all of them: a worker on the embedded broker can hold
        # back the last records of a partition until newer ones arrive; see
        # docs/performance.md.)
        probes, _ = offer(broker.address, topic, templates[-50:], 500.0, 0.1, partitions)
        wait_for_first(run, WORKER_START_TIMEOUT)
        time.sleep(1.0)
        before = worker.scrape()
        scored_start = asyncio.run(_end_offsets(broker.address, run.scored_topic))
        changelog_start = asyncio.run(_end_offsets(broker.address, run.changelog_topic))
        log(f"  offering {rate:,.0f} mentions/s for {seconds:.0f} s ...")
        offered, achieved = offer(broker.address, topic, templates, rate, seconds, partitions)
        offer_end = time.time()
        missing = 0
        try:
            run.wait_detected(len(probes) + len(offered), timeout)
            drained = time.time() - offer_end
        except Stalled as stall:
            done = stall.samples[-1][1]
            if done < NEARLY_ALL * (len(probes) + len(offered)):
                log(run.diagnose(broker.address))
                raise
            missing = int(len(probes) + len(offered) - done)
            drained = next(t for t, c in stall.samples if c == done) - offer_end
            log(f"  {missing} mentions never arrived; timed up to the last progress")
        after = worker.scrape()
        rss = proc_status(worker.pid, "VmHWM") or 0
    finally:
        run.stop()
    log("  reading the scored topic and the changelog back ...")
    ingested = ingest_times(broker.address, run, scored_start)
    decided = decision_times(broker.address, run, changelog_start)
    offer_to_ingest, ingest_to_decision, offer_to_decision = [], [], []
    for position, sent in offered.items():
        decision = decided.get(position)
        got = ingested.get(position)
        if got is not None:
            offer_to_ingest.append(got - sent)
        if decision is not None:
            offer_to_decision.append(decision - sent)
            if got is not None:
                ingest_to_decision.append(decision - got)
    histogram = "crisis_radar_event_to_decision_seconds"
    judged = "crisis_radar_ingest_to_decision_seconds"
    alert_histogram = "crisis_radar_ingest_to_alert_seconds"
    alerts = after.total(f"{alert_histogram}_count") - before.total(f"{alert_histogram}_count")
    return {
        "rate_offered": rate,
        "rate_achieved": round(achieved, 1),
        "seconds": seconds,
        "seeded": seeded,
        "live_mentions": len(offered),
        "drain_seconds_after_offer": round(drained, 2),
        "missing": missing,
        # What the worker processed while mentions were offered and until it caught up.
        "rate_sustained": round(len(offered) / (seconds + drained), 1),
        "kept_up": drained < 2.0,
        "offer_to_ingest": quantiles(offer_to_ingest),
        "ingest_to_decision": quantiles(ingest_to_decision),
        "offer_to_decision": quantiles(offer_to_decision),
        # From ingest to the mention judged and its alerts on the broker, as the worker
        # measures it (its state reaches the changelog at the next checkpoint).
        "worker_ingest_to_decision_histogram": {
            q: histogram_quantile(before.buckets(judged), after.buckets(judged), value)
            for q, value in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        },
        "worker_event_to_decision_histogram": {
            "p50": histogram_quantile(before.buckets(histogram), after.buckets(histogram), 0.5),
            "p99": histogram_quantile(before.buckets(histogram), after.buckets(histogram), 0.99),
        },
        "alerts_sent": alerts,
        "worker_ingest_to_alert_histogram_p99": histogram_quantile(
            before.buckets(alert_histogram), after.buckets(alert_histogram), 0.99
        ),
        "peak_rss_bytes": rss,
    }


def corpus_rate(corpus: Corpus) -> float:
    return len(corpus.events) / max(corpus.span_seconds, 1e-9)


# --- phase 4: memory with many brands --------------------------------------------------------


def measure_memory(
    broker: EmbeddedBroker,
    run_dir: Path,
    corpus: Corpus,
    partitions: int,
    timeout: float,
    history_buckets: int,
    seed: int,
) -> dict[str, Any]:
    """Peak RSS of one worker whose table holds a day-old state for every brand of
    ``corpus``, after it has detected the corpus."""
    compounds: dict[str, float] = {}
    vader_loop(list(dict.fromkeys(corpus.texts)), compounds)
    topic = f"bench-brands-{uuid.uuid4().hex[:8]}"
    ensure_topics([broker.address], {topic: partitions})
    count, _ = preload(broker.address, topic, corpus.records(), partitions)
    rates = brand_rates(corpus, compounds, 60)

    def prepare(run: Run) -> dict[str, Any]:
        return prepare_run(broker, run, rates, corpus.start, history_buckets, seed)

    result = measure_throughput(broker, run_dir, topic, count, 1, partitions, timeout, prepare)
    return {
        "brands": len(corpus.brands),
        "mentions": count,
        "rate": result.rate,
        "seconds": result.seconds,
        "startup_seconds": result.startup_seconds,
        "seeded": result.seeded,
        "peak_rss_bytes": result.peak_rss_bytes[0],
    }


def state_costs(repeat: int = 2000) -> dict[str, float]:
    """Microseconds per call of what the worker does with a brand's state, on a day-old
    state with samples: reading the table's value
    (``decode_state``, then ``from_dict``), writing it (``encode_state``), and the copy
    ``step`` makes when it does not own the state."""
    import orjson

    from config.settings import load_settings
    from detector.core import Counts, Position, step, step_counts
    from detector.model import Author, Engagement, Mention
    from detector.sentiment import ScoredMention
    from detector.state import BrandState
    from streams.app import decode_state, encode_state

    t = load_settings({}).thresholds.defaults
    rng = random.Random(5)
    origin = 1_699_833_600.0  # a Monday, 00:00 UTC
    state: Any = None
    for i in range(1500):
        count = 40 + rng.randrange(20)
        counts = Counts(origin + i * 60, count, negatives=rng.randrange(6), reach=count * 300)
        state = step_counts(state, "acme-air", counts, t).state
    for k in range(120):
        mention = Mention(
            id=f"acme-air-{k}",
            brand="acme-air",
            text=f"@AcmeAir flight {k} delayed again and nobody at the desk, awful service",
            created_at=origin + 1500 * 60 + k,
            author=Author(id=f"u{k}", followers=50 * k),
            engagement=Engagement(reposts=k % 5),
        )
        state = step(state, ScoredMention(mention, -0.6), t, Position(0, k)).state
    value = state.to_dict()
    wire = orjson.dumps(value)
    stored = encode_state(state)

    def per_call(fn: Callable[[], object]) -> float:
        best = math.inf
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(repeat):
                fn()
            best = min(best, (time.perf_counter() - started) / repeat)
        return round(best * 1e6, 1)

    return {
        "json_bytes": len(wire),
        "stored_bytes": len(stored),
        "from_dict_us": per_call(lambda: BrandState.from_dict(value)),
        "copy_us": per_call(state.copy),
        "to_dict_us": per_call(state.to_dict),
        "encode_us": per_call(lambda: encode_state(state)),
        "decode_us": per_call(lambda: decode_state(stored)),
    }


def deep_size(value: Any, seen: set[int] | None = None) -> int:
    """Bytes of a plain JSON-like value and everything it holds (shared objects once)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, list | tuple):
        size += sum(deep_size(v, seen) for v in value)
    return size


# --- profiling -------------------------------------------------------------------------------


def start_profiler(pid: int, output: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: pip install py-spy (into the same venv)")
    output.parent.mkdir(parents=True, exist_ok=True)
    # --gil: only samples of the thread holding the GIL, i.e. running Python code. On a busy
    # 2-core machine a thread waiting for a CPU (after a socket write woke the broker, say)
    # would otherwise be counted where it waits.
    command = [spy, "record", "--pid", str(pid), "--rate", "100", "--gil", "--format", "raw"]
    command += ["--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    if profiler.poll() is None:
        profiler.send_signal(signal.SIGINT)
        try:
            profiler.wait(60)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait(5)


# Where a sample's time goes: the first rule (in this order) that matches a frame of the
# stack names its category. Frames look like "function (path/to/module.py:line)".
PROFILE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sentiment scoring (VADER or the mention scorer)", ("vaderSentiment", "score (detector/sent")),
    ("ticks of other brands (PartitionClocks)", ("tick_brand (streams/app.py",)),
    ("BrandState.from_dict", ("from_dict (detector/state.py",)),
    ("BrandState.to_dict", ("to_dict (detector/state.py",)),
    ("table write: JSON of the whole state + changelog send", ("on_key_set (faust/tables",)),
    ("state copy in step()", ("copy (detector/state.py",)),
    ("detection core: step() without the copy", ("step (detector/core.py",)),
    ("metrics (prometheus_client, streams/metrics.py)", ("prometheus_client", "/metrics.py")),
    ("mention parsing + validation (detector/model.py)", ("parse_mention (",)),
    ("scored record to/from wire dict (detector/sentiment.py)", ("_wire (detector/sentiment",)),
    ("alert events: encode + send", ("emit (streams/app.py",)),
    ("scored topic JSON encode/decode", ("json/", "faust/serializers")),
    ("aiokafka producer (batches, requests, socket writes)", ("aiokafka/producer",)),
    ("aiokafka consumer and client (fetches, record parsing)", ("aiokafka/",)),
    ("logging", ("logging/__init__.py",)),
    ("Faust/mode per-event machinery, asyncio", ("faust/", "mode/", "asyncio/", "aiohttp/")),
)  # fmt: skip
IDLE_LEAVES = ("select (selectors.py",)


def summarise_profile(path: Path) -> dict[str, Any]:
    """Ranked categories (share of the worker's sampled CPU time) of a py-spy raw profile,
    and the functions with the most self time."""
    categories: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return {"error": f"no profile: {exc}"}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaves[_short_frame(frames[-1])] += count
        category = "other"
        if any(leaf in frames[-1] for leaf in IDLE_LEAVES):
            category = "event loop waiting in select()"
        else:
            for name, needles in PROFILE_RULES:
                if any(needle in frame for frame in frames for needle in needles):
                    category = name
                    break
        categories[category] += count
    return {
        "samples": total,
        "categories": [
            {"category": name, "share": round(n / total, 4)} for name, n in categories.most_common()
        ]
        if total
        else [],
        "self_time": [
            {"function": name, "share": round(n / total, 4)} for name, n in leaves.most_common(25)
        ]
        if total
        else [],
    }


def _short_frame(frame: str) -> str:
    return re.sub(r"\(.*site-packages/", "(", frame)


# --- the report ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB"


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}/s"


def fmt_latency(stats: dict[str, float | None]) -> str:
    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{v * 1000:,.0f} ms"

    return (
        f"p50 {ms(stats['p50'])}, p90 {ms(stats['p90'])}, p99 {ms(stats['p99'])}, "
        f"max {ms(stats['max'])} ({stats['count']:,} mentions)"
    )


def report(figures: dict[str, Any]) -> Iterator[str]:
    m, c, b = figures["machine"], figures["corpus"], figures["baselines"]
    yield "crisis-radar throughput benchmark"
    yield (
        f"machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, "
        f"load average at start {m['load_average']}"
    )
    yield (
        f"corpus: {c['mentions']:,} mentions of {c['brands']} brands over "
        f"{c['event_seconds']:,.0f} s of event time ({c['event_rate']:,.0f}/s), "
        f"{c['repost_share']:.1%} reposts, {c['distinct_texts']:,} distinct texts, "
        f"{c['mean_text_chars']:.0f} chars per text on average; "
        f"largest brand {c['largest_brand_share']:.1%} of the stream"
    )
    yield ""
    yield "baselines, same texts / same topic"
    yield f"  VADER polarity_scores loop          {fmt_rate(b['vader_rate']):>12}"
    yield f"  VADER, each distinct text once      {fmt_rate(b['vader_distinct_rate']):>12}"
    yield f"  aiokafka raw consume (getmany)      {fmt_rate(b['raw_consume_rate']):>12}"
    yield f"  aiokafka + json + VADER + counts    {fmt_rate(b['minimal_pipeline_rate']):>12}"
    yield f"  (pre-load with kafka-python         {fmt_rate(b['preload_rate']):>12})"
    costs = figures.get("state_costs")
    if costs:
        yield ""
        yield (
            f"brand state, day-old, {costs['json_bytes']:,} B of JSON, {costs['stored_bytes']:,} B "
            f"in the table: a read {costs['decode_us']} us + from_dict {costs['from_dict_us']} us, "
            f"a write (encode_state, with to_dict) {costs['encode_us']} us, a copy "
            f"{costs['copy_us']} us; in one process"
        )
    for run in figures["throughput"]:
        yield ""
        yield f"end to end, {run['workers']} worker(s), {figures['partitions']} partitions"
        if "error" in run:
            yield f"  did not finish: {run['error']}"
            continue
        if run.get("seeded"):
            yield (
                f"  {run['seeded']['brands']} brands start warm (a day of history each, "
                f"{run['seeded']['mean_state_json_bytes']:,} B of JSON state on average)"
            )
        cpu = sum(run["worker_cpu_seconds"])
        system = sum(run["worker_system_cpu_seconds"])
        yield (
            f"  {run['mentions']:,} mentions in {run['seconds']:.1f} s: "
            f"{fmt_rate(run['rate'])} (first mention detected {run['startup_seconds']:.1f} s "
            f"after launch)"
        )
        yield (
            f"  worker CPU {cpu:.1f} s ({system:.1f} s of it in the kernel; "
            f"{cpu / max(run['seconds'], 1e-9):.0%} of one core), "
            f"{cpu / run['mentions'] * 1e6:,.0f} us per mention; broker CPU "
            f"{run['broker_cpu_seconds']:.1f} s"
        )
        yield "  peak RSS " + ", ".join(mb(x) for x in run["peak_rss_bytes"])
        if run.get("missing"):
            yield (
                f"  {run['missing']} mentions were never detected (the run stalled; timed up "
                "to its last progress)"
            )
        if run["workers"] > 1:
            yield "  detected per worker " + ", ".join(
                f"{x:,.0f}" for x in run["detected_per_worker"]
            )
        yield (
            f"  ratios: worker / VADER loop {run['rate'] / b['vader_rate']:.2f} "
            f"(goal >= {GOAL_VADER_RATIO}), worker / raw consume "
            f"{run['rate'] / b['raw_consume_rate']:.3f}, worker / minimal pipeline "
            f"{run['rate'] / b['minimal_pipeline_rate']:.2f}"
        )
    rates = {run["workers"]: run["rate"] for run in figures["throughput"] if "rate" in run}
    if 1 in rates and 2 in rates:
        yield f"  2 workers / 1 worker: {rates[2] / rates[1]:.2f}"
    for lat in figures["latency"]:
        yield ""
        yield (
            f"latency, {lat['rate_offered']:,.0f} mentions/s offered for {lat['seconds']:.0f} s "
            f"(achieved {lat['rate_achieved']:,.0f}/s), 1 worker, warm brands"
        )
        verdict = "yes" if lat["kept_up"] else "no"
        yield (
            f"  kept up: {verdict} (detected the last mention "
            f"{lat['drain_seconds_after_offer']:.1f} s after the offer ended; "
            f"{fmt_rate(lat['rate_sustained'])} processed on average)"
        )
        if lat.get("missing"):
            yield f"  {lat['missing']} mentions were never detected (timed to the last progress)"
        yield f"  offer -> ingest      {fmt_latency(lat['offer_to_ingest'])}"
        judged = lat.get("worker_ingest_to_decision_histogram")
        if judged and judged.get("p50") is not None:
            yield (
                "  ingest -> judged, alerts sent (worker histogram "
                "crisis_radar_ingest_to_decision_seconds): "
                + ", ".join(f"{q} ~{_fmt_seconds(v)}" for q, v in judged.items())
            )
        yield f"  ingest -> state on the changelog   {fmt_latency(lat['ingest_to_decision'])}"
        yield f"  offer -> state on the changelog    {fmt_latency(lat['offer_to_decision'])}"
        hist = lat["worker_event_to_decision_histogram"]
        yield (
            "  worker histogram crisis_radar_event_to_decision_seconds: "
            f"p50 ~{_fmt_seconds(hist['p50'])}, p99 ~{_fmt_seconds(hist['p99'])}"
        )
        yield (
            f"  alerts sent during the offer: {lat['alerts_sent']:.0f}; peak RSS "
            f"{mb(lat['peak_rss_bytes'])}"
        )
    if figures.get("memory"):
        mem = figures["memory"]
        seeded = mem["seeded"]
        yield ""
        yield (
            f"memory, {mem['brands']:,} brands with day-old states, {mem['mentions']:,} "
            f"mentions: peak RSS {mb(mem['peak_rss_bytes'])} (goal <= {GOAL_RSS_MB:.0f} MB)"
        )
        yield (
            f"  state per brand: {seeded['mean_state_json_bytes']:,} B of JSON, "
            f"{seeded['mean_state_python_bytes']:,} B as the table's Python value; "
            f"{fmt_rate(mem['rate'])}, first mention detected {mem['startup_seconds']:.1f} s "
            "after launch"
        )
    profile = next((r["profile"] for r in figures["throughput"] if r.get("profile")), None)
    if profile and profile.get("categories"):
        yield ""
        yield (
            f"profile of worker 1 (py-spy --gil, {profile['samples']:,} samples: "
            "share of the time it ran Python code)"
        )
        for row in profile["categories"]:
            yield f"  {row['share']:6.1%}  {row['category']}"
        yield "  most self time:"
        for row in profile["self_time"][:12]:
            yield f"  {row['share']:6.1%}  {row['function']}"


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "beyond the last bucket"
    return f"{value:.2f} s"


# --- main ------------------------------------------------------------------------------------


def parse_counts(text: str) -> list[int]:
    values = [int(x) for x in text.split(",") if x.strip()]
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected counts like 1,2 (0 skips): {text!r}")
    return [v for v in values if v > 0]


def parse_rates(text: str) -> list[float]:
    values = [float(x) for x in text.split(",") if x.strip()]
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"rates must be >= 0: {text!r}")
    return [v for v in values if v > 0]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput",
        description=(
            "Throughput, latency and memory of crisis-radar worker processes on the embedded "
            "broker, with the bare VADER loop and the raw aiokafka consume rate of the same "
            "texts and topic as baselines."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--mentions", type=int, default=100_000, help="mentions pre-loaded")
    parser.add_argument("--brands", type=int, default=200, help="brands of the corpus")
    parser.add_argument(
        "--event-rate",
        type=float,
        default=5000.0,
        help="mentions per second of event time in the corpus (a firehose: 100,000 mentions "
        "are 20 s of it); each brand's warm history has the brand's share of this rate",
    )
    parser.add_argument(
        "--history-buckets",
        type=int,
        default=1440,
        help="buckets of calm history in each warm brand state (0: brands start cold)",
    )
    parser.add_argument(
        "--workers",
        type=parse_counts,
        default=[1],
        help="worker processes, e.g. 1 or 1,2 (0 skips the end-to-end phase)",
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every topic")
    parser.add_argument(
        "--rate",
        type=parse_rates,
        default=[5000.0],
        help="offered mentions/s of the latency phase (comma-separated; 0 skips it)",
    )
    parser.add_argument(
        "--latency-seconds", type=float, default=10.0, help="how long each rate is offered"
    )
    parser.add_argument(
        "--brand-count",
        type=int,
        default=10_000,
        help="brands of the memory phase (0 skips it)",
    )
    parser.add_argument(
        "--brand-mentions",
        type=int,
        default=0,
        help="mentions of the memory phase (0: 5 per brand)",
    )
    parser.add_argument(
        "--producer-batch-size",
        type=int,
        default=int(EMBEDDED_ENV["CRISIS_RADAR_PRODUCER_MAX_BATCH_SIZE"]),
        help="the workers' producer batch size in bytes; the embedded broker needs one "
        "record per batch (16) for table recovery to be right, a larger value shows what "
        "that costs (0: Faust's default)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the workers, e.g. CRISIS_RADAR_BATCH_SIZE=200 (repeatable); "
        "the benchmark's own settings of topics, ports and broker still apply",
    )
    parser.add_argument("--seed", type=int, default=11, help="of the corpora and histories")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per phase, seconds")
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=60.0,
        help="a phase fails when no mention is detected for this long",
    )
    parser.add_argument(
        "--out-dir", type=Path, help="write throughput.json and the logs here (default: a temp dir)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record the first single-worker run with py-spy into DIR and rank where time goes",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM/SIGHUP unwind like Ctrl-C, so that the broker and the workers are stopped.
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    Run.extra_env["CRISIS_RADAR_PRODUCER_MAX_BATCH_SIZE"] = str(args.producer_batch_size)
    for setting in args.worker_env:
        name, equals, value = setting.partition("=")
        if not equals or not name:
            raise SystemExit(f"--worker-env wants NAME=VALUE, not {setting!r}")
        Run.extra_env[name] = value
    Run.stall_seconds = args.stall_seconds
    figures: dict[str, Any] = {
        "machine": machine(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "partitions": args.partitions,
        "throughput": [],
        "latency": [],
        "memory": None,
    }
    base_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="crisis-radar-bench-"))
    run_dir = base_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    span = args.mentions / args.event_rate
    # The corpus starts at a bucket boundary a little before now minus its span: its
    # event times are recent, and the warm history of each brand ends where it starts.
    start = float(int(time.time() - span - 120) // 60 * 60)
    log(f"generating {args.mentions:,} mentions of {args.brands} brands ...")
    corpus = generate(args.mentions, args.brands, seed=args.seed, start=start, span_seconds=span)
    figures["corpus"] = corpus.describe()
    texts = corpus.texts
    log("baseline: bare VADER loop ...")
    vader_seconds = vader_loop(texts)
    compounds: dict[str, float] = {}
    distinct_seconds = vader_loop(list(dict.fromkeys(texts)), compounds)
    figures["corpus"]["negative_share"] = round(
        sum(compounds[t] <= -0.05 for t in texts) / max(1, len(texts)), 4
    )
    baselines: dict[str, float] = {
        "vader_rate": round(len(texts) / vader_seconds, 1),
        "vader_distinct_rate": round(len(texts) / distinct_seconds, 1),
    }
    figures["baselines"] = baselines
    log("state serialisation costs ...")
    figures["state_costs"] = state_costs()
    rates = brand_rates(corpus, compounds, 60)
    broker = EmbeddedBroker(log_path=run_dir / "broker.log").start()
    log(f"embedded broker on {broker.address}, run files in {run_dir}")
    try:
        topic = f"bench-mentions-{uuid.uuid4().hex[:8]}"
        ensure_topics([broker.address], {topic: args.partitions})
        count, seconds = preload(broker.address, topic, corpus.records(), args.partitions)
        baselines["preload_rate"] = round(count / seconds, 1)
        log(f"pre-loaded {count:,} mentions in {seconds:.1f} s")
        log("baseline: raw aiokafka consume, then the minimal pipeline ...")
        baselines["raw_consume_rate"] = round(count / raw_consume(broker.address, topic, count), 1)
        baselines["minimal_pipeline_rate"] = round(
            count / minimal_pipeline(broker.address, topic, count), 1
        )
        save(figures, args.out_dir)

        def prepare(run: Run) -> dict[str, Any]:
            return prepare_run(broker, run, rates, start, args.history_buckets, args.seed)

        for n_workers in args.workers:
            log(f"end to end with {n_workers} worker(s) ...")
            profile_dir = args.profile if n_workers == 1 and not figures["throughput"] else None
            try:
                result = measure_throughput(
                    broker,
                    run_dir,
                    topic,
                    count,
                    n_workers,
                    args.partitions,
                    args.timeout,
                    prepare if args.history_buckets > 0 else None,
                    profile_dir,
                )
            except (TimeoutError, RuntimeError) as exc:
                # Recorded, and the other phases still run (see docs/performance.md on
                # partitions that two workers leave unconsumed).
                log(f"  {n_workers} worker(s) did not finish: {exc}")
                figures["throughput"].append({"workers": n_workers, "error": str(exc)})
                save(figures, args.out_dir)
                continue
            figures["throughput"].append(result.as_dict())
            save(figures, args.out_dir)
            log(f"  {fmt_rate(result.rate)} with {n_workers} worker(s)")
        for rate in args.rate:
            log(f"latency at {rate:,.0f} mentions/s ...")
            figures["latency"].append(
                measure_latency(
                    broker,
                    run_dir,
                    corpus,
                    compounds,
                    rate,
                    args.latency_seconds,
                    args.partitions,
                    args.timeout,
                    max(args.history_buckets, 60),
                    args.seed,
                )
            )
            save(figures, args.out_dir)
        if args.brand_count > 0:
            n = args.brand_mentions or 5 * args.brand_count
            log(f"memory with {args.brand_count:,} brands ({n:,} mentions) ...")
            many = generate(
                n,
                args.brand_count,
                seed=args.seed + 1,
                start=start,
                span_seconds=n / args.event_rate,
                floor_per_brand=3,
                exponent=0.8,
            )
            figures["memory"] = measure_memory(
                broker,
                run_dir,
                many,
                args.partitions,
                args.timeout,
                max(args.history_buckets, 60),
                args.seed,
            )
    finally:
        broker.stop()
    figures["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    for line in report(figures):
        print(line)
    save(figures, args.out_dir)
    if args.out_dir is not None:
        log(f"figures written to {args.out_dir / 'throughput.json'}")
    return 0


def save(figures: dict[str, Any], out_dir: Path | None) -> None:
    """Write the figures so far (after every phase: a long run that fails keeps them)."""
    if out_dir is not None:
        path = out_dir / "throughput.json"
        path.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
