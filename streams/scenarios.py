"""Named, labelled benchmark scenarios generated with fixed seeds (no Kafka).

Each scenario is a deterministic stream of mention events in the input contract (the
dicts ``MentionSimulator`` produces, ``created_at`` as ISO-8601 strings, in event-time
order) over several days of event time, plus labels: the crisis windows that SHOULD be
detected. ``python3 -m benchmarks.scenarios`` replays them through the detection core and
scores the alerts (recall, precision, time to detect, false alerts per brand-week).

Scenarios (``SCENARIOS``; every function takes ``days``, ``scale``, ``seed`` and ``start``):

- ``calm_rhythm``: three brands (22, 12 and 5 mentions a minute on average) with a strong
  daily rhythm (x3 to x5 between the night trough and the peak) and a weekly one (weekends
  lower for two, higher for one). No crisis: every alert is false.
- ``small_brands``: five brands at 0.2 to 3 mentions a minute; one (``small-c``, 1/min)
  has a genuine crisis: x10 volume, mostly negative reposts, for 30 minutes.
- ``negativity_drift``: constant volume; the negative share of ``drift-slow`` (25/min)
  rises from 10 % to 45 % over 12 hours (4 h plateau), that of ``drift-fast`` (10/min)
  over 3 hours (3 h plateau); ``drift-control`` (10/min) does not drift.
- ``viral_bursts``: three brands (4, 12, 22 mentions a minute) with several short bursts
  each (10 to 20 minutes, x4 to x8 volume, mostly reposts of one negative post), at
  seeded random times of day (night bursts of a small brand are small in absolute terms).
- ``planned_spikes``: daily, same-time, neutral/positive spikes that are NOT crises: a
  09:00 newsletter doubling volume for 15 minutes, and a 19:00 daily live show at x4 for
  20 minutes. No labels; a detector that learns daily seasonality stops alerting on them.
- ``outages``: ``outage-stop`` (25/min) stops entirely for 2 hours, ``outage-drop``
  (20/min) loses 70 % of its volume for 2 hours. No labels (not crises for the recall
  metric); the benchmark reports which alert kinds fired during the outage and in the
  hour after it (as unlabelled alerts they count as false alerts in the scores).

Label convention: a window starts at the crisis onset (for a drift: the first whole
event-minute at which the negative share exceeds 30 %) and ends at the crisis end (for a
drift: the end of its plateau) plus ``LABEL_TOLERANCE_SECONDS`` (10 minutes). Labels are
``{brand: [[start_iso, end_iso], ...]}`` with every brand of the scenario present (an empty
list: nothing to detect). Scoring (``detector.evaluation.score_alerts``): a window is
detected when an alert of any kind OPENS inside it; the time to detect is that opening's
event time minus the window start; every opened alert outside all windows of its brand
(including one opened just before a window starts) is a false alert.

Non-crisis windows worth looking at (outages, the hour after them, planned spikes) are
``Scenario.watch`` entries; they are not labels.

All times are whole event-minutes in UTC. The default start, ``DEFAULT_START``, is a
Thursday (2026-03-05 00:00 UTC), so a 7-day scenario has two weekdays of history before
its first weekend. Use ``days`` and ``scale`` to make short, small versions (tests).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.simulator import (
    _CITIES,
    _NEGATIVE,
    _NEUTRAL,
    _POSITIVE,
    _VIRAL,
    BrandProfile,
    MentionSimulator,
    _BrandStream,
    _iso,
    _poisson,
)

DEFAULT_START = datetime(2026, 3, 5, tzinfo=UTC).timestamp()  # a Thursday
DAY = 86_400.0
MINUTE = 60.0
LABEL_TOLERANCE_SECONDS = 600.0
DRIFT_LABEL_SHARE = 0.30  # a drift's window starts when the negative share exceeds this

# Texts of planned (newsletter / live show) spikes: neutral or positive for VADER.
_PLANNED = (
    "Today's @{handle} newsletter is out, new {product} tips inside",
    "Reading the @{handle} newsletter with my coffee",
    "Watching the @{handle} daily show about the {product}, good fun",
    "The @{handle} {product} demo today looks nice",
    "Tuned in to @{handle} live from {city}",
    "Thanks @{handle} for the daily {product} update",
)
_ANNOUNCEMENT = "The @{handle} daily {product} update is live now, see you there!"


# --- building blocks ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rhythm:
    """How a brand's calm volume varies: a daily cosine with its peak at ``peak_hour``
    (UTC) and ``peak_to_trough`` = peak rate / night rate; a weekend factor; per-minute
    lognormal noise; and a per-day lognormal level (``day_sd``)."""

    peak_hour: float = 15.0
    peak_to_trough: float = 3.0
    weekend: float = 0.8
    noise: float = 0.12
    day_sd: float = 0.05

    def factor(self, event_time: float) -> float:
        """Mean-one daily shape times the weekend factor (without noise or day level)."""
        moment = datetime.fromtimestamp(event_time, UTC)
        hour = moment.hour + moment.minute / 60.0
        amplitude = (self.peak_to_trough - 1.0) / (self.peak_to_trough + 1.0)
        daily = 1.0 + amplitude * math.cos(2.0 * math.pi * (hour - self.peak_hour) / 24.0)
        weekly = self.weekend if moment.weekday() >= 5 else 1.0
        return daily * weekly


FLAT = Rhythm(peak_to_trough=1.0, weekend=1.0, day_sd=0.0)


@dataclass(frozen=True, slots=True)
class ScenarioBrand:
    profile: BrandProfile
    rhythm: Rhythm = field(default_factory=Rhythm)

    @property
    def name(self) -> str:
        return self.profile.name


class _Timed:
    """An effect that runs for ``minutes`` from ``start`` (epoch seconds)."""

    __slots__ = ()
    start: float
    minutes: float

    @property
    def end(self) -> float:
        return self.start + self.minutes * MINUTE

    def active(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class Burst(_Timed):
    """Extra mentions on top of the calm stream, ``volume_factor`` x the calm rate in
    total. A crisis burst (``planned=False``) opens with one viral negative post (250k
    followers) that most of the extra mentions repost; a planned burst opens with the
    brand's own announcement and is neutral/positive."""

    brand: str
    start: float
    minutes: float
    volume_factor: float
    negative_share: float = 0.85  # of the extra mentions that are not reposts
    viral_share: float = 0.65  # of the extra mentions that repost the opening post
    planned: bool = False


