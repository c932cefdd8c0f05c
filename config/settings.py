"""Typed settings: environment variables for the runtime, a YAML file for detection.

Precedence: built-in defaults < YAML file < environment < command-line flags. Every
value is validated at start-up; a bad one stops the program with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from detector.errors import ConfigError
from detector.masking import BrandNames
from detector.model import Limits, normalise_brand
from detector.thresholds import ThresholdBook, Thresholds, updated

if TYPE_CHECKING:
    from detector.scoring import MentionScorer

ENV_PREFIX = "CRISIS_RADAR_"
DEFAULT_CONFIG_FILE = Path(__file__).with_name("crisis-radar.yaml")


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    # Brands that get their own metric label; others are folded into "other".
    brands: frozenset[str] = frozenset()
    # When ``brands`` is empty, the first N brands seen get their own label.
    max_brand_labels: int = 50

    def __post_init__(self) -> None:
        if not 0 <= self.max_brand_labels <= 10_000:
            raise ConfigError("metrics.max_brand_labels must be in [0, 10000]")


@dataclass(frozen=True, slots=True)
class SentimentSettings:
    # Language scoring texts too short to identify (null: leave them unscored).
    fallback_lang: str | None = "en"
    # How each brand is named in texts (masked before scoring); a brand not listed is
    # masked by the spellings of its key.
    brands: Mapping[str, BrandNames] = field(default_factory=dict)

    def scorer(self) -> MentionScorer:
        """The worker's scorer: mask the brand, identify the language, score it."""
        from detector.scoring import MentionScorer

        return MentionScorer(self.brands, fallback_lang=self.fallback_lang)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker, the simulator and the CLI need, validated."""

    brokers: str = "127.0.0.1:9092"
    app_id: str = "crisis-radar"
    mentions_topic: str = "mentions"
    alerts_topic: str = "crisis-alerts"
    dead_letter_topic: str = "mentions-dead-letter"
    control_topic: str = "crisis-radar-control"  # live thresholds and planned events
    scored_topic: str = ""  # empty: "<app_id>-scored-mentions"
    partitions: int = 4
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: str = ".crisis-radar-data"
    store: str = "memory://"
    rebalance_timeout: float = 60.0
    session_timeout: float = 60.0
    producer_max_batch_size: int = 0  # 0: Faust's default
    # Ingest and the detect agent handle up to this many records at a time (the detect
    # agent waits at most batch_seconds to fill a batch); each waits for the broker once
    # per batch, and the detect agent writes each brand's state once per batch.
    batch_size: int = 500
    batch_seconds: float = 0.05
    # The detect agent writes the brand states it changed at most this often (and when
    # 1000 of them have changed); a batch's offsets are committed once they are written.
    # 0: after every batch, which holds a worker on the embedded broker to about 3,000
    # mentions/s (docs/performance.md).
    checkpoint_seconds: float = 1.0
    # How long a fetch may wait on the broker for records (both consumers). The embedded
    # broker answers a fetch of several partitions only when this time is up, even when
    # records arrived meanwhile, so it bounds the latency of every hop between topics.
    fetch_max_wait: float = 0.1
    alert_source: str = "urn:crisis-radar:detector"
    log_level: str = "info"
    config_file: str = str(DEFAULT_CONFIG_FILE)
    thresholds: ThresholdBook = field(default_factory=ThresholdBook)
    limits: Limits = field(default_factory=Limits)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    sentiment: SentimentSettings = field(default_factory=SentimentSettings)

    def __post_init__(self) -> None:
        if not self.scored_topic:
            object.__setattr__(self, "scored_topic", f"{self.app_id}-scored-mentions")
        problems = []
        if not self.brokers.strip():
            problems.append("brokers must not be empty")
        for host_port in self.broker_list:
            host, _, port = host_port.rpartition(":")
            if not host or not port.isdigit():
                problems.append(f"broker {host_port!r} is not HOST:PORT")
        if not 1 <= self.partitions <= 1024:
            problems.append("partitions must be in [1, 1024]")
        if not 0 <= self.web_port <= 65535:
            problems.append("web_port must be in [0, 65535]")
        if self.rebalance_timeout <= 0 or self.session_timeout <= 0:
            problems.append("rebalance_timeout and session_timeout must be > 0")
        if self.producer_max_batch_size < 0:
            problems.append("producer_max_batch_size must be >= 0")
        if not 1 <= self.batch_size <= 100_000:
            problems.append("batch_size must be in [1, 100000]")
        if not 0 < self.batch_seconds <= 10:
            problems.append("batch_seconds must be in (0, 10]")
        if not 0 <= self.checkpoint_seconds <= 60:
            problems.append("checkpoint_seconds must be in [0, 60]")
        if not 0 < self.fetch_max_wait <= 10:
            problems.append("fetch_max_wait must be in (0, 10]")
        if self.log_level.lower() not in {"debug", "info", "warning", "error", "critical"}:
            problems.append(f"log_level {self.log_level!r} is not a logging level")
        topics = [
            self.mentions_topic,
            self.alerts_topic,
            self.dead_letter_topic,
            self.scored_topic,
            self.control_topic,
        ]
        if len(set(topics)) != len(topics) or not all(t.strip() for t in topics):
            problems.append("topic names must be distinct and non-empty")
        if problems:
            raise ConfigError("invalid settings: " + "; ".join(problems))

    @property
    def broker_list(self) -> list[str]:
        return [b.strip() for b in self.brokers.split(",") if b.strip()]

    @property
    def ingest_group(self) -> str:
        """The consumer group that reads the mention topic (``streams.mentions``); the
        Faust app's own group, ``app_id``, reads the scored topic."""
        return f"{self.app_id}-ingest"

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{b}" for b in self.broker_list)


