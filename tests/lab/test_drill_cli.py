"""`payments-dr drill` stops on Ctrl-C (its argument checks: tests/cli/test_bad_input.py)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from .helpers import Process


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
