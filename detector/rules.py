"""The detection rules: a window of mentions judged against what is normal for the brand."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from detector import plans
from detector.state import Baseline
from detector.thresholds import Thresholds


class Kind(StrEnum):
    VIRALITY = "virality"  # reach-weighted volume far above normal
    NEGATIVITY = "negativity"  # negative share far above normal
    CRISIS = "crisis"  # both at once
    DROP = "drop"  # volume far below normal, but not zero
    SILENCE = "silence"  # no mention at all while many were expected


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_RANK = {Severity.WARNING.value: 1, Severity.CRITICAL.value: 2}

# Bounds of the baseline negative share used by the test, so that a brand with no
# negative history still has a finite standard error.
_SHARE_FLOOR = 0.02
_SHARE_CEILING = 0.98


@dataclass(frozen=True, slots=True)
class Window:
    """Aggregates of the mentions being judged (the last bucket_seconds of event time, or
    one finalised bucket)."""

    count: float
    negatives: float
    volume: float
    reach: float
    buckets: int = 1  # length of the window in buckets
    scored: float | None = None  # mentions with a sentiment score (None: all of them)

    @property
    def judged(self) -> float:
        """Mentions the negative share is taken over: the scored ones."""
        return self.count if self.scored is None else self.scored

    @property
    def negative_share(self) -> float:
        return _share(self.negatives, self.judged)


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the baseline expects of one bucket."""

    count: float
    volume: float
    reach: float
    negative_share: float
    spread: float  # standard deviation of the count
    season: float  # seasonal factor applied to the level


def expectation(
    baseline: Baseline, bucket_start: float, t: Thresholds, with_plans: bool = True
) -> Expectation:
    """What the baseline expects of the bucket starting at ``bucket_start``; inside a
    planned event (unless ``with_plans`` is false) volume and reach are multiplied by the
    plan's expected multiple."""
    slot_seconds = t.season_slot_minutes * 60
    season = baseline.season(bucket_start, slot_seconds, slot_seconds // t.bucket_seconds)
    plan = plans.active(t.plans, bucket_start) if with_plans and t.plans else None
    boost = plan.expect if plan is not None else 1.0
    count = baseline.level * season * boost
    return Expectation(
        count=count,
        volume=count * baseline.mean_weight,
        reach=baseline.mean_reach * season * boost,
        negative_share=baseline.negative_share,
        spread=baseline.spread(count),
        season=season,
    )


def scaled(e: Expectation, buckets: int, baseline: Baseline) -> Expectation:
    """The expectation of a window of ``buckets`` buckets like the one of ``e``."""
    if buckets == 1:
        return e
    count = e.count * buckets
    return Expectation(
        count=count,
        volume=e.volume * buckets,
        reach=e.reach * buckets,
        negative_share=e.negative_share,
        spread=baseline.spread(count),
        season=e.season,
    )


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a verdict shows in an alert: observed and expected figures, rounded."""

    observed: dict[str, float]
    expected: dict[str, float]
    factor: float
    statistic: str
    statistic_value: float
    statistic_threshold: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule's judgement of a window. The evidence is built (rounded) only when asked
    for: most verdicts decide nothing and are never shown, and building it for each of
    them was a fifth of the core's time. ``evidence`` depends only on values fixed when
    the verdict was made, so it is the same whenever it is asked for."""

    kind: Kind
    fires: bool
    recovered: bool  # below the recovery level: counts towards resolving an open alert
    severity: Severity
    evidence: Callable[[], Evidence] = field(repr=False, compare=False)
    _built: list[Evidence] = field(default_factory=list, repr=False, compare=False)

    def _evidence(self) -> Evidence:
        if not self._built:
            self._built.append(self.evidence())
        return self._built[0]

    @property
    def observed(self) -> dict[str, float]:
        return self._evidence().observed

    @property
    def expected(self) -> dict[str, float]:
        return self._evidence().expected

    @property
    def factor(self) -> float:
        return self._evidence().factor

    @property
    def statistic(self) -> str:
        return self._evidence().statistic

    @property
    def statistic_value(self) -> float:
        return self._evidence().statistic_value

    @property
    def statistic_threshold(self) -> float:
        return self._evidence().statistic_threshold


def _severity(critical: bool) -> Severity:
    return Severity.CRITICAL if critical else Severity.WARNING


def _mean_weight(e_count: float, e_volume: float) -> float:
    return e_volume / e_count if e_count > 0 else 1.0


def _volume_factor(volume: float, e_volume: float, weight: float) -> float:
    return volume / max(e_volume, weight)


def _share(negatives: float, judged: float) -> float:
    return negatives / judged if judged > 0 else 0.0


def may_fire(observed: Sequence[float], e_count: float, e_volume: float, t: Thresholds) -> bool:
    """Whether ``virality`` or ``negativity`` could fire on a window whose sums are
    ``observed`` (count, negatives, volume, reach, unscored) and whose expected count and
    volume are these: false only when both surely do not, each checked on its count
    floor and its factor or share, computed as the rule computes them. Lets the core
    skip building verdicts that would decide nothing."""
    count, negatives, volume, _, unscored = observed
    if count >= t.virality_min_count:
        weight = _mean_weight(e_count, e_volume)
        if _volume_factor(volume, e_volume, weight) >= t.virality_factor:
            return True
    judged = count - unscored
    return judged >= t.negativity_min_count and _share(negatives, judged) >= t.negativity_min_share


def virality(w: Window, e: Expectation, t: Thresholds, velocity: float) -> Verdict:
    """Reach-weighted volume far above its expectation: a z-score whose spread is never
    below the Poisson spread, a factor, and a floor on the raw count."""
    weight = _mean_weight(e.count, e.volume)
    z = (w.volume - e.volume) / (e.spread * weight)
    factor = _volume_factor(w.volume, e.volume, weight)
    fires = w.count >= t.virality_min_count and factor >= t.virality_factor and z >= t.virality_z
    excess = t.virality_factor - 1.0
    threshold = t.virality_z
    return Verdict(
        kind=Kind.VIRALITY,
        fires=fires,
        recovered=factor < 1.0 + excess * t.recovery_ratio,
        severity=_severity(factor >= 1.0 + excess * t.critical_multiplier),
        evidence=lambda: Evidence(
            observed={
                "count": round(w.count, 3),
                "volume": round(w.volume, 3),
                "reach": round(w.reach),
                "velocity": round(velocity, 3),
                "window_buckets": w.buckets,
            },
            expected={
                "count": round(e.count, 3),
                "volume": round(e.volume, 3),
                "reach": round(e.reach),
            },
            factor=round(factor, 3),
            statistic="z_volume",
            statistic_value=round(z, 3),
            statistic_threshold=threshold,
        ),
    )


def wilson_lower(successes: float, n: float, z: float) -> float:
    """Lower end of the Wilson score interval of a binomial proportion."""
    if n <= 0:
        return 0.0
    p = min(1.0, successes / n)
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z2 / n))


