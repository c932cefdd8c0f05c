"""Brand masking: the brand's names, other handles and links leave the text before scoring."""

from __future__ import annotations

import pytest

from detector.errors import ConfigError
from detector.masking import BrandMasker, BrandNames, key_spellings, mask_generic

AIRLINE = BrandNames(aliases=("United", "United Airlines"), handles=("@united",))
MASKER = BrandMasker({"united-airlines": AIRLINE, "Acme-Air": BrandNames()})


def words(text: str) -> list[str]:
    return text.split()


def test_key_spellings() -> None:
    assert key_spellings("acme-air") == ("acme air", "acme-air", "acmeair", "acme_air", "acme.air")
    assert key_spellings(" Acme ") == ("acme",)
    assert key_spellings("---") == ()


@pytest.mark.parametrize(
    ("text", "expected", "named"),
    [
        ("@united lost my bag", ["lost", "my", "bag"], True),
        ("@United lost my bag", ["lost", "my", "bag"], True),
        ("United lost my bag", ["lost", "my", "bag"], True),
        ("UNITED AIRLINES lost my bag", ["lost", "my", "bag"], True),
        ("united   airlines lost my bag", ["lost", "my", "bag"], True),
        ("#united lost my bag", ["lost", "my", "bag"], True),
        ("Flying united-airlines today", ["Flying", "today"], True),
        ("Flying unitedairlines today", ["Flying", "today"], True),
        ("United's crew was kind", ["'s", "crew", "was", "kind"], True),
        # Whole words only: other words that contain the name stay.
        ("We are reunited at last", ["We", "are", "reunited", "at", "last"], False),
        ("@unitedfan loves it", ["loves", "it"], False),
    ],
)
def test_brand_names_are_masked(text: str, expected: list[str], named: bool) -> None:
    masked, found = MASKER.mask_named(text, "united-airlines")
    assert words(masked) == expected
    assert found == named


def test_other_handles_and_links_are_masked_but_not_email() -> None:
    text = "@united @someone see https://t.co/abc and www.example.com, mail a@b.com"
    assert words(MASKER.mask(text, "united-airlines")) == ["see", "and", "mail", "a@b.com"]
    assert words(mask_generic("HTTP://X.Y/z @Foo_Bar hi")) == ["hi"]


def test_html_entities_are_decoded() -> None:
    assert MASKER.mask("bags &amp; seats &gt;:(", "united-airlines") == "bags & seats >:("


def test_unconfigured_brand_is_masked_by_its_key() -> None:
    masked, named = MASKER.mask_named("Globex Corp failed again", "globex-corp")
    assert words(masked) == ["failed", "again"]
    assert named
    # A configured key is looked up case-insensitively.
    assert words(MASKER.mask("acme air rocks", "Acme-Air")) == ["rocks"]


def test_no_brand_means_generic_masking_only() -> None:
    masked, named = MASKER.mask_named("United lost my bag @someone", None)
    assert words(masked) == ["United", "lost", "my", "bag"]
    assert not named


def test_pattern_cache_is_bounded() -> None:
    masker = BrandMasker({"acme": BrandNames()}, max_patterns=3)
    for i in range(10):
        masker.mask("text", f"brand-{i}")
    assert len(masker._patterns) <= 4
    assert "acme" in masker._patterns


@pytest.mark.parametrize(
    "names",
    [
        {"aliases": ("",)},
        {"handles": ("@",)},
        {"aliases": "United"},
        {"aliases": ["United"]},
        {"handles": (3,)},
    ],
)
def test_brand_names_are_validated(names: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        BrandNames(**names)  # type: ignore[arg-type]
