"""Language identification of mention texts, offline.

``LanguageDetector`` uses CLD2 (Google's Compact Language Detector 2, through the ``pycld2``
package: Apache-2.0, the model is compiled into the wheel, no download at run time), which
knows over 80 languages and takes a few microseconds per tweet.

CLD2 is reliable on sentences and unreliable on a few words: "thnx!" comes out Dutch and
"Lmfao" Tongan. So the detector is told which languages the caller can score
(``candidates``): when a text has fewer than ``short_text_letters`` letters, the first
candidate among CLD2's three guesses wins, and when CLD2 names none, the text gets the
``fallback`` language. A longer text keeps CLD2's answer whatever it is, so that a French
mention is reported as French (and left unscored by a caller without a French scorer) rather
than scored as English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pycld2  # type: ignore[import-untyped]

# The answer for a text without enough letters to say anything (emoji, numbers, only links).
UNDETERMINED = "und"

# Characters CLD2 refuses (it raises on C0/C1 control characters and unpaired surrogates).
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def normalise_lang(lang: str | None) -> str | None:
    """ISO 639-1 style primary tag in lower case: ``"en-US"`` -> ``"en"``, ``"DE"`` ->
    ``"de"``; ``None`` for a missing, empty or undetermined (``"und"``) tag."""
    if not lang:
        return None
    primary = lang.strip().replace("_", "-").split("-", 1)[0].lower()
    if not primary or primary == UNDETERMINED:
        return None
    return primary


class LanguageDetector:
    """Maps a text to a language code (``"en"``, ``"de"``, ...) or ``UNDETERMINED``."""

    __slots__ = ("candidates", "fallback", "short_text_letters")

    def __init__(
        self,
        candidates: Iterable[str] = ("en", "de"),
        fallback: str | None = "en",
        short_text_letters: int = 40,
    ) -> None:
        self.candidates = frozenset(normalise_lang(c) or UNDETERMINED for c in candidates)
        self.fallback = normalise_lang(fallback)
        self.short_text_letters = short_text_letters

    def _cld2(self, text: str) -> tuple[int, list[str]]:
        try:
            result = pycld2.detect(text, bestEffort=True)
        except (pycld2.error, UnicodeError, ValueError):
            try:
                result = pycld2.detect(_REFUSED.sub(" ", text), bestEffort=True)
            except (pycld2.error, UnicodeError, ValueError):
                return 0, []
        letters = int(result[1])
        ranked: list[str] = []
        for _name, code, percent, _score in result[2]:
            if percent > 0 and code != "un":
                ranked.append(normalise_lang(str(code)) or UNDETERMINED)
        return letters, ranked

    def detect(self, text: str) -> str:
        """The text's language; ``UNDETERMINED`` when CLD2 finds no language at all."""
        letters, ranked = self._cld2(text)
        if not ranked:
            return UNDETERMINED
        if ranked[0] in self.candidates:
            return ranked[0]
        if letters < self.short_text_letters:
            for code in ranked:
                if code in self.candidates:
                    return code
            return self.fallback or ranked[0]
        return ranked[0]