def _as_int(text: str) -> int:
    return int(text)


def _as_float(text: str) -> float:
    return float(text)


# Runtime settings read from the environment: CRISIS_RADAR_<NAME>.
_ENV_PARSERS: dict[str, Callable[[str], Any]] = {
    "brokers": str,
    "app_id": str,
    "mentions_topic": str,
    "alerts_topic": str,
    "dead_letter_topic": str,
    "control_topic": str,
    "scored_topic": str,
    "partitions": _as_int,
    "web_host": str,
    "web_port": _as_int,
    "data_dir": str,
    "store": str,
    "rebalance_timeout": _as_float,
    "session_timeout": _as_float,
    "producer_max_batch_size": _as_int,
    "batch_size": _as_int,
    "batch_seconds": _as_float,
    "fetch_max_wait": _as_float,
    "checkpoint_seconds": _as_float,
    "alert_source": str,
    "log_level": str,
    "config_file": str,
}


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Settings from the environment (and ``overrides``, e.g. command-line flags), with
    detection settings from the YAML file they name (the shipped default otherwise)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, parse in _ENV_PARSERS.items():
        raw = environ.get(env_name(name))
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError:
            raise ConfigError(f"{env_name(name)}={raw!r} is not a valid {name}") from None
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = set(values) - set(_ENV_PARSERS)
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    settings = Settings(**values)
    return apply_file(settings, Path(settings.config_file))


def apply_file(settings: Settings, path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    return apply_document(settings, document or {}, str(path))


def apply_document(settings: Settings, document: Any, where: str) -> Settings:
    if not isinstance(document, dict):
        raise ConfigError(f"{where}: the top level must be a mapping")
    sections = {"thresholds", "validation", "metrics", "sentiment"}
    unknown = set(document) - sections
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {', '.join(sorted(map(str, unknown)))} "
            f"(known: {', '.join(sorted(sections))})"
        )
    return replace(
        settings,
        thresholds=_threshold_book(document.get("thresholds") or {}, where),
        limits=_limits(document.get("validation") or {}, where),
        metrics=_metrics(document.get("metrics") or {}, where),
        sentiment=_sentiment(document.get("sentiment") or {}, where),
    )


def _check_section(section: Any, name: str, known: set[str], where: str) -> None:
    """A YAML section must be a mapping holding only ``known`` keys."""
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: {name} must be a mapping")
    unknown = set(section) - known
    if unknown:
        raise ConfigError(
            f"{where}: {name} has unknown key(s) {', '.join(sorted(map(str, unknown)))} "
            f"(known: {', '.join(sorted(known))})"
        )


def _sentiment(section: Any, where: str) -> SentimentSettings:
    _check_section(section, "sentiment", {"fallback_lang", "brands"}, where)
    fallback = section.get("fallback_lang", "en")
    if fallback is not None and (not isinstance(fallback, str) or not fallback.strip()):
        raise ConfigError(f"{where}: sentiment.fallback_lang must be a language code or null")
    brands_section = section.get("brands") or {}
    if not isinstance(brands_section, dict):
        raise ConfigError(f"{where}: sentiment.brands must be a mapping of brand to names")
    brands: dict[str, BrandNames] = {}
    for brand, names in brands_section.items():
        here = f"{where}: sentiment.brands.{brand}"
        if not isinstance(names, dict) or set(names) - {"aliases", "handles"}:
            raise ConfigError(f"{here} must be a mapping with aliases and/or handles")
        lists = {key: names.get(key) or [] for key in ("aliases", "handles")}
        for key, values in lists.items():
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ConfigError(f"{here}.{key} must be a list of strings")
        try:
            brands[normalise_brand(str(brand))] = BrandNames(
                aliases=tuple(lists["aliases"]), handles=tuple(lists["handles"])
            )
        except ConfigError as exc:
            raise ConfigError(f"{here}: {exc}") from None
    return SentimentSettings(fallback_lang=fallback, brands=brands)


def _threshold_book(section: Any, where: str) -> ThresholdBook:
    _check_section(section, "thresholds", {"defaults", "brands"}, where)
    defaults = Thresholds.from_mapping(
        section.get("defaults") or {}, where=f"{where}: thresholds.defaults"
    )
    brands_section = section.get("brands") or {}
    if not isinstance(brands_section, dict):
        raise ConfigError(f"{where}: thresholds.brands must be a mapping of brand to thresholds")
    brands = {
        normalise_brand(str(brand)): Thresholds.from_mapping(
            overrides or {}, base=defaults, where=f"{where}: thresholds.brands.{brand}"
        )
        for brand, overrides in brands_section.items()
    }
    return ThresholdBook(defaults=defaults, brands=brands)


def _limits(section: Any, where: str) -> Limits:
    limits = updated(Limits(), section, f"{where}: validation")
    brands = frozenset(normalise_brand(b) for b in limits.allowed_brands)
    return replace(limits, allowed_brands=brands)


def _metrics(section: Any, where: str) -> MetricsSettings:
    metrics = updated(MetricsSettings(), section, f"{where}: metrics")
    return replace(metrics, brands=frozenset(normalise_brand(b) for b in metrics.brands))


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, type) of every runtime setting, for --help."""
    defaults = Settings()
    return [
        (
            env_name(f.name),
            str(getattr(defaults, f.name)),
            f.type if isinstance(f.type, str) else "",
        )
        for f in fields(Settings)
        if f.name in _ENV_PARSERS
    ]
