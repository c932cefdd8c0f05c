"""``python3 -m benchmarks.nab``: the Numenta Anomaly Benchmark's realTweets series (tweet
volume per company, 5-minute rows, labelled anomaly windows) through the volume detector,
scored with NAB's scoring and printed beside the published detectors' scores.

Each data row is fed as one aggregated bucket through ``detector.core.step_counts`` with
``bucket_seconds: 300`` and the thresholds of one YAML file (the same for every file). A
row's ``anomaly_score`` is 1.0 when an alert of a counted kind (virality, crisis) OPENED on
that row, else 0.0: the detector's own decision, so NAB's threshold is fixed in advance at
0.5 and nothing is tuned per file. One CSV per series is written in NAB's results layout
(``<out>/crisisRadar/realTweets/crisisRadar_Twitter_volume_X.csv``, columns
``timestamp,value,anomaly_score,label``, the data file's rows in its order) and scored with
``nab_score.py`` at the fixed threshold, then swept (optimistic, for reference only).

NAB's data and scorer are not part of this repository: they are looked up in
``<repo>/../shared`` (then ``/work/shared``), or given with ``--nab-dir`` / ``--scorer``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from detector.core import Counts, Outcome, Phase, step_counts
from detector.errors import ConfigError
from detector.rules import Kind
from detector.state import BrandState
from detector.thresholds import Thresholds
from detector.version import DETECTOR_VERSION

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path(__file__).resolve().with_name("nab-thresholds.yaml")
DETECTOR_NAME = "crisisRadar"
CORPUS = "realTweets"
ROW_SECONDS = 300  # NAB's realTweets rows are 5-minute buckets
THRESHOLD = 0.5  # fixed in advance: scores are 0.0 or 1.0 (the detector's own decision)
DEFAULT_KINDS = (Kind.VIRALITY.value, Kind.CRISIS.value)
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
PROFILE_LABELS = {
    "standard": "standard",
    "reward_low_FP_rate": "reward_low_FP",
    "reward_low_FN_rate": "reward_low_FN",
}
# The published detectors on realTweets only (threshold swept on these files), from the
# table in shared/datasets/nab/README.md; used when that table cannot be read.
PUBLISHED_FALLBACK: list[tuple[str, float, float, float]] = [
    ("ARTime", 83.2, 74.6, 88.8),
    ("CAD OSE", 74.5, 73.1, 76.9),
    ("HTM (NuPIC)", 69.3, 63.5, 73.5),
    ("earthgecko Skyline", 68.9, 45.3, 78.3),
    ("KNN CAD", 64.3, 42.2, 73.5),
    ("Random Cut Forest", 62.9, 50.2, 70.0),
    ("Twitter ADVec (S-H-ESD)", 59.6, 35.8, 69.0),
    ("Windowed Gaussian", 51.4, 16.3, 64.6),
    ("Random", 26.4, 15.8, 38.8),
]


# --------------------------------------------------------------------------------------
# locating NAB


def shared_dir(repo: Path = REPO) -> Path:
    """``<repo>/../shared`` when it exists (the repository cloned beside it), else
    ``/work/shared``."""
    beside = (repo / ".." / "shared").resolve()
    return beside if beside.is_dir() else Path("/work/shared")


def default_nab_dir() -> Path:
    return shared_dir() / "datasets" / "nab"


def default_scorer() -> Path:
    return shared_dir() / "tools" / "nab_score.py"


# --------------------------------------------------------------------------------------
# configuration


def load_thresholds(path: Path) -> Thresholds:
    """Thresholds from a YAML file whose keys are ``Thresholds`` fields. Rows are 5-minute
    buckets, so ``bucket_seconds`` must be 300."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    t = Thresholds.from_mapping(document, where=str(path))
    if t.bucket_seconds != ROW_SECONDS:
        raise ConfigError(
            f"{path}: bucket_seconds must be {ROW_SECONDS} (one NAB row is one 5-minute bucket)"
        )
    return t


# --------------------------------------------------------------------------------------
# data


@dataclass
class Series:
    name: str  # e.g. Twitter_volume_AAPL
    key: str  # NAB label key, e.g. realTweets/Twitter_volume_AAPL.csv
    stamps: list[str]  # timestamps exactly as in the data file
    epochs: list[float]
    values: list[int]
    raw_values: list[str]  # values exactly as in the data file
    windows: list[tuple[int, int]]  # labelled windows as inclusive row ranges


