"""``crisis-radar report``: a self-contained HTML incident report for one alert episode.

The episode's lifecycle events come from an alert file (a backtest's output, or the
``--alerts-file`` of ``crisis-radar up``) or from the alert topic. With the mentions of the
period (JSONL, the input contract), volume and negative share are recomputed per bucket
with the detector's own parsing and scoring; expected values always come from the alert
events (what the detector expected when it decided). Every text taken from the data
(brands, mention texts, terms) is HTML-escaped: mention texts are untrusted.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import SentimentSettings
from detector.errors import ConfigError
from detector.model import Mention, parse_mention
from detector.sentiment import NEGATIVE_COMPOUND, SentimentScorer, score
from detector.terms import count_terms

# Buckets shown before the onset and after the resolution (or the last event).
CONTEXT_BEFORE_BUCKETS = 30
CONTEXT_AFTER_BUCKETS = 15
MAX_SAMPLES = 10
MAX_TERMS = 10


class ReportError(ConfigError):
    """The report cannot be made (unknown alert id, unreadable input): a user error."""


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# --- reading alert events -------------------------------------------------------------------


def read_alert_file(path: Path) -> list[dict[str, Any]]:
    """Alert events from a JSONL file; blank and unreadable lines are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ReportError(f"cannot read alerts {path}: {exc.strerror}") from None
    events = []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and isinstance(event.get("data"), dict):
            events.append(event)
    return events


def read_alert_topic(brokers: list[str], topic: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every alert event on ``topic``, read from the beginning to the current end (no
    consumer group, nothing committed)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False, group_id=None)
    events: list[dict[str, Any]] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise ReportError(f"topic {topic!r} not found on {','.join(brokers)}")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            consumer.position(tp) < end[tp] for tp in assigned
        ):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    try:
                        event = json.loads(record.value)
                    except (TypeError, ValueError):
                        continue
                    if isinstance(event, dict) and isinstance(event.get("data"), dict):
                        events.append(event)
    finally:
        consumer.close()
    return events


def episode_events(events: Iterable[dict[str, Any]], alert_id: str) -> list[dict[str, Any]]:
    """The lifecycle events of one episode, deduplicated by (source, id), in sequence order.
    ``alert_id`` may be a unique prefix (``crisis-radar up`` prints the first 8 characters)."""
    by_alert: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for event in events:
        aid = str(event["data"].get("alert_id", ""))
        key = (str(event.get("source", "")), str(event.get("id", "")))
        by_alert.setdefault(aid, {}).setdefault(key, event)
    matches = [aid for aid in by_alert if aid == alert_id] or [
        aid for aid in by_alert if alert_id and aid.startswith(alert_id)
    ]
    if not matches:
        known = ", ".join(sorted(by_alert)[:5]) or "none"
        raise ReportError(
            f"alert {alert_id!r} not found among {len(by_alert)} alert episodes (e.g. {known})"
        )
    if len(matches) > 1:
        raise ReportError(f"alert id prefix {alert_id!r} is ambiguous: {', '.join(matches)}")
    chosen = by_alert[matches[0]].values()
    return sorted(chosen, key=lambda e: (int(e["data"].get("sequence", 0)), e.get("id", "")))


# --- the episode ------------------------------------------------------------------------------


@dataclass
class Bucket:
    start: float
    count: int = 0
    negative: int = 0

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.count if self.count else None


@dataclass
class Episode:
    alert_id: str
    brand: str
    kind: str
    events: list[dict[str, Any]]
    bucket_seconds: int
    onset: float
    detection: float
    resolution: float | None
    escalations: list[tuple[float, str]]
    thresholds: dict[str, Any]
    buckets: list[Bucket] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    terms: list[tuple[str, int]] = field(default_factory=list)

    @property
    def time_to_detect(self) -> float:
        return self.detection - self.onset

    def peak(self) -> tuple[float, float]:
        """(time, mentions per bucket) of the peak: the busiest recomputed bucket from the
        onset on, or else the event with the largest observed count per bucket."""
        end = self.resolution if self.resolution is not None else math.inf
        inside = [b for b in self.buckets if self.onset <= b.start <= end]
        if inside:
            top = max(inside, key=lambda b: b.count)
            return top.start, float(top.count)
        top_event = max(self.events, key=_per_bucket_observed)
        return _parse_time(top_event["time"]), _per_bucket_observed(top_event)


def _window_buckets(event: dict[str, Any]) -> float:
    return float(event["data"].get("observed", {}).get("window_buckets", 1) or 1)


