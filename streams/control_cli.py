"""``crisis-radar thresholds ...`` and ``crisis-radar plan ...``: publish live changes to
the control topic (see streams/control.py) and show what is in force."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from config.settings import Settings, load_settings
from detector.plans import PlannedEvent, parse_expect
from detector.thresholds import threshold_keys
from streams.control import (
    ALL_BRANDS,
    NOT_LIVE,
    ControlError,
    LiveConfig,
    Override,
    Plan,
    check_live_keys,
    default_actor,
    now_iso,
    parse_assignments,
    parse_instant,
    plan_key,
    plan_record,
    scope_of,
    thresholds_record,
)

CONTROL_PARTITIONS = 1


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``thresholds`` and ``plan`` on the top-level subparsers; ``common`` holds
    --brokers and --config."""
    raw = argparse.RawDescriptionHelpFormatter

    def group(name: str, help_text: str, description: str) -> Any:
        parser = commands.add_parser(
            name, help=help_text, description=description, formatter_class=raw
        )
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    actions = group(
        "thresholds",
        "show or change thresholds live, without restarting workers",
        "Live threshold changes go to the compacted control topic; every worker applies\n"
        "them within seconds, without a restart. Precedence: built-in defaults < config\n"
        "file < live '*' (every brand) < live brand. Values are validated before they are\n"
        "published. Every change is logged by the workers with who made it and when, and\n"
        "counted in crisis_radar_control_changes_total.",
    )
    show = actions.add_parser(
        "show",
        parents=[common],
        help="live overrides, or every threshold in force for one brand",
        description="Without BRAND: every live override with who set it and when.\n"
        "With BRAND: every threshold in force for the brand and where it comes from.",
        formatter_class=raw,
    )
    show.add_argument("brand", nargs="?", metavar="BRAND", help="a brand, or '*'")
    show.set_defaults(handler=cmd_thresholds_show)
    set_ = actions.add_parser(
        "set",
        parents=[common],
        help="set live thresholds of a brand ('*': every brand)",
        description="Example: crisis-radar thresholds set acme-air virality_factor=4 "
        "negativity_min_share=0.5\n"
        f"Not changeable live: {', '.join(sorted(NOT_LIVE))}.",
        formatter_class=raw,
    )
    set_.add_argument("brand", metavar="BRAND", help="brand name, or '*' (quoted) for every brand")
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    _who(set_)
    set_.set_defaults(handler=cmd_thresholds_set)
    unset = actions.add_parser(
        "unset",
        parents=[common],
        help="drop live thresholds of a brand (back to the config file)",
        formatter_class=raw,
    )
    unset.add_argument("brand", metavar="BRAND", help="brand name, or '*' (quoted)")
    unset.add_argument("keys", nargs="*", metavar="KEY", help="keys to drop (default: all)")
    _who(unset)
    unset.set_defaults(handler=cmd_thresholds_unset)

    plan_actions = group(
        "plan",
        "register expected spikes (launches, TV spots) ahead of time",
        "A planned event multiplies the brand's expected volume by --expect between --from\n"
        "and --to: only a surge well beyond the plan alerts, and alerts inside the plan\n"
        "carry data.planned. The planned surge is not learned as the brand's normal.",
    )
    add = plan_actions.add_parser(
        "add",
        parents=[common],
        help="register a planned event",
        description="Example: crisis-radar plan add acme-air --from 2026-12-01T18:00+01:00 "
        "--to 2026-12-01T22:00+01:00 --expect 3x --note 'TV spot'",
        formatter_class=raw,
    )
    add.add_argument("brand", metavar="BRAND")
    add.add_argument(
        "--from", dest="start", required=True, metavar="TIME", help="ISO-8601 with offset"
    )
    add.add_argument("--to", dest="end", required=True, metavar="TIME", help="ISO-8601 with offset")
    add.add_argument(
        "--expect", required=True, metavar="MULTIPLE", help="expected volume: 3x, 2.5 or 250%%"
    )
    add.add_argument("--note", default="", help="what is planned (shown in alerts)")
    add.add_argument("--id", dest="plan_id", help="plan id (default: from the start time)")
    _who(add, note=False)
    add.set_defaults(handler=cmd_plan_add)
    listing = plan_actions.add_parser(
        "list", parents=[common], help="planned events (ended ones only with --all)"
    )
    listing.add_argument("brand", nargs="?", metavar="BRAND")
    listing.add_argument("--all", action="store_true", help="include ended events")
    listing.set_defaults(handler=cmd_plan_list)
    remove = plan_actions.add_parser("remove", parents=[common], help="remove a planned event")
    remove.add_argument("brand", metavar="BRAND")
    remove.add_argument("plan_id", metavar="ID")
    remove.set_defaults(handler=cmd_plan_remove)


