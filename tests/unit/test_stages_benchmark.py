"""``benchmarks.stages`` runs the agents' functions over a small corpus and prints each
stage's cost."""

from __future__ import annotations

import re

import pytest

from benchmarks import stages


def test_every_stage_is_timed_and_summed(capsys: pytest.CaptureFixture[str]) -> None:
    assert stages.main(["--mentions", "600", "--brands", "5", "--batch", "250"]) == 0
    out = capsys.readouterr().out
    figures = {}
    for name in (*stages.STAGES, "all"):
        found = re.search(rf"^  {re.escape(name)} +([\d.]+) us per mention", out, re.MULTILINE)
        assert found, f"no line for {name!r} in:\n{out}"
        figures[name] = float(found.group(1))
    assert all(figures[name] > 0 for name in stages.STAGES)
    # The total is the sum of the stages (each printed to 0.1 us).
    assert abs(sum(figures[name] for name in stages.STAGES) - figures["all"]) < 0.1 * len(
        stages.STAGES
    )
    assert "bare VADER loop" in out and "these stages alone / VADER loop" in out


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        stages.main(["--batch", "0"])
    assert exit_.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err
