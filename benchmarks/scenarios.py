"""Scenario benchmark: generate the labelled scenarios of ``streams.scenarios``, replay each
through the detection core (``streams.backtest.run_backtest``) and report recall,
precision, median time to detect, false alerts (per brand-week) and alerts by kind, against
the goals: recall >= 95 %, median time to detect <= 3 event-minutes, <= 1 false alert per
brand-week.

    python3 -m benchmarks.scenarios [--only NAME] [--out-dir DIR] [--config FILE]

For every scenario, DIR gets ``<name>.jsonl`` (mentions), ``<name>.labels.json``,
``<name>.alerts.jsonl`` (every alert event) and ``<name>.report.txt`` (the backtest's own
per-brand report). Progress goes to stderr; the details and the table go to stdout.
Alerts of any kind count (kinds other than virality/negativity are reported as they come).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from config.settings import load_settings
from detector.errors import ConfigError
from detector.evaluation import AlertRecord, Scores
from streams.backtest import run_backtest
from streams.scenarios import SCENARIOS, Scenario, build

GOAL_RECALL = 0.95
GOAL_TTD_MINUTES = 3.0
GOAL_FALSE_PER_BRAND_WEEK = 1.0
WEEK = 7 * 86_400.0


@dataclass
class Episode:
    brand: str
    kind: str
    alert_id: str
    opened: float
    resolved: float | None = None


@dataclass
class Outcome(Scores):
    """One scenario's results: its scores plus what the report shows beside them."""

    scenario: Scenario
    mentions: int
    opened_by_kind: Counter[str] = field(default_factory=Counter)
    events_by_kind: Counter[str] = field(default_factory=Counter)
    records: list[AlertRecord] = field(default_factory=list)
    generate_seconds: float = 0.0
    replay_seconds: float = 0.0
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def median_ttd_minutes(self) -> float | None:
        median = self.median_time_to_detect
        return None if median is None else median / 60.0


# --- running ---------------------------------------------------------------------------------


def write_scenario(scenario: Scenario, out_dir: Path) -> tuple[Path, Path, int]:
    events_path = out_dir / f"{scenario.name}.jsonl"
    labels_path = out_dir / f"{scenario.name}.labels.json"
    count = 0
    with events_path.open("w", encoding="utf-8") as out:
        for event in scenario.events():
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
            count += 1
    labels_path.write_text(json.dumps(scenario.labels, indent=2) + "\n", encoding="utf-8")
    return events_path, labels_path, count


def run_scenario(
    scenario: Scenario, out_dir: Path, config: str | None, progress: TextIO
) -> Outcome:
    settings = load_settings(overrides={"config_file": config})
    started = time.monotonic()
    print(f"  generating {scenario.days:g} days of events ...", file=progress, flush=True)
    events_path, labels_path, written = write_scenario(scenario, out_dir)
    generated = time.monotonic()
    print(
        f"  wrote {written:,} mentions in {generated - started:.1f} s; replaying ...",
        file=progress,
        flush=True,
    )
    report = io.StringIO()
    result = run_backtest(
        events_path,
        out_dir / f"{scenario.name}.alerts.jsonl",
        settings,
        labels_path=labels_path,
        progress=None,
        report=report,
    )
    (out_dir / f"{scenario.name}.report.txt").write_text(report.getvalue(), encoding="utf-8")
    finished = time.monotonic()
    scores = result.scores
    if scores is None:  # labels were given, so this does not happen
        raise RuntimeError("run_backtest returned no scores")
    print(
        f"  replayed {result.mentions:,} mentions in {finished - generated:.1f} s "
        f"({result.mentions / max(1e-9, finished - generated):,.0f}/s), "
        f"{sum(1 for r in result.alerts if r.phase == 'opened')} alerts opened",
        file=progress,
        flush=True,
    )
    outcome = Outcome(
        scenario=scenario,
        mentions=result.mentions,
        windows=scores.windows,
        detected=scores.detected,
        alerts=scores.alerts,
        true_alerts=scores.true_alerts,
        false_alerts=scores.false_alerts,
        brand_weeks=scores.brand_weeks,
        detect_delays=list(scores.detect_delays),
        opened_by_kind=Counter(r.kind for r in result.alerts if r.phase == "opened"),
        events_by_kind=Counter(r.kind for r in result.alerts),
        records=list(result.alerts),
        generate_seconds=generated - started,
        replay_seconds=finished - generated,
        wall_seconds=finished - started,
    )
    if result.rejected:
        outcome.notes.append(f"rejected input: {dict(result.rejected)}")
    if result.late:
        outcome.notes.append(f"late events: {result.late}")
    return outcome


# --- analysis --------------------------------------------------------------------------------


def episodes(records: Sequence[AlertRecord]) -> list[Episode]:
    by_id: dict[str, Episode] = {}
    for r in records:
        if r.phase == "opened":
            by_id[r.alert_id] = Episode(r.brand, r.kind, r.alert_id, r.time)
        elif r.phase == "resolved" and r.alert_id in by_id:
            by_id[r.alert_id].resolved = r.time
    return sorted(by_id.values(), key=lambda e: e.opened)