def _who(parser: argparse.ArgumentParser, note: bool = True) -> None:
    parser.add_argument("--by", help="who makes the change (default: user@host)")
    if note:
        parser.add_argument("--note", default="", help="why (logged by the workers)")


# --- Kafka side ---------------------------------------------------------------------------------


def ensure_control_topic(brokers: list[str], topic: str, timeout: float = 30.0) -> None:
    """Create the control topic (one partition, compacted) unless it exists."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=brokers,
                client_id="crisis-radar-control",
                request_timeout_ms=10_000,
            )
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise ControlError(f"cannot reach Kafka at {','.join(brokers)}: {exc}") from exc
            time.sleep(1.0)
    try:
        if topic in set(admin.list_topics()):
            return
        new = NewTopic(
            name=topic,
            num_partitions=CONTROL_PARTITIONS,
            replication_factor=1,
            topic_configs={"cleanup.policy": "compact"},
        )
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([new])
    finally:
        admin.close()


def read_control(settings: Settings, timeout: float = 30.0) -> LiveConfig:
    """Every record of the control topic, applied to the file's thresholds."""
    from kafka import KafkaConsumer, TopicPartition

    live = LiveConfig(settings.thresholds)
    ensure_control_topic(settings.broker_list, settings.control_topic, timeout)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.broker_list,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="crisis-radar-control-cli",
    )
    try:
        partitions = consumer.partitions_for_topic(settings.control_topic) or set()
        assigned = [TopicPartition(settings.control_topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise ControlError(f"could not read {settings.control_topic} in {timeout:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    try:
                        live.apply(record.key, record.value)
                    except ControlError as exc:
                        print(
                            f"warning: skipped control record {record.key!r}: {exc}",
                            file=sys.stderr,
                        )
    finally:
        consumer.close()
    return live


def publish(settings: Settings, records: list[tuple[bytes, bytes | None]]) -> None:
    from kafka import KafkaProducer

    # One record per request: the embedded broker reports correct end offsets only for
    # single-record batches, and these are rare, small writes.
    producer = KafkaProducer(
        bootstrap_servers=settings.broker_list, acks="all", batch_size=0, linger_ms=0
    )
    try:
        for key, value in records:
            producer.send(settings.control_topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close(10)


# --- commands -------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(overrides={"brokers": args.brokers, "config_file": args.config})


def cmd_thresholds_show(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    settings = _settings(args)
    live = read_control(settings)
    if args.brand is None:
        if not live.overrides:
            print("no live threshold overrides; the config file is in force", file=out)
        for scope, override in sorted(live.overrides.items()):
            note = f"  ({override.note})" if override.note else ""
            print(f"{scope}: set by {override.by} at {override.at}{note}", file=out)
            for key, value in sorted(override.values.items()):
                print(f"  {key} = {value}", file=out)
        return 0
    brand = scope_of(args.brand)
    effective = live.effective(brand)
    print(f"thresholds in force for {brand}:", file=out)
    for key in threshold_keys():
        print(f"  {key:<28} {getattr(effective, key)!s:<10} {live.source_of(brand, key)}", file=out)
    for plan in sorted(live.plans.get(brand, {}).values(), key=lambda p: p.event.start):
        print(f"  planned: {_describe_plan(plan)}", file=out)
    return 0


def cmd_thresholds_set(args: argparse.Namespace) -> int:
    settings = _settings(args)
    scope = scope_of(args.brand)
    values = parse_assignments(args.assignments)
    check_live_keys(values)
    live = read_control(settings)
    merged = {**(live.overrides[scope].values if scope in live.overrides else {}), **values}
    live.effective(scope, merged)  # refuses an impossible value before anything is published
    if scope == ALL_BRANDS:
        trial = LiveConfig(live.book, dict(live.overrides), live.plans)
        trial.overrides[scope] = Override(scope, merged, "", "")
        for brand in settings.thresholds.brands:
            trial.effective(brand)
    override = Override(scope, merged, args.by or default_actor(), now_iso(), args.note)
    publish(settings, [thresholds_record(override)])
    changed = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
    print(f"published live thresholds of {scope}: {changed} (by {override.by})", file=sys.stderr)
    return 0


def cmd_thresholds_unset(args: argparse.Namespace) -> int:
    settings = _settings(args)
    scope = scope_of(args.brand)
    live = read_control(settings)
    current = dict(live.overrides[scope].values) if scope in live.overrides else {}
    unknown = [k for k in args.keys if k not in current]
    if unknown:
        raise ControlError(f"{scope} has no live value for {', '.join(unknown)}")
    remaining = {k: v for k, v in current.items() if args.keys and k not in args.keys}
    key = f"thresholds/{scope}".encode()
    if remaining:
        override = Override(scope, remaining, args.by or default_actor(), now_iso(), args.note)
        publish(settings, [thresholds_record(override)])
    else:
        publish(settings, [(key, None)])
    print(f"dropped live thresholds of {scope}: {', '.join(args.keys) or 'all'}", file=sys.stderr)
    return 0


def cmd_plan_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    brand = scope_of(args.brand)
    if brand == ALL_BRANDS:
        raise ControlError("a planned event is for one brand")
    start = parse_instant(args.start, "--from")
    end = parse_instant(args.end, "--to")
    plan_id = args.plan_id or datetime.fromtimestamp(start, UTC).strftime("%Y%m%dT%H%MZ")
    event = PlannedEvent(plan_id, start, end, parse_expect(args.expect), args.note)
    plan = Plan(brand, event, args.by or default_actor(), now_iso())
    live = read_control(settings)
    if plan_id in live.plans.get(brand, {}):
        print(f"replacing planned event {brand}/{plan_id}", file=sys.stderr)
    publish(settings, [plan_record(plan)])
    print(f"published planned event {_describe_plan(plan)}", file=sys.stderr)
    return 0


def cmd_plan_list(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    live = read_control(_settings(args))
    now = time.time()
    brands = [scope_of(args.brand)] if args.brand else sorted(live.plans)
    shown = 0
    for brand in brands:
        for plan in sorted(live.plans.get(brand, {}).values(), key=lambda p: p.event.start):
            if plan.event.end <= now and not args.all:
                continue
            state = (
                "running"
                if plan.event.covers(now)
                else ("ended" if plan.event.end <= now else "upcoming")
            )
            print(f"{state:<9} {_describe_plan(plan)}", file=out)
            shown += 1
    if not shown:
        print("no planned events", file=out)
    return 0


def cmd_plan_remove(args: argparse.Namespace) -> int:
    settings = _settings(args)
    brand = scope_of(args.brand)
    live = read_control(settings)
    if args.plan_id not in live.plans.get(brand, {}):
        raise ControlError(f"no planned event {brand}/{args.plan_id}")
    publish(settings, [(plan_key(brand, args.plan_id), None)])
    print(f"removed planned event {brand}/{args.plan_id}", file=sys.stderr)
    return 0


def _describe_plan(plan: Plan) -> str:
    e = plan.event
    note = f" - {e.note}" if e.note else ""
    return (
        f"{plan.brand}/{e.id}: {now_iso(e.start)} to {now_iso(e.end)}, expect {e.expect:g}x"
        f"{note} (by {plan.by} at {plan.at})"
    )
