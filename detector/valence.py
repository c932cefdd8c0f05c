"""A VADER-style rule engine, parameterised by language.

``ValenceScorer`` scores a text the way vaderSentiment 3.3.2's ``SentimentIntensityAnalyzer``
does (lexicon valence per token, boosters and dampeners within three tokens, negation within
three tokens, ALL-CAPS emphasis, ``!``/``?`` emphasis, a contrastive conjunction, emoji), but
takes the word lists from a ``ValenceRules`` value, so that one engine serves English (VADER's
own lexicon and word lists: the result is the same compound as vaderSentiment's) and German
(a German lexicon and German word lists, see ``detector.german``).

The engine is written for throughput: the word lists are sets and dicts built once, each text
is split once, and the rarely needed work (emoji substitution, idiom look-ups) is skipped when
it cannot apply.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# VADER's empirically derived constants (Hutto & Gilbert 2014), kept as they are.
BOOST = 0.293
DAMPEN = -0.293
CAPS_BOOST = 0.733
NEGATION_SCALAR = -0.74
EXCLAMATION_STEP = 0.292
EXCLAMATION_MAX = 4
QUESTION_STEP = 0.18
QUESTION_MAX_AMPLIFIER = 0.96
NORMALISE_ALPHA = 15.0

# A rule that adjusts the per-token valences after the lexicon pass and before the
# contrastive-conjunction pass: (raw tokens, stripped tokens, lower-cased tokens, valences).
Adjuster = Callable[[list[str], list[str], list[str], list[float]], None]
# A look-up for tokens that are not in the lexicon: (token, lower-cased token) -> valence or None.
Fallback = Callable[[str, str], float | None]


@dataclass(frozen=True, slots=True, eq=False)
class ValenceRules:
    """Everything language-specific that the engine needs.

    The fields after ``contrast`` reproduce special cases of VADER's English rules; a language
    that does not need one leaves it empty.
    """

    name: str
    lexicon: Mapping[str, float]
    boosters: Mapping[str, float]
    negations: frozenset[str]
    # A token containing this string is a negation too (English "n't").
    negation_infix: str = ""
    # Contrastive conjunctions ("but"): valences before the first one count half, after it 1.5x.
    contrast: frozenset[str] = frozenset()
    # Multi-word expressions whose valence replaces the word's own ("the bomb": 3).
    special_cases: Mapping[str, float] = field(default_factory=dict)
    # Single characters replaced by text before tokenising (VADER: emoji -> description).
    emoji: Mapping[str, str] = field(default_factory=dict)
    # Characters stripped from both ends of a token.
    strip_chars: str = string.punctuation
    # VADER keeps a token unstripped when stripping leaves two characters or fewer (so that
    # ":)" survives); a language without that rule keeps the token only when nothing is left.
    keep_short_tokens: bool = True
    # Squeeze a letter repeated three or more times ("suuuper", "niiicht") to one.
    squeeze_repeats: bool = False
    # VADER's "no" rule: "no" before a lexicon word negates it instead of counting itself.
    no_word: str = ""
    # VADER's "least" rule: "least" negates the next word unless after "at"/"very".
    least_word: str = ""
    least_exempt: frozenset[str] = frozenset()
    # Word pairs whose first word is not scored ("kind of").
    skip_pairs: frozenset[tuple[str, str]] = frozenset()
    # VADER's "never so/this" emphasis and "without doubt" exception.
    never_word: str = ""
    never_emphasis: frozenset[str] = frozenset()
    without_doubt: tuple[str, str] = ("", "")
    fallback: Fallback | None = None
    adjust: Adjuster | None = None


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``: word lists written as one string."""
    return frozenset(text.split())


_REPEATED_LETTER = re.compile(r"([^\W\d_])\1{2,}")


def normalise(score: float, alpha: float = NORMALISE_ALPHA) -> float:
    """Map an unbounded valence sum into (-1, 1), as VADER does."""
    norm = score / math.sqrt(score * score + alpha)
    return max(-1.0, min(1.0, norm))


def punctuation_amplifier(text: str) -> float:
    """Emphasis from exclamation marks (up to four) and repeated question marks."""
    amplifier = min(text.count("!"), EXCLAMATION_MAX) * EXCLAMATION_STEP
    questions = text.count("?")
    if questions > 1:
        amplifier += questions * QUESTION_STEP if questions <= 3 else QUESTION_MAX_AMPLIFIER
    return amplifier


