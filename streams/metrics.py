"""Prometheus metrics of a worker. The registry is passed in (a fresh one per test)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from config.settings import MetricsSettings
from detector.model import Reason
from detector.rules import Kind, expectation
from detector.state import BrandState
from detector.thresholds import Thresholds

OTHER = "other"


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
        self.dead_letters = Counter(
            "crisis_radar_dead_letters_total",
            "Input events sent to the dead-letter topic, by rejection reason.",
            ["reason"],
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
        for reason in Reason:
            self.dead_letters.labels(reason=reason.value)

    def observe_state(self, state: BrandState, thresholds: Thresholds) -> None:
        brand = self.brand_label(state.brand)
        if brand == OTHER:
            return  # per-brand gauges of folded brands would overwrite one another
        newest = state.buckets.get(state.current) if state.current is not None else None
        self.bucket_count.labels(brand=brand).set(newest.count if newest else 0)
        self.negative_share.labels(brand=brand).set(newest.negative_share if newest else 0.0)
        if state.current is not None:
            expected = expectation(
                state.baseline, state.current * thresholds.bucket_seconds, thresholds
            )
            self.baseline_count.labels(brand=brand).set(expected.count)
        self.baseline_negative_share.labels(brand=brand).set(state.baseline.negative_share)
        self.warming_up.labels(brand=brand).set(0 if state.warm(thresholds.warmup_buckets) else 1)
        for kind in Kind:
            self.alert_open.labels(brand=brand, kind=kind).set(1 if kind in state.episodes else 0)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
