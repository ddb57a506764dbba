"""The rules a parsed stack configuration must satisfy, beyond its regions (`config_regions`):
names and ARNs, health checks, throttling, retention, the SSM reads at a cold start, tags and
the DR budget. Every refusal is one `ConfigError` naming the key and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from payments_dr import contract
from payments_dr.infra.config_keys import ConfigError
from payments_dr.infra.config_regions import validate_regions
from payments_dr.infra.ssm_budget import (
    SSM_HIGHER_THROUGHPUT_TPS,
    minimum_spread_seconds,
    ssm_loads,
)

if TYPE_CHECKING:
    from payments_dr.infra.config import StackConfig

# Route 53 fixes the request interval at creation: standard (30 s) or fast (10 s).
HEALTH_CHECK_INTERVALS: Final = (10, 30)
HEALTH_CHECK_THRESHOLD_RANGE: Final = (1, 10)
# Retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip

_DOMAIN_RE: Final = re.compile(r"^(?=.{4,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ZONE_ID_RE: Final = re.compile(r"^Z[A-Z0-9]{5,31}$")
_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# What AWS WAF accepts as a rate-based rule's limit.
WAF_RATE_LIMIT_RANGE: Final = (10, 2_000_000_000)
# PCI DSS 10.5.1: audit logs are kept at least 12 months.
AUDIT_LOG_MIN_RETENTION_DAYS: Final = 365
# Expected peak shards of one region's table stream (one per table partition; an on-demand
# table starts with about four). The log archiver reserves one execution per shard.
ARCHIVER_STREAM_SHARDS_RANGE: Final = (1, 100)
# Days the transaction logs are kept. At least the table's point-in-time recovery window
# (35 days), the history a dropped range is rebuilt from; at most ten years.
TRANSACTION_LOG_RETENTION_RANGE: Final = (35, 3653)
# How the API reads its `mode` fence (see infra.ssm_budget).
MODE_REFRESH_RANGE: Final = (1, 60)
MODE_READ_SPREAD_MAX: Final = contract.FUNCTIONS[contract.Function.API].timeout_seconds - 2
SSM_THROUGHPUT_RANGE: Final = (1, SSM_HIGHER_THROUGHPUT_TPS)
# Synthetics schedules `rate(n minutes)` from 1 minute up to an hour.
CANARY_INTERVAL_MINUTES_RANGE: Final = (1, 60)
# Oldest a merchant key in use may be before its alarm: up to two years, the longest
# cryptoperiod NIST SP 800-57 Part 1 suggests for a symmetric authentication key.
MERCHANT_KEY_MAX_AGE_DAYS_RANGE: Final = (1, 730)
_ROLE_ARN_RE: Final = re.compile(r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# Tags: the characters AWS accepts across services (letters, digits, spaces, _ . : / = + - @),
# at most 50 per resource; the stack always adds `project` and `stack`.
_TAG_TEXT_RE: Final = re.compile(r"^[\w\s.:/=+\-@]*$")
ALWAYS_ADDED_TAGS: Final = ("project", "stack")
MAX_TAGS_PER_RESOURCE: Final = 50


def _validate_tags(tags: Mapping[str, str]) -> None:
    if len(tags) > MAX_TAGS_PER_RESOURCE - len(ALWAYS_ADDED_TAGS):
        raise ConfigError(
            "tags",
            f"{len(tags)} tags; with {' and '.join(ALWAYS_ADDED_TAGS)} that is over AWS's"
            f" {MAX_TAGS_PER_RESOURCE} per resource",
            "remove some",
        )
    fix = (
        "use names of 1-128 and values of up to 256 letters, digits, spaces and _ . : / = + - @,"
        " not starting with aws:"
    )
    for name, value in tags.items():
        if name in ALWAYS_ADDED_TAGS:
            raise ConfigError(
                "tags", f"tag {name!r} would replace the one the stack always adds", "rename it"
            )
        if not 1 <= len(name) <= 128 or not _TAG_TEXT_RE.match(name):
            raise ConfigError("tags", f"tag name {name!r} is not accepted by AWS", fix)
        if len(value) > 256 or not _TAG_TEXT_RE.match(value):
            raise ConfigError("tags", f"the value of tag {name!r} is not accepted by AWS", fix)
        if name.lower().startswith("aws:") or value.lower().startswith("aws:"):
            raise ConfigError(
                "tags", f"tag {name!r} is not accepted by AWS (aws: is reserved)", fix
            )


def validate(config: StackConfig) -> None:
    if not _DOMAIN_RE.match(config.domain_name):
        raise ConfigError(
            "domainName",
            f"{config.domain_name!r} is not a lower-case DNS name",
            "use a name like pay.example.com",
        )
    if config.hosted_zone_id is not None and not _ZONE_ID_RE.match(config.hosted_zone_id):
        raise ConfigError(
            "hostedZoneId",
            f"{config.hosted_zone_id!r} is not a Route 53 zone id",
            "use the zone id (Z followed by letters and digits) or leave it unset to create one",
        )
    validate_regions(config)
    if config.health_check_interval_seconds not in HEALTH_CHECK_INTERVALS:
        raise ConfigError(
            "healthCheckIntervalSeconds",
            f"{config.health_check_interval_seconds} is not a Route 53 request interval",
            "use 10 (fast) or 30 (standard)",
        )
    _require_in_range(
        "healthCheckFailureThreshold",
        config.health_check_failure_threshold,
        HEALTH_CHECK_THRESHOLD_RANGE,
    )
    for key, value in (
        ("rtoTargetSeconds", config.rto_target_seconds),
        ("rpoTargetSeconds", config.rpo_target_seconds),
        ("replicationLagAlarmSeconds", config.replication_lag_alarm_seconds),
        ("apiThrottleRateLimit", config.api_throttle_rate_limit),
        ("apiThrottleBurstLimit", config.api_throttle_burst_limit),
        ("merchantThrottleRateLimit", config.merchant_throttle_rate_limit),
        ("merchantThrottleBurstLimit", config.merchant_throttle_burst_limit),
    ):
        if value <= 0:
            raise ConfigError(key, f"{value} is not positive", "use a value above 0")
    for burst_key, burst, rate_key, rate in (
        (
            "apiThrottleBurstLimit",
            config.api_throttle_burst_limit,
            "apiThrottleRateLimit",
            config.api_throttle_rate_limit,
        ),
        (
            "merchantThrottleBurstLimit",
            config.merchant_throttle_burst_limit,
            "merchantThrottleRateLimit",
            config.merchant_throttle_rate_limit,
        ),
    ):
        if burst < rate:
            raise ConfigError(
                burst_key,
                f"smaller than {rate_key}",
                "allow a burst at least as large as the steady rate",
            )
    if config.merchant_throttle_rate_limit > config.api_throttle_rate_limit:
        raise ConfigError(
            "merchantThrottleRateLimit",
            "above apiThrottleRateLimit",
            "keep one merchant's share below the stage's limit",
        )
    _require_in_range(
        "wafRequestsPerIpPer5Minutes",
        config.waf_requests_per_ip_per_5_minutes,
        WAF_RATE_LIMIT_RANGE,
    )
    for key, days in (
        ("logRetentionDays", config.log_retention_days),
        ("auditLogRetentionDays", config.audit_log_retention_days),
    ):
        if days not in LOG_RETENTION_DAYS:
            raise ConfigError(
                key,
                f"{days} is not a CloudWatch Logs retention period",
                f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
            )
    if config.audit_log_retention_days < AUDIT_LOG_MIN_RETENTION_DAYS:
        raise ConfigError(
            "auditLogRetentionDays",
            f"{config.audit_log_retention_days} days is less than 12 months",
            f"keep access, WAF and flow logs at least {AUDIT_LOG_MIN_RETENTION_DAYS} days"
            " (PCI DSS 10.5.1)",
        )
    low, high = TRANSACTION_LOG_RETENTION_RANGE
    if not low <= config.transaction_log_retention_days <= high:
        raise ConfigError(
            "transactionLogRetentionDays",
            f"{config.transaction_log_retention_days} days is out of range",
            f"keep the transaction logs from {low} days (the table's point-in-time recovery"
            f" window, which rebuilds a lost range) to {high} days (ten years)",
        )
    _require_in_range(
        "archiverStreamShards", config.archiver_stream_shards, ARCHIVER_STREAM_SHARDS_RANGE
    )
    _validate_ssm_reads(config)
    _require_in_range(
        "canaryIntervalMinutes", config.canary_interval_minutes, CANARY_INTERVAL_MINUTES_RANGE
    )
    low, high = MERCHANT_KEY_MAX_AGE_DAYS_RANGE
    if not low <= config.merchant_key_max_age_days <= high:
        raise ConfigError(
            "merchantKeyMaxAgeDays",
            f"{config.merchant_key_max_age_days} days is out of range",
            f"alarm on merchant keys older than {low} to {high} days (two years, the longest"
            " cryptoperiod NIST SP 800-57 suggests for an authentication key); 90 is common",
        )
    role_arn = config.api_gateway_logging_role_arn
    if role_arn is not None and not _ROLE_ARN_RE.match(role_arn):
        raise ConfigError(
            "apiGatewayLoggingRoleArn",
            f"{role_arn!r} is not an IAM role ARN",
            "use arn:aws:iam::<account>:role/<name> or leave it unset to create the role",
        )
    break_glass = config.break_glass_role_arn
    if break_glass is not None and not _ROLE_ARN_RE.match(break_glass):
        raise ConfigError(
            "breakGlassRoleArn",
            f"{break_glass!r} is not an IAM role ARN",
            "use arn:aws:iam::<account>:role/<name> (with its path, if it has one), or leave it"
            " unset so that no person can read the transaction logs",
        )
    if config.alarm_email is not None and not _EMAIL_RE.match(config.alarm_email):
        raise ConfigError(
            "alarmEmail",
            f"{config.alarm_email!r} is not an e-mail address",
            "use name@example.com or leave it unset",
        )
    _validate_tags(config.tags)
    budget = config.budget
    if budget.rto_budget_seconds > config.rto_target_seconds:
        raise ConfigError(
            "rtoTargetSeconds",
            f"failover can take {budget.rto_budget_seconds} s"
            f" (detection {budget.detection_seconds} s"
            f" + DNS {budget.dns_seconds} s + margin {budget.margin_seconds} s), above the"
            f" target of {config.rto_target_seconds} s",
            "lower healthCheckIntervalSeconds or healthCheckFailureThreshold, or raise the target",
        )
    if budget.rpo_budget_seconds > config.rpo_target_seconds:
        raise ConfigError(
            "replicationLagAlarmSeconds",
            f"replication lag alarms only after {budget.rpo_budget_seconds} s, above the RPO"
            f" target of {config.rpo_target_seconds} s",
            "lower replicationLagAlarmSeconds to at most rpoTargetSeconds"
            " or use consistencyMode: strong",
        )


def _require_in_range(key: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ConfigError(key, f"{value} is out of range", f"use a value from {low} to {high}")


def _validate_ssm_reads(config: StackConfig) -> None:
    """How the API reads `mode`, and the SSM load that makes at a full cold start."""
    _require_in_range("modeRefreshSeconds", config.mode_refresh_seconds, MODE_REFRESH_RANGE)
    # A cold container's first write waits up to the spread, inside the API's timeout.
    spread_max = min(config.mode_refresh_seconds, MODE_READ_SPREAD_MAX)
    if not 1 <= config.mode_read_spread_seconds <= spread_max:
        raise ConfigError(
            "modeReadSpreadSeconds",
            f"{config.mode_read_spread_seconds} is out of range",
            f"use a value from 1 to {spread_max} (at most modeRefreshSeconds, and short enough"
            " for a cold container's first payment to finish within the API's timeout)",
        )
    _require_in_range("ssmThroughputTps", config.ssm_throughput_tps, SSM_THROUGHPUT_RANGE)
    for load in ssm_loads(config):
        if load.within_quota:
            continue
        needed = minimum_spread_seconds(load)
        spread_fix = (
            f"raise modeReadSpreadSeconds to at least {needed}"
            + (" (and modeRefreshSeconds with it)" if needed > config.mode_refresh_seconds else "")
            if needed is not None and needed <= MODE_READ_SPREAD_MAX
            else None
        )
        quota_fix = (
            "enable Parameter Store higher throughput in the account and region and set"
            f" ssmThroughputTps to its quota ({SSM_HIGHER_THROUGHPUT_TPS})"
        )
        raise ConfigError(
            "modeReadSpreadSeconds",
            f"a full cold start of {load.region} reads SSM at {load.peak_tps:.1f}/s"
            f" ({load.readers} API containers over {load.spread_seconds} s + health probes),"
            f" above ssmThroughputTps {load.quota_tps}/s: throttled reads fail health checks",
            f"{spread_fix}, or {quota_fix}" if spread_fix else quota_fix,
        )
