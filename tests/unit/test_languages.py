"""Languages in the core: mentions without a scorer count toward volume but never toward the
negative share, and a shift of the language mix is not mistaken for a rise in negativity."""

from __future__ import annotations

import pytest

from detector.core import StepResult, step
from detector.model import Author, Engagement, Mention
from detector.rules import mixed_share
from detector.sentiment import ScoredMention
from detector.state import BrandState
from detector.thresholds import Thresholds

BS = 60
T0 = float(1_700_000_000 // BS * BS)
T = Thresholds(warmup_buckets=30)


class Feed:
    def __init__(self) -> None:
        self.state: BrandState | None = None
        self.bucket = 0
        self.seq = 0
        self.decisions: list = []

    def run(self, buckets: int, mix: dict[str | None, tuple[int, float]]) -> None:
        """``buckets`` buckets; per bucket, for each language (None: no scorer) a number of
        mentions and the share of them that is negative, interleaved evenly."""
        for _ in range(buckets):
            spread: list[tuple[float, str | None, bool]] = []
            for lang, (n, share) in mix.items():
                negatives = round(n * share)
                spread += [
                    ((k + 0.5) / n, lang, (k + 1) * negatives // n > k * negatives // n)
                    for k in range(n)
                ]
            plan = [(lang, negative) for _, lang, negative in sorted(spread, key=lambda x: x[0])]
            for k, (lang, negative) in enumerate(plan):
                when = T0 + self.bucket * BS + (k + 0.5) * BS / len(plan)
                self.send(when, lang, negative)
            self.bucket += 1

    def send(self, when: float, lang: str | None, negative: bool) -> None:
        self.seq += 1
        mention = Mention(
            id=f"m{self.seq}",
            brand="acme",
            text="bad" if negative else "fine",
            created_at=when,
            author=Author(id="u", followers=10),
            engagement=Engagement(),
        )
        scored = ScoredMention(
            mention=mention,
            compound=-0.6 if negative else 0.4,
            lang=lang or "tr",
            scored=lang is not None,
        )
        result: StepResult = step(self.state, scored, T)
        self.state = result.state
        self.decisions += result.decisions

    def opened(self, kind: str) -> list:
        return [d for d in self.decisions if d.kind == kind and d.phase.value == "opened"]


def test_unscored_mentions_count_toward_volume_but_not_the_negative_share() -> None:
    feed = Feed()
    feed.run(60, {"en": (30, 0.1)})
    assert feed.decisions == []
    feed.run(1, {"en": (30, 0.1), None: (200, 0.0)})
    assert feed.opened("virality"), "200 more mentions per bucket is a surge, scored or not"
    assert feed.opened("negativity") == []
    assert feed.state is not None
    bucket = feed.state.buckets[max(feed.state.buckets)]
    assert (bucket.count, bucket.unscored, bucket.scored) == (230, 200, 30)
    assert bucket.negative_share == pytest.approx(0.1)


def test_unscored_mentions_do_not_dilute_a_rise_in_negativity() -> None:
    feed = Feed()
    feed.run(60, {"en": (30, 0.1)})
    feed.run(2, {"en": (30, 0.7), None: (150, 0.0)})
    negativity = feed.opened("negativity")
    assert negativity, "70 % of the scored mentions are negative"
    assert negativity[0].observed["negative_share"] >= T.negativity_min_share
    assert negativity[0].observed["scored"] < negativity[0].observed["count"]


def test_the_baseline_share_does_not_learn_unscored_mentions_as_neutral() -> None:
    plain, mixed = Feed(), Feed()
    plain.run(120, {"en": (30, 0.2)})
    mixed.run(60, {"en": (30, 0.2)})
    mixed.run(60, {"en": (30, 0.2), None: (30, 0.0)})
    assert plain.state and mixed.state
    assert mixed.state.baseline.negative_share == pytest.approx(
        plain.state.baseline.negative_share, abs=0.01
    )
    assert mixed.state.baseline.slow_negative_share == pytest.approx(0.2, abs=0.02)


def test_a_shift_of_the_language_mix_is_not_a_rise_in_negativity() -> None:
    usual = {"en": (27, 0.1), "de": (3, 0.6)}  # German mentions of this brand run negative
    shifted = {"en": (6, 0.1), "de": (24, 0.6)}  # a local story: mostly German, same tone
    worse = {"en": (6, 0.5), "de": (24, 1.0)}  # ... and now both turn
    calm, story, crisis = Feed(), Feed(), Feed()
    for feed in (calm, story, crisis):
        feed.run(240, usual)
    assert calm.decisions == []
    assert calm.state is not None
    assert set(calm.state.baseline.langs) == {"en", "de"}
    expected = mixed_share(calm.state.baseline, {"en": [6, 0], "de": [24, 0]})
    assert expected == pytest.approx(0.1 * 0.2 + 0.6 * 0.8, abs=0.08)
    assert mixed_share(calm.state.baseline, {"en": [27, 0], "de": [3, 0]}) == pytest.approx(
        calm.state.baseline.negative_share
    )
    story.run(5, shifted)
    crisis.run(5, worse)
    # Observed 50 % negative against a usual 15 %: without the mix it would alert.
    assert story.opened("negativity") == []
    assert crisis.opened("negativity")


def test_one_language_leaves_the_expected_share_alone() -> None:
    feed = Feed()
    feed.run(60, {"de": (30, 0.3)})
    assert feed.state is not None
    base = feed.state.baseline
    assert mixed_share(base, {"de": [30, 0]}) == base.negative_share
    assert mixed_share(base, {"fr": [30, 0]}) == base.negative_share
    assert mixed_share(base, {}) == base.negative_share


def test_state_with_languages_round_trips() -> None:
    feed = Feed()
    feed.run(40, {"en": (20, 0.1), "de": (5, 0.4), None: (5, 0.0)})
    assert feed.state is not None
    again = BrandState.from_dict(feed.state.to_dict())
    assert again.to_dict() == feed.state.to_dict()
    assert again.baseline.langs == feed.state.baseline.langs
