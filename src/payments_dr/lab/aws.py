"""One region's AWS side in the lab: moto backends, seeded like the stack, with injectable faults.

moto keeps a separate backend per region inside this process, so both regions live side by
side under one `mock_aws`. Every AWS call made through the lab's clients is serialized by one
lock: moto's backends are plain dictionaries, and a conditional write must check and store
atomically as it does on AWS.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from payments_dr import contract
from payments_dr.contract import Mode, Param
from payments_dr.lab.settings import LAB_ACCOUNT_ID, LabSettings

# No botocore retries: moto's answers do not change on a second try, and a retry's backoff
# sleep would happen while the lab's AWS lock is held, freezing both regions.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 1})


@functools.cache
def shared_session() -> boto3.session.Session:
    # One session for every lab client: service models are loaded and parsed once instead of
    # once per client, which cuts the lab's start-up by seconds.
    return boto3.session.Session()


class RegionFaults:
    """Faults injected into one region, read by the client hooks on every call."""

    def __init__(self) -> None:
        self.outage = False  # the whole region: its API and every AWS service in it
        self.table_outage = False  # DynamoDB only
        # The region still processes requests, but its answers never reach the clients.
        self.answers_lost = False
        # A gray failure: payments fail while the health path still answers 200.
        self.payments_failing = False
        self.ssm_outage = False  # SSM only: the service's reads and the operator's writes

    @property
    def table_reachable(self) -> bool:
        return not (self.outage or self.table_outage)


TABLE_WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
QUEUE_SEND_OPERATIONS = frozenset({"SendMessage", "SendMessageBatch"})


def _serialize_calls(
    client: BaseClient, lock: threading.RLock, on_call: Callable[[str], None]
) -> None:
    # Every generated client method and paginator funnels through _make_api_call.
    make_api_call: Callable[[str, dict[str, Any]], Any] = client._make_api_call

    def locked(operation_name: str, params: dict[str, Any]) -> Any:
        with lock:
            try:
                return make_api_call(operation_name, params)
            finally:
                on_call(operation_name)

    setattr(client, "_make_api_call", locked)  # noqa: B010 - instance override on purpose


def _inject_faults(client: BaseClient, service: str, region: str, faults: RegionFaults) -> None:
    def refuse_when_faulty(**_: Any) -> None:
        if (
            faults.outage
            or (service == "dynamodb" and faults.table_outage)
            or (service == "ssm" and faults.ssm_outage)
        ):
            raise EndpointConnectionError(
                endpoint_url=f"https://{service}.{region}.amazonaws.com (simulated outage)"
            )

    # Raised before the request is built: nothing reaches the backend, and botocore's
    # retry handler is not involved, as for a connection that cannot be opened.
    client.meta.events.register("before-call", refuse_when_faulty)


@dataclass(frozen=True)
class RegionResources:
    """What the lab seeded in one region, named as the stack names it."""

    region: str
    ssm_path: str
    table_name: str
    stream_arn: str
    retry_queue_url: str
    retry_queue_arn: str
    dlq_url: str
    bucket: str
    # The deploy-time settings the stack puts in the functions' environment, by Param.
    function_settings: Mapping[str, str] = field(default_factory=dict)


class RegionAws:
    """Clients for one region.

    `service_client` hands out clients with faults applied, for the real handlers; the `lab_*`
    clients ignore faults and serve the simulation's own machinery (seeding, replication,
    event sources, verification), which checks the faults itself where the real counterpart
    would be affected.
    """

    def __init__(self, region: str, lock: threading.RLock) -> None:
        self.region = region
        self.faults = RegionFaults()
        self._lock = lock
        # Bumped on every table write and queue send attempt, so that replication and the
        # queue poller call moto only when there may be something new (moto calls cost ms).
        self.table_writes = 0
        self.queue_sends = 0
        self._session = shared_session()
        self.lab_dynamodb = self._client("dynamodb")
        self.lab_sqs = self._client("sqs")
        self.lab_ssm = self._client("ssm")
        self.lab_s3 = self._client("s3")
        self.lab_streams = self._client("dynamodbstreams")
        self.lab_cloudwatch = self._client("cloudwatch")
        self.lab_secretsmanager = self._client("secretsmanager")

    def _client(self, service: str) -> BaseClient:
        endpoint_url = None
        if service == "dynamodbstreams":
            # botocore now targets an account-scoped streams host that moto does not route.
            endpoint_url = f"https://streams.dynamodb.{self.region}.amazonaws.com"
        client: BaseClient = self._session.client(
            service, region_name=self.region, config=_CLIENT_CONFIG, endpoint_url=endpoint_url
        )
        _serialize_calls(client, self._lock, self._count_writes)
        return client

    def _count_writes(self, operation_name: str) -> None:
        # Called under the lab's AWS lock.
        if operation_name in TABLE_WRITE_OPERATIONS:
            self.table_writes += 1
        elif operation_name in QUEUE_SEND_OPERATIONS:
            self.queue_sends += 1

    def service_client(self, service: str) -> BaseClient:
        client = self._client(service)
        _inject_faults(client, service, self.region, self.faults)
        return client


def seed_region(aws: RegionAws, settings: LabSettings, api_endpoint: str) -> RegionResources:
    """Create the table, queues, bucket and SSM parameters the stack creates in a region."""
    stack, region = settings.stack, aws.region
    table = contract.table_name(stack)
    description = aws.lab_dynamodb.create_table(**contract.table_definition(table))[
        "TableDescription"
    ]

    dlq_url = aws.lab_sqs.create_queue(
        QueueName=contract.dlq_name(stack),
        Attributes={"MessageRetentionPeriod": str(contract.DLQ_RETENTION_SECONDS)},
    )["QueueUrl"]
    dlq_arn = _queue_arn(aws, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": contract.RETRY_MAX_RECEIVE_COUNT}
    retry_url = aws.lab_sqs.create_queue(
        QueueName=contract.retry_queue_name(stack),
        Attributes={
            "MessageRetentionPeriod": str(contract.RETRY_QUEUE_RETENTION_SECONDS),
            "VisibilityTimeout": str(contract.RETRY_QUEUE_VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]

    bucket = contract.log_bucket_name(stack, region, LAB_ACCOUNT_ID)
    if region == "us-east-1":
        aws.lab_s3.create_bucket(Bucket=bucket)
    else:
        aws.lab_s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
        )
    aws.lab_s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    aws.lab_s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )

    config = settings.config
    values = {
        Param.TABLE_NAME: table,
        Param.RETRY_QUEUE_URL: retry_url,
        Param.DLQ_URL: dlq_url,
        Param.LOG_BUCKET: bucket,
        Param.REGION_ROLE: config.role_of(region).value,
        Param.PEER_REGION: config.peer_region(region),
        Param.PEER_RETRY_QUEUE_URL: contract.queue_url(
            config.peer_region(region), LAB_ACCOUNT_ID, contract.retry_queue_name(stack)
        ),
        Param.API_ENDPOINT: api_endpoint,
        Param.MODE: Mode.ACTIVE.value,
    }
    for param, value in values.items():
        set_parameter(aws, settings.stack, param, value)

    return RegionResources(
        region=region,
        ssm_path=contract.ssm_path(stack, region),
        table_name=table,
        stream_arn=description["LatestStreamArn"],
        retry_queue_url=retry_url,
        retry_queue_arn=_queue_arn(aws, retry_url),
        dlq_url=dlq_url,
        bucket=bucket,
        function_settings={
            param.value: values[param] for param in contract.DEPLOY_TIME_PARAMS if param in values
        },
    )


def create_id_secret(primary: RegionAws, replica_region: str, stack: str) -> None:
    """The id secret as the stack makes it: its value generated by Secrets Manager, stored in
    the primary region and replicated to the other, so each region reads its own copy."""
    client = primary.lab_secretsmanager
    value = client.get_random_password(
        PasswordLength=contract.ID_SECRET_LENGTH, ExcludePunctuation=True
    )["RandomPassword"]
    client.create_secret(
        Name=contract.id_secret_name(stack),
        SecretString=value,
        AddReplicaRegions=[{"Region": replica_region}],
    )


def put_switch_alarm(cloudwatch: Any, stack: str, region: str) -> None:
    """The traffic switch of `region` as infra/switch.py declares it: an alarm that `cloudwatch`,
    a client of the peer region, holds."""
    dimensions = contract.switch_dimensions(stack, region)
    cloudwatch.put_metric_alarm(
        AlarmName=contract.switch_alarm_name(stack, region),
        Namespace=contract.SWITCH_NAMESPACE,
        MetricName=contract.SWITCH_METRIC,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        Statistic="Maximum",
        Period=contract.SWITCH_PERIOD_SECONDS,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="ignore",
    )


def set_parameter(aws: RegionAws, stack: str, param: Param, value: str) -> None:
    aws.lab_ssm.put_parameter(
        Name=contract.ssm_parameter_name(stack, aws.region, param),
        Value=value,
        Type="String",
        Overwrite=True,
    )


def _queue_arn(aws: RegionAws, queue_url: str) -> str:
    attributes = aws.lab_sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])
