"""Moto-backed regions for the service tests: each test gets fresh, private AWS state."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

# Fake credentials and quiet Powertools before any client or handler exists.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_LOG_LEVEL="WARNING",
)

from payments_dr import contract
from payments_dr.service.config import ServiceConfig
from payments_dr.service.deps import ServiceDeps
from payments_dr.service.model import IdKey

STACK = "test"
# One session for every test: it caches the service models that each client would reload.
SESSION = boto3.session.Session()
ACCOUNT_ID = "123456789012"
# The stack's id secret, as both regions read it (the same value: a replicated secret).
ID_SECRET = "test-id-secret-0123456789abcdefghijklmnopqrstuvwxyz"
ID_KEY = IdKey(ID_SECRET)


class FakeClock:
    def __init__(self, start: float = 1_764_100_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Region:
    """One simulated region: its resources, raw clients and the service's deps."""

    name: str
    table_name: str
    queue_url: str
    dlq_url: str
    peer_queue_url: str  # the peer region's retry queue, where a 202 is queued
    bucket: str
    dynamodb: Any
    sqs: Any
    ssm: Any
    s3: Any
    peer_sqs: Any
    clock: FakeClock
    deps: ServiceDeps

    def set_mode(self, mode: contract.Mode) -> None:
        self.ssm.put_parameter(
            Name=contract.ssm_parameter_name(STACK, self.name, contract.Param.MODE),
            Value=mode.value,
            Type="String",
            Overwrite=True,
        )

    def items(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=self.table_name, ConsistentRead=True)["Items"]

    def queue_depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


def provision(region: str, peer: str = contract.DEFAULT_SECONDARY_REGION) -> Region:
    """Create one region's table, queues, bucket, SSM parameters and id secret (inside
    mock_aws)."""
    clients = {
        name: SESSION.client(name, region_name=region) for name in ("dynamodb", "sqs", "ssm", "s3")
    }
    table_name = contract.table_name(STACK)
    clients["dynamodb"].create_table(**contract.table_definition(table_name))
    sqs = clients["sqs"]
    dlq_url = sqs.create_queue(QueueName=contract.dlq_name(STACK))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": contract.RETRY_MAX_RECEIVE_COUNT}
    # The queue may exist already, created as the peer of a region provisioned earlier.
    queue_url = sqs.create_queue(QueueName=contract.retry_queue_name(STACK))["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": json.dumps(redrive)})
    peer_sqs = SESSION.client("sqs", region_name=peer)
    peer_queue_url = peer_sqs.create_queue(QueueName=contract.retry_queue_name(STACK))["QueueUrl"]
    bucket = contract.log_bucket_name(STACK, region, ACCOUNT_ID)
    if region == "us-east-1":
        clients["s3"].create_bucket(Bucket=bucket)
    else:
        clients["s3"].create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
        )
    values = {
        contract.Param.TABLE_NAME: table_name,
        contract.Param.RETRY_QUEUE_URL: queue_url,
        contract.Param.DLQ_URL: dlq_url,
        contract.Param.LOG_BUCKET: bucket,
        contract.Param.REGION_ROLE: contract.RegionRole.PRIMARY.value,
        contract.Param.PEER_REGION: peer,
        contract.Param.PEER_RETRY_QUEUE_URL: peer_queue_url,
        contract.Param.API_ENDPOINT: f"https://example.execute-api.{region}.amazonaws.com/live",
        contract.Param.MODE: contract.Mode.ACTIVE.value,
    }
    for param, value in values.items():
        clients["ssm"].put_parameter(
            Name=contract.ssm_parameter_name(STACK, region, param), Value=value, Type="String"
        )
    SESSION.client("secretsmanager", region_name=region).create_secret(
        Name=contract.id_secret_name(STACK), SecretString=ID_SECRET
    )
    clock = FakeClock()
    deps = ServiceDeps(
        region=region,
        ssm_path=contract.ssm_path(STACK, region),
        # The stack puts these in the functions' environment at deploy time.
        config=ServiceConfig.from_values(
            {param.value: values[param] for param in contract.DEPLOY_TIME_PARAMS if param in values}
        ),
        clock=clock,
        peer_sqs=peer_sqs,
        # FakeClock does not move while a thread sleeps: reads start without a random delay
        # here; tests/service/test_config.py covers the delay.
        mode_read_spread_seconds=0,
        id_key=ID_KEY,
        **clients,
    )
    return Region(
        name=region,
        table_name=table_name,
        queue_url=queue_url,
        dlq_url=dlq_url,
        peer_queue_url=peer_queue_url,
        bucket=bucket,
        peer_sqs=peer_sqs,
        clock=clock,
        deps=deps,
        **clients,
    )


