"""Live configuration over a compacted control topic: threshold changes and planned events.

Operators publish with ``crisis-radar thresholds set|unset`` and ``crisis-radar plan
add|remove``; every worker reads the whole topic from its beginning at start-up (without a
consumer group, so each worker sees every record) and then follows it, applying changes
without a restart. One record per key, so compaction keeps the latest of each:

- ``thresholds/<brand>`` (``thresholds/*`` for every brand): the full set of live
  overrides of that scope, ``{"values": {key: value, ...}, "by": ..., "at": ..., "note": ...}``;
- ``plan/<brand>/<id>``: one planned event, ``{"start": ..., "end": ..., "expect": ..., ...}``.

A record with an empty value (a tombstone) removes the key. Precedence of thresholds:
built-in defaults < the YAML file (defaults, then the brand's section) < live ``*`` < live
brand. Every value is validated by the publisher and again by each worker; a worker logs
and counts a record it refuses, and keeps what it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from detector.errors import ConfigError
from detector.model import normalise_brand
from detector.plans import PlannedEvent
from detector.thresholds import ThresholdBook, Thresholds, threshold_keys, updated

log = logging.getLogger("crisis_radar.control")

CONTROL_VERSION = 1
ALL_BRANDS = "*"
THRESHOLDS_PREFIX = "thresholds/"
PLAN_PREFIX = "plan/"
# These shape the stored brand state; changing them needs a new deployment, not a live change.
NOT_LIVE = frozenset({"bucket_seconds", "season_slot_minutes"})


class ControlError(ConfigError):
    """A control record or command that cannot be applied."""


def now_iso(now: float | None = None) -> str:
    moment = time.time() if now is None else now
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def default_actor() -> str:
    """Who makes a change when ``--by`` is not given: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def parse_instant(text: str, what: str) -> float:
    """An ISO-8601 time with a UTC offset (``Z`` or ``+01:00``) as Unix seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ControlError(f"{what} {text!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise ControlError(f"{what} {text!r} has no UTC offset; add Z or e.g. +01:00")
    return moment.timestamp()


def scope_of(brand: str) -> str:
    return ALL_BRANDS if brand == ALL_BRANDS else normalise_brand(brand)


@dataclass(frozen=True, slots=True)
class Override:
    """The live threshold values of one scope (a brand, or ``*``), and who set them."""

    scope: str
    values: Mapping[str, Any]
    by: str
    at: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    brand: str
    event: PlannedEvent
    by: str
    at: str


@dataclass(frozen=True, slots=True)
class Applied:
    """What one control record did, for the log and the metrics."""

    kind: str  # "thresholds" or "plan"
    action: str  # "applied" or "removed"
    message: str


def check_live_keys(values: Mapping[str, Any]) -> None:
    for key in values:
        if key in NOT_LIVE:
            raise ControlError(
                f"{key} cannot change live (it shapes the stored state); change it in the "
                "config file and redeploy"
            )


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``key=value`` words as a mapping; values are read as YAML scalars (4, 0.5, true)."""
    import yaml

    values: dict[str, Any] = {}
    known = set(threshold_keys())
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ControlError(f"{item!r} is not key=value")
        if key not in known:
            raise ControlError(f"unknown threshold {key!r} (known: {', '.join(sorted(known))})")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ControlError(f"{key}: {raw!r} is not a value") from None
        values[key] = value
    return values


# --- records ----------------------------------------------------------------------------------


def thresholds_record(override: Override) -> tuple[bytes, bytes]:
    body = {
        "version": CONTROL_VERSION,
        "scope": override.scope,
        "values": dict(override.values),
        "by": override.by,
        "at": override.at,
        "note": override.note,
    }
    return f"{THRESHOLDS_PREFIX}{override.scope}".encode(), _encode(body)


def plan_record(plan: Plan) -> tuple[bytes, bytes]:
    e = plan.event
    body = {
        "version": CONTROL_VERSION,
        "brand": plan.brand,
        "id": e.id,
        "start": now_iso(e.start),
        "end": now_iso(e.end),
        "expect": e.expect,
        "note": e.note,
        "by": plan.by,
        "at": plan.at,
    }
    return plan_key(plan.brand, e.id), _encode(body)


def plan_key(brand: str, plan_id: str) -> bytes:
    return f"{PLAN_PREFIX}{brand}/{plan_id}".encode()


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _decode(value: bytes) -> dict[str, Any]:
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ControlError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ControlError("not a JSON object")
    if body.get("version") != CONTROL_VERSION:
        raise ControlError(f"unsupported control record version {body.get('version')!r}")
    return body