# Pseudo-mentions of the brand's overall share mixed into each language's share, so that
# a language seen a few times does not get a share of its own from chance.
LANGUAGE_SHARE_PRIOR = 50.0


def mixed_share(baseline: Baseline, langs: Mapping[str, Sequence[float]]) -> float:
    """The baseline negative share expected of mentions with this language mix
    (``langs``: lang -> [scored mentions, ...]). Each language's share relative to the
    brand's (learned from the brand's own history) is weighted by its part of the mix, so
    a shift towards a language that is normally more negative raises the expectation
    instead of raising an alert. With the brand's usual mix, or one language, it is the
    brand's baseline share."""
    overall = baseline.negative_share
    if len(baseline.langs) < 2 or overall <= 0:
        return overall
    total = sum(float(pair[0]) for pair in langs.values())
    if total <= 0:
        return overall
    learned = {
        lang: (neg + LANGUAGE_SHARE_PRIOR * overall) / (n + LANGUAGE_SHARE_PRIOR)
        for lang, (n, neg) in baseline.langs.items()
    }
    weight = sum(n for n, _ in baseline.langs.values())
    usual = sum(n * learned[lang] for lang, (n, _) in baseline.langs.items()) / weight
    current = sum(float(pair[0]) * learned.get(lang, usual) for lang, pair in langs.items())
    return min(1.0, overall * (current / total) / usual) if usual > 0 else overall


@dataclass(frozen=True, slots=True)
class ShareBand:
    """The Wilson interval of an observed negative share, and the level its lower end
    must reach for the negativity rule (the baseline share plus ``negativity_min_delta``)."""

    lower: float
    upper: float
    required: float


def share_band(negatives: float, count: float, baseline_share: float, t: Thresholds) -> ShareBand:
    p0 = min(max(baseline_share, _SHARE_FLOOR), _SHARE_CEILING)
    upper = 1.0 - wilson_lower(count - negatives, count, t.negativity_z) if count > 0 else 1.0
    return ShareBand(
        lower=wilson_lower(negatives, count, t.negativity_z),
        upper=upper,
        required=p0 + t.negativity_min_delta,
    )


def negativity(w: Window, e: Expectation, t: Thresholds) -> Verdict:
    """Negative share against the baseline share: the lower end of the share's Wilson
    interval (at ``negativity_z``) must clear the baseline share by
    ``negativity_min_delta``; plus an absolute floor on the share and a minimum count.
    The interval keeps small, partly filled windows from alerting on chance."""
    share = w.negative_share
    p0 = min(max(e.negative_share, _SHARE_FLOOR), _SHARE_CEILING)
    lower = wilson_lower(w.negatives, w.judged, t.negativity_z)
    required = p0 + t.negativity_min_delta
    enough = w.judged >= t.negativity_min_count
    fires = enough and share >= t.negativity_min_share and lower >= required
    return Verdict(
        kind=Kind.NEGATIVITY,
        fires=fires,
        recovered=not enough or share - p0 < t.negativity_min_delta * t.recovery_ratio,
        severity=_severity(lower >= p0 + t.negativity_min_delta * t.critical_multiplier),
        evidence=lambda: Evidence(
            observed={
                "count": round(w.count, 3),
                "scored": round(w.judged, 3),
                "negative_share": round(share, 4),
                "reach": round(w.reach),
                "window_buckets": w.buckets,
            },
            expected={"count": round(e.count, 3), "negative_share": round(e.negative_share, 4)},
            factor=round(share / p0, 3),
            statistic="wilson_lower_negative_share",
            statistic_value=round(lower, 4),
            statistic_threshold=round(required, 4),
        ),
    )


