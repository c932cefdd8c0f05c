"""Detection thresholds: typed, validated, with per-brand overrides."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypeVar

from detector.errors import ConfigError
from detector.plans import PlannedEvent

_T = TypeVar("_T")

# Allowed values of the string-valued thresholds.
COOLDOWN_FROM = ("resolved", "opened")
REPEAT_MEASURES = ("factor", "count")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every knob of the detection rules for one brand. Defaults suit a brand with a few
    dozen mentions per minute; see config/crisis-radar.yaml for the documented list."""

    # Event-time bucketing.
    bucket_seconds: int = 60
    allowed_lateness_buckets: int = 2
    # Baseline learning.
    warmup_buckets: int = 30
    baseline_halflife_buckets: float = 120.0
    # Seasonality: a time-of-day profile (slots of this many minutes) times a day-of-week
    # profile; each slot learns with this half-life, counted in days.
    season_slot_minutes: int = 5
    season_halflife_days: float = 7.0
    # Outliers beyond this many standard deviations are clipped before learning.
    robust_clip_sd: float = 3.0
    # Windows judged: the last bucket (sliding), and the last long_window_buckets buckets,
    # which catches waves too slow or too small for one bucket.
    long_window_buckets: int = 5
    # Negativity drift: negative share of roughly the last drift_halflife_buckets buckets
    # (exponentially decayed) against the slow baseline share (season_halflife_days).
    drift_halflife_buckets: float = 30.0
    # The drift window's share floor (its sums hold hundreds of mentions, so a lower floor
    # than negativity_min_share is still far from chance).
    drift_min_share: float = 0.3
    # Virality: reach-weighted volume of a window against its expectation.
    virality_min_count: int = 20
    virality_factor: float = 3.0
    virality_z: float = 4.0
    # Negativity: negative share of the last bucket_seconds against the baseline share.
    negativity_min_count: int = 20
    negativity_min_share: float = 0.4
    negativity_min_delta: float = 0.15
    negativity_z: float = 3.0
    # Drop: volume far below its expectation (but not zero) for drop_after_buckets buckets.
    drop_min_expected: float = 20.0
    drop_factor: float = 0.5
    drop_z: float = 4.0
    drop_after_buckets: int = 5
    # Silence: no mention at all while this many were expected (and at least 5 buckets).
    silence_min_expected: float = 15.0
    silence_min_buckets: int = 5
    # Severity: "critical" once the excess reaches this multiple of the opening one.
    critical_multiplier: float = 2.0
    # Lifecycle.
    open_after_buckets: int = 1  # consecutive firing buckets before an alert opens
    recovery_ratio: float = 0.5  # recovered below this share of the opening excess
    resolve_after_buckets: int = 3  # recovered buckets before an alert resolves
    cooldown_buckets: int = 10
    # Where the cooldown starts: "resolved" (when the alert resolves) or "opened" (when it
    # opens, like Alertmanager's repeat interval: at most one opening per kind per
    # cooldown, however long or short the episode).
    cooldown_from: str = "resolved"
    # Repeat suppression (0 = off): a new volume alert (virality or crisis) opens only when
    # its size beats the peak size of the brand's last volume episode, whose logarithm
    # decays with this half-life in days: a surge no bigger than one already reported is
    # the same story, not news (Alertmanager-style grouping over days).
    repeat_halflife_days: float = 0.0
    # What "size" means for repeat suppression: "factor" (observed over expected volume) or
    # "count" (mentions per bucket in the window that fired).
    repeat_measure: str = "factor"
    # How much bigger than the decayed peak a new surge must be (1 = merely bigger).
    repeat_margin: float = 1.0
    # Evidence.
    max_samples: int = 5
    max_terms: int = 5
    # Planned events of the brand (attached at run time from the control topic, never
    # from the YAML file; not a threshold and not part of ``as_dict``).
    plans: tuple[PlannedEvent, ...] = ()

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("invalid thresholds: " + "; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        del values["plans"]
        return values

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], base: Thresholds | None = None, where: str = "thresholds"
    ) -> Thresholds:
        """Thresholds from a mapping (a YAML section) on top of ``base``."""
        return updated(base or cls(), values, where)


# Fields of the dataclasses above that a mapping (YAML, a live change) cannot set.
NOT_SETTABLE = frozenset({"plans"})


def threshold_keys() -> tuple[str, ...]:
    """Names of every settable threshold, in declaration order."""
    return tuple(f.name for f in fields(Thresholds) if f.name not in NOT_SETTABLE)


def updated(base: _T, values: Mapping[str, Any], where: str) -> _T:
    """A copy of the frozen dataclass ``base`` with ``values`` applied, refusing unknown
    keys and values whose type differs from the default's, with a message naming the key."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name for f in fields(base)} - NOT_SETTABLE  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        default = getattr(base, key)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ConfigError(f"{where}.{key}: expected a string, got {value!r}")
        elif isinstance(default, bool):
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
        (
            t.season_slot_minutes >= 1
            and 1440 % t.season_slot_minutes == 0
            and t.bucket_seconds >= 1
            and (t.season_slot_minutes * 60) % t.bucket_seconds == 0,
            "season_slot_minutes must divide a day and be a whole number of buckets",
        ),
        (t.season_halflife_days > 0, "season_halflife_days must be > 0"),
        (t.robust_clip_sd > 0, "robust_clip_sd must be > 0"),
        (1 <= t.long_window_buckets <= 1440, "long_window_buckets must be in [1, 1440]"),
        (t.drift_halflife_buckets > 0, "drift_halflife_buckets must be > 0"),
        (0 < t.drift_min_share <= 1, "drift_min_share must be in (0, 1]"),
        (t.drop_min_expected > 0, "drop_min_expected must be > 0"),
        (0 < t.drop_factor < 1, "drop_factor must be in (0, 1)"),
        (t.drop_z > 0, "drop_z must be > 0"),
        (t.drop_after_buckets >= 1, "drop_after_buckets must be >= 1"),
        (t.silence_min_expected > 0, "silence_min_expected must be > 0"),
        (t.silence_min_buckets >= 1, "silence_min_buckets must be >= 1"),
        (t.open_after_buckets >= 1, "open_after_buckets must be >= 1"),
        (0 < t.recovery_ratio <= 1, "recovery_ratio must be in (0, 1]"),
        (0 <= t.max_terms <= 50, "max_terms must be in [0, 50]"),
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
        (
            t.cooldown_from in COOLDOWN_FROM,
            "cooldown_from must be one of: " + ", ".join(COOLDOWN_FROM),
        ),
        (t.repeat_halflife_days >= 0, "repeat_halflife_days must be >= 0"),
        (
            t.repeat_measure in REPEAT_MEASURES,
            "repeat_measure must be one of: " + ", ".join(REPEAT_MEASURES),
        ),
        (t.repeat_margin >= 1, "repeat_margin must be >= 1"),
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
