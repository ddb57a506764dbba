"""Issue 16 on the synthesized stack, in both modes: no card data or merchant key in any
sample, log or archive, and least privilege on payment data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra import role_names, storage
from payments_dr.infra.functions import TRACER_CAPTURE_RESPONSE_ENV
from payments_dr.simulated_aws import SIMULATED_ACCOUNT_ID as ACCOUNT
from payments_dr.synth import SynthResult

from .support import one, policy

ROLE = "aws:iam/role:Role"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
FUNCTION = "aws:lambda/function:Function"


def _protected_headers(acl: dict[str, Any]) -> dict[str, str]:
    """Header name -> protection action of a web ACL's data protection setting."""
    protections = acl["inputs"]["dataProtectionConfig"]["dataProtections"]
    return {
        key: protection["action"]
        for protection in protections
        if protection["field"]["fieldType"] == "SINGLE_HEADER"
        and not protection.get("excludeRuleMatchDetails")
        and not protection.get("excludeRateBasedDetails")
        for key in protection["field"]["fieldKeys"]
    }


def test_sampled_requests_never_hold_the_merchant_key(stack: SynthResult) -> None:
    for region in stack.config.regions:
        acl = one(stack.of_type(WEB_ACL, region))
        visibilities = [acl["inputs"]["visibilityConfig"]] + [
            rule["visibilityConfig"] for rule in acl["inputs"]["rules"]
        ]
        assert any(v["sampledRequestsEnabled"] for v in visibilities)  # sampling stays useful
        protected = _protected_headers(acl)
        assert protected[contract.AUTH_HEADER.lower()] == "SUBSTITUTION"
        # A refused card-shaped key would otherwise sit in the samples: hashed, still joinable.
        assert protected[contract.IDEMPOTENCY_HEADER.lower()] == "HASH"


def test_transaction_logs_expire_after_the_configured_retention(stack: SynthResult) -> None:
    days = stack.config.transaction_log_retention_days
    lifecycles = stack.of_type(LIFECYCLE)
    assert {lifecycle["inputs"]["region"] for lifecycle in lifecycles} == set(stack.config.regions)
    for lifecycle in lifecycles:
        rules = {rule["id"]: rule for rule in lifecycle["inputs"]["rules"]}
        logs = rules["age-transaction-logs"]
        assert logs["filter"] == {"prefix": contract.LOG_PREFIX}
        assert logs["expiration"] == {"days": days}
        assert logs["noncurrentVersionExpiration"] == {
            "noncurrentDays": storage.NONCURRENT_VERSION_EXPIRY_DAYS
        }
        for transition in logs["transitions"]:
            assert transition["days"] < days
        assert rules["abort-incomplete-uploads"]["expiration"] == {
            "expiredObjectDeleteMarker": True
        }


@pytest.mark.parametrize(
    ("days", "classes"),
    [(35, []), (60, ["STANDARD_IA"]), (269, ["STANDARD_IA"]), (270, ["STANDARD_IA", "GLACIER"])],
)
def test_a_transition_is_made_only_when_the_object_outlives_its_minimum_charge(
    days: int, classes: list[str]
) -> None:
    (logs, _) = storage.lifecycle_rules(days)
    assert [t["storage_class"] for t in logs["transitions"]] == classes
    assert logs["expiration"] == {"days": days}


def test_no_function_records_its_response_in_traces(stack: SynthResult) -> None:
    functions = stack.of_type(FUNCTION)
    assert len(functions) == 2 * len(contract.Function)
    for function in functions:
        variables = function["inputs"]["environment"]["variables"]
        assert variables[TRACER_CAPTURE_RESPONSE_ENV] == "false", function["name"]


# --- KMS: administration apart from use --------------------------------------------------
KEY_TYPES = ("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey")
USE_ACTIONS = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:*"}


def _key_policies(stack: SynthResult) -> dict[str, dict[str, Any]]:
    return {key["name"]: policy(key) for key_type in KEY_TYPES for key in stack.of_type(key_type)}


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_no_key_lets_the_account_use_it_outside_a_named_service(stack: SynthResult) -> None:
    root = f"arn:aws:iam::{ACCOUNT}:root"
    policies = _key_policies(stack)
    assert len(policies) == 2 + len(stack.config.regions)  # data key, its replica, log keys
    for name, document in policies.items():
        admin = [s for s in document["Statement"] if s["Sid"] == "AccountAdministersKey"]
        assert len(admin) == 1, name
        assert not _actions(admin[0]) & USE_ACTIONS, name
        for statement in document["Statement"]:
            if statement["Principal"] == {"AWS": root} and _actions(statement) & USE_ACTIONS:
                assert "kms:*" not in _actions(statement)
                assert statement["Condition"]["StringEquals"]["kms:ViaService"], name


