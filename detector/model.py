"""The mention model: decoding and validating raw mention events.

A mention arrives as raw bytes (one JSON object). ``parse_mention`` turns it into a
``Mention`` or a ``Rejection`` carrying a stable reason code; it never raises on bad input.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from detector.errors import ConfigError


class Reason(StrEnum):
    """Why an input event was rejected. The values are stable: they appear in metrics
    labels and in the dead-letter topic's headers."""

    TOO_LARGE = "too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    EMPTY_FIELD = "empty_field"
    FIELD_TOO_LONG = "field_too_long"
    BAD_NUMBER = "bad_number"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    UNKNOWN_BRAND = "unknown_brand"
    TOO_MANY_BRANDS = "too_many_brands"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied while validating a mention."""

    max_event_bytes: int = 65_536
    max_text_chars: int = 10_000
    max_id_chars: int = 256
    max_brand_chars: int = 100
    # Event times before this (epoch seconds) are absurd: 2000-01-01T00:00:00Z.
    min_created_at: float = 946_684_800.0
    # Event times further than this ahead of the processing clock are absurd.
    max_future_seconds: float = 600.0
    # If non-empty, only these brands (normalised) are accepted.
    allowed_brands: frozenset[str] = frozenset()
    # The most brands that get a state (the detector's memory grows with them): a mention
    # of one more brand is refused. 0: no limit.
    max_brands: int = 10_000

    def __post_init__(self) -> None:
        positive = ("max_event_bytes", "max_text_chars", "max_id_chars", "max_brand_chars")
        bad = [name for name in positive if getattr(self, name) < 1]
        if self.max_future_seconds < 0:
            bad.append("max_future_seconds")
        if self.max_brands < 0:
            bad.append("max_brands")
        if bad:
            raise ConfigError(f"validation limits must be positive: {', '.join(bad)}")


def admit_brand(known: bool, brands_held: int, limits: Limits) -> Rejection | None:
    """The brand cardinality limit: a brand that has no state yet is refused once
    ``brands_held`` states exist and ``limits.max_brands`` is reached. Brands that
    already have a state are always admitted, so a refusal never splits a brand."""
    if known or not limits.max_brands or brands_held < limits.max_brands:
        return None
    return Rejection(
        Reason.TOO_MANY_BRANDS,
        f"{brands_held} brands have a state already, the limit (validation.max_brands) "
        f"is {limits.max_brands}",
    )


@dataclass(frozen=True, slots=True)
class Author:
    id: str | None = None
    followers: int = 0


@dataclass(frozen=True, slots=True)
class Engagement:
    reposts: int = 0
    likes: int = 0
    replies: int = 0


@dataclass(frozen=True, slots=True)
class Mention:
    id: str
    brand: str
    text: str
    created_at: float  # epoch seconds, UTC
    platform: str | None = None
    lang: str | None = None
    author: Author = field(default_factory=Author)
    engagement: Engagement = field(default_factory=Engagement)
    repost_of: str | None = None

    @property
    def reach(self) -> int:
        """Audience touched by this mention: the author's followers (at least 1)."""
        return max(1, self.author.followers)


def normalise_brand(brand: str) -> str:
    """Brands are case-insensitive keys: ``" Acme-Air "`` and ``"acme-air"`` are one brand."""
    return brand.strip().lower()


