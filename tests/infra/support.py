"""Helpers for reading synthesized resources."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from payments_dr import contract

if TYPE_CHECKING:
    from payments_dr.synth import SynthResult

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def policy(resource: dict[str, Any], key: str = "policy") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resource["inputs"][key])
    return document


def one(resources: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(resources) == 1, [r["name"] for r in resources]
    return resources[0]


def paging_alarms(stack: SynthResult) -> list[dict[str, Any]]:
    """Every alarm but the traffic switches (infra/switch.py), which page nobody."""
    return [
        a for a in stack.of_type(ALARM) if a["inputs"]["namespace"] != contract.SWITCH_NAMESPACE
    ]
