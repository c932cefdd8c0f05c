"""The incident report (``crisis-radar report``) on a small simulated backtest."""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from detector.thresholds import ThresholdBook, Thresholds
from streams.backtest import run_backtest
from streams.cli import main
from streams.report import ReportError, episode_events, read_alert_file, write_report
from streams.simulator import BrandProfile, Crisis, MentionSimulator

START = datetime(2025, 6, 2, 10, 0, tzinfo=UTC).timestamp()
CRISIS_MINUTE = 25
MINUTES = 50
INJECTED = "<script>alert('pwned-7f3a')</script> @AcmeAir terrible, awful, horrible mess"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


@dataclass(frozen=True)
class Backtest:
    mentions: Path
    alerts: Path
    events: list[dict[str, Any]]

    def first(self, brand: str) -> dict[str, Any]:
        return next(e for e in self.events if e["data"]["brand"] == brand)


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory) -> Backtest:
    root = tmp_path_factory.mktemp("report")
    hot = BrandProfile("acme-air", "AcmeAir", "flight", 30.0)
    calm = BrandProfile("northwind", "NorthwindTea", "tea", 25.0)
    simulator = MentionSimulator(
        start_time=START,
        brands=(hot, calm),
        crises=(Crisis(hot.name, start_minute=CRISIS_MINUTE, duration_minutes=8.0),),
        seed=3,
    )
    events = list(simulator.events(MINUTES))
    # An untrusted text inside the crisis, reposted more than anything: it becomes a sample.
    events.append(
        {
            "id": "evil-1",
            "brand": "acme-air",
            "text": INJECTED,
            "created_at": _iso(START + 60 * (CRISIS_MINUTE + 2) + 7),
            "author": {"id": "mallory", "followers": 10},
            "engagement": {"reposts": 10**9},
        }
    )
    events.sort(key=lambda e: datetime.fromisoformat(e["created_at"]))
    mentions = root / "mentions.jsonl"
    mentions.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    alerts = root / "alerts.jsonl"
    settings = Settings(thresholds=ThresholdBook(defaults=Thresholds(warmup_buckets=10)))
    run_backtest(mentions, alerts, settings, progress=False, report=io.StringIO())
    alert_events = read_alert_file(alerts)
    assert any(e["data"]["brand"] == "acme-air" for e in alert_events), "the crisis must alert"
    return Backtest(mentions, alerts, alert_events)


def _episode(backtest: Backtest) -> list[dict[str, Any]]:
    alert_id = backtest.first("acme-air")["data"]["alert_id"]
    return episode_events(backtest.events, alert_id)


def test_report_with_mentions_has_timeline_chart_and_escaped_samples(
    backtest: Backtest, tmp_path: Path
) -> None:
    events = _episode(backtest)
    alert_id = events[0]["data"]["alert_id"]
    out = tmp_path / "report.html"
    episode = write_report(alert_id, out, alerts=backtest.alerts, mentions=backtest.mentions)
    page = out.read_text(encoding="utf-8")

    assert f'<code id="alert-id">{alert_id}</code>' in page
    for entry in ("timeline-onset", "timeline-detection", "timeline-peak"):
        assert entry in page
    phases = {e["data"]["phase"] for e in events}
    assert ("timeline-resolution" in page) == ("resolved" in phases)
    assert ("timeline-escalation" in page) == ("escalated" in phases)
    assert page.count('class="timeline-escalation"') == len(episode.escalations)
    assert episode.time_to_detect >= 0
    assert 'id="time-to-detect"' in page
    # the chart: a plotly div with the library inlined (self-contained, no CDN)
    assert 'id="episode-chart"' in page and "Plotly.newPlot" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert episode.buckets, "per-bucket values are recomputed from the mentions"
    onset_bucket = next(b for b in episode.buckets if b.start >= episode.onset)
    assert onset_bucket.count > 0
    # the untrusted sample is shown, escaped, never as markup
    assert INJECTED not in page
    assert "<script>alert('pwned-7f3a')" not in page
    assert html.escape(INJECTED) in page
    assert 'id="top-terms"' in page


def test_report_from_alert_events_only(backtest: Backtest, tmp_path: Path) -> None:
    alert_id = backtest.first("acme-air")["data"]["alert_id"]
    out = tmp_path / "report.html"
    # a unique prefix is enough, as printed by `crisis-radar up`
    episode = write_report(alert_id[:8], out, alerts=backtest.alerts)
    page = out.read_text(encoding="utf-8")
    assert episode.alert_id == alert_id and not episode.buckets
    assert alert_id in page and "timeline-detection" in page
    assert 'id="episode-chart"' in page
    assert "from the alert events only" in page


def test_episode_events_are_deduplicated_and_ordered(backtest: Backtest) -> None:
    events = _episode(backtest)
    doubled = list(reversed(events)) + events  # redelivered copies, out of order
    again = episode_events(doubled, events[0]["data"]["alert_id"])
    assert [e["id"] for e in again] == [e["id"] for e in events]
    assert [e["data"]["sequence"] for e in again] == sorted(e["data"]["sequence"] for e in events)


def test_unknown_alert_id_is_a_clear_error(backtest: Backtest, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="alert 'no-such-alert' not found among"):
        write_report("no-such-alert", tmp_path / "r.html", alerts=backtest.alerts)
    assert not (tmp_path / "r.html").exists()


def test_cli_report_and_unknown_id(
    backtest: Backtest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alert_id = backtest.first("acme-air")["data"]["alert_id"]
    out = tmp_path / "cli.html"
    args = ["report", alert_id, "--alerts", str(backtest.alerts), "--out", str(out)]
    assert main(args + ["--mentions", str(backtest.mentions)]) == 0
    assert alert_id in out.read_text(encoding="utf-8")
    capsys.readouterr()
    bad = ["report", "deadbeef-0000", "--alerts", str(backtest.alerts), "--out", str(out)]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "alert 'deadbeef-0000' not found" in err
