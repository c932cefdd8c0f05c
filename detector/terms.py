"""Top terms of negative mentions: a bounded frequent-items summary per bucket."""

from __future__ import annotations

import re

from detector.state import TERMS_KEPT

_DROP = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")
_WORD = re.compile(r"[^\W\d_]{3,}")
_STOPWORDS = frozenset(
    """
    the and for you your are was were with this that have has had not but all any can our
    out get got just now one too very what when who why how its it's from they them their
    there here been will would could should about after again also because before being
    than then these those into over under only more most some such own same still even ever
    never nobody anyone someone every really today day days time week year der die das und
    ist nicht ein eine einer eines mit auf für von den dem des sich auch noch nur wie aber
    wir ihr sie ich mir mich dich uns euch war sind wird werden schon
    """.split()  # noqa: SIM905
)


def count_terms(terms: dict[str, int], text: str, brand: str) -> None:
    """Count the words of ``text`` into ``terms``, keeping at most ``TERMS_KEPT`` entries
    (Misra-Gries: a new word when full decrements every count, and zeros are dropped)."""
    brand_words = set(_WORD.findall(brand.lower()))
    for word in _WORD.findall(_DROP.sub(" ", text.lower())):
        if word in _STOPWORDS or word in brand_words:
            continue
        if word in terms:
            terms[word] += 1
        elif len(terms) < TERMS_KEPT:
            terms[word] = 1
        else:
            for key in list(terms):
                terms[key] -= 1
                if terms[key] <= 0:
                    del terms[key]


def top_terms(terms: dict[str, int], limit: int) -> list[dict[str, object]]:
    ranked = sorted(terms.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{"term": term, "count": count} for term, count in ranked]