@dataclass(frozen=True, slots=True)
class Outage(_Timed):
    """The brand keeps ``keep`` of its calm volume (0: no mentions at all)."""

    brand: str
    start: float
    minutes: float
    keep: float = 0.0


@dataclass(frozen=True, slots=True)
class Drift:
    """The negative share of calm original mentions ramps linearly from ``from_share`` to
    ``to_share`` over ``ramp_minutes``, stays for ``plateau_minutes``, then returns over
    ``recover_minutes``. Volume is unchanged."""

    brand: str
    start: float
    ramp_minutes: float
    plateau_minutes: float
    recover_minutes: float
    from_share: float
    to_share: float

    @property
    def ramp_end(self) -> float:
        return self.start + self.ramp_minutes * MINUTE

    @property
    def plateau_end(self) -> float:
        return self.ramp_end + self.plateau_minutes * MINUTE

    @property
    def end(self) -> float:
        return self.plateau_end + self.recover_minutes * MINUTE

    def share(self, t: float) -> float | None:
        """The negative share at ``t``, or None outside the drift."""
        span = self.to_share - self.from_share
        if t < self.start or t >= self.end:
            return None
        if t < self.ramp_end:
            return self.from_share + span * (t - self.start) / (self.ramp_end - self.start)
        if t < self.plateau_end:
            return self.to_share
        return self.to_share - span * (t - self.plateau_end) / (self.end - self.plateau_end)

    def reaches(self, share: float) -> float:
        """First whole event-minute of the ramp at which the share is >= ``share``."""
        fraction = (share - self.from_share) / (self.to_share - self.from_share)
        moment = self.start + fraction * (self.ramp_end - self.start)
        return math.ceil(moment / MINUTE) * MINUTE


Effect = Burst | Outage | Drift