def test_the_data_key_serves_named_roles_through_sqs_and_s3_only(stack: SynthResult) -> None:
    roles = {role["inputs"].get("name"): role for role in stack.of_type(ROLE)}
    for region in stack.config.regions:
        document = policy(_data_key(stack, region))
        by_sid = {s["Sid"]: s for s in document["Statement"]}
        for sid, service in (
            ("FunctionsUseKeyThroughSqs", "sqs"),
            ("ArchiverUsesKeyThroughS3", "s3"),
            ("ReplicationUsesKeyThroughS3", "s3"),
        ):
            statement = by_sid[sid]
            assert statement["Condition"]["StringEquals"]["kms:ViaService"] == (
                f"{service}.{region}.amazonaws.com"
            )
            for arn in statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]:
                # Each named role is one of the stack's, under its path: no typo grants nothing.
                name = arn.rsplit("/", 1)[1]
                assert arn == role_names.role_arn(ACCOUNT, stack.config.stack, name)
                assert name in roles, arn
        peer = stack.config.peer_region(region)
        sqs_users = by_sid["FunctionsUseKeyThroughSqs"]["Condition"]["ArnEquals"]
        assert (
            role_names.role_arn(
                ACCOUNT, stack.config.stack, role_names.function_role_name(Function.API, peer)
            )
            in sqs_users["aws:PrincipalArn"]
        )
        # Only services on behalf of principals IAM admits: DynamoDB and Lambda.
        account = by_sid["AccountUsesKeyThroughDynamoDbAndLambda"]["Condition"]["StringEquals"]
        assert account["kms:ViaService"] == [
            f"dynamodb.{region}.amazonaws.com",
            f"lambda.{region}.amazonaws.com",
        ]
        # Logs and alarms use their own key: the data key names no CloudWatch service.
        assert "cloudwatch" not in json.dumps(document) and "logs." not in json.dumps(document)


def test_log_groups_and_alarm_topics_use_the_log_key(stack: SynthResult) -> None:
    for region in stack.config.regions:
        log_key = one(
            [k for k in stack.of_type("aws:kms/key:Key", region) if k["name"].startswith("log-")]
        )
        statements = {s["Sid"]: s for s in policy(log_key)["Statement"]}
        alarms = statements["CloudWatchAlarmsPublishToEncryptedTopic"]["Condition"]
        assert alarms["ArnLike"]["aws:SourceArn"] == (
            f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:payments-dr-{stack.config.stack}-{region}-*"
        )
        data_key_arn = _data_key_arn(stack, region)
        for group in stack.of_type("aws:cloudwatch/logGroup:LogGroup", region):
            assert group["inputs"]["kmsKeyId"] != data_key_arn, group["name"]
            assert group["inputs"]["kmsKeyId"].startswith(f"arn:aws:kms:{region}:")
        for topic in stack.of_type("aws:sns/topic:Topic", region):
            assert topic["inputs"]["kmsMasterKeyId"] != data_key_arn


def test_only_the_archiver_replication_and_break_glass_read_log_objects(
    stack: SynthResult,
) -> None:
    roles = {role["inputs"].get("name") for role in stack.of_type(ROLE)}
    for region in stack.config.regions:
        bucket_policy = one(stack.of_type("aws:s3/bucketPolicy:BucketPolicy", region))
        statements = {s["Sid"]: s for s in policy(bucket_policy)["Statement"]}
        deny = statements["DenyObjectReadsButToNamedRoles"]
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
        assert set(deny["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
        readers = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        names = {arn.rsplit("/", 1)[1] for arn in readers}
        assert role_names.function_role_name(Function.LOG_ARCHIVER, region) in names
        assert {role_names.replication_role_name(r) for r in stack.config.regions} <= names
        assert names <= roles  # no break-glass role configured in these stacks


def test_a_break_glass_role_reads_logs_and_decrypts_through_s3_and_sqs() -> None:
    from payments_dr.infra.data import DataArgs, key_users
    from payments_dr.infra.resource_policies import key_policy, log_bucket_policy

    break_glass = f"arn:aws:iam::{ACCOUNT}:role/ops/break-glass"
    args = DataArgs(
        stack="prod",
        account_id=ACCOUNT,
        primary_region="us-east-1",
        secondary_region="us-east-2",
        consistency_mode=contract.ConsistencyMode.EVENTUAL,
        witness_region=None,
        tags={},
        break_glass_role_arn=break_glass,
    )
    document = key_policy("us-east-1", ACCOUNT, key_users("us-east-1", "us-east-2", args))
    statement = {s["Sid"]: s for s in document["Statement"]}["BreakGlassReadsThroughS3AndSqs"]
    assert statement["Action"] == ["kms:Decrypt"]
    assert statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] == [break_glass]
    assert statement["Condition"]["StringEquals"]["kms:ViaService"] == [
        "s3.us-east-1.amazonaws.com",
        "sqs.us-east-1.amazonaws.com",
    ]
    bucket = log_bucket_policy("arn:aws:s3:::b", [break_glass])
    assert bucket["Statement"][-1]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [break_glass]


def _data_key(stack: SynthResult, region: str) -> dict[str, Any]:
    name = f"data-key-{region}"
    return one([key for t in KEY_TYPES for key in stack.of_type(t, region) if key["name"] == name])


def _data_key_arn(stack: SynthResult, region: str) -> str:
    table = one(stack.of_type("aws:dynamodb/table:Table"))
    if region == stack.config.primary_region:
        arn: str = table["inputs"]["serverSideEncryption"]["kmsKeyArn"]
    else:
        arn = table["inputs"]["replicas"][0]["kmsKeyArn"]
    return arn
