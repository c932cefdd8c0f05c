"""Masking: take the brand itself, other accounts and links out of a text before scoring.

A mention of "United" is about United; the word "united" (+1.8 in VADER's lexicon) says
nothing about how the author feels. ``BrandMasker`` removes, case-insensitively and as whole
words, a brand's configured names, aliases and handles (each also as @handle or #hashtag),
the natural spellings of the brand key itself (``united-airlines``: "united
airlines", "united-airlines", "unitedairlines", "united_airlines"), every other @handle and
every URL, and decodes the HTML entities that social-media APIs leave in texts (``&amp;``).
Each removed span becomes one space, so the words around it stay apart.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from detector.errors import ConfigError

# URLs, and @handles not preceded by a word character or @ (so e-mail addresses stay). The
# pattern starts with a character class so that the regex engine skips quickly to the
# characters that can start a match.
_GENERIC = re.compile(r"[@hHwW](?:(?<=@)(?<![\w@]@)\w+|(?i:(?<=h)ttps?://|(?<=w)ww\.)\S+)")
_KEY_SPLIT = re.compile(r"[-_.\s]+")


@dataclass(frozen=True, slots=True)
class BrandNames:
    """How a brand is named in texts.

    ``aliases`` are names as people write them ("United", "United Airlines"); ``handles``
    are the brand's accounts, with or without the leading @ ("@united"). Both are matched
    case-insensitively as whole words.
    """

    aliases: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind, values in (("aliases", self.aliases), ("handles", self.handles)):
            if isinstance(values, str) or not isinstance(values, tuple):
                raise ConfigError(f"brand {kind} must be a tuple of strings")
            for value in values:
                if not isinstance(value, str) or not value.strip().lstrip("@#").strip():
                    raise ConfigError(f"brand {kind} must be non-empty strings, got {value!r}")


def key_spellings(brand: str) -> tuple[str, ...]:
    """The ways a brand key is written in running text: ``acme-air`` -> "acme air",
    "acme-air", "acmeair", "acme_air" (matching is case-insensitive)."""
    parts = [p for p in _KEY_SPLIT.split(brand.strip().lower()) if p]
    if not parts:
        return ()
    if len(parts) == 1:
        return (parts[0],)
    return tuple(dict.fromkeys(sep.join(parts) for sep in (" ", "-", "", "_", ".")))


def _phrase_pattern(phrase: str) -> str:
    words = phrase.split()
    return r"\s+".join(re.escape(w) for w in words)


def brand_pattern(brand: str, names: BrandNames | None = None) -> re.Pattern[str]:
    """One compiled pattern matching the brand's names and handles as whole words, each
    optionally written as an @handle or a #hashtag."""
    phrases: dict[str, str] = {}
    candidates = list(key_spellings(brand))
    if names is not None:
        candidates += [a.strip().lstrip("#").strip() for a in names.aliases]
        candidates += [h.strip().lstrip("@").strip() for h in names.handles]
    for phrase in candidates:
        if phrase:
            phrases.setdefault(phrase.lower(), phrase)
    # Longest first, so that "united airlines" wins over "united".
    ordered = sorted(phrases, key=len, reverse=True)
    body = "|".join(_phrase_pattern(p) for p in ordered)
    return re.compile(rf"(?<![\w@#])[@#]?(?:{body})(?!\w)", re.IGNORECASE)


class BrandMasker:
    """Masks texts for one brand at a time; patterns are compiled once per brand."""

    __slots__ = ("_names", "_patterns", "_max_patterns")

    def __init__(
        self, brands: Mapping[str, BrandNames] | None = None, max_patterns: int = 10_000
    ) -> None:
        self._names = {k.strip().lower(): v for k, v in (brands or {}).items()}
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._max_patterns = max_patterns
        for brand in self._names:
            self._patterns[brand] = brand_pattern(brand, self._names[brand])

    @property
    def brands(self) -> Iterable[str]:
        return self._names.keys()

    def pattern(self, brand: str) -> re.Pattern[str]:
        pattern = self._patterns.get(brand)
        if pattern is None:
            key = brand.strip().lower()
            pattern = self._patterns.get(key)
            if pattern is None:
                # An unconfigured brand: its key's spellings only. Bounded, because brands
                # come from the input.
                if len(self._patterns) >= self._max_patterns:
                    self._patterns = {k: self._patterns[k] for k in self._names}
                pattern = brand_pattern(key, None)
                self._patterns[key] = pattern
            self._patterns[brand] = pattern
        return pattern

    def mask(self, text: str, brand: str | None = None) -> str:
        """``text`` without the brand's names, other handles and URLs (each replaced by a
        space), HTML entities decoded. Without a brand, only handles and URLs go."""
        return self.mask_named(text, brand)[0]

    def mask_named(self, text: str, brand: str | None = None) -> tuple[str, bool]:
        """Like ``mask``, and whether the text named the brand (a name, alias or handle)."""
        if "&" in text:
            text = html.unescape(text)
        named = False
        if brand is not None:
            text, count = self.pattern(brand).subn(" ", text)
            named = count > 0
        if "@" in text or "://" in text or "www." in text:
            text = _GENERIC.sub(" ", text)
        return text, named


def mask_generic(text: str) -> str:
    """Handles and URLs removed, HTML entities decoded; no brand names."""
    if "&" in text:
        text = html.unescape(text)
    if "@" in text or "://" in text or "www." in text:
        text = _GENERIC.sub(" ", text)
    return text