@dataclass(frozen=True, slots=True)
class Watch:
    """A non-crisis window worth reporting on (not a label)."""

    brand: str
    name: str  # e.g. "outage", "recovery", "planned"
    start: float
    end: float


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    brands: tuple[str, ...]
    start: float
    end: float
    windows: dict[str, tuple[tuple[float, float], ...]]  # brand -> labelled windows (epoch)
    factory: Callable[[], Iterator[dict[str, Any]]] = field(repr=False, compare=False)
    watch: tuple[Watch, ...] = ()
    effects: tuple[Effect, ...] = ()
    seed: int = 0

    def events(self) -> Iterator[dict[str, Any]]:
        """A fresh iterator over the scenario's mention events (same events every time)."""
        return self.factory()

    @property
    def labels(self) -> dict[str, list[list[str]]]:
        """The labels document: ``{brand: [[start_iso, end_iso], ...]}``."""
        return {
            brand: [[_label_iso(s), _label_iso(e)] for s, e in self.windows.get(brand, ())]
            for brand in self.brands
        }

    @property
    def window_count(self) -> int:
        return sum(len(w) for w in self.windows.values())

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY


def _label_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


# --- the generator --------------------------------------------------------------------------


class ScenarioSimulator(MentionSimulator):
    """``MentionSimulator`` with per-brand rhythms and time-bound effects (bursts,
    outages, negativity drifts). Deterministic for a seed."""

    def __init__(
        self,
        start_time: float,
        brands: tuple[ScenarioBrand, ...],
        effects: tuple[Effect, ...] = (),
        seed: int = 7,
        repost_share: float = 0.25,
    ) -> None:
        super().__init__(
            start_time,
            brands=tuple(b.profile for b in brands),
            crises=(),
            seed=seed,
            repost_share=repost_share,
        )
        self._rhythms = {b.name: b.rhythm for b in brands}
        self._effects: dict[str, list[Effect]] = {b.name: [] for b in brands}
        for effect in effects:
            self._effects[effect.brand].append(effect)
        self._levels: dict[tuple[str, int], float] = {}
        self._openers: dict[tuple[str, float], dict[str, Any]] = {}
        self._seed = seed

    def _day_level(self, brand: str, event_time: float) -> float:
        day = math.floor(event_time / DAY)
        level = self._levels.get((brand, day))
        if level is None:
            sd = self._rhythms[brand].day_sd
            rng = random.Random(f"{self._seed}/{brand}/{day}")
            level = rng.lognormvariate(0.0, sd) if sd > 0 else 1.0
            self._levels[(brand, day)] = level
        return level

    def rate(self, profile: BrandProfile, event_time: float) -> float:
        rhythm = self._rhythms[profile.name]
        return (
            profile.per_minute
            * rhythm.factor(event_time)
            * self._day_level(profile.name, event_time)
        )

    def minute(self, index: int) -> list[dict[str, Any]]:
        rng = self._rng
        minute_start = self.start_time + MINUTE * index
        events: list[dict[str, Any]] = []
        for name, stream in self._streams.items():
            expected = self.rate(stream.profile, minute_start)
            keep = 1.0
            negative_share = stream.profile.negative_share
            bursts: list[Burst] = []
            for effect in self._effects[name]:
                if isinstance(effect, Outage):
                    if effect.active(minute_start):
                        keep *= effect.keep
                elif isinstance(effect, Drift):
                    share = effect.share(minute_start)
                    if share is not None:
                        negative_share = share
                elif effect.active(minute_start):
                    bursts.append(effect)
            noise = rng.lognormvariate(0.0, self._rhythms[name].noise)
            for _ in range(_poisson(rng, expected * keep * noise)):
                at = minute_start + MINUTE * rng.random()
                events.append(self._calm_at(stream, at, negative_share))
            for burst in bursts:
                for _ in range(_poisson(rng, expected * (burst.volume_factor - 1.0))):
                    at = minute_start + MINUTE * rng.random()
                    events.append(self._burst_mention(stream, burst, at))
        events.sort(key=lambda e: e["created_at"])
        for event in events:
            event["created_at"] = _iso(event["created_at"])
        return events

    def _calm_at(self, stream: _BrandStream, at: float, negative_share: float) -> dict[str, Any]:
        rng = self._rng
        if stream.recent and rng.random() < self.repost_share:
            return self._repost(stream, rng.choice(stream.recent), at)
        p = stream.profile
        # Positive and neutral shares shrink in proportion when the negative share grows.
        rest = max(1e-9, 1.0 - p.negative_share)
        positive_share = p.positive_share * (1.0 - negative_share) / rest
        roll = rng.random()
        if roll < negative_share:
            templates = _NEGATIVE
        elif roll < negative_share + positive_share:
            templates = _POSITIVE
        else:
            templates = _NEUTRAL
        return self._original(stream, self._fill(rng.choice(templates), p), at)

    def _burst_mention(self, stream: _BrandStream, burst: Burst, at: float) -> dict[str, Any]:
        rng = self._rng
        p = stream.profile
        key = (p.name, burst.start)
        opener = self._openers.get(key)
        if opener is None:
            text = _ANNOUNCEMENT if burst.planned else _VIRAL
            opener = self._original(stream, self._fill(text, p), at, followers=250_000)
            opener["engagement"]["reposts"] = 5_000
            self._openers[key] = opener
            return opener
        if rng.random() < burst.viral_share:
            return self._repost(stream, opener, at)
        if burst.planned:
            templates = _PLANNED if rng.random() < 0.7 else _POSITIVE
        elif rng.random() < burst.negative_share:
            templates = _NEGATIVE
        else:
            templates = _NEUTRAL
        return self._original(stream, self._fill(rng.choice(templates), p), at)

    def _fill(self, template: str, p: BrandProfile) -> str:
        return template.format(handle=p.handle, product=p.product, city=self._rng.choice(_CITIES))


