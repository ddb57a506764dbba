"""Each region watches the other: the canaries, their secrets, roles and alarms under mocks,
and the outputs listing every alarm with its region."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import RegionOutput, StackOutput
from payments_dr.infra.canary import (
    CANARY_HANDLER,
    CANARY_RUNTIME,
    build_canary_zip,
    canary_alarm_key,
)
from payments_dr.synth import SynthResult

from .support import ALARM, one, paging_alarms, policy

CANARY = "aws:synthetics/canary:Canary"
SECRET = "aws:secretsmanager/secret:Secret"


def canary_secrets(stack: SynthResult, region: str) -> list[dict[str, object]]:
    """The canaries' secrets: the id secret (infra.id_secret) is another matter."""
    return [s for s in stack.of_type(SECRET, region) if str(s["name"]).startswith("canary-")]


TOPIC = "aws:sns/topic:Topic"
TABLE = "aws:dynamodb/table:Table"


def region_key(stack: SynthResult, region: str) -> str:
    table = one(stack.of_type(TABLE))
    if region == stack.config.primary_region:
        arn: str = table["inputs"]["serverSideEncryption"]["kmsKeyArn"]
    else:
        arn = table["inputs"]["replicas"][0]["kmsKeyArn"]
    return arn


def regional(stack: SynthResult, region: str) -> dict[str, Any]:
    output: dict[str, Any] = stack.outputs[StackOutput.REGIONS][region]
    return output


def test_each_region_runs_a_canary_against_the_other(stack: SynthResult) -> None:
    for region in stack.config.regions:
        target = stack.config.peer_region(region)
        inputs = one(stack.of_type(CANARY, region))["inputs"]
        assert inputs["name"] == contract.canary_name(stack.config.stack, target)
        assert len(inputs["name"]) <= contract.CANARY_NAME_MAX_LENGTH
        assert inputs["runtimeVersion"] == CANARY_RUNTIME
        assert inputs["handler"] == CANARY_HANDLER
        assert inputs["startCanary"] is True
        assert inputs["schedule"]["expression"] == "rate(1 minute)"
        assert "vpcConfig" not in inputs  # the probe must reach the other region's public name
        run = inputs["runConfig"]
        assert run["activeTracing"] is True
        variables = run["environmentVariables"]
        assert variables[contract.ENV_CANARY_TARGET_REGION] == target
        # The target's own name, not the failover name: it must probe that region only.
        assert (
            variables[contract.ENV_CANARY_TARGET_URL]
            == regional(stack, target)[RegionOutput.API_ENDPOINT]
        )
        secret = one(canary_secrets(stack, region))
        assert (
            variables[contract.ENV_CANARY_SECRET_ID]
            == regional(stack, region)[RegionOutput.CANARY_SECRET_ARN]
        )
        assert secret["inputs"]["name"] == contract.canary_secret_name(stack.config.stack, target)
        key = region_key(stack, region)
        assert inputs["kmsKeyArn"] == key
        assert inputs["artifactConfig"]["s3Encryption"] == {
            "encryptionMode": "SSE_KMS",
            "kmsKeyArn": key,
        }
        assert inputs["artifactS3Location"].startswith("s3://")
        assert inputs["artifactS3Location"].endswith(f"/{target}/")


def test_the_merchant_key_is_in_an_encrypted_secret_the_stack_never_fills(
    stack: SynthResult,
) -> None:
    for region in stack.config.regions:
        secret = one(canary_secrets(stack, region))
        assert secret["inputs"]["kmsKeyId"] == region_key(stack, region)
    versions = stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert [version["name"] for version in versions] == ["id-secret-value"]
    assert "pdr." not in json.dumps(stack.outputs)  # no merchant key in any output


