"""Settings: environment variables and the YAML file, validated with messages naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.settings import DEFAULT_CONFIG_FILE, Settings, apply_document, load_settings
from detector.errors import ConfigError
from detector.masking import BrandNames
from detector.model import Author, Engagement, Mention
from detector.sentiment import score


def test_the_shipped_file_loads() -> None:
    settings = load_settings({}, overrides={"config_file": str(DEFAULT_CONFIG_FILE)})
    assert settings.sentiment.fallback_lang == "en"
    assert settings.sentiment.brands == {}
    assert settings.control_topic == "crisis-radar-control"


def test_environment_variables_and_their_errors() -> None:
    settings = load_settings({"CRISIS_RADAR_PARTITIONS": "8", "CRISIS_RADAR_CONTROL_TOPIC": "ctl"})
    assert (settings.partitions, settings.control_topic) == (8, "ctl")
    with pytest.raises(ConfigError, match="CRISIS_RADAR_PARTITIONS='many'"):
        load_settings({"CRISIS_RADAR_PARTITIONS": "many"})
    with pytest.raises(ConfigError, match="distinct"):
        load_settings({"CRISIS_RADAR_CONTROL_TOPIC": "mentions"})


def test_sentiment_section_names_brands() -> None:
    document = {
        "sentiment": {
            "fallback_lang": None,
            "brands": {
                "united-airlines": {"aliases": ["United"], "handles": ["@united"]},
                "acme": {"aliases": ["ACME Corp"]},
            },
        }
    }
    settings = apply_document(Settings(), document, "test.yaml")
    assert settings.sentiment.fallback_lang is None
    assert settings.sentiment.brands["united-airlines"] == BrandNames(("United",), ("@united",))
    assert settings.sentiment.brands["acme"] == BrandNames(("ACME Corp",), ())


def test_the_configured_names_are_masked_before_scoring() -> None:
    document = {"sentiment": {"brands": {"united-airlines": {"aliases": ["United"]}}}}
    scorer = apply_document(Settings(), document, "test.yaml").sentiment.scorer()
    text = "United flight today"
    mention = Mention(
        id="1",
        brand="united-airlines",
        text=text,
        created_at=1.0,
        lang="en",
        author=Author(id=None, followers=0),
        engagement=Engagement(),
    )
    # "United" is a positive lexicon word: unmasked (only the key's spellings, "united
    # airlines" etc., are masked by default) it lifts the text; masked, the text is neutral.
    assert score(mention, scorer).compound == 0.0
    assert score(mention, Settings().sentiment.scorer()).compound > 0.3


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (["en"], "sentiment must be a mapping"),
        ({"languages": ["en"]}, "unknown key"),
        ({"fallback_lang": 3}, "fallback_lang must be a language code"),
        ({"brands": ["acme"]}, "sentiment.brands must be a mapping"),
        ({"brands": {"acme": ["ACME"]}}, "sentiment.brands.acme must be a mapping"),
        ({"brands": {"acme": {"alias": ["ACME"]}}}, "sentiment.brands.acme must be a mapping"),
        ({"brands": {"acme": {"aliases": "ACME"}}}, "aliases must be a list of strings"),
        ({"brands": {"acme": {"handles": [""]}}}, "sentiment.brands.acme: brand handles"),
    ],
)
def test_bad_sentiment_sections_are_refused(section: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_document(Settings(), {"sentiment": section}, "test.yaml")


def test_unknown_sections_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("thresholds: {}\nsentiments: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown section.*sentiments"):
        load_settings({}, overrides={"config_file": str(path)})
