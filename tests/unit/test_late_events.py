"""Late and out-of-order events, as properties of the core over random streams.

``tests/unit/test_core.py`` checks single events just inside and just beyond the allowed
lateness. These properties cover whole streams:

- events beyond the allowed lateness, injected anywhere (bursts aimed at buckets that
  fired, or that were judged calm), are each counted as late and change nothing else:
  the decisions and the state are those of the stream without them;
- events delivered out of order but within the allowed lateness are all applied in
  their own bucket: the counts per bucket are those of the ordered stream.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from detector.core import AlertDecision, Outcome, bucket_of, step
from detector.model import Author, Mention
from detector.sentiment import ScoredMention
from detector.state import BrandState
from detector.thresholds import Thresholds

BS = 60
T0 = float(1_700_000_000 // BS * BS)
NEG, POS = -0.8, 0.5
PROPERTY = settings(max_examples=30, deadline=None, database=None)


def scored(n: int, created_at: float, compound: float) -> ScoredMention:
    mention = Mention(
        id=f"m{n}",
        brand="acme",
        text=f"mention {n}",
        created_at=created_at,
        author=Author(id="u", followers=100),
    )
    return ScoredMention(mention=mention, compound=compound)


def stream(counts: list[int], negative: list[float]) -> list[ScoredMention]:
    """Mentions bucket by bucket, in event-time order."""
    out: list[ScoredMention] = []
    for b, (count, share) in enumerate(zip(counts, negative, strict=True)):
        negatives = round(count * share)
        for k in range(count):
            when = T0 + b * BS + (k + 0.5) * BS / count
            out.append(scored(len(out), when, NEG if k < negatives else POS))
    return out


def thresholds(lateness: int) -> Thresholds:
    return Thresholds(
        allowed_lateness_buckets=lateness,
        warmup_buckets=5,
        virality_min_count=10,
        negativity_min_count=10,
        resolve_after_buckets=2,
        cooldown_buckets=2,
    )


# Calm buckets with surges: enough to warm up, open, escalate and resolve alerts.
bucket_counts = st.lists(
    st.one_of(st.integers(12, 25), st.integers(50, 120)), min_size=12, max_size=30
)


def shares(rng: random.Random, n: int) -> list[float]:
    return [rng.choice([0.05, 0.1, 0.2, 0.8]) for _ in range(n)]


def run(
    mentions: list[ScoredMention], t: Thresholds
) -> tuple[BrandState, list[AlertDecision], list[Outcome]]:
    state: BrandState | None = None
    decisions: list[AlertDecision] = []
    outcomes: list[Outcome] = []
    for m in mentions:
        result = step(state, m, t)
        state = result.state
        decisions += result.decisions
        outcomes.append(result.outcome)
    assert state is not None
    return state, decisions, outcomes


@PROPERTY
@given(
    counts=bucket_counts,
    lateness=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
    injections=st.integers(1, 12),
)
def test_events_beyond_the_lateness_are_counted_late_and_change_nothing(
    counts: list[int], lateness: int, seed: int, injections: int
) -> None:
    rng = random.Random(seed)
    t = thresholds(lateness)
    base = stream(counts, shares(rng, len(counts)))
    state, decisions, _ = run(base, t)

    # Inject bursts of late events (negative or not, up to 200 at once) at random points,
    # aimed at random buckets older than the allowed lateness at that point.
    mixed: list[ScoredMention] = []
    late_ids: set[str] = set()
    points = sorted(rng.sample(range(1, len(base)), min(injections, len(base) - 1)))
    serial = len(base)
    for i, m in enumerate(base):
        if points and i == points[0]:
            points.pop(0)
            current = bucket_of(base[i - 1].mention.created_at, BS)
            oldest_open = current - lateness
            if oldest_open > bucket_of(T0, BS):
                target = rng.randrange(bucket_of(T0, BS), oldest_open)
                compound = rng.choice([NEG, POS])
                for _ in range(rng.choice([1, 5, 200])):
                    late = scored(serial, target * BS + rng.uniform(0, BS - 1e-3), compound)
                    serial += 1
                    late_ids.add(late.mention.id)
                    mixed.append(late)
        mixed.append(m)

    mixed_state, mixed_decisions, outcomes = run(mixed, t)
    for m, outcome in zip(mixed, outcomes, strict=True):
        assert (outcome is Outcome.LATE) == (m.mention.id in late_ids), m.mention.id
    assert mixed_decisions == decisions
    assert mixed_state.late == state.late + len(late_ids)
    assert {**mixed_state.to_dict(), "late": 0} == {**state.to_dict(), "late": 0}


@PROPERTY
@given(
    counts=bucket_counts,
    lateness=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
    moved=st.floats(0.05, 0.5),
)
def test_out_of_order_events_within_the_lateness_count_in_their_bucket(
    counts: list[int], lateness: int, seed: int, moved: float
) -> None:
    rng = random.Random(seed)
    t = thresholds(lateness)
    ordered = stream(counts, shares(rng, len(counts)))
    state, _, _ = run(ordered, t)

    # Hold back a share of the mentions and deliver each one later, but before the first
    # mention of the bucket that would finalise its own (bucket + lateness + 1).
    by_bucket: dict[int, list[ScoredMention]] = {}
    for m in ordered:
        by_bucket.setdefault(bucket_of(m.mention.created_at, BS), []).append(m)
    held: dict[int, list[ScoredMention]] = {}  # release before the first mention of bucket
    shuffled: list[ScoredMention] = []
    for bucket in sorted(by_bucket):
        shuffled += held.pop(bucket, [])
        for m in by_bucket[bucket]:
            if rng.random() < moved:
                release = bucket + rng.randint(1, lateness)
                held.setdefault(release, []).append(m)
            else:
                shuffled.append(m)
    for rest in held.values():
        shuffled += rest
    assert sorted(m.mention.id for m in shuffled) == sorted(m.mention.id for m in ordered)
    assert shuffled != ordered or moved < 0.1

    shuffled_state, _, outcomes = run(shuffled, t)
    assert set(outcomes) == {Outcome.APPLIED}
    assert shuffled_state.late == 0
    assert shuffled_state.mentions == state.mentions
    # The same counts per bucket, finalised or still open, and as many buckets learned.
    # (The learned level may differ: whether a bucket fired, which decides how it is
    # clipped before learning, is judged as its mentions arrive.)
    assert shuffled_state.recent == state.recent
    assert {i: (b.count, b.negatives) for i, b in shuffled_state.buckets.items()} == {
        i: (b.count, b.negatives) for i, b in state.buckets.items()
    }
    assert shuffled_state.baseline.buckets_seen == state.baseline.buckets_seen
