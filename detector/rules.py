"""The detection rules: one bucket judged against the brand's baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from detector.state import Baseline, Bucket
from detector.thresholds import Thresholds


class Kind(StrEnum):
    VIRALITY = "virality"
    NEGATIVITY = "negativity"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_RANK = {Severity.WARNING.value: 1, Severity.CRITICAL.value: 2}

# Bounds of the baseline negative share used by the test, so that a brand with no
# negative history still has a finite standard error.
_SHARE_FLOOR = 0.02
_SHARE_CEILING = 0.98


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    fires: bool
    severity: Severity
    observed: dict[str, float]
    expected: dict[str, float]
    factor: float
    statistic: str
    statistic_value: float
    statistic_threshold: float


def virality(bucket: Bucket, baseline: Baseline, t: Thresholds) -> Verdict:
    """Mention count of the bucket far above the baseline count (z-score with a Poisson
    floor on the spread), above a factor of it, and above a minimum count."""
    expected = baseline.mean_count
    z = (bucket.count - expected) / baseline.sd_count
    factor = bucket.count / max(expected, 1.0)
    fires = (
        bucket.count >= t.virality_min_count
        and bucket.count >= t.virality_factor * expected
        and z >= t.virality_z
    )
    critical = factor >= t.virality_factor * t.critical_multiplier
    return Verdict(
        kind=Kind.VIRALITY,
        fires=fires,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        observed={"count": bucket.count, "reach": bucket.reach},
        expected={"count": round(expected, 3), "reach": round(baseline.mean_reach, 3)},
        factor=round(factor, 3),
        statistic="z_count",
        statistic_value=round(z, 3),
        statistic_threshold=t.virality_z,
    )


def wilson_lower(successes: int, n: int, z: float) -> float:
    """Lower end of the Wilson score interval of a binomial proportion."""
    if n <= 0:
        return 0.0
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z2 / n))


def negativity(bucket: Bucket, baseline: Baseline, t: Thresholds) -> Verdict:
    """Negative share of the bucket against the baseline share: the lower end of the
    share's Wilson interval (at ``negativity_z``) must clear the baseline share by
    ``negativity_min_delta``; plus an absolute floor on the share and a minimum count.
    The interval keeps small, partly filled buckets from alerting on chance."""
    n = bucket.count
    share = bucket.negative_share
    p0 = min(max(baseline.negative_share, _SHARE_FLOOR), _SHARE_CEILING)
    lower = wilson_lower(bucket.negatives, n, t.negativity_z)
    required = p0 + t.negativity_min_delta
    fires = n >= t.negativity_min_count and share >= t.negativity_min_share and lower >= required
    critical = lower >= p0 + t.negativity_min_delta * t.critical_multiplier
    return Verdict(
        kind=Kind.NEGATIVITY,
        fires=fires,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        observed={"count": n, "negative_share": round(share, 4), "reach": bucket.reach},
        expected={
            "count": round(baseline.mean_count, 3),
            "negative_share": round(baseline.negative_share, 4),
        },
        factor=round(share / p0, 3),
        statistic="wilson_lower_negative_share",
        statistic_value=round(lower, 4),
        statistic_threshold=round(required, 4),
    )


RULES = (virality, negativity)
RULES_BY_KIND = {Kind.VIRALITY.value: virality, Kind.NEGATIVITY.value: negativity}


def clipped_for_learning(bucket: Bucket, baseline: Baseline, t: Thresholds) -> tuple[float, float]:
    """Count and negatives of a finalised bucket as the baseline may learn them: a bucket
    that fired is clipped to the edge of normal, so a spike does not inflate the baseline
    that judges it."""
    count = float(bucket.count)
    negatives = float(bucket.negatives)
    if Kind.VIRALITY.value in bucket.fired:
        count = min(count, baseline.mean_count + baseline.sd_count)
        negatives = min(negatives, count)
    if Kind.NEGATIVITY.value in bucket.fired:
        negatives = min(negatives, count * baseline.negative_share)
    return count, negatives
