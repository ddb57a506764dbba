"""Policy documents as pure functions: scoped ARNs, named actions, documented exceptions."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra import function_policies, iam, resource_policies
from payments_dr.service.model import IdKey
from payments_dr.service.store import HEALTH_PROBE_KEY

ACCOUNT = "111122223333"
REGION = "us-east-2"
PEER = "us-east-1"


def scope(function: Function) -> function_policies.FunctionScope:
    return function_policies.FunctionScope(
        function=function,
        region=REGION,
        account_id=ACCOUNT,
        table_arn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/payments",
        queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:retry",
        dlq_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:retry-dlq",
        peer_region=PEER,
        peer_queue_arn=f"arn:aws:sqs:{PEER}:{ACCOUNT}:retry",
        peer_key_arn=f"arn:aws:kms:{PEER}:{ACCOUNT}:key/mrk-1",
        archive_failures_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:archive-failures",
        bucket_arn="arn:aws:s3:::txlog-bucket",
        key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/mrk-1",
        log_group_arn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/fn",
        subnet_ids=["subnet-a", "subnet-b"],
        security_group_id="sg-1",
        ssm_path=f"/payments-dr/dev/{REGION}",
    )


def actions_of(document: dict[str, Any]) -> dict[str, list[str]]:
    """Action -> resources it is allowed on."""
    allowed: dict[str, list[str]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            allowed.setdefault(action, []).extend(statement["Resource"])
    return allowed


@pytest.mark.parametrize("function", list(Function))
def test_function_policy_names_every_action_and_scopes_resources(function: Function) -> None:
    allowed = actions_of(function_policies.function_policy(scope(function)))
    for action, resources in allowed.items():
        assert "*" not in action, action
        if "*" in resources:
            assert action in iam.ACTIONS_WITHOUT_RESOURCE_SCOPE, action
            assert resources == ["*"]
    peer_resources = {scope(function).peer_queue_arn, scope(function).peer_key_arn}
    for resource in (r for resources in allowed.values() for r in resources if r != "*"):
        parts = resource.split(":")
        if parts[3]:  # regional ARN: this region's, but for the API's retry queue in the peer
            expected = PEER if function is Function.API and resource in peer_resources else REGION
            assert parts[3] == expected, resource
            assert parts[4] == ACCOUNT, resource
    if function is not Function.API:
        assert not peer_resources & {r for resources in allowed.values() for r in resources}


def test_api_writes_payments_and_queues_retries_only_in_the_peer_region() -> None:
    api = scope(Function.API)
    document = function_policies.function_policy(api)
    allowed = actions_of(document)
    assert allowed["dynamodb:PutItem"] == [api.table_arn]
    # A 202 must outlive this region: the retry goes to the peer's queue, with the peer's key.
    assert allowed["sqs:SendMessage"] == [api.peer_queue_arn]
    (encrypt,) = [s for s in document["Statement"] if "kms:GenerateDataKey" in s["Action"]]
    assert encrypt["Resource"] == [api.peer_key_arn]
    assert encrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"sqs.{PEER}.amazonaws.com"}}
    assert "sqs:ReceiveMessage" not in allowed
    assert "s3:PutObject" not in allowed
    assert not any(action.startswith("dynamodb:Delete") for action in allowed)


def test_retry_worker_consumes_its_queue_and_writes_the_table() -> None:
    allowed = actions_of(function_policies.function_policy(scope(Function.RETRY_WORKER)))
    queue = scope(Function.RETRY_WORKER).queue_arn
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert allowed[action] == [queue]
    assert allowed["dynamodb:PutItem"] == [scope(Function.RETRY_WORKER).table_arn]
    # It may only park conflicting payments on its DLQ, never feed its own queue.
    assert allowed["sqs:SendMessage"] == [scope(Function.RETRY_WORKER).dlq_arn]


def test_log_archiver_reads_the_stream_and_writes_only_its_regions_log_prefix() -> None:
    allowed = actions_of(function_policies.function_policy(scope(Function.LOG_ARCHIVER)))
    stream = f"{scope(Function.LOG_ARCHIVER).table_arn}/stream/*"
    assert allowed["dynamodb:GetRecords"] == [stream]
    # The peer's prefix arrives by bucket replication only, so the archiver cannot overwrite it.
    assert allowed["s3:PutObject"] == [
        f"arn:aws:s3:::txlog-bucket/{contract.log_region_prefix(REGION)}*"
    ]
    assert "dynamodb:UpdateItem" not in allowed and "dynamodb:DeleteItem" not in allowed


def test_log_archiver_writes_conflict_records_and_no_payment() -> None:
    document = function_policies.function_policy(scope(Function.LOG_ARCHIVER))
    (statement,) = [s for s in document["Statement"] if "dynamodb:PutItem" in s["Action"]]
    assert statement["Action"] == ["dynamodb:PutItem"]
    assert statement["Resource"] == [scope(Function.LOG_ARCHIVER).table_arn]
    leading_keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert leading_keys == [f"{contract.CONFLICT_ITEM_PREFIX}*"]


def test_log_archiver_may_only_record_dropped_ranges_on_its_failures_queue() -> None:
    archiver = scope(Function.LOG_ARCHIVER)
    document = function_policies.function_policy(archiver)
    allowed = actions_of(document)
    # Lambda sends the mapping's failure records with the function's role: that one call only.
    assert [a for a in allowed if a.startswith("sqs:")] == ["sqs:SendMessage"]
    assert allowed["sqs:SendMessage"] == [archiver.archive_failures_queue_arn]
    # The queue is encrypted with the region's key, which SQS may use only for it.
    via_sqs = [
        s
        for s in document["Statement"]
        if s.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
        == f"sqs.{REGION}.amazonaws.com"
    ]
    assert [(s["Action"], s["Resource"]) for s in via_sqs] == [
        (["kms:Decrypt", "kms:GenerateDataKey"], [archiver.key_arn])
    ]
    for other in (Function.API, Function.RETRY_WORKER, Function.AUTHORIZER):
        sends = actions_of(function_policies.function_policy(scope(other))).get(
            "sqs:SendMessage", []
        )
        assert archiver.archive_failures_queue_arn not in sends, other


def test_vpc_interface_actions_are_scoped_to_the_functions_subnets_and_group() -> None:
    allowed = actions_of(function_policies.function_policy(scope(Function.API)))
    resources = allowed["ec2:CreateNetworkInterface"]
    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    assert f"{ec2}:subnet/subnet-a" in resources
    assert f"{ec2}:subnet/subnet-b" in resources
    assert f"{ec2}:security-group/sg-1" in resources


@pytest.mark.parametrize("function", list(Function))
def test_only_the_api_reads_ssm_and_only_the_mode_parameter(function: Function) -> None:
    allowed = actions_of(function_policies.function_policy(scope(function)))
    ssm = {action: arns for action, arns in allowed.items() if action.startswith("ssm:")}
    if function in contract.MODE_READERS:
        mode = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/payments-dr/dev/{REGION}/mode"
        assert ssm == {"ssm:GetParameter": [mode]}
    else:
        assert ssm == {}  # deploy-time settings arrive in the environment


def test_replication_policy_reads_source_and_writes_destination_only() -> None:
    document = iam.replication_policy(
        source_bucket_arn="arn:aws:s3:::src",
        destination_bucket_arn="arn:aws:s3:::dst",
        source_key_arn="arn:aws:kms:us-east-1:1:key/mrk-1",
        destination_key_arn="arn:aws:kms:us-east-2:1:key/mrk-1",
        source_region="us-east-1",
        destination_region="us-east-2",
    )
    allowed = actions_of(document)
    assert allowed["s3:GetReplicationConfiguration"] == ["arn:aws:s3:::src"]
    assert allowed["s3:ReplicateObject"] == ["arn:aws:s3:::dst/*"]
    assert allowed["kms:Decrypt"] == ["arn:aws:kms:us-east-1:1:key/mrk-1"]
    assert allowed["kms:GenerateDataKey"] == ["arn:aws:kms:us-east-2:1:key/mrk-1"]
    decrypt = next(s for s in document["Statement"] if s["Action"] == ["kms:Decrypt"])
    # Bucket keys make the bucket ARN the encryption context; objects' ARNs otherwise.
    assert decrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [
        "arn:aws:s3:::src",
        "arn:aws:s3:::src/*",
    ]
    assert all("*" not in action for action in allowed)
    assert "*" not in {r for resources in allowed.values() for r in resources}


def test_trust_policy_guards_against_confused_deputy() -> None:
    statement = iam.service_assume_role_policy("lambda.amazonaws.com", ACCOUNT)["Statement"][0]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT


def test_bucket_policy_denies_plain_http_and_old_tls() -> None:
    statements = resource_policies.tls_only_bucket_policy("arn:aws:s3:::b")["Statement"]
    assert {s["Effect"] for s in statements} == {"Deny"}
    conditions = [s["Condition"] for s in statements]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": "1.2"}} in conditions


def test_key_policy_limits_logs_service_to_its_region() -> None:
    alarms = f"arn:aws:cloudwatch:us-east-2:{ACCOUNT}:alarm:payments-dr-dev-us-east-2-*"
    topic = f"arn:aws:sns:us-east-2:{ACCOUNT}:payments-dr-dev-alarms"
    statements = resource_policies.log_key_policy("us-east-2", ACCOUNT, alarms, topic)["Statement"]
    logs = next(s for s in statements if "logs" in str(s["Principal"]))
    assert logs["Principal"] == {"Service": "logs.us-east-2.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].startswith(
        f"arn:aws:logs:us-east-2:{ACCOUNT}:"
    )


def test_flow_log_delivery_is_limited_to_its_log_group() -> None:
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/flow"
    allowed = actions_of(iam.flow_log_policy(group, REGION, ACCOUNT))
    assert allowed["logs:PutLogEvents"] == [group, f"{group}:log-stream:*"]
    assert "logs:CreateLogGroup" not in allowed
    # AWS authorizes DescribeLogGroups against the account's whole log-group space.
    assert allowed["logs:DescribeLogGroups"] == [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:*"]


def endpoint_policies(
    base: function_policies.FunctionScope, region: str = REGION
) -> dict[str, Any]:
    """The endpoint policies of `region` (the peer's: of the queues named in `base`)."""
    local = region == REGION
    return function_policies.endpoint_policies(
        region=region,
        account_id=ACCOUNT,
        table_arn=base.table_arn,
        queue_arn=base.queue_arn if local else base.peer_queue_arn,
        dlq_arn=base.dlq_arn,
        bucket_arn=base.bucket_arn,
        ssm_path=base.ssm_path,
    )


def test_endpoint_policies_admit_only_the_functions_calls_from_this_account() -> None:
    base = scope(Function.API)
    policies = endpoint_policies(base)
    assert set(policies) == {"dynamodb", "s3", "sqs", "ssm", "xray"}
    for document in policies.values():
        (statement,) = document["Statement"]
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}
        assert all("*" not in action for action in statement["Action"])
    # X-Ray has no resource types: the trace calls themselves are what is fenced.
    assert actions_of(policies["xray"]) == {
        "xray:PutTelemetryRecords": ["*"],
        "xray:PutTraceSegments": ["*"],
    }
    assert actions_of(policies["dynamodb"]) == {
        "dynamodb:GetItem": [base.table_arn],
        "dynamodb:PutItem": [base.table_arn],
    }
    assert actions_of(policies["s3"]) == {
        "s3:PutObject": [f"{base.bucket_arn}/{contract.log_region_prefix(REGION)}*"]
    }
    assert actions_of(policies["sqs"]) == {"sqs:SendMessage": [base.queue_arn, base.dlq_arn]}


