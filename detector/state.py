"""Per-brand detection state: a small value that round-trips through plain JSON.

The stream worker keeps one ``BrandState`` per brand in a table; the core receives it,
returns a new one, and never keeps references to it between calls.

Serialised form (``to_dict``), version 3: plain JSON values, except the time-of-day
profile of the baseline (``daily``, ``daily_n``: one entry per slot, 288 with 5-minute
slots), which is packed as base64 of little-endian float64 / uint32 arrays. The table's
changelog receives the whole state on every mention, and those two lists were most of
its encoding and decoding time. Packing is exact (the float64 bits themselves).
``from_dict`` also reads version 2, where they were JSON lists.
"""

from __future__ import annotations

import binascii
import math
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

STATE_VERSION = 3
# Versions ``from_dict`` reads: 2 differs from 3 only in how the daily profile is written.
READABLE_VERSIONS = frozenset({2, 3})
DAY_SECONDS = 86_400
# 1970-01-01 was a Thursday: weekday (Monday = 0) of epoch day d is (d + 3) % 7.
_EPOCH_WEEKDAY = 3
# Buckets of one slot's observations that give its learned factor half its weight.
_DAILY_SHRINK_SLOTS = 1.0
_WEEKLY_SHRINK_DAYS = 0.25
TERMS_KEPT = 24
# The time-of-day profile is held as C arrays (float64, uint32): 288 Python floats in a
# list take four times the memory of a float64 array, and a worker keeps the decoded
# states of up to a thousand brands. Element arithmetic gives the same Python floats.
_COUNT_CODE = next(code for code in "IL" if array(code).itemsize == 4)
_NATIVE_LITTLE = sys.byteorder == "little"


def float_array(values: Iterable[float] = ()) -> array[float]:
    return array("d", values)


def count_array(values: Iterable[int] = ()) -> array[int]:
    """Counts in [0, 2**32); ``ValueError`` for others."""
    try:
        return array(_COUNT_CODE, values)
    except OverflowError as exc:
        raise ValueError(f"a count is not in [0, 2**32): {exc}") from exc