def when(epoch: float, origin: float) -> str:
    """``d2 Sat 14:03``: scenario day, weekday and time of an event time."""
    moment = datetime.fromtimestamp(epoch, UTC)
    day = int((epoch - origin) // 86_400)
    return f"d{day} {moment:%a %H:%M}"


def kinds_text(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counter.items())) or "-"


def details(outcome: Outcome, out: TextIO) -> None:
    """What happened in one scenario: detected and missed windows, false alerts, and the
    alerts seen in its watch windows."""
    sc = outcome.scenario
    eps = episodes(outcome.records)
    opened = eps
    print(f"\n== {sc.name}: {sc.description}", file=out)
    for note in outcome.notes:
        print(f"   note: {note}", file=out)
    in_window: set[str] = set()
    for brand in sc.brands:
        for start, end in sc.windows.get(brand, ()):
            hits = [e for e in opened if e.brand == brand and start <= e.opened <= end]
            in_window.update(e.alert_id for e in hits)
            span = f"{brand} {when(start, sc.start)} +{(end - start) / 60:.0f} min"
            if hits:
                first = hits[0]
                kinds = Counter(e.kind for e in hits)
                print(
                    f"   detected {span}: after {(first.opened - start) / 60:.1f} min "
                    f"({first.kind}); opened in window: {kinds_text(kinds)}",
                    file=out,
                )
            else:
                before = [
                    e
                    for e in opened
                    if e.brand == brand
                    and e.opened < start
                    and (e.resolved is None or e.resolved >= start)
                ]
                why = (
                    "; already open: "
                    + ", ".join(f"{e.kind} since {when(e.opened, sc.start)}" for e in before)
                    if before
                    else "; no alert open"
                )
                print(f"   MISSED   {span}{why}", file=out)
    false = [e for e in opened if e.alert_id not in in_window]
    groups: dict[tuple[str, str], list[Episode]] = defaultdict(list)
    for e in false:
        groups[(e.brand, e.kind)].append(e)
    for (brand, kind), group in sorted(groups.items()):
        shown = ", ".join(when(e.opened, sc.start) for e in group[:8])
        more = f", ... (+{len(group) - 8})" if len(group) > 8 else ""
        print(f"   false    {brand} {kind} x{len(group)}: {shown}{more}", file=out)
    watch_groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for w in sc.watch:
        inside = Counter(
            e.kind for e in opened if e.brand == w.brand and w.start <= e.opened <= w.end
        )
        still_open = sorted(
            {
                e.kind
                for e in opened
                if e.brand == w.brand
                and e.opened < w.start
                and (e.resolved is None or e.resolved >= w.start)
            }
        )
        text = "+".join(sorted(inside)) if inside else "-"
        if still_open:
            text += f" (open: {'+'.join(still_open)})"
        watch_groups[(w.brand, w.name)].append(f"{when(w.start, sc.start)}: {text}")
    for (brand, name), items in watch_groups.items():
        print(f"   watch    {brand} {name}: " + "; ".join(items), file=out)
    if not opened:
        print("   no alert opened", file=out)


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def goal_flags(recall: float | None, ttd: float | None, fpw: float | None) -> str:
    def flag(value: float | None, ok: bool) -> str:
        return "-" if value is None else ("ok" if ok else "MISS")

    return "/".join(
        (
            flag(recall, recall is not None and recall >= GOAL_RECALL),
            flag(ttd, ttd is not None and ttd <= GOAL_TTD_MINUTES),
            flag(fpw, fpw is not None and fpw <= GOAL_FALSE_PER_BRAND_WEEK),
        )
    )


