"""``observe_many``: a batch of observations counts as the same observations one by one."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client import CollectorRegistry, Histogram

from streams.metrics import observe_many

BUCKETS = (0.005, 0.01, 0.1, 0.5, 1.0, 2.5, 10.0)


def histogram() -> Histogram:
    return Histogram("h", "h", buckets=BUCKETS, registry=CollectorRegistry())


def samples(h: Histogram) -> dict[str, float]:
    return {f"{s.name}{s.labels}": s.value for metric in h.collect() for s in metric.samples}


@pytest.mark.parametrize("seed", range(5))
def test_a_batch_counts_as_the_same_observations_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    # Values on the bounds, between them, beyond the last one, and zero.
    values = [rng.choice([0.0, *BUCKETS, 11.0, rng.uniform(0, 12)]) for _ in range(500)]
    one_by_one, batched = histogram(), histogram()
    for value in values:
        one_by_one.observe(value)
    observe_many(batched, values)
    expected, got = samples(one_by_one), samples(batched)
    assert set(expected) == set(got)
    for name, value in expected.items():
        if name.startswith("h_sum"):
            assert math.isclose(got[name], value, rel_tol=1e-12)
        elif not name.startswith("h_created"):
            assert got[name] == value, name


def test_nothing_observed_leaves_the_histogram_alone() -> None:
    h = histogram()
    observe_many(h, [])
    assert samples(h)["h_count{}"] == 0
