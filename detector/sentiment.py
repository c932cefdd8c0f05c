"""Sentiment scoring behind a small protocol; VADER is the shipped implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, cast

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from detector.english import vader_rules
from detector.model import Author, Engagement, Mention
from detector.valence import ValenceScorer

# VADER's documented cut-off: compound <= -0.05 is negative.
NEGATIVE_COMPOUND = -0.05


class SentimentScorer(Protocol):
    """Anything that maps a text to a compound polarity in [-1, 1]."""

    name: str

    def compound(self, text: str) -> float: ...


class MentionSentimentScorer(Protocol):
    """A scorer that sees the whole mention (brand, language), e.g.
    ``detector.scoring.MentionScorer``; ``score`` hands mentions to it directly."""

    name: str

    def compound(self, text: str) -> float: ...

    def score_mention(self, mention: Mention) -> ScoredMention: ...


class VaderScorer:
    """VADER (vaderSentiment 3.3.2) compound score.

    By default the score comes from the project's VADER-style engine with VADER's own rules
    (``detector.valence.ValenceScorer(detector.english.vader_rules())``), which returns the
    same floats as ``SentimentIntensityAnalyzer.polarity_scores``, several times faster
    (``tests/unit/test_valence_vader.py``, ``benchmarks/vader_speed.py``,
    ``docs/performance.md``). ``VaderScorer(reference=True)`` scores with vaderSentiment
    itself.
    """

    name = "vader"

    def __init__(self, reference: bool = False) -> None:
        self.reference = reference
        self.scorer: ValenceScorer | SentimentIntensityAnalyzer
        if reference:
            self.scorer = SentimentIntensityAnalyzer()
        else:
            self.scorer = ValenceScorer(vader_rules("english"))

    def compound(self, text: str) -> float:
        if self.reference:
            return float(self.scorer.polarity_scores(text)["compound"])
        return float(self.scorer.compound(text))


@dataclass(frozen=True, slots=True)
class ScoredMention:
    """A valid mention with its sentiment: the unit the detector consumes.

    ``lang`` is the language the text was scored as (``None`` when the scorer does not
    tell); ``scored`` is False when no scorer exists for that language: the compound is then
    0.0 and means nothing, and the mention is never negative.
    """

    mention: Mention
    compound: float
    lang: str | None = None
    scored: bool = True

    @property
    def negative(self) -> bool:
        return self.scored and self.compound <= NEGATIVE_COMPOUND


def score(mention: Mention, scorer: SentimentScorer | MentionSentimentScorer) -> ScoredMention:
    """Score one mention; a scorer with ``score_mention`` gets the whole mention."""
    score_mention = getattr(scorer, "score_mention", None)
    if score_mention is not None:
        scored: ScoredMention = score_mention(mention)
        return scored
    return ScoredMention(mention=mention, compound=scorer.compound(mention.text))


def to_wire(scored: ScoredMention) -> dict[str, object]:
    """Plain-JSON form of a scored mention, for the internal repartition topic."""
    m = scored.mention
    return {
        "id": m.id,
        "brand": m.brand,
        "text": m.text,
        "created_at": m.created_at,
        "platform": m.platform,
        "lang": m.lang,
        "author_id": m.author.id,
        "followers": m.author.followers,
        "reposts": m.engagement.reposts,
        "likes": m.engagement.likes,
        "replies": m.engagement.replies,
        "repost_of": m.repost_of,
        "compound": scored.compound,
        "sentiment_lang": scored.lang,
        "scored": scored.scored,
    }


_NUMBER_KEYS = ("created_at", "followers", "reposts", "likes", "replies", "compound")
_NUMBER_TYPES = (int, float)


def from_wire(data: dict[str, object]) -> ScoredMention:
    """Inverse of ``to_wire``. Raises ``KeyError``/``TypeError``/``ValueError`` on a bad record."""
    get = data.get
    numbers = [get(key, 0) for key in _NUMBER_KEYS]
    for key, value in zip(_NUMBER_KEYS, numbers, strict=True):
        # Exactly int or float (JSON numbers): a bool is not a number here.
        if value.__class__ not in _NUMBER_TYPES:
            raise TypeError(f"{key} must be a number")
    created_at, followers, reposts, likes, replies, compound = cast("list[float]", numbers)
    scored = get("scored", True)
    if not isinstance(scored, bool):
        raise TypeError("scored must be a boolean")
    platform, lang, author_id, repost_of, sentiment_lang = (
        None if value is None else str(value)
        for value in (
            get("platform"),
            get("lang"),
            get("author_id"),
            get("repost_of"),
            get("sentiment_lang"),
        )
    )
    mention = Mention(
        str(data["id"]),
        str(data["brand"]),
        str(data["text"]),
        float(created_at),
        platform,
        lang,
        Author(author_id, int(followers)),
        Engagement(int(reposts), int(likes), int(replies)),
        repost_of,
    )
    return ScoredMention(mention, float(compound), sentiment_lang, scored)
