"""Detection thresholds: typed, validated, with per-brand overrides."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypeVar

from detector.errors import ConfigError

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every knob of the detection rules for one brand. Defaults suit a brand with a few
    dozen mentions per minute; see config/crisis-radar.yaml for the documented list."""

    # Event-time bucketing.
    bucket_seconds: int = 60
    allowed_lateness_buckets: int = 2
    # Baseline learning.
    warmup_buckets: int = 30
    baseline_halflife_buckets: float = 60.0
    # Virality: mention count of a bucket against its baseline.
    virality_min_count: int = 20
    virality_factor: float = 3.0
    virality_z: float = 4.0
    # Negativity: negative share of a bucket against the baseline share.
    negativity_min_count: int = 20
    negativity_min_share: float = 0.4
    negativity_min_delta: float = 0.15
    negativity_z: float = 3.0
    # Severity: "critical" once the observed factor reaches this multiple of the opening one.
    critical_multiplier: float = 2.0
    # Lifecycle.
    resolve_after_buckets: int = 3
    cooldown_buckets: int = 10
    # Evidence.
    max_samples: int = 5

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("invalid thresholds: " + "; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], base: Thresholds | None = None, where: str = "thresholds"
    ) -> Thresholds:
        """Thresholds from a mapping (a YAML section) on top of ``base``."""
        return updated(base or cls(), values, where)


def updated(base: _T, values: Mapping[str, Any], where: str) -> _T:
    """A copy of the frozen dataclass ``base`` with ``values`` applied, refusing unknown
    keys and values whose type differs from the default's, with a message naming the key."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name for f in fields(base)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        default = getattr(base, key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.{key}: expected true or false, got {value!r}")
        elif isinstance(value, bool):
            raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
        elif isinstance(default, int) and not isinstance(value, int):
            raise ConfigError(f"{where}.{key}: expected an integer, got {value!r}")
        elif isinstance(default, float):
            if not isinstance(value, int | float):
                raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
            value = float(value)
        elif isinstance(default, frozenset):
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}.{key}: expected a list of strings, got {value!r}")
            value = frozenset(value)
        changes[key] = value
    try:
        return replace(base, **changes)  # type: ignore[type-var]
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _problems(t: Thresholds) -> list[str]:
    checks: list[tuple[bool, str]] = [
        (t.bucket_seconds >= 1, "bucket_seconds must be >= 1"),
        (t.allowed_lateness_buckets >= 0, "allowed_lateness_buckets must be >= 0"),
        (t.warmup_buckets >= 1, "warmup_buckets must be >= 1"),
        (t.baseline_halflife_buckets > 0, "baseline_halflife_buckets must be > 0"),
        (t.virality_min_count >= 1, "virality_min_count must be >= 1"),
        (t.virality_factor > 1, "virality_factor must be > 1"),
        (t.virality_z > 0, "virality_z must be > 0"),
        (t.negativity_min_count >= 1, "negativity_min_count must be >= 1"),
        (0 < t.negativity_min_share <= 1, "negativity_min_share must be in (0, 1]"),
        (0 <= t.negativity_min_delta < 1, "negativity_min_delta must be in [0, 1)"),
        (t.negativity_z > 0, "negativity_z must be > 0"),
        (t.critical_multiplier >= 1, "critical_multiplier must be >= 1"),
        (t.resolve_after_buckets >= 1, "resolve_after_buckets must be >= 1"),
        (t.cooldown_buckets >= 0, "cooldown_buckets must be >= 0"),
        (0 <= t.max_samples <= 50, "max_samples must be in [0, 50]"),
    ]
    checks += [
        (math.isfinite(getattr(t, f.name)), f"{f.name} must be finite")
        for f in fields(t)
        if isinstance(getattr(t, f.name), float)
    ]
    return [message for ok, message in checks if not ok]


@dataclass(frozen=True, slots=True)
class ThresholdBook:
    """Default thresholds plus per-brand overrides."""

    defaults: Thresholds = field(default_factory=Thresholds)
    brands: Mapping[str, Thresholds] = field(default_factory=dict)

    def for_brand(self, brand: str) -> Thresholds:
        return self.brands.get(brand, self.defaults)
