"""Names shared by the infrastructure, the payment service, the local lab and ops.

This module is the single source of truth for every name that more than one of those
parts must agree on. It is packaged into the Lambda artifact, so it imports nothing
beyond the standard library.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

PROJECT: Final = "payments-dr"
CONFIG_NAMESPACE: Final = PROJECT  # Pulumi config keys are "payments-dr:<key>"

# --- Regions -------------------------------------------------------------------------------
DEFAULT_PRIMARY_REGION: Final = "us-east-1"
DEFAULT_SECONDARY_REGION: Final = "us-east-2"


class RegionRole(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class Mode(StrEnum):
    """Operating mode of a region, read by the service from SSM.

    `fenced` is the manual failover switch: the region's health check fails and Route 53
    moves traffic to the other region.
    """

    ACTIVE = "active"
    FENCED = "fenced"


class ConsistencyMode(StrEnum):
    EVENTUAL = "eventual"
    STRONG = "strong"


# --- Configuration in SSM ------------------------------------------------------------------
# Every parameter below lives in SSM (operators and ops commands read them there), but the
# functions get the deploy-time ones in their environment and read only `mode` at run time:
# SSM's default 40 TPS per account and region would not survive a cold start of the DR region.
ENV_SSM_PATH: Final = "PAYMENTS_DR_SSM_PATH"
# How often a container re-reads `mode`, and the random delay (0 to this) before every read.
ENV_MODE_REFRESH_SECONDS: Final = "PAYMENTS_DR_MODE_REFRESH_SECONDS"
ENV_MODE_READ_SPREAD_SECONDS: Final = "PAYMENTS_DR_MODE_READ_SPREAD_SECONDS"
# Their defaults (stack keys modeRefreshSeconds, modeReadSpreadSeconds): 100 API containers
# starting at once read over 6 s, 17 reads/s on average (33 in the busiest second); a fence
# reaches a busy container within 12 s.
MODE_REFRESH_SECONDS: Final = 6
MODE_READ_SPREAD_SECONDS: Final = 6


class Param(StrEnum):
    """Parameter names under a region's SSM path."""

    TABLE_NAME = "table-name"
    RETRY_QUEUE_URL = "retry-queue-url"
    DLQ_URL = "dlq-url"
    # Where the log archiver's stream mapping records the ranges it had to drop (runbooks).
    ARCHIVE_FAILURES_QUEUE_URL = "archive-failures-queue-url"
    LOG_BUCKET = "log-bucket"
    REGION_ROLE = "region-role"
    PEER_REGION = "peer-region"
    # The peer region's retry queue: a payment the local table did not confirm is queued
    # there, outside this region's failure domain, before it is acknowledged (202).
    PEER_RETRY_QUEUE_URL = "peer-retry-queue-url"
    # How this region's functions reach SQS in the peer region without internet: the peer's
    # SQS interface endpoint, through VPC peering (its endpoint-specific DNS name).
    PEER_SQS_ENDPOINT = "peer-sqs-endpoint"
    API_ENDPOINT = "api-endpoint"  # https://api.<region>.<domain>, this region's own name
    MODE = "mode"


# What a function reads from its environment (set at deploy time), not from SSM.
DEPLOY_TIME_PARAMS: Final = (
    Param.TABLE_NAME,
    Param.RETRY_QUEUE_URL,
    Param.DLQ_URL,
    Param.LOG_BUCKET,
    Param.REGION_ROLE,
    Param.PEER_REGION,
    Param.PEER_RETRY_QUEUE_URL,
    Param.PEER_SQS_ENDPOINT,
)


def param_env_var(param: Param) -> str:
    """The environment variable carrying a deploy-time parameter, e.g. PAYMENTS_DR_TABLE_NAME."""
    return f"PAYMENTS_DR_{param.value.upper().replace('-', '_')}"


def ssm_path(stack: str, region: str) -> str:
    """The SSM path holding one region's configuration, without a trailing slash."""
    return f"/{PROJECT}/{stack}/{region}"


def ssm_parameter_name(stack: str, region: str, param: Param) -> str:
    return f"{ssm_path(stack, region)}/{param.value}"


# --- Data ----------------------------------------------------------------------------------
TABLE_HASH_KEY: Final = "pk"  # string; a payment's deterministic id
TABLE_HASH_KEY_TYPE: Final = "S"
# Global tables replicate through streams and require both images.
TABLE_STREAM_VIEW_TYPE: Final = "NEW_AND_OLD_IMAGES"


