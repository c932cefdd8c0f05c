"""The ``crisis-radar`` command: up, worker, simulate, backtest, report, forward,
thresholds, plan."""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from config.settings import Settings, describe, load_settings
from detector.errors import ConfigError
from streams.kafka_util import (
    EMBEDDED_ENV,
    EmbeddedBroker,
    ensure_topics,
    free_port,
    port_open,
    stop_process,
    watch_brokers,
)
from streams.simulator import MentionSimulator

log = logging.getLogger("crisis_radar")

DESCRIPTION = """\
crisis-radar watches brand mentions on Kafka and raises crisis alerts when a brand's
mention volume (virality) or negativity rises far above its normal level."""

SETTINGS_HELP = "runtime settings (environment variables, defaults):\n" + "\n".join(
    f"  {name:<42} {default}" for name, default, _ in describe()
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"crisis-radar: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crisis-radar",
        description=DESCRIPTION,
        epilog=SETTINGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run everything locally: broker, worker, simulated mentions; show alerts",
        description=(
            "Start the embedded Kafka-protocol broker (Tansu) on a free loopback port, create\n"
            "the topics, start one worker and a simulator that streams mentions of several\n"
            "brands in accelerated event time with one scheduled crisis, and print alerts as\n"
            "they arrive. Ctrl-C stops everything it started."
        ),
        epilog=SETTINGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "--brokers",
        metavar="HOST:PORT[,HOST:PORT]",
        help="use this Kafka instead of starting the embedded broker",
    )
    up.add_argument(
        "--for",
        dest="duration",
        type=_positive_float,
        metavar="SECONDS",
        help="stop by itself after this many seconds, print a summary, exit 0",
    )
    up.add_argument(
        "--alerts-file",
        type=Path,
        metavar="PATH",
        help="also append each alert event to PATH as one JSON line",
    )
    up.add_argument(
        "--speed",
        type=_positive_float,
        default=60.0,
        help="simulated event-seconds per wall-clock second (default: 60)",
    )
    up.add_argument("--seed", type=int, default=7, help="simulator seed (default: 7)")
    up.add_argument(
        "--web-port",
        type=int,
        metavar="PORT",
        help="worker web port for /metrics (default: 6066, or a free one if taken)",
    )
    up.add_argument("--config", metavar="FILE", help="detection settings YAML file")
    up.add_argument(
        "--run-dir",
        type=Path,
        default=Path(".crisis-radar-run"),
        help="where logs and worker data go (default: .crisis-radar-run)",
    )
    up.set_defaults(handler=cmd_up)

    worker = commands.add_parser(
        "worker",
        help="run the stream worker against configured brokers (the production path)",
        description="Run one Faust worker: consume mentions, detect, emit alerts, serve /metrics.",
        epilog=SETTINGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--brokers",
        metavar="HOST:PORT[,HOST:PORT]",
        help="Kafka bootstrap servers (env CRISIS_RADAR_BROKERS)",
    )
    worker.add_argument(
        "--web-port",
        type=int,
        metavar="PORT",
        help="port of the web server with /metrics (env CRISIS_RADAR_WEB_PORT)",
    )
    worker.add_argument(
        "--config",
        metavar="FILE",
        help="detection settings YAML file (env CRISIS_RADAR_CONFIG_FILE)",
    )
    worker.add_argument(
        "--no-create-topics",
        action="store_true",
        help="do not create missing input/output topics at start-up",
    )
    worker.set_defaults(handler=cmd_worker)

    simulate = commands.add_parser(
        "simulate",
        help="write a simulated mention stream to Kafka or to a JSONL file",
        description=(
            "Generate realistic mentions of several brands (daily rhythm, noise, sentiment mix,\n"
            "reposts) with a scheduled crisis, to Kafka (--brokers) or a file (--out)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = simulate.add_mutually_exclusive_group(required=True)
    target.add_argument("--brokers", metavar="HOST:PORT", help="produce to this Kafka")
    target.add_argument("--out", type=Path, metavar="FILE.jsonl", help="write to this file")
    simulate.add_argument(
        "--minutes", type=int, default=180, help="event-minutes to generate (default: 180)"
    )
    simulate.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="event-seconds per wall second when producing; 0 = as fast as possible (default: 0)",
    )
    simulate.add_argument("--seed", type=int, default=7, help="seed (default: 7)")
    simulate.add_argument(
        "--start",
        metavar="ISO-8601",
        help="event time of the first minute (default: now - minutes)",
    )
    simulate.add_argument("--topic", help="topic to produce to (default: the mentions topic)")
    simulate.set_defaults(handler=cmd_simulate)

    backtest = commands.add_parser(
        "backtest",
        help="replay a JSONL file of mentions through the detector offline",
        description=(
            "Replay mentions (one JSON object per line, the input contract) through exactly\n"
            "the detection core the worker uses, write every alert event as one JSON line,\n"
            "and print a summary per brand. With --labels, also print recall, precision,\n"
            "median time to detect and false alerts per brand-week."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backtest.add_argument("input", type=Path, metavar="INPUT.jsonl", help="mentions to replay")
    backtest.add_argument(
        "--out", type=Path, required=True, metavar="ALERTS.jsonl", help="alert events written here"
    )
    backtest.add_argument("--config", metavar="FILE", help="detection settings YAML file")
    backtest.add_argument(
        "--labels",
        type=Path,
        metavar="LABELS.json",
        help='crisis windows, {"BRAND": [["start ISO-8601", "end ISO-8601"], ...]}',
    )
    backtest.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    backtest.set_defaults(handler=cmd_backtest)
    _add_report_and_forward(commands)
    from streams import control_cli

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--brokers", metavar="HOST:PORT", help="Kafka bootstrap servers (default: settings)"
    )
    common.add_argument("--config", metavar="FILE", help="detection settings YAML file")
    control_cli.add_commands(commands, common)
    return parser


def _add_report_and_forward(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="write a self-contained HTML incident report for one alert episode",
        description=(
            "Write an HTML page for one alert episode: timeline (onset, detection,\n"
            "escalations, peak, resolution), a chart of volume and negative share against\n"
            "the baseline with thresholds, sample mentions, top terms, time to detect.\n"
            "The episode is found in an alert file (--alerts, e.g. a backtest's output) or\n"
            "on the alert topic (--brokers). With --mentions, per-bucket values are\n"
            "recomputed from the mentions with the detector's parsing and scoring."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("alert_id", metavar="ALERT_ID", help="data.alert_id, or a unique prefix")
    where = report.add_mutually_exclusive_group(required=True)
    where.add_argument("--alerts", type=Path, metavar="ALERTS.jsonl", help="alert events file")
    where.add_argument("--brokers", metavar="HOST:PORT", help="read the alert topic instead")
    report.add_argument("--topic", help="alert topic (default: the configured alerts topic)")
    report.add_argument(
        "--mentions", type=Path, metavar="MENTIONS.jsonl", help="mentions of the period"
    )
    report.add_argument(
        "--out", type=Path, required=True, metavar="REPORT.html", help="page written here"
    )
    report.set_defaults(handler=cmd_report)

    forward = commands.add_parser(
        "forward",
        help="post alert events to a webhook (Slack-compatible), a separate consumer",
        description=(
            "Consume the alert topic with its own consumer group and post each event to a\n"
            'webhook as {"text": ...}, retrying with exponential backoff; after the last\n'
            "attempt the event is logged as failed and skipped. Offsets are committed after\n"
            "handling. Detection never waits for it."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    forward.add_argument("--brokers", metavar="HOST:PORT", help="Kafka bootstrap servers")
    forward.add_argument("--webhook", required=True, metavar="URL", help="URL to POST to")
    forward.add_argument(
        "--group", default="crisis-radar-forwarder", help="consumer group (default: %(default)s)"
    )
    forward.add_argument("--topic", help="alert topic (default: the configured alerts topic)")
    forward.add_argument("--attempts", type=int, default=5, help="attempts per event (default: 5)")
    forward.add_argument(
        "--rebalance-timeout",
        type=_positive_float,
        default=300.0,
        metavar="SECONDS",
        help="consumer-group rebalance timeout, also the longest a batch may take "
        "(default: %(default)s; the embedded broker joins a group only after it, so use "
        "10 there)",
    )
    forward.add_argument(
        "--from-beginning",
        action="store_true",
        help="a new group starts at the oldest event instead of the next one",
    )
    forward.set_defaults(handler=cmd_forward)


def cmd_report(args: argparse.Namespace) -> int:
    from streams.report import write_report

    settings = _settings(args) if args.brokers or args.mentions else None
    episode = write_report(
        args.alert_id,
        args.out,
        alerts=args.alerts,
        brokers=settings.broker_list if settings else None,
        topic=args.topic or (settings.alerts_topic if settings else "crisis-alerts"),
        mentions=args.mentions,
        scorer=settings.sentiment.scorer() if settings and args.mentions else None,
    )
    print(
        f"wrote {args.out}: {episode.kind} alert {episode.alert_id} for {episode.brand}, "
        f"{len(episode.events)} events",
        file=sys.stderr,
    )
    return 0


def cmd_forward(args: argparse.Namespace) -> int:
    from streams.forward import Forwarder, RetryPolicy, run_forwarder

    if args.attempts < 1:
        raise ConfigError("--attempts must be >= 1")
    settings = _settings(args)
    forwarder = Forwarder(args.webhook, RetryPolicy(attempts=args.attempts))
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # close the consumer cleanly
    run_forwarder(
        settings.broker_list,
        args.topic or settings.alerts_topic,
        forwarder,
        args.group,
        from_beginning=args.from_beginning,
        rebalance_timeout=args.rebalance_timeout,
    )
    return 0


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {
        "brokers": getattr(args, "brokers", None),
        "web_port": getattr(args, "web_port", None),
        "config_file": getattr(args, "config", None),
        **extra,
    }
    return load_settings(overrides=overrides)


def topic_plan(settings: Settings) -> dict[str, int]:
    return {
        settings.mentions_topic: settings.partitions,
        settings.alerts_topic: settings.partitions,
        settings.dead_letter_topic: settings.partitions,
    }


# --- worker -------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not args.no_create_topics:
        from streams.control_cli import ensure_control_topic

        # Waits for a broker to answer (for ever), saying so in the log meanwhile.
        ensure_topics(settings.broker_list, topic_plan(settings), timeout=None)
        ensure_control_topic(settings.broker_list, settings.control_topic, timeout=120)
    import faust  # imported late: `crisis-radar --help` stays fast

    from streams.app import create_app

    radar = create_app(settings)
    watch_brokers(radar.app, settings.broker_list)
    log.info(
        "worker %s: brokers %s, metrics on http://%s:%s/metrics",
        settings.app_id,
        settings.brokers,
        settings.web_host,
        settings.web_port,
    )
    worker = faust.Worker(radar.app, loglevel=settings.log_level.upper())
    worker.execute_from_commandline()
    return 0


# --- simulate -----------------------------------------------------------------------------


class Pacer:
    """Paces event time against wall time: ``speed`` event-seconds per wall second until
    event time catches up with the wall clock, then real time."""

    def __init__(self, first_event_time: float, speed: float) -> None:
        self.first = first_event_time
        self.speed = speed
        self.wall_start = time.time()

    def delay(self, event_time: float) -> float:
        if self.speed <= 0:
            return 0.0
        now = time.time()
        due = self.wall_start + (event_time - self.first) / self.speed
        return max(0.0, max(due, event_time) - now)


def produce_stream(
    brokers: list[str],
    topic: str,
    simulator: MentionSimulator,
    minutes: int | None,
    speed: float,
    stop: threading.Event,
    counter: collections.Counter[str],
) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=brokers, linger_ms=20, acks=1)
    pacer = Pacer(simulator.start_time, speed)
    index = 0
    try:
        while not stop.is_set() and (minutes is None or index < minutes):
            wait = pacer.delay(simulator.start_time + 60.0 * index)
            if stop.wait(wait):
                break
            for event in simulator.minute(index):
                producer.send(topic, key=event["brand"].encode(), value=json.dumps(event).encode())
                counter["mentions"] += 1
            counter["event_minutes"] = index + 1
            index += 1
        producer.flush(30)
    finally:
        producer.close(10)


def cmd_simulate(args: argparse.Namespace) -> int:
    start = (
        datetime.fromisoformat(args.start).timestamp()
        if args.start
        else time.time() - 60.0 * args.minutes
    )
    simulator = MentionSimulator(start_time=start, seed=args.seed)
    if args.out is not None:
        written = 0
        with args.out.open("w", encoding="utf-8") as out:
            for index in range(args.minutes):
                for event in simulator.minute(index):
                    out.write(json.dumps(event) + "\n")
                    written += 1
                if (index + 1) % 60 == 0 or index + 1 == args.minutes:
                    print(
                        f"\r{index + 1}/{args.minutes} event-minutes, {written} mentions",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
        print(f"\nwrote {written} mentions to {args.out}", file=sys.stderr)
        return 0
    settings = _settings(args)
    topic = args.topic or settings.mentions_topic
    ensure_topics(settings.broker_list, {topic: settings.partitions})
    counter: collections.Counter[str] = collections.Counter()
    produce_stream(
        settings.broker_list, topic, simulator, args.minutes, args.speed, threading.Event(), counter
    )
    print(f"produced {counter['mentions']} mentions to {topic}", file=sys.stderr)
    return 0


# --- backtest -----------------------------------------------------------------------------


def cmd_backtest(args: argparse.Namespace) -> int:
    from streams.backtest import run_backtest

    settings = load_settings(overrides={"config_file": args.config})
    run_backtest(args.input, args.out, settings, args.labels, progress=args.progress)
    return 0


# --- up -----------------------------------------------------------------------------------


def format_alert(event: dict[str, Any]) -> str:
    data = event.get("data", {})
    observed, expected = data.get("observed", {}), data.get("expected", {})
    kind = data.get("kind", "?")
    if kind == "negativity":
        detail = (
            f"negative share {observed.get('negative_share', 0):.0%} "
            f"vs {expected.get('negative_share', 0):.0%} normal, "
            f"{observed.get('count', 0):.0f} mentions"
        )
    elif kind == "crisis":
        detail = (
            f"{observed.get('count', 0):.0f} mentions vs {expected.get('count', 0):.1f} normal, "
            f"{observed.get('negative_share', 0):.0%} negative "
            f"vs {expected.get('negative_share', 0):.0%}"
        )
    elif kind == "silence":
        detail = (
            f"no mention for {observed.get('silent_buckets', 0)} buckets, "
            f"{expected.get('count', 0):.0f} expected"
        )
    else:
        detail = (
            f"{observed.get('count', 0):.0f} mentions vs {expected.get('count', 0):.1f} "
            f"normal (x{data.get('factor', 0):.1f})"
        )
    line = (
        f"{data.get('phase', '?').upper():<9} {kind:<10} "
        f"{data.get('brand', '?'):<12} {data.get('severity', '?'):<8} {detail}  "
        f"event time {event.get('time', '?')}  alert {data.get('alert_id', '?')[:8]}"
    )
    planned = data.get("planned")
    if isinstance(planned, dict):
        line += f"\n          inside planned event {planned.get('id')} ({planned.get('expect')}x)"
    if data.get("phase") == "opened":
        terms = ", ".join(t.get("term", "") for t in data.get("top_terms", []))
        if terms:
            line += f"\n          top terms: {terms}"
        sample = next(iter(data.get("samples", [])), {}).get("text", "")
        if sample:
            line += f'\n          e.g. "{sample[:100]}"'
    return line


def cmd_up(args: argparse.Namespace) -> int:
    run_dir: Path = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    web_port = args.web_port or (6066 if not port_open("127.0.0.1", 6066) else free_port())
    embedded = args.brokers is None
    broker: EmbeddedBroker | None = None
    worker: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    counter: collections.Counter[str] = collections.Counter()
    alerts_out: TextIO | None = None
    consumer: Any = None  # the alert topic's reader
    summary: collections.Counter[tuple[str, str, str]] = collections.Counter()
    started = time.monotonic()
    exit_code = 0

    # Ctrl-C and SIGTERM both stop everything this command started (SIGINT is set
    # explicitly: a shell starts background jobs with it ignored). Once stopping, a second
    # Ctrl-C or SIGTERM is ignored, so that it cannot cut the clean-up short and leave the
    # worker or the broker running.
    def interrupt(signum: int, frame: object) -> None:
        if not stop.is_set():
            stop.set()
            raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, interrupt)
    previous_int = signal.signal(signal.SIGINT, interrupt)
    try:
        if embedded:
            broker = EmbeddedBroker(log_path=run_dir / "broker.log").start()
            brokers = broker.address
            print(f"embedded broker (Tansu) on {brokers}, log {run_dir / 'broker.log'}")
        else:
            brokers = args.brokers
        worker_env = dict(os.environ)
        if embedded:
            worker_env.update(EMBEDDED_ENV)
        worker_env.update(
            {
                "CRISIS_RADAR_BROKERS": brokers,
                "CRISIS_RADAR_WEB_PORT": str(web_port),
                "CRISIS_RADAR_DATA_DIR": str(run_dir / "worker-data"),
            }
        )
        if args.config:
            worker_env["CRISIS_RADAR_CONFIG_FILE"] = str(Path(args.config).resolve())
        settings = load_settings(worker_env)
        ensure_topics(settings.broker_list, topic_plan(settings))
        worker_log = (run_dir / "worker.log").open("ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=worker_env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        print(f"worker started (pid {worker.pid}), log {run_dir / 'worker.log'}")
        print(f"metrics: http://127.0.0.1:{web_port}/metrics")

        lead = 3 * 86400.0
        simulator = MentionSimulator(start_time=time.time() - lead, seed=args.seed)
        producer = threading.Thread(
            target=produce_stream,
            args=(
                settings.broker_list,
                settings.mentions_topic,
                simulator,
                None,
                args.speed,
                stop,
                counter,
            ),
            name="simulator",
            daemon=True,
        )
        producer.start()
        crisis = simulator.crises[0] if simulator.crises else None
        if crisis:
            print(
                f"simulating {len(simulator.brands)} brands at {args.speed:g}x; a crisis for "
                f"{crisis.brand} starts at event-minute {crisis.start_minute:g} "
                f"(~{crisis.start_minute * 60 / args.speed:.0f} s from now)"
            )
        if args.alerts_file:
            args.alerts_file.parent.mkdir(parents=True, exist_ok=True)
            alerts_out = args.alerts_file.open("a", encoding="utf-8")

        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            settings.alerts_topic,
            bootstrap_servers=settings.broker_list,
            auto_offset_reset="latest" if not embedded else "earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=1000,
        )
        next_status = time.monotonic() + 10
        while args.duration is None or time.monotonic() - started < args.duration:
            if worker.poll() is not None:
                print(
                    f"worker exited with code {worker.returncode}; see {run_dir / 'worker.log'}",
                    file=sys.stderr,
                )
                exit_code = 1
                break
            for record in consumer.poll(timeout_ms=500).values():
                for message in record:
                    event = json.loads(message.value)
                    data = event.get("data", {})
                    summary[
                        (data.get("brand", "?"), data.get("kind", "?"), data.get("phase", "?"))
                    ] += 1
                    print(format_alert(event), flush=True)
                    if alerts_out is not None:
                        alerts_out.write(json.dumps(event, sort_keys=True) + "\n")
                        alerts_out.flush()
            if time.monotonic() >= next_status:
                next_status += 10
                print(
                    f"  ... {time.monotonic() - started:.0f} s: {counter['mentions']} mentions "
                    f"sent, event-minute {counter['event_minutes']}, "
                    f"{sum(summary.values())} alert events",
                    flush=True,
                )
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        stop.set()
        if consumer is not None:  # before the broker goes, or it logs failed reconnects
            consumer.close()
        if worker is not None:
            code = stop_process(worker, timeout=20)
            if code not in (0, -signal.SIGTERM):
                print(f"worker stopped with code {code}", file=sys.stderr)
        if broker is not None:
            broker.stop()
        if alerts_out is not None:
            alerts_out.close()
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
    print(
        f"\nsummary after {time.monotonic() - started:.0f} s: {counter['mentions']} mentions sent "
        f"over {counter['event_minutes']} event-minutes"
    )
    if not summary:
        print("  no alerts")
    for (brand, kind, phase), n in sorted(summary.items()):
        print(f"  {brand:<12} {kind:<10} {phase:<9} {n}")
    return exit_code


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
