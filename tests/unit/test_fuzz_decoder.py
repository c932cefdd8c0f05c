"""Property-based fuzzing of the mention decoder and validator (``parse_mention``) as the
ingest agent uses it: valid events are corrupted in one targeted way and must be
rejected with that corruption's reason; arbitrary corruptions of valid events never
raise; and whatever is accepted survives the rest of the worker's path (Kafka key, the
scored topic's JSON, the metric label) without an error.

``tests/unit/test_model.py`` holds the table of reasons and the no-crash properties on
arbitrary bytes and JSON; this file starts from valid events instead, so the fuzzing
reaches every check behind the JSON layer.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from detector import model
from detector.model import Limits, Mention, Reason, Rejection, parse_mention
from detector.sentiment import ScoredMention, from_wire, score, to_wire

NOW = 1_700_000_000.0  # the processing clock: 2023-11-14T22:13:20Z
LIMITS = Limits()
FUZZ = settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


class FixedScorer:
    """A stand-in for VADER: the compound is a pure function of the text."""

    name = "fixed"

    def compound(self, text: str) -> float:
        return -0.5 if "bad" in text else 0.25


# Valid field values: any text (without lone surrogates, which are not text), any
# allowed timestamp form, counts in range.
unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
required_text = unicode_text.filter(str.strip)
timestamps = st.one_of(
    st.floats(min_value=LIMITS.min_created_at, max_value=NOW + LIMITS.max_future_seconds),
    st.integers(min_value=int(LIMITS.min_created_at), max_value=int(NOW)),
    st.floats(min_value=LIMITS.min_created_at, max_value=NOW).map(
        lambda t: datetime.fromtimestamp(t, UTC).isoformat()
    ),
)
counts = st.integers(min_value=0, max_value=10**12)
valid_events = st.fixed_dictionaries(
    {
        "id": required_text.filter(lambda s: len(s) <= LIMITS.max_id_chars),
        "brand": required_text.filter(lambda s: len(s) <= LIMITS.max_brand_chars),
        "text": unicode_text,
        "created_at": timestamps,
    },
    optional={
        "platform": st.none() | st.text(max_size=20),
        "lang": st.none() | st.sampled_from(["en", "de", "fr", "pt-BR"]),
        "author": st.fixed_dictionaries(
            {}, optional={"id": st.none() | st.text(max_size=20) | counts, "followers": counts}
        ),
        "engagement": st.fixed_dictionaries(
            {}, optional={"reposts": counts, "likes": counts, "replies": counts}
        ),
        "repost_of": st.none() | st.text(max_size=30),
        "extra": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    },
)


def encode(obj: dict[str, Any], ascii_only: bool = False) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8")


def parse(raw: bytes, limits: Limits = LIMITS) -> Mention | Rejection:
    return parse_mention(raw, now=NOW, limits=limits)


def reason(raw: bytes, limits: Limits = LIMITS) -> Reason | None:
    result = parse(raw, limits)
    return result.reason if isinstance(result, Rejection) else None


def survives_the_worker(mention: Mention) -> None:
    """What the agents do with an accepted mention must not raise: the Kafka key, the
    scored topic's JSON (Faust's json codec is the standard one), the round trip back."""
    mention.brand.encode("utf-8")
    for text in (mention.id, mention.text, mention.author.id or "", mention.repost_of or ""):
        text.encode("utf-8")
    scored = score(mention, FixedScorer())
    wire = json.dumps(to_wire(scored), allow_nan=False)
    assert from_wire(json.loads(wire)) == scored
    assert isinstance(scored, ScoredMention)


@FUZZ
@given(obj=valid_events, ascii_only=st.booleans())
def test_valid_events_are_accepted_and_survive_the_worker(
    obj: dict[str, Any], ascii_only: bool
) -> None:
    raw = encode(obj, ascii_only)
    assume(len(raw) <= LIMITS.max_event_bytes)
    result = parse(raw)
    assert isinstance(result, Mention), result
    assert result.brand == obj["brand"].strip().lower()
    assert math.isfinite(result.created_at)
    survives_the_worker(result)


@FUZZ
@given(obj=valid_events, extra=st.integers(min_value=1, max_value=5_000))
def test_oversized_text_is_field_too_long_or_too_large(obj: dict[str, Any], extra: int) -> None:
    obj["text"] = "é" * (LIMITS.max_text_chars + extra)
    raw = encode(obj)
    expected = Reason.TOO_LARGE if len(raw) > LIMITS.max_event_bytes else Reason.FIELD_TOO_LONG
    assert reason(raw) is expected


@FUZZ
@given(obj=valid_events, padding=st.integers(min_value=1, max_value=200_000))
def test_events_over_the_byte_limit_are_too_large(obj: dict[str, Any], padding: int) -> None:
    obj["padding"] = "p" * (LIMITS.max_event_bytes + padding)
    assert reason(encode(obj)) is Reason.TOO_LARGE


# Byte sequences that are never valid UTF-8, wherever they stand.
invalid_utf8 = st.one_of(
    st.integers(0x80, 0xBF).map(lambda b: bytes([b])),  # a lone continuation byte
    st.sampled_from([b"\xc0\x80", b"\xc1\xbf", b"\xf5\x80\x80\x80", b"\xff", b"\xfe"]),
    st.sampled_from([b"\xe2\x82", b"\xf0\x9f\x98"]).map(lambda b: b + b"x"),  # cut short
    st.sampled_from([b"\xed\xa0\x80", b"\xed\xbf\xbf"]),  # an encoded surrogate
)


@FUZZ
@given(obj=valid_events, junk=invalid_utf8, where=st.floats(0, 1))
def test_invalid_utf8_anywhere_is_invalid_utf8(
    obj: dict[str, Any], junk: bytes, where: float
) -> None:
    raw = encode(obj)
    assume(len(raw) + len(junk) <= LIMITS.max_event_bytes)
    at = int(where * len(raw))
    assert reason(raw[:at] + junk + raw[at:]) is Reason.INVALID_UTF8


lone_surrogates = st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}")


@FUZZ
@given(
    obj=valid_events,
    field=st.sampled_from(["id", "brand", "text", "platform", "repost_of"]),
    surrogate=lone_surrogates,
)
def test_lone_surrogate_escapes_are_rejected(
    obj: dict[str, Any], field: str, surrogate: str
) -> None:
    """``"\\ud800"`` is valid JSON but not text: it cannot be a Kafka key, a metric label
    or UTF-8 output, so the event is rejected like other bytes that are not UTF-8 text."""
    obj[field] = "x"
    raw = encode(obj, ascii_only=True).replace(
        f'"{field}": "x"'.encode(), f'"{field}": "x{surrogate}"'.encode()
    )
    assert surrogate.encode() in raw
    assert reason(raw) is Reason.INVALID_UTF8


non_finite = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])


@FUZZ
@given(
    obj=valid_events,
    path=st.sampled_from(
        [
            ("created_at",),
            ("author", "followers"),
            ("engagement", "reposts"),
            ("engagement", "likes"),
            ("engagement", "replies"),
        ]
    ),
    literal=non_finite,
)
def test_nan_and_infinite_numbers_are_bad_number(
    obj: dict[str, Any], path: tuple[str, ...], literal: bytes
) -> None:
    marker = 123_456_789_123
    target = obj
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = marker
    raw = encode(obj).replace(str(marker).encode(), literal)
    assert reason(raw) is Reason.BAD_NUMBER


@FUZZ
@given(
    obj=valid_events,
    created_at=st.one_of(
        st.floats(min_value=NOW + LIMITS.max_future_seconds + 1, max_value=1e15),
        st.integers(min_value=int(NOW + LIMITS.max_future_seconds) + 1, max_value=10**15),
        st.floats(min_value=-1e15, max_value=LIMITS.min_created_at - 1e-3),
        st.integers(min_value=-(10**15), max_value=int(LIMITS.min_created_at) - 1),
        st.sampled_from(
            [
                "0001-01-01T00:00:00+00:00",
                "1999-12-31T23:59:59Z",
                "1970-01-01T00:00:00-05:00",
                "9999-12-31T23:59:59+00:00",
                "2999-01-01T00:00:00+14:00",
            ]
        ),
    ),
)
def test_far_future_and_far_past_timestamps_are_out_of_range(
    obj: dict[str, Any], created_at: float | int | str
) -> None:
    obj["created_at"] = created_at
    assert reason(encode(obj)) is Reason.TIMESTAMP_OUT_OF_RANGE


@FUZZ
@given(obj=valid_events, allowed=st.sets(required_text.map(str.lower), min_size=1, max_size=5))
def test_brands_outside_the_allow_list_are_unknown_brand(
    obj: dict[str, Any], allowed: set[str]
) -> None:
    limits = Limits(allowed_brands=frozenset(b.strip() for b in allowed))
    brand = obj["brand"].strip().lower()
    result = parse(encode(obj), limits)
    if brand in limits.allowed_brands:
        assert isinstance(result, Mention)
    else:
        assert isinstance(result, Rejection) and result.reason is Reason.UNKNOWN_BRAND


@FUZZ
@given(
    obj=valid_events,
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
)
def test_any_corruption_of_a_valid_event_is_classified_never_raised(
    obj: dict[str, Any], cut: float, flips: list[tuple[float, int]]
) -> None:
    """Truncations and overwritten bytes: the result is a Mention that survives the
    worker's path, or a Rejection with a reason code and a detail; and it is what the
    standard library's JSON reading alone decides (see ``standard`` below)."""
    raw = bytearray(encode(obj))
    for where, byte in flips:
        raw[int(where * (len(raw) - 1))] = byte
    raw = raw[: max(0, int(cut * len(raw)))] if cut < 0.9 else raw
    result = parse(bytes(raw))
    assert result == standard(bytes(raw))
    if isinstance(result, Rejection):
        assert isinstance(result.reason, Reason) and result.detail
        result.detail.encode("utf-8", "replace")
    else:
        survives_the_worker(result)


