"""The stack file's keys and how their values are read: Pulumi's strings, or native YAML
types, become typed values; anything else is one `ConfigError` naming the key and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from payments_dr import contract
from payments_dr.contract import ConsistencyMode, FailoverControl


class ConfigError(ValueError):
    """A stack configuration the program refuses; the message names the key and the fix."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key = key
        super().__init__(f"{contract.CONFIG_NAMESPACE}:{key}: {problem}. Fix: {fix}")


# Stack-file key -> StackConfig field.
KEYS: Final = {
    "domainName": "domain_name",
    "hostedZoneId": "hosted_zone_id",
    "primaryRegion": "primary_region",
    "secondaryRegion": "secondary_region",
    "consistencyMode": "consistency_mode",
    "failoverControl": "failover_control",
    "witnessRegion": "witness_region_setting",
    "healthCheckIntervalSeconds": "health_check_interval_seconds",
    "healthCheckFailureThreshold": "health_check_failure_threshold",
    "rtoTargetSeconds": "rto_target_seconds",
    "rpoTargetSeconds": "rpo_target_seconds",
    "replicationLagAlarmSeconds": "replication_lag_alarm_seconds",
    "alarmEmail": "alarm_email",
    "logRetentionDays": "log_retention_days",
    "auditLogRetentionDays": "audit_log_retention_days",
    "transactionLogRetentionDays": "transaction_log_retention_days",
    "apiGatewayLoggingRoleArn": "api_gateway_logging_role_arn",
    "breakGlassRoleArn": "break_glass_role_arn",
    "archiverStreamShards": "archiver_stream_shards",
    "apiThrottleRateLimit": "api_throttle_rate_limit",
    "apiThrottleBurstLimit": "api_throttle_burst_limit",
    "merchantThrottleRateLimit": "merchant_throttle_rate_limit",
    "merchantThrottleBurstLimit": "merchant_throttle_burst_limit",
    "wafRequestsPerIpPer5Minutes": "waf_requests_per_ip_per_5_minutes",
    "modeRefreshSeconds": "mode_refresh_seconds",
    "modeReadSpreadSeconds": "mode_read_spread_seconds",
    "ssmThroughputTps": "ssm_throughput_tps",
    "canaryIntervalMinutes": "canary_interval_minutes",
    "merchantKeyMaxAgeDays": "merchant_key_max_age_days",
    "tags": "tags",
}
INT_KEYS: Final = frozenset(
    {
        "healthCheckIntervalSeconds",
        "healthCheckFailureThreshold",
        "rtoTargetSeconds",
        "rpoTargetSeconds",
        "replicationLagAlarmSeconds",
        "logRetentionDays",
        "auditLogRetentionDays",
        "transactionLogRetentionDays",
        "archiverStreamShards",
        "apiThrottleRateLimit",
        "apiThrottleBurstLimit",
        "merchantThrottleRateLimit",
        "merchantThrottleBurstLimit",
        "wafRequestsPerIpPer5Minutes",
        "modeRefreshSeconds",
        "modeReadSpreadSeconds",
        "ssmThroughputTps",
        "canaryIntervalMinutes",
        "merchantKeyMaxAgeDays",
    }
)


def coerce(key: str, value: Any) -> Any:
    """Pulumi hands config values over as strings; accept those and native YAML types."""
    if value is None or value == "":
        return None
    if key in INT_KEYS:
        if isinstance(value, bool):
            raise ConfigError(key, f"expected a whole number, got {value!r}", "write an integer")
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(
                key, f"expected a whole number, got {value!r}", "write an integer"
            ) from None
    if key == "consistencyMode":
        try:
            return ConsistencyMode(str(value))
        except ValueError:
            choices = ", ".join(mode.value for mode in ConsistencyMode)
            raise ConfigError(key, f"unknown mode {value!r}", f"use one of: {choices}") from None
    if key == "failoverControl":
        try:
            return FailoverControl(str(value))
        except ValueError:
            raise ConfigError(
                key,
                f"unknown switch {value!r}",
                "use alarm (a CloudWatch alarm in the other region, about $2 a month) or arc"
                " (Route 53 ARC routing controls, about $1,825 a month for the cluster)",
            ) from None
    if key == "tags":
        if not isinstance(value, Mapping):
            raise ConfigError(
                key, "expected a mapping of tag names to values", "write tags as a YAML map"
            )
        return {str(name): _tag_value(str(name), tag) for name, tag in value.items()}
    return str(value)


def _tag_value(name: str, value: Any) -> str:
    """A tag's value as text; YAML that is not a plain value is refused, not stringified."""
    if value is None:
        raise ConfigError("tags", f"tag {name!r} has no value", "give it a value or remove it")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        shown = "true/false" if isinstance(value, bool) else f"a {type(value).__name__}"
        raise ConfigError(
            "tags", f"tag {name!r} is {shown}, not text", "write the value as a quoted string"
        )
    return str(value)