def _per_bucket_observed(event: dict[str, Any]) -> float:
    return float(event["data"].get("observed", {}).get("count", 0.0)) / _window_buckets(event)


def _per_bucket_expected(event: dict[str, Any]) -> float:
    return float(event["data"].get("expected", {}).get("count", 0.0)) / _window_buckets(event)


def build_episode(
    events: list[dict[str, Any]],
    mentions: Path | None = None,
    scorer: SentimentScorer | None = None,
) -> Episode:
    first = events[0]["data"]
    opened = next((e for e in events if e["data"].get("phase") == "opened"), events[0])
    resolved = next((e for e in events if e["data"].get("phase") == "resolved"), None)
    episode = Episode(
        alert_id=str(first["alert_id"]),
        brand=str(first["brand"]),
        kind=str(first["kind"]),
        events=events,
        bucket_seconds=int(first.get("window", {}).get("seconds", 60) or 60),
        onset=_parse_time(first["opened_at"]),
        detection=_parse_time(opened["time"]),
        resolution=None if resolved is None else _parse_time(resolved["time"]),
        escalations=[
            (_parse_time(e["time"]), str(e["data"].get("severity", "")))
            for e in events
            if e["data"].get("phase") == "escalated"
        ],
        thresholds=dict(opened["data"].get("thresholds", {})),
    )
    samples: dict[str, dict[str, Any]] = {}
    terms: Counter[str] = Counter()
    for event in events:
        for sample in event["data"].get("samples", []):
            samples.setdefault(str(sample.get("id")), sample)
        for term in event["data"].get("top_terms", []):
            terms[str(term.get("term"))] = max(terms[str(term.get("term"))], int(term["count"]))
    if mentions is not None:
        _recompute(episode, mentions, scorer or SentimentSettings().scorer(), samples, terms)
    episode.samples = sorted(
        samples.values(),
        key=lambda s: (
            float(s.get("compound", 0.0)) > NEGATIVE_COMPOUND,
            -int(s.get("reposts", 0)),
        ),
    )[:MAX_SAMPLES]
    episode.terms = terms.most_common(MAX_TERMS)
    return episode


