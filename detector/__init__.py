"""crisis-radar's detection core: pure, synchronous, typed. No Kafka, Faust or
Prometheus in here, so the same code runs in the stream worker and offline."""

from detector.core import AlertDecision, Outcome, Phase, Position, StepResult, step, tick
from detector.masking import BrandNames
from detector.model import Limits, Mention, Reason, Rejection, parse_mention
from detector.plans import PlannedEvent
from detector.scoring import MentionScorer
from detector.sentiment import ScoredMention, SentimentScorer, VaderScorer, score
from detector.state import BrandState
from detector.thresholds import ThresholdBook, Thresholds
from detector.version import DETECTOR_VERSION

__all__ = [
    "DETECTOR_VERSION",
    "AlertDecision",
    "BrandNames",
    "BrandState",
    "Limits",
    "Mention",
    "MentionScorer",
    "Outcome",
    "Phase",
    "PlannedEvent",
    "Position",
    "Reason",
    "Rejection",
    "ScoredMention",
    "SentimentScorer",
    "StepResult",
    "ThresholdBook",
    "Thresholds",
    "VaderScorer",
    "parse_mention",
    "score",
    "step",
    "tick",
]
