"""The project's scoring of mentions: masking, language routing, the unscored case, and the
ScoredMention contract (``negative``, wire format)."""

from __future__ import annotations

import pytest

from detector.german import GermanScorer
from detector.masking import BrandNames
from detector.model import Mention
from detector.scoring import LazyScorer, MentionScorer, TextScore
from detector.sentiment import (
    NEGATIVE_COMPOUND,
    ScoredMention,
    VaderScorer,
    from_wire,
    score,
    to_wire,
)

BRANDS = {
    "united-airlines": BrandNames(aliases=("United", "United Airlines"), handles=("@united",)),
    "deutsche-bahn": BrandNames(aliases=("Deutsche Bahn", "Bahn"), handles=("@DB_Bahn",)),
}


@pytest.fixture(scope="module")
def scorer() -> MentionScorer:
    return MentionScorer(BRANDS)


def mention(text: str, brand: str = "united-airlines", lang: str | None = None) -> Mention:
    return Mention(id="m-1", brand=brand, text=text, created_at=1_700_000_000.0, lang=lang)


def test_the_brand_name_is_not_scored(scorer: MentionScorer) -> None:
    # VADER reads "United" as +1.8; masked, a neutral notice stays neutral.
    assert VaderScorer().compound("United flight 12 boarding at gate 4") > 0.05
    result = scorer.score_text("United flight 12 boarding at gate 4", "united-airlines")
    assert result == TextScore(compound=0.0, lang="en", scored=True, named=True)


def test_politeness_does_not_turn_a_complaint_positive(scorer: MentionScorer) -> None:
    for text in (
        "@united thanks for nothing",
        "@united please help, my bag is lost",
        "@united thank you so much for the two hour delay",
    ):
        assert scorer.score_text(text, "united-airlines").compound <= NEGATIVE_COMPOUND, text
    assert scorer.score_text("@united great crew, thank you!", "united-airlines").compound > 0.05


def test_german_is_scored_as_german(scorer: MentionScorer) -> None:
    calm = scorer.score_text("Die Bahn fährt heute nach Plan und die Fahrgäste steigen ein.")
    assert calm.lang == "de"
    assert calm.scored
    assert abs(calm.compound) < 0.05
    angry = scorer.score_text(
        "@DB_Bahn schon wieder Zugausfall, die Klimaanlage ist kaputt!", "deutsche-bahn"
    )
    assert angry.lang == "de"
    assert angry.compound <= NEGATIVE_COMPOUND
    assert (
        scorer.score_text("Danke, der Zug war pünktlich und sauber", "deutsche-bahn").compound
        > 0.05
    )


def test_a_language_without_scorer_is_unscored(scorer: MentionScorer) -> None:
    text = "Le train est encore en retard, c'est vraiment insupportable aujourd'hui"
    scored = scorer.score_mention(mention(text, "deutsche-bahn"))
    assert scored.lang == "fr"
    assert not scored.scored
    assert scored.compound == 0.0
    assert not scored.negative


def test_the_mention_lang_wins_over_detection(scorer: MentionScorer) -> None:
    text = "My flight was delayed for three hours, awful"
    assert scorer.score_mention(mention(text, lang="en-US")).lang == "en"
    forced = scorer.score_mention(mention(text, lang="fr"))
    assert (forced.lang, forced.scored) == ("fr", False)
    # "und" means the sender did not know: detect.
    assert scorer.score_mention(mention(text, lang="und")).lang == "en"


def test_text_without_letters_is_scored_by_the_fallback(scorer: MentionScorer) -> None:
    result = scorer.score_text(":( :(", "united-airlines")
    assert result.lang == "und"
    assert result.scored
    assert result.compound < 0
    strict = MentionScorer(BRANDS, fallback_lang=None)
    assert not strict.score_text(":( :(").scored


def test_long_texts_are_read_where_they_name_the_brand(scorer: MentionScorer) -> None:
    filler = "The weather in the valley was wonderful and the hiking was great fun. " * 4
    text = filler + "Then United cancelled our flight home."
    assert len(text) > scorer.message_chars
    assert scorer.score_text(text, "united-airlines").compound <= NEGATIVE_COMPOUND
    # Without the brand sentence the same text is positive.
    assert scorer.score_text(filler, "united-airlines").compound > 0.05


def test_custom_scorers_and_compound_interface() -> None:
    class Constant:
        name = "constant"

        def compound(self, text: str) -> float:
            return -0.5

    only_english = MentionScorer(scorers={"en": Constant()})
    assert only_english.languages == frozenset({"en"})
    assert only_english.compound("This is a plain English sentence about flights") == -0.5
    assert only_english.score_text("Das ist ein deutscher Satz über die Bahn heute").scored is False


