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
from payments_dr.contract import ConsistencyMode, FailoverControl
from payments_dr.infra.config_keys import KEYS, ConfigError, coerce
from payments_dr.infra.config_regions import strong_region_set
from payments_dr.infra.config_rules import validate
from payments_dr.infra.ssm_budget import SSM_DEFAULT_THROUGHPUT_TPS

# Time for Route 53 to publish a changed health status to its DNS servers and for clients to
# reconnect; a conservative allowance added to detection and the record TTL.
FAILOVER_MARGIN_SECONDS: Final = 60
_STACK_FILE_RE: Final = re.compile(r"^Pulumi\.(?P<stack>[A-Za-z0-9_.-]+)\.ya?ml$")


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
    # Strong mode only; needed when the region set offers more than one witness region.
    witness_region_setting: str | None = None
    # What moves traffic away from a region without calling into it (infra/switch.py).
    failover_control: FailoverControl = FailoverControl.ALARM
    health_check_interval_seconds: int = 10
    health_check_failure_threshold: int = 3
    rto_target_seconds: int = 900
    rpo_target_seconds: int = 300
    replication_lag_alarm_seconds: int = 30
    alarm_email: str | None = None
    log_retention_days: int = 90  # function logs: operational, not the audit trail
    # Access, WAF, flow and execution logs: the audit trail (PCI DSS 10.5.1: 12 months).
    audit_log_retention_days: int = 365
    # Transaction-log objects in both buckets expire this long after they are written.
    transaction_log_retention_days: int = 400
    # The operators' role that may read transaction logs and dead letters (decrypting with the
    # data key); unset: no person can, only the archiver and S3 replication.
    break_glass_role_arn: str | None = None
    # An existing role for API Gateway's region-wide logging setting; unset: the stack's own.
    api_gateway_logging_role_arn: str | None = None
    archiver_stream_shards: int = 8  # expected peak shards of each region's table stream
    api_throttle_rate_limit: int = 100  # steady-state requests per second per region
    api_throttle_burst_limit: int = 200
    # Per merchant, through the usage plan: one merchant cannot use up the stage's limits.
    merchant_throttle_rate_limit: int = 20
    merchant_throttle_burst_limit: int = 40
    # WAF rate-based rule: requests per client IP in any 5-minute window before blocking.
    waf_requests_per_ip_per_5_minutes: int = 3000
    # The API's `mode` reads (see infra.ssm_budget): re-read period, random delay before each
    # read, and the account's Parameter Store throughput quota in each region.
    mode_refresh_seconds: int = contract.MODE_REFRESH_SECONDS
    mode_read_spread_seconds: int = contract.MODE_READ_SPREAD_SECONDS
    ssm_throughput_tps: int = SSM_DEFAULT_THROUGHPUT_TPS
    # How often each region's canary probes the other region (infra.canary).
    canary_interval_minutes: int = 1
    # A merchant key in use older than this pages in each region (monitoring, "key age").
    merchant_key_max_age_days: int = 90
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self)

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
        unknown = sorted(set(plain) - set(KEYS))
        if unknown:
            raise ConfigError(unknown[0], "unknown key", f"use one of: {', '.join(sorted(KEYS))}")
        # An empty value (e.g. `alarmEmail: ""`) means "not set": the default applies.
        kwargs = {
            KEYS[key]: coerced
            for key, value in plain.items()
            if (coerced := coerce(key, value)) is not None
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
        for key in KEYS:
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
        """The strong-consistency witness: a region of the set holding no replica."""
        if self.consistency_mode is not ConsistencyMode.STRONG:
            return None
        if self.witness_region_setting is not None:
            return self.witness_region_setting
        members = strong_region_set(self.regions) or ()
        return next(region for region in members if region not in self.regions)

    @property
    def reserved_concurrency(self) -> dict[contract.Function, int]:
        """Executions each function reserves in each region.

        The log archiver gets one per stream shard: Lambda reads each shard with one
        invocation at a time (parallelization factor 1), so fewer would leave shards unread.
        """
        reserved = {
            function: settings.reserved_concurrency
            for function, settings in contract.FUNCTIONS.items()
        }
        reserved[contract.Function.LOG_ARCHIVER] = (
            self.archiver_stream_shards * contract.STREAM_PARALLELIZATION_FACTOR
        )
        return reserved

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


# Lambda refuses a reservation that leaves an account fewer unreserved executions than this.
LAMBDA_UNRESERVED_MINIMUM: Final = 100
MIGRATION_RUNBOOK = "docs/runbooks/consistency-mode-migration.md"


def refuse_consistency_change(config: StackConfig, deployed_mode: str | None) -> None:
    """Refuses a stack file whose consistency mode differs from the deployed table's.

    DynamoDB fixes a global table's consistency mode when it is created, and strong
    consistency can only be set up on an empty table: the change is a migration to a new
    stack, never an update of this one.
    """
    if deployed_mode is None or deployed_mode == config.consistency_mode.value:
        return
    raise ConfigError(
        "consistencyMode",
        f"stack {config.stack} runs a table created with {deployed_mode} consistency; a"
        f" global table keeps its mode for life and {ConsistencyMode.STRONG.value}"
        " consistency starts from an empty table",
        f"set consistencyMode: {deployed_mode} again. To change it, deploy a new stack with"
        f" {config.consistency_mode.value} consistency, copy the payments over, move the API"
        f" name to it and destroy this one ({MIGRATION_RUNBOOK})",
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
    document = _read_stack_document(path)
    values = document.get("config") or {}
    if not isinstance(values, Mapping):
        raise ConfigError("config", f"{path} has no config mapping", "put the keys under `config:`")
    return StackConfig.from_mapping(stack_name_from_path(path), values)


def _read_stack_document(path: Path) -> Mapping[str, Any]:
    """The stack file's YAML mapping; anything else is a ConfigError naming the file."""
    stack_name_from_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "stack file", f"{path} does not exist", "check the path (e.g. Pulumi.dev.yaml)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            "stack file", f"{path} is a directory", "name the Pulumi.<stack>.yaml file itself"
        ) from None
    except UnicodeDecodeError as error:
        before = error.object[: error.start]
        line, column = before.count(b"\n") + 1, error.start - before.rfind(b"\n")
        raise ConfigError(
            "stack file",
            f"{path} is not UTF-8 text (line {line}, column {column}:"
            f" byte {error.object[error.start]:#04x})",
            "save the file as UTF-8",
        ) from None
    except OSError as error:
        raise ConfigError(
            "stack file", f"{path} cannot be read ({error.strerror})", "check its permissions"
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(
            "stack file", f"{path} is not valid YAML ({_yaml_problem(error)})", "correct the YAML"
        ) from None
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(
            "stack file",
            f"{path} holds a YAML {type(document).__name__}, not a mapping",
            "put the keys under a top-level `config:` mapping",
        )
    return document


def _yaml_problem(error: yaml.YAMLError) -> str:
    """`line L, column C: problem`, 1-based as editors count."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