def _epoch(stamp: str) -> float:
    """NAB's timestamps carry no zone; they are taken as UTC."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()


def load_series(data_file: Path, windows: Sequence[Sequence[str]]) -> Series:
    with data_file.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [(r["timestamp"], r["value"]) for r in reader]
    stamps = [s for s, _ in rows]
    epochs = [_epoch(s) for s in stamps]
    values = [round(float(v)) for _, v in rows]
    index = {e: i for i, e in enumerate(epochs)}
    spans = []
    for start, end in windows:
        a, b = index.get(_epoch(start)), index.get(_epoch(end))
        if a is None or b is None:
            raise ConfigError(f"{data_file.name}: window {start}..{end} is not on a data row")
        spans.append((a, b))
    name = data_file.stem
    raw = [v for _, v in rows]
    return Series(name, f"{CORPUS}/{data_file.name}", stamps, epochs, values, raw, sorted(spans))


def load_corpus(nab_dir: Path, only: Iterable[str] = ()) -> list[Series]:
    data_dir = nab_dir / "data" / CORPUS
    labels_file = nab_dir / "labels" / "combined_windows.json"
    try:
        labels = json.loads(labels_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read NAB labels {labels_file}: {exc}") from None
    files = sorted(data_dir.glob("*.csv"))
    if not files:
        raise ConfigError(f"no NAB data under {data_dir} (see --nab-dir)")
    wanted = set(only)
    return [
        load_series(f, labels[f"{CORPUS}/{f.name}"])
        for f in files
        if not wanted or any(w in f.stem for w in wanted)
    ]


# --------------------------------------------------------------------------------------
# detection


@dataclass
class Detections:
    scores: list[float]
    opened: list[tuple[int, str, str]] = field(default_factory=list)  # (row, kind, severity)
    late_rows: int = 0


def detect(series: Series, t: Thresholds, kinds: Iterable[str] = DEFAULT_KINDS) -> Detections:
    """Feed every row through the core as one bucket; a row scores 1.0 when an alert of one
    of ``kinds`` opened while applying it (the decision is causal: it uses that row and
    the rows before it only)."""
    counted = set(kinds)
    out = Detections(scores=[0.0] * len(series.values))
    state: BrandState | None = None
    for row, (epoch, value) in enumerate(zip(series.epochs, series.values, strict=True)):
        result = step_counts(state, series.name, Counts(bucket_start=epoch, count=value), t)
        state = result.state
        if result.outcome is Outcome.LATE:
            out.late_rows += 1
        for d in result.decisions:
            if d.phase is Phase.OPENED:
                out.opened.append((row, d.kind, d.severity))
                if d.kind in counted:
                    out.scores[row] = 1.0
    return out


def labels_of(series: Series) -> list[int]:
    label = [0] * len(series.values)
    for a, b in series.windows:
        for i in range(a, b + 1):
            label[i] = 1
    return label


def write_results(series: Series, scores: Sequence[float], out_dir: Path) -> Path:
    """NAB's results layout and columns: <out>/<detector>/<corpus>/<detector>_<file>.csv."""
    folder = out_dir / DETECTOR_NAME / CORPUS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{DETECTOR_NAME}_{series.name}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["timestamp", "value", "anomaly_score", "label"])
        for stamp, value, score, label in zip(
            series.stamps, series.raw_values, scores, labels_of(series), strict=True
        ):
            writer.writerow([stamp, value, repr(float(score)), label])
    return path


# --------------------------------------------------------------------------------------
# scoring (with NAB's scoring rule, as re-implemented by nab_score.py)


def run_scorer(
    scorer: Path, results_dir: Path, nab_dir: Path, threshold: float | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            sys.executable,
            str(scorer),
            str(results_dir),
            "--only",
            CORPUS,
            "--labels",
            str(nab_dir / "labels" / "combined_windows.json"),
            "--profiles",
            str(nab_dir / "config" / "profiles.json"),
            "--data-dir",
            str(nab_dir / "data"),
            "--json",
            str(report),
        ]
        if threshold is not None:
            cmd += ["--threshold", str(threshold)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"{scorer} failed:\n{done.stderr.strip()}")
        result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
        return result