def make_scenario(
    name: str,
    description: str,
    brands: tuple[ScenarioBrand, ...],
    *,
    days: float,
    start: float,
    seed: int,
    effects: tuple[Effect, ...] = (),
    windows: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    watch: tuple[Watch, ...] = (),
) -> Scenario:
    minutes = max(1, round(days * DAY / MINUTE))
    end = start + minutes * MINUTE
    windows = windows or {}
    for brand, brand_windows in windows.items():
        for s, e in brand_windows:
            if not start <= s <= e <= end:
                raise ValueError(f"{name}: window {s}-{e} of {brand} is outside the stream")

    def factory() -> Iterator[dict[str, Any]]:
        return ScenarioSimulator(start, brands, effects, seed=seed).events(minutes)

    return Scenario(
        name=name,
        description=description,
        brands=tuple(b.name for b in brands),
        start=start,
        end=end,
        windows={b.name: tuple(windows.get(b.name, ())) for b in brands},
        factory=factory,
        watch=watch,
        effects=effects,
        seed=seed,
    )


def _brand(
    name: str,
    handle: str,
    product: str,
    per_minute: float,
    scale: float,
    rhythm: Rhythm,
    negative_share: float = 0.12,
) -> ScenarioBrand:
    return ScenarioBrand(
        BrandProfile(name, handle, product, per_minute * scale, negative_share=negative_share),
        rhythm,
    )


def _at(start: float, day: int, hour: float, days: float) -> float:
    """Event time of ``hour`` on day ``day`` (clamped to the stream's last whole day)."""
    last_day = max(0, math.floor(days) - 1)
    return start + min(day, last_day) * DAY + hour * 3600.0


# --- the scenarios ---------------------------------------------------------------------------


def calm_rhythm(
    *, days: float = 7, scale: float = 1.0, seed: int = 101, start: float = DEFAULT_START
) -> Scenario:
    brands = (
        _brand(
            "calm-office", "OfficeCloud", "laptop", 22.0, scale,
            Rhythm(peak_hour=14.0, peak_to_trough=5.0, weekend=0.55),
        ),
        _brand(
            "calm-leisure", "LeisureLand", "ticket", 12.0, scale,
            Rhythm(peak_hour=20.0, peak_to_trough=4.0, weekend=1.4),
        ),
        _brand(
            "calm-retail", "RetailRow", "parcel", 5.0, scale,
            Rhythm(peak_hour=12.0, peak_to_trough=3.0, weekend=0.8),
            negative_share=0.2,
        ),
    )  # fmt: skip
    return make_scenario(
        "calm_rhythm",
        "strong daily (x3-x5) and weekly rhythms, no crisis: every alert is false",
        brands,
        days=days,
        start=start,
        seed=seed,
    )