def _text(body: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise ControlError(f"{key} must be a string")
    return value


def _override_from(scope: str, body: dict[str, Any]) -> Override:
    values = body.get("values")
    if not isinstance(values, dict):
        raise ControlError("values must be a mapping")
    return Override(
        scope=scope,
        values=values,
        by=_text(body, "by", "unknown"),
        at=_text(body, "at", ""),
        note=_text(body, "note", ""),
    )


def _plan_from(brand: str, plan_id: str, body: dict[str, Any]) -> Plan:
    expect = body.get("expect")
    if not isinstance(expect, int | float) or isinstance(expect, bool):
        raise ControlError("expect must be a number")
    event = PlannedEvent(
        id=plan_id,
        start=parse_instant(_text(body, "start"), "start"),
        end=parse_instant(_text(body, "end"), "end"),
        expect=float(expect),
        note=_text(body, "note", ""),
    )
    return Plan(brand=brand, event=event, by=_text(body, "by", "unknown"), at=_text(body, "at", ""))


# --- the live view ----------------------------------------------------------------------------


@dataclass
class LiveConfig:
    """The file's thresholds with the control topic's overrides and plans applied.
    ``for_brand`` is what the detect agent calls per mention: it is cached per brand
    and the cache is dropped on every change."""

    book: ThresholdBook
    overrides: dict[str, Override] = field(default_factory=dict)
    plans: dict[str, dict[str, Plan]] = field(default_factory=dict)
    _cache: dict[str, Thresholds] = field(default_factory=dict)

    def for_brand(self, brand: str) -> Thresholds:
        cached = self._cache.get(brand)
        if cached is None:
            try:
                cached = self.effective(brand)
            except ConfigError as exc:
                # Each layer was valid on its own; together they are not (e.g. a live
                # "*" value against a brand's file section). Keep the file's values.
                log.error(
                    "live thresholds of %s are inconsistent (%s); using the file's", brand, exc
                )
                cached = self._with_plans(brand, self.book.for_brand(brand))
            self._cache[brand] = cached
        return cached

    def effective(self, brand: str, extra: Mapping[str, Any] | None = None) -> Thresholds:
        """Thresholds of ``brand`` (``*``: of a brand without a file section) with the
        live layers, and ``extra`` as a would-be change of the brand's (or ``*``'s) layer."""
        base = self.book.defaults if brand == ALL_BRANDS else self.book.for_brand(brand)
        layers: list[tuple[str, Mapping[str, Any]]] = []
        for scope in (ALL_BRANDS, brand) if brand != ALL_BRANDS else (ALL_BRANDS,):
            values = dict(self.overrides[scope].values) if scope in self.overrides else {}
            if extra is not None and scope == brand:
                values.update(extra)
            if values:
                layers.append((scope, values))
        thresholds = base
        for scope, values in layers:
            thresholds = updated(thresholds, values, f"live thresholds of {scope}")
        return thresholds if brand == ALL_BRANDS else self._with_plans(brand, thresholds)

    def _with_plans(self, brand: str, thresholds: Thresholds) -> Thresholds:
        plans = self.plans.get(brand)
        if not plans:
            return thresholds
        events = tuple(p.event for _, p in sorted(plans.items()))
        return _replace_plans(thresholds, events)

    def source_of(self, brand: str, key: str) -> str:
        """Where the effective value of ``key`` for ``brand`` comes from."""
        for scope in (brand, ALL_BRANDS):
            override = self.overrides.get(scope)
            if override is not None and key in override.values:
                return f"live ({scope}) by {override.by} at {override.at}"
        if brand in self.book.brands and getattr(self.book.brands[brand], key) != getattr(
            self.book.defaults, key
        ):
            return "file (brand)"
        return "file"

    def apply(self, key: bytes | None, value: bytes | None) -> Applied:
        """Apply one control record; raise ``ControlError`` (state unchanged) if invalid."""
        if key is None:
            raise ControlError("record without a key")
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise ControlError(f"key {key!r} is not UTF-8") from None
        if name.startswith(THRESHOLDS_PREFIX):
            return self._apply_thresholds(name[len(THRESHOLDS_PREFIX) :], value)
        if name.startswith(PLAN_PREFIX):
            brand, sep, plan_id = name[len(PLAN_PREFIX) :].partition("/")
            if not sep or not brand or not plan_id:
                raise ControlError(f"key {name!r} is not plan/BRAND/ID")
            return self._apply_plan(brand, plan_id, value)
        raise ControlError(f"unknown control key {name!r}")

    def _apply_thresholds(self, scope: str, value: bytes | None) -> Applied:
        if scope != scope_of(scope):
            raise ControlError(f"scope {scope!r} is not a normalised brand name")
        if value is None:
            old = self.overrides.pop(scope, None)
            self._cache.clear()
            dropped = ", ".join(sorted(old.values)) if old else "nothing"
            return Applied(
                "thresholds", "removed", f"live thresholds of {scope} removed ({dropped})"
            )
        override = _override_from(scope, _decode(value))
        check_live_keys(override.values)
        previous = self.overrides.get(scope)
        trial = LiveConfig(self.book, {**self.overrides, scope: override}, self.plans)
        trial.effective(scope)  # raises ControlError/ConfigError naming the bad key
        for brand in self.book.brands:
            if scope == ALL_BRANDS:
                trial.effective(brand)
        self.overrides[scope] = override
        self._cache.clear()
        old_values = dict(previous.values) if previous else {}
        changes = [
            f"{k} {old_values.get(k, '(file)')} -> {v}"
            for k, v in sorted(override.values.items())
            if old_values.get(k, object()) != v
        ] + [
            f"{k} {v} -> (file)" for k, v in sorted(old_values.items()) if k not in override.values
        ]
        note = f" ({override.note})" if override.note else ""
        return Applied(
            "thresholds",
            "applied",
            f"live thresholds of {scope} changed by {override.by} at {override.at}{note}: "
            + (", ".join(changes) or "no change"),
        )

    def _apply_plan(self, brand: str, plan_id: str, value: bytes | None) -> Applied:
        if value is None:
            removed = self.plans.get(brand, {}).pop(plan_id, None)
            self._cache.pop(brand, None)
            what = "removed" if removed else "was not known"
            return Applied("plan", "removed", f"planned event {brand}/{plan_id} {what}")
        try:
            plan = _plan_from(brand, plan_id, _decode(value))
        except ConfigError as exc:
            raise ControlError(str(exc)) from None
        self.plans.setdefault(brand, {})[plan_id] = plan
        self._cache.pop(brand, None)
        e = plan.event
        return Applied(
            "plan",
            "applied",
            f"planned event {brand}/{plan_id} by {plan.by} at {plan.at}: {now_iso(e.start)} to "
            f"{now_iso(e.end)}, expect {e.expect:g}x" + (f" ({e.note})" if e.note else ""),
        )

    def snapshot(self) -> Iterator[tuple[bytes, bytes]]:
        """The records that would rebuild this view (for ``show`` and tests)."""
        for override in self.overrides.values():
            yield thresholds_record(override)
        for plans in self.plans.values():
            for plan in plans.values():
                yield plan_record(plan)


def _replace_plans(thresholds: Thresholds, events: tuple[PlannedEvent, ...]) -> Thresholds:
    import dataclasses

    return dataclasses.replace(thresholds, plans=events)


# --- the worker's follower ---------------------------------------------------------------------


async def follow(
    brokers: list[str],
    topic: str,
    live: LiveConfig,
    on_applied: Callable[[str, str], None],
    ready: asyncio.Event,
    retry_seconds: float = 2.0,
) -> None:
    """Read the control topic from its beginning and follow it for ever, applying each
    record to ``live``. ``ready`` is set once the records present at start-up are applied.
    ``on_applied(kind, outcome)`` after each record (outcome: applied, removed, refused).
    Broker trouble is logged and retried; it never stops the worker."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    delay = retry_seconds
    while True:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=brokers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="crisis-radar-control",
        )
        try:
            await consumer.start()
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer.topics()  # refresh metadata
                partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                log.warning("control topic %s does not exist yet; live changes wait for it", topic)
                ready.set()
                raise _Retry
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            ends = await consumer.end_offsets(assigned)
            delay = retry_seconds
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=500)
                for records in batches.values():
                    for record in records:
                        _apply_one(live, record, on_applied)
                if not ready.is_set() and await _caught_up(consumer, assigned, ends):
                    log.info("control topic %s read: %s", topic, _summary(live))
                    ready.set()
        except asyncio.CancelledError:
            raise
        except _Retry:
            pass
        except Exception as exc:  # noqa: BLE001 - live changes must never stop detection
            level = logging.WARNING if isinstance(exc, KafkaError | OSError) else logging.ERROR
            log.log(level, "control topic %s: %r; retrying in %.0f s", topic, exc, delay)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


class _Retry(Exception):
    pass


async def _caught_up(consumer: Any, assigned: list[Any], ends: Mapping[Any, int]) -> bool:
    for tp in assigned:
        if await consumer.position(tp) < ends[tp]:
            return False
    return True


def kind_of(key: bytes | None) -> str:
    if key is not None and key.startswith(THRESHOLDS_PREFIX.encode()):
        return "thresholds"
    if key is not None and key.startswith(PLAN_PREFIX.encode()):
        return "plan"
    return "unknown"


def _apply_one(live: LiveConfig, record: Any, on_applied: Callable[[str, str], None]) -> None:
    try:
        applied = live.apply(record.key, record.value)
    except ConfigError as exc:
        where = f"{record.topic}/{record.partition}/{record.offset}"
        log.error("refused control record %s key %r: %s", where, record.key, exc)
        on_applied(kind_of(record.key), "refused")
        return
    log.warning("%s", applied.message)  # operators' changes belong in the log at any level
    on_applied(applied.kind, applied.action)


def _summary(live: LiveConfig) -> str:
    plans = sum(len(p) for p in live.plans.values())
    return f"{len(live.overrides)} threshold override(s), {plans} planned event(s)"
