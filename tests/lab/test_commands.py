"""`payments-dr lab up` and `payments-dr drill` from the command line."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from payments_dr import cli, contract
from payments_dr.contract import ConsistencyMode
from payments_dr.lab import drill as lab_drill
from payments_dr.lab.drill import DrillResult
from payments_dr.service.model import IdKey

from .helpers import PRIMARY, SECONDARY, Process, lab_settings, post_payment, report, request

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_drill_on_aws_is_delegated_to_the_operations_drill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import payments_dr.ops.aws_drill as aws_drill

    received: list[Namespace] = []
    monkeypatch.setattr(aws_drill, "run", lambda args: received.append(args) or 7)
    assert cli.main(["drill", "--on-aws", "--stack", "prod", "--scenario", "fenced"]) == 7
    assert received[0].stack == "prod" and received[0].scenario == "fenced"
    assert received[0].outputs is None and received[0].force is False


def test_drill_on_aws_reads_outputs_from_a_file_without_the_pulumi_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The operations drill refuses cleanly (exit 2) when the file lacks the stack's outputs.
    outputs = tmp_path / "outputs.json"
    outputs.write_text("{}", encoding="utf-8")
    argv = ["drill", "--on-aws", "--stack", "prod", "--scenario", "fenced"]
    assert cli.main([*argv, "--outputs", str(outputs), "--force"]) == 2
    assert "stack prod lacks the outputs" in capsys.readouterr().err


def test_stack_without_on_aws_is_refused() -> None:
    assert cli.main(["drill", "--stack", "prod"]) == 2


def test_a_drill_that_lost_payments_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lossy = report(payments_acknowledged=10, payments_lost=1)
    monkeypatch.setattr(
        lab_drill,
        "run_drill",
        lambda *_, **__: DrillResult(
            lossy, payments=[], writes=[], conflicts=[], id_key=IdKey("k" * 32)
        ),
    )
    assert cli.main(["drill"]) == 1
    assert "result: FAILED" in capsys.readouterr().out


@pytest.mark.slow
def test_the_readme_offline_drill_writes_its_report_and_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the default stack file, as the README runs it
    report_path, picture_path = tmp_path / "out" / "drill.json", tmp_path / "out" / "drill.png"
    code = cli.main(["drill", "--json", str(report_path), "--timeline", str(picture_path)])
    report = json.loads(report_path.read_text())
    assert code == 0 and report["passed"] is True
    assert report["scenario"] == "region-outage" and report["consistency_mode"] == "strong"
    assert report["payments_lost"] == 0 and report["simulated"] is True
    # Both client kinds ran side by side and every client was served again after the fault.
    rto = report["client_rto_seconds"]
    assert {kind: (rto[kind]["clients"], rto[kind]["recovered"]) for kind in rto} == {
        "dns": (4, 4),
        "sdk": (4, 4),
    }
    assert report["categories"]["sdk"]["stored"] == report["categories"]["sdk"]["acknowledged"] > 0
    assert picture_path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_lab_up_fails_over_when_told_to_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    lab_up = Process(
        [sys.executable, "-m", "payments_dr.cli", "lab", "up", "--time-scale", "0.02"],
        cwd=tmp_path,  # no stack file here: built-in defaults
    )
    try:
        banner = "".join(lab_up.read_until("Ctrl-C", timeout=120))
        urls = dict(
            re.findall(r"(failover endpoint|lab control).*: (http://127\.0\.0\.1:\d+)", banner)
        )
        demo_key = re.findall(r"API key: (pdr\.\S+)", banner)[0]
        failover, control = urls["failover endpoint"], urls["lab control"]
        status, headers, body = request(failover, "GET", contract.HEALTH_PATH)
        assert status == 200 and body["status"] == "ok"
        assert headers[contract.REGION_HEADER] == PRIMARY
        status, _, created = post_payment(failover, "demo-key-0001", demo_key)
        assert status == 201 and created["merchant_id"] == "merchant-01"

        status, _, state = request(
            control, "POST", "/faults", {"region": PRIMARY, "fault": "outage", "active": True}
        )
        assert status == 200 and state["regions"][PRIMARY]["outage"] is True
        # Detection (30 s) plus the TTL (60 s) at 0.02: about two seconds of wall time.
        deadline = time.monotonic() + 60
        served_by = None
        while time.monotonic() < deadline and served_by != SECONDARY:
            status, headers, _ = request(failover, "GET", contract.HEALTH_PATH)
            served_by = headers.get(contract.REGION_HEADER)
            time.sleep(0.1)
        assert served_by == SECONDARY
        assert request(control, "GET", "/status")[2]["dns_answer"] == SECONDARY

        # Under load a lab thread, not the main one, used to take the signal and the lab
        # never stopped; now only the main thread can receive it.
        lab_up.process.send_signal(signal.SIGINT)
        assert lab_up.process.wait(timeout=60) == 0
    finally:
        lab_up.close()
    assert "stopping the lab" in "".join(lab_up.stderr)
    # No function's mode read outlives the lab to log into its closed log file.
    assert "Logging error" not in "".join(lab_up.stderr)
    # One line per event on the terminal; the service's JSON logs in their file instead.
    rest = lab_up.drain()
    events = [line for line in rest if line.startswith("[")]
    assert any("fault" in line and f"outage on in {PRIMARY}" in line for line in events)
    assert any("detected" in line for line in events)
    assert any("dns" in line and SECONDARY in line for line in events)
    assert not any(line.startswith("{") for line in [banner, *rest])
    assert (tmp_path / "lab-service.log").exists()


@pytest.mark.slow
def test_lab_up_stops_on_sigterm_as_on_ctrl_c(tmp_path: Path) -> None:
    lab_up = Process([sys.executable, "-m", "payments_dr.cli", "lab", "up"], cwd=tmp_path)
    try:
        lab_up.read_until("Ctrl-C", timeout=120)
        lab_up.process.send_signal(signal.SIGTERM)
        assert lab_up.process.wait(timeout=60) == 0
    finally:
        lab_up.close()
    assert "stopping the lab" in "".join(lab_up.stderr)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/faults", b'{"fault": "meteor", "active": true}', 400, "outage"),
        (
            "POST",
            "/faults",
            b'{"region": "eu-west-9", "fault": "outage", "active": true}',
            400,
            "us-east-1",
        ),
        ("POST", "/faults", b'{"fault": "outage", "active": "yes"}', 400, "active must be a bool"),
        ("POST", "/faults", b'{"fault": "outage"}', 400, "fault and active are required"),
        (
            "POST",
            "/faults",
            b'{"fault": "outage", "active": true, "when": 1}',
            400,
            "unknown field 'when'",
        ),
        ("POST", "/faults", b"[1, 2]", 400, "must be a JSON object"),
        ("POST", "/faults", b"{nope", 400, "is not JSON"),
        ("GET", "/faults", b"", 405, "/faults takes POST"),
        ("DELETE", "/status", b"", 405, "/status takes GET"),
        ("GET", "/nowhere", b"", 404, "no /nowhere"),
        ("POST", "/merchants", b'{"merchant_id": "a"}', 400, "merchant_id must be"),
        ("POST", "/merchants", b'{"merchant_id": 7}', 400, "merchant_id must be a str"),
    ],
)
def test_the_control_endpoint_refuses_what_it_cannot_do_with_the_reason(
    control: Any, method: str, path: str, body: bytes, status: int, message: str
) -> None:
    answered, answer = control.handle(method, path, body)
    assert answered == status and message in answer["message"]


def test_the_control_endpoint_enrols_a_merchant_whose_key_works_in_both_regions(
    control: Any,
) -> None:
    status, answer = control.handle("POST", "/merchants", b'{"merchant_id": "globex"}')
    assert status == 201 and answer["merchant_id"] == "globex"
    lab = control._lab
    assert lab.settle(60)
    for region in (PRIMARY, SECONDARY):
        status, _, created = post_payment(
            lab.region_url(region), f"globex-key-{region}", answer["api_key"]
        )
        assert status == 201 and created["merchant_id"] == "globex"


@pytest.fixture(scope="module")
def control() -> Iterator[Any]:
    from payments_dr.lab.control import ControlServer
    from payments_dr.lab.lab import Lab

    with Lab(lab_settings(ConsistencyMode.EVENTUAL, time_scale=1.0)) as lab:
        yield ControlServer(lab)