@dataclass(slots=True)
class Bucket:
    """Aggregates of one event-time bucket that is still open (within allowed lateness)."""

    index: int
    count: int = 0
    negatives: int = 0
    volume: float = 0.0  # reach-weighted volume: sum of mention weights
    reach: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    terms: dict[str, int] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)
    # Mentions in a language without a scorer: in the volume, not in the negative share.
    unscored: int = 0
    # Scored mentions per language: lang -> [mentions, negatives].
    langs: dict[str, list[int]] = field(default_factory=dict)

    @property
    def scored(self) -> int:
        return self.count - self.unscored

    @property
    def negative_share(self) -> float:
        """Negative share of the scored mentions."""
        return self.negatives / self.scored if self.scored > 0 else 0.0

    def copy(self) -> Bucket:
        return Bucket(
            self.index,
            self.count,
            self.negatives,
            self.volume,
            self.reach,
            [dict(s) for s in self.samples],
            dict(self.terms),
            list(self.fired),
            self.unscored,
            {lang: list(pair) for lang, pair in self.langs.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "negatives": self.negatives,
            "volume": self.volume,
            "reach": self.reach,
            "samples": [dict(s) for s in self.samples],
            "terms": dict(self.terms),
            "fired": list(self.fired),
            "unscored": self.unscored,
            "langs": {lang: list(pair) for lang, pair in self.langs.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bucket:
        return cls(
            index=int(d["index"]),
            count=int(d["count"]),
            negatives=int(d["negatives"]),
            volume=float(d["volume"]),
            reach=int(d["reach"]),
            samples=[dict(s) for s in d["samples"]],
            terms={str(k): int(v) for k, v in d["terms"].items()},
            fired=[str(k) for k in d["fired"]],
            unscored=int(d.get("unscored", 0)),
            langs={str(k): [int(v[0]), int(v[1])] for k, v in d.get("langs", {}).items()},
        )


@dataclass(slots=True)
class Baseline:
    """What is normal for a brand: a deseasonalised level with a time-of-day and a
    day-of-week profile, the spread around it, and the negative share."""

    buckets_seen: int = 0
    level: float = 0.0  # deseasonalised mentions per bucket
    dispersion: float = 1.0  # variance / mean of the count (1 = Poisson), never below 1
    mean_weight: float = 1.0  # mean reach weight of a mention
    negative_level: float = 0.0  # deseasonalised negative mentions per bucket
    mean_reach: float = 0.0  # deseasonalised reach per bucket
    slow_count: float = 0.0  # mentions per bucket, slow average (for the drift rule)
    slow_negatives: float = 0.0  # negative mentions per bucket, slow average
    drift_count: float = 0.0  # exponentially decayed sum of recent mentions
    drift_negatives: float = 0.0  # ... and of recent negative mentions
    daily: array[float] = field(default_factory=float_array)  # factor per time-of-day slot
    daily_n: array[int] = field(default_factory=count_array)
    weekly: list[float] = field(default_factory=lambda: [1.0] * 7)  # factor per weekday
    weekly_n: list[int] = field(default_factory=lambda: [0] * 7)
    # Per language: decayed sums of scored mentions and of negatives (the language mix and
    # each language's negative share relative to the brand's).
    langs: dict[str, list[float]] = field(default_factory=dict)

    @property
    def negative_share(self) -> float:
        if self.level <= 0:
            return 0.0
        return min(1.0, self.negative_level / self.level)

    @property
    def slow_negative_share(self) -> float:
        if self.slow_count <= 0:
            return 0.0
        return min(1.0, self.slow_negatives / self.slow_count)

    def ensure_slots(self, slots_per_day: int) -> None:
        if len(self.daily) != slots_per_day:
            self.daily = float_array([1.0]) * slots_per_day
            self.daily_n = count_array([0]) * slots_per_day

    def factors(
        self, bucket_start: float, slot_seconds: int, buckets_per_slot: int
    ) -> tuple[int, int, float, float]:
        """(time-of-day slot, weekday, daily factor, weekly factor) of the bucket starting
        at ``bucket_start``; each learned factor is shrunk towards 1 while it has few
        observations."""
        slot, weekday = slot_of(bucket_start, slot_seconds)
        daily = _shrunk(
            self.daily[slot], self.daily_n[slot], _DAILY_SHRINK_SLOTS * buckets_per_slot
        )
        weekly_shrink = _WEEKLY_SHRINK_DAYS * buckets_per_slot * (DAY_SECONDS // slot_seconds)
        weekly = _shrunk(self.weekly[weekday], self.weekly_n[weekday], weekly_shrink)
        return slot, weekday, daily, weekly

    def season(self, bucket_start: float, slot_seconds: int, buckets_per_slot: int) -> float:
        """Seasonal factor of the bucket starting at ``bucket_start``. A profile learned
        with another slot length (the setting changed) counts as not learned yet."""
        if len(self.daily) != DAY_SECONDS // slot_seconds:
            return 1.0
        _, _, daily, weekly = self.factors(bucket_start, slot_seconds, buckets_per_slot)
        return daily * weekly

    def spread(self, expected: float) -> float:
        """Standard deviation of a bucket count around ``expected``."""
        return math.sqrt(self.dispersion * max(expected, 1.0))

    def copy(self) -> Baseline:
        return Baseline(
            self.buckets_seen,
            self.level,
            self.dispersion,
            self.mean_weight,
            self.negative_level,
            self.mean_reach,
            self.slow_count,
            self.slow_negatives,
            self.drift_count,
            self.drift_negatives,
            self.daily[:],
            self.daily_n[:],
            list(self.weekly),
            list(self.weekly_n),
            {lang: list(pair) for lang, pair in self.langs.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets_seen": self.buckets_seen,
            "level": self.level,
            "dispersion": self.dispersion,
            "mean_weight": self.mean_weight,
            "negative_level": self.negative_level,
            "mean_reach": self.mean_reach,
            "slow_count": self.slow_count,
            "slow_negatives": self.slow_negatives,
            "drift_count": self.drift_count,
            "drift_negatives": self.drift_negatives,
            "daily": pack_floats(self.daily),
            "daily_n": pack_counts(self.daily_n),
            "weekly": list(self.weekly),
            "weekly_n": list(self.weekly_n),
            "langs": {lang: list(pair) for lang, pair in self.langs.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Baseline:
        return cls(
            buckets_seen=int(d["buckets_seen"]),
            level=float(d["level"]),
            dispersion=float(d["dispersion"]),
            mean_weight=float(d["mean_weight"]),
            negative_level=float(d["negative_level"]),
            mean_reach=float(d["mean_reach"]),
            slow_count=float(d["slow_count"]),
            slow_negatives=float(d["slow_negatives"]),
            drift_count=float(d["drift_count"]),
            drift_negatives=float(d["drift_negatives"]),
            daily=unpack_floats(d["daily"]),
            daily_n=unpack_counts(d["daily_n"]),
            weekly=[float(x) for x in d["weekly"]],
            weekly_n=[int(x) for x in d["weekly_n"]],
            langs={str(k): [float(v[0]), float(v[1])] for k, v in d.get("langs", {}).items()},
        )


def _to_text(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def _from_text(packed: Any, item_size: int) -> bytes:
    if not isinstance(packed, str):
        raise TypeError(f"expected a packed array (str), got {type(packed).__name__}")
    try:
        raw = binascii.a2b_base64(packed, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"not a packed array: {exc}") from exc
    if len(raw) % item_size:
        raise ValueError(f"a packed array of {len(raw)} bytes is not whole {item_size}-byte items")
    return raw


def _little_endian(values: array[Any]) -> bytes:
    if _NATIVE_LITTLE:
        return values.tobytes()
    swapped = values[:]
    swapped.byteswap()
    return swapped.tobytes()


def _from_little_endian(values: array[Any], raw: bytes) -> None:
    values.frombytes(raw)
    if not _NATIVE_LITTLE:
        values.byteswap()


def pack_floats(values: Iterable[float]) -> str:
    """Floats as base64 of little-endian float64: exact, and cheap to encode as JSON."""
    if not (isinstance(values, array) and values.typecode == "d"):
        values = float_array(values)
    return _to_text(_little_endian(values))


def unpack_floats(packed: Any) -> array[float]:
    """Inverse of ``pack_floats``; also accepts a JSON list of numbers (version 2)."""
    if isinstance(packed, list):
        return float_array(float(x) for x in packed)
    values = float_array()
    _from_little_endian(values, _from_text(packed, 8))
    # A NaN or an infinity makes the sum non-finite; only then (or when huge finite values
    # overflow the sum) is every value checked.
    if not math.isfinite(sum(values)) and not all(map(math.isfinite, values)):
        raise ValueError("packed floats hold a NaN or an infinity")
    return values


def pack_counts(values: Iterable[int]) -> str:
    """Counts in [0, 2**32) as base64 of little-endian uint32."""
    if not (isinstance(values, array) and values.typecode == _COUNT_CODE):
        values = count_array(values)
    return _to_text(_little_endian(values))


def unpack_counts(packed: Any) -> array[int]:
    """Inverse of ``pack_counts``; also accepts a JSON list of integers (version 2)."""
    if isinstance(packed, list):
        return count_array(int(x) for x in packed)
    values = count_array()
    _from_little_endian(values, _from_text(packed, 4))
    return values


def slot_of(bucket_start: float, slot_seconds: int) -> tuple[int, int]:
    """(time-of-day slot, weekday with Monday = 0) of an instant, in UTC."""
    day, second = divmod(int(bucket_start), DAY_SECONDS)
    return second // slot_seconds, (day + _EPOCH_WEEKDAY) % 7


def _shrunk(factor: float, observations: int, half_weight_at: float) -> float:
    weight = observations / (observations + half_weight_at)
    return 1.0 + (factor - 1.0) * weight


@dataclass(slots=True)
class Episode:
    """One open alert of one kind for one brand."""

    alert_id: str
    kind: str
    opened_bucket: int
    severity: str
    events: int = 1  # lifecycle events emitted so far (opened counts as the first)
    recovered_buckets: int = 0  # consecutive finalised buckets below the recovery level

    def copy(self) -> Episode:
        return Episode(
            self.alert_id,
            self.kind,
            self.opened_bucket,
            self.severity,
            self.events,
            self.recovered_buckets,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "opened_bucket": self.opened_bucket,
            "severity": self.severity,
            "events": self.events,
            "recovered_buckets": self.recovered_buckets,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Episode:
        return cls(
            alert_id=str(d["alert_id"]),
            kind=str(d["kind"]),
            opened_bucket=int(d["opened_bucket"]),
            severity=str(d["severity"]),
            events=int(d["events"]),
            recovered_buckets=int(d["recovered_buckets"]),
        )


@dataclass(slots=True)
class BrandState:
    brand: str
    current: int | None = None  # highest bucket index seen
    finalised_upto: int | None = None  # last bucket folded into the baseline
    buckets: dict[int, Bucket] = field(default_factory=dict)
    baseline: Baseline = field(default_factory=Baseline)
    # The last finalised bucket (for the sliding window and the evidence), and the totals
    # [index, count, negatives, volume, reach] of the last finalised buckets (long window).
    previous: Bucket | None = None
    recent: list[list[float]] = field(default_factory=list)
    episodes: dict[str, Episode] = field(default_factory=dict)
    streaks: dict[str, list[int]] = field(default_factory=dict)  # kind -> [first, last]
    cooldown_until: dict[str, int] = field(default_factory=dict)
    # family -> [log of the peak factor of its last episode, bucket of that peak]
    peaks: dict[str, list[float]] = field(default_factory=dict)
    last_mention_bucket: int | None = None
    silent_expected: float = 0.0  # mentions expected since the last one seen
    positions: dict[str, int] = field(default_factory=dict)  # partition -> last applied offset
    mentions: int = 0
    late: int = 0
    duplicates: int = 0
    # Not part of the state (never copied, compared or serialised): what the core
    # memoises about the baseline while it does not change (``detector.core._expectations``).
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def warm(self, warmup_buckets: int) -> bool:
        return self.baseline.buckets_seen >= warmup_buckets

    def copy(self) -> BrandState:
        return BrandState(
            brand=self.brand,
            current=self.current,
            finalised_upto=self.finalised_upto,
            buckets={i: b.copy() for i, b in self.buckets.items()},
            baseline=self.baseline.copy(),
            previous=self.previous.copy() if self.previous is not None else None,
            recent=[list(r) for r in self.recent],
            episodes={k: e.copy() for k, e in self.episodes.items()},
            streaks={k: list(v) for k, v in self.streaks.items()},
            cooldown_until=dict(self.cooldown_until),
            peaks={k: list(v) for k, v in self.peaks.items()},
            last_mention_bucket=self.last_mention_bucket,
            silent_expected=self.silent_expected,
            positions=dict(self.positions),
            mentions=self.mentions,
            late=self.late,
            duplicates=self.duplicates,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "brand": self.brand,
            "current": self.current,
            "finalised_upto": self.finalised_upto,
            "buckets": [b.to_dict() for b in self.buckets.values()],
            "baseline": self.baseline.to_dict(),
            "previous": self.previous.to_dict() if self.previous is not None else None,
            "recent": [list(r) for r in self.recent],
            "episodes": [e.to_dict() for e in self.episodes.values()],
            "streaks": {k: list(v) for k, v in self.streaks.items()},
            "cooldown_until": dict(self.cooldown_until),
            "peaks": {k: list(v) for k, v in self.peaks.items()},
            "last_mention_bucket": self.last_mention_bucket,
            "silent_expected": self.silent_expected,
            "positions": dict(self.positions),
            "mentions": self.mentions,
            "late": self.late,
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BrandState:
        version = d.get("v")
        if version not in READABLE_VERSIONS or isinstance(version, bool):
            raise ValueError(f"unsupported brand state version {version!r}")
        buckets = [Bucket.from_dict(b) for b in d["buckets"]]
        episodes = [Episode.from_dict(e) for e in d["episodes"]]
        previous = d.get("previous")
        last_mention = d.get("last_mention_bucket")
        return cls(
            brand=str(d["brand"]),
            current=None if d["current"] is None else int(d["current"]),
            finalised_upto=None if d["finalised_upto"] is None else int(d["finalised_upto"]),
            buckets={b.index: b for b in buckets},
            baseline=Baseline.from_dict(d["baseline"]),
            previous=Bucket.from_dict(previous) if previous is not None else None,
            recent=[[float(x) for x in r] for r in d["recent"]],
            episodes={e.kind: e for e in episodes},
            streaks={str(k): [int(x) for x in v] for k, v in d["streaks"].items()},
            cooldown_until={str(k): int(v) for k, v in d["cooldown_until"].items()},
            peaks={str(k): [float(x) for x in v] for k, v in d.get("peaks", {}).items()},
            last_mention_bucket=None if last_mention is None else int(last_mention),
            silent_expected=float(d["silent_expected"]),
            positions={str(k): int(v) for k, v in d["positions"].items()},
            mentions=int(d["mentions"]),
            late=int(d["late"]),
            duplicates=int(d["duplicates"]),
        )
