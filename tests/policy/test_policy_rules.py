"""Each rule passes the compliant stack and catches a deliberately broken one, by name."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from policy_stack import ACCOUNT, REGIONS, STACK, api_body, build_good_stack, find

from payments_dr.contract import HEALTH_PATH, PAYMENT_PATH, PAYMENTS_PATH, log_bucket_name
from payments_dr.policy import RULES, evaluate
from payments_dr.policy.model import Violation

Stack = list[dict[str, Any]]


def _set(name: str, value: Any, *path: str | int) -> Callable[[Stack], None]:
    """A mutation setting `inputs[path]` of resource `name` (None deletes the key)."""

    def mutate(stack: Stack) -> None:
        target: Any = find(stack, name)["inputs"]
        for step in path[:-1]:
            target = target[step]
        if value is None:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value

    return mutate


def _set_everywhere(template: str, value: Any, *path: str | int) -> Callable[[Stack], None]:
    """The same mutation in every region, so cross-region rules stay satisfied."""
    mutations = [_set(template.format(region=region), value, *path) for region in REGIONS]

    def mutate(stack: Stack) -> None:
        for mutation in mutations:
            mutation(stack)

    return mutate


def _keep_dependencies(name: str, kept: str) -> Callable[[Stack], None]:
    """A mutation leaving resource `name` depending only on URNs that contain `kept`."""

    def mutate(stack: Stack) -> None:
        resource = find(stack, name)
        resource["dependencies"] = [urn for urn in resource["dependencies"] if kept in urn]

    return mutate


def _drop(name: str) -> Callable[[Stack], None]:
    def mutate(stack: Stack) -> None:
        stack.remove(find(stack, name))

    return mutate


def _move(name: str, region: str) -> Callable[[Stack], None]:
    def mutate(stack: Stack) -> None:
        find(stack, name)["region"] = region

    return mutate


def _consume_retry_queue_without_redrive(stack: Stack) -> None:
    """A work queue polled by a mapping (as its source, not its failure destination)."""
    retry = find(stack, f"retry-{EAST}")["inputs"]
    retry.pop("redrivePolicy")
    mapping = copy.deepcopy(find(stack, f"table-stream-source-{EAST}"))
    mapping["name"] = mapping["urn"] = f"retry-queue-source-{EAST}"
    mapping["inputs"]["eventSourceArn"] = f"arn:aws:sqs:{EAST}:{ACCOUNT}:{retry['name']}"
    mapping["inputs"].pop("destinationConfig")
    stack.append(mapping)


def _consume_failure_destination(stack: Stack) -> None:
    """The archive-failures queue, still a failure destination, polled by a mapping too."""
    queue = find(stack, f"archive-failures-{EAST}")["inputs"]
    mapping = copy.deepcopy(find(stack, f"table-stream-source-{EAST}"))
    mapping["name"] = mapping["urn"] = f"archive-failures-source-{EAST}"
    mapping["inputs"]["eventSourceArn"] = queue["arn"]
    mapping["inputs"].pop("destinationConfig")
    stack.append(mapping)


def _grant(name: str, statement: dict[str, Any]) -> Callable[[Stack], None]:
    """A mutation adding `statement` to the identity policy of resource `name`."""

    def mutate(stack: Stack) -> None:
        inputs = find(stack, name)["inputs"]
        document = json.loads(inputs["policy"])
        document["Statement"].append(statement)
        inputs["policy"] = json.dumps(document)

    return mutate


def _strong_table(stack: Stack) -> None:
    for replica in find(stack, TABLE)["inputs"]["replicas"]:
        replica["consistencyMode"] = "STRONG"


def _set_record_ttl(name: str, ttl: float) -> Callable[[Stack], None]:
    """Turns an alias record into a plain record with its own TTL."""
    unalias = _set(name, None, "aliases")
    set_ttl = _set(name, ttl, "ttl")

    def mutate(stack: Stack) -> None:
        unalias(stack)
        set_ttl(stack)

    return mutate


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(action: Any, resource: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def _body_with(region: str, path: str, method: str, security: Any) -> dict[str, Any]:
    """The compliant API body with one operation's security replaced (None removes it)."""
    body = api_body(region)
    operation = body["paths"][path][method]
    if security is None:
        del operation["security"]
    else:
        operation["security"] = security
    return body


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Callable[[Stack], None]
    rule: str
    message: str  # expected in the violation message
    resource: str  # logical name of the resource the violation names
    also: tuple[str, ...] = ()  # other rules the same defect rightly breaks