def function_environment(region: Region) -> dict[str, str]:
    """The deploy-time variables the stack sets on the region's functions."""
    config = region.deps.config
    values = {
        contract.Param.TABLE_NAME: config.table_name,
        contract.Param.RETRY_QUEUE_URL: config.retry_queue_url,
        contract.Param.DLQ_URL: config.dlq_url,
        contract.Param.LOG_BUCKET: config.log_bucket,
        contract.Param.REGION_ROLE: config.region_role.value,
        contract.Param.PEER_REGION: config.peer_region,
        contract.Param.PEER_RETRY_QUEUE_URL: config.peer_retry_queue_url,
    }
    return {
        **{contract.param_env_var(param): value for param, value in values.items()},
        contract.ENV_ID_SECRET_ID: contract.id_secret_name(STACK),
    }


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def region(aws: None) -> Region:
    return provision(contract.DEFAULT_PRIMARY_REGION)


@pytest.fixture
def peer(region: Region) -> Region:
    """The other region: its retry queue is where `region` queues what its table refused."""
    return provision(contract.DEFAULT_SECONDARY_REGION, peer=region.name)


MERCHANT = "merchant-42"


def api_event(
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    is_base64_encoded: bool = False,
    merchant_id: str | None = MERCHANT,
) -> dict[str, Any]:
    """An API Gateway REST (Lambda proxy) event, as the gateway sends it after the authorizer
    admitted `merchant_id` (None: no authorizer ran, as on the health route)."""
    request_context: dict[str, Any] = {
        "stage": contract.API_STAGE,
        "requestId": str(uuid.uuid4()),
        "httpMethod": method,
        "path": f"/{contract.API_STAGE}{path}",
        "resourcePath": path,
    }
    if merchant_id is not None:
        request_context["authorizer"] = {
            contract.AUTH_CONTEXT_MERCHANT_ID: merchant_id,
            "principalId": merchant_id,
        }
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": None,
        "pathParameters": None,
        "body": body,
        "isBase64Encoded": is_base64_encoded,
        "requestContext": request_context,
    }


def client_error(code: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class FaultyClient:
    """Wraps a boto3 client; the named operations raise the given exception instead."""

    def __init__(self, client: Any, faults: dict[str, Exception]) -> None:
        self._client = client
        self.faults = faults

    def __getattr__(self, name: str) -> Any:
        if name in self.faults:
            fault = self.faults[name]

            def fail(**_: Any) -> Any:
                raise fault

            return fail
        return getattr(self._client, name)


VALID_REQUEST = {
    "amount": 1999,
    "currency": "EUR",
    "payment_token": "tok_4f9a2c7e81b3",
    "reference": "order-1001",
}


def post_event(
    body: dict[str, Any] | str,
    key: str = "key-0001-abcd",
    merchant_id: str | None = MERCHANT,
    **headers: str,
) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return api_event(
        "POST",
        contract.PAYMENTS_PATH,
        text,
        {contract.IDEMPOTENCY_HEADER: key, "Content-Type": "application/json", **headers},
        merchant_id=merchant_id,
    )


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS event source batch built from received messages."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def run_retry_worker_once(region: Region, worker: Any) -> dict[str, Any]:
    """Do what the SQS event source mapping does once: receive, invoke, delete successes."""
    messages = region.sqs.receive_message(
        QueueUrl=region.queue_url,
        MaxNumberOfMessages=contract.RETRY_BATCH_SIZE,
        VisibilityTimeout=0,  # failures become visible again at once, as after the timeout
        AttributeNames=["All"],
    ).get("Messages", [])
    if not messages:
        return {"batchItemFailures": []}
    queue_arn = region.sqs.get_queue_attributes(
        QueueUrl=region.queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    response = worker(sqs_event(messages, queue_arn, region.name), None)
    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            region.sqs.delete_message(
                QueueUrl=region.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return response
