"""`payments-dr synth`: the offline main job, its JSON file and its refusals."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from payments_dr import contract
from payments_dr.cli import EXIT_BROKEN_PIPE
from payments_dr.infra.config import load_stack_file
from payments_dr.policy import RULES, Violation
from payments_dr.synth import SIMULATION_NOTE, register, short_type

from .conftest import STACK_FILES

RESOURCE_KEYS = {"type", "name", "urn", "region", "parent", "inputs"}


def run_synth(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["synth", *argv])
    return int(args.run(args))


@pytest.mark.parametrize("mode", sorted(STACK_FILES))
def test_synth_prints_resources_budget_and_outputs_and_writes_json(
    mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    assert run_synth(str(STACK_FILES[mode]), "--json", str(out)) == 0
    printed = capsys.readouterr().out
    assert SIMULATION_NOTE in printed
    assert "RTO budget 150 <= target 900" in printed
    reserved = sum(load_stack_file(STACK_FILES[mode]).reserved_concurrency.values())
    assert (
        f"Lambda concurrent executions quota >= {reserved + 100} in us-east-1 and us-east-2"
        in printed
    )
    assert f"policy: {len(RULES)}/{len(RULES)} rules pass, 0 violation(s)" in printed
    function_row = next(
        line for line in printed.splitlines() if line.strip().startswith("aws:lambda.Function ")
    )
    per_region = str(len(contract.FUNCTIONS))
    assert function_row.split()[1:] == [per_region, per_region, "-"]  # none global

    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["simulation"] == SIMULATION_NOTE
    assert written["consistency_mode"] == mode
    assert written["policy_violations"] == []
    assert written["outputs"][contract.StackOutput.FAILOVER_URL] == "https://api.pay.example.com"
    resources = written["resources"]
    assert all(set(r) >= RESOURCE_KEYS for r in resources)
    assert f"Wrote {len(resources)} resources" in printed
    regions = {r["region"] for r in resources}
    assert regions == {"us-east-1", "us-east-2", "global"}
    table = next(r for r in resources if r["type"] == "aws:dynamodb/table:Table")
    assert table["inputs"]["name"] == contract.table_name(written["stack"])


def test_a_policy_violation_fails_synth_and_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Violation(RULES[0].name, "Table 'payments' has no PITR. Fix: enable it.", "urn:x")
    monkeypatch.setattr("payments_dr.synth.evaluate", lambda resources, budget: [broken])
    out = tmp_path / "out.json"
    assert run_synth(str(STACK_FILES["eventual"]), "--json", str(out)) == 1
    printed = capsys.readouterr().out
    assert f"FAIL  {RULES[0].name}" in printed
    assert broken.message in printed
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["policy_violations"] == [
        {"rule": broken.rule, "message": broken.message, "urn": broken.urn}
    ]


def test_bad_stack_file_is_refused_with_key_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(
        "config:\n"
        "  payments-dr:domainName: pay.example.com\n"
        "  payments-dr:secondaryRegion: us-east-1\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.json"
    assert run_synth(str(path), "--json", str(out)) == 2
    error = capsys.readouterr().err
    assert "payments-dr:secondaryRegion" in error
    assert "Fix: choose a different region" in error
    assert not out.exists()


@pytest.mark.parametrize("deployed", ["eventual", "strong"])
def test_a_consistency_change_on_a_deployed_stack_is_refused_with_the_migration_path(
    deployed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"consistency_mode": deployed}), encoding="utf-8")
    other = "strong" if deployed == "eventual" else "eventual"
    out = tmp_path / "out.json"
    assert run_synth(str(STACK_FILES[other]), "--outputs", str(outputs), "--json", str(out)) == 2
    error = capsys.readouterr().err
    stack_name = STACK_FILES[other].name.split(".")[1]  # Pulumi.<stack>.yaml
    assert f"payments-dr:consistencyMode: stack {stack_name}" in error
    assert f"created with {deployed} consistency" in error
    assert f"Fix: set consistencyMode: {deployed} again" in error
    assert "deploy a new stack" in error and "consistency-mode-migration.md" in error
    assert not out.exists()


def test_the_same_consistency_or_an_older_stack_synthesizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"failover_url": "https://api.pay.example.com"}))
    assert run_synth(str(STACK_FILES["eventual"]), "--outputs", str(outputs)) == 0
    outputs.write_text("not json")
    assert run_synth(str(STACK_FILES["eventual"]), "--outputs", str(outputs)) == 2
    assert "error: --outputs " in capsys.readouterr().err


def test_short_type_keeps_package_module_and_class() -> None:
    assert short_type("aws:s3/bucketPolicy:BucketPolicy") == "aws:s3.BucketPolicy"
    assert short_type("payments-dr:infra:Data") == "payments-dr:infra.Data"


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    """`payments-dr synth | head -1`: no traceback when the reader stops early."""
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first line
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "payments_dr.cli", "synth", str(STACK_FILES["eventual"])],
            stdout=writer,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writer)
    assert completed.returncode == EXIT_BROKEN_PIPE
    assert b"Traceback" not in completed.stderr