def drift(baseline: Baseline, t: Thresholds) -> Verdict:
    """Negative share of roughly the last ``drift_halflife_buckets`` buckets (decayed sums)
    against the slow baseline share: catches negativity that rises too slowly for the
    bucket rule, whose own baseline follows it."""
    n = baseline.drift_count
    negatives = baseline.drift_negatives
    share = negatives / n if n > 0 else 0.0
    p0 = min(max(baseline.slow_negative_share, _SHARE_FLOOR), _SHARE_CEILING)
    lower = wilson_lower(negatives, n, t.negativity_z)
    required = p0 + t.negativity_min_delta
    enough = n >= t.negativity_min_count
    halflife = t.drift_halflife_buckets
    return Verdict(
        kind=Kind.NEGATIVITY,
        fires=enough and share >= t.drift_min_share and lower >= required,
        recovered=not enough or share - p0 < t.negativity_min_delta * t.recovery_ratio,
        severity=_severity(lower >= p0 + t.negativity_min_delta * t.critical_multiplier),
        evidence=lambda: Evidence(
            observed={
                "count": round(n, 3),
                "negative_share": round(share, 4),
                "window_buckets": round(1.0 / (1.0 - 0.5 ** (1.0 / halflife))),
            },
            expected={"count": round(n, 3), "negative_share": round(p0, 4)},
            factor=round(share / p0, 3),
            statistic="wilson_lower_negative_share_drift",
            statistic_value=round(lower, 4),
            statistic_threshold=round(required, 4),
        ),
    )


def either(first: Verdict, second: Verdict) -> Verdict:
    """One verdict from two windows: the first that fires (the shorter window first);
    recovered only when both are."""
    chosen = first if first.fires or not second.fires else second
    if chosen.recovered and not (first.recovered and second.recovered):
        return replace(chosen, recovered=False)
    return chosen


def crisis(v: Verdict, n: Verdict) -> Verdict:
    """Virality and negativity together. Its statistic is the smaller of the two
    exceedances (each statistic over its threshold): at least 1 when both fire."""
    critical = Severity.CRITICAL in (v.severity, n.severity)

    def evidence() -> Evidence:
        exceedance = min(
            v.statistic_value / v.statistic_threshold, n.statistic_value / n.statistic_threshold
        )
        return Evidence(
            observed={**v.observed, **n.observed},
            expected={**v.expected, **n.expected},
            factor=v.factor,
            statistic="combined_exceedance",
            statistic_value=round(exceedance, 3),
            statistic_threshold=1.0,
        )

    return Verdict(
        kind=Kind.CRISIS,
        fires=v.fires and n.fires,
        recovered=v.recovered or n.recovered,
        severity=_severity(critical),
        evidence=evidence,
    )


def drop(w: Window, e: Expectation, t: Thresholds) -> Verdict:
    """Volume far below its expectation (judged on finalised buckets only)."""
    z = (w.count - e.count) / e.spread
    factor = w.count / e.count if e.count > 0 else 1.0
    fires = e.count >= t.drop_min_expected and factor <= t.drop_factor and z <= -t.drop_z
    recovered_at = 1.0 - (1.0 - t.drop_factor) * t.recovery_ratio
    threshold = -t.drop_z
    return Verdict(
        kind=Kind.DROP,
        fires=fires,
        recovered=factor >= recovered_at,
        severity=_severity(factor <= t.drop_factor / t.critical_multiplier),
        evidence=lambda: Evidence(
            observed={"count": round(w.count, 3), "reach": round(w.reach)},
            expected={"count": round(e.count, 3), "reach": round(e.reach)},
            factor=round(factor, 3),
            statistic="z_count",
            statistic_value=round(z, 3),
            statistic_threshold=threshold,
        ),
    )


def silence(silent_buckets: int, expected_total: float, t: Thresholds) -> Verdict:
    """No mention at all for ``silent_buckets`` buckets while ``expected_total`` were
    expected: under a Poisson model the chance of that is exp(-expected_total)."""
    fires = silent_buckets >= t.silence_min_buckets and expected_total >= t.silence_min_expected
    threshold = t.silence_min_expected
    return Verdict(
        kind=Kind.SILENCE,
        fires=fires,
        recovered=False,  # a silence ends with the next mention
        severity=Severity.CRITICAL,
        evidence=lambda: Evidence(
            observed={"count": 0, "silent_buckets": silent_buckets},
            expected={"count": round(expected_total, 3)},
            factor=0.0,
            statistic="expected_mentions",
            statistic_value=round(expected_total, 3),
            statistic_threshold=threshold,
        ),
    )