def table_name(stack: str) -> str:
    return f"{PROJECT}-{stack}-payments"


# Conflict records (eventual mode): when replication overwrites a payment version a region had
# acknowledged, the region that sees the overwrite keeps that version in the table under its
# own key, so it replicates to every region like a payment. Open conflicts are listed through
# a sparse index: only conflict records carry its key attributes.
CONFLICT_ITEM_PREFIX: Final = "conflict#"
CONFLICTS_INDEX: Final = "conflicts-by-status"
CONFLICT_STATUS_ATTRIBUTE: Final = "conflict_status"  # the index's hash key
CONFLICT_DETECTED_AT_ATTRIBUTE: Final = "detected_at"  # its range key, ISO-8601 UTC


class ConflictStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


def table_definition(name: str) -> dict[str, object]:
    """CreateTable arguments of the payments table as the stack declares it (for moto)."""
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": TABLE_HASH_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": TABLE_HASH_KEY, "AttributeType": TABLE_HASH_KEY_TYPE},
            {"AttributeName": CONFLICT_STATUS_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": CONFLICT_DETECTED_AT_ATTRIBUTE, "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": CONFLICTS_INDEX,
                "KeySchema": [
                    {"AttributeName": CONFLICT_STATUS_ATTRIBUTE, "KeyType": "HASH"},
                    {"AttributeName": CONFLICT_DETECTED_AT_ATTRIBUTE, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": TABLE_STREAM_VIEW_TYPE},
    }


def conflict_item_key(payment_id: str, overwritten_fingerprint: str) -> str:
    """One record per overwritten version: a redelivered stream batch finds it already there."""
    return f"{CONFLICT_ITEM_PREFIX}{payment_id}#{overwritten_fingerprint}"


# --- Queues --------------------------------------------------------------------------------
RETRY_MAX_RECEIVE_COUNT: Final = 5  # receives before a message moves to the DLQ
RETRY_QUEUE_RETENTION_SECONDS: Final = 4 * 24 * 3600
DLQ_RETENTION_SECONDS: Final = 14 * 24 * 3600  # the SQS maximum: time to investigate and replay


def retry_queue_name(stack: str) -> str:
    return f"{PROJECT}-{stack}-retry"


def queue_url(region: str, account_id: str, name: str) -> str:
    """SQS queue URLs follow from region, account and name; known before the queue exists."""
    return f"https://sqs.{region}.amazonaws.com/{account_id}/{name}"


def dlq_name(stack: str) -> str:
    return f"{PROJECT}-{stack}-retry-dlq"


# A stream batch the log archiver could not write before its records expired from the stream
# (24 h) is dropped; the mapping then sends this queue the shard and sequence range it lost.
ARCHIVE_FAILURES_RETENTION_SECONDS: Final = 14 * 24 * 3600  # the SQS maximum: time to rebuild


def archive_failures_queue_name(stack: str) -> str:
    return f"{PROJECT}-{stack}-archive-failures"


# --- Transaction logs ----------------------------------------------------------------------
LOG_PREFIX: Final = "txlog/"  # every archived object lives under this prefix


def log_region_prefix(region: str) -> str:
    """Where the archiver of `region` writes; bucket replication brings the peer's prefix."""
    return f"{LOG_PREFIX}region={region}/"


def log_bucket_name(stack: str, region: str, account_id: str) -> str:
    """Bucket names are global: the account id keeps them unique across accounts."""
    return f"{PROJECT}-{stack}-txlog-{account_id}-{region}"


# --- Functions -----------------------------------------------------------------------------
LAMBDA_RUNTIME: Final = "python3.13"


class Function(StrEnum):
    API = "api"
    RETRY_WORKER = "retry-worker"
    LOG_ARCHIVER = "log-archiver"
    AUTHORIZER = "authorizer"


@dataclass(frozen=True)
class FunctionSettings:
    handler: str
    timeout_seconds: int
    memory_mb: int
    reserved_concurrency: int


FUNCTIONS: Final[dict[Function, FunctionSettings]] = {
    Function.API: FunctionSettings("payments_dr.service.api.handler", 10, 512, 100),
    Function.RETRY_WORKER: FunctionSettings("payments_dr.service.retry_worker.handler", 30, 256, 5),
    Function.LOG_ARCHIVER: FunctionSettings("payments_dr.service.log_archiver.handler", 60, 256, 2),
    # One GetItem per uncached key; API Gateway waits at most 29 s, clients far less.
    Function.AUTHORIZER: FunctionSettings("payments_dr.service.authorizer.handler", 5, 256, 50),
}

# The functions that read the `mode` fence from SSM at run time: the API refuses writes and
# fails its health check when fenced. The others act on queued or replicated data regardless.
MODE_READERS: Final = frozenset({Function.API})

# The functions that compute payment ids, fingerprints or log digests: only they read the id
# secret (Secrets Manager, once per cold start, in their own region's replica).
ID_KEY_READERS: Final = frozenset({Function.API, Function.RETRY_WORKER})
ENV_ID_SECRET_ID: Final = "PAYMENTS_DR_ID_SECRET_ID"
ID_SECRET_LENGTH: Final = 64  # letters and digits, generated by Secrets Manager: ~380 bits


def id_secret_name(stack: str) -> str:
    """The HMAC secret of payment ids: one name, a primary in the first region and a replica
    in the second, so `GetSecretValue` with the name reads the caller's region's copy."""
    return f"{PROJECT}/{stack}/payment-id-key"


# SQS needs the visibility timeout to cover the consumer's timeout several times over.
RETRY_QUEUE_VISIBILITY_SECONDS: Final = 6 * FUNCTIONS[Function.RETRY_WORKER].timeout_seconds
RETRY_BATCH_SIZE: Final = 10
STREAM_BATCH_SIZE: Final = 100
# Concurrent batches per stream shard; 1 keeps a shard's batches strictly in order.
STREAM_PARALLELIZATION_FACTOR: Final = 1


def function_name(stack: str, function: Function) -> str:
    return f"{PROJECT}-{stack}-{function.value}"


# The functions' own metrics (Powertools, embedded metric format): one namespace, and the
# `service` dimension Powertools adds to each, naming the function.
SERVICE_METRICS_NAMESPACE: Final = "PaymentsDr"
REPLICATION_CONFLICTS_METRIC: Final = "ReplicationConflicts"  # counted by the log archiver
# Age in days of the merchant key the authorizer admitted (its current key), per table read.
MERCHANT_KEY_AGE_METRIC: Final = "MerchantKeyAgeDays"
# Requests the authorizer admitted with the key a rotation replaced (the rotation's progress).
AUTH_PREVIOUS_KEY_METRIC: Final = "AuthPreviousKey"


def service_name(function: Function) -> str:
    return f"{PROJECT}-{function.value}"


# --- API -----------------------------------------------------------------------------------
API_SUBDOMAIN: Final = "api"  # the failover name is api.<domain> in both regions
API_STAGE: Final = "live"
PAYMENTS_PATH: Final = "/v1/payments"
PAYMENT_PATH: Final = "/v1/payments/{id}"
HEALTH_PATH: Final = "/v1/health"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
RETRY_AFTER_SECONDS: Final = 2


def regional_api_domain(domain_name: str, region: str) -> str:
    """The name only `region` answers (api.<region>.<domain>): its health check probes it and
    the client SDK calls it directly; the failover name api.<domain> answers from either."""
    return f"{API_SUBDOMAIN}.{region}.{domain_name}"


# --- Failover timing -----------------------------------------------------------------------
HEALTH_CHECK_TIMEOUT_SECONDS: Final = 2  # Route 53 wants an answer within about 2 s
ALIAS_RECORD_TTL_SECONDS: Final = 60  # alias records to API Gateway take its TTL


# --- The traffic switch (issue 11) ---------------------------------------------------------
class FailoverControl(StrEnum):
    """What moves traffic away from a region without calling into it (config key
    `failoverControl`): a CloudWatch alarm held in the other region (default), or Route 53
    ARC routing controls."""

    ALARM = "alarm"
    ARC = "arc"


class SwitchState(StrEnum):
    """A region's switch: `serve` lets its failover record answer while its health check
    passes; `away` keeps traffic off it whatever its health check says."""

    SERVE = "serve"
    AWAY = "away"


# The default switch: one custom metric per region, published (and alarmed on) in the
# *other* region. A datapoint of 1 means "keep traffic away from <Region>", 0 "serve".
SWITCH_NAMESPACE: Final = "PaymentsDr/TrafficSwitch"
SWITCH_METRIC: Final = "TrafficAway"
# Standard resolution: Route 53 does not accept alarms on high-resolution metrics.
SWITCH_PERIOD_SECONDS: Final = 60


def switch_dimensions(stack: str, region: str) -> dict[str, str]:
    """The switch metric's dimensions for the region it governs."""
    return {"Stack": stack, "Region": region}


def switch_alarm_name(stack: str, region: str) -> str:
    """The alarm (in the peer region) that keeps traffic away from `region` while it fires."""
    return f"{PROJECT}-{stack}-switch-{region}"


# --- DNS -----------------------------------------------------------------------------------
# The hosted zone a stack creates (hostedZoneId unset): `stack up` creates it on its own
# first, so the domain can be delegated before the certificates validate.
HOSTED_ZONE_NAME: Final = "zone"
HOSTED_ZONE_TYPE: Final = "payments-dr:infra:HostedZone"
ROUTE53_ZONE_TYPE: Final = "aws:route53/zone:Zone"


def hosted_zone_urns(project: str, stack: str) -> tuple[str, str]:
    """URNs of the stack's zone component and of the Route 53 zone inside it."""
    prefix = f"urn:pulumi:{stack}::{project}::{HOSTED_ZONE_TYPE}"
    return (
        f"{prefix}::{HOSTED_ZONE_NAME}",
        f"{prefix}${ROUTE53_ZONE_TYPE}::{HOSTED_ZONE_NAME}-zone",
    )


# --- Monitoring ----------------------------------------------------------------------------
def dashboard_name(stack: str) -> str:
    """The stack's CloudWatch dashboard graphing both regions, one copy in each region."""
    return f"{PROJECT}-{stack}-dr"


# The cross-region canaries: each region runs one that probes the *other* region's API
# (health, then a payment written and read back) as a dedicated test merchant, whose key
# lives in a Secrets Manager secret of the watching region (put there by
# `payments-dr canary enrol`, never by the stack).
CANARY_MERCHANT_ID: Final = "dr-canary"
ENV_CANARY_TARGET_URL: Final = "PAYMENTS_DR_CANARY_TARGET_URL"
ENV_CANARY_TARGET_REGION: Final = "PAYMENTS_DR_CANARY_TARGET_REGION"
ENV_CANARY_SECRET_ID: Final = "PAYMENTS_DR_CANARY_SECRET_ID"


CANARY_NAME_MAX_LENGTH: Final = 21  # Synthetics: 1-21 of [0-9a-z_-]


def canary_name(stack: str, target_region: str) -> str:
    """The canary probing `target_region` (it runs in the other region), e.g. pdr-dev-use1.
    A stack name too long for Synthetics' 21 characters is replaced by its hash."""
    area, direction, number = target_region.split("-")
    code = f"{area}{direction[0]}{number}"  # us-east-1 -> use1
    name = f"pdr-{stack}-{code}".lower()
    if len(name) > CANARY_NAME_MAX_LENGTH or not re.fullmatch(r"[0-9a-z_-]+", name):
        name = f"pdr-{hashlib.sha256(stack.encode()).hexdigest()[:8]}-{code}"
    return name


def canary_secret_name(stack: str, target_region: str) -> str:
    return f"{PROJECT}/{stack}/canary-key/{target_region}"


# --- Stack outputs (read by ops) -----------------------------------------------------------
class StackOutput(StrEnum):
    """Top-level stack output names."""

    # https://api.<region>.<domain> of the primary; the default execute-api endpoint is disabled
    PRIMARY_API_ENDPOINT = "primary_api_endpoint"
    SECONDARY_API_ENDPOINT = "secondary_api_endpoint"
    FAILOVER_URL = "failover_url"  # https://api.<domain>, answered by the healthy region
    API_DOMAIN = "api_domain"
    HOSTED_ZONE_ID = "hosted_zone_id"
    # Where to delegate the domain when the stack created the zone (empty for an existing zone).
    NAME_SERVERS = "name_servers"
    TABLE_NAME = "table_name"
    DR_BUDGET = "dr_budget"
    REGIONS = "regions"  # {region: {RegionOutput: value}}
    # Console link to the CloudWatch dashboard of both regions; stacks deployed before the
    # dashboard existed lack it, so readers must tolerate its absence.
    DASHBOARD_URL = "dashboard_url"
    # The table's consistency mode, fixed when it was created: `synth --outputs` and
    # `stack up` refuse a stack file that asks for the other one.
    CONSISTENCY_MODE = "consistency_mode"
    # How traffic is moved without the failing region: {"kind": FailoverControl, and for ARC
    # "cluster_endpoints": [{"endpoint", "region"}], "control_panel_arn"}. Stacks deployed
    # before the switch lack it: the commands then fall back to the SSM fence alone.
    FAILOVER_CONTROL = "failover_control"
    # Every alarm of the stack with the region it lives in: [{region, alarm, arn}]. A region's
    # `alarm_arns` holds the same ones, but for the health-check alarms of a stack without
    # us-east-1, which live in us-east-1 and are listed under the primary there.
    ALARMS = "alarms"
    # `merchantKeyMaxAgeDays`, the key-age alarms' threshold: `merchant list` flags older keys.
    # Stacks deployed before the alarm lack it.
    MERCHANT_KEY_MAX_AGE_DAYS = "merchant_key_max_age_days"


class RegionOutput(StrEnum):
    """Keys of each region's entry under the `regions` output."""

    ROLE = "role"
    API_ENDPOINT = "api_endpoint"  # https://api.<region>.<domain>: this region alone answers
    CUSTOM_DOMAIN_URL = "custom_domain_url"
    CUSTOM_DOMAIN_TARGET = "custom_domain_target"  # the regional d-xxxx.execute-api host
    HEALTH_CHECK_ID = "health_check_id"
    HEALTH_CHECK_URL = "health_check_url"
    ALARM_ARNS = "alarm_arns"  # {alarm purpose: arn}
    ALARM_TOPIC_ARN = "alarm_topic_arn"
    LOG_BUCKET = "log_bucket"
    SSM_PATH = "ssm_path"
    RETRY_QUEUE_URL = "retry_queue_url"
    DLQ_URL = "dlq_url"
    FUNCTION_NAMES = "function_names"  # {Function: name}
    USAGE_PLAN_ID = "usage_plan_id"  # the merchants' usage plan (per-merchant throttling)
    WEB_ACL_ARN = "web_acl_arn"
    # The failover record's health check: this region's HTTPS check AND its switch.
    RECORD_HEALTH_CHECK_ID = "record_health_check_id"
    # Where this region's switch lives: {"kind", "health_check_id", and "region",
    # "alarm_name", "namespace", "metric_name", "dimensions" (alarm) or
    # "routing_control_arn" (arc)}.
    SWITCH = "switch"
    DASHBOARD_URL = "dashboard_url"  # this region's copy of the dashboard of both regions
    CANARY_NAME = "canary_name"  # the canary running here, probing the other region
    CANARY_SECRET_ARN = "canary_secret_arn"  # where its test merchant key goes (not the key)


class DrBudgetField(StrEnum):
    """Keys of the `dr_budget` stack output (all in seconds)."""

    RTO_TARGET_SECONDS = "rto_target_seconds"
    RPO_TARGET_SECONDS = "rpo_target_seconds"
    RTO_BUDGET_SECONDS = "rto_budget_seconds"
    RPO_BUDGET_SECONDS = "rpo_budget_seconds"


# Set by the API on every response: which region served it (drills count requests per region).
REGION_HEADER: Final = "X-Payments-Region"


# --- Authentication ------------------------------------------------------------------------
# Merchants send "Authorization: Bearer <api key>"; the REQUEST authorizer reads this header,
# and API Gateway caches its verdict per header value for AUTHORIZER_CACHE_TTL_SECONDS, which
# is therefore also the longest a revoked key keeps working.
AUTH_HEADER: Final = "Authorization"
AUTH_SCHEME: Final = "Bearer"
AUTHORIZER_CACHE_TTL_SECONDS: Final = 60
# Key of the merchant id in the authorizer context API Gateway passes to the API handler.
AUTH_CONTEXT_MERCHANT_ID: Final = "merchant_id"
# Merchant credential records share the payments table (and so its replication); payment
# ids start with "pay_", so the two kinds of item can never collide.
MERCHANT_ITEM_PREFIX: Final = "merchant#"


def merchant_item_key(merchant_id: str) -> str:
    """The table hash key of a merchant's credential record."""
    return f"{MERCHANT_ITEM_PREFIX}{merchant_id}"


# Per-merchant throttling: API Gateway API keys (named after the merchant) in one usage plan
# per region; the authorizer names the merchant's key, clients never send it.
def usage_plan_name(stack: str) -> str:
    return f"{PROJECT}-{stack}-merchants"


def merchant_api_key_name(stack: str, merchant_id: str) -> str:
    return f"{PROJECT}-{stack}-merchant-{merchant_id}"
