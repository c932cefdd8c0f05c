"""Prometheus metrics of a worker. The registry is passed in (a fresh one per test)."""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from config.settings import MetricsSettings
from detector import plans
from detector.model import Reason
from detector.rules import Kind, expectation, share_band
from detector.state import BrandState
from detector.thresholds import Thresholds
from detector.version import DETECTOR_VERSION

OTHER = "other"
log = logging.getLogger("crisis_radar.metrics")

# Event time -> decision: seconds in a live stream, up to hours when a backlog is replayed.
EVENT_TO_DECISION_BUCKETS = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0,
)  # fmt: skip
# Ingest -> alert sent: two agents and a repartition topic in between, normally well under 1 s.
INGEST_TO_ALERT_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
INGEST_TO_DECISION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0,
    3.0, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

# (topic, partition) -> records not yet processed by this worker.
LagSource = Callable[[], Mapping[tuple[str, int], int]]


def package_version() -> str:
    try:
        return metadata.version("crisis-radar")
    except metadata.PackageNotFoundError:
        return "unknown"


class ConsumerLagCollector(Collector):
    """``crisis_radar_consumer_lag_records``, computed at scrape time from ``source``
    (which the app sets once its consumer runs; until then there is no sample)."""

    NAME = "crisis_radar_consumer_lag_records"

    def __init__(self) -> None:
        self.source: LagSource | None = None

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.NAME,
            "Records of an assigned input partition not yet processed by this worker "
            "(high-water mark minus the next offset to commit).",
            labels=["topic", "partition"],
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        try:
            lags = dict(self.source()) if self.source is not None else {}
        except Exception as exc:  # noqa: BLE001 - a scrape must never fail on a consumer hiccup
            log.debug("consumer lag unavailable: %r", exc)
            lags = {}
        for (topic, partition), lag in sorted(lags.items()):
            family.add_metric([topic, str(partition)], max(0, lag))
        yield family


class BrandLabels:
    """Bounded brand label values: configured brands, or the first N seen; the rest
    are folded into ``other``."""

    def __init__(self, settings: MetricsSettings) -> None:
        self._fixed = settings.brands
        self._limit = settings.max_brand_labels
        self._seen: set[str] = set()

    def __call__(self, brand: str) -> str:
        if self._fixed:
            return brand if brand in self._fixed else OTHER
        if brand in self._seen:
            return brand
        if len(self._seen) < self._limit and brand != OTHER:
            self._seen.add(brand)
            return brand
        return OTHER


