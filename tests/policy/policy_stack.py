"""A hand-made, compliant two-region stack in the shape `payments_dr.synth` emits.

Tests break one property at a time and expect the matching rule to name it.
"""

from __future__ import annotations

import json
from typing import Any

from payments_dr import contract
from payments_dr.infra import resource_policies
from payments_dr.policy import tokens

ACCOUNT = "123456789012"
STACK = "dev"
REGIONS = ("us-east-1", "us-east-2")
DOMAIN = "api.payments.example.com"
ZONE_ID = "Z0123456789ABCDEFGHIJ"


def _key_arn(region: str) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/mrk-0123456789abcdef"


def _resource(type_: str, name: str, region: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": type_,
        "name": name,
        "urn": _urn(type_, name),
        "region": region,
        "parent": "",
        "id": f"{name}_id",
        "inputs": inputs,
    }


def _peer(region: str) -> str:
    return REGIONS[1] if region == REGIONS[0] else REGIONS[0]


def _table() -> dict[str, Any]:
    primary, secondary = REGIONS
    return _resource(
        tokens.DYNAMODB_TABLE,
        "payments-table",
        primary,
        {
            "name": contract.table_name(STACK),
            "billingMode": "PAY_PER_REQUEST",
            "hashKey": contract.TABLE_HASH_KEY,
            "pointInTimeRecovery": {"enabled": True},
            "serverSideEncryption": {"enabled": True, "kmsKeyArn": _key_arn(primary)},
            "deletionProtectionEnabled": True,
            "streamEnabled": True,
            "streamViewType": contract.TABLE_STREAM_VIEW_TYPE,
            "replicas": [
                {
                    "regionName": secondary,
                    "pointInTimeRecovery": True,
                    "kmsKeyArn": _key_arn(secondary),
                    "deletionProtectionEnabled": True,
                }
            ],
        },
    )


def _bucket_name(region: str) -> str:
    return contract.log_bucket_name(STACK, region, ACCOUNT)


def _tls_only_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def _tls_only_queue_policy(region: str, queue: str) -> str:
    return json.dumps(
        resource_policies.tls_only_queue_policy(f"arn:aws:sqs:{region}:{ACCOUNT}:{queue}")
    )


def _keys(region: str) -> list[dict[str, Any]]:
    """The data key (a replica outside the first region) and the region's log key."""
    role = f"arn:aws:iam::{ACCOUNT}:role/{STACK}/retry-worker-{region}"
    users = resource_policies.DataKeyUsers(
        sqs=[role], s3=[role], replication=[role], break_glass=None
    )
    alarms = f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:payments-dr-{STACK}-{region}-*"
    topic = f"arn:aws:sns:{region}:{ACCOUNT}:alarms"
    data_type = tokens.KMS_KEY if region == REGIONS[0] else tokens.KMS_REPLICA_KEY
    return [
        _resource(
            data_type,
            f"data-key-{region}",
            region,
            {"policy": json.dumps(resource_policies.key_policy(region, ACCOUNT, users))},
        ),
        _resource(
            tokens.KMS_KEY,
            f"log-key-{region}",
            region,
            {
                "policy": json.dumps(
                    resource_policies.log_key_policy(region, ACCOUNT, alarms, topic)
                )
            },
        ),
    ]


def _urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{contract.PROJECT}::{type_}::{name}"


def _storage(region: str) -> list[dict[str, Any]]:
    bucket = _bucket_name(region)
    peer_bucket = _bucket_name(_peer(region))
    resource = _resource(tokens.S3_BUCKET, f"txlog-{region}", region, {"bucket": bucket})
    resource["id"] = bucket  # a bucket's id is its name
    replication = _replication(region, bucket, peer_bucket)
    # S3 needs both sides versioned before it accepts the configuration.
    replication["dependencies"] = [
        _urn(tokens.S3_BUCKET_VERSIONING, f"txlog-versioning-{r}") for r in (region, _peer(region))
    ]
    return [
        resource,
        _resource(
            tokens.S3_BUCKET_VERSIONING,
            f"txlog-versioning-{region}",
            region,
            {"bucket": bucket, "versioningConfiguration": {"status": "Enabled"}},
        ),
        _resource(
            tokens.S3_BUCKET_ENCRYPTION,
            f"txlog-encryption-{region}",
            region,
            {
                "bucket": bucket,
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": _key_arn(region),
                        },
                        "bucketKeyEnabled": True,
                    }
                ],
            },
        ),
        _resource(
            tokens.S3_BUCKET_PUBLIC_ACCESS_BLOCK,
            f"txlog-public-access-{region}",
            region,
            {
                "bucket": bucket,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
        ),
        _resource(
            tokens.S3_BUCKET_POLICY,
            f"txlog-policy-{region}",
            region,
            {"bucket": bucket, "policy": _tls_only_policy(bucket)},
        ),
        replication,
    ]