def published_table(nab_dir: Path) -> list[tuple[str, float, float, float]]:
    """The published detectors' realTweets scores from NAB's README table (falls back to
    a copy of it)."""
    try:
        text = (nab_dir / "README.md").read_text(encoding="utf-8")
    except OSError:
        return PUBLISHED_FALLBACK
    section = text.split("## Published detectors on realTweets only", 1)
    if len(section) < 2:
        return PUBLISHED_FALLBACK
    rows = []
    for line in section[1].splitlines():
        m = re.match(r"^\|\s*([^|]+?)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|", line)
        if m:
            rows.append((m[1], float(m[2]), float(m[3]), float(m[4])))
    return rows or PUBLISHED_FALLBACK


# --------------------------------------------------------------------------------------
# provenance: which detector code produced the numbers


def provenance(repo: Path = REPO) -> dict[str, str]:
    """Detector version, the repository's commit, whether detector/ differs from it, and a
    hash of detector/*.py (the numbers depend on exactly this code)."""
    digest = hashlib.sha256()
    for path in sorted((repo / "detector").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    info = {
        "detector_version": DETECTOR_VERSION,
        "detector_sha256": digest.hexdigest()[:12],
        "commit": "unknown",
        "detector_dirty": "unknown",
    }

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
            )
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if commit:
        info["commit"] = commit
        status = git("status", "--porcelain", "--", "detector")
        if status is not None:
            info["detector_dirty"] = "yes" if status else "no"
    return info


# --------------------------------------------------------------------------------------
# report


def _norm(report: dict[str, Any], profile: str) -> float:
    return float(report["profiles"][profile]["normalized"])


def _curve(x: float) -> float:
    return -1.0 if x > 3.0 else 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def window_reward(a: int, b: int, row: int) -> float:
    """NAB's reward (tpWeight 1) for a first detection on ``row`` of window [a, b]."""
    return _curve(-(b - row + 1) / (b - a + 1)) / _curve(-1.0)


def print_report(
    corpus: list[Series],
    found: dict[str, Detections],
    fixed: dict[str, Any],
    swept: dict[str, Any],
    published: list[tuple[str, float, float, float]],
    config: Path,
    thresholds: Thresholds,
    origin: dict[str, str],
    timings: tuple[float, float],
    windows: bool = False,
    out: TextIO = sys.stdout,
) -> None:
    def say(text: str = "") -> None:
        print(text, file=out)

    n_windows = sum(len(s.windows) for s in corpus)
    changed = {
        f.name: getattr(thresholds, f.name)
        for f in fields(Thresholds)
        if getattr(thresholds, f.name) != getattr(Thresholds(), f.name)
    }
    say(f"NAB {CORPUS}: {len(corpus)} files, {n_windows} labelled windows")
    say(f"config {config}: " + ", ".join(f"{k}={v}" for k, v in changed.items()))
    say(
        f"detector {origin['detector_version']} (commit {origin['commit']}, detector/ modified:"
        f" {origin['detector_dirty']}, sources sha256 {origin['detector_sha256']})"
    )
    say(f"anomaly_score = 1.0 on a row where an alert opened, else 0.0; threshold {THRESHOLD}")
    say()
    say("NAB normalised score (100 = every window at its left edge, 0 = never firing)")
    width = 54
    say(f"{'detector':<{width}} {'standard':>9} {'low_FP':>9} {'low_FN':>9}")
    label = f"crisisRadar, threshold fixed at {THRESHOLD}"
    say(f"{label:<{width}}" + "".join(f" {_norm(fixed, p):9.1f}" for p in PROFILES))
    for name, *scores in published:
        label = f"{name}, threshold swept (published)"
        say(f"{label:<{width}}" + "".join(f" {v:9.1f}" for v in scores))
    label = "crisisRadar, threshold swept (optimistic)"
    say(f"{label:<{width}}" + "".join(f" {_norm(swept, p):9.1f}" for p in PROFILES))
    say()
    say("per file at the fixed threshold (TP/FN: windows hit/missed; FP: detections outside")
    say("every window after the probation period; score: the file's own normalised standard")
    say("score; the counts are the same under every profile, the scores differ):")
    say(
        f"  {'file':<22} {'rows':>6} {'windows':>7} {'TP':>3} {'FN':>3} {'FP':>4}"
        f" {'opened':>6} {'score':>7}"
    )
    std = fixed["profiles"]["standard"]["per_file"]
    for s in corpus:
        r = std[s.key]
        tp, wins = r["windows_hit"], r["windows"]
        say(
            f"  {s.name:<22} {len(s.values):6d} {wins:7d} {tp:3d} {wins - tp:3d}"
            f" {r['fp_rows']:4d} {sum(found[s.name].scores):6.0f} {r['normalized']:7.1f}"
        )
    e = fixed["profiles"]["standard"]
    say(
        f"  {'all':<22} {sum(len(s.values) for s in corpus):6d} {e['n_windows']:7d}"
        f" {e['windows_hit']:3d} {e['n_windows'] - e['windows_hit']:3d} {e['fp']:4d}"
        f" {sum(sum(d.scores) for d in found.values()):6.0f} {e['normalized']:7.1f}"
    )
    if windows:
        say()
        say("per window: first detection (hours after the window opens) and NAB's reward for it")
        for s in corpus:
            hits = [i for i, v in enumerate(found[s.name].scores) if v >= THRESHOLD]
            for a, b in s.windows:
                first = next((i for i in hits if a <= i <= b), None)
                where = (
                    "missed"
                    if first is None
                    else f"+{(first - a) * ROW_SECONDS / 3600:5.1f} h  reward"
                    f" {window_reward(a, b, first):.2f}"
                )
                hours = (b - a + 1) * ROW_SECONDS / 3600
                say(f"  {s.name:<22} {s.stamps[a]} ({hours:4.1f} h)  {where}")
    late = sum(d.late_rows for d in found.values())
    say()
    if late:
        say(f"warning: {late} rows were counted late by the core (unexpected)")
    say(f"wall time: detection {timings[0]:.1f} s, total {timings[1]:.1f} s")


