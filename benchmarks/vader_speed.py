"""``python -m benchmarks.vader_speed``: the valence engine with VADER's rules against
vaderSentiment, equality and speed.

1. **Equality.** Every text of the data sets under ``--datasets`` (default
   ``<repo>/../shared/datasets``, then ``/work/shared/datasets``; not part of this repository):

   - ``airline-tweets/Tweets.csv``: the ``text`` column (14,640 tweets);
   - ``vader-groundtruth/*_GroundTruth.txt``: the third tab-separated column (tweets, NYT
     editorial snippets, Amazon review snippets: 13,098 texts);
   - ``germeval2017/*.tsv``: the second tab-separated column (2,590 German texts);

   plus ``--generated N`` short posts from the throughput benchmark's corpus generator
   (``benchmarks.throughput.generate``, the mention stream the worker is measured on). For
   each text, ``ValenceScorer(vader_rules()).polarity_scores`` must equal
   ``SentimentIntensityAnalyzer().polarity_scores`` bit for bit (all four keys, the sign of a
   zero included) and ``ValenceScorer.compound`` its compound. The first differences are
   printed and the exit status is 1 if there is any.

2. **Speed.** The scorers run over the same texts in the same process, one corpus at a time
   (the data sets, the generated posts), ``--repeat`` passes each. Printed: texts per second
   of the reference ``polarity_scores``, of the engine's ``polarity_scores`` and of its
   ``compound`` (what ``detector.sentiment.VaderScorer`` calls), best pass and ratio to the
   reference; for the engine also its first pass, when its token cache starts empty. Then
   the rate of the full worker scorer (``load_settings().sentiment.scorer()``, the shipped
   configuration: brand masking, language identification, the English or German scorer with
   the brand-register rules) on the same texts, through ``score_text(text, brand, lang)`` as
   the worker calls it (the data sets' texts without brand or language; the generated posts
   with theirs), a new scorer for each pass so that its score cache starts empty.

Run it with ``nice`` on a shared machine; about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from config.settings import load_settings
from detector.english import vader_rules
from detector.valence import ValenceScorer, clear_token_caches

REPO = Path(__file__).resolve().parent.parent
DATASET_DIRS = (REPO.parent / "shared" / "datasets", Path("/work/shared/datasets"))
PROGRESS_EVERY = 10_000


@dataclass
class Corpus:
    name: str
    texts: list[str]
    # The brand and language of each text, as the worker gets them (None: not given).
    brands: list[str | None] = field(default_factory=list)
    langs: list[str | None] = field(default_factory=list)

    def mentions(self) -> list[tuple[str, str | None, str | None]]:
        n = len(self.texts)
        brands = self.brands or [None] * n
        langs = self.langs or [None] * n
        return list(zip(self.texts, brands, langs, strict=True))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def engine() -> ValenceScorer:
    """The valence engine with VADER's rules, its token caches emptied."""
    clear_token_caches()
    return ValenceScorer(vader_rules())


def _tsv_column(path: Path, column: int) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8", newline="") as f:
        for line in f:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) > column:
                texts.append(parts[column])
    return texts


def read_datasets(root: Path) -> list[Corpus]:
    """The texts of every data set file under ``root`` whose layout is known."""
    corpora: list[Corpus] = []
    airline = root / "airline-tweets" / "Tweets.csv"
    if airline.exists():
        with airline.open(encoding="utf-8", newline="") as f:
            corpora.append(
                Corpus(str(airline.relative_to(root)), [r["text"] for r in csv.DictReader(f)])
            )
    for path in sorted((root / "vader-groundtruth").glob("*_GroundTruth.txt")):
        # ID <tab> mean rating <tab> text
        corpora.append(Corpus(str(path.relative_to(root)), _tsv_column(path, 2)))
    for path in sorted((root / "germeval2017").glob("*.tsv")):
        # ID (source URL) <tab> text <tab> relevance <tab> sentiment [<tab> aspects]
        corpora.append(Corpus(str(path.relative_to(root)), _tsv_column(path, 1)))
    return corpora


def generated(n: int) -> Corpus | None:
    """``n`` posts of the throughput benchmark's corpus (30 % reposts), or None if that
    benchmark cannot be imported here."""
    try:
        from benchmarks.throughput import generate
    except ImportError as exc:  # its Kafka and Prometheus imports
        log(f"generated corpus skipped: {exc}")
        return None
    corpus = generate(n, 200, seed=7, start=1_700_000_000.0, span_seconds=n / 5000)
    return Corpus(
        f"generated stream ({n:,} posts, benchmarks.throughput)",
        corpus.texts,
        [e["brand"] for e in corpus.events],
        [e.get("lang") for e in corpus.events],
    )


def _bits(scores: dict[str, float]) -> list[tuple[str, str, str]]:
    return [(k, type(v).__name__, float(v).hex()) for k, v in scores.items()]