def test_score_dispatches_to_mention_scorers(scorer: MentionScorer) -> None:
    m = mention("Le train est encore en retard, c'est vraiment insupportable", "deutsche-bahn")
    assert score(m, scorer) == scorer.score_mention(m)
    plain = score(mention("awful, just awful"), VaderScorer())
    assert (plain.lang, plain.scored) == (None, True)
    assert plain.negative


def test_negative_needs_a_score() -> None:
    m = mention("x")
    assert ScoredMention(mention=m, compound=-0.9).negative
    assert not ScoredMention(mention=m, compound=-0.9, scored=False).negative
    assert not ScoredMention(mention=m, compound=0.0).negative


def test_wire_round_trip_keeps_language_and_scored() -> None:
    m = mention("Le train est en retard", "deutsche-bahn")
    for scored in (
        ScoredMention(mention=m, compound=0.0, lang="fr", scored=False),
        ScoredMention(mention=m, compound=-0.4, lang="de", scored=True),
        ScoredMention(mention=m, compound=0.3),
    ):
        assert from_wire(to_wire(scored)) == scored


def test_old_wire_records_decode_as_scored() -> None:
    record = to_wire(ScoredMention(mention=mention("fine"), compound=-0.3))
    del record["scored"]
    del record["sentiment_lang"]
    decoded = from_wire(record)
    assert decoded.scored
    assert decoded.lang is None
    assert decoded.negative


def test_wire_rejects_a_non_boolean_scored() -> None:
    record = to_wire(ScoredMention(mention=mention("fine"), compound=-0.3))
    record["scored"] = "no"
    with pytest.raises(TypeError):
        from_wire(record)


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("followers", True, TypeError),
        ("created_at", "2025-01-01T00:00:00Z", TypeError),
        ("compound", None, TypeError),
        ("likes", [1], TypeError),
        ("created_at", None, TypeError),
        ("followers", "NaN", TypeError),
        ("id", None, None),
    ],
)
def test_wire_rejects_damaged_fields(key: str, value: object, error: type | None) -> None:
    record = to_wire(ScoredMention(mention=mention("fine"), compound=-0.3))
    record[key] = value
    if error is None:  # a missing id is a KeyError
        del record[key]
        error = KeyError
    with pytest.raises(error):
        from_wire(record)
    # Numbers may be integers or floats, as JSON has them.
    record = to_wire(ScoredMention(mention=mention("fine"), compound=-0.3))
    record["followers"], record["created_at"] = 12.0, 1_700_000_000
    decoded = from_wire(record)
    assert decoded.mention.author.followers == 12 and decoded.mention.created_at == 1.7e9


class CountingScorer:
    """A scorer that counts the texts it is asked about."""

    name = "counting"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def compound(self, text: str) -> float:
        self.texts.append(text)
        return -0.5 if "awful" in text else 0.5


def test_each_distinct_text_brand_and_language_is_scored_once() -> None:
    counting = CountingScorer()
    scorer = MentionScorer(BRANDS, scorers={"en": counting})
    text = "United lost my bag, awful"
    first = scorer.score_mention(mention(text))
    assert scorer.score_mention(mention(text)) == first  # a repost: not scored again
    assert len(counting.texts) == 1
    # The score depends on the brand (what is masked) and the language: not shared.
    scorer.score_mention(mention(text, brand="deutsche-bahn"))
    scorer.score_mention(mention(text, lang="de"))  # no German scorer here: unscored
    scorer.score_mention(mention(text, lang="en"))
    assert len(counting.texts) == 3
    # A long text is scored every time (the cache keeps only texts up to CACHED_CHARS).
    long_text = "United was awful. " * 100
    scorer.score_mention(mention(long_text))
    scorer.score_mention(mention(long_text))
    assert len(counting.texts) == 5


def test_the_german_scorer_is_made_with_the_first_german_text() -> None:
    scorer = MentionScorer()
    german = scorer.scorers["de"]
    assert isinstance(german, LazyScorer) and not german.made
    scorer.score_text("The doors broke again, terrible service", "acme", "en")
    assert not german.made  # English texts leave it unmade
    text = "Die Türen von @acme sind schon wieder kaputt, furchtbar"
    lazy = scorer.score_text(text, "acme", "de")
    assert german.made
    made = german.scorer()
    assert isinstance(made, GermanScorer) and german.scorer() is made
    # Through the stand-in as without it, in both registers.
    direct = MentionScorer(scorers={"en": scorer.scorers["en"], "de": GermanScorer()})
    assert lazy == direct.score_text(text, "acme", "de")
    assert lazy.named and lazy.compound < -0.05
    plain = "Die Türen sind schon wieder kaputt, furchtbar"
    assert scorer.score_text(plain, "acme", "de") == direct.score_text(plain, "acme", "de")
