"""English scoring: VADER's lexicon and rules on the shared engine, plus the rules for the
register of messages that name a brand.

``vader_rules()`` takes every word list from the installed vaderSentiment package, so the
engine's compound equals vaderSentiment's own for any text (the benchmark checks this on every
benchmark text). ``brand_rules()`` adds the brand-register rules of ``detector.register``.
"""

from __future__ import annotations

from functools import lru_cache

from vaderSentiment import vaderSentiment as _vader

from detector.register import ENGLISH
from detector.valence import Adjuster, ValenceRules, ValenceScorer


@lru_cache(maxsize=1)
def _vader_tables() -> tuple[dict[str, float], dict[str, str]]:
    analyzer = _vader.SentimentIntensityAnalyzer()
    lexicon = {str(k): float(v) for k, v in analyzer.lexicon.items()}
    emoji = {str(k): str(v) for k, v in analyzer.emojis.items() if len(k) == 1}
    return lexicon, emoji


def vader_lexicon() -> dict[str, float]:
    """A copy of VADER's word lexicon (lower-case keys as VADER looks them up)."""
    return dict(_vader_tables()[0])


def vader_emoji() -> dict[str, str]:
    """VADER's emoji descriptions, single-character emoji only (VADER matches no others)."""
    return dict(_vader_tables()[1])


def vader_rules(name: str = "vader", adjust: Adjuster | None = None) -> ValenceRules:
    """VADER 3.3.2's English rules, word for word."""
    lexicon, emoji = _vader_tables()
    return ValenceRules(
        name=name,
        lexicon=lexicon,
        boosters={str(k): float(v) for k, v in _vader.BOOSTER_DICT.items()},
        negations=frozenset(str(w) for w in _vader.NEGATE),
        negation_infix="n't",
        contrast=frozenset({"but"}),
        special_cases={str(k): float(v) for k, v in _vader.SPECIAL_CASES.items()},
        emoji=emoji,
        keep_short_tokens=True,
        no_word="no",
        least_word="least",
        least_exempt=frozenset({"at", "very"}),
        skip_pairs=frozenset({("kind", "of")}),
        never_word="never",
        never_emphasis=frozenset({"so", "this"}),
        without_doubt=("without", "doubt"),
        adjust=adjust,
    )


def plain_vader() -> ValenceScorer:
    """The engine with VADER's rules only: the same compound as vaderSentiment, faster."""
    return ValenceScorer(vader_rules())


def brand_rules(name: str = "english") -> ValenceRules:
    """VADER's rules plus the brand-register rules (``detector.register``)."""
    return vader_rules(name=name, adjust=ENGLISH)


class EnglishScorer:
    """English compound polarity in [-1, 1].

    ``compound`` is VADER's reading of any text; ``brand_compound`` adds the brand-register
    rules, for a text that names the brand it is about.
    """

    __slots__ = ("name", "_general", "_brand")

    def __init__(self) -> None:
        self.name = "english"
        self._general = ValenceScorer(vader_rules("english"))
        self._brand = ValenceScorer(brand_rules("english-brand"))

    def compound(self, text: str) -> float:
        return self._general.compound(text)

    def brand_compound(self, text: str) -> float:
        return self._brand.compound(text)