def table(outcomes: Sequence[Outcome], out: TextIO) -> dict[str, float | None]:
    header = (
        f"{'scenario':<17} {'mentions':>9} {'brands':>6} {'windows':>7} {'detected':>8} "
        f"{'recall':>7} {'precision':>9} {'med TTD':>7} {'false':>5} {'false/bw':>8} "
        f"{'wall s':>6} {'goals R/T/F':<12} alerts opened (all events) by kind"
    )
    print(header, file=out)
    print("-" * len(header), file=out)

    def row(
        name: str,
        mentions: int,
        brands: int,
        windows: int,
        detected: int,
        recall: float | None,
        precision: float | None,
        ttd: float | None,
        false: int,
        fpw: float | None,
        wall: float,
        opened: Counter[str],
        events: Counter[str],
    ) -> None:
        kinds = ", ".join(f"{k} {opened[k]} ({events[k]})" for k in sorted(events)) or "-"
        print(
            f"{name:<17} {mentions:>9,} {brands:>6} {windows:>7} {detected:>8} "
            f"{fmt(recall, '.1%'):>7} {fmt(precision, '.1%'):>9} {fmt(ttd, '.1f'):>7} "
            f"{false:>5} {fmt(fpw, '.2f'):>8} {wall:>6.1f} "
            f"{goal_flags(recall, ttd, fpw):<12} {kinds}",
            file=out,
        )

    for o in outcomes:
        row(
            o.scenario.name,
            o.mentions,
            len(o.scenario.brands),
            o.windows,
            o.detected,
            o.recall,
            o.precision,
            o.median_ttd_minutes,
            o.false_alerts,
            o.false_alerts_per_brand_week,
            o.wall_seconds,
            o.opened_by_kind,
            o.events_by_kind,
        )
    windows = sum(o.windows for o in outcomes)
    detected = sum(o.detected for o in outcomes)
    alerts = sum(o.alerts for o in outcomes)
    true_alerts = sum(o.true_alerts for o in outcomes)
    false = sum(o.false_alerts for o in outcomes)
    brand_weeks = sum(o.brand_weeks for o in outcomes)
    delays = [d for o in outcomes for d in o.detect_delays]
    recall = detected / windows if windows else None
    precision = true_alerts / alerts if alerts else None
    ttd = statistics.median(delays) / 60.0 if delays else None
    fpw = false / brand_weeks if brand_weeks > 0 else None
    print("-" * len(header), file=out)
    row(
        "TOTAL",
        sum(o.mentions for o in outcomes),
        sum(len(o.scenario.brands) for o in outcomes),
        windows,
        detected,
        recall,
        precision,
        ttd,
        false,
        fpw,
        sum(o.wall_seconds for o in outcomes),
        sum((o.opened_by_kind for o in outcomes), Counter()),
        sum((o.events_by_kind for o in outcomes), Counter()),
    )
    print(
        f"(recall and precision pooled over all windows and alerts; median TTD in "
        f"event-minutes over all detected windows; false/bw = false alerts per brand-week "
        f"over {brand_weeks:.2f} observed brand-weeks; goals R/T/F = recall >= "
        f"{GOAL_RECALL:.0%}, median TTD <= {GOAL_TTD_MINUTES:g} min, "
        f"false/bw <= {GOAL_FALSE_PER_BRAND_WEEK:g}, '-' where not applicable)",
        file=out,
    )
    return {"recall": recall, "precision": precision, "ttd": ttd, "false_per_brand_week": fpw}


def goals(total: dict[str, float | None], out: TextIO) -> bool:
    checks = (
        (f"recall >= {GOAL_RECALL:.0%}", total["recall"], ".1%", GOAL_RECALL, True),
        (
            f"median time to detect <= {GOAL_TTD_MINUTES:g} event-minutes",
            total["ttd"],
            ".1f",
            GOAL_TTD_MINUTES,
            False,
        ),
        (
            f"false alerts per brand-week <= {GOAL_FALSE_PER_BRAND_WEEK:g}",
            total["false_per_brand_week"],
            ".2f",
            GOAL_FALSE_PER_BRAND_WEEK,
            False,
        ),
    )
    all_met = True
    for name, value, spec, limit, at_least in checks:
        met = value is not None and (value >= limit if at_least else value <= limit)
        all_met &= met
        print(f"goal {name}: {fmt(value, spec)} -> {'MET' if met else 'NOT MET'}", file=out)
    return all_met


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 -m benchmarks.scenarios",
        description=(
            "Generate the labelled scenarios (fixed seeds), replay each through the detection "
            "core offline, and report recall, precision, median time to detect and false "
            "alerts per brand-week against the goals."
        ),
    )
    parser.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        choices=list(SCENARIOS),
        help=f"run only this scenario (repeatable); one of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--out-dir",
        metavar="DIR",
        type=Path,
        default=Path(tempfile.gettempdir()) / "crisis-radar-scenarios",
        help="where to write mentions, labels, alerts and reports (default: %(default)s)",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="detection settings YAML file (default: the shipped one)"
    )
    parser.add_argument(
        "--days",
        type=float,
        metavar="N",
        help="override every scenario's span in days (quick runs; default: each scenario's own)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        metavar="X",
        help="multiply every brand's mention rate by X (default: 1)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a goal is not met"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.only or list(SCENARIOS)
    try:
        load_settings(overrides={"config_file": args.config})  # fail early on a bad file
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    for number, name in enumerate(names, 1):
        scenario = build(name, days=args.days, scale=args.scale)
        print(
            f"[{number}/{len(names)}] {name}: {scenario.description}",
            file=sys.stderr,
            flush=True,
        )
        outcome = run_scenario(scenario, args.out_dir, args.config, sys.stderr)
        print(f"  done in {outcome.wall_seconds:.1f} s", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    for outcome in outcomes:
        details(outcome, sys.stdout)
    print(file=sys.stdout)
    total = table(outcomes, sys.stdout)
    met = goals(total, sys.stdout)
    print(
        f"total wall time {time.monotonic() - started:.1f} s; files in {args.out_dir}",
        file=sys.stdout,
    )
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
