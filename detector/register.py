"""Rules for the register of messages that name a brand.

People write to a brand politely even when they complain ("@united please help, my bag is
lost", "thanks for nothing", "Liebe Bahn, danke für nichts"), ask it questions, and mix praise
into complaints. A general-purpose lexicon reads "please" (+1.3), "help" (+1.7) and "thanks"
(+1.9) as praise. ``Register`` is an adjuster for ``detector.valence`` that applies, in order:

1. requests and greetings carry no opinion ("please", "help", "dear"; "bitte", "Hallo",
   "Liebe Bahn," at the start of a clause, "Guten Morgen");
2. answers and discourse markers that open a clause carry no opinion ("Yes, ...", "Ok so",
   "Well, ..."); elsewhere they keep their valence ("it went well");
3. "like" is liking only after a subject or an auxiliary ("I like", "don't like"); elsewhere
   it is a preposition or filler ("looks like", "like 3 hours");
4. a clause that ends with "?" asks: its positive words assert nothing ("can you find me a
   good seat?"), while its negative words still complain ("why is it late again?");
5. gratitude followed by "for nothing" is sarcasm and counts as negative; other gratitude
   counts as praise only in a message that neither complains nor asks;
6. a message that complains anywhere is a complaint: when any token is negative, the positive
   tokens are dropped, so the compound is the strength of the complaint.

The word lists are per language (``ENGLISH``, ``GERMAN``); docs/sentiment.md says how each
was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import compress

from detector.valence import words

_CLAUSE_END = frozenset(".,;:!?")


def opens_clause(raw: list[str], i: int) -> bool:
    return i == 0 or raw[i - 1][-1:] in _CLAUSE_END


@dataclass(frozen=True, slots=True, eq=False)
class Register:
    """The brand-register rules with one language's word lists."""

    requests: frozenset[str]
    gratitude: frozenset[str]
    # Words with no opinion when they open a clause (answers, greetings, vocatives).
    openers: frozenset[str]
    # Words with no opinion before one of the given words ("guten" before "morgen").
    formula_heads: frozenset[str] = frozenset()
    formula_tails: frozenset[str] = frozenset()
    like_words: frozenset[str] = frozenset()
    like_subjects: frozenset[str] = frozenset()
    sarcasm_for: frozenset[str] = frozenset()
    sarcasm_objects: frozenset[str] = frozenset()
    # Rule 6; off only to measure what it adds.
    complaint_dominance: bool = True
    # Requests and gratitude: the words the rules visit even without a valence.
    marked: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "marked", self.requests | self.gratitude)

    def __call__(
        self, raw: list[str], words: list[str], lower: list[str], sentiments: list[float]
    ) -> None:
        # Only tokens with a valence, requests and gratitude can change anything (each
        # rule reads the tokens but writes only the valence of the token it is at), so
        # the rules visit those, in order; a "?" anywhere is found at once.
        n = len(lower)
        marked = self.marked.intersection(lower)
        if marked:
            visit = [i for i in range(n) if sentiments[i] or lower[i] in marked]
        else:  # a valence of 0.0 or -0.0 is false
            visit = list(compress(range(n), sentiments))
        if not visit:
            return
        questions = "?" in "".join(raw)
        asks = questions and any(token.endswith("?") for token in raw)
        thanks: list[int] = []
        for i in visit:
            lw = lower[i]
            if lw in self.requests:
                asks = True
                sentiments[i] = 0.0
            elif lw in self.gratitude:
                thanks.append(i)
            elif sentiments[i] == 0.0:
                continue
            elif (
                lw in self.openers
                and opens_clause(raw, i)
                or lw in self.formula_heads
                and i + 1 < n
                and lower[i + 1] in self.formula_tails
                or lw in self.like_words
                and (i == 0 or lower[i - 1] not in self.like_subjects)
            ):
                sentiments[i] = 0.0
        if questions:
            _questions_do_not_praise(raw, sentiments)
        complains = False
        for i in visit:
            if sentiments[i] < 0 and lower[i] not in self.gratitude:
                complains = True
                break
        for i in thanks:
            if self._sarcastic(lower, i):
                sentiments[i] = -abs(sentiments[i])
                complains = True
            elif complains or asks:
                sentiments[i] = 0.0
        if complains and self.complaint_dominance:
            for i in visit:
                if sentiments[i] > 0:
                    sentiments[i] = 0.0

    def _sarcastic(self, lower: list[str], i: int) -> bool:
        after = lower[i + 1 : i + 5]
        return any(w in self.sarcasm_for for w in after) and any(
            w in self.sarcasm_objects for w in after
        )


def _questions_do_not_praise(raw: list[str], sentiments: list[float]) -> None:
    start = 0
    n = len(raw)
    for i in range(n):
        token = raw[i]
        if token[-1:] in _CLAUSE_END or i == n - 1:
            if "?" in token:
                for k in range(start, i + 1):
                    if sentiments[k] > 0:
                        sentiments[k] = 0.0
            start = i + 1


ENGLISH = Register(
    requests=frozenset({"please", "pls", "plz", "help", "helps", "helping", "dear"}),
    gratitude=frozenset({"thanks", "thank", "thx", "ty", "appreciate", "appreciated"}),
    openers=frozenset({"yes", "yeah", "yep", "ok", "okay", "sure", "well"}),
    like_words=frozenset({"like"}),
    like_subjects=words(
        """
        i we you u they he she it ya really totally truly do does did dont don't doesnt
        doesn't didnt didn't
        """
    ),
    sarcasm_for=frozenset({"for"}),
    sarcasm_objects=frozenset({"nothing"}),
)

GERMAN = Register(
    requests=frozenset(
        {"bitte", "bitten", "helfen", "helft", "hilf", "hilfe", "pls", "please", "plz"}
    ),
    gratitude=frozenset(
        {"danke", "dank", "dankeschön", "danken", "bedanken", "thanks", "thx", "merci"}
    ),
    openers=words(
        """
        ja jo jep ok okay gut klar sicher liebe lieber liebes hallo hi hey moin servus
        """
    ),
    formula_heads=frozenset(
        {"guten", "gute", "schönen", "schöne", "schönes", "liebe", "viele", "beste"}
    ),
    formula_tails=words(
        """
        morgen tag abend nacht reise fahrt fahrten heimreise wochenende feierabend grüße
        gruß grüsse gruss
        """
    ),
    sarcasm_for=frozenset({"für"}),
    sarcasm_objects=frozenset({"nichts", "nix"}),
)
