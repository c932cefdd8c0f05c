"""``crisis-radar backtest``: replay a JSONL file of mentions through the detection core
offline, write every alert event, and print a summary (and scores against labels)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from config.settings import Settings
from detector import alerts
from detector.errors import ConfigError
from detector.evaluation import AlertRecord, Scores, parse_labels, score_alerts, summarise
from detector.replay import Replayer
from detector.sentiment import SentimentScorer


class Progress:
    """A progress bar on stderr (only when it is a terminal, or when forced), redrawn at
    most every 0.2 s."""

    def __init__(self, total_bytes: int, out: TextIO = sys.stderr, force: bool = False) -> None:
        self.total = max(1, total_bytes)
        self.out = out
        self.enabled = force or out.isatty()
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(self, done_bytes: int, items: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self._drawn < 0.2):
            return
        self._drawn = now
        fraction = min(1.0, done_bytes / self.total)
        width = 30
        filled = int(width * fraction)
        rate = items / max(1e-9, now - self.started)
        bar = "#" * filled + "." * (width - filled)
        self.out.write(f"\r[{bar}] {fraction:6.1%}  {items} mentions  {rate:,.0f}/s")
        if final:
            self.out.write("\n")
        self.out.flush()


@dataclass
class BacktestResult:
    mentions: int
    alerts: list[AlertRecord]
    scores: Scores | None
    rejected: dict[str, int]
    late: int
    seconds: float


def run_backtest(
    input_path: Path,
    out_path: Path,
    settings: Settings,
    labels_path: Path | None = None,
    scorer: SentimentScorer | None = None,
    progress: bool | None = None,
    report: TextIO = sys.stdout,
) -> BacktestResult:
    labels = None
    if labels_path is not None:
        try:
            labels = parse_labels(json.loads(labels_path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read labels {labels_path}: {exc}") from None
    try:
        total = input_path.stat().st_size
        source = input_path.open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read input {input_path}: {exc.strerror}") from None
    replayer = Replayer(
        settings.thresholds,
        scorer or settings.sentiment.scorer(),
        settings.limits,
        now=time.time(),
    )
    bar = Progress(total, force=bool(progress)) if progress is not False else None
    records: list[AlertRecord] = []
    started = time.monotonic()
    done = 0
    with source, out_path.open("w", encoding="utf-8") as out:
        for line in source:
            done += len(line)
            if not line.strip():
                continue
            for decision in replayer.feed(line.rstrip(b"\r\n")):
                event = alerts.to_event(decision, settings.alert_source)
                out.write(alerts.encode(event).decode("utf-8") + "\n")
                records.append(
                    AlertRecord(
                        decision.brand,
                        decision.kind,
                        decision.phase.value,
                        decision.alert_id,
                        decision.event_time,
                    )
                )
            if bar is not None:
                bar.update(done, replayer.stats.mentions)
    if bar is not None:
        bar.update(done, replayer.stats.mentions, final=True)
    elapsed = time.monotonic() - started
    stats = replayer.stats
    spans = {b: (stats.first_event[b], stats.last_event[b]) for b in stats.first_event}
    scores = score_alerts(records, labels, spans) if labels is not None else None
    _print_report(report, records, stats.last_event, scores, stats.mentions, elapsed)
    if stats.rejected:
        rejected = ", ".join(f"{r} {n}" for r, n in sorted(stats.rejected.items()))
        print(f"rejected input: {rejected}", file=report)
    if stats.late:
        print(f"late events (not detected on): {stats.late}", file=report)
    return BacktestResult(
        mentions=stats.mentions,
        alerts=records,
        scores=scores,
        rejected=dict(stats.rejected),
        late=stats.late,
        seconds=elapsed,
    )


def _print_report(
    report: TextIO,
    records: list[AlertRecord],
    last_event: dict[str, float],
    scores: Scores | None,
    mentions: int,
    elapsed: float,
) -> None:
    opened = sum(1 for r in records if r.phase == "opened")
    print(
        f"replayed {mentions} mentions in {elapsed:.1f} s: {len(records)} alert events, "
        f"{opened} alerts opened",
        file=report,
    )
    summaries = summarise(records, last_event)
    if summaries:
        print(
            f"{'brand':<20} {'kind':<11} {'opened':>6} {'escal.':>6} {'resolved':>8} "
            f"{'minutes in alert':>16}",
            file=report,
        )
    for brand in sorted(summaries):
        summary = summaries[brand]
        kinds = sorted({kind for kind, _ in summary.events})
        for kind in kinds:
            print(
                f"{brand:<20} {kind:<11} {summary.events[(kind, 'opened')]:>6} "
                f"{summary.events[(kind, 'escalated')]:>6} "
                f"{summary.events[(kind, 'resolved')]:>8} "
                f"{summary.seconds_in_alert[kind] / 60:>16.1f}",
                file=report,
            )
    if scores is None:
        return

    def show(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    ttd = scores.median_time_to_detect
    print(
        f"labelled windows {scores.windows}, detected {scores.detected}: "
        f"recall {show(scores.recall, '.1%')}, precision {show(scores.precision, '.1%')}, "
        f"median time to detect {show(None if ttd is None else ttd / 60, '.1f')} event-minutes, "
        f"false alerts {scores.false_alerts} "
        f"({show(scores.false_alerts_per_brand_week, '.2f')} per brand-week "
        f"over {scores.brand_weeks:.2f} brand-weeks)",
        file=report,
    )