def _replication(region: str, bucket: str, peer_bucket: str) -> dict[str, Any]:
    return _resource(
        tokens.S3_BUCKET_REPLICATION,
        f"txlog-replication-{region}",
        region,
        {
            "bucket": bucket,
            "role": f"arn:aws:iam::{ACCOUNT}:role/replication",
            "rules": [
                {
                    "id": "txlog",
                    "status": "Enabled",
                    "filter": {"prefix": contract.LOG_PREFIX},
                    "deleteMarkerReplication": {"status": "Enabled"},
                    "sourceSelectionCriteria": {"sseKmsEncryptedObjects": {"status": "Enabled"}},
                    "destination": {
                        "bucket": f"arn:aws:s3:::{peer_bucket}",
                        "encryptionConfiguration": {"replicaKmsKeyId": _key_arn(_peer(region))},
                        "metrics": {"status": "Enabled", "eventThreshold": {"minutes": 15.0}},
                        "replicationTime": {"status": "Enabled", "time": {"minutes": 15.0}},
                    },
                }
            ],
        },
    )


def _queues(region: str) -> list[dict[str, Any]]:
    dlq_arn = f"arn:aws:sqs:{region}:{ACCOUNT}:{contract.dlq_name(STACK)}"
    return [
        _resource(
            tokens.SQS_QUEUE,
            f"retry-dlq-{region}",
            region,
            {
                "name": contract.dlq_name(STACK),
                "policy": _tls_only_queue_policy(region, contract.dlq_name(STACK)),
                "kmsMasterKeyId": _key_arn(region),
                "messageRetentionSeconds": float(contract.DLQ_RETENTION_SECONDS),
                "arn": dlq_arn,
                "redriveAllowPolicy": json.dumps(
                    {
                        "redrivePermission": "byQueue",
                        "sourceQueueArns": [
                            f"arn:aws:sqs:{region}:{ACCOUNT}:{contract.retry_queue_name(STACK)}"
                        ],
                    }
                ),
            },
        ),
        _resource(
            tokens.SQS_QUEUE,
            f"retry-{region}",
            region,
            {
                "name": contract.retry_queue_name(STACK),
                "policy": _tls_only_queue_policy(region, contract.retry_queue_name(STACK)),
                "kmsMasterKeyId": _key_arn(region),
                "messageRetentionSeconds": float(contract.RETRY_QUEUE_RETENTION_SECONDS),
                "redrivePolicy": json.dumps(
                    {
                        "deadLetterTargetArn": dlq_arn,
                        "maxReceiveCount": contract.RETRY_MAX_RECEIVE_COUNT,
                    }
                ),
            },
        ),
    ]


def _archive_failures(region: str) -> list[dict[str, Any]]:
    """The archiver's stream mapping and the terminal queue it records dropped ranges on."""
    queue_arn = f"arn:aws:sqs:{region}:{ACCOUNT}:{contract.archive_failures_queue_name(STACK)}"
    archiver = contract.function_name(STACK, contract.Function.LOG_ARCHIVER)
    return [
        _resource(
            tokens.SQS_QUEUE,
            f"archive-failures-{region}",
            region,
            {
                "name": contract.archive_failures_queue_name(STACK),
                "policy": _tls_only_queue_policy(
                    region, contract.archive_failures_queue_name(STACK)
                ),
                "kmsMasterKeyId": _key_arn(region),
                "messageRetentionSeconds": float(contract.ARCHIVE_FAILURES_RETENTION_SECONDS),
                "arn": queue_arn,
                "redriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"}),
            },
        ),
        _resource(
            tokens.LAMBDA_EVENT_SOURCE_MAPPING,
            f"table-stream-source-{region}",
            region,
            {
                "eventSourceArn": (
                    f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{contract.table_name(STACK)}"
                    "/stream/2026-01-01T00:00:00.000"
                ),
                "functionName": f"arn:aws:lambda:{region}:{ACCOUNT}:function:{archiver}",
                "destinationConfig": {"onFailure": {"destinationArn": queue_arn}},
            },
        ),
    ]


