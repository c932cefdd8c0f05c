"""Planned events: a spike the brand's owners expect (a launch, a TV spot).

While a planned event runs, the expected volume of the brand is multiplied by its
``expect`` factor, so only a surge well beyond the plan alerts, and every alert of a
bucket inside the plan says so. A planned bucket is learned like a bucket that fired:
the planned surge does not become the brand's normal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from detector.errors import ConfigError

# Bounds of the expected multiple: below 1 a quiet period is planned (a holiday), above 1
# a surge. Beyond these it is more likely a typo than a plan.
EXPECT_BOUNDS = (0.01, 1000.0)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    id: str
    start: float  # Unix seconds, inclusive
    end: float  # Unix seconds, exclusive
    expect: float  # multiple of the normal volume
    note: str = ""

    def __post_init__(self) -> None:
        problems = []
        if not _ID.match(self.id):
            problems.append(
                f"id {self.id!r} must be 1-64 letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit)"
            )
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end <= self.start:
            problems.append("the end must come after the start")
        low, high = EXPECT_BOUNDS
        if not (math.isfinite(self.expect) and low <= self.expect <= high):
            problems.append(f"expect must be a multiple in [{low:g}, {high:g}], got {self.expect}")
        if len(self.note) > 500:
            problems.append("the note must be at most 500 characters")
        if problems:
            raise ConfigError(f"planned event {self.id!r}: " + "; ".join(problems))

    def covers(self, moment: float) -> bool:
        return self.start <= moment < self.end

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "start": self.start,
            "end": self.end,
            "expect": self.expect,
            "note": self.note,
        }


def active(plans: Iterable[PlannedEvent], moment: float) -> PlannedEvent | None:
    """The plan covering ``moment``; of overlapping ones, the one expecting the most."""
    best: PlannedEvent | None = None
    for plan in plans:
        if plan.covers(moment) and (best is None or plan.expect > best.expect):
            best = plan
    return best


def parse_expect(text: str) -> float:
    """``3x``, ``3``, ``2.5X`` or ``250%`` as a multiple."""
    raw = text.strip().lower()
    try:
        if raw.endswith("%"):
            return float(raw[:-1]) / 100.0
        return float(raw[:-1] if raw.endswith("x") else raw)
    except ValueError:
        raise ConfigError(f"expect {text!r} is not a multiple like 3x, 2.5 or 250%") from None
