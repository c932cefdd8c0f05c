"""The German scorer and the brand-register rules, on sentences written for these tests."""

from __future__ import annotations

import pytest

from detector.english import EnglishScorer
from detector.german import (
    NEUTRAL_WORDS,
    CompoundHeads,
    GermanScorer,
    expand_forms,
    german_tables,
)

POS = 0.05
NEG = -0.05


@pytest.fixture(scope="module")
def german() -> GermanScorer:
    return GermanScorer()


@pytest.fixture(scope="module")
def english() -> EnglishScorer:
    return EnglishScorer()


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("Das ist gut.", 1),
        ("Das ist nicht gut.", -1),
        ("Das ist schlecht.", -1),
        ("Das ist nicht schlecht.", 1),
        ("Das gefällt mir.", 1),
        ("Das gefällt mir nicht.", -1),
        ("Die kaputten Türen nerven", -1),
        ("Der Zugausfall heute", -1),
        ("Die verspätete Bahn", -1),
        ("Der Service war suuuper", 1),
        ("Das Personal war freundlich und hilfsbereit", 1),
        ("Leider wieder zu spät", -1),
        ("Die Bahn fährt heute nach Plan und die Fahrgäste steigen ein.", 0),
        ("Der Zug hält in Köln, Bonn und Koblenz.", 0),
        ("Alles bestens :)", 1),
        ("Heute wieder 😢", -1),
    ],
)
def test_german_polarity(german: GermanScorer, text: str, sign: int) -> None:
    compound = german.compound(text)
    if sign > 0:
        assert compound >= POS, compound
    elif sign < 0:
        assert compound <= NEG, compound
    else:
        assert NEG < compound < POS, compound


def test_boosters_and_capitals_strengthen(german: GermanScorer) -> None:
    assert german.compound("Das ist sehr gut") > german.compound("Das ist gut")
    assert german.compound("Das ist GUT, ehrlich") > german.compound("Das ist gut, ehrlich")
    assert german.compound("Das ist etwas gut") < german.compound("Das ist gut")


def test_the_english_article_die_is_not_negative(german: GermanScorer) -> None:
    assert german.compound("die die die die") == 0.0


def test_forms_are_derived_from_base_words() -> None:
    forms, heads = expand_forms(
        [("schlecht", "JJ", -1.0), ("Ausfall", "NN", -1.0), ("enttäuschen", "VB", -1.0)]
    )
    for form in ("schlechte", "schlechten", "schlechter", "schlechteste", "ausfalls"):
        assert form in forms, form
    for form in ("enttäuscht", "enttäuschte", "enttäuschten", "enttäuschend"):
        assert form in forms, form
    assert "ausfall" in heads
    assert "enttäusche" not in forms  # first person forms are left out


def test_neutral_words_are_out_of_the_lexicon() -> None:
    forms, heads, _emoji = german_tables()
    assert not NEUTRAL_WORDS & forms.keys()
    assert not NEUTRAL_WORDS & heads.keys()


def test_compound_heads() -> None:
    heads = CompoundHeads({"ausfall": -1.8}, cache_size=2)
    assert heads("Zugausfall", "zugausfall") == -1.8
    assert heads("Zugfahrt", "zugfahrt") is None
    assert heads("zugausfall", "zugausfall") is None  # only capitalised words (nouns)
    assert heads("Ausfall", "ausfall") is None  # too short to be a compound
    for word in ("Zugausfallx", "Busausfall", "Bahnausfall"):
        heads(word, word.lower())
    assert len(heads._cache) <= 2


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("Liebe Bahn, danke für nichts.", -1),
        ("Bitte helfen Sie mir, mein Zug ist ausgefallen", -1),
        ("Guten Morgen, fährt der ICE heute?", 0),
        ("Danke, alles pünktlich heute!", 1),
        ("Tolles Team, aber die Verspätung nervt", -1),
        ("Gibt es einen guten Anschluss nach Köln?", 0),
    ],
)
def test_german_brand_register(german: GermanScorer, text: str, sign: int) -> None:
    compound = german.brand_compound(text)
    if sign > 0:
        assert compound >= POS, compound
    elif sign < 0:
        assert compound <= NEG, compound
    else:
        assert NEG < compound < POS, compound


@pytest.mark.parametrize(
    ("text", "general", "brand"),
    [
        ("thanks for nothing", 1, -1),
        ("please help, my bag is lost", 1, -1),
        ("can you find me a good seat?", 1, 0),
        ("Yes, my flight is tomorrow", 1, 0),
        ("It looks like rain in Denver", 1, 0),
        ("I like the new seats", 1, 1),
        ("love the crew but the delay was awful", -1, -1),
        ("great crew, thank you!", 1, 1),
        ("the wifi is broken again. great job guys", 1, -1),
    ],
)
def test_english_brand_register(
    english: EnglishScorer, text: str, general: int, brand: int
) -> None:
    for compound, sign in (
        (english.compound(text), general),
        (english.brand_compound(text), brand),
    ):
        if sign > 0:
            assert compound >= POS, (text, compound)
        elif sign < 0:
            assert compound <= NEG, (text, compound)
        else:
            assert NEG < compound < POS, (text, compound)
