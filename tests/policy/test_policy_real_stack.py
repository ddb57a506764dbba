"""The real program, synthesized under mocks in both consistency modes, against every rule.

Breaking the synthesized stack also proves the rules' joins work on what `synthesize` emits
(mocked ids and ARNs are not among the inputs, so several joins go through dependencies).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.policy import evaluate, format_verdicts, tokens
from payments_dr.synth import SynthResult, synthesize

REPO = Path(__file__).resolve().parents[2]
STACK_FILES = {"eventual": "Pulumi.eventual.yaml", "strong": "Pulumi.dev.yaml"}
Resources = list[dict[str, Any]]


@cache
def _synthesized(mode: str) -> SynthResult:
    return synthesize(REPO / STACK_FILES[mode])


def _evaluate(result: SynthResult, resources: Resources) -> list[tuple[str, str]]:
    violations = evaluate(resources, result.budget.to_dict())
    return [(v.rule, v.resource_name) for v in violations]


@pytest.mark.parametrize("mode", sorted(STACK_FILES))
def test_real_stack_passes_every_rule(mode: str) -> None:
    result = _synthesized(mode)
    assert result.config.consistency_mode.value == mode

    violations = evaluate(result.resources, result.budget.to_dict())

    assert violations == [], format_verdicts(violations)


def _one(resources: Resources, type_: str, region: str, name_part: str) -> dict[str, Any]:
    matches = [
        r
        for r in resources
        if r["type"] == type_
        and name_part in r["name"]
        and (r["region"] == region or region in r["name"])
    ]
    assert len(matches) == 1, [r["name"] for r in matches]
    return matches[0]


def _role_of_function(resources: Resources, region: str) -> dict[str, Any]:
    function = _one(resources, tokens.LAMBDA_FUNCTION, region, contract.Function.API.value)
    (role,) = [
        r
        for r in resources
        if r["type"] == tokens.IAM_ROLE and r["urn"] in function["dependencies"]
    ]
    return role


def _trust_ec2(resources: Resources) -> str:
    role = _role_of_function(resources, "us-east-2")
    document = json.loads(role["inputs"]["assumeRolePolicy"])
    document["Statement"][0]["Principal"]["Service"] = "ec2.amazonaws.com"
    role["inputs"]["assumeRolePolicy"] = json.dumps(document)
    return role["name"]


def _drop_health_check(resources: Resources) -> str:
    check = _one(resources, tokens.ROUTE53_HEALTH_CHECK, "us-east-2", "health")
    resources.remove(check)
    return _one(resources, tokens.ROUTE53_RECORD, "us-east-2", "failover")["name"]


def _shorten_dlq_retention(resources: Resources) -> str:
    dlq = _one(resources, tokens.SQS_QUEUE, "us-east-1", "dlq")
    dlq["inputs"]["messageRetentionSeconds"] = 86400.0
    del dlq["inputs"]["redriveAllowPolicy"]  # still a DLQ: the retry queue redrives to it
    return dlq["name"]


def _drop_failure_destination(resources: Resources) -> str:
    mapping = _one(
        resources, tokens.LAMBDA_EVENT_SOURCE_MAPPING, "us-east-1", "table-stream-source"
    )
    del mapping["inputs"]["destinationConfig"]
    # Without the mapping pointing at it, the queue is an ordinary queue with no redrive.
    return _one(resources, tokens.SQS_QUEUE, "us-east-1", "archive-failures")["name"]


def _drop_retry_redrive(resources: Resources) -> str:
    queue = _one(resources, tokens.SQS_QUEUE, "us-east-2", "retry-queue")
    del queue["inputs"]["redrivePolicy"]
    return queue["name"]


def _drop_versioning(resources: Resources) -> str:
    versioning = _one(resources, tokens.S3_BUCKET_VERSIONING, "us-east-2", "storage-us-east-2")
    resources.remove(versioning)
    return _one(resources, tokens.S3_BUCKET, "us-east-2", "storage-us-east-2")["name"]


def _unthrottle(resources: Resources) -> str:
    settings = _one(resources, tokens.APIGATEWAY_METHOD_SETTINGS, "us-east-1", "method-settings")
    settings["inputs"]["settings"].pop("throttlingRateLimit")
    return _one(resources, tokens.APIGATEWAY_STAGE, "us-east-1", "")["name"]


def _drop_lag_alarm(resources: Resources) -> str:
    alarm = _one(resources, tokens.CLOUDWATCH_METRIC_ALARM, "us-east-2", "replication-latency")
    resources.remove(alarm)
    return _one(resources, tokens.DYNAMODB_TABLE, "us-east-1", "table")["name"]


def _drop_health_check_alarm(resources: Resources) -> str:
    alarm = _one(resources, tokens.CLOUDWATCH_METRIC_ALARM, "us-east-1", "health-check-us-east-2")
    resources.remove(alarm)
    return _one(resources, tokens.ROUTE53_HEALTH_CHECK, "us-east-2", "health")["name"]


def _move_canary_alarm(resources: Resources) -> str:
    """The page about us-east-1 set up in us-east-1, where the canary's metric never is."""
    alarm = _one(resources, tokens.CLOUDWATCH_METRIC_ALARM, "us-east-2", "canary-us-east-2-canary")
    alarm["region"] = "us-east-1"
    return _one(resources, tokens.SYNTHETICS_CANARY, "us-east-2", "canary")["name"]


def _canary_role_trusts_s3(resources: Resources) -> str:
    role = _one(resources, tokens.IAM_ROLE, "us-east-2", "canary-us-east-2-role")
    document = json.loads(role["inputs"]["assumeRolePolicy"])
    document["Statement"][0]["Principal"] = {"Service": "s3.amazonaws.com"}
    role["inputs"]["assumeRolePolicy"] = json.dumps(document)
    return str(role["name"])


def _drift_function(resources: Resources) -> str:
    function = _one(resources, tokens.LAMBDA_FUNCTION, "us-east-2", contract.Function.API.value)
    function["inputs"]["timeout"] = 29.0
    return function["name"]


BREAKAGES: dict[str, tuple[Callable[[Resources], str], str]] = {
    "function role trusts ec2": (_trust_ec2, "iam-trust-intended-service"),
    "failover record loses its health check": (_drop_health_check, "dr-failover-health-checks"),
    "dlq keeps messages a day": (_shorten_dlq_retention, "sqs-dlq-retention"),
    "stream mapping loses its failure destination": (
        _drop_failure_destination,
        "sqs-redrive-policy",
    ),
    "retry queue loses its redrive policy": (_drop_retry_redrive, "sqs-redrive-policy"),
    "bucket loses versioning": (_drop_versioning, "s3-versioning"),
    "stage loses its rate limit": (_unthrottle, "apigateway-stage-throttling"),
    "no lag alarm in the secondary": (_drop_lag_alarm, "dr-replication-lag-alarm"),
    "secondary function drifts": (_drift_function, "dr-identical-functions"),
    "canary alarm outside its region": (_move_canary_alarm, "canary-alarm-in-own-region"),
    "canary role trusts another service": (_canary_role_trusts_s3, "iam-trust-intended-service"),
    "no alarm on the secondary's health check": (
        _drop_health_check_alarm,
        "dr-health-check-alarm",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_breaking_the_real_stack_is_caught(breakage: str) -> None:
    result = _synthesized("eventual")
    resources = copy.deepcopy(result.resources)
    break_stack, rule = BREAKAGES[breakage]

    named = break_stack(resources)

    assert (rule, named) in _evaluate(result, resources)
