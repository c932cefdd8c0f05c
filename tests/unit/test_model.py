"""Unit tests of ``detector.model.parse_mention``: raw bytes in, Mention or Rejection out."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.errors import ConfigError
from detector.model import (
    Author,
    Engagement,
    Limits,
    Mention,
    Reason,
    Rejection,
    admit_brand,
    parse_mention,
)

# The processing clock of every test: 2023-11-14T22:13:20Z.
NOW = 1_700_000_000.0
NOW_ISO_Z = "2023-11-14T22:13:20Z"
DAY = 86_400.0
MAX_FUTURE = Limits().max_future_seconds

_DROP = object()  # marks a field to leave out of the event

BASE: dict[str, Any] = {
    "id": "m-1",
    "brand": "acme",
    "text": "I love my new acme rocket",
    "created_at": NOW_ISO_Z,
}


def event(**overrides: Any) -> bytes:
    """A valid mention event with some fields replaced (or dropped with ``_DROP``)."""
    obj = {**BASE, **overrides}
    obj = {k: v for k, v in obj.items() if v is not _DROP}
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def event_with_raw_field(name: str, raw_value: bytes) -> bytes:
    """A valid event plus one field whose JSON text is given verbatim (NaN, Infinity...)."""
    head = json.dumps({k: v for k, v in BASE.items() if k != name}).encode("utf-8")
    return head[:-1] + b', "' + name.encode() + b'": ' + raw_value + b"}"


# --------------------------------------------------------------------------------------
# Good events
# --------------------------------------------------------------------------------------

GOOD = [
    pytest.param(event(), None, {"id": "m-1", "brand": "acme", "created_at": NOW}, id="iso-z"),
    pytest.param(
        event(created_at="2023-11-14T22:13:20z"), None, {"created_at": NOW}, id="iso-lower-z"
    ),
    pytest.param(
        event(created_at="2023-11-14T23:13:20+01:00"), None, {"created_at": NOW}, id="iso-plus-1h"
    ),
    pytest.param(
        event(created_at="2023-11-14T17:43:20-04:30"),
        None,
        {"created_at": NOW},
        id="iso-minus-4h30",
    ),
    pytest.param(
        event(created_at="2023-11-14T22:13:20.250Z"),
        None,
        {"created_at": NOW + 0.25},
        id="iso-fractional",
    ),
    pytest.param(
        event(created_at=1_699_999_000), None, {"created_at": 1_699_999_000.0}, id="epoch-int"
    ),
    pytest.param(
        event(created_at=1_699_999_000.75),
        None,
        {"created_at": 1_699_999_000.75},
        id="epoch-float",
    ),
    pytest.param(
        event(
            unknown="x",
            nested={"deep": [1, {"x": None}]},
            retweeted_status=None,
            score=1.5,
        ),
        None,
        {"id": "m-1", "brand": "acme"},
        id="extra-fields-ignored",
    ),
    pytest.param(event(brand="  AcMe-Air \t"), None, {"brand": "acme-air"}, id="brand-normalised"),
    pytest.param(
        event(brand=" ACME "),
        Limits(allowed_brands=frozenset({"acme"})),
        {"brand": "acme"},
        id="allowed-brand-after-normalisation",
    ),
    pytest.param(
        event(
            author={"id": 42, "followers": 1200},
            engagement={"reposts": 3, "likes": 10.0, "replies": None},
            platform="x",
            lang="en",
            repost_of="m-0",
        ),
        None,
        {
            "author": Author(id="42", followers=1200),
            "engagement": Engagement(reposts=3, likes=10, replies=0),
            "platform": "x",
            "lang": "en",
            "repost_of": "m-0",
        },
        id="author-engagement-optional-fields",
    ),
    pytest.param(
        event(author=None, engagement=None, platform=None, lang=None, repost_of=None),
        None,
        {"author": Author(), "engagement": Engagement(), "platform": None, "repost_of": None},
        id="optional-sections-null",
    ),
    pytest.param(
        event(created_at="2000-01-01T00:00:00Z"),
        None,
        {"created_at": 946_684_800.0},
        id="oldest-allowed-timestamp",
    ),
    pytest.param(
        event(created_at=NOW + MAX_FUTURE),
        None,
        {"created_at": NOW + MAX_FUTURE},
        id="newest-allowed-timestamp",
    ),
    pytest.param(
        event(text="é" * 10_000, id="i" * 256, brand="b" * 100),
        None,
        {"brand": "b" * 100, "id": "i" * 256},
        id="fields-at-their-length-limits",
    ),
]


@pytest.mark.parametrize(("raw", "limits", "expected"), GOOD)
def test_good_events_parse(raw: bytes, limits: Limits | None, expected: dict[str, Any]) -> None:
    result = parse_mention(raw, now=NOW, limits=limits)
    assert isinstance(result, Mention), result
    for name, value in expected.items():
        assert getattr(result, name) == value, name
    assert isinstance(result.created_at, float)


def test_good_event_full_shape() -> None:
    raw = event(author={"id": "u-9", "followers": 0}, engagement={"reposts": 1})
    assert parse_mention(raw, now=NOW) == Mention(
        id="m-1",
        brand="acme",
        text="I love my new acme rocket",
        created_at=NOW,
        author=Author(id="u-9", followers=0),
        engagement=Engagement(reposts=1),
    )


def test_reach_is_followers_with_floor_of_one() -> None:
    with_followers = parse_mention(event(author={"followers": 5000}), now=NOW)
    without = parse_mention(event(), now=NOW)
    assert isinstance(with_followers, Mention) and isinstance(without, Mention)
    assert with_followers.reach == 5000
    assert without.reach == 1


# --------------------------------------------------------------------------------------
# Bad events: one row per way of being wrong, each with its stable reason code
# --------------------------------------------------------------------------------------

BAD = [
    # too_large
    pytest.param(
        event(text="x" * 70_000), None, Reason.TOO_LARGE, "limit 65536", id="too-large-default"
    ),
    pytest.param(event(), Limits(max_event_bytes=10), Reason.TOO_LARGE, "limit 10", id="too-large"),
    # invalid_utf8
    pytest.param(b"\xff\xfe", None, Reason.INVALID_UTF8, "byte 0", id="utf8-bom-ish"),
    pytest.param(
        b'{"id": "m-1", "brand": "ac\xc3me"}', None, Reason.INVALID_UTF8, "", id="utf8-truncated"
    ),
    pytest.param(
        b'{"id": "\xed\xa0\x80"}', None, Reason.INVALID_UTF8, "", id="utf8-encoded-surrogate"
    ),
    # invalid_json
    pytest.param(b"", None, Reason.INVALID_JSON, "", id="json-empty"),
    pytest.param(b'{"id": "m-1",', None, Reason.INVALID_JSON, "line 1", id="json-truncated"),
    pytest.param(b"{'id': 'm-1'}", None, Reason.INVALID_JSON, "", id="json-single-quotes"),
    pytest.param(b"[" * 50_000, None, Reason.INVALID_JSON, "deep", id="json-too-deep"),
    # not_an_object
    pytest.param(b'[{"id": "m-1"}]', None, Reason.NOT_AN_OBJECT, "list", id="json-list"),
    pytest.param(b'"hello"', None, Reason.NOT_AN_OBJECT, "str", id="json-string"),
    pytest.param(b"null", None, Reason.NOT_AN_OBJECT, "NoneType", id="json-null"),
    pytest.param(b"42", None, Reason.NOT_AN_OBJECT, "int", id="json-number"),
    # missing_field
    pytest.param(event(id=_DROP), None, Reason.MISSING_FIELD, "'id'", id="missing-id"),
    pytest.param(event(brand=_DROP), None, Reason.MISSING_FIELD, "'brand'", id="missing-brand"),
    pytest.param(event(text=_DROP), None, Reason.MISSING_FIELD, "'text'", id="missing-text"),
    pytest.param(
        event(created_at=_DROP), None, Reason.MISSING_FIELD, "'created_at'", id="missing-created"
    ),
    pytest.param(event(brand=None), None, Reason.MISSING_FIELD, "'brand'", id="null-brand"),
    pytest.param(
        event(created_at=None), None, Reason.MISSING_FIELD, "'created_at'", id="null-created"
    ),
    # wrong_type
    pytest.param(event(brand=7), None, Reason.WRONG_TYPE, "'brand'", id="brand-int"),
    pytest.param(event(id=12), None, Reason.WRONG_TYPE, "'id'", id="id-int"),
    pytest.param(event(text=["a"]), None, Reason.WRONG_TYPE, "'text'", id="text-list"),
    pytest.param(event(created_at=True), None, Reason.WRONG_TYPE, "created_at", id="created-bool"),
    pytest.param(
        event(created_at={"s": 1}), None, Reason.WRONG_TYPE, "created_at", id="created-object"
    ),
    pytest.param(
        event(author={"followers": "12"}),
        None,
        Reason.WRONG_TYPE,
        "author.followers",
        id="followers-string",
    ),
    pytest.param(
        event(author={"followers": True}),
        None,
        Reason.WRONG_TYPE,
        "author.followers",
        id="followers-bool",
    ),
    pytest.param(event(author=["u-1"]), None, Reason.WRONG_TYPE, "'author'", id="author-list"),
    pytest.param(event(author={"id": 1.5}), None, Reason.WRONG_TYPE, "author.id", id="author-id"),
    pytest.param(event(engagement="lots"), None, Reason.WRONG_TYPE, "engagement", id="engagement"),
    pytest.param(event(platform=3), None, Reason.WRONG_TYPE, "'platform'", id="platform-int"),
    # empty_field
    pytest.param(event(id=""), None, Reason.EMPTY_FIELD, "'id'", id="empty-id"),
    pytest.param(event(brand="   "), None, Reason.EMPTY_FIELD, "'brand'", id="blank-brand"),
    # field_too_long
    pytest.param(event(brand="b" * 101), None, Reason.FIELD_TOO_LONG, "'brand'", id="long-brand"),
    pytest.param(event(id="i" * 257), None, Reason.FIELD_TOO_LONG, "'id'", id="long-id"),
    pytest.param(event(text="t" * 10_001), None, Reason.FIELD_TOO_LONG, "'text'", id="long-text"),
    pytest.param(event(lang="x" * 17), None, Reason.FIELD_TOO_LONG, "'lang'", id="long-lang"),
    # bad_number
    pytest.param(
        event_with_raw_field("created_at", b"NaN"), None, Reason.BAD_NUMBER, "NaN", id="nan"
    ),
    pytest.param(
        event_with_raw_field("created_at", b"-Infinity"),
        None,
        Reason.BAD_NUMBER,
        "Infinity",
        id="minus-infinity",
    ),
    pytest.param(
        event_with_raw_field("created_at", b"1e400"),
        None,
        Reason.BAD_NUMBER,
        "created_at",
        id="float-overflow",
    ),
    pytest.param(
        event(author={"followers": -1}),
        None,
        Reason.BAD_NUMBER,
        "author.followers",
        id="negative-followers",
    ),
    pytest.param(
        event(engagement={"likes": 10**13}),
        None,
        Reason.BAD_NUMBER,
        "engagement.likes",
        id="absurd-likes",
    ),
    # bad_timestamp
    pytest.param(
        event(created_at="2023-11-14T22:13:20"),
        None,
        Reason.BAD_TIMESTAMP,
        "offset",
        id="iso-without-offset",
    ),
    pytest.param(
        event(created_at="2023-11-14"), None, Reason.BAD_TIMESTAMP, "offset", id="date-only"
    ),
    pytest.param(
        event(created_at="yesterday at noon"),
        None,
        Reason.BAD_TIMESTAMP,
        "ISO-8601",
        id="garbage-string",
    ),
    pytest.param(event(created_at=""), None, Reason.BAD_TIMESTAMP, "", id="empty-string"),
    pytest.param(event(created_at="Z"), None, Reason.BAD_TIMESTAMP, "", id="only-z"),
    # timestamp_out_of_range
    pytest.param(
        event(created_at="1990-06-01T12:00:00Z"),
        None,
        Reason.TIMESTAMP_OUT_OF_RANGE,
        "before",
        id="year-1990",
    ),
    pytest.param(
        event(created_at=0), None, Reason.TIMESTAMP_OUT_OF_RANGE, "before", id="epoch-zero"
    ),
    pytest.param(
        event(created_at=NOW + 10 * DAY),
        None,
        Reason.TIMESTAMP_OUT_OF_RANGE,
        "future",
        id="ten-days-ahead",
    ),
    pytest.param(
        event(created_at=NOW + MAX_FUTURE + 1),
        None,
        Reason.TIMESTAMP_OUT_OF_RANGE,
        "future",
        id="just-past-future-limit",
    ),
    pytest.param(
        event(created_at=1_700_000_000_000),
        None,
        Reason.TIMESTAMP_OUT_OF_RANGE,
        "future",
        id="epoch-milliseconds",
    ),
    # unknown_brand
    pytest.param(
        event(brand="Globex"),
        Limits(allowed_brands=frozenset({"acme"})),
        Reason.UNKNOWN_BRAND,
        "globex",
        id="unknown-brand",
    ),
]


@pytest.mark.parametrize(("raw", "limits", "reason", "detail_part"), BAD)
def test_bad_events_are_rejected_with_reason(
    raw: bytes, limits: Limits | None, reason: Reason, detail_part: str
) -> None:
    result = parse_mention(raw, now=NOW, limits=limits)
    assert isinstance(result, Rejection), result
    assert result.reason is reason, result
    assert detail_part in result.detail
    assert str(result) == f"{reason.value}: {result.detail}"


def test_bad_table_covers_every_reason() -> None:
    covered = {p.values[2] for p in BAD}
    # The brand limit needs the set of brands with a state: ``admit_brand`` decides it.
    assert covered == set(Reason) - {Reason.TOO_MANY_BRANDS}


def test_reason_codes_are_stable() -> None:
    # The values are a contract: metrics labels and dead-letter headers carry them.
    assert [r.value for r in Reason] == [
        "too_large",
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "empty_field",
        "field_too_long",
        "bad_number",
        "bad_timestamp",
        "timestamp_out_of_range",
        "unknown_brand",
        "too_many_brands",
    ]


def test_future_limit_is_relative_to_now_argument() -> None:
    raw = event(created_at=NOW + 10 * DAY)
    assert isinstance(parse_mention(raw, now=NOW), Rejection)
    assert isinstance(parse_mention(raw, now=NOW + 10 * DAY), Mention)


def test_text_limit_counts_characters_not_bytes() -> None:
    # 10 000 two-byte characters is 20 000 bytes but exactly the character limit.
    assert isinstance(parse_mention(event(text="é" * 10_000), now=NOW), Mention)
    assert isinstance(parse_mention(event(text="é" * 10_001), now=NOW), Rejection)


# --------------------------------------------------------------------------------------
# Known bugs: parse_mention promises never to raise on bad input.
# --------------------------------------------------------------------------------------


def test_integer_created_at_beyond_float_range_is_rejected() -> None:
    raw = event_with_raw_field("created_at", b"9" * 400)
    result = parse_mention(raw, now=NOW)
    assert isinstance(result, Rejection)
    assert result.reason in {Reason.BAD_NUMBER, Reason.TIMESTAMP_OUT_OF_RANGE}


@pytest.mark.skipif(sys.get_int_max_str_digits() == 0, reason="int digit limit disabled")
def test_integer_literal_beyond_int_digit_limit_does_not_raise() -> None:
    digits = sys.get_int_max_str_digits() + 1
    raw = event_with_raw_field("unknown_extra", b"7" * digits)
    assert len(raw) <= Limits().max_event_bytes
    result = parse_mention(raw, now=NOW)
    assert isinstance(result, Mention | Rejection)


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
timestamps = (
    json_values
    | st.floats(min_value=0, max_value=4e9)
    | st.datetimes().map(lambda d: d.isoformat())
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
)
# Objects shaped like mentions, so that validation past the JSON layer is exercised.
mention_like = st.fixed_dictionaries(
    {
        "id": st.text(max_size=300) | json_values,
        "brand": st.text(max_size=120) | json_values,
        "text": st.text(max_size=50) | json_values,
        "created_at": timestamps,
    },
    optional={
        "author": json_values
        | st.fixed_dictionaries({}, optional={"id": json_values, "followers": json_values}),
        "engagement": json_values
        | st.fixed_dictionaries({}, optional={"likes": json_values, "reposts": json_values}),
        "platform": json_values,
        "repost_of": json_values,
    },
)
limits_strategy = st.sampled_from([None, Limits(allowed_brands=frozenset({"acme", "0"}))])
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None)


def _check_result(result: object, now: float, limits: Limits | None) -> None:
    lim = limits or Limits()
    assert isinstance(result, Mention | Rejection)
    if isinstance(result, Rejection):
        assert isinstance(result.reason, Reason)
        assert result.detail
        return
    assert result.brand == result.brand.strip().lower() and result.brand
    assert result.id.strip() and len(result.id) <= lim.max_id_chars
    assert len(result.text) <= lim.max_text_chars
    assert math.isfinite(result.created_at)
    assert lim.min_created_at <= result.created_at <= now + lim.max_future_seconds
    assert result.author.followers >= 0 and result.reach >= 1
    if lim.allowed_brands:
        assert result.brand in lim.allowed_brands


@PROPERTY_SETTINGS
@given(raw=st.binary(max_size=2_000), limits=limits_strategy)
def test_never_raises_on_arbitrary_bytes(raw: bytes, limits: Limits | None) -> None:
    _check_result(parse_mention(raw, now=NOW, limits=limits), NOW, limits)


@PROPERTY_SETTINGS
@given(value=json_values, limits=limits_strategy)
def test_never_raises_on_arbitrary_json(value: Any, limits: Limits | None) -> None:
    raw = json.dumps(value).encode("utf-8")
    _check_result(parse_mention(raw, now=NOW, limits=limits), NOW, limits)


@PROPERTY_SETTINGS
@given(obj=mention_like, limits=limits_strategy, now=st.floats(min_value=9e8, max_value=3e9))
def test_never_raises_on_mention_shaped_objects(
    obj: dict[str, Any], limits: Limits | None, now: float
) -> None:
    raw = json.dumps(obj).encode("utf-8")
    _check_result(parse_mention(raw, now=now, limits=limits), now, limits)


@PROPERTY_SETTINGS
@given(
    mention_id=st.text(min_size=1, max_size=256).filter(str.strip),
    brand=st.text(min_size=1, max_size=100).filter(str.strip),
    text=st.text(max_size=200),
    created_at=st.floats(min_value=946_684_800.0, max_value=NOW + MAX_FUTURE),
    followers=st.integers(min_value=0, max_value=10**12),
)
def test_valid_fields_round_trip(
    mention_id: str, brand: str, text: str, created_at: float, followers: int
) -> None:
    raw = event(
        id=mention_id,
        brand=brand,
        text=text,
        created_at=created_at,
        author={"followers": followers},
    )
    result = parse_mention(raw, now=NOW)
    assert isinstance(result, Mention), result
    assert (result.id, result.brand, result.text) == (mention_id, brand.strip().lower(), text)
    assert result.created_at == created_at
    assert result.author.followers == followers


def test_brand_limit_refuses_only_new_brands_once_full() -> None:
    limits = Limits(max_brands=3)
    assert admit_brand(False, 2, limits) is None
    refused = admit_brand(False, 3, limits)
    assert refused is not None and refused.reason is Reason.TOO_MANY_BRANDS
    assert "limit (validation.max_brands) is 3" in refused.detail
    # A brand with a state is never refused, even above the limit (a lowered limit).
    assert admit_brand(True, 3, limits) is None
    assert admit_brand(True, 10, limits) is None
    # 0: no limit.
    assert admit_brand(False, 10**6, Limits(max_brands=0)) is None


def test_brand_limit_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="max_brands"):
        Limits(max_brands=-1)


def test_replay_applies_the_brand_limit_like_the_worker() -> None:
    from detector.replay import Replayer
    from detector.sentiment import VaderScorer
    from detector.thresholds import ThresholdBook, Thresholds

    replayer = Replayer(ThresholdBook(defaults=Thresholds()), VaderScorer(), Limits(max_brands=2))
    for n, brand in enumerate(["a", "b", "c", "a", "c", "b"]):
        replayer.feed(event(id=f"m{n}", brand=brand, created_at=NOW - 60 + n))
    assert set(replayer.states) == {"a", "b"}
    assert replayer.stats.rejected == {"too_many_brands": 2}
    assert replayer.stats.applied == 4
