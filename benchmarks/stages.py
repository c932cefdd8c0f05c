"""``python -m benchmarks.stages``: what each stage of a worker's per-mention path costs in
one process, without Kafka, Faust or asyncio.

The throughput benchmark's corpus (``benchmarks.throughput.generate``: realistic texts, 30 %
reposts, 200 brands with warm day-old states) goes through the functions the two agents
call, in batches of ``--batch`` mentions as the agents take them, and each stage is timed
separately:

- ``parse``: ``detector.model.parse_mention`` of the input record's bytes (UTF-8, JSON,
  validation, the ``Mention``);
- ``score``: ``detector.sentiment.score`` with the worker's scorer (masking, language, the
  English scorer with the brand-register rules, the cache of distinct texts), new and empty
  at the start as in a fresh worker;
- ``to wire``, ``pack``, ``unpack``, ``from wire``: the scored mention's way through the
  scored topic (``detector.sentiment.to_wire``, ``streams.scored.pack`` and ``unpack``,
  ``from_wire``), without the broker;
- ``step``: ``detector.core.step`` on the brand's state, in place, as the detect agent
  applies it.

Printed: microseconds per mention of each stage and of all of them, the bare VADER loop
over the same texts (``polarity_scores``, as the throughput benchmark measures it), and
what one worker could at best reach if Kafka, Faust and asyncio cost nothing: the ratio of
that rate to the VADER loop's. The worker's own figures (``benchmarks.throughput``) add the
broker round trips, the event loop and the metrics to these.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Sequence

from benchmarks.throughput import GOAL_VADER_RATIO, brand_rates, generate, vader_loop, warm_states
from config.settings import load_settings
from detector.core import Position, step
from detector.model import Rejection, parse_mention
from detector.sentiment import from_wire, score, to_wire
from detector.state import BrandState
from streams import scored as scored_batch

STAGES = ("parse", "score", "to wire", "pack", "unpack", "from wire", "step")
START = 1_764_000_000.0  # 2025-11-24 16:00 UTC, a bucket boundary


def measure(
    mentions: int, brands: int, batch: int, partitions: int, seed: int
) -> tuple[dict[str, float], float]:
    """(seconds per stage, seconds of the VADER loop) over ``mentions`` mentions."""
    settings = load_settings({})
    corpus = generate(mentions, brands, seed=seed, start=START, span_seconds=mentions / 5000)
    records = [value for _, value in corpus.records()]
    compounds: dict[str, float] = {}
    vader_loop(list(dict.fromkeys(corpus.texts)), compounds)
    rates = brand_rates(corpus, compounds, 60)
    states, _ = warm_states(rates, START, 1440, seed)
    live = {brand: BrandState.from_dict(value) for brand, value in states.items()}

    vader = vader_loop(corpus.texts)
    book = settings.thresholds
    scorer = settings.sentiment.scorer()
    seconds: dict[str, float] = defaultdict(float)
    clock = time.perf_counter
    for first in range(0, len(records), batch):
        now = time.time()
        t0 = clock()
        parsed = [
            parse_mention(r, now=now, limits=settings.limits)
            for r in records[first : first + batch]
        ]
        t1 = clock()
        scored = [score(p, scorer) for p in parsed if not isinstance(p, Rejection)]
        t2 = clock()
        wires = []
        for offset, one in enumerate(scored, start=first):
            wire = to_wire(one)
            wire["ingested_at"] = now
            wire["source_position"] = [0, offset]
            wires.append((one.mention.brand, wire))
        t3 = clock()
        packed = scored_batch.pack(wires, partitions)
        t4 = clock()
        values = [value for _, record in packed for value in scored_batch.unpack(record)]
        t5 = clock()
        back = [from_wire(value) for value in values]
        t6 = clock()
        for value, one in zip(values, back, strict=True):
            brand = one.mention.brand
            position = Position(*value["source_position"])
            live[brand] = step(
                live.get(brand), one, book.for_brand(brand), position, owned=True
            ).state
        t7 = clock()
        for name, took in zip(
            STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6), strict=True
        ):
            seconds[name] += took
    return dict(seconds), vader


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stages",
        description=__doc__.split("\n\n")[0].replace("``", ""),
    )
    parser.add_argument("--mentions", type=int, default=50_000, help="default: 50000")
    parser.add_argument("--brands", type=int, default=200, help="default: 200")
    parser.add_argument(
        "--batch", type=int, default=500, help="mentions per batch, as the agents (500)"
    )
    parser.add_argument("--partitions", type=int, default=4, help="scored partitions (4)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.mentions < 1 or args.brands < 1 or args.batch < 1 or args.partitions < 1:
        parser.error("--mentions, --brands, --batch and --partitions must be >= 1")
    print(f"{args.mentions:,} mentions of {args.brands} warm brands (building the states) ...")
    seconds, vader = measure(args.mentions, args.brands, args.batch, args.partitions, args.seed)
    n = args.mentions
    total = sum(seconds.values())
    for name in STAGES:
        share = seconds[name] / total
        print(f"  {name:<10} {seconds[name] / n * 1e6:7.1f} us per mention  {share:6.1%}")
    print(f"  {'all':<10} {total / n * 1e6:7.1f} us per mention: {n / total:,.0f} mentions/s")
    print(f"bare VADER loop (polarity_scores) {n / vader:,.0f} texts/s, {vader / n * 1e6:.1f} us")
    print(
        f"these stages alone / VADER loop: {vader / total:.2f} (the goal for the whole "
        f"worker is >= {GOAL_VADER_RATIO}: {vader / n / GOAL_VADER_RATIO * 1e6:.1f} us per "
        "mention in all)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
