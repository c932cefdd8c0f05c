"""`crisis-radar up`, the main job, run as a user runs it: a real broker, worker and
simulator in child processes, stopped by `--for`, leaving no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CRISIS_BRAND = "acme-air"


def _processes_mentioning(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            found.append(int(entry.name))
    return found


def test_up_alerts_on_the_crisis_brand_only_and_cleans_up(tmp_path: Path) -> None:
    alerts_file = tmp_path / "alerts.jsonl"
    run_dir = tmp_path / "run"
    # 240 event-seconds per second: the crisis at event-minute 45 starts ~11 s in.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "up",
            "--for",
            "70",
            "--speed",
            "240",
            "--alerts-file",
            str(alerts_file),
            "--run-dir",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ},
        check=False,
    )
    output = result.stdout + result.stderr
    worker_log = run_dir / "worker.log"
    context = f"output:\n{output[-3000:]}\nworker log tail:\n" + (
        worker_log.read_text(errors="replace")[-3000:] if worker_log.exists() else "(none)"
    )
    assert result.returncode == 0, context
    assert "summary after" in result.stdout, context

    events = [json.loads(line) for line in alerts_file.read_text().splitlines()]
    opened = {
        (e["data"]["brand"], e["data"]["kind"]) for e in events if e["data"]["phase"] == "opened"
    }
    assert (CRISIS_BRAND, "virality") in opened, context
    assert (CRISIS_BRAND, "negativity") in opened, context
    assert {e["data"]["brand"] for e in events} == {CRISIS_BRAND}, context

    # Nothing it started survives: not the worker, not the broker.
    match = re.search(r"embedded broker \(Tansu\) on (127\.0\.0\.1:\d+)", result.stdout)
    assert match, context
    assert _processes_mentioning(f"tcp://{match.group(1)}") == []
    assert _processes_mentioning(f"CRISIS_RADAR_DATA_DIR={run_dir / 'worker-data'}") == []


@pytest.mark.parametrize(
    "signals",
    [
        (signal.SIGINT,),
        # Impatience (a second Ctrl-C) or a supervisor's SIGTERM after it must not cut the
        # clean-up short and leave the broker running.
        (signal.SIGINT, signal.SIGTERM, signal.SIGINT),
    ],
    ids=["ctrl-c", "repeated"],
)
def test_ctrl_c_stops_everything_it_started(
    tmp_path: Path, signals: tuple[signal.Signals, ...]
) -> None:
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "up", "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    # Wait until the stream is flowing: broker, worker and simulator all started.
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("  ... "):
            break
    assert any(line.startswith("  ... ") for line in lines), "".join(lines[-40:])
    for signum in signals:
        process.send_signal(signum)
    rest, _ = process.communicate(timeout=60)
    output = "".join(lines) + rest
    assert process.returncode == 0, output[-3000:]
    assert "summary after" in output
    match = re.search(r"embedded broker \(Tansu\) on (127\.0\.0\.1:\d+)", output)
    assert match, output[-3000:]
    assert _processes_mentioning(f"tcp://{match.group(1)}") == []
    assert _processes_mentioning(f"CRISIS_RADAR_DATA_DIR={run_dir / 'worker-data'}") == []
