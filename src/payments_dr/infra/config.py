"""Typed, validated stack configuration and the DR budget derived from it.

The stack file's `payments-dr:*` keys are parsed into a frozen `StackConfig`. Every problem is
reported as one `ConfigError` that names the offending key and how to fix it, so a bad stack
file fails before any resource is declared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from payments_dr import contract
from payments_dr.contract import ConsistencyMode

# Commercial-partition regions: ARNs in this program assume the `aws` partition.
KNOWN_REGIONS: Final = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    }
)

# Route 53 fixes the request interval at creation: standard (30 s) or fast (10 s).
HEALTH_CHECK_INTERVALS: Final = (10, 30)
HEALTH_CHECK_THRESHOLD_RANGE: Final = (1, 10)
# Retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS: Final = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
# Time for Route 53 to publish a changed health status to its DNS servers and for clients to
# reconnect; a conservative allowance added to detection and the record TTL.
FAILOVER_MARGIN_SECONDS: Final = 60

_DOMAIN_RE: Final = re.compile(r"^(?=.{4,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ZONE_ID_RE: Final = re.compile(r"^Z[A-Z0-9]{5,31}$")
_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STACK_FILE_RE: Final = re.compile(r"^Pulumi\.(?P<stack>[A-Za-z0-9_.-]+)\.ya?ml$")


class ConfigError(ValueError):
    """A stack configuration the program refuses; the message names the key and the fix."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key = key
        super().__init__(f"{contract.CONFIG_NAMESPACE}:{key}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class DrBudget:
    """Worst-case failover time and data loss implied by the configuration."""

    detection_seconds: int  # health-check interval x failure threshold
    dns_seconds: int  # TTL of the failover records
    margin_seconds: int
    rto_budget_seconds: int
    rpo_budget_seconds: int
    rto_target_seconds: int
    rpo_target_seconds: int

    def to_dict(self) -> dict[str, int]:
        """The `dr_budget` stack output: the contract's keys plus how the RTO budget adds up."""
        return {
            contract.DrBudgetField.RTO_TARGET_SECONDS: self.rto_target_seconds,
            contract.DrBudgetField.RPO_TARGET_SECONDS: self.rpo_target_seconds,
            contract.DrBudgetField.RTO_BUDGET_SECONDS: self.rto_budget_seconds,
            contract.DrBudgetField.RPO_BUDGET_SECONDS: self.rpo_budget_seconds,
            "detection_seconds": self.detection_seconds,
            "dns_seconds": self.dns_seconds,
            "margin_seconds": self.margin_seconds,
        }


@dataclass(frozen=True)
class StackConfig:
    """Everything the program reads from the stack configuration, validated."""

    stack: str
    domain_name: str
    hosted_zone_id: str | None = None  # None: the stack creates the zone
    primary_region: str = contract.DEFAULT_PRIMARY_REGION
    secondary_region: str = contract.DEFAULT_SECONDARY_REGION
    consistency_mode: ConsistencyMode = ConsistencyMode.EVENTUAL
    health_check_interval_seconds: int = 10
    health_check_failure_threshold: int = 3
    rto_target_seconds: int = 900
    rpo_target_seconds: int = 300
    replication_lag_alarm_seconds: int = 30
    alarm_email: str | None = None
    log_retention_days: int = 90
    api_throttle_rate_limit: int = 100  # steady-state requests per second per region
    api_throttle_burst_limit: int = 200
    # Per merchant, through the usage plan: one merchant cannot use up the stage's limits.
    merchant_throttle_rate_limit: int = 20
    merchant_throttle_burst_limit: int = 40
    # WAF rate-based rule: requests per client IP in any 5-minute window before blocking.
    waf_requests_per_ip_per_5_minutes: int = 3000
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    # --- construction --------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, stack: str, values: Mapping[str, Any]) -> StackConfig:
        """Build from the stack file's keys, with or without the `payments-dr:` prefix."""
        prefix = f"{contract.CONFIG_NAMESPACE}:"
        plain: dict[str, Any] = {}
        for raw_key, value in values.items():
            if ":" in raw_key and not raw_key.startswith(prefix):
                continue  # another namespace's setting, e.g. aws:region
            plain[raw_key.removeprefix(prefix)] = value
        unknown = sorted(set(plain) - set(_KEYS))
        if unknown:
            raise ConfigError(unknown[0], "unknown key", f"use one of: {', '.join(sorted(_KEYS))}")
        # An empty value (e.g. `alarmEmail: ""`) means "not set": the default applies.
        kwargs = {
            _KEYS[key]: coerced
            for key, value in plain.items()
            if (coerced := _coerce(key, value)) is not None
        }
        if "domain_name" not in kwargs:
            raise ConfigError(
                "domainName", "missing", "set the API's parent domain, e.g. pay.example.com"
            )
        return cls(stack=stack, **kwargs)

    @classmethod
    def from_pulumi(cls) -> StackConfig:
        """Read the configuration of the stack being deployed (inside a Pulumi program)."""
        import pulumi

        config = pulumi.Config(contract.CONFIG_NAMESPACE)
        values: dict[str, Any] = {}
        for key in _KEYS:
            value = config.get_object(key) if key == "tags" else config.get(key)
            if value is not None:
                values[key] = value
        return cls.from_mapping(pulumi.get_stack(), values)

    # --- derived values ------------------------------------------------------------------
    @property
    def regions(self) -> tuple[str, str]:
        return (self.primary_region, self.secondary_region)

    def peer_region(self, region: str) -> str:
        return self.secondary_region if region == self.primary_region else self.primary_region

    def role_of(self, region: str) -> contract.RegionRole:
        if region == self.primary_region:
            return contract.RegionRole.PRIMARY
        return contract.RegionRole.SECONDARY

    @property
    def witness_region(self) -> str | None:
        """The strong-consistency witness: the one region of the set holding no replica."""
        if self.consistency_mode is not ConsistencyMode.STRONG:
            return None
        (witness,) = set(contract.STRONG_CONSISTENCY_REGIONS) - set(self.regions)
        return witness

    @property
    def api_domain(self) -> str:
        return f"{contract.API_SUBDOMAIN}.{self.domain_name}"

    @property
    def failover_url(self) -> str:
        return f"https://{self.api_domain}"

    @property
    def budget(self) -> DrBudget:
        detection = self.health_check_interval_seconds * self.health_check_failure_threshold
        dns = contract.ALIAS_RECORD_TTL_SECONDS
        rpo = (
            0
            if self.consistency_mode is ConsistencyMode.STRONG
            else self.replication_lag_alarm_seconds
        )
        return DrBudget(
            detection_seconds=detection,
            dns_seconds=dns,
            margin_seconds=FAILOVER_MARGIN_SECONDS,
            rto_budget_seconds=detection + dns + FAILOVER_MARGIN_SECONDS,
            rpo_budget_seconds=rpo,
            rto_target_seconds=self.rto_target_seconds,
            rpo_target_seconds=self.rpo_target_seconds,
        )

    @property
    def resource_tags(self) -> dict[str, str]:
        return {"project": contract.PROJECT, "stack": self.stack, **self.tags}


# What AWS WAF accepts as a rate-based rule's limit.
WAF_RATE_LIMIT_RANGE: Final = (10, 2_000_000_000)

# Stack-file key -> StackConfig field.
_KEYS: Final = {
    "domainName": "domain_name",
    "hostedZoneId": "hosted_zone_id",
    "primaryRegion": "primary_region",
    "secondaryRegion": "secondary_region",
    "consistencyMode": "consistency_mode",
    "healthCheckIntervalSeconds": "health_check_interval_seconds",
    "healthCheckFailureThreshold": "health_check_failure_threshold",
    "rtoTargetSeconds": "rto_target_seconds",
    "rpoTargetSeconds": "rpo_target_seconds",
    "replicationLagAlarmSeconds": "replication_lag_alarm_seconds",
    "alarmEmail": "alarm_email",
    "logRetentionDays": "log_retention_days",
    "apiThrottleRateLimit": "api_throttle_rate_limit",
    "apiThrottleBurstLimit": "api_throttle_burst_limit",
    "merchantThrottleRateLimit": "merchant_throttle_rate_limit",
    "merchantThrottleBurstLimit": "merchant_throttle_burst_limit",
    "wafRequestsPerIpPer5Minutes": "waf_requests_per_ip_per_5_minutes",
    "tags": "tags",
}
_INT_KEYS: Final = frozenset(
    {
        "healthCheckIntervalSeconds",
        "healthCheckFailureThreshold",
        "rtoTargetSeconds",
        "rpoTargetSeconds",
        "replicationLagAlarmSeconds",
        "logRetentionDays",
        "apiThrottleRateLimit",
        "apiThrottleBurstLimit",
        "merchantThrottleRateLimit",
        "merchantThrottleBurstLimit",
        "wafRequestsPerIpPer5Minutes",
    }
)


def _coerce(key: str, value: Any) -> Any:
    """Pulumi hands config values over as strings; accept those and native YAML types."""
    if value is None or value == "":
        return None
    if key in _INT_KEYS:
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
    if key == "tags":
        if not isinstance(value, Mapping):
            raise ConfigError(
                key, "expected a mapping of tag names to values", "write tags as a YAML map"
            )
        return {str(name): str(tag) for name, tag in value.items()}
    return str(value)


def _validate(config: StackConfig) -> None:
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
    for key, region in (
        ("primaryRegion", config.primary_region),
        ("secondaryRegion", config.secondary_region),
    ):
        if region not in KNOWN_REGIONS:
            raise ConfigError(
                key, f"unknown region {region!r}", "use an AWS commercial region such as us-east-2"
            )
    if config.primary_region == config.secondary_region:
        raise ConfigError(
            "secondaryRegion",
            f"same as primaryRegion ({config.primary_region})",
            "choose a different region for disaster recovery",
        )
    if config.consistency_mode is ConsistencyMode.STRONG:
        outside = [r for r in config.regions if r not in contract.STRONG_CONSISTENCY_REGIONS]
        if outside:
            raise ConfigError(
                "consistencyMode",
                f"strong consistency is not offered for {', '.join(outside)}",
                f"use two of {', '.join(contract.STRONG_CONSISTENCY_REGIONS)}"
                " or consistencyMode: eventual",
            )
    if config.health_check_interval_seconds not in HEALTH_CHECK_INTERVALS:
        raise ConfigError(
            "healthCheckIntervalSeconds",
            f"{config.health_check_interval_seconds} is not a Route 53 request interval",
            "use 10 (fast) or 30 (standard)",
        )
    low, high = HEALTH_CHECK_THRESHOLD_RANGE
    if not low <= config.health_check_failure_threshold <= high:
        raise ConfigError(
            "healthCheckFailureThreshold",
            f"{config.health_check_failure_threshold} is out of range",
            f"use a value from {low} to {high}",
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
    low, high = WAF_RATE_LIMIT_RANGE
    if not low <= config.waf_requests_per_ip_per_5_minutes <= high:
        raise ConfigError(
            "wafRequestsPerIpPer5Minutes",
            f"{config.waf_requests_per_ip_per_5_minutes} is out of range",
            f"use a value from {low} to {high}",
        )
    if config.log_retention_days not in LOG_RETENTION_DAYS:
        raise ConfigError(
            "logRetentionDays",
            f"{config.log_retention_days} is not a CloudWatch Logs retention period",
            f"use one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
        )
    if config.alarm_email is not None and not _EMAIL_RE.match(config.alarm_email):
        raise ConfigError(
            "alarmEmail",
            f"{config.alarm_email!r} is not an e-mail address",
            "use name@example.com or leave it unset",
        )
    for tag_name, tag_value in config.tags.items():
        if (
            not 1 <= len(tag_name) <= 128
            or tag_name.lower().startswith("aws:")
            or len(tag_value) > 256
        ):
            raise ConfigError(
                "tags",
                f"tag {tag_name!r} is not accepted by AWS",
                "use names of 1-128 characters not starting with aws: and values up to 256",
            )
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


def stack_name_from_path(path: Path) -> str:
    match = _STACK_FILE_RE.match(path.name)
    if match is None:
        raise ConfigError(
            "stack file", f"{path.name!r} is not named Pulumi.<stack>.yaml", "rename the file"
        )
    return match.group("stack")


def load_stack_file(path: Path | str) -> StackConfig:
    """Read a `Pulumi.<stack>.yaml` file; the stack name comes from the file name."""
    path = Path(path)
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    values = document.get("config") or {}
    if not isinstance(values, Mapping):
        raise ConfigError("config", f"{path} has no config mapping", "put the keys under `config:`")
    return StackConfig.from_mapping(stack_name_from_path(path), values)