# --- the fast reading (orjson) against the standard library's ------------------------------


def standard(raw: bytes, limits: Limits = LIMITS) -> Mention | Rejection:
    """The event as the standard library's JSON reading alone decides it."""
    try:
        return model._parse(raw, NOW, limits, fast=False)
    except model._Invalid as invalid:
        return invalid.rejection


# Numbers where the two readers could part: integers beyond 64 bits (orjson makes them
# floats), floats with many digits, negative zero, exponents.
awkward_numbers = st.one_of(
    st.integers(min_value=2**63 - 5, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=-(2**63) + 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 1e308, 5e-324, 2**53 + 1, 10**12, 10**12 + 1]),
)


@FUZZ
@given(obj=valid_events, ascii_only=st.booleans())
def test_valid_events_read_fast_as_the_standard_library_reads_them(
    obj: dict[str, Any], ascii_only: bool
) -> None:
    raw = encode(obj, ascii_only)
    assert parse(raw) == standard(raw)


@FUZZ
@given(
    obj=valid_events,
    where=st.sampled_from(
        [("created_at",), ("author", "id"), ("author", "followers"), ("engagement", "likes")]
    ),
    number=awkward_numbers,
)
def test_awkward_numbers_read_fast_as_the_standard_library_reads_them(
    obj: dict[str, Any], where: tuple[str, ...], number: int | float
) -> None:
    target = obj
    for key in where[:-1]:
        target = target.setdefault(key, {})
    target[where[-1]] = number
    raw = encode(obj)
    assert parse(raw) == standard(raw)


def test_an_author_id_beyond_64_bits_keeps_its_digits() -> None:
    event = {"id": "m1", "brand": "acme", "text": "hi", "created_at": NOW - 60}
    event["author"] = {"id": 2**70 + 1, "followers": 3}
    result = parse(encode(event))
    assert isinstance(result, Mention) and result.author.id == str(2**70 + 1)
    event["author"] = {"id": 1.5}
    assert parse(encode(event)) == Rejection(
        Reason.WRONG_TYPE, "field 'author.id' must be a string or an integer"
    )


any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | awkward_numbers
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(
    obj=valid_events,
    field=st.sampled_from(["id", "brand", "text", "created_at", "author", "engagement", "lang"]),
    value=any_json,
)
def test_any_json_in_a_field_reads_fast_as_the_standard_library_reads_it(
    obj: dict[str, Any], field: str, value: Any
) -> None:
    obj[field] = value
    raw = encode(obj)
    assert parse(raw) == standard(raw)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_any_bytes_read_fast_as_the_standard_library_reads_them(raw: bytes) -> None:
    assert parse(raw) == standard(raw)