class _Invalid(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


def _reject_constant(name: str) -> Any:
    raise _Invalid(Reason.BAD_NUMBER, f"non-finite number {name} is not allowed")


# Made once: ``json.loads`` with a keyword argument makes a new decoder for every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _string(obj: dict[str, Any], key: str, *, required: bool, max_chars: int) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            raise _Invalid(Reason.MISSING_FIELD, f"field '{key}' is required")
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise _Invalid(
            Reason.WRONG_TYPE, f"field '{key}' must be a string, got {type(value).__name__}"
        )
    _check_text(value, key)
    if required and not value.strip():
        raise _Invalid(Reason.EMPTY_FIELD, f"field '{key}' must not be empty")
    if len(value) > max_chars:
        reason = Reason.FIELD_TOO_LONG
        raise _Invalid(reason, f"field '{key}' has {len(value)} characters, limit {max_chars}")
    return value


def _check_text(value: str, where: str) -> None:
    """JSON can escape a lone UTF-16 surrogate (``"\\ud800"``), which is not text: it
    cannot be written as UTF-8 (a Kafka key, a metric label, an alert), so it is refused
    like bytes that are not UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Invalid(
            Reason.INVALID_UTF8,
            f"field '{where}' holds a lone surrogate at character {exc.start}",
        ) from None


def _count(obj: dict[str, Any], key: str, where: str) -> int:
    value = obj.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(
            Reason.WRONG_TYPE,
            f"field '{where}.{key}' must be a number, got {type(value).__name__}",
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(Reason.BAD_NUMBER, f"field '{where}.{key}' is not finite")
    if value < 0 or value > 10**12:
        raise _Invalid(Reason.BAD_NUMBER, f"field '{where}.{key}' is out of range: {value}")
    return int(value)


def _section(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(
            Reason.WRONG_TYPE, f"field '{key}' must be an object, got {type(value).__name__}"
        )
    return value


def parse_timestamp(value: object) -> float:
    """Epoch seconds from an ISO-8601 string with offset, or from epoch seconds."""
    if isinstance(value, bool):
        raise _Invalid(Reason.WRONG_TYPE, "field 'created_at' must be a string or a number")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise _Invalid(Reason.BAD_NUMBER, "field 'created_at' is out of range") from None
        if not math.isfinite(seconds):
            raise _Invalid(Reason.BAD_NUMBER, "field 'created_at' is not finite")
        return seconds
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise _Invalid(
                Reason.BAD_TIMESTAMP, f"field 'created_at' is not ISO-8601: {value[:40]!r}"
            ) from None
        if parsed.tzinfo is None:
            raise _Invalid(
                Reason.BAD_TIMESTAMP,
                f"field 'created_at' has no UTC offset: {value[:40]!r}",
            )
        return parsed.timestamp()
    raise _Invalid(
        Reason.WRONG_TYPE,
        f"field 'created_at' must be a string or a number, got {type(value).__name__}",
    )


def parse_mention(raw: bytes, *, now: float, limits: Limits | None = None) -> Mention | Rejection:
    """Decode and validate one raw mention event.

    ``now`` is the processing clock (epoch seconds), used only to reject absurd
    future timestamps. Unknown extra fields are ignored.
    """
    limits = limits or Limits()
    try:
        return _parse(raw, now, limits, fast=True)
    except _Invalid:
        pass
    # Rejected, or read differently by orjson: the standard library's reading decides,
    # and gives the rejection's detail.
    try:
        return _parse(raw, now, limits, fast=False)
    except _Invalid as invalid:
        return invalid.rejection


def _load_json(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise _Invalid(Reason.INVALID_JSON, detail) from None
    except RecursionError:
        raise _Invalid(Reason.INVALID_JSON, "nesting too deep") from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise _Invalid(Reason.BAD_NUMBER, f"unreadable number: {str(exc)[:80]}") from None


def _parse(raw: bytes, now: float, limits: Limits, *, fast: bool) -> Mention:
    """``fast``: read the JSON with orjson, about four times as fast as the standard
    library; the caller reads a rejected event again with the standard library, whose
    reading decides. The two differ only in what the standard library reads and orjson
    refuses (``NaN``, ``1e400``, an escaped lone surrogate) and in integers beyond 64
    bits, which orjson turns into floats: no field accepts a float there (the author's
    id takes a string or an integer, and counts and timestamps that large are out of
    range), so those events are rejected by the fast reading and read again."""
    if len(raw) > limits.max_event_bytes:
        raise _Invalid(
            Reason.TOO_LARGE, f"event has {len(raw)} bytes, limit {limits.max_event_bytes}"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid(Reason.INVALID_UTF8, f"not UTF-8 at byte {exc.start}") from None
    if fast:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _Invalid(Reason.INVALID_JSON, "") from None
    else:
        obj = _load_json(text)
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        raise _Invalid(Reason.NOT_AN_OBJECT, f"event must be a JSON object, got {kind}")

    mention_id = _string(obj, "id", required=True, max_chars=limits.max_id_chars)
    brand_raw = _string(obj, "brand", required=True, max_chars=limits.max_brand_chars)
    if obj.get("text") is None:
        raise _Invalid(Reason.MISSING_FIELD, "field 'text' is required")
    body = _string(obj, "text", required=False, max_chars=limits.max_text_chars)
    if "created_at" not in obj or obj["created_at"] is None:
        raise _Invalid(Reason.MISSING_FIELD, "field 'created_at' is required")
    created_at = parse_timestamp(obj["created_at"])
    if created_at < limits.min_created_at:
        raise _Invalid(
            Reason.TIMESTAMP_OUT_OF_RANGE,
            f"created_at {created_at:.0f} is before {limits.min_created_at:.0f}",
        )
    if created_at > now + limits.max_future_seconds:
        raise _Invalid(
            Reason.TIMESTAMP_OUT_OF_RANGE,
            f"created_at is {created_at - now:.0f} s in the future "
            f"(limit {limits.max_future_seconds:.0f} s)",
        )
    assert mention_id is not None and brand_raw is not None
    brand = normalise_brand(brand_raw)
    if limits.allowed_brands and brand not in limits.allowed_brands:
        raise _Invalid(Reason.UNKNOWN_BRAND, f"brand {brand[:40]!r} is not configured")

    author_obj = _section(obj, "author")
    author_id = author_obj.get("id")
    if author_id is not None and not isinstance(author_id, str | int):
        raise _Invalid(Reason.WRONG_TYPE, "field 'author.id' must be a string or an integer")
    if isinstance(author_id, str):
        _check_text(author_id, "author.id")
    engagement_obj = _section(obj, "engagement")
    return Mention(
        id=mention_id,
        brand=brand,
        text=body or "",
        created_at=created_at,
        platform=_string(obj, "platform", required=False, max_chars=64),
        lang=_string(obj, "lang", required=False, max_chars=16),
        author=Author(
            id=None if author_id is None else str(author_id)[: limits.max_id_chars],
            followers=_count(author_obj, "followers", "author"),
        ),
        engagement=Engagement(
            reposts=_count(engagement_obj, "reposts", "engagement"),
            likes=_count(engagement_obj, "likes", "engagement"),
            replies=_count(engagement_obj, "replies", "engagement"),
        ),
        repost_of=_string(obj, "repost_of", required=False, max_chars=limits.max_id_chars),
    )