EAST, WEST = REGIONS
TABLE = "payments-table"
BUCKET = f"txlog-{EAST}"
API_POLICY = f"api-policy-{EAST}"
API_ROLE = f"api-role-{EAST}"
API_FUNCTION = f"api-{EAST}"

ROOT = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
ROOT_KMS_STAR = {
    "Statement": [
        {
            "Sid": "EnableIamUserPermissions",
            "Effect": "Allow",
            "Principal": ROOT,
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
}
ROOT_DECRYPTS = {
    "Statement": [
        {
            "Sid": "Admin",
            "Effect": "Allow",
            "Principal": ROOT,
            "Action": ["kms:Describe*"],
            "Resource": "*",
        },
        {
            "Sid": "Use",
            "Effect": "Allow",
            "Principal": ROOT,
            "Action": ["kms:Decrypt"],
            "Resource": "*",
        },
    ]
}

CASES = [
    Case(
        "secret-aws-managed-key",
        _set("id-secret", "alias/aws/secretsmanager", "kmsKeyId"),
        "secrets-customer-managed-key",
        "is not encrypted with a customer-managed KMS key",
        "id-secret",
    ),
    Case(
        "secret-replica-no-key",
        _set("id-secret", None, "replicas", 0, "kmsKeyId"),
        "secrets-customer-managed-key",
        f"its replica in {WEST} has no customer-managed KMS key",
        "id-secret",
    ),
    Case(
        "table-pitr",
        _set(TABLE, {"enabled": False}, "pointInTimeRecovery"),
        "dynamodb-point-in-time-recovery",
        "Table 'payments-table' in us-east-1 has no point-in-time recovery",
        TABLE,
    ),
    Case(
        "replica-pitr",
        _set(TABLE, None, "replicas", 0, "pointInTimeRecovery"),
        "dynamodb-point-in-time-recovery",
        f"its replica in {WEST} has no point-in-time recovery",
        TABLE,
    ),
    Case(
        "table-aws-owned-key",
        _set(TABLE, {"enabled": False}, "serverSideEncryption"),
        "dynamodb-customer-managed-key",
        "is not encrypted with a customer-managed KMS key",
        TABLE,
    ),
    Case(
        "replica-no-key",
        _set(TABLE, None, "replicas", 0, "kmsKeyArn"),
        "dynamodb-customer-managed-key",
        f"its replica in {WEST} has no customer-managed KMS key",
        TABLE,
    ),
    Case(
        "table-deletable",
        _set(TABLE, False, "deletionProtectionEnabled"),
        "dynamodb-deletion-protection",
        "has no deletion protection. Fix: set deletion_protection_enabled=True",
        TABLE,
    ),
    Case(
        "replica-deletable",
        _set(TABLE, None, "replicas", 0, "deletionProtectionEnabled"),
        "dynamodb-deletion-protection",
        f"its replica in {WEST} has no deletion protection",
        TABLE,
    ),
    Case(
        "bucket-unversioned",
        _set(f"txlog-versioning-{EAST}", {"status": "Suspended"}, "versioningConfiguration"),
        "s3-versioning",
        f"Bucket '{BUCKET}' in {EAST} is not versioned",
        BUCKET,
    ),
    Case(
        "bucket-sse-s3",
        _set(
            f"txlog-encryption-{EAST}",
            [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
            "rules",
        ),
        "s3-sse-kms",
        "is not encrypted with SSE-KMS",
        BUCKET,
    ),
    Case(
        "bucket-public",
        _set(f"txlog-public-access-{EAST}", False, "restrictPublicBuckets"),
        "s3-public-access-block",
        "does not block public access (restrictPublicBuckets not set)",
        BUCKET,
    ),
    Case(
        "bucket-without-public-access-block",
        _drop(f"txlog-public-access-{EAST}"),
        "s3-public-access-block",
        "blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets not set",
        BUCKET,
    ),
    Case(
        "bucket-allows-plain-http",
        _set(
            f"txlog-policy-{EAST}",
            _policy({"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject"}),
            "policy",
        ),
        "s3-tls-only",
        "accepts requests without TLS",
        BUCKET,
    ),
    Case(
        "tls-deny-misses-objects",
        _set(
            f"txlog-policy-{EAST}",
            _policy(
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": f"arn:aws:s3:::{log_bucket_name(STACK, EAST, ACCOUNT)}",
                    "Condition": {"Bool": {"aws:SecureTransport": False}},
                }
            ),
            "policy",
        ),
        "s3-tls-only",
        "on the bucket and its objects",
        BUCKET,
    ),
    Case(
        "log-bucket-not-replicated",
        _drop(f"txlog-replication-{EAST}"),
        "s3-log-replication",
        "holds transaction logs but is not replicated",
        BUCKET,
    ),
    Case(
        "replication-without-rtc",
        _set(f"txlog-replication-{EAST}", None, "rules", 0, "destination", "replicationTime"),
        "s3-log-replication",
        "rule txlog has no Replication Time Control (15 minutes)",
        f"txlog-replication-{EAST}",
    ),
    Case(
        "replication-metrics-without-event-threshold",
        _set(
            f"txlog-replication-{EAST}",
            None,
            "rules",
            0,
            "destination",
            "metrics",
            "eventThreshold",
        ),
        "s3-log-replication",
        "rule txlog has no 15-minute replication metrics event threshold",
        f"txlog-replication-{EAST}",
    ),
    Case(
        "replication-before-peer-versioning",
        _keep_dependencies(f"txlog-replication-{EAST}", f"txlog-versioning-{EAST}"),
        "s3-log-replication",
        f"it does not depend on the versioning of {log_bucket_name(STACK, WEST, ACCOUNT)}",
        f"txlog-replication-{EAST}",
    ),
    Case(
        "queue-unencrypted",
        _set(f"retry-{EAST}", None, "kmsMasterKeyId"),
        "sqs-encryption",
        f"Queue 'retry-{EAST}' in {EAST} is not encrypted",
        f"retry-{EAST}",
    ),
    Case(
        "queue-without-redrive",
        _set(f"retry-{EAST}", None, "redrivePolicy"),
        "sqs-redrive-policy",
        "has no usable redrive policy",
        f"retry-{EAST}",
    ),
    Case(
        "redrive-never-triggers",
        _set(
            f"retry-{WEST}",
            json.dumps({"deadLetterTargetArn": "arn:aws:sqs:x", "maxReceiveCount": 0}),
            "redrivePolicy",
        ),
        "sqs-redrive-policy",
        f"Queue 'retry-{WEST}' in {WEST} has no usable redrive policy",
        f"retry-{WEST}",
    ),
    Case(
        "consumed-work-queue-without-redrive",
        _consume_retry_queue_without_redrive,
        "sqs-redrive-policy",
        f"Queue 'retry-{EAST}' in {EAST} has no usable redrive policy",
        f"retry-{EAST}",
    ),
    Case(
        # The queue is terminal only because the mapping sends failures to it.
        "mapping-loses-its-failure-destination",
        _set(f"table-stream-source-{EAST}", None, "destinationConfig"),
        "sqs-redrive-policy",
        f"Queue 'archive-failures-{EAST}' in {EAST} has no usable redrive policy",
        f"archive-failures-{EAST}",
    ),
    Case(
        # Consumed, it is a work queue: being a failure destination as well exempts nothing.
        "consumed-failure-destination-without-redrive",
        _consume_failure_destination,
        "sqs-redrive-policy",
        f"Queue 'archive-failures-{EAST}' in {EAST} has no usable redrive policy",
        f"archive-failures-{EAST}",
    ),
    Case(
        "failure-destination-short-retention",
        _set(f"archive-failures-{WEST}", 86400.0, "messageRetentionSeconds"),
        "sqs-dlq-retention",
        "is a failure destination keeping messages 86400 s, less than 14 days",
        f"archive-failures-{WEST}",
    ),
    Case(
        "dlq-short-retention",
        _set(f"retry-dlq-{EAST}", 345600.0, "messageRetentionSeconds"),
        "sqs-dlq-retention",
        "is a dead-letter queue keeping messages 345600 s, less than 14 days",
        f"retry-dlq-{EAST}",
    ),
    Case(
        "function-outside-vpc",
        _set_everywhere("api-{region}", None, "vpcConfig"),
        "lambda-in-vpc",
        f"Function '{API_FUNCTION}' in {EAST} does not run in a VPC",
        API_FUNCTION,
    ),
    Case(
        "function-passive-tracing",
        _set_everywhere("api-{region}", {"mode": "PassThrough"}, "tracingConfig"),
        "lambda-active-tracing",
        "has no active X-Ray tracing",
        API_FUNCTION,
    ),
    Case(
        "function-unreserved",
        _set_everywhere("api-{region}", -1.0, "reservedConcurrentExecutions"),
        "lambda-bounded-concurrency",
        "has unbounded concurrency (reserved_concurrent_executions is -1)",
        API_FUNCTION,
    ),
    Case(
        "function-secret-by-name",
        _set_everywhere(
            "api-{region}", "hunter2-but-longer", "environment", "variables", "DB_PASSWORD"
        ),
        "lambda-no-plaintext-secrets",
        "environment variable DB_PASSWORD holds a plaintext secret",
        API_FUNCTION,
    ),
    Case(
        "function-secret-by-value",
        _set_everywhere(
            "api-{region}", "AKIAIOSFODNN7EXAMPLE", "environment", "variables", "UPSTREAM"
        ),
        "lambda-no-plaintext-secrets",
        "environment variable UPSTREAM contains an AWS access key id",
        API_FUNCTION,
    ),
    Case(
        "invalid-policy-json",
        _set(API_POLICY, '{"Statement": [', "policy"),
        "iam-readable-documents",
        "policy is not valid JSON",
        API_POLICY,
    ),
    Case(
        "action-star",
        _set(API_POLICY, _policy(_allow("*", "arn:aws:s3:::bucket")), "policy"),
        "iam-no-wildcard-action",
        "allows every action",
        API_POLICY,
    ),
    Case(
        "service-wide-action",
        _set(API_POLICY, _policy(_allow(["sqs:*"], "arn:aws:sqs:*:*:q")), "policy"),
        "iam-no-service-wildcard",
        "allows service-wide actions sqs:*",
        API_POLICY,
    ),
    Case(
        "resource-star",
        _set(
            API_POLICY,
            _policy(_allow(["dynamodb:PutItem", "xray:PutTraceSegments"], "*")),
            "policy",
        ),
        "iam-no-wildcard-resource",
        "grants dynamodb:PutItem on every resource",
        API_POLICY,
    ),
    Case(
        "not-action",
        _set(
            API_POLICY,
            _policy({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "arn:aws:s3:::b"}),
            "policy",
        ),
        "iam-no-wildcard-action",
        "allows every action",
        API_POLICY,
    ),
    Case(
        "not-resource",
        _set(
            API_POLICY,
            _policy(
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:PutItem", "xray:PutTraceSegments"],
                    "NotResource": "arn:aws:dynamodb:us-east-1:111111111111:table/other",
                }
            ),
            "policy",
        ),
        "iam-no-wildcard-resource",
        "grants dynamodb:PutItem on every resource",
        API_POLICY,
    ),
    Case(
        "not-action-on-not-resource",
        _set(
            API_POLICY,
            _policy({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::b"}),
            "policy",
        ),
        "iam-no-wildcard-resource",
        "grants every action except iam:* on every resource",
        API_POLICY,
        also=("iam-no-wildcard-action",),
    ),
    Case(
        "inline-admin",
        _set(API_ROLE, [{"name": "admin", "policy": _policy(_allow("*", "*"))}], "inlinePolicies"),
        "iam-no-admin",
        "inline policy 'admin' grants administrator access (* on *)",
        API_ROLE,
        also=("iam-no-wildcard-action", "iam-no-wildcard-resource"),
    ),
    Case(
        "managed-admin",
        _set(API_ROLE, ["arn:aws:iam::aws:policy/AdministratorAccess"], "managedPolicyArns"),
        "iam-no-admin",
        "attaches the administrator-level managed policy",
        API_ROLE,
    ),
    Case(
        "trust-account-root",
        _set(
            API_ROLE,
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
            "assumeRolePolicy",
            "Statement",
            0,
        ),
        "iam-trust-single-service",
        "has a loose trust policy: it trusts {'AWS': '*'}, not only an AWS service",
        API_ROLE,
        also=("iam-trust-intended-service",),
    ),
    Case(
        "trust-wrong-service",
        _set(
            API_ROLE,
            "ec2.amazonaws.com",
            "assumeRolePolicy",
            "Statement",
            0,
            "Principal",
            "Service",
        ),
        "iam-trust-intended-service",
        f"is used by Function '{API_FUNCTION}' in {EAST} but trusts ec2.amazonaws.com",
        API_ROLE,
    ),
    Case(
        "edge-api",
        _set(f"rest-api-{EAST}", None, "endpointConfiguration"),
        "apigateway-regional-endpoint",
        "has endpoint type unset (EDGE)",
        f"rest-api-{EAST}",
    ),
    Case(
        "domain-tls10",
        _set(f"domain-{EAST}", "TLS_1_0", "securityPolicy"),
        "apigateway-domain-tls12",
        "allows TLS below 1.2 (security policy TLS_1_0)",
        f"domain-{EAST}",
    ),
    Case(
        "default-endpoint-enabled",
        _set(f"rest-api-{EAST}", None, "disableExecuteApiEndpoint"),
        "apigateway-default-endpoint-disabled",
        "keeps its default execute-api endpoint",
        f"rest-api-{EAST}",
    ),
    Case(
        "default-endpoint-explicitly-enabled",
        _set(f"rest-api-{EAST}", "false", "disableExecuteApiEndpoint"),
        "apigateway-default-endpoint-disabled",
        "keeps its default execute-api endpoint",
        f"rest-api-{EAST}",
    ),
    Case(
        "health-check-on-execute-api",
        _set(f"health-{EAST}", f"abc123.execute-api.{EAST}.amazonaws.com", "fqdn"),
        "apigateway-health-checks-on-custom-domains",
        f"probes the API Gateway host abc123.execute-api.{EAST}.amazonaws.com",
        f"health-{EAST}",
    ),
    Case(
        "health-check-on-a-custom-domains-target",
        _set(f"health-{EAST}", f"d-abc.execute-api.{EAST}.amazonaws.com.", "fqdn"),
        "apigateway-health-checks-on-custom-domains",
        "not a custom domain",
        f"health-{EAST}",
    ),
    Case(
        "stage-without-access-logs",
        _set(f"stage-{EAST}", None, "accessLogSettings"),
        "apigateway-stage-access-logs",
        "has no access logging",
        f"stage-{EAST}",
    ),
    Case(
        "stage-unthrottled",
        _set(f"stage-settings-{EAST}", None, "settings", "throttlingRateLimit"),
        "apigateway-stage-throttling",
        f"Stage 'stage-{EAST}' in {EAST} is not throttled",
        f"stage-{EAST}",
    ),
    Case(
        "payment-method-open",
        _set(f"rest-api-{WEST}", json.dumps(_body_with(WEST, PAYMENTS_PATH, "post", [])), "body"),
        "apigateway-methods-authorized",
        f"serves POST {PAYMENTS_PATH} without an authorizer",
        f"rest-api-{WEST}",
    ),
    Case(
        "payment-method-without-security",
        _set(f"rest-api-{EAST}", json.dumps(_body_with(EAST, PAYMENT_PATH, "get", None)), "body"),
        "apigateway-methods-authorized",
        f"serves GET {PAYMENT_PATH} without an authorizer",
        f"rest-api-{EAST}",
    ),
    Case(
        "payment-method-with-an-api-key-alternative",
        _set(
            f"rest-api-{EAST}",
            json.dumps(_body_with(EAST, PAYMENTS_PATH, "post", [{"MerchantKey": []}, {"k": []}])),
            "body",
        ),
        "apigateway-methods-authorized",
        f"serves POST {PAYMENTS_PATH} without an authorizer",
        f"rest-api-{EAST}",
    ),
    Case(
        "secondary-stage-without-web-acl",
        _drop(f"web-acl-association-{WEST}"),
        "waf-web-acl-on-every-stage",
        f"Stage 'stage-{WEST}' in {WEST} has no web ACL",
        f"stage-{WEST}",
    ),
    Case(
        "web-acl-of-the-other-region",
        _set(f"web-acl-association-{EAST}", f"web-acl-{WEST}_id", "webAclArn"),
        "waf-web-acl-on-every-stage",
        f"Stage 'stage-{EAST}' in {EAST} has no web ACL",
        f"stage-{EAST}",
    ),
    Case(
        "function-memory-drift",
        _set(f"api-{WEST}", 1024.0, "memorySize"),
        "dr-identical-functions",
        f"differs between {EAST} and {WEST}: memory 512.0 vs 1024.0",
        f"api-{WEST}",
    ),
    Case(
        "function-env-key-drift",
        _set(f"api-{WEST}", "1", "environment", "variables", "DEBUG"),
        "dr-identical-functions",
        "environment keys",
        f"api-{WEST}",
    ),
    Case(
        "function-artifact-drift",
        _set(f"log-archiver-{WEST}", {"archive": "payments-dr-service-fedcba.zip"}, "code"),
        "dr-identical-functions",
        "artifact",
        f"log-archiver-{WEST}",
    ),
    Case(
        "function-missing-in-one-region",
        _drop(f"retry-worker-{WEST}"),
        "dr-identical-functions",
        f"exists in {EAST} but not in {WEST}",
        f"retry-worker-{EAST}",
    ),
    Case(
        "record-without-health-check",
        _set(f"failover-{WEST}", None, "healthCheckId"),
        "dr-failover-health-checks",
        "(SECONDARY) has no health check",
        f"failover-{WEST}",
    ),
    Case(
        "health-check-probes-failover-name",
        _set(f"health-{EAST}", "api.payments.example.com", "fqdn"),
        "dr-failover-health-checks",
        "probes the shared failover name",
        f"health-{EAST}",
    ),
    Case(
        "record-without-switch",
        _set(f"failover-{EAST}", f"health-{EAST}_id", "healthCheckId"),
        "dr-failover-switch",
        f"can be moved away from {EAST} only by its own health check",
        f"failover-{EAST}",
    ),
    Case(
        "switch-alarm-in-the-region-it-moves-traffic-from",
        _set(f"switch-{EAST}", EAST, "cloudwatchAlarmRegion"),
        "dr-failover-switch",
        f"follows an alarm in {EAST}, the region it is meant to move traffic away from",
        f"switch-{EAST}",
    ),
    Case(
        "switch-alarm-not-declared",
        _drop(f"switch-alarm-{WEST}"),
        "dr-failover-switch",
        "which the stack does not declare there",
        f"switch-{WEST}",
    ),
    Case(
        "switch-outvoted-by-the-health-check",
        _set(f"record-health-{EAST}", 1.0, "childHealthThreshold"),
        "dr-failover-switch",
        "stays healthy with 1 of 2 children healthy",
        f"record-health-{EAST}",
    ),
    Case(
        "two-primaries",
        _set(f"failover-{WEST}", [{"type": "PRIMARY"}], "failoverRoutingPolicies"),
        "dr-failover-health-checks",
        "has PRIMARY, PRIMARY records",
        f"failover-{EAST}",
    ),
    Case(
        "long-ttl-record",
        _set_record_ttl(f"failover-{EAST}", 900.0),
        "dr-failover-within-rto",
        "fails over in up to 990 s (interval 10 s x threshold 3 + TTL 900 s + margin 60 s)",
        f"failover-{EAST}",
    ),
    Case(
        "lag-alarm-missing",
        _drop(f"replication-latency-{WEST}"),
        "dr-replication-lag-alarm",
        f"No ReplicationLatency alarm in {WEST}",
        TABLE,
    ),
    Case(
        "lag-alarm-on-another-table",
        _set(f"replication-latency-{WEST}", "other-table", "dimensions", "TableName"),
        "dr-replication-lag-alarm",
        f"No ReplicationLatency alarm in {WEST}",
        TABLE,
    ),
    Case(
        "lag-alarm-too-lax",
        _set(f"replication-latency-{EAST}", 60000.0, "threshold"),
        "dr-replication-lag-alarm",
        "fires on GreaterThanThreshold 60000.0 ms",
        f"replication-latency-{EAST}",
    ),
    Case(
        "strong-table-without-write-alarm",
        _strong_table,
        "dr-replication-lag-alarm",
        f"No SystemErrors alarm in {WEST} for Table 'payments-table'",
        TABLE,
    ),
    Case(
        "describe-log-groups-on-one-group",
        _grant(
            API_POLICY,
            _allow(
                "logs:DescribeLogGroups",
                [f"arn:aws:logs:{EAST}:{ACCOUNT}:log-group:/aws/vpc/flow-logs"],
            ),
        ),
        "iam-list-actions-as-evaluated",
        "authorizes it against 'arn:aws:logs:REGION:ACCOUNT:log-group::log-stream:'",
        API_POLICY,
    ),
    Case(
        "trace-upload-on-an-arn",
        _grant(
            API_POLICY,
            _allow("xray:PutTraceSegments", [f"arn:aws:xray:{EAST}:{ACCOUNT}:group/default"]),
        ),
        "iam-list-actions-as-evaluated",
        'Fix: grant xray:PutTraceSegments on "*"',
        API_POLICY,
    ),
    Case(
        "health-check-alarm-missing",
        _drop(f"health-alarm-{WEST}"),
        "dr-health-check-alarm",
        f"No HealthCheckStatus alarm in us-east-1 on HealthCheck 'health-{WEST}'",
        f"health-{WEST}",
    ),
    Case(
        "health-check-alarm-outside-us-east-1",
        _move(f"health-alarm-{WEST}", WEST),
        "dr-health-check-alarm",
        f"(the alarms in {WEST} never see data)",
        f"health-{WEST}",
    ),
    Case(
        "health-check-alarm-on-another-check",
        _set(f"health-alarm-{WEST}", f"health-{EAST}_id", "dimensions", "HealthCheckId"),
        "dr-health-check-alarm",
        f"No HealthCheckStatus alarm in us-east-1 on HealthCheck 'health-{WEST}'",
        f"health-{WEST}",
    ),
    Case(
        "health-check-alarm-fires-on-healthy",
        _set(f"health-alarm-{EAST}", "GreaterThanThreshold", "comparisonOperator"),
        "dr-health-check-alarm",
        "would not notify anyone when it fails",
        f"health-alarm-{EAST}",
    ),
    Case(
        "canary-alarm-missing",
        _drop(f"canary-alarm-{WEST}"),
        "canary-alarm-in-own-region",
        f"No alarm in {WEST} pages when Canary 'canary-{WEST}' in {WEST} fails",
        f"canary-{WEST}",
    ),
    Case(
        "canary-alarm-in-the-probed-region",
        _move(f"canary-alarm-{WEST}", EAST),
        "canary-alarm-in-own-region",
        f"(the alarms in {EAST} never see data)",
        f"canary-{WEST}",
    ),
    Case(
        "canary-alarm-without-actions",
        _set(f"canary-alarm-{EAST}", [], "alarmActions"),
        "canary-alarm-in-own-region",
        f"No alarm in {EAST} pages when Canary 'canary-{EAST}' in {EAST} fails",
        f"canary-{EAST}",
    ),
    Case(
        "canary-alarm-fires-on-success",
        _set(f"canary-alarm-{EAST}", "GreaterThanThreshold", "comparisonOperator"),
        "canary-alarm-in-own-region",
        f"No alarm in {EAST} pages when Canary 'canary-{EAST}' in {EAST} fails",
        f"canary-{EAST}",
    ),
    Case(
        "canary-probes-its-own-region",
        _set(
            f"canary-{EAST}",
            {"environmentVariables": {"PAYMENTS_DR_CANARY_TARGET_REGION": EAST}},
            "runConfig",
        ),
        "canary-alarm-in-own-region",
        f"probes {EAST}, the region it runs in",
        f"canary-{EAST}",
    ),
    Case(
        "health-check-alarm-without-actions",
        _set(f"health-alarm-{EAST}", [], "alarmActions"),
        "dr-health-check-alarm",
        "would not notify anyone when it fails",
        f"health-alarm-{EAST}",
    ),
    # Issue 16: no card data or merchant key in any sample, trace, log or archive.
    Case(
        "web-acl-samples-without-data-protection",
        _set(f"web-acl-{EAST}", None, "dataProtectionConfig"),
        "waf-sampling-data-protection",
        "samples requests without protecting the authorization header",
        f"web-acl-{EAST}",
    ),
    Case(
        "web-acl-protects-another-header",
        _set(
            f"web-acl-{WEST}",
            ["x-other"],
            "dataProtectionConfig",
            "dataProtections",
            0,
            "field",
            "fieldKeys",
        ),
        "waf-sampling-data-protection",
        "samples requests without protecting the authorization header",
        f"web-acl-{WEST}",
    ),
    Case(
        "web-acl-exempts-rule-match-details",
        _set(
            f"web-acl-{WEST}",
            True,
            "dataProtectionConfig",
            "dataProtections",
            0,
            "excludeRuleMatchDetails",
        ),
        "waf-sampling-data-protection",
        "samples requests without protecting the authorization header",
        f"web-acl-{WEST}",
    ),
    Case(
        "traced-function-records-responses",
        _set_everywhere(
            "api-{region}", None, "environment", "variables", "POWERTOOLS_TRACER_CAPTURE_RESPONSE"
        ),
        "lambda-traces-without-responses",
        "may record its responses in X-Ray",
        f"api-{EAST}",
    ),
    Case(
        "key-policy-gives-the-account-kms-star",
        _set(f"log-key-{EAST}", json.dumps(ROOT_KMS_STAR), "policy"),
        "kms-administration-apart-from-use",
        "gives the account kms:* (statement 'EnableIamUserPermissions') with no separate",
        f"log-key-{EAST}",
    ),
    Case(
        "key-policy-lets-the-account-decrypt-directly",
        _set(f"data-key-{WEST}", json.dumps(ROOT_DECRYPTS), "policy"),
        "kms-administration-apart-from-use",
        "lets the whole account use the key directly (statement 'Use')",
        f"data-key-{WEST}",
    ),
    Case(
        "key-without-a-policy",
        _set(f"data-key-{EAST}", None, "policy"),
        "kms-administration-apart-from-use",
        "has no key policy, so AWS gives the account kms:*",
        f"data-key-{EAST}",
    ),
    Case(
        "queue-without-tls-policy",
        _set(f"retry-{WEST}", None, "policy"),
        "sqs-tls-only",
        f"Queue 'retry-{WEST}' in {WEST} accepts requests without TLS",
        f"retry-{WEST}",
    ),
    Case(
        "queue-policy-denies-only-sends",
        _set(
            f"retry-dlq-{EAST}",
            json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sqs:SendMessage",
                            "Resource": "*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                }
            ),
            "policy",
        ),
        "sqs-tls-only",
        "accepts requests without TLS",
        f"retry-dlq-{EAST}",
    ),
]


def test_a_web_acl_that_samples_nothing_needs_no_data_protection() -> None:
    stack = build_good_stack()
    for region in REGIONS:
        acl = find(stack, f"web-acl-{region}")["inputs"]
        acl.pop("dataProtectionConfig")
        acl["visibilityConfig"]["sampledRequestsEnabled"] = False
    assert evaluate(stack) == []


def test_every_rule_is_exercised_by_a_broken_case() -> None:
    assert {rule.name for rule in RULES} == {case.rule for case in CASES}


def test_the_health_check_may_stay_open_and_an_unknown_body_is_not_judged() -> None:
    stack = build_good_stack()
    body = api_body(EAST)
    assert body["paths"][HEALTH_PATH]["get"]["security"] == []
    find(stack, f"rest-api-{EAST}")["inputs"]["body"] = None  # a preview may not know it yet
    assert evaluate(stack) == []


def test_rule_names_are_unique() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))


def test_compliant_stack_passes_every_rule() -> None:
    assert evaluate(build_good_stack()) == []


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_resource_is_caught(case: Case) -> None:
    stack = build_good_stack()
    case.mutate(stack)

    violations = evaluate(stack)

    assert {v.rule for v in violations} == {case.rule, *case.also}, _describe(violations)
    assert all("Fix:" in v.message for v in violations)
    named = [v for v in violations if v.rule == case.rule and v.resource_name == case.resource]
    assert named, _describe(violations)
    assert any(case.message in v.message for v in named), _describe(named)


def _describe(violations: list[Violation]) -> str:
    return "\n".join(f"{v.rule}: {v.message}" for v in violations)
