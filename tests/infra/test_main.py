"""The Pulumi entry point, run as the CLI would run it: config from Pulumi, outputs exported."""

from __future__ import annotations

import contextvars
import runpy
from typing import Any

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from payments_dr import contract
from payments_dr.contract import RegionOutput, StackOutput
from payments_dr.simulated_aws import RecordingMonitor, SimulatedAws

from .conftest import REPO_ROOT


def run_entry_point(stack: str, config: dict[str, str]) -> tuple[dict[str, Any], RecordingMonitor]:
    def run() -> tuple[dict[str, Any], RecordingMonitor]:
        monitor = RecordingMonitor(SimulatedAws())
        pulumi.runtime.set_mocks(
            monitor.mocks, project=contract.PROJECT, stack=stack, preview=False, monitor=monitor
        )
        pulumi.runtime.set_all_config(config)
        exported: dict[str, Any] = {}

        async def program() -> None:
            runpy.run_path(str(REPO_ROOT / "__main__.py"))
            root = pulumi.runtime.settings.get_root_resource()
            exported.update(await pulumi.Output.from_input(root.outputs).future() or {})

        _sync_await(run_pulumi_func(program))
        return exported, monitor

    return contextvars.Context().run(run)


def test_entry_point_reads_pulumi_config_and_exports_contract_outputs() -> None:
    outputs, monitor = run_entry_point(
        "canary",
        {
            "payments-dr:domainName": "pay.example.net",
            "payments-dr:consistencyMode": "strong",
        },
    )
    assert set(outputs) == {name.value for name in StackOutput}
    assert outputs[StackOutput.FAILOVER_URL] == "https://api.pay.example.net"
    assert outputs[StackOutput.TABLE_NAME] == contract.table_name("canary")
    for region, values in outputs[StackOutput.REGIONS].items():
        assert set(values) == {name.value for name in RegionOutput}
        assert values[RegionOutput.SSM_PATH] == contract.ssm_path("canary", region)
    (table,) = [r for r in monitor.registrations if r["type"] == "aws:dynamodb/table:Table"]
    assert table["inputs"]["globalTableWitness"] == {"regionName": "us-west-2"}
