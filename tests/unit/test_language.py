"""Language identification: CLD2 with a candidate set and a fallback for short texts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.language import UNDETERMINED, LanguageDetector, normalise_lang

DETECTOR = LanguageDetector(candidates=("en", "de"), fallback="en")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en", "en"),
        ("EN-us", "en"),
        ("de_DE", "de"),
        (" de ", "de"),
        ("und", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_lang(tag: str | None, expected: str | None) -> None:
    assert normalise_lang(tag) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My flight was delayed for three hours and nobody told us anything", "en"),
        ("Der Zug hatte heute wieder eine Stunde Verspätung und keiner hat etwas gesagt", "de"),
        ("Le train avait encore une heure de retard et personne ne nous a rien dit", "fr"),
        ("El tren llegó otra vez con una hora de retraso y nadie nos dijo nada", "es"),
    ],
)
def test_sentences_are_identified(text: str, expected: str) -> None:
    assert DETECTOR.detect(text) == expected


def test_short_text_prefers_candidates_then_fallback() -> None:
    # Too short for CLD2 to be sure: a candidate among its guesses, else the fallback.
    assert DETECTOR.detect("thnx!") in {"en", "de"}
    assert DETECTOR.detect("Lmfao") == "en"
    no_fallback = LanguageDetector(candidates=("en", "de"), fallback=None)
    assert no_fallback.detect("Lmfao") not in {"en", "de", UNDETERMINED}


def test_no_letters_is_undetermined() -> None:
    assert DETECTOR.detect("") == UNDETERMINED
    assert DETECTOR.detect("   ") == UNDETERMINED
    assert DETECTOR.detect("12:30 !!! :) 😀") == UNDETERMINED


def test_characters_cld2_refuses_do_not_raise() -> None:
    text = "My flight was delayed \x00\x07 for three hours and nobody told us \ud83d anything"
    assert DETECTOR.detect(text) == "en"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_detect_never_raises(text: str) -> None:
    assert isinstance(DETECTOR.detect(text), str)