def _function_role_arn(region: str, function: contract.Function) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{function.value}-{region}"


def _functions(region: str) -> list[dict[str, Any]]:
    resources = []
    for function, settings in contract.FUNCTIONS.items():
        role_arn = _function_role_arn(region, function)
        resources.append(
            _resource(
                tokens.IAM_ROLE,
                f"{function.value}-role-{region}",
                region,
                {
                    "arn": role_arn,
                    "assumeRolePolicy": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                },
            )
        )
        resources.append(
            _resource(
                tokens.IAM_ROLE_POLICY,
                f"{function.value}-policy-{region}",
                region,
                {
                    "role": f"{function.value}-role-{region}_id",
                    "policy": json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["dynamodb:PutItem", "dynamodb:GetItem"],
                                    "Resource": [
                                        f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/"
                                        + contract.table_name(STACK)
                                    ],
                                },
                                {
                                    "Effect": "Allow",
                                    "Action": [
                                        "xray:PutTraceSegments",
                                        "xray:PutTelemetryRecords",
                                        "ec2:CreateNetworkInterface",
                                        "ec2:DescribeNetworkInterfaces",
                                        "ec2:DeleteNetworkInterface",
                                    ],
                                    "Resource": "*",
                                },
                            ],
                        }
                    ),
                },
            )
        )
        resources.append(
            _resource(
                tokens.LAMBDA_FUNCTION,
                f"{function.value}-{region}",
                region,
                {
                    "name": contract.function_name(STACK, function),
                    "role": role_arn,
                    "runtime": contract.LAMBDA_RUNTIME,
                    "handler": settings.handler,
                    "memorySize": float(settings.memory_mb),
                    "timeout": float(settings.timeout_seconds),
                    "reservedConcurrentExecutions": float(settings.reserved_concurrency),
                    "architectures": ["arm64"],
                    "code": {"archive": "payments-dr-service-0123456789abcdef.zip"},
                    "sourceCodeHash": "c29tZS1oYXNo",
                    "tracingConfig": {"mode": "Active"},
                    "vpcConfig": {
                        "subnetIds": [f"subnet-a-{region}", f"subnet-b-{region}"],
                        "securityGroupIds": [f"sg-functions-{region}"],
                    },
                    "environment": {
                        "variables": {
                            contract.ENV_SSM_PATH: contract.ssm_path(STACK, region),
                            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                        }
                    },
                },
            )
        )
    return resources


def api_body(region: str) -> dict[str, Any]:
    """An OpenAPI body with a Lambda REQUEST authorizer on each payment operation."""
    merchant_key = [{"MerchantKey": []}]
    return {
        "openapi": "3.0.3",
        "components": {
            "securitySchemes": {
                "MerchantKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": contract.AUTH_HEADER,
                    "x-amazon-apigateway-authtype": "custom",
                    "x-amazon-apigateway-authorizer": {
                        "type": "request",
                        "authorizerUri": f"arn:aws:apigateway:{region}:lambda:path/authorizer",
                    },
                }
            }
        },
        "paths": {
            contract.PAYMENTS_PATH: {"post": {"security": merchant_key}},
            contract.PAYMENT_PATH: {"get": {"security": merchant_key}},
            contract.HEALTH_PATH: {"get": {"security": []}},
        },
    }


