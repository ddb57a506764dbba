"""`payments-dr drill` refuses bad arguments before anything runs, and stops on Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from payments_dr import cli

from .helpers import Process

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--clients", "0"], "--clients must be at least 1"),
        (["--rate", "0"], "--rate must be a positive number"),
        (["--rate", "-1"], "--rate must be a positive number"),
        (["--time-scale", "0"], "--time-scale must be a positive number"),
        (["--replication-lag", "-1"], "--replication-lag must be 0 or more"),
        (["--timeline", "t.txt"], "the timeline is a .png picture"),
        (["--json", "README.md/x.json"], "README.md is a file, not a directory"),
        (["--json", "docs"], "docs is a directory"),
        (["--on-aws", "--stack", "prod", "--mode", "strong"], "--mode applies to the lab drill"),
        (["--on-aws", "--stack", "prod", "--time-scale", "1"], "--time-scale applies to the lab"),
        (["--on-aws", "--stack", "prod", "--clients", "2"], "--clients applies to the lab"),
        (["--on-aws", "--stack", "p", "--config", "Pulumi.dev.yaml"], "--config applies to"),
        (["--on-aws", "--stack", "p", "--workload", "adversarial"], "--workload applies to"),
        (["--stack", "prod"], "--stack applies to --on-aws drills only"),
        (["--outputs", "o.json"], "--outputs applies to --on-aws drills only"),
        (["--force"], "--force applies to --on-aws drills only"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2_before_any_work(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    started = time.process_time()
    assert cli.main(["drill", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    # Refused before a lab started: the drill would take seconds of CPU.
    assert time.process_time() - started < 1.0


@pytest.mark.slow
def test_ctrl_c_stops_the_drill_and_exits_130(tmp_path: Path) -> None:
    drill = Process([sys.executable, "-m", "payments_dr.cli", "drill"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while not any("traffic runs authenticated" in line for line in drill.stderr):
            assert drill.process.poll() is None, "".join(drill.stderr)
            assert time.monotonic() < deadline, "the drill never started its traffic"
            time.sleep(0.05)
        drill.process.send_signal(signal.SIGINT)
        assert drill.process.wait(timeout=60) == 130
    finally:
        drill.close()
    err = "".join(drill.stderr)
    assert "drill interrupted" in err and "Traceback" not in err