class ValenceScorer:
    """Compound polarity in [-1, 1] of a text under one language's ``ValenceRules``."""

    __slots__ = (
        "name",
        "rules",
        "_lexicon",
        "_boosters",
        "_negations",
        "_infix",
        "_contrast",
        "_special",
        "_special_words",
        "_emoji",
        "_emoji_keys",
        "_strip",
        "_keep_short",
        "_squeeze",
        "_no",
        "_least",
        "_least_exempt",
        "_skip_pairs",
        "_skip_first",
        "_never",
        "_never_emphasis",
        "_without",
        "_doubt",
        "_fallback",
        "_adjust",
    )

    def __init__(self, rules: ValenceRules) -> None:
        self.name = rules.name
        self.rules = rules
        self._lexicon = dict(rules.lexicon)
        self._boosters = dict(rules.boosters)
        self._negations = rules.negations
        self._infix = rules.negation_infix
        self._contrast = rules.contrast
        self._special = dict(rules.special_cases)
        self._special_words = frozenset(w for key in self._special for w in key.split())
        self._emoji = dict(rules.emoji)
        self._emoji_keys = frozenset(ch for ch in self._emoji if len(ch) == 1)
        self._strip = rules.strip_chars
        self._keep_short = rules.keep_short_tokens
        self._squeeze = rules.squeeze_repeats
        self._no = rules.no_word
        self._least = rules.least_word
        self._least_exempt = rules.least_exempt
        self._skip_pairs = rules.skip_pairs
        self._skip_first = frozenset(a for a, _ in rules.skip_pairs)
        self._never = rules.never_word
        self._never_emphasis = rules.never_emphasis
        self._without, self._doubt = rules.without_doubt
        self._fallback = rules.fallback
        self._adjust = rules.adjust

    # -- tokenising ---------------------------------------------------------------------

    def _replace_emoji(self, text: str) -> str:
        # The same spacing as VADER: a space before a replacement unless one is there,
        # none after it.
        emoji = self._emoji
        out: list[str] = []
        prev_space = True
        for ch in text:
            replacement = emoji.get(ch)
            if replacement is not None:
                if not prev_space:
                    out.append(" ")
                out.append(replacement)
                prev_space = False
            else:
                out.append(ch)
                prev_space = ch == " "
        return "".join(out)

    def prepare(self, text: str) -> tuple[str, list[str], list[str]]:
        """The text after emoji substitution, its raw tokens and its stripped tokens."""
        keys = self._emoji_keys
        if keys and not text.isascii() and not keys.isdisjoint(text):
            text = self._replace_emoji(text)
        text = text.strip()
        if self._squeeze:
            text = _REPEATED_LETTER.sub(r"\1", text)
        raw = text.split()
        strip = self._strip
        words: list[str] = []
        append = words.append
        if self._keep_short:
            for token in raw:
                stripped = token.strip(strip)
                append(token if len(stripped) <= 2 else stripped)
        else:
            for token in raw:
                stripped = token.strip(strip)
                append(stripped or token)
        return text, raw, words

    # -- scoring --------------------------------------------------------------------------

    def valences(self, text: str) -> tuple[str, list[str], list[float]]:
        """Per-token valences (after all rules) with the prepared text and lower-cased tokens."""
        text, raw, words = self.prepare(text)
        lower = [w.lower() for w in words]
        n = len(words)
        caps = 0
        for w in words:
            if w.isupper():
                caps += 1
        cap_diff = 0 < n - caps < n
        lexicon = self._lexicon
        boosters = self._boosters
        fallback = self._fallback
        sentiments: list[float] = []
        append = sentiments.append
        for i in range(n):
            lw = lower[i]
            if lw in boosters:
                append(0.0)
                continue
            if lw in self._skip_first and i < n - 1 and (lw, lower[i + 1]) in self._skip_pairs:
                append(0.0)
                continue
            base = lexicon.get(lw)
            if base is None and fallback is not None:
                base = fallback(words[i], lw)
            if base is None:
                append(0.0)
                continue
            append(self._word_valence(base, i, words, lower, cap_diff))
        if self._adjust is not None:
            self._adjust(raw, words, lower, sentiments)
        if self._contrast:
            self._contrast_check(lower, sentiments)
        return text, lower, sentiments

    def compound(self, text: str) -> float:
        text, _lower, sentiments = self.valences(text)
        return self.compound_of(text, sentiments)

    @staticmethod
    def compound_of(text: str, sentiments: list[float]) -> float:
        if not sentiments:
            return 0.0
        total = float(sum(sentiments))
        if total > 0:
            total += punctuation_amplifier(text)
        elif total < 0:
            total -= punctuation_amplifier(text)
        return round(normalise(total), 4)

    def _word_valence(
        self, base: float, i: int, words: list[str], lower: list[str], cap_diff: bool
    ) -> float:
        lexicon = self._lexicon
        n = len(words)
        valence = base
        no = self._no
        if no:
            if lower[i] == no and i != n - 1 and lower[i + 1] in lexicon:
                valence = 0.0
            if (
                (i > 0 and lower[i - 1] == no)
                or (i > 1 and lower[i - 2] == no)
                or (i > 2 and lower[i - 3] == no and lower[i - 1] in ("or", "nor"))
            ):
                valence = base * NEGATION_SCALAR
        if cap_diff and words[i].isupper():
            valence = valence + CAPS_BOOST if valence > 0 else valence - CAPS_BOOST
        for start in range(3):
            if i <= start:
                break
            prev = lower[i - start - 1]
            if prev in lexicon:
                continue
            scalar = self._booster(words[i - start - 1], prev, valence, cap_diff)
            if scalar != 0.0:
                if start == 1:
                    scalar *= 0.95
                elif start == 2:
                    scalar *= 0.9
            valence += scalar
            valence = self._negation_check(valence, lower, start, i)
            if start == 2:
                valence = self._special_check(valence, lower, i)
        least = self._least
        if least:
            if i > 1 and lower[i - 1] == least and lower[i - 1] not in lexicon:
                if lower[i - 2] not in self._least_exempt:
                    valence *= NEGATION_SCALAR
            elif i > 0 and lower[i - 1] == least and lower[i - 1] not in lexicon:
                valence *= NEGATION_SCALAR
        return valence

    def _booster(self, word: str, lw: str, valence: float, cap_diff: bool) -> float:
        scalar = self._boosters.get(lw)
        if scalar is None:
            return 0.0
        if valence < 0:
            scalar = -scalar
        if cap_diff and word.isupper():
            scalar = scalar + CAPS_BOOST if valence > 0 else scalar - CAPS_BOOST
        return scalar

    def _negated(self, lw: str) -> bool:
        return lw in self._negations or (bool(self._infix) and self._infix in lw)

    def _negation_check(self, valence: float, lower: list[str], start: int, i: int) -> float:
        never = self._never
        emphasis = self._never_emphasis
        without = self._without
        if start == 0:
            if self._negated(lower[i - 1]):
                valence *= NEGATION_SCALAR
        elif start == 1:
            if never and lower[i - 2] == never and lower[i - 1] in emphasis:
                valence *= 1.25
            elif without and lower[i - 2] == without and lower[i - 1] == self._doubt:
                pass
            elif self._negated(lower[i - 2]):
                valence *= NEGATION_SCALAR
        else:
            # VADER's condition reads "(never and so/this two back) or so/this one back".
            if never and (
                (lower[i - 3] == never and lower[i - 2] in emphasis) or lower[i - 1] in emphasis
            ):
                valence *= 1.25
            elif (
                without
                and lower[i - 3] == without
                and (lower[i - 2] == self._doubt or lower[i - 1] == self._doubt)
            ):
                pass
            elif self._negated(lower[i - 3]):
                valence *= NEGATION_SCALAR
        return valence

    def _special_check(self, valence: float, lower: list[str], i: int) -> float:
        # Called for tokens with three tokens before them; looks up the idioms around the
        # token and the booster bigrams before it ("kind of"), as VADER does.
        special = self._special
        if special:
            words = self._special_words
            window = lower[max(0, i - 3) : i + 3]
            if any(w in words for w in window):
                one_zero = f"{lower[i - 1]} {lower[i]}"
                two_one_zero = f"{lower[i - 2]} {lower[i - 1]} {lower[i]}"
                two_one = f"{lower[i - 2]} {lower[i - 1]}"
                three_two_one = f"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}"
                three_two = f"{lower[i - 3]} {lower[i - 2]}"
                for seq in (one_zero, two_one_zero, two_one, three_two_one, three_two):
                    if seq in special:
                        valence = special[seq]
                        break
                n = len(lower)
                if n - 1 > i:
                    zero_one = f"{lower[i]} {lower[i + 1]}"
                    if zero_one in special:
                        valence = special[zero_one]
                if n - 1 > i + 1:
                    zero_one_two = f"{lower[i]} {lower[i + 1]} {lower[i + 2]}"
                    if zero_one_two in special:
                        valence = special[zero_one_two]
        boosters = self._boosters
        for seq in (
            f"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}",
            f"{lower[i - 3]} {lower[i - 2]}",
            f"{lower[i - 2]} {lower[i - 1]}",
        ):
            extra = boosters.get(seq)
            if extra is not None:
                valence += extra
        return valence

    def _contrast_check(self, lower: list[str], sentiments: list[float]) -> None:
        contrast = self._contrast
        at = -1
        for k, lw in enumerate(lower):
            if lw in contrast:
                at = k
                break
        if at < 0:
            return
        # VADER locates each value by list.index(), i.e. by its first equal value; that is
        # kept so that the English scores stay identical.
        for sentiment in sentiments:
            si = sentiments.index(sentiment)
            if si < at:
                sentiments[si] = sentiment * 0.5
            elif si > at:
                sentiments[si] = sentiment * 1.5