def _api(region: str) -> list[dict[str, Any]]:
    rest_api_id = f"rest-api-{region}_id"
    return [
        _resource(
            tokens.APIGATEWAY_REST_API,
            f"rest-api-{region}",
            region,
            {
                "name": "payments",
                "endpointConfiguration": {"types": "REGIONAL"},
                "disableExecuteApiEndpoint": True,
                "body": json.dumps(api_body(region)),
            },
        ),
        _resource(
            tokens.WAFV2_WEB_ACL,
            f"web-acl-{region}",
            region,
            {
                "name": "payments",
                "scope": "REGIONAL",
                "defaultAction": {"allow": {}},
                "visibilityConfig": {"sampledRequestsEnabled": True},
                "dataProtectionConfig": {
                    "dataProtections": [
                        {
                            "action": "SUBSTITUTION",
                            "field": {"fieldType": "SINGLE_HEADER", "fieldKeys": ["Authorization"]},
                        }
                    ]
                },
            },
        ),
        _resource(
            tokens.WAFV2_WEB_ACL_ASSOCIATION,
            f"web-acl-association-{region}",
            region,
            {
                "webAclArn": f"web-acl-{region}_id",
                "resourceArn": (
                    f"arn:aws:apigateway:{region}::/restapis/{rest_api_id}"
                    f"/stages/{contract.API_STAGE}"
                ),
            },
        ),
        _resource(
            tokens.APIGATEWAY_DOMAIN_NAME,
            f"domain-{region}",
            region,
            {
                "domainName": DOMAIN,
                "securityPolicy": "TLS_1_2",
                "endpointConfiguration": {"types": "REGIONAL"},
                "regionalCertificateArn": f"arn:aws:acm:{region}:{ACCOUNT}:certificate/abc",
            },
        ),
        _resource(
            tokens.APIGATEWAY_STAGE,
            f"stage-{region}",
            region,
            {
                "restApi": rest_api_id,
                "stageName": contract.API_STAGE,
                "deployment": f"deployment-{region}_id",
                "xrayTracingEnabled": True,
                "accessLogSettings": {
                    "destinationArn": f"arn:aws:logs:{region}:{ACCOUNT}:log-group:access",
                    "format": '{"requestId":"$context.requestId"}',
                },
            },
        ),
        _resource(
            tokens.APIGATEWAY_METHOD_SETTINGS,
            f"stage-settings-{region}",
            region,
            {
                "restApi": rest_api_id,
                "stageName": contract.API_STAGE,
                "methodPath": "*/*",
                "settings": {
                    "metricsEnabled": True,
                    "throttlingRateLimit": 100.0,
                    "throttlingBurstLimit": 200.0,
                },
            },
        ),
        _resource(
            tokens.CLOUDWATCH_METRIC_ALARM,
            f"replication-latency-{region}",
            region,
            {
                "namespace": "AWS/DynamoDB",
                "metricName": "ReplicationLatency",
                "dimensions": {
                    "TableName": contract.table_name(STACK),
                    "ReceivingRegion": _peer(region),
                },
                "statistic": "Average",
                "period": 60.0,
                "evaluationPeriods": 1.0,
                "threshold": 30000.0,
                "comparisonOperator": "GreaterThanThreshold",
            },
        ),
        _resource(
            tokens.ROUTE53_HEALTH_CHECK,
            f"health-{region}",
            contract.DEFAULT_PRIMARY_REGION,
            {
                "type": "HTTPS",
                "fqdn": f"api.{region}.payments.example.com",
                "resourcePath": contract.HEALTH_PATH,
                "port": 443.0,
                "requestInterval": 10.0,
                "failureThreshold": 3.0,
            },
        ),
        # The region's traffic switch: an alarm held in the peer region, and the CALCULATED
        # check the record uses, healthy only while both children are.
        _resource(
            tokens.CLOUDWATCH_METRIC_ALARM,
            f"switch-alarm-{region}",
            _peer(region),
            {
                "name": contract.switch_alarm_name(STACK, region),
                "namespace": contract.SWITCH_NAMESPACE,
                "metricName": contract.SWITCH_METRIC,
                "dimensions": contract.switch_dimensions(STACK, region),
                "statistic": "Maximum",
                "period": 60.0,
                "evaluationPeriods": 1.0,
                "threshold": 1.0,
                "comparisonOperator": "GreaterThanOrEqualToThreshold",
            },
        ),
        _resource(
            tokens.ROUTE53_HEALTH_CHECK,
            f"switch-{region}",
            contract.DEFAULT_PRIMARY_REGION,
            {
                "type": "CLOUDWATCH_METRIC",
                "cloudwatchAlarmName": contract.switch_alarm_name(STACK, region),
                "cloudwatchAlarmRegion": _peer(region),
                "insufficientDataHealthStatus": "LastKnownStatus",
            },
        ),
        _resource(
            tokens.ROUTE53_HEALTH_CHECK,
            f"record-health-{region}",
            contract.DEFAULT_PRIMARY_REGION,
            {
                "type": "CALCULATED",
                "childHealthchecks": [f"health-{region}_id", f"switch-{region}_id"],
                "childHealthThreshold": 2.0,
            },
        ),
        # Route 53 publishes health-check metrics only in us-east-1, so the alarm lives there.
        _resource(
            tokens.CLOUDWATCH_METRIC_ALARM,
            f"health-alarm-{region}",
            "us-east-1",
            {
                "namespace": "AWS/Route53",
                "metricName": "HealthCheckStatus",
                "dimensions": {"HealthCheckId": f"health-{region}_id"},
                "statistic": "Minimum",
                "period": 60.0,
                "evaluationPeriods": 1.0,
                "threshold": 1.0,
                "comparisonOperator": "LessThanThreshold",
                "alarmActions": [f"arn:aws:sns:us-east-1:{ACCOUNT}:alarms"],
            },
        ),
        _resource(
            tokens.ROUTE53_RECORD,
            f"failover-{region}",
            contract.DEFAULT_PRIMARY_REGION,
            {
                "zoneId": ZONE_ID,
                "name": DOMAIN,
                "type": "A",
                "setIdentifier": region,
                "failoverRoutingPolicies": [
                    {"type": "PRIMARY" if region == REGIONS[0] else "SECONDARY"}
                ],
                "healthCheckId": f"record-health-{region}_id",
                "aliases": [
                    {
                        "name": f"d-abc.execute-api.{region}.amazonaws.com",
                        "zoneId": "Z1UJRXOUMOOFQ8",
                        "evaluateTargetHealth": True,
                    }
                ],
            },
        ),
    ]


