"""SSM reads at a full cold start: the figure `synth` prints, and the configurations refused."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra.config import ConfigError, StackConfig
from payments_dr.infra.ssm_budget import HEALTH_PROBE_READS_PER_SECOND, busiest_second, ssm_loads
from payments_dr.synth import register

from .conftest import STACK_FILES


def build(**overrides: Any) -> StackConfig:
    return StackConfig.from_mapping("test", {"domainName": "pay.example.com", **overrides})


def test_only_the_api_reads_ssm_and_its_cold_start_is_spread() -> None:
    config = build(archiverStreamShards="20")
    for load in ssm_loads(config):
        assert load.containers == config.reserved_concurrency  # every function counted
        api = config.reserved_concurrency[Function.API]
        assert load.readers == api  # the authorizer, worker and archiver read nothing
        spread = contract.MODE_READ_SPREAD_SECONDS
        average = api / spread
        assert load.cold_start_tps == pytest.approx(average)
        # The busiest second holds more than the average: four standard deviations more.
        assert load.busiest_second == pytest.approx(average + 4 * average**0.5)
        assert load.peak_tps == pytest.approx(load.busiest_second + HEALTH_PROBE_READS_PER_SECOND)
        assert load.peak_tps <= load.quota_tps == 40
        assert load.steady_tps == pytest.approx(api / (contract.MODE_REFRESH_SECONDS + spread / 2))
    assert [load.region for load in ssm_loads(config)] == list(config.regions)


def test_more_archiver_shards_add_no_ssm_reads() -> None:
    few, many = (
        ssm_loads(build(archiverStreamShards="1")),
        ssm_loads(build(archiverStreamShards="100")),
    )
    assert [load.peak_tps for load in few] == [load.peak_tps for load in many]


def test_a_spread_too_short_for_the_quota_is_refused_naming_the_keys() -> None:
    # 100 API containers over 2 s: 50/s on average, 50 + 4 * sqrt(50) = 78.3 in the busiest
    # second, + 5/s of health probes > 40/s.
    with pytest.raises(ConfigError) as refused:
        build(modeReadSpreadSeconds="2")
    message = str(refused.value)
    assert refused.value.key == "modeReadSpreadSeconds"
    assert "a full cold start of us-east-1 reads SSM at 83.3/s" in message
    assert "above ssmThroughputTps 40/s" in message
    assert "raise modeReadSpreadSeconds to at least 6" in message
    assert "ssmThroughputTps" in message.split("Fix:")[1]
    with pytest.raises(ConfigError):
        build(modeReadSpreadSeconds="5")  # 42.9/s
    assert busiest_second(100 / 6) + HEALTH_PROBE_READS_PER_SECOND <= 40
    assert build(modeReadSpreadSeconds="6").mode_read_spread_seconds == 6


def test_a_lower_quota_is_refused_and_higher_throughput_accepts_a_short_spread() -> None:
    with pytest.raises(ConfigError, match="raise modeReadSpreadSeconds to at least 7"):
        build(ssmThroughputTps="35", modeRefreshSeconds="8")
    with pytest.raises(ConfigError, match="and modeRefreshSeconds with it"):
        build(ssmThroughputTps="35")  # needs a 7 s spread, above the 6 s refresh
    with pytest.raises(ConfigError, match="enable Parameter Store higher throughput"):
        build(ssmThroughputTps="20", modeRefreshSeconds="8")  # would need an 18 s spread
    with pytest.raises(ConfigError, match="enable Parameter Store higher throughput"):
        build(ssmThroughputTps="5")  # the probes alone fill it: no spread can help
    assert build(ssmThroughputTps="10000", modeReadSpreadSeconds="1").ssm_throughput_tps == 10000


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("modeRefreshSeconds", "0"),
        ("modeRefreshSeconds", "61"),
        ("modeReadSpreadSeconds", "0"),
        ("modeReadSpreadSeconds", "7"),  # above modeRefreshSeconds (6)
        ("ssmThroughputTps", "0"),
        ("ssmThroughputTps", "10001"),
        ("modeReadSpreadSeconds", "four"),
    ],
)
def test_out_of_range_values_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        build(**{key: value})
    assert refused.value.key == key
    assert "Fix:" in str(refused.value)


def run_synth(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["synth", *argv])
    return int(args.run(args))


def test_synth_prints_the_cold_start_figure_per_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "synth.json"
    assert run_synth(str(STACK_FILES["eventual"]), "--json", str(out)) == 0
    printed = capsys.readouterr().out
    header = "SSM Parameter Store reads at a full cold start of every reserved container"
    assert header in printed
    lines = printed.split(header)[1].splitlines()
    for region in ("us-east-1", "us-east-2"):
        (line,) = [line for line in lines[:4] if line.strip().startswith(f"{region}:")]
        assert "100 containers read mode (api 100) over 6 s = 16.7/s on average" in line
        assert "busiest second 33.0 + health probes 5.0 = peak 38.0/s <= quota 40/s" in line
        assert "no run-time reads: retry-worker 5, log-archiver 8, authorizer 50" in line
    figures = json.loads(out.read_text(encoding="utf-8"))["ssm_cold_start"]
    assert [(f["region"], f["peak_tps"], f["quota_tps"]) for f in figures] == [
        ("us-east-1", 38.0, 40),
        ("us-east-2", 38.0, 40),
    ]


def test_synth_refuses_a_storm_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = tmp_path / "Pulumi.storm.yaml"
    stack_file.write_text(
        "config:\n  payments-dr:domainName: pay.example.com\n"
        '  payments-dr:modeReadSpreadSeconds: "1"\n',
        encoding="utf-8",
    )
    assert run_synth(str(stack_file)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: payments-dr:modeReadSpreadSeconds: a full cold start")
    assert "Fix: raise modeReadSpreadSeconds to at least 6" in line
