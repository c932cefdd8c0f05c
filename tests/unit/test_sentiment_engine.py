"""The VADER-style engine: with VADER's rules it must give vaderSentiment's compound exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from detector import valence
from detector.english import plain_vader, vader_lexicon
from detector.valence import (
    Fallback,
    ValenceRules,
    ValenceScorer,
    normalise,
    punctuation_amplifier,
)

ANALYZER = SentimentIntensityAnalyzer()
ENGINE = plain_vader()

# Sentences written to exercise each of VADER's rules.
SENTENCES = [
    "",
    "   ",
    "The room was clean.",
    "The room was not clean.",
    "The room was very clean!",
    "The room was VERY clean, honestly",
    "The room was kind of clean",
    "The room was sort of clean, sort of dirty",
    "Not the worst trip, but not great either",
    "I loved the seats but the food was awful",
    "It was the least pleasant stay",
    "At least the staff was friendly",
    "Never so happy to land",
    "Without doubt the best crew",
    "No problem at all",
    "no, no, no",
    "No good or bad news",
    "Terrible!!!! Just terrible???",
    "Is this real??",
    "What?!?!?!",
    "GREAT service, great staff",
    "ALL CAPS EVERYWHERE IS LOUD",
    "The food was the bomb",
    "yeah right, as if that helped",
    "That film is to die for",
    "I can't stand the wait",
    "I don't like it",
    "The service isn't bad",
    "Hardly a good day",
    "I barely made it :( but :) anyway",
    "Love it 😀😀 so much 💔",
    "smiles😀everywhere",
    "The flight was ok I guess",
    "Never again, never ever, this is so bad",
    "Such a kind of lovely mess",
    "but",
    "good but",
    "bad but good but bad",
]


@pytest.mark.parametrize("text", SENTENCES)
def test_engine_equals_vader_on_written_sentences(text: str) -> None:
    assert ENGINE.compound(text) == ANALYZER.polarity_scores(text)["compound"]


_LEXICON_WORDS = sorted(vader_lexicon())[:: max(1, len(vader_lexicon()) // 400)]
_WORDS = st.sampled_from(
    _LEXICON_WORDS
    + [
        "not",
        "no",
        "never",
        "but",
        "very",
        "so",
        "this",
        "least",
        "at",
        "kind",
        "of",
        "without",
        "doubt",
        "the",
        "bomb",
        "isn't",
        "EXTREMELY",
        "GOOD",
        "bad!",
        "ok?",
        ":)",
        ":(",
        "😀",
        "💔",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=14).map(" ".join))
def test_engine_equals_vader_on_generated_word_sequences(text: str) -> None:
    assert ENGINE.compound(text) == ANALYZER.polarity_scores(text)["compound"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_engine_equals_vader_on_any_text(text: str) -> None:
    assert ENGINE.compound(text) == ANALYZER.polarity_scores(text)["compound"]


def test_normalise_and_punctuation() -> None:
    assert normalise(0.0) == 0.0
    assert -1.0 < normalise(-100.0) < -0.99
    assert punctuation_amplifier("wow") == 0.0
    assert punctuation_amplifier("wow!!!!!!") == pytest.approx(4 * 0.292)
    assert punctuation_amplifier("what??") == pytest.approx(2 * 0.18)
    assert punctuation_amplifier("what?????") == pytest.approx(0.96)


def test_rules_drive_the_engine() -> None:
    rules = ValenceRules(
        name="toy",
        lexicon={"gut": 2.0, "schlecht": -2.0},
        boosters={"sehr": 0.293},
        negations=frozenset({"nicht"}),
        contrast=frozenset({"aber"}),
        keep_short_tokens=False,
    )
    toy = ValenceScorer(rules)
    assert toy.compound("gut") > 0
    assert toy.compound("nicht gut") < 0
    assert toy.compound("sehr gut") > toy.compound("gut")
    # After the contrastive word the valence counts 1.5 times, before it half.
    assert toy.compound("schlecht aber gut") > 0
    assert toy.compound("unbekannt") == 0.0


def test_adjuster_sees_tokens_and_changes_valences() -> None:
    seen: list[list[str]] = []

    def zero_all(raw: list[str], words: list[str], lower: list[str], sent: list[float]) -> None:
        seen.append(lower)
        for i in range(len(sent)):
            sent[i] = 0.0

    rules = ValenceRules(
        name="toy", lexicon={"good": 2.0}, boosters={}, negations=frozenset(), adjust=zero_all
    )
    assert ValenceScorer(rules).compound("Good, GOOD!") == 0.0
    assert seen == [["good", "good"]]


_TOY_WORDS = ["gut", "schlecht", "Zugausfall", "zugausfall", "sehr", "nicht", "aber", "so", "x"]
_TOY_LEXICON = {"gut": 2.0, "schlecht": -2.0, ":)": 2.0}


def _toy(lexicon: dict[str, float], fallback: Fallback | None) -> ValenceScorer:
    return ValenceScorer(
        ValenceRules(
            name="toy",
            lexicon=lexicon,
            boosters={"sehr": 0.293},
            negations=frozenset({"nicht"}),
            contrast=frozenset({"aber"}),
            keep_short_tokens=False,
            fallback=fallback,
        )
    )


def _heads(word: str, lower: str) -> float | None:
    return -1.5 if lower == "zugausfall" and word[:1].isupper() else None


def _assert_fallback_scores_like_lexicon(with_fallback: ValenceScorer, text: str) -> None:
    in_lexicon = _toy({**_TOY_LEXICON, "zugausfall": -1.5}, None)
    capitalised = text.replace("zugausfall", "Zugausfall")
    assert with_fallback.valences(capitalised) == in_lexicon.valences(text)
    assert with_fallback.compound(capitalised) == in_lexicon.compound(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_TOY_WORDS + ["!", "?", ":)", "GUT"]), max_size=12).map(" ".join),
    st.integers(min_value=1, max_value=5),
)
def test_a_fallback_scores_like_a_lexicon_entry(text: str, times: int) -> None:
    # The engine finds lexicon words and fallback words on two paths (and long texts on
    # a third); a fallback that knows one word must score like a lexicon holding it.
    _assert_fallback_scores_like_lexicon(_toy(_TOY_LEXICON, _heads), " ".join([text] * times))


def test_a_full_fallback_memory_is_emptied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(valence, "_TOKEN_CACHE_SIZE", 3)
    scorer = _toy(_TOY_LEXICON, _heads)
    for text in ["Zugausfall gut", "a b c d Zugausfall", "Zugausfall e f g h i", "x y"] * 3:
        _assert_fallback_scores_like_lexicon(scorer, text)
        assert len(scorer._fallback_known) <= max(3, len(set(text.split())))


def test_adjuster_sees_every_token_with_zero_for_unscored_ones() -> None:
    seen: list[list[float]] = []

    def record(raw: list[str], words: list[str], lower: list[str], sent: list[float]) -> None:
        assert len(raw) == len(words) == len(lower) == len(sent)
        assert words == ["Good", "day", "x", "bad"]
        seen.append(list(sent))

    rules = ValenceRules(
        name="toy",
        lexicon={"good": 2.0, "bad": -2.0},
        boosters={},
        negations=frozenset(),
        adjust=record,
    )
    ValenceScorer(rules).compound("Good, day x bad!")
    assert seen == [[2.0, 0.0, 0.0, -2.0]]