def _replication_role() -> dict[str, Any]:
    return _resource(
        tokens.IAM_ROLE,
        "replication-role",
        REGIONS[0],
        {
            "arn": f"arn:aws:iam::{ACCOUNT}:role/replication",
            "assumeRolePolicy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        },
    )


def _canary(region: str) -> list[dict[str, Any]]:
    """The canary running in `region`, probing the other region, and its local alarm."""
    return [
        _resource(
            tokens.SYNTHETICS_CANARY,
            f"canary-{region}",
            region,
            {
                "name": f"probe-{_peer(region)}",
                "runConfig": {
                    "environmentVariables": {contract.ENV_CANARY_TARGET_REGION: _peer(region)}
                },
            },
        ),
        _resource(
            tokens.CLOUDWATCH_METRIC_ALARM,
            f"canary-alarm-{region}",
            region,
            {
                "namespace": "CloudWatchSynthetics",
                "metricName": "SuccessPercent",
                "dimensions": {"CanaryName": f"probe-{_peer(region)}"},
                "statistic": "Average",
                "period": 60.0,
                "evaluationPeriods": 2.0,
                "threshold": 100.0,
                "comparisonOperator": "LessThanThreshold",
                "alarmActions": [f"arn:aws:sns:{region}:{ACCOUNT}:alarms"],
            },
        ),
    ]


def _id_secret() -> dict[str, Any]:
    primary, secondary = REGIONS
    return _resource(
        tokens.SECRETS_MANAGER_SECRET,
        "id-secret",
        primary,
        {
            "name": contract.id_secret_name(STACK),
            "kmsKeyId": _key_arn(primary),
            "replicas": [{"region": secondary, "kmsKeyId": _key_arn(secondary)}],
        },
    )


def build_good_stack() -> list[dict[str, Any]]:
    resources = [_table(), _replication_role(), _id_secret()]
    for region in REGIONS:
        resources += _storage(region) + _queues(region) + _archive_failures(region)
        resources += _functions(region) + _api(region) + _keys(region) + _canary(region)
    return resources


def find(stack: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The resource named `name` (its logical name)."""
    matches = [resource for resource in stack if resource["name"] == name]
    assert len(matches) == 1, f"expected one resource named {name}, found {len(matches)}"
    return matches[0]
