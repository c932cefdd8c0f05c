"""Example consumer of crisis-radar alert events (the ``crisis-alerts`` topic).

What a downstream service has to do, in about a hundred lines:

1. consume the alert topic with its own consumer group (kafka-python here);
2. validate each event against the v1 contract, ``config/alert-v1.schema.json``
   (CloudEvents 1.0 structured JSON); an event that does not validate is reported and skipped;
3. drop duplicates by (``source``, ``id``): delivery is at-least-once and a redelivered event
   is byte-for-byte the same; all events of one episode share ``data.alert_id`` and
   ``data.sequence`` counts them (0 = opened);
4. act on the event (here: print one line), then commit the offsets.

Run it against the embedded broker of ``crisis-radar up`` (its first line names the port)::

    pip install kafka-python jsonschema rfc3339-validator   # or: pip install -e '.[test]'
    python examples/consume_alerts.py --brokers 127.0.0.1:PORT --from-beginning

Options: ``--topic`` (default ``crisis-alerts``), ``--group`` (default
``crisis-alerts-example``), ``--schema`` (default: the schema shipped in ``config/``).
The set of seen (source, id) pairs is kept in memory and bounded; a real service would keep
it in its own store (or make its action idempotent) to survive restarts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

DEFAULT_SCHEMA = Path(__file__).resolve().parents[1] / "config" / "alert-v1.schema.json"


def load_validator(schema_path: Path = DEFAULT_SCHEMA) -> Any:
    """A JSON Schema validator for alert events, checking formats (date-time, uuid)."""
    import jsonschema

    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


class AlertPrinter:
    """Validates, deduplicates and formats alert events, one raw record at a time."""

    def __init__(self, validator: Any, remember: int = 100_000) -> None:
        self.validator = validator
        self.remember = remember
        self.seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.printed = self.duplicates = self.invalid = 0

    def handle(self, raw: bytes) -> str | None:
        """The line to print for this record, or None (invalid or a duplicate)."""
        try:
            event = json.loads(raw)
        except ValueError as exc:
            self.invalid += 1
            print(f"skipping a record that is not JSON: {exc}", file=sys.stderr)
            return None
        errors = sorted(self.validator.iter_errors(event), key=lambda e: list(e.path))
        if errors:
            self.invalid += 1
            where = "/".join(str(p) for p in errors[0].path) or "(event)"
            print(f"skipping an invalid alert event: {where}: {errors[0].message}", file=sys.stderr)
            return None
        key = (event["source"], event["id"])
        if key in self.seen:
            self.duplicates += 1
            return None
        self.seen[key] = None
        if len(self.seen) > self.remember:
            self.seen.popitem(last=False)
        self.printed += 1
        return format_line(event)


def format_line(event: dict[str, Any]) -> str:
    data = event["data"]
    observed, expected = data["observed"], data["expected"]
    line = (
        f"{event['time']} {data['phase']:<9} {data['kind']:<10} {data['brand']:<16} "
        f"{data['severity']:<8} count {observed['count']:.0f} vs {expected['count']:.1f}"
    )
    if "negative_share" in observed:
        line += (
            f", negative {observed['negative_share']:.0%} "
            f"vs {expected.get('negative_share', 0):.0%}"
        )
    return f"{line}  alert {data['alert_id']} #{data['sequence']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="127.0.0.1:9092", help="HOST:PORT[,HOST:PORT]")
    parser.add_argument("--topic", default="crisis-alerts")
    parser.add_argument("--group", default="crisis-alerts-example")
    parser.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA)
    parser.add_argument(
        "--from-beginning", action="store_true", help="a new group starts at the oldest event"
    )
    args = parser.parse_args(argv)

    from kafka import KafkaConsumer

    printer = AlertPrinter(load_validator(args.schema))
    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.brokers.split(","),
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
    )
    try:
        while True:
            batch = consumer.poll(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    line = printer.handle(record.value)
                    if line is not None:
                        print(line, flush=True)
            if batch:
                consumer.commit()  # only after every record of the batch was handled
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        print(
            f"printed {printer.printed}, duplicates {printer.duplicates}, "
            f"invalid {printer.invalid}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
