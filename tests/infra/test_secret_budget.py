"""The id secret's reads at a full cold start, against Secrets Manager's GetSecretValue quota."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payments_dr.contract import Function
from payments_dr.infra.config import StackConfig
from payments_dr.infra.secret_budget import GET_SECRET_VALUE_TPS, RegionSecretLoad, secret_loads

from .conftest import STACK_FILES
from .test_ssm_budget import run_synth


def test_only_the_id_functions_read_and_each_container_once() -> None:
    config = StackConfig.from_mapping("test", {"domainName": "pay.example.com"})
    for load in secret_loads(config):
        # api 100 + retry worker 5: the authorizer and the archiver never read it.
        assert load.readers == 105 and load.peak_tps == 105.0
        assert load.within_quota and load.quota_tps == GET_SECRET_VALUE_TPS


def test_a_burst_over_the_quota_is_reported_over_it() -> None:
    load = RegionSecretLoad("us-east-2", {Function.API: 9_990, Function.RETRY_WORKER: 20})
    assert not load.within_quota
    assert "peak 10010/s > quota 10000/s" in load.describe()


def test_synth_prints_the_id_secret_cold_start_per_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "synth.json"
    assert run_synth(str(STACK_FILES["eventual"]), "--json", str(out)) == 0
    printed = capsys.readouterr().out
    header = "Secrets Manager reads of the id secret at a full cold start"
    lines = printed.split(header)[1].splitlines()
    for region in ("us-east-1", "us-east-2"):
        (line,) = [line for line in lines[:4] if line.strip().startswith(f"{region}:")]
        assert "105 containers read the id secret once each (api 100, retry-worker 5)" in line
        assert "peak 105/s <= quota 10000/s" in line
    figures = json.loads(out.read_text(encoding="utf-8"))["id_secret_cold_start"]
    assert [(f["region"], f["peak_tps"], f["quota_tps"]) for f in figures] == [
        ("us-east-1", 105.0, 10_000),
        ("us-east-2", 105.0, 10_000),
    ]