def test_every_function_call_passes_its_regions_endpoints() -> None:
    """Endpoint policies must not block what the roles allow through the VPC."""
    base = scope(Function.API)
    through_endpoints: dict[str, list[str]] = {}
    for region in (REGION, PEER):  # the peer's endpoints are reached through the peering
        for document in endpoint_policies(base, region).values():
            for action, resources in actions_of(document).items():
                through_endpoints.setdefault(action, []).extend(resources)
    # Called by the functions' own code (the event source mappings poll from outside the VPC).
    calls = {
        Function.API: ["dynamodb:PutItem", "dynamodb:GetItem", "sqs:SendMessage"],
        Function.RETRY_WORKER: ["dynamodb:PutItem", "dynamodb:GetItem", "sqs:SendMessage"],
        Function.LOG_ARCHIVER: ["s3:PutObject"],
    }
    for function, actions in calls.items():
        allowed = actions_of(function_policies.function_policy(scope(function)))
        reads = ["ssm:GetParameter"] if function in contract.MODE_READERS else []
        for action in [*actions, *reads, "xray:PutTraceSegments"]:
            assert set(allowed[action]) <= set(through_endpoints[action]), (function, action)


def test_authorizer_reads_only_merchant_records() -> None:
    document = function_policies.function_policy(scope(Function.AUTHORIZER))
    allowed = actions_of(document)
    assert allowed["dynamodb:GetItem"] == [scope(Function.AUTHORIZER).table_arn]
    assert not any(a.startswith(("dynamodb:Put", "dynamodb:Update", "sqs:")) for a in allowed)
    (read,) = [s for s in document["Statement"] if "dynamodb:GetItem" in s["Action"]]
    leading_keys = read["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert leading_keys == [f"{contract.MERCHANT_ITEM_PREFIX}*"]


@pytest.mark.parametrize("function", [Function.API, Function.RETRY_WORKER])
def test_payment_writers_cannot_write_a_merchant_key_or_a_conflict(function: Function) -> None:
    """Issue 16, point 9: without LeadingKeys, a compromised API could enrol a merchant key of
    its choosing (`merchant#...`)."""
    document = function_policies.function_policy(scope(function))
    table_statements = [
        s for s in document["Statement"] if any(a.startswith("dynamodb:") for a in s["Action"])
    ]
    assert table_statements
    for statement in table_statements:
        patterns = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        admits = [
            p
            for p in patterns
            if fnmatch.fnmatchcase(IdKey("k" * 32).payment_id("m-1", "key-0001"), p)
        ]
        assert admits, statement["Sid"]
        for forbidden in (contract.merchant_item_key("m-1"), "conflict#pay_x#abc"):
            assert not any(fnmatch.fnmatchcase(forbidden, p) for p in patterns), forbidden
    readable = [
        p
        for s in table_statements
        if "dynamodb:GetItem" in s["Action"]
        for p in s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    ]
    if function is Function.API:
        assert HEALTH_PROBE_KEY in readable  # the health check reads its probe key
