"""Per-brand detection state: a small value that round-trips through plain JSON.

The stream worker keeps one ``BrandState`` per brand in a table; the core receives it,
returns a new one, and never keeps references to it between calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

STATE_VERSION = 1


@dataclass(slots=True)
class Bucket:
    """Aggregates of one event-time bucket that is still open (within allowed lateness)."""

    index: int
    count: int = 0
    negatives: int = 0
    reach: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)

    @property
    def negative_share(self) -> float:
        return self.negatives / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "negatives": self.negatives,
            "reach": self.reach,
            "samples": [dict(s) for s in self.samples],
            "fired": list(self.fired),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bucket:
        return cls(
            index=int(d["index"]),
            count=int(d["count"]),
            negatives=int(d["negatives"]),
            reach=int(d["reach"]),
            samples=[dict(s) for s in d.get("samples", [])],
            fired=[str(k) for k in d.get("fired", [])],
        )


@dataclass(slots=True)
class Baseline:
    """Exponentially weighted statistics of finalised buckets."""

    buckets_seen: int = 0
    mean_count: float = 0.0
    var_count: float = 0.0
    mean_negatives: float = 0.0
    mean_reach: float = 0.0

    @property
    def sd_count(self) -> float:
        """Spread of the bucket count, never below the Poisson spread of its mean."""
        return math.sqrt(max(self.var_count, self.mean_count, 1.0))

    @property
    def negative_share(self) -> float:
        if self.mean_count <= 0:
            return 0.0
        return min(1.0, self.mean_negatives / self.mean_count)

    def learn(self, count: float, negatives: float, reach: float, halflife_buckets: float) -> None:
        """Fold one finalised bucket in. During the first buckets the weight is the plain
        running mean, so the baseline does not start from zero."""
        alpha = max(1.0 - 0.5 ** (1.0 / halflife_buckets), 1.0 / (self.buckets_seen + 1))
        diff = count - self.mean_count
        self.mean_count += alpha * diff
        self.var_count = (1.0 - alpha) * (self.var_count + alpha * diff * diff)
        self.mean_negatives += alpha * (negatives - self.mean_negatives)
        self.mean_reach += alpha * (reach - self.mean_reach)
        self.buckets_seen += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets_seen": self.buckets_seen,
            "mean_count": self.mean_count,
            "var_count": self.var_count,
            "mean_negatives": self.mean_negatives,
            "mean_reach": self.mean_reach,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Baseline:
        return cls(
            buckets_seen=int(d["buckets_seen"]),
            mean_count=float(d["mean_count"]),
            var_count=float(d["var_count"]),
            mean_negatives=float(d["mean_negatives"]),
            mean_reach=float(d["mean_reach"]),
        )


@dataclass(slots=True)
class Episode:
    """One open alert of one kind for one brand."""

    alert_id: str
    kind: str
    opened_bucket: int
    severity: str
    events: int = 1  # lifecycle events emitted so far (opened counts as the first)
    quiet_buckets: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "opened_bucket": self.opened_bucket,
            "severity": self.severity,
            "events": self.events,
            "quiet_buckets": self.quiet_buckets,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Episode:
        return cls(
            alert_id=str(d["alert_id"]),
            kind=str(d["kind"]),
            opened_bucket=int(d["opened_bucket"]),
            severity=str(d["severity"]),
            events=int(d["events"]),
            quiet_buckets=int(d["quiet_buckets"]),
        )


@dataclass(slots=True)
class BrandState:
    brand: str
    current: int | None = None  # highest bucket index seen
    finalised_upto: int | None = None  # last bucket folded into the baseline
    buckets: dict[int, Bucket] = field(default_factory=dict)
    baseline: Baseline = field(default_factory=Baseline)
    episodes: dict[str, Episode] = field(default_factory=dict)
    cooldown_until: dict[str, int] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)  # partition -> last applied offset
    mentions: int = 0
    late: int = 0
    duplicates: int = 0

    def warm(self, warmup_buckets: int) -> bool:
        return self.baseline.buckets_seen >= warmup_buckets

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "brand": self.brand,
            "current": self.current,
            "finalised_upto": self.finalised_upto,
            "buckets": [b.to_dict() for b in self.buckets.values()],
            "baseline": self.baseline.to_dict(),
            "episodes": [e.to_dict() for e in self.episodes.values()],
            "cooldown_until": dict(self.cooldown_until),
            "positions": dict(self.positions),
            "mentions": self.mentions,
            "late": self.late,
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BrandState:
        version = d.get("v")
        if version != STATE_VERSION:
            raise ValueError(f"unsupported brand state version {version!r}")
        buckets = [Bucket.from_dict(b) for b in d["buckets"]]
        episodes = [Episode.from_dict(e) for e in d["episodes"]]
        return cls(
            brand=str(d["brand"]),
            current=None if d["current"] is None else int(d["current"]),
            finalised_upto=None if d["finalised_upto"] is None else int(d["finalised_upto"]),
            buckets={b.index: b for b in buckets},
            baseline=Baseline.from_dict(d["baseline"]),
            episodes={e.kind: e for e in episodes},
            cooldown_until={str(k): int(v) for k, v in d["cooldown_until"].items()},
            positions={str(k): int(v) for k, v in d["positions"].items()},
            mentions=int(d["mentions"]),
            late=int(d["late"]),
            duplicates=int(d["duplicates"]),
        )

    def copy(self) -> BrandState:
        return BrandState.from_dict(self.to_dict())