def small_brands(
    *, days: float = 5, scale: float = 1.0, seed: int = 202, start: float = DEFAULT_START
) -> Scenario:
    rhythm = Rhythm(peak_hour=15.0, peak_to_trough=3.0, weekend=0.8)
    brands = (
        _brand("small-a", "AlderShop", "kettle", 0.2, scale, rhythm),
        _brand("small-b", "BirchBikes", "bike", 0.5, scale, rhythm),
        _brand("small-c", "CedarCafe", "coffee", 1.0, scale, rhythm),
        _brand("small-d", "DuneDesk", "desk", 2.0, scale, rhythm, negative_share=0.18),
        _brand("small-e", "ElmEnergy", "meter", 3.0, scale, rhythm),
    )
    crisis = Burst("small-c", _at(start, 4, 15.0, days), 30, 10.0, viral_share=0.6)
    return make_scenario(
        "small_brands",
        "brands at 0.2-3 mentions/min; small-c (1/min) has a 30-min x10 negative crisis",
        brands,
        days=days,
        start=start,
        seed=seed,
        effects=(crisis,),
        windows={"small-c": ((crisis.start, crisis.end + LABEL_TOLERANCE_SECONDS),)},
    )


def negativity_drift(
    *, days: float = 4, scale: float = 1.0, seed: int = 303, start: float = DEFAULT_START
) -> Scenario:
    brands = (
        _brand("drift-slow", "SlowSail", "boat", 25.0, scale, FLAT, negative_share=0.10),
        _brand("drift-fast", "FastFiber", "modem", 10.0, scale, FLAT, negative_share=0.10),
        _brand("drift-control", "SteadyStore", "basket", 10.0, scale, FLAT, negative_share=0.10),
    )
    slow = Drift("drift-slow", _at(start, 2, 4.0, days), 12 * 60, 4 * 60, 60, 0.10, 0.45)
    fast = Drift("drift-fast", _at(start, 1, 10.0, days), 3 * 60, 3 * 60, 60, 0.10, 0.45)
    windows = {
        d.brand: ((d.reaches(DRIFT_LABEL_SHARE), d.plateau_end + LABEL_TOLERANCE_SECONDS),)
        for d in (slow, fast)
    }
    return make_scenario(
        "negativity_drift",
        "negative share 10% -> 45% over 12 h (drift-slow) and 3 h (drift-fast) at "
        "constant volume; drift-control does not drift",
        brands,
        days=days,
        start=start,
        seed=seed,
        effects=(slow, fast),
        windows=windows,
    )


def viral_bursts(
    *,
    days: float = 5,
    scale: float = 1.0,
    seed: int = 404,
    start: float = DEFAULT_START,
    bursts_per_brand: int | None = None,
) -> Scenario:
    brands = (
        _brand("viral-a", "AspenAir", "flight", 4.0, scale, Rhythm(13.0, 3.0, 0.8)),
        _brand("viral-b", "BeaconBank", "card", 12.0, scale, Rhythm(15.0, 4.0, 0.7)),
        _brand("viral-c", "CometCola", "drink", 22.0, scale, Rhythm(17.0, 3.0, 1.2)),
    )
    end = start + max(1, round(days * DAY / MINUTE)) * MINUTE
    first = start + min(DAY, 0.3 * (end - start))
    last = end - 40 * MINUTE  # room for the longest burst and the tolerance
    count = bursts_per_brand if bursts_per_brand is not None else max(1, math.ceil(days) - 1)
    gap = min(6 * 3600.0, (last - first) / (count + 1))
    plan = random.Random(f"viral_bursts/{seed}")
    effects: list[Burst] = []
    windows: dict[str, tuple[tuple[float, float], ...]] = {}
    for brand in brands:
        starts: list[float] = []
        for _ in range(1000):
            if len(starts) == count:
                break
            candidate = first + math.floor(plan.uniform(0, last - first) / MINUTE) * MINUTE
            if all(abs(candidate - s) >= gap for s in starts):
                starts.append(candidate)
        brand_bursts = [
            Burst(
                brand.name,
                s,
                minutes=plan.randint(10, 20),
                volume_factor=round(plan.uniform(4.0, 8.0), 1),
                viral_share=round(plan.uniform(0.6, 0.8), 2),
            )
            for s in sorted(starts)
        ]
        effects.extend(brand_bursts)
        windows[brand.name] = tuple(
            (b.start, b.end + LABEL_TOLERANCE_SECONDS) for b in brand_bursts
        )
    return make_scenario(
        "viral_bursts",
        "short (10-20 min) x4-x8 bursts of reposts of one negative post, several per brand",
        brands,
        days=days,
        start=start,
        seed=seed,
        effects=tuple(effects),
        windows=windows,
    )