class LanguageLabels:
    """Bounded ``lang`` label values: the first N language codes seen (two or three
    letters, as detectors and the input's ``lang`` give them), ``und`` when unknown, and
    ``other`` for the rest."""

    def __init__(self, limit: int = 60) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, lang: str | None) -> str:
        code = (lang or "und").strip().lower()
        if code in self._seen:
            return code
        valid = len(code) in (2, 3) and code.isascii() and code.isalpha()
        if valid and len(self._seen) < self._limit:
            self._seen.add(code)
            return code
        return OTHER


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry, settings: MetricsSettings) -> None:
        self.registry = registry
        self.brand_label = BrandLabels(settings)
        self.mentions = Counter(
            "crisis_radar_mentions_processed_total",
            "Mention events processed, by outcome (accepted, rejected, late, duplicate).",
            ["stage", "outcome"],
            registry=registry,
        )
        self.language_label = LanguageLabels()
        self.by_language = Counter(
            "crisis_radar_mentions_by_language_total",
            "Accepted mentions by language (given, or detected) and whether a sentiment scorer "
            "exists for it; unscored mentions count toward volume but not the negative share.",
            ["lang", "scored"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "crisis_radar_dead_letters_total",
            "Input events sent to the dead-letter topic, by rejection reason.",
            ["reason"],
            registry=registry,
        )
        self.consumer_gaps = Counter(
            "crisis_radar_consumer_gap_records_total",
            "Records the Kafka consumer left out of a partition, by agent: read again "
            "directly (read_again), not readable (lost), or a tail passed while the agent "
            "was idle and fetched again (fetched_again).",
            ["agent", "outcome"],
            registry=registry,
        )
        self.alerts = Counter(
            "crisis_radar_alerts_emitted_total",
            "Alert lifecycle events sent to the alert topic, by kind and phase.",
            ["brand", "kind", "phase"],
            registry=registry,
        )
        self.bucket_count = Gauge(
            "crisis_radar_brand_bucket_mentions",
            "Mentions in the brand's newest event-time bucket so far.",
            ["brand"],
            registry=registry,
        )
        self.baseline_count = Gauge(
            "crisis_radar_brand_baseline_mentions",
            "Expected mentions per bucket (the brand's baseline).",
            ["brand"],
            registry=registry,
        )
        self.negative_share = Gauge(
            "crisis_radar_brand_negative_share_ratio",
            "Negative share of the brand's newest bucket so far (0..1).",
            ["brand"],
            registry=registry,
        )
        self.baseline_negative_share = Gauge(
            "crisis_radar_brand_baseline_negative_share_ratio",
            "The brand's baseline negative share (0..1).",
            ["brand"],
            registry=registry,
        )
        self.warming_up = Gauge(
            "crisis_radar_brand_warming_up",
            "1 while the brand's baseline is still warming up (no verdicts yet).",
            ["brand"],
            registry=registry,
        )
        self.alert_open = Gauge(
            "crisis_radar_alert_open",
            "1 while an alert of this kind is open for the brand.",
            ["brand", "kind"],
            registry=registry,
        )
        self.event_to_decision = Histogram(
            "crisis_radar_event_to_decision_seconds",
            "Wall-clock time from a mention's event time to the moment the detector judged it.",
            buckets=EVENT_TO_DECISION_BUCKETS,
            registry=registry,
        )
        self.ingest_to_alert = Histogram(
            "crisis_radar_ingest_to_alert_seconds",
            "Wall-clock time from the ingest agent receiving a mention to the alert event it "
            "caused being sent.",
            buckets=INGEST_TO_ALERT_BUCKETS,
            registry=registry,
        )
        self.ingest_to_decision = Histogram(
            "crisis_radar_ingest_to_decision_seconds",
            "Wall-clock time from ingest receiving a mention to the detector having judged it "
            "and sent the alert events it decided.",
            buckets=INGEST_TO_DECISION_BUCKETS,
            registry=registry,
        )
        self.last_event = Gauge(
            "crisis_radar_last_event_timestamp_seconds",
            "Newest event time (Unix seconds) of the brand's mentions the detector has judged.",
            ["brand"],
            registry=registry,
        )
        self.worker_up = Gauge(
            "crisis_radar_worker_up",
            "1 while this worker process serves metrics.",
            registry=registry,
        )
        self.worker_info = Gauge(
            "crisis_radar_worker_info",
            "Constant 1, labelled with the worker's package and detection-logic versions.",
            ["version", "detector_version"],
            registry=registry,
        )
        self.negative_share_interval = Gauge(
            "crisis_radar_brand_negative_share_interval_ratio",
            "Wilson interval (at negativity_z) of the negative share of the brand's newest "
            "bucket so far: bound=lower or upper (0..1). A negativity alert needs the lower "
            "bound above the required share.",
            ["brand", "bound"],
            registry=registry,
        )
        self.negative_share_required = Gauge(
            "crisis_radar_brand_negative_share_required_ratio",
            "Negative share the lower Wilson bound must reach for a negativity alert: the "
            "baseline share plus negativity_min_delta (0..1).",
            ["brand"],
            registry=registry,
        )
        self.planned_event = Gauge(
            "crisis_radar_brand_planned_event_active",
            "1 while the brand's newest bucket lies inside a planned event (expected volume "
            "raised by the plan).",
            ["brand"],
            registry=registry,
        )
        self.control_changes = Counter(
            "crisis_radar_control_changes_total",
            "Records of the control topic handled by this worker, by kind (thresholds, plan) "
            "and outcome (applied, removed, refused).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.control_last_change = Gauge(
            "crisis_radar_control_last_change_timestamp_seconds",
            "Wall-clock time (Unix seconds) at which this worker last applied a live "
            "threshold change or planned event.",
            registry=registry,
        )
        self.live_overrides = Gauge(
            "crisis_radar_live_threshold_overrides",
            "Live threshold values in force, by scope (a brand, other, or * for every brand).",
            ["scope"],
            registry=registry,
        )
        self.consumer_lag = ConsumerLagCollector()
        registry.register(self.consumer_lag)
        self._last_event: dict[str, float] = {}
        self._processed: dict[tuple[str, str], Any] = {}
        self._languages: dict[tuple[str | None, bool], Any] = {}
        self.worker_up.set(1)
        self.worker_info.labels(version=package_version(), detector_version=DETECTOR_VERSION).set(1)
        for reason in Reason:
            self.dead_letters.labels(reason=reason.value)
        for kind in ("thresholds", "plan"):
            for outcome in ("applied", "removed", "refused"):
                self.control_changes.labels(kind=kind, outcome=outcome)

    def observe_judged(self, brand: str, event_time: float, now: float) -> None:
        """A mention of ``brand`` with ``event_time`` went through the detector at ``now``."""
        self.observe_judged_all(brand, [event_time], now)

    def observe_judged_all(self, brand: str, event_times: list[float], now: float) -> None:
        """Mentions of ``brand`` with these event times went through the detector at
        ``now`` (a batch: the brand's gauge is set once)."""
        observe_many(self.event_to_decision, [max(0.0, now - t) for t in event_times])
        newest = max(event_times, default=-math.inf)
        label = self.brand_label(brand)
        if newest > self._last_event.get(label, -math.inf):
            self._last_event[label] = newest
            self.last_event.labels(brand=label).set(newest)

    def observe_ingest_to_decision(self, seconds: list[float]) -> None:
        observe_many(self.ingest_to_decision, [max(0.0, value) for value in seconds])

    def processed(self, stage: str, outcome: str, n: int = 1) -> None:
        """Count ``n`` mentions of ``stage`` with ``outcome`` (labelled children are kept:
        looking one up is most of the cost of counting)."""
        child = self._processed.get((stage, outcome))
        if child is None:
            child = self._processed[(stage, outcome)] = self.mentions.labels(
                stage=stage, outcome=outcome
            )
        child.inc(n)

    def observe_language(self, lang: str | None, scored: bool, n: int = 1) -> None:
        child = self._languages.get((lang, scored))
        if child is None:
            label = self.language_label(lang)
            child = self.by_language.labels(lang=label, scored="true" if scored else "false")
            if len(self._languages) < 1000:  # input languages are not bounded; labels are
                self._languages[(lang, scored)] = child
        child.inc(n)

    def observe_alert_sent(self, ingested_at: float | None, now: float) -> None:
        """An alert caused by a mention the ingest agent received at ``ingested_at`` was sent."""
        if ingested_at is not None:
            self.ingest_to_alert.observe(max(0.0, now - ingested_at))

    def observe_state(self, state: BrandState, thresholds: Thresholds) -> None:
        brand = self.brand_label(state.brand)
        if brand == OTHER:
            return  # per-brand gauges of folded brands would overwrite one another
        newest = state.buckets.get(state.current) if state.current is not None else None
        self.bucket_count.labels(brand=brand).set(newest.count if newest else 0)
        self.negative_share.labels(brand=brand).set(newest.negative_share if newest else 0.0)
        if state.current is not None:
            bucket_start = state.current * thresholds.bucket_seconds
            expected = expectation(state.baseline, bucket_start, thresholds)
            self.baseline_count.labels(brand=brand).set(expected.count)
            planned = plans.active(thresholds.plans, bucket_start) is not None
            self.planned_event.labels(brand=brand).set(1 if planned else 0)
        self.baseline_negative_share.labels(brand=brand).set(state.baseline.negative_share)
        band = share_band(
            newest.negatives if newest else 0,
            newest.count if newest else 0,
            state.baseline.negative_share,
            thresholds,
        )
        self.negative_share_interval.labels(brand=brand, bound="lower").set(band.lower)
        self.negative_share_interval.labels(brand=brand, bound="upper").set(band.upper)
        self.negative_share_required.labels(brand=brand).set(band.required)
        self.warming_up.labels(brand=brand).set(0 if state.warm(thresholds.warmup_buckets) else 1)
        for kind in Kind:
            self.alert_open.labels(brand=brand, kind=kind).set(1 if kind in state.episodes else 0)

    def observe_control(self, kind: str, outcome: str, overrides: Mapping[str, int]) -> None:
        """A control record was handled; ``overrides`` counts live values per scope."""
        self.control_changes.labels(kind=kind, outcome=outcome).inc()
        if outcome != "refused":
            self.control_last_change.set_to_current_time()
        scopes: dict[str, int] = {}
        for scope, n in overrides.items():
            label = scope if scope == "*" else self.brand_label(scope)
            scopes[label] = scopes.get(label, 0) + n
        self.live_overrides.clear()
        for label, n in scopes.items():
            self.live_overrides.labels(scope=label).set(n)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def observe_many(histogram: Histogram, values: list[float]) -> None:
    """``histogram.observe(value)`` for each value (no exemplars), with one increment per
    bucket and one of the sum: a batch observes thousands of values, and each observation
    takes two locks. A value goes to the first bucket whose upper bound is at least the
    value, as in ``observe``; the sum may differ from one observation at a time in its last
    bits (the values are added together first)."""
    if not values:
        return
    bounds = histogram._upper_bounds
    counts: dict[int, int] = {}
    for value in values:
        i = bisect.bisect_left(bounds, value)
        counts[i] = counts.get(i, 0) + 1
    histogram._sum.inc(math.fsum(values))
    for i, n in counts.items():
        histogram._buckets[i].inc(n)
