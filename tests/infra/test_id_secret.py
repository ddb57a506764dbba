"""The id secret in the synthesized stack: one value, a copy in each region under that region's
key, never rotated or replaced, readable only by the functions that compute ids, each in its
own region, through its own region's endpoint."""

from __future__ import annotations

import json
from typing import Any

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra import id_secret
from payments_dr.synth import SynthResult

from .support import one, policy

SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def data_key(stack: SynthResult, region: str) -> str:
    table = one(stack.of_type("aws:dynamodb/table:Table"))
    if region == stack.config.primary_region:
        arn: str = table["inputs"]["serverSideEncryption"]["kmsKeyArn"]
    else:
        arn = table["inputs"]["replicas"][0]["kmsKeyArn"]
    return arn


def the_secret(stack: SynthResult) -> dict[str, Any]:
    return one([s for s in stack.of_type(SECRET) if s["name"] == "id-secret"])


def test_one_secret_replicated_to_the_second_region_under_each_regions_key(
    stack: SynthResult,
) -> None:
    primary, secondary = stack.config.regions
    secret = the_secret(stack)
    inputs = secret["inputs"]
    assert secret["region"] == primary
    assert inputs["name"] == contract.id_secret_name(stack.config.stack)
    assert inputs["kmsKeyId"] == data_key(stack, primary)
    assert inputs["replicas"] == [{"region": secondary, "kmsKeyId": data_key(stack, secondary)}]
    assert inputs["recoveryWindowInDays"] == id_secret.RECOVERY_WINDOW_DAYS


def test_the_value_is_generated_written_once_and_never_replaced(stack: SynthResult) -> None:
    secret = the_secret(stack)
    version = one(stack.of_type(VERSION))
    for resource in (secret, version):
        assert resource["protect"] and resource["retain_on_delete"], resource["name"]
    inputs = version["inputs"]
    assert "secretString" not in inputs  # write-only: the provider keeps no copy in state
    assert len(inputs["secretStringWo"]) == contract.ID_SECRET_LENGTH  # GetRandomPassword's
    assert version["secret_inputs"] == ["secretStringWo"]  # encrypted wherever Pulumi keeps it
    assert inputs["secretStringWoVersion"] == id_secret.VALUE_VERSION == 1
    assert version["ignore_changes"] == ["secretStringWo"]
    # The value reaches no output.
    assert inputs["secretStringWo"] not in json.dumps(stack.outputs, default=str)


def test_the_secrets_policy_denies_every_new_value_after_the_first(stack: SynthResult) -> None:
    resource = one(stack.of_type(SECRET_POLICY))
    assert resource["inputs"]["secretArn"] == one(stack.of_type(VERSION))["inputs"]["secretId"]
    assert any(dep.endswith("::id-secret-value") for dep in resource["dependencies"])
    (statement,) = policy(resource)["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert set(statement["Action"]) >= {
        "secretsmanager:PutSecretValue",
        "secretsmanager:RotateSecret",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:DeleteSecret",
    }


def role_policy(stack: SynthResult, region: str, function: Function) -> dict[str, Any]:
    name = f"service-{region}-{function.value}-policy"
    return policy(one([p for p in stack.of_type(ROLE_POLICY) if p["name"] == name]))


def test_only_the_id_functions_read_the_secret_each_in_its_own_region(
    stack: SynthResult,
) -> None:
    for region in stack.config.regions:
        for function in Function:
            statements = role_policy(stack, region, function)["Statement"]
            reads = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
            if function not in contract.ID_KEY_READERS:
                assert reads == [], function
                continue
            (read,) = reads
            (resource,) = read["Resource"]
            assert resource.startswith(f"arn:aws:secretsmanager:{region}:")
            assert resource.endswith(
                f":secret:{contract.id_secret_name(stack.config.stack)}-??????"
            )
            (decrypt,) = [s for s in statements if s["Sid"] == "DecryptIdSecret"]
            assert decrypt["Resource"] == [data_key(stack, region)]
            assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == (
                f"secretsmanager.{region}.amazonaws.com"
            )


def test_the_id_functions_are_told_their_own_regions_copy(stack: SynthResult) -> None:
    primary_arn = one(stack.of_type(VERSION))["inputs"]["secretId"]
    for region in stack.config.regions:
        for function in Function:
            name = contract.function_name(stack.config.stack, function)
            (resource,) = [
                f for f in stack.of_type(FUNCTION, region) if f["inputs"]["name"] == name
            ]
            variables = resource["inputs"]["environment"]["variables"]
            if function in contract.ID_KEY_READERS:
                # A replica has the primary's ARN with its own region.
                expected = primary_arn.replace(f":{stack.config.primary_region}:", f":{region}:")
                assert variables[contract.ENV_ID_SECRET_ID] == expected
            else:
                assert contract.ENV_ID_SECRET_ID not in variables


def test_each_region_reaches_its_copy_through_its_own_endpoint(stack: SynthResult) -> None:
    for region in stack.config.regions:
        (endpoint,) = [
            e
            for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint", region)
            if e["inputs"]["serviceName"] == f"com.amazonaws.{region}.secretsmanager"
        ]
        (statement,) = policy(endpoint)["Statement"]
        assert statement["Action"] == ["secretsmanager:GetSecretValue"]
        assert statement["Resource"] == [
            id_secret.secret_arn_pattern(region, _account(stack), stack.config.stack)
        ]


def _account(stack: SynthResult) -> str:
    return str(data_key(stack, stack.config.primary_region).split(":")[4])


def test_the_data_key_serves_secrets_manager_in_its_own_region_only(stack: SynthResult) -> None:
    keys = stack.of_type("aws:kms/key:Key") + stack.of_type("aws:kms/replicaKey:ReplicaKey")
    for region in stack.config.regions:
        (key,) = [k for k in keys if k["region"] == region and "Data" in k["parent"]]
        (statement,) = [
            s for s in policy(key)["Statement"] if s["Sid"] == "AccountUsesKeyThroughSecretsManager"
        ]
        assert statement["Condition"]["StringEquals"]["kms:ViaService"] == (
            f"secretsmanager.{region}.amazonaws.com"
        )
        assert "kms:CreateGrant" not in statement["Action"]