def _recompute(
    episode: Episode,
    path: Path,
    scorer: SentimentScorer,
    samples: dict[str, dict[str, Any]],
    terms: Counter[str],
) -> None:
    """Per-bucket counts and negative shares of the brand around the episode, from the
    mentions file, with the detector's parsing and scoring."""
    width = episode.bucket_seconds
    last = max(_parse_time(e["time"]) for e in episode.events)
    end_of_episode = episode.resolution if episode.resolution is not None else last
    lo = (episode.onset // width - CONTEXT_BEFORE_BUCKETS) * width
    hi = (end_of_episode // width + CONTEXT_AFTER_BUCKETS + 1) * width
    buckets: dict[int, Bucket] = {}
    found: list[tuple[Mention, float]] = []
    try:
        source = path.open("rb")
    except OSError as exc:
        raise ReportError(f"cannot read mentions {path}: {exc.strerror}") from None
    with source:
        for line in source:
            if not line.strip():
                continue
            mention = parse_mention(line.rstrip(b"\r\n"), now=math.inf)
            if not isinstance(mention, Mention) or mention.brand != episode.brand:
                continue
            if not lo <= mention.created_at < hi:
                continue
            scored = score(mention, scorer)
            compound = scored.compound
            index = int(mention.created_at // width)
            bucket = buckets.setdefault(index, Bucket(start=index * width))
            bucket.count += 1
            if scored.negative:
                bucket.negative += 1
            if episode.onset <= mention.created_at <= end_of_episode:
                found.append((mention, compound))
    if not buckets:
        return
    first, final = min(buckets), max(buckets)
    episode.buckets = [buckets.get(i, Bucket(start=i * width)) for i in range(first, final + 1)]
    negatives = [(m, c) for m, c in found if c <= NEGATIVE_COMPOUND]
    counted: dict[str, int] = {}
    for mention, _ in negatives:
        count_terms(counted, mention.text, episode.brand)
    for term, count in counted.items():
        terms[term] = max(terms[term], count)
    ranked = sorted(negatives or found, key=lambda mc: (-mc[0].engagement.reposts, mc[0].id))
    for mention, compound in ranked[:MAX_SAMPLES]:
        samples.setdefault(
            mention.id,
            {
                "id": mention.id,
                "text": mention.text,
                "created_at": _iso(mention.created_at),
                "compound": compound,
                "reposts": mention.engagement.reposts,
                "followers": mention.author.followers,
                "repost_of": mention.repost_of,
            },
        )


# --- rendering -------------------------------------------------------------------------------


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _expected_at(episode: Episode, moment: float) -> dict[str, Any] | None:
    """The alert event in force at ``moment``: the latest one not after it, or the first
    one for the buckets before the episode (its expectation was formed before the onset)."""
    chosen = episode.events[0] if episode.events else None
    for event in episode.events:
        if _parse_time(event["time"]) <= moment + episode.bucket_seconds:
            chosen = event
    return chosen


def chart_html(episode: Episode) -> str:
    """The chart as an HTML fragment with plotly.js inlined (no network needed). Only
    numbers and fixed labels go into the figure, never text from the data."""
    from plotly.subplots import make_subplots

    t = episode.thresholds
    factor = float(t.get("virality_factor", 3.0))
    min_share = float(t.get("negativity_min_share", 0.4))
    min_delta = float(t.get("negativity_min_delta", 0.15))
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("mentions per bucket", "negative share"),
    )
    if episode.buckets:
        xs = [_dt(b.start) for b in episode.buckets]
        refs = [_expected_at(episode, b.start) for b in episode.buckets]
        fig.add_bar(x=xs, y=[b.count for b in episode.buckets], name="observed", row=1, col=1)
        fig.add_scatter(
            x=xs,
            y=[b.negative_share for b in episode.buckets],
            name="observed negative share",
            mode="lines+markers",
            row=2,
            col=1,
        )
    else:
        xs = [_dt(_parse_time(e["time"])) for e in episode.events]
        refs = list(episode.events)
        fig.add_scatter(
            x=xs,
            y=[_per_bucket_observed(e) for e in episode.events],
            name="observed (alert events)",
            mode="markers+lines",
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=xs,
            y=[e["data"].get("observed", {}).get("negative_share") for e in episode.events],
            name="observed negative share (alert events)",
            mode="markers+lines",
            row=2,
            col=1,
        )
    expected = [None if r is None else _per_bucket_expected(r) for r in refs]
    shares = [
        None if r is None else r["data"].get("expected", {}).get("negative_share") for r in refs
    ]
    fig.add_scatter(
        x=xs, y=expected, name="expected (baseline)", line={"shape": "hv"}, row=1, col=1
    )
    fig.add_scatter(
        x=xs,
        y=[None if e is None else factor * e for e in expected],
        name=f"virality threshold (x{factor:g})",
        line={"shape": "hv", "dash": "dash"},
        row=1,
        col=1,
    )
    fig.add_scatter(
        x=xs, y=shares, name="baseline negative share", line={"shape": "hv"}, row=2, col=1
    )
    fig.add_scatter(
        x=xs,
        y=[None if s is None else max(min_share, s + min_delta) for s in shares],
        name="negativity threshold",
        line={"shape": "hv", "dash": "dash"},
        row=2,
        col=1,
    )
    marks = [("onset", episode.onset, "orange"), ("detection", episode.detection, "red")]
    marks += [("escalation", at, "darkred") for at, _ in episode.escalations]
    if episode.resolution is not None:
        marks.append(("resolution", episode.resolution, "green"))
    for label, at, color in marks:
        fig.add_shape(
            type="line",
            x0=_dt(at),
            x1=_dt(at),
            y0=0,
            y1=1,
            xref="x",
            yref="paper",
            line={"color": color, "dash": "dot", "width": 1},
        )
        fig.add_annotation(
            x=_dt(at), y=1.0, xref="x", yref="paper", text=label, showarrow=False,
            textangle=-90, xanchor="right", yanchor="top", font={"color": color, "size": 10},
        )  # fmt: skip
    fig.update_yaxes(range=[0, 1], tickformat=".0%", row=2, col=1)
    fig.update_layout(height=620, margin={"t": 40, "l": 50, "r": 20, "b": 40}, bargap=0.05)
    return str(fig.to_html(full_html=False, include_plotlyjs=True, div_id="episode-chart"))


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}.neg{color:#a00}code{font-size:90%}
"""


def render_html(episode: Episode) -> str:
    e = html.escape
    rows: list[tuple[str, float, str]] = [
        ("onset", episode.onset, "start of the bucket that opened the episode (opened_at)"),
        ("detection", episode.detection, "event time of the opened event"),
    ]
    rows += [
        ("escalation", at, f"severity rose to {severity}") for at, severity in episode.escalations
    ]
    peak_at, peak_count = episode.peak()
    rows.append(("peak", peak_at, f"{peak_count:.0f} mentions per bucket"))
    if episode.resolution is not None:
        rows.append(("resolution", episode.resolution, "event time of the resolved event"))
    rows.sort(key=lambda r: r[1])
    timeline = "\n".join(
        f'<tr class="timeline-{e(name)}"><td>{e(name)}</td><td>{e(_iso(at))}</td>'
        f"<td>{e(note)}</td></tr>"
        for name, at, note in rows
    )
    if episode.resolution is None:
        timeline += '\n<tr class="timeline-open"><td>resolution</td><td>—</td><td>still open at the end of the data</td></tr>'  # noqa: E501
    events = "\n".join(
        f"<tr><td>{int(ev['data'].get('sequence', 0))}</td><td>{e(str(ev['data'].get('phase')))}"
        f"</td><td>{e(str(ev.get('time')))}</td><td>{e(str(ev['data'].get('severity')))}</td>"
        f"<td>{_per_bucket_observed(ev):.1f} / {_per_bucket_expected(ev):.1f}</td>"
        f"<td>{e(_share(ev['data'].get('observed', {}).get('negative_share')))} / "
        f"{e(_share(ev['data'].get('expected', {}).get('negative_share')))}</td>"
        f"<td>{e(str(ev['data'].get('statistic', {}).get('name')))} "
        f"{_num(ev['data'].get('statistic', {}).get('value'))} (threshold "
        f"{_num(ev['data'].get('statistic', {}).get('threshold'))})</td></tr>"
        for ev in episode.events
    )
    samples = (
        "\n".join(
            f'<tr class="{"neg" if float(s.get("compound", 0)) <= NEGATIVE_COMPOUND else ""}">'
            f"<td>{e(str(s.get('created_at', '')))}</td><td>{e(str(s.get('text', '')))}</td>"
            f"<td>{_num(s.get('compound'))}</td><td>{int(s.get('reposts', 0))}</td>"
            f"<td>{int(s.get('followers', 0))}</td></tr>"
            for s in episode.samples
        )
        or '<tr><td colspan="5">no samples</td></tr>'
    )
    terms = ", ".join(f"{e(term)} ({count})" for term, count in episode.terms) or "none"
    source = (
        "recomputed from the mentions file (detector parsing and VADER scoring)"
        if episode.buckets
        else "from the alert events only (pass --mentions for per-bucket values)"
    )
    title = f"Incident report: {episode.kind} alert for {episode.brand}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(title)}</title><style>{_STYLE}</style></head><body>
<h1>{e(title)}</h1>
<p>alert id <code id="alert-id">{e(episode.alert_id)}</code> · brand <b>{e(episode.brand)}</b>
· kind <b>{e(episode.kind)}</b> · bucket {episode.bucket_seconds} s</p>
<p><b>Time to detect:</b> <span id="time-to-detect">{e(_duration(episode.time_to_detect))}</span>
(detection − onset){_open_for(episode)}</p>
<h2>Timeline</h2>
<table id="timeline"><tr><th>what</th><th>event time</th><th>note</th></tr>
{timeline}
</table>
<h2>Volume and negative share against the baseline</h2>
<p>Observed values {e(source)}; expected values and thresholds from the alert events in force
(the virality rule judges reach-weighted volume; the dashed line is its factor applied to
the expected count).</p>
{chart_html(episode)}
<h2>Lifecycle events</h2>
<table id="events"><tr><th>#</th><th>phase</th><th>event time</th><th>severity</th>
<th>count / expected (per bucket)</th><th>negative share / baseline</th><th>statistic</th></tr>
{events}
</table>
<h2>Top terms of negative mentions</h2>
<p id="top-terms">{terms}</p>
<h2>Sample mentions</h2>
<table id="samples"><tr><th>created at</th><th>text</th><th>compound</th><th>reposts</th>
<th>followers</th></tr>
{samples}
</table>
</body></html>
"""


def _open_for(episode: Episode) -> str:
    if episode.resolution is None:
        return ""
    return f"; in alert for {html.escape(_duration(episode.resolution - episode.detection))}"


def _share(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.0%}"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2f}"


def write_report(
    alert_id: str,
    out: Path,
    *,
    alerts: Path | None = None,
    brokers: list[str] | None = None,
    topic: str = "crisis-alerts",
    mentions: Path | None = None,
    scorer: SentimentScorer | None = None,
) -> Episode:
    if alerts is not None:
        events = read_alert_file(alerts)
    elif brokers:
        events = read_alert_topic(brokers, topic)
    else:
        raise ReportError("give --alerts FILE or --brokers HOST:PORT")
    episode = build_episode(episode_events(events, alert_id), mentions, scorer)
    out.write_text(render_html(episode), encoding="utf-8")
    return episode
