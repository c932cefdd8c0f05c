"""Scoring alerts against labelled crisis windows: recall, precision, time to detect,
false alerts per brand-week, and time in alert."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from detector.errors import ConfigError

WEEK_SECONDS = 7 * 86400.0

Window = tuple[float, float]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """The fields of an alert event that evaluation needs."""

    brand: str
    kind: str
    phase: str
    alert_id: str
    time: float  # event time of the decision


@dataclass
class BrandSummary:
    events: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, phase) -> n
    seconds_in_alert: defaultdict[str, float] = field(
        default_factory=lambda: defaultdict(float)
    )  # kind -> seconds


@dataclass
class Scores:
    windows: int
    detected: int
    alerts: int  # opened alerts
    true_alerts: int
    false_alerts: int
    brand_weeks: float
    detect_delays: list[float]

    @property
    def recall(self) -> float | None:
        return self.detected / self.windows if self.windows else None

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def median_time_to_detect(self) -> float | None:
        return statistics.median(self.detect_delays) if self.detect_delays else None

    @property
    def false_alerts_per_brand_week(self) -> float | None:
        return self.false_alerts / self.brand_weeks if self.brand_weeks > 0 else None


def parse_labels(document: object) -> dict[str, list[Window]]:
    """``{"BRAND": [["start ISO-8601", "end ISO-8601"], ...]}`` -> epoch windows."""
    if not isinstance(document, dict):
        raise ConfigError("labels: expected an object of brand -> list of [start, end]")
    labels: dict[str, list[Window]] = {}
    for brand, windows in document.items():
        if not isinstance(windows, list):
            raise ConfigError(f"labels.{brand}: expected a list of [start, end] pairs")
        parsed: list[Window] = []
        for pair in windows:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ConfigError(f"labels.{brand}: {pair!r} is not a [start, end] pair")
            start, end = (_instant(v, f"labels.{brand}") for v in pair)
            if end < start:
                raise ConfigError(f"labels.{brand}: window {pair!r} ends before it starts")
            parsed.append((start, end))
        labels[str(brand).strip().lower()] = sorted(parsed)
    return labels


def _instant(value: object, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not ISO-8601") from None
        if moment.tzinfo is None:
            raise ConfigError(f"{where}: {value!r} has no UTC offset")
        return moment.timestamp()
    raise ConfigError(f"{where}: {value!r} is not a time")


def summarise(
    alerts: Iterable[AlertRecord], last_event: Mapping[str, float]
) -> dict[str, BrandSummary]:
    """Alert events by brand, kind and phase, and the time each brand spent in alert
    (an episode still open at the end counts until the brand's last event)."""
    summaries: dict[str, BrandSummary] = defaultdict(BrandSummary)
    opened: dict[str, AlertRecord] = {}
    for alert in alerts:
        summary = summaries[alert.brand]
        summary.events[(alert.kind, alert.phase)] += 1
        if alert.phase == "opened":
            opened[alert.alert_id] = alert
        elif alert.phase == "resolved" and alert.alert_id in opened:
            start = opened.pop(alert.alert_id)
            summary.seconds_in_alert[alert.kind] += alert.time - start.time
    for start in opened.values():
        end = last_event.get(start.brand, start.time)
        summaries[start.brand].seconds_in_alert[start.kind] += max(0.0, end - start.time)
    return dict(summaries)


# The kinds that claim a crisis; drop and silence report the health of a brand's stream.
CRISIS_KINDS = frozenset({"virality", "negativity", "crisis"})


def score_alerts(
    alerts: Sequence[AlertRecord],
    labels: Mapping[str, Sequence[Window]],
    spans: Mapping[str, Window],
    kinds: frozenset[str] = CRISIS_KINDS,
) -> Scores:
    """Score ``opened`` alerts of ``kinds`` against labelled crisis windows.

    A window is detected when such an alert opens inside it; its delay is from the
    window's start to the first one. An opened alert outside every window of its brand
    is false. Brand-weeks are the observed spans of the brands in ``spans``."""
    opened = [a for a in alerts if a.phase == "opened" and a.kind in kinds]
    windows = 0
    detected = 0
    delays: list[float] = []
    true_alerts = 0
    for alert in opened:
        if any(start <= alert.time <= end for start, end in labels.get(alert.brand, ())):
            true_alerts += 1
    for brand, brand_windows in labels.items():
        for start, end in brand_windows:
            windows += 1
            hits = [a.time for a in opened if a.brand == brand and start <= a.time <= end]
            if hits:
                detected += 1
                delays.append(min(hits) - start)
    brand_weeks = sum(max(0.0, end - start) for start, end in spans.values()) / WEEK_SECONDS
    return Scores(
        windows=windows,
        detected=detected,
        alerts=len(opened),
        true_alerts=true_alerts,
        false_alerts=len(opened) - true_alerts,
        brand_weeks=brand_weeks,
        detect_delays=delays,
    )
