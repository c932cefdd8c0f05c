"""The alert event contract, v1: CloudEvents 1.0 structured JSON.

Two events with the same ``source`` and ``id`` are the same event: a redelivered copy
after a crash is byte-for-byte equal, so consumers drop duplicates by (source, id).
The JSON Schema lives in ``config/alert-v1.schema.json``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from detector.core import AlertDecision

ALERT_SCHEMA_VERSION = "v1"
EVENT_TYPE_PREFIX = "io.crisis-radar.alert"
DEFAULT_SOURCE = "urn:crisis-radar:detector"


def iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")


def event_type(kind: str, phase: str) -> str:
    return f"{EVENT_TYPE_PREFIX}.{kind}.{phase}.{ALERT_SCHEMA_VERSION}"


def to_event(decision: AlertDecision, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """The CloudEvent for one alert decision. Deterministic: it holds no wall-clock time."""
    d = decision
    return {
        "specversion": "1.0",
        "id": d.event_id,
        "source": source,
        "type": event_type(d.kind, d.phase.value),
        "subject": d.brand,
        "time": iso(d.event_time),
        "datacontenttype": "application/json",
        "dataschema": f"urn:crisis-radar:schema:alert:{ALERT_SCHEMA_VERSION}",
        "data": {
            "alert_id": d.alert_id,
            "sequence": d.sequence,
            "brand": d.brand,
            "kind": d.kind,
            "phase": d.phase.value,
            "severity": d.severity,
            "opened_at": iso(d.opened_at),
            "window": {"start": iso(d.bucket_start), "seconds": d.bucket_seconds},
            "observed": dict(d.observed),
            "expected": dict(d.expected),
            "factor": d.factor,
            "statistic": dict(d.statistic),
            "thresholds": dict(d.thresholds),
            "samples": [{**s, "created_at": iso(s["created_at"])} for s in d.samples],
            "top_terms": [dict(term) for term in d.terms],
            "detector_version": d.detector_version,
            **({"planned": _planned(d.planned)} if d.planned is not None else {}),
        },
    }


def _planned(plan: dict[str, Any]) -> dict[str, Any]:
    return {**plan, "start": iso(plan["start"]), "end": iso(plan["end"])}


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")
