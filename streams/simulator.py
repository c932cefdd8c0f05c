"""A built-in generator of realistic brand-mention streams, with scheduled crises.

Generation is deterministic for a seed and independent of Kafka: ``MentionSimulator``
yields mention events (dicts in the input contract) minute by event-minute; the CLI
paces them in accelerated event time and writes them to Kafka or to a JSONL file.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class BrandProfile:
    name: str
    handle: str
    product: str
    per_minute: float  # mean mentions per event-minute over a day
    negative_share: float = 0.12
    positive_share: float = 0.38


@dataclass(frozen=True, slots=True)
class Crisis:
    """A burst of reposted negative mentions for one brand."""

    brand: str
    start_minute: float  # event minutes after the stream's start
    duration_minutes: float = 15.0
    volume_factor: float = 5.0
    negative_share: float = 0.8
    viral_share: float = 0.6  # share of crisis mentions that repost the viral complaint

    def active(self, minute: float) -> bool:
        return self.start_minute <= minute < self.start_minute + self.duration_minutes


DEFAULT_BRANDS: tuple[BrandProfile, ...] = (
    BrandProfile("acme-air", "AcmeAir", "flight", 30.0),
    BrandProfile("northwind", "NorthwindTea", "tea", 60.0),
    BrandProfile("globex", "GlobexBank", "app", 25.0),
    BrandProfile("umbrella", "UmbrellaMobile", "phone", 40.0),
    BrandProfile("initech", "Initech", "printer", 6.0, negative_share=0.2),
)
DEFAULT_CRISES: tuple[Crisis, ...] = (Crisis("acme-air", start_minute=45.0),)

_POSITIVE = (
    "Loving my new {product} from @{handle}, great job!",
    "Huge thanks to @{handle} for the friendly help today :)",
    "@{handle} you made my day, excellent service",
    "The {product} from @{handle} is awesome, highly recommend",
    "Really happy with @{handle} this week. Nice work!",
    "Best {product} I have had in years, thank you @{handle}",
)
_NEUTRAL = (
    "Anyone know when @{handle} opens the new store in {city}?",
    "Reading about the @{handle} {product} lineup for next year",
    "@{handle} what time does support close on Fridays?",
    "Comparing the {product} from @{handle} with the alternatives",
    "Just got an email from @{handle} about my {product}",
    "On my way to {city}, using the @{handle} {product}",
)
_NEGATIVE = (
    "@{handle} my {product} broke after two days. Terrible support.",
    "Worst experience ever with @{handle}, still waiting for a refund",
    "@{handle} charged me twice and nobody answers. Unacceptable.",
    "So disappointed with the {product} from @{handle}, awful quality",
    "@{handle} cancelled again without notice, I am furious",
    "Never buying from @{handle} again, what a horrible mess",
)
_VIRAL = (
    "@{handle} left hundreds of us stranded in {city} with no help and no answers. "
    "Disgraceful, dangerous and completely unacceptable. Share this."
)
_CITIES = ("Lisbon", "Denver", "Osaka", "Leeds", "Lyon", "Austin", "Porto", "Graz")


@dataclass(slots=True)
class _BrandStream:
    profile: BrandProfile
    sequence: int = 0
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200))
    viral: dict[str, Any] | None = None


class MentionSimulator:
    """Deterministic mention stream: daily rhythm, random noise, a mix of sentiment,
    reposts with follower counts, and scheduled crises."""

    def __init__(
        self,
        start_time: float,
        brands: tuple[BrandProfile, ...] = DEFAULT_BRANDS,
        crises: tuple[Crisis, ...] = DEFAULT_CRISES,
        seed: int = 7,
        repost_share: float = 0.25,
    ) -> None:
        if not brands:
            raise ValueError("at least one brand is needed")
        self.start_time = start_time
        self.brands = brands
        self.crises = crises
        self.repost_share = repost_share
        self._rng = random.Random(seed)
        self._streams = {b.name: _BrandStream(b) for b in brands}

    def rate(self, profile: BrandProfile, event_time: float) -> float:
        """Expected mentions per minute at ``event_time``: a daily rhythm that peaks in
        the afternoon (UTC) and is lower at weekends."""
        moment = datetime.fromtimestamp(event_time, UTC)
        hour = moment.hour + moment.minute / 60.0
        daily = 1.0 + 0.5 * math.sin(2.0 * math.pi * (hour - 9.0) / 24.0)
        weekly = 0.8 if moment.weekday() >= 5 else 1.0
        return profile.per_minute * daily * weekly

    def minute(self, index: int) -> list[dict[str, Any]]:
        """Every mention of event-minute ``index`` (0 = start), in event-time order."""
        rng = self._rng
        minute_start = self.start_time + 60.0 * index
        events: list[dict[str, Any]] = []
        for name, stream in self._streams.items():
            expected = self.rate(stream.profile, minute_start)
            crisis = next((c for c in self.crises if c.brand == name and c.active(index)), None)
            calm_count = _poisson(rng, expected * rng.lognormvariate(0.0, 0.12))
            for _ in range(calm_count):
                events.append(self._calm(stream, minute_start + 60.0 * rng.random()))
            if crisis is not None:
                extra = _poisson(rng, expected * (crisis.volume_factor - 1.0))
                for _ in range(extra):
                    events.append(self._crisis(stream, crisis, minute_start + 60.0 * rng.random()))
        events.sort(key=lambda e: e["created_at"])
        for event in events:
            event["created_at"] = _iso(event["created_at"])
        return events

    def events(self, minutes: int) -> Iterator[dict[str, Any]]:
        for index in range(minutes):
            yield from self.minute(index)

    def _calm(self, stream: _BrandStream, at: float) -> dict[str, Any]:
        rng = self._rng
        if stream.recent and rng.random() < self.repost_share:
            return self._repost(stream, rng.choice(stream.recent), at)
        p = stream.profile
        roll = rng.random()
        if roll < p.negative_share:
            templates = _NEGATIVE
        elif roll < p.negative_share + p.positive_share:
            templates = _POSITIVE
        else:
            templates = _NEUTRAL
        text = rng.choice(templates).format(
            handle=p.handle, product=p.product, city=rng.choice(_CITIES)
        )
        return self._original(stream, text, at)

    def _crisis(self, stream: _BrandStream, crisis: Crisis, at: float) -> dict[str, Any]:
        rng = self._rng
        p = stream.profile
        if stream.viral is None:
            stream.viral = self._original(
                stream,
                _VIRAL.format(handle=p.handle, city=rng.choice(_CITIES)),
                at,
                followers=250_000,
            )
            stream.viral["engagement"]["reposts"] = 5_000
            return stream.viral
        if rng.random() < crisis.viral_share:
            return self._repost(stream, stream.viral, at)
        if rng.random() < crisis.negative_share:
            text = rng.choice(_NEGATIVE).format(
                handle=p.handle, product=p.product, city=rng.choice(_CITIES)
            )
        else:
            text = rng.choice(_NEUTRAL).format(
                handle=p.handle, product=p.product, city=rng.choice(_CITIES)
            )
        return self._original(stream, text, at)

    def _original(
        self, stream: _BrandStream, text: str, at: float, followers: int | None = None
    ) -> dict[str, Any]:
        rng = self._rng
        stream.sequence += 1
        event = {
            "id": f"{stream.profile.name}-{stream.sequence}",
            "brand": stream.profile.name,
            "text": text,
            "created_at": at,
            "platform": rng.choice(("x", "bluesky", "mastodon", "threads")),
            "lang": "en",
            "author": {
                "id": f"u{rng.randrange(1, 50_000)}",
                "followers": followers or int(rng.lognormvariate(5.5, 1.6)),
            },
            "engagement": {
                "reposts": int(rng.lognormvariate(0.5, 1.2)),
                "likes": int(rng.lognormvariate(1.5, 1.3)),
                "replies": int(rng.lognormvariate(0.2, 1.0)),
            },
        }
        stream.recent.append(event)
        return event

    def _repost(self, stream: _BrandStream, original: dict[str, Any], at: float) -> dict[str, Any]:
        rng = self._rng
        stream.sequence += 1
        return {
            "id": f"{stream.profile.name}-{stream.sequence}",
            "brand": stream.profile.name,
            "text": original["text"],
            "created_at": at,
            "platform": original["platform"],
            "lang": "en",
            "author": {
                "id": f"u{rng.randrange(1, 50_000)}",
                "followers": int(rng.lognormvariate(5.0, 1.5)),
            },
            "engagement": {"reposts": 0, "likes": 0, "replies": 0},
            "repost_of": original["id"],
        }


def _poisson(rng: random.Random, lam: float) -> int:
    """Poisson sample (Knuth for small means, normal approximation for large ones)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")