def compare(corpora: Sequence[Corpus], show: int) -> int:
    """Compare every text; print the first ``show`` differences; return their number."""
    reference = SentimentIntensityAnalyzer()
    ours = engine()
    total = sum(len(c.texts) for c in corpora)
    done = 0
    mismatches = 0
    for corpus in corpora:
        differ = 0
        for text in corpus.texts:
            expected = reference.polarity_scores(text)
            got = ours.polarity_scores(text)
            compound = ours.compound(text)
            if _bits(got) != _bits(expected) or compound != expected["compound"]:
                differ += 1
                if mismatches + differ <= show:
                    print(f"  DIFFERENT {text!r}\n    vader:  {expected}\n    engine: {got}")
                    print(f"    engine compound: {compound}")
            done += 1
            if done % PROGRESS_EVERY == 0:
                log(f"  compared {done:,} / {total:,}")
        mismatches += differ
        print(f"  {corpus.name}: {len(corpus.texts):,} texts, {differ} different")
    print(f"compared {total:,} texts: {mismatches} different")
    return mismatches


def rate(
    make: Callable[[], Callable[[str], object]], texts: Sequence[str], repeat: int
) -> tuple[float, float]:
    """Texts per second of the first pass and the best of ``repeat`` passes, each pass with
    the scorer ``make`` returns (called before each pass, outside the timing)."""
    rates: list[float] = []
    score = make()
    for k in range(max(1, repeat)):
        if k:
            score = make()
        start = time.perf_counter()
        for text in texts:
            score(text)
        rates.append(len(texts) / (time.perf_counter() - start))
    return rates[0], max(rates)


def worker_rate(corpus: Corpus, repeat: int) -> float:
    """Texts per second of the worker's scorer, best of ``repeat`` passes, a new scorer (with
    an empty score cache, warm token caches) for each pass."""
    mentions = corpus.mentions()
    settings = load_settings(environ={})
    best = 0.0
    for _ in range(max(1, repeat)):
        scorer = settings.sentiment.scorer()
        score_text = scorer.score_text
        start = time.perf_counter()
        for text, brand, lang in mentions:
            score_text(text, brand, lang)
        best = max(best, len(mentions) / (time.perf_counter() - start))
    return best


def time_corpus(corpus: Corpus, repeat: int) -> None:
    texts = corpus.texts
    mean_chars = sum(map(len, texts)) / max(1, len(texts))
    log(f"  timing {corpus.name} ...")
    reference = SentimentIntensityAnalyzer()
    _, ref = rate(lambda: reference.polarity_scores, texts, repeat)
    # The first pass starts with empty token caches, the others keep them.
    shared = engine()
    cold_scores, fast_scores = rate(lambda: shared.polarity_scores, texts, repeat)
    shared = engine()
    cold_compound, fast_compound = rate(lambda: shared.compound, texts, repeat)
    worker = worker_rate(corpus, repeat)
    print(f"  {corpus.name}: {len(texts):,} texts, {mean_chars:.0f} characters on average")
    print(f"    {'':40}{'best pass':>12}{'first pass':>22}")
    print(f"    {'vaderSentiment polarity_scores':40}{ref:>12,.0f} texts/s")
    for name, cold, best in (
        ("valence engine polarity_scores", cold_scores, fast_scores),
        ("valence engine compound", cold_compound, fast_compound),
    ):
        print(f"    {name:40}{best:>12,.0f} {best / ref:5.2f}x{cold:>12,.0f} {cold / ref:5.2f}x")
    print(f"    {'worker scorer score_text':40}{worker:>12,.0f} {worker / ref:5.2f}x")
    print("    (first pass: the engine's token cache starts empty)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.vader_speed",
        description="The valence engine with VADER's rules against vaderSentiment 3.3.2: equal "
        "scores on every text of the data sets and a generated stream, then texts per second "
        "of both and of the worker's scorer.",
    )
    parser.add_argument(
        "--datasets",
        type=Path,
        default=None,
        help="directory holding airline-tweets/, vader-groundtruth/ and germeval2017/ "
        "(default: <repo>/../shared/datasets, then /work/shared/datasets)",
    )
    parser.add_argument(
        "--generated",
        type=int,
        default=50_000,
        metavar="N",
        help="posts from the throughput benchmark's generator (default 50000; 0 skips them)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed passes per scorer, best kept (default 3)"
    )
    parser.add_argument(
        "--show", type=int, default=5, help="differences printed in full (default 5)"
    )
    parser.add_argument("--no-timing", action="store_true", help="only check equality")
    args = parser.parse_args(argv)

    root = args.datasets
    if root is None:
        root = next((d for d in DATASET_DIRS if d.is_dir()), DATASET_DIRS[0])
    corpora = read_datasets(root) if root.is_dir() else []
    if not corpora:
        log(f"no data sets found under {root}")
    stream = generated(args.generated) if args.generated > 0 else None
    everything = [*corpora, *([stream] if stream else [])]
    if not everything:
        log("nothing to compare")
        return 2

    print(f"== equality (data sets from {root})")
    mismatches = compare(everything, args.show)

    if not args.no_timing:
        print(f"== speed (best of {args.repeat} passes; one process, one core)")
        if corpora:
            time_corpus(Corpus("data sets", [t for c in corpora for t in c.texts]), args.repeat)
        if stream:
            time_corpus(stream, args.repeat)
    if mismatches:
        print(f"FAILED: {mismatches} texts score differently")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