def planned_spikes(
    *, days: float = 7, scale: float = 1.0, seed: int = 505, start: float = DEFAULT_START
) -> Scenario:
    brands = (
        _brand("planned-newsletter", "NewsNest", "newsletter", 8.0, scale, Rhythm(15.0, 3.0)),
        _brand("planned-show", "ShowTime", "stream", 15.0, scale, Rhythm(16.0, 3.0, 1.1)),
    )
    effects: list[Burst] = []
    watch: list[Watch] = []
    for day in range(math.ceil(days)):
        for brand, hour, minutes, factor in (
            ("planned-newsletter", 9.0, 15, 2.0),
            ("planned-show", 19.0, 20, 4.0),
        ):
            begin = start + day * DAY + hour * 3600.0
            burst = Burst(
                brand, begin, minutes, factor, negative_share=0.0, viral_share=0.4, planned=True
            )
            if burst.end + LABEL_TOLERANCE_SECONDS <= start + days * DAY:
                effects.append(burst)
                watch.append(
                    Watch(brand, "planned", burst.start, burst.end + LABEL_TOLERANCE_SECONDS)
                )
    return make_scenario(
        "planned_spikes",
        "daily same-time neutral/positive spikes (09:00 newsletter x2 15 min, 19:00 show "
        "x4 20 min): not crises",
        brands,
        days=days,
        start=start,
        seed=seed,
        effects=tuple(effects),
        watch=tuple(watch),
    )


def outages(
    *, days: float = 4, scale: float = 1.0, seed: int = 606, start: float = DEFAULT_START
) -> Scenario:
    rhythm = Rhythm(peak_hour=15.0, peak_to_trough=3.0, weekend=1.0)
    brands = (
        _brand("outage-stop", "StopGap", "router", 25.0, scale, rhythm),
        _brand("outage-drop", "DropShip", "parcel", 20.0, scale, rhythm),
    )
    stop = Outage("outage-stop", _at(start, 2, 13.0, days), 120, keep=0.0)
    drop = Outage("outage-drop", _at(start, 2, 10.0, days), 120, keep=0.3)
    watch = []
    for outage in (stop, drop):
        watch.append(Watch(outage.brand, "outage", outage.start, outage.end))
        watch.append(Watch(outage.brand, "recovery", outage.end, outage.end + 3600.0))
    return make_scenario(
        "outages",
        "outage-stop: no mentions for 2 h; outage-drop: -70% volume for 2 h; not crises",
        brands,
        days=days,
        start=start,
        seed=seed,
        effects=(stop, drop),
        watch=tuple(watch),
    )


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "calm_rhythm": calm_rhythm,
    "small_brands": small_brands,
    "negativity_drift": negativity_drift,
    "viral_bursts": viral_bursts,
    "planned_spikes": planned_spikes,
    "outages": outages,
}


def build(name: str, **options: Any) -> Scenario:
    """The scenario called ``name``; ``options`` (days, scale, seed, start) override its
    defaults."""
    try:
        factory = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None
    return factory(**{k: v for k, v in options.items() if v is not None})


def all_scenarios(**options: Any) -> list[Scenario]:
    return [build(name, **options) for name in SCENARIOS]
