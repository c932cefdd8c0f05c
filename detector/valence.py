"""A VADER-style rule engine, parameterised by language.

``ValenceScorer`` scores a text the way vaderSentiment 3.3.2's ``SentimentIntensityAnalyzer``
does (lexicon valence per token, boosters and dampeners within three tokens, negation within
three tokens, ALL-CAPS emphasis, ``!``/``?`` emphasis, a contrastive conjunction, idioms,
emoji), but takes the word lists from a ``ValenceRules`` value, so that one engine serves
English (VADER's own lexicon and word lists: ``compound`` and ``polarity_scores`` return the
same floats as vaderSentiment, not approximately the same ones) and German (a German lexicon
and German word lists, see ``detector.german``).

Each floating-point operation of VADER is kept, in VADER's order, including its quirks (the
contrastive conjunction finds each value with ``list.index``, i.e. by its first equal value;
"so"/"this" right before a word multiply it by 1.25 when the third token back is not a
lexicon word). The time goes elsewhere:

- every whitespace token is stripped and lower-cased once and remembered in a bounded cache
  shared by the scorers with the same stripping rules (texts repeat their words);
- a text without any lexicon word takes a shortcut (its valences are all 0);
- only the lexicon words are scored; a lexicon word with no rule word (lexicon word, booster,
  negation, "never", "least", ...) among the three tokens before it skips the rule loop over
  them, which would change nothing;
- the rule tables are dicts and sets built once; idioms are looked up only in a text holding
  a word of one; emoji are replaced with ``str.replace``, only in a text holding one; the
  share of ALL-CAPS words is only counted when an ALL-CAPS word could use it;
- the scoring tail (punctuation emphasis, normalisation) is inlined.

A language's ``adjust`` hook sees the full per-token lists, as before; the contrastive
conjunction then runs on them.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import compress
from operator import or_

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
# It must depend on its arguments only (the engine may call it for any token).
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
    # Characters stripped from both ends of a token (none of them may be a cased letter).
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
# The words after "no ..." that let "no" negate a lexicon word three tokens on.
_OR_NOR = frozenset({"or", "nor"})
_NOTHING: frozenset[str] = frozenset()
# Texts of more tokens find their lexicon words in one pass rather than word by word.
_SHORT_TEXT_TOKENS = 32
# Tokens remembered by a token cache before it is emptied and refilled.
_TOKEN_CACHE_SIZE = 200_000


def normalise(score: float, alpha: float = NORMALISE_ALPHA) -> float:
    """Map an unbounded valence sum into (-1, 1), as VADER does."""
    norm = score / math.sqrt(score * score + alpha)
    return max(-1.0, min(1.0, norm))


def punctuation_amplifier(text: str) -> float:
    """Emphasis from exclamation marks (up to four) and repeated question marks."""
    exclamations = text.count("!")
    if exclamations > EXCLAMATION_MAX:
        exclamations = EXCLAMATION_MAX
    amplifier = exclamations * EXCLAMATION_STEP
    questions = text.count("?")
    if questions > 1:
        amplifier += questions * QUESTION_STEP if questions <= 3 else QUESTION_MAX_AMPLIFIER
    return amplifier


class _TokenCache(dict[str, str]):
    """Whitespace token -> ``convert(token)``, emptied when it holds ``_TOKEN_CACHE_SIZE``."""

    __slots__ = ("_convert",)

    def __init__(self, convert: Callable[[str], str]) -> None:
        super().__init__()
        self._convert = convert

    def __missing__(self, token: str) -> str:
        if len(self) >= _TOKEN_CACHE_SIZE:
            self.clear()
        value = self._convert(token)
        self[token] = value
        return value


def _stripper(strip: str, keep_short: bool) -> Callable[[str], str]:
    """The word a token stands for: stripped of ``strip`` at both ends, unless that leaves two
    characters or fewer (``keep_short``) or nothing."""
    if keep_short:

        def word(token: str) -> str:
            stripped = token.strip(strip)
            return token if len(stripped) <= 2 else stripped

    else:

        def word(token: str) -> str:
            return token.strip(strip) or token

    return word


# Token caches by (stripping rules, lower-cased): the scorers of one language share them.
_CACHES: dict[tuple[str, bool, bool], _TokenCache] = {}


def _token_cache(strip: str, keep_short: bool, lower: bool) -> _TokenCache:
    key = (strip, keep_short, lower)
    cache = _CACHES.get(key)
    if cache is None:
        word = _stripper(strip, keep_short)
        cache = _CACHES[key] = _TokenCache((lambda t: word(t).lower()) if lower else word)
    return cache


def clear_token_caches() -> None:
    """Empty the shared token caches (for a benchmark's first pass)."""
    for cache in _CACHES.values():
        cache.clear()


def _ngrams(keys: Mapping[str, float], size: int) -> dict[tuple[str, ...], float]:
    """The entries of ``keys`` made of ``size`` space-separated words, keyed by word tuple.
    (Tokens hold no space, so a tuple of tokens equals a key's words exactly when the tokens
    joined by spaces equal the key; keys of other sizes never match.)"""
    table: dict[tuple[str, ...], float] = {}
    for key, value in keys.items():
        parts = tuple(key.split(" "))
        if len(parts) == size:
            table[parts] = value
    return table


def _cased(ch: str) -> bool:
    return ch.isupper() or ch.islower() or ch.istitle()


class ValenceScorer:
    """Compound polarity in [-1, 1] of a text under one language's ``ValenceRules``."""

    __slots__ = (
        "name",
        "rules",
        "_lexicon",
        "_scored",
        "_boosters",
        "_negations",
        "_infix",
        "_infix_gate",
        "_contrast",
        "_contrast_word",
        "_special2",
        "_special3",
        "_special_first",
        "_booster2",
        "_booster3",
        "_booster_first",
        "_idiom_words",
        "_emoji",
        "_emoji_chars",
        "_emoji_by_replace",
        "_squeeze",
        "_no",
        "_no_scored",
        "_least",
        "_least_exempt",
        "_skip_pairs",
        "_skip_first",
        "_never",
        "_never_emphasis",
        "_without",
        "_doubt",
        "_context",
        "_fallback",
        "_fallback_known",
        "_fallback_valued",
        "_adjust",
        "_lower",
        "_word",
    )

    def __init__(self, rules: ValenceRules) -> None:
        if any(_cased(ch) for ch in rules.strip_chars):
            # The engine tells ALL-CAPS words from the unstripped tokens.
            raise ValueError(f"{rules.name}: strip_chars must not hold cased letters")
        self.name = rules.name
        self.rules = rules
        lexicon = {str(k): v for k, v in rules.lexicon.items()}
        boosters = {str(k): v for k, v in rules.boosters.items()}
        self._lexicon = lexicon
        self._boosters = boosters
        # A booster scores 0 at its own place, even if it is a lexicon word.
        self._scored = {w: v for w, v in lexicon.items() if w not in boosters}
        self._negations = rules.negations
        self._infix = rules.negation_infix
        # An ASCII punctuation character of the infix ("'" of "n't"): no other character
        # lower-cases to one, so a text without it has no word holding the infix.
        self._infix_gate = next(
            (ch for ch in rules.negation_infix if ch.isascii() and not ch.isalnum()), ""
        )
        self._contrast = rules.contrast
        self._contrast_word = next(iter(rules.contrast)) if len(rules.contrast) == 1 else ""
        special = {str(k): v for k, v in rules.special_cases.items()}
        self._special2 = _ngrams(special, 2)
        self._special3 = _ngrams(special, 3)
        self._special_first = frozenset(k[0] for k in (*self._special2, *self._special3))
        self._booster2 = _ngrams(boosters, 2)
        self._booster3 = _ngrams(boosters, 3)
        self._booster_first = frozenset(k[0] for k in (*self._booster2, *self._booster3))
        # One word of every multi-word idiom and booster ("kind of"): a text holding none of
        # them matches none.
        self._idiom_words = frozenset(
            min(key, key=lambda w: (-len(w), w))
            for key in (*self._special2, *self._special3, *self._booster2, *self._booster3)
        )
        emoji = {str(k): str(v) for k, v in rules.emoji.items() if len(k) == 1}
        self._emoji_chars = frozenset(emoji)
        # VADER puts a space before a replacement unless one is there. Always adding one
        # changes neither the tokens nor the counts of "!" and "?", the only uses of the
        # text. Replacing one emoji after the other equals VADER's single pass when no
        # replacement holds another emoji; otherwise the single pass is kept.
        self._emoji_by_replace = all(
            (self._emoji_chars - {k}).isdisjoint(v) for k, v in emoji.items()
        )
        self._emoji = {k: " " + v for k, v in emoji.items()}
        self._squeeze = rules.squeeze_repeats
        self._no = rules.no_word
        self._no_scored = rules.no_word in self._scored
        # VADER's "least" rule only applies when "least" is not a lexicon word.
        self._least = rules.least_word if rules.least_word not in lexicon else ""
        self._least_exempt = rules.least_exempt
        self._skip_pairs = rules.skip_pairs
        self._skip_first = frozenset(a for a, _ in rules.skip_pairs)
        self._never = rules.never_word
        self._never_emphasis = rules.never_emphasis if rules.never_word else frozenset()
        self._without, self._doubt = rules.without_doubt
        # Words that make a rule apply when they are among the three tokens before a lexicon
        # word (so does a token holding the negation infix). Without one there, the rule loop
        # over those tokens changes nothing.
        context = {*lexicon, *boosters, *rules.negations, *self._never_emphasis}
        context.update((self._never, self._without, self._doubt, self._least, self._no))
        context.discard("")
        self._context = frozenset(context)
        self._fallback = rules.fallback
        # Token -> what the fallback says about it (None: nothing, or not asked), and the
        # tokens it gives a valence; emptied together when full.
        self._fallback_known: dict[str, float | None] = {}
        self._fallback_valued: dict[str, float] = {}
        self._adjust = rules.adjust
        strip, keep_short = rules.strip_chars, rules.keep_short_tokens
        self._lower = _token_cache(strip, keep_short, lower=True)
        self._word = _token_cache(strip, keep_short, lower=False)

    # -- public ---------------------------------------------------------------------------

    def compound(self, text: str) -> float:
        """VADER's compound of ``text`` under these rules, in [-1, 1], rounded to 4 places."""
        text, raw, lower, positions, values = self._lexicon_pass(text)
        if self._adjust is not None:
            values = self._full(raw, lower, positions, values)
        elif not values:
            return 0.0
        elif self._contrast_word:
            if self._contrast_word in lower:
                self._contrast_check(lower.index(self._contrast_word), positions, values)
        elif self._contrast:
            at = self._contrast_at(lower)
            if at >= 0:
                self._contrast_check(at, positions, values)
        if not values:
            return 0.0
        total = float(sum(values))
        if total > 0:
            total += punctuation_amplifier(text)
        elif total < 0:
            total -= punctuation_amplifier(text)
        # normalise(total)
        compound = total / math.sqrt(total * total + NORMALISE_ALPHA)
        if compound < -1.0:
            compound = -1.0
        elif compound > 1.0:
            compound = 1.0
        return round(compound, 4)

    def polarity_scores(self, text: str) -> dict[str, float]:
        """VADER's ``neg``, ``neu``, ``pos`` and ``compound`` of ``text`` under these rules."""
        text, n, values = self._scan(text)
        if not n:
            return {"neg": 0.0, "neu": 0.0, "pos": 0.0, "compound": 0.0}
        if not values:
            return {"neg": 0.0, "neu": 1.0, "pos": 0.0, "compound": 0.0}
        total = float(sum(values))
        amplifier = punctuation_amplifier(text)
        if total > 0:
            total += amplifier
        elif total < 0:
            total -= amplifier
        compound = total / math.sqrt(total * total + NORMALISE_ALPHA)
        if compound < -1.0:
            compound = -1.0
        elif compound > 1.0:
            compound = 1.0
        # VADER's _sift_sentiment_scores; the tokens without a value count as neutral.
        pos_sum = 0.0
        neg_sum = 0.0
        neu_count = n - len(values)
        for value in values:
            if value > 0:
                pos_sum += float(value) + 1
            elif value < 0:
                neg_sum += float(value) - 1
            else:
                neu_count += 1
        fabs = math.fabs
        if pos_sum > fabs(neg_sum):
            pos_sum += amplifier
        elif pos_sum < fabs(neg_sum):
            neg_sum -= amplifier
        all_sums = pos_sum + fabs(neg_sum) + neu_count
        return {
            "neg": round(fabs(neg_sum / all_sums), 3),
            "neu": round(fabs(neu_count / all_sums), 3),
            "pos": round(fabs(pos_sum / all_sums), 3),
            "compound": round(compound, 4),
        }

    def valences(self, text: str) -> list[float]:
        """The valence of every token of ``text`` after all rules (0.0 for most tokens)."""
        text, raw, lower, positions, values = self._lexicon_pass(text)
        return self._full(raw, lower, positions, values)

    # -- the passes -------------------------------------------------------------------------

    def _scan(self, text: str) -> tuple[str, int, list[float]]:
        """The text the punctuation is counted on, the number of tokens, and the valences
        whose sum is the score: those of the scored tokens, in order, after every rule (all
        tokens' when an ``adjust`` rule needs them; the others are 0)."""
        text, raw, lower, positions, values = self._lexicon_pass(text)
        if self._adjust is not None:
            return text, len(raw), self._full(raw, lower, positions, values)
        if values and self._contrast:
            at = self._contrast_at(lower)
            if at >= 0:
                self._contrast_check(at, positions, values)
        return text, len(raw), values

    def _full(
        self, raw: list[str], lower: list[str], positions: list[int], values: list[float]
    ) -> list[float]:
        """Every token's valence, after the ``adjust`` rule and the contrastive conjunction."""
        n = len(raw)
        sentiments = [0.0] * n
        for p, v in zip(positions, values, strict=True):
            sentiments[p] = v
        if self._adjust is not None:
            self._adjust(raw, list(map(self._word.__getitem__, raw)), lower, sentiments)
        if self._contrast:
            at = self._contrast_at(lower)
            if at >= 0:
                self._contrast_check(at, range(n), sentiments)
        return sentiments

    def _lexicon_pass(self, text: str) -> tuple[str, list[str], list[str], list[int], list[float]]:
        """(the text after emoji replacement, its whitespace tokens, their lower-cased words,
        the places of the scored tokens in order, their valences after the rules on the
        tokens before them)."""
        emoji_chars = self._emoji_chars
        if emoji_chars and not text.isascii():
            present = emoji_chars.intersection(text)
            if present:
                if self._emoji_by_replace:
                    emoji = self._emoji
                    for ch in present:
                        text = text.replace(ch, emoji[ch])
                else:
                    text = self._replace_emoji(text)
        if self._squeeze:
            text = _REPEATED_LETTER.sub(r"\1", text)
        # VADER strips the text before splitting it; neither the split nor the counts of
        # "!" and "?" depend on that.
        raw = text.split()
        lower = list(map(self._lower.__getitem__, raw))
        scored = self._scored
        positions: list[int] = []
        hits = scored.keys() & lower
        # Tokens valued by the fallback (remembered by token, as their words are).
        valued = self._fallback_valued
        found: AbstractSet[str] = _NOTHING
        if self._fallback is not None:
            tokens = set(raw)
            # (set.difference with a dict looks up the set's items, not the dict's.)
            new = tokens.difference(self._fallback_known)
            if new:
                self._learn_fallback(new, tokens)
            found = valued.keys() & tokens
        if not hits and not found:
            return text, raw, lower, positions, []
        # The places of the scored tokens, in order: found by list.index and list.count in a
        # short text, by one pass over a long one (both run in C).
        n = len(raw)
        if found:
            flags = map(or_, map(hits.__contains__, lower), map(found.__contains__, raw))
            positions = list(compress(range(n), flags))
        elif n > _SHORT_TEXT_TOKENS:
            positions = list(compress(range(n), map(hits.__contains__, lower)))
        else:
            for hit in hits:
                k = lower.index(hit)
                positions.append(k)
                for _ in range(lower.count(hit) - 1):
                    k = lower.index(hit, k + 1)
                    positions.append(k)
            if len(positions) > 1:
                positions.sort()
        no = self._no
        has_no = no in hits if self._no_scored else bool(no) and no in lower

        lexicon = self._lexicon
        context = self._context
        infix = self._infix
        infix_gate = self._infix_gate
        skip_first = self._skip_first
        has_infix: bool | None = None
        cap_diff: bool | None = None
        idiom: bool | None = None
        last = n - 1
        values: list[float] = []
        for i in positions:
            lw = lower[i]
            if lw in skip_first and i < last and (lw, lower[i + 1]) in self._skip_pairs:
                values.append(0.0)
                continue
            base = scored[lw] if lw in scored else valued[raw[i]]
            valence = base
            if has_no:
                if lw == no and i != last and lower[i + 1] in lexicon:
                    valence = 0.0
                if (
                    (i > 0 and lower[i - 1] == no)
                    or (i > 1 and lower[i - 2] == no)
                    or (i > 2 and lower[i - 3] == no and lower[i - 1] in _OR_NOR)
                ):
                    valence = base * NEGATION_SCALAR
            # A stripped word is ALL-CAPS exactly when its token is: the stripped characters
            # are not cased.
            if raw[i].isupper():
                if cap_diff is None:
                    cap_diff = 0 < n - sum(map(str.isupper, raw)) < n
                if cap_diff:
                    valence = valence + CAPS_BOOST if valence > 0 else valence - CAPS_BOOST
            window = lower[i - 3 if i > 3 else 0 : i]
            if context.isdisjoint(window):
                if infix:
                    if has_infix is None:
                        has_infix = infix_gate in text if infix_gate else True
                    plain = not has_infix or not any(infix in w for w in window)
                else:
                    plain = True
                if plain:
                    # No rule word in the three tokens before: the rule loop over them
                    # would add 0.0 and change nothing but a zero's sign; only an idiom can
                    # apply.
                    if i > 2:
                        if idiom is None:
                            idiom = not self._idiom_words.isdisjoint(lower)
                        if idiom:
                            valence = self._idioms(valence, lower, i)
                    values.append(valence)
                    continue
            values.append(self._context_rules(valence, raw, lower, i))
        return text, raw, lower, positions, values

    def _learn_fallback(self, new: set[str], tokens: set[str]) -> None:
        """Ask the fallback about the tokens it has not seen (all of the text's when the
        memory is full and emptied): tokens whose word is neither scored nor a booster."""
        known = self._fallback_known
        valued = self._fallback_valued
        if len(known) + len(new) > _TOKEN_CACHE_SIZE:
            known.clear()
            valued.clear()
            new = tokens
        fallback = self._fallback
        assert fallback is not None
        scored = self._scored
        boosters = self._boosters
        lower = self._lower
        word = self._word
        for token in new:
            lw = lower[token]
            value = None
            if lw not in scored and lw not in boosters:
                value = fallback(word[token], lw)
                if value is not None:
                    valued[token] = value
            known[token] = value

    def _replace_emoji(self, text: str) -> str:
        # VADER's single pass: a space before a replacement unless one is there, none after.
        emoji = self._emoji
        out: list[str] = []
        prev_space = True
        for ch in text:
            replacement = emoji.get(ch)
            if replacement is not None:
                out.append(replacement if not prev_space else replacement[1:])
                prev_space = False
            else:
                out.append(ch)
                prev_space = ch == " "
        return "".join(out)

    def _context_rules(self, valence: float, raw: list[str], lower: list[str], i: int) -> float:
        """VADER's rules on the three tokens before the scored word at ``i`` (boosters,
        negations, "never so", "without doubt", idioms) and its "least" rule."""
        lexicon = self._lexicon
        boosters = self._boosters
        negations = self._negations
        infix = self._infix
        never = self._never
        emphasis = self._never_emphasis
        without = self._without
        doubt = self._doubt
        for start in range(3):
            j = i - start - 1
            if j < 0:
                break
            prev = lower[j]
            if prev in lexicon:
                continue
            scalar = boosters.get(prev)
            if scalar is not None:
                if valence < 0:
                    scalar = -scalar
                if raw[j].isupper():
                    n = len(raw)
                    if 0 < n - sum(map(str.isupper, raw)) < n:
                        scalar = scalar + CAPS_BOOST if valence > 0 else scalar - CAPS_BOOST
                if scalar != 0.0:
                    if start == 1:
                        scalar *= 0.95
                    elif start == 2:
                        scalar *= 0.9
                valence += scalar
            else:
                valence += 0.0
            negated = prev in negations or (bool(infix) and infix in prev)
            if start == 0:
                if negated:
                    valence *= NEGATION_SCALAR
            elif start == 1:
                if never and prev == never and lower[i - 1] in emphasis:
                    valence *= 1.25
                elif without and prev == without and lower[i - 1] == doubt:
                    pass
                elif negated:
                    valence *= NEGATION_SCALAR
            else:
                # VADER's condition reads "(never and so/this two back) or so/this one back".
                if never and (
                    (prev == never and lower[i - 2] in emphasis) or lower[i - 1] in emphasis
                ):
                    valence *= 1.25
                elif (
                    without and prev == without and (lower[i - 2] == doubt or lower[i - 1] == doubt)
                ):
                    pass
                elif negated:
                    valence *= NEGATION_SCALAR
                if not self._idiom_words.isdisjoint(lower):
                    valence = self._idioms(valence, lower, i)
        least = self._least
        if least and i > 0 and lower[i - 1] == least:
            if i > 1:
                if lower[i - 2] not in self._least_exempt:
                    valence *= NEGATION_SCALAR
            else:
                valence *= NEGATION_SCALAR
        return valence

    def _idioms(self, valence: float, lower: list[str], i: int) -> float:
        """VADER's special-case idioms around the word at ``i`` (``i >= 3``) and the
        multi-word boosters before it ("kind of")."""
        zero = lower[i]
        one = lower[i - 1]
        two = lower[i - 2]
        three = lower[i - 3]
        first = self._special_first
        if zero in first or one in first or two in first or three in first:
            special2 = self._special2
            special3 = self._special3
            for seq in ((one, zero), (two, one, zero), (two, one), (three, two, one), (three, two)):
                found = special2.get(seq) if len(seq) == 2 else special3.get(seq)
                if found is not None:
                    valence = found
                    break
            n = len(lower)
            if n - 1 > i:
                found = special2.get((zero, lower[i + 1]))
                if found is not None:
                    valence = found
            if n - 1 > i + 1:
                found = special3.get((zero, lower[i + 1], lower[i + 2]))
                if found is not None:
                    valence = found
        first = self._booster_first
        if three in first or two in first:
            for gram in ((three, two, one), (three, two), (two, one)):
                found = self._booster3.get(gram) if len(gram) == 3 else self._booster2.get(gram)
                if found is not None:
                    valence = valence + found
        return valence

    def _contrast_at(self, lower: list[str]) -> int:
        """The place of the first contrastive conjunction, or -1."""
        word = self._contrast_word
        if word:
            return lower.index(word) if word in lower else -1
        contrast = self._contrast
        for k, lw in enumerate(lower):
            if lw in contrast:
                return k
        return -1

    @staticmethod
    def _contrast_check(at: int, places: range | list[int], values: list[float]) -> None:
        """Halve the values before the conjunction at ``at``, add half to those after it.

        VADER locates each value by ``list.index()``, i.e. by its first equal value (so a
        value equal to an earlier one changes that one); that is kept so that the English
        scores stay identical. ``values`` may hold the lexicon words' values only: every
        other token's value is 0, equal to no other value but 0, and stays 0.
        """
        for value in values:
            k = values.index(value)
            place = places[k]
            if place < at:
                values[k] = value * 0.5
            elif place > at:
                values[k] = value * 1.5