def test_the_canary_role_is_least_privilege(stack: SynthResult) -> None:
    for region in stack.config.regions:
        name = contract.canary_name(stack.config.stack, stack.config.peer_region(region))
        role_policy = one(
            [
                r
                for r in stack.of_type("aws:iam/rolePolicy:RolePolicy")
                if r["name"] == f"canary-{region}-policy"
            ]
        )
        statements = {s["Sid"]: s for s in policy(role_policy)["Statement"]}
        secret_arn = regional(stack, region)[RegionOutput.CANARY_SECRET_ARN]
        assert statements["ReadTestMerchantKey"]["Resource"] == [secret_arn]
        assert statements["ReadTestMerchantKey"]["Action"] == ["secretsmanager:GetSecretValue"]
        key = region_key(stack, region)
        for sid, service in (
            ("DecryptTestMerchantKey", "secretsmanager"),
            ("EncryptArtifacts", "s3"),
        ):
            assert statements[sid]["Resource"] == [key]
            assert statements[sid]["Condition"] == {
                "StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}
            }
        (log_groups, _) = statements["WriteOwnLogs"]["Resource"]
        assert log_groups.endswith(f":log-group:/aws/lambda/cwsyn-{name}-*")
        assert f":logs:{region}:" in log_groups
        (artifacts,) = statements["WriteRunArtifacts"]["Resource"]
        assert artifacts.endswith(f"/{stack.config.peer_region(region)}/*")
        assert statements["PublishCanaryMetrics"]["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": "CloudWatchSynthetics"}
        }
        wildcard = {a for s in statements.values() if s["Resource"] == ["*"] for a in s["Action"]}
        assert wildcard == {
            "s3:ListAllMyBuckets",
            "cloudwatch:PutMetricData",
            "xray:PutTraceSegments",
        }


def test_each_canary_alarms_in_its_own_region_on_its_topic(stack: SynthResult) -> None:
    for region in stack.config.regions:
        target = stack.config.peer_region(region)
        canary = one(stack.of_type(CANARY, region))
        (alarm,) = [
            a
            for a in stack.of_type(ALARM, region)
            if a["inputs"]["namespace"] == "CloudWatchSynthetics"
        ]
        inputs = alarm["inputs"]
        assert inputs["dimensions"] == {"CanaryName": canary["inputs"]["name"]}
        assert inputs["metricName"] == "SuccessPercent"
        assert inputs["comparisonOperator"] == "LessThanThreshold"
        assert inputs["threshold"] == 100
        assert inputs["evaluationPeriods"] == 2
        assert inputs["treatMissingData"] == "breaching"  # a stopped canary pages too
        topics = [t for t in stack.of_type(TOPIC, region) if t["name"].startswith("monitoring-")]
        assert len(topics) == 1  # the watching region's own topic
        topic_arn = regional(stack, region)[RegionOutput.ALARM_TOPIC_ARN]
        assert inputs["alarmActions"] == [topic_arn]
        assert f":sns:{region}:" in topic_arn
        assert canary_alarm_key(target) in regional(stack, region)[RegionOutput.ALARM_ARNS]


@pytest.mark.parametrize("which", ["eventual", "strong"])
def test_the_alarms_output_lists_every_alarm_with_its_region(
    which: str, request: pytest.FixtureRequest
) -> None:
    stack: SynthResult = request.getfixturevalue(which)
    listed = stack.outputs[StackOutput.ALARMS]
    alarms = paging_alarms(stack)  # the traffic switches' alarms page nobody
    assert len(listed) == len(alarms)
    for entry in listed:
        assert entry["arn"].split(":")[3] == entry["region"]
        assert (
            entry["arn"]
            == regional(stack, entry["region"])[RegionOutput.ALARM_ARNS][entry["alarm"]]
        )
    assert {(a["region"], a["inputs"]["name"]) for a in alarms} == {
        (e["region"], e["arn"].rsplit(":", 1)[-1]) for e in listed
    }


def test_the_zip_holds_the_layout_synthetics_runs_and_imports_alone(tmp_path: Path) -> None:
    first = build_canary_zip(tmp_path / "a")
    second = build_canary_zip(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()  # reproducible
    assert first.stat().st_size < 225 * 1024  # Synthetics' limit for an inline zip
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "unzipped")
    module = CANARY_HANDLER.split(".")[0]
    assert f"python/{module}.py" in names
    # As the runtime loads it: python/ on the path, nothing of this project installed.
    check = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        f"import {module}; assert callable({module}.handler); "
        "assert 'payments_dr.infra' not in sys.modules; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", check, str(tmp_path / "unzipped" / "python")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