# --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python3 -m benchmarks.nab",
        description=(
            "Run the volume detector over NAB's realTweets series, write one NAB results CSV "
            "per series and score them with NAB's scoring: at the threshold fixed in advance "
            "(0.5 on a 0/1 score: an alert opened) and, for reference only, swept."
        ),
    )
    ap.add_argument(
        "--out-dir",
        type=Path,
        default=REPO / "build" / "nab",
        help="results go to DIR/crisisRadar/realTweets/ (default: %(default)s)",
    )
    ap.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="YAML mapping of Thresholds fields, one for all files (default: %(default)s)",
    )
    ap.add_argument(
        "--nab-dir",
        type=Path,
        default=None,
        help="NAB folder with data/, labels/, config/ (default: <repo>/../shared/"
        "datasets/nab, else /work/shared/datasets/nab)",
    )
    ap.add_argument(
        "--scorer",
        type=Path,
        default=None,
        help="nab_score.py (default: <repo>/../shared/tools/nab_score.py, else "
        "/work/shared/tools/nab_score.py)",
    )
    ap.add_argument(
        "--kinds",
        default=",".join(DEFAULT_KINDS),
        help="alert kinds whose opening is a detection (default: %(default)s)",
    )
    ap.add_argument(
        "--windows", action="store_true", help="also print the first detection in every window"
    )
    ap.add_argument("--json", type=Path, help="also write both scorer reports here")
    args = ap.parse_args(argv)

    nab_dir = args.nab_dir or default_nab_dir()
    scorer = args.scorer or default_scorer()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    known = {k.value for k in Kind}
    try:
        unknown = set(kinds) - known
        if unknown or not kinds:
            raise ConfigError(f"--kinds: unknown kinds {sorted(unknown)} (known: {sorted(known)})")
        if not scorer.is_file():
            raise ConfigError(f"NAB scorer not found: {scorer} (see --scorer)")
        thresholds = load_thresholds(args.config)
        started = time.monotonic()
        corpus = load_corpus(nab_dir)
        found = {}
        for series in corpus:
            found[series.name] = detect(series, thresholds, kinds)
            write_results(series, found[series.name].scores, args.out_dir)
        detected = time.monotonic() - started
        results = args.out_dir / DETECTOR_NAME
        fixed = run_scorer(scorer, results, nab_dir, THRESHOLD)
        swept = run_scorer(scorer, results, nab_dir, None)
        total = time.monotonic() - started
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    origin = provenance()
    print_report(
        corpus,
        found,
        fixed,
        swept,
        published_table(nab_dir),
        args.config,
        thresholds,
        origin,
        (detected, total),
        windows=args.windows,
    )
    print(f"results: {results / CORPUS}/{DETECTOR_NAME}_Twitter_volume_*.csv")
    if args.json:
        report = {"fixed": fixed, "swept": swept, "provenance": origin, "config": str(args.config)}
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
