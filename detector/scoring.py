"""The project's sentiment scoring of mentions: mask, identify the language, score.

``MentionScorer.score(mention)`` returns a ``ScoredMention`` whose ``lang`` is the language
used (the mention's own ``lang`` when it has one, else the detected one) and whose ``scored``
says whether a scorer for that language exists. A mention in a language without a scorer is
``scored=False`` with compound 0.0 and is never negative: it counts toward volume, and the
caller leaves it out of the negative share and counts it by language.

Which text is read how (docs/sentiment.md has the reasons):

- a short text (at most ``message_chars``, a post's length) that names the brand is a message
  to or about the brand and is read with the brand-register rules (``brand_compound``);
- a longer text (an article, a forum post) is about many things: only its sentences that name
  the brand are read, with the general rules; if none names it, the whole text is;
- a text that does not name the brand is read with the general rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from detector.language import UNDETERMINED, LanguageDetector, normalise_lang
from detector.masking import BrandMasker, BrandNames, mask_generic
from detector.model import Mention
from detector.sentiment import ScoredMention, SentimentScorer

# The longest single post on X/Twitter: longer texts are articles or forum posts.
MESSAGE_CHARS = 280
# Scores of this many distinct (text, brand, lang) are kept, texts up to CACHED_CHARS long:
# reposts and copied texts are scored once (at most about 10 MB of texts are kept).
CACHED_SCORES = 8192
CACHED_CHARS = 1000
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True, slots=True)
class TextScore:
    compound: float
    lang: str
    scored: bool
    # Whether the text named the brand (and so was read with the brand-register rules).
    named: bool = False


class BrandRegisterScorer(Protocol):
    """A scorer with a second reading for texts that name the brand they are about."""

    name: str

    def compound(self, text: str) -> float: ...

    def brand_compound(self, text: str) -> float: ...


class LazyScorer:
    """A scorer made on first use. The German scorer's lexicon takes about 50 MB and 0.2 s
    to build; a stream without German texts never pays for it. Any other attribute of
    the scorer (``brand_compound``, say) is the made scorer's."""

    __slots__ = ("name", "_make", "_scorer")

    def __init__(self, name: str, make: Callable[[], SentimentScorer]) -> None:
        self.name = name
        self._make = make
        self._scorer: SentimentScorer | None = None

    @property
    def made(self) -> bool:
        return self._scorer is not None

    def scorer(self) -> SentimentScorer:
        if self._scorer is None:
            self._scorer = self._make()
        return self._scorer

    def compound(self, text: str) -> float:
        return self.scorer().compound(text)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):  # not made yet: no recursion through __slots__
            raise AttributeError(attribute)
        return getattr(self.scorer(), attribute)


def default_scorers() -> dict[str, SentimentScorer]:
    """The shipped scorers: English (VADER with the brand-register rules), and German, made
    when the first German text comes."""
    from detector.english import EnglishScorer
    from detector.german import GermanScorer

    return {"en": EnglishScorer(), "de": LazyScorer("german", GermanScorer)}


class MentionScorer:
    """Routes each mention to the scorer of its language after masking the brand.

    ``brands`` maps a brand key to its ``BrandNames``; a brand not in it is masked by the
    spellings of its key only. ``scorers`` maps language codes to scorers (default: English
    and German). ``detector`` identifies the language of mentions without ``lang``; by default
    its candidates are the languages of ``scorers`` and its fallback for texts too short to
    tell is ``fallback_lang``. A text with no letters at all (only emoji or emoticons) is
    scored by the ``fallback_lang`` scorer, since emoji mean the same in every language, and
    reported with lang ``"und"``.
    """

    name = "crisis-radar"

    def __init__(
        self,
        brands: Mapping[str, BrandNames] | None = None,
        *,
        scorers: Mapping[str, SentimentScorer] | None = None,
        detector: LanguageDetector | None = None,
        fallback_lang: str | None = "en",
        message_chars: int = MESSAGE_CHARS,
    ) -> None:
        self.masker = BrandMasker(brands)
        self.scorers: dict[str, SentimentScorer] = dict(
            default_scorers() if scorers is None else scorers
        )
        self.fallback_lang = normalise_lang(fallback_lang)
        self.message_chars = message_chars
        self.detector = detector or LanguageDetector(
            candidates=self.scorers.keys(), fallback=self.fallback_lang
        )
        self._cached_score = lru_cache(maxsize=CACHED_SCORES)(self._score_text)

    @property
    def languages(self) -> frozenset[str]:
        """Languages with a scorer."""
        return frozenset(self.scorers)

    def score_text(self, text: str, brand: str | None = None, lang: str | None = None) -> TextScore:
        """Mask, identify the language unless ``lang`` is given, and score. The score
        depends on nothing else, so the scores of recent short texts are remembered."""
        if len(text) <= CACHED_CHARS:
            return self._cached_score(text, brand, lang)
        return self._score_text(text, brand, lang)

    def _score_text(self, text: str, brand: str | None, lang: str | None) -> TextScore:
        if brand is None:
            masked, named = mask_generic(text), False
        else:
            masked, named = self.masker.mask_named(text, brand)
        code = normalise_lang(lang) or self.detector.detect(masked)
        scorer = self.scorers.get(code)
        if scorer is None and code == UNDETERMINED and self.fallback_lang is not None:
            scorer = self.scorers.get(self.fallback_lang)
        if scorer is None:
            return TextScore(compound=0.0, lang=code, scored=False, named=named)
        if not named:
            compound = scorer.compound(masked)
        elif len(text) <= self.message_chars:
            brand_compound = getattr(scorer, "brand_compound", None)
            compound = scorer.compound(masked) if brand_compound is None else brand_compound(masked)
        else:
            compound = scorer.compound(self._about_brand(text, brand, masked))
        return TextScore(compound=float(compound), lang=code, scored=True, named=named)

    def _about_brand(self, text: str, brand: str | None, masked: str) -> str:
        """The sentences of a long text that name the brand (masked), else the whole text."""
        kept: list[str] = []
        for sentence in _SENTENCE_BREAK.split(text):
            if sentence.strip():
                part, named = self.masker.mask_named(sentence, brand)
                if named:
                    kept.append(part)
        return " ".join(kept) if kept else masked

    def score_mention(self, mention: Mention) -> ScoredMention:
        result = self.score_text(mention.text, mention.brand, mention.lang)
        return ScoredMention(
            mention=mention, compound=result.compound, lang=result.lang, scored=result.scored
        )

    def compound(self, text: str) -> float:
        """``SentimentScorer`` interface for callers without a brand: handles and URLs are
        masked, the language detected; 0.0 for a language without a scorer."""
        return self.score_text(text).compound
