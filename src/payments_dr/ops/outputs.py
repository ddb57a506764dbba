"""The deployed stack's outputs, read through the Automation API or from a JSON file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payments_dr.contract import (
    DrBudgetField,
    FailoverControl,
    RegionOutput,
    RegionRole,
    StackOutput,
)
from payments_dr.ops.aws import OpsError

# (stack name, project directory) -> the stack's outputs; raises OpsError when unreadable.
OutputsReader = Callable[[str, Path], Mapping[str, Any]]
# Outputs a stack deployed by an earlier version of the program may lack.
OPTIONAL_OUTPUTS = frozenset(
    {
        StackOutput.DASHBOARD_URL,
        StackOutput.CONSISTENCY_MODE,
        StackOutput.FAILOVER_CONTROL,
        StackOutput.ALARMS,
        StackOutput.MERCHANT_KEY_MAX_AGE_DAYS,
    }
)
# Region outputs added with the traffic switch and the cross-region canaries: stacks
# deployed before them lack these.
OPTIONAL_REGION_OUTPUTS = frozenset(
    {
        RegionOutput.RECORD_HEALTH_CHECK_ID,
        RegionOutput.SWITCH,
        RegionOutput.DASHBOARD_URL,
        RegionOutput.CANARY_NAME,
        RegionOutput.CANARY_SECRET_ARN,
    }
)


@dataclass(frozen=True)
class RegionSwitch:
    """Where one region's traffic switch lives (infra/switch.py)."""

    kind: FailoverControl
    health_check_id: str
    # alarm: the metric and its alarm, in `region` (the peer of the region it governs)
    region: str | None = None
    alarm_name: str | None = None
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    # arc
    routing_control_arn: str | None = None


@dataclass(frozen=True)
class ClusterEndpoint:
    endpoint: str
    region: str


@dataclass(frozen=True)
class RegionOutputs:
    region: str
    role: RegionRole
    api_endpoint: str  # https://api.<region>.<domain>, answered by this region alone
    custom_domain_target: str
    health_check_id: str
    health_check_url: str
    alarm_arns: dict[str, str]
    ssm_path: str
    retry_queue_url: str
    dlq_url: str
    log_bucket: str
    usage_plan_id: str
    web_acl_arn: str
    switch: RegionSwitch | None = None  # None: deployed before the switch existed


@dataclass(frozen=True)
class StackOutputs:
    stack: str
    failover_url: str
    api_domain: str
    hosted_zone_id: str
    table_name: str
    rto_target_seconds: float
    rpo_target_seconds: float
    rto_budget_seconds: float
    rpo_budget_seconds: float
    regions: dict[str, RegionOutputs]
    dashboard_url: str | None = None
    failover_control: FailoverControl | None = None  # None: deployed before the switch
    cluster_endpoints: tuple[ClusterEndpoint, ...] = ()  # ARC only
    merchant_key_max_age_days: int | None = None  # None: deployed before the key-age alarm

    @property
    def primary(self) -> str:
        return self._region_with(RegionRole.PRIMARY)

    @property
    def secondary(self) -> str:
        return self._region_with(RegionRole.SECONDARY)

    @property
    def api_endpoints(self) -> dict[str, str]:
        """Each region's own URL, primary first: what `payments_dr.client` is given."""
        ordered = (self.primary, *self.others(self.primary))
        return {name: self.regions[name].api_endpoint for name in ordered}

    def others(self, region: str) -> tuple[str, ...]:
        return tuple(name for name in self.regions if name != region)

    def region(self, name: str) -> RegionOutputs:
        if name not in self.regions:
            known = ", ".join(sorted(self.regions))
            raise OpsError(f"stack {self.stack} has no region {name} (its regions: {known})")
        return self.regions[name]

    def _region_with(self, role: RegionRole) -> str:
        return next(name for name, region in self.regions.items() if region.role == role)


def parse_outputs(stack: str, raw: Any) -> StackOutputs:
    """Validates the raw outputs (plain values) into `StackOutputs`.

    A wrong shape is an OpsError naming the output, since a hand-edited or truncated file
    would otherwise fail deep inside a command.
    """
    if not isinstance(raw, Mapping):
        raise OpsError(
            f"the outputs of stack {stack} are a JSON {_json_type(raw)}, not a JSON object:"
            f" pass what `pulumi stack output --json -s {stack}` writes"
        )
    missing = [
        name.value for name in StackOutput if name not in OPTIONAL_OUTPUTS and name.value not in raw
    ]
    if missing:
        raise OpsError(f"stack {stack} lacks the outputs {', '.join(missing)}: is it deployed?")
    where = f"stack {stack}"
    budget = _mapping(raw[StackOutput.DR_BUDGET], f"{where}: output {StackOutput.DR_BUDGET}")
    regions = {
        str(name): _parse_region(stack, str(name), values)
        for name, values in _mapping(
            raw[StackOutput.REGIONS], f"{where}: output {StackOutput.REGIONS}"
        ).items()
    }
    roles = sorted(region.role.value for region in regions.values())
    if roles != sorted(role.value for role in RegionRole):
        raise OpsError(f"stack {stack} must have one primary and one secondary region: {roles}")

    def seconds(field: DrBudgetField) -> float:
        return _seconds(budget, field, f"{where}: output {StackOutput.DR_BUDGET}")

    dashboard_url = raw.get(StackOutput.DASHBOARD_URL)
    return StackOutputs(
        stack=stack,
        failover_url=_text(raw, StackOutput.FAILOVER_URL, where),
        api_domain=_text(raw, StackOutput.API_DOMAIN, where),
        hosted_zone_id=_text(raw, StackOutput.HOSTED_ZONE_ID, where),
        table_name=_text(raw, StackOutput.TABLE_NAME, where),
        rto_target_seconds=seconds(DrBudgetField.RTO_TARGET_SECONDS),
        rpo_target_seconds=seconds(DrBudgetField.RPO_TARGET_SECONDS),
        rto_budget_seconds=seconds(DrBudgetField.RTO_BUDGET_SECONDS),
        rpo_budget_seconds=seconds(DrBudgetField.RPO_BUDGET_SECONDS),
        regions=regions,
        dashboard_url=None
        if dashboard_url is None
        else _text(raw, StackOutput.DASHBOARD_URL, where),
        **_parse_control(stack, raw.get(StackOutput.FAILOVER_CONTROL)),
        merchant_key_max_age_days=_optional_days(raw, StackOutput.MERCHANT_KEY_MAX_AGE_DAYS, where),
    )


def _optional_days(values: Mapping[str, Any], key: str, where: str) -> int | None:
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise OpsError(
            f"{where}: output {key} is {value!r}, not a positive whole number of days:"
            " is the file intact?"
        )
    return value


def _parse_control(stack: str, control: Any) -> dict[str, Any]:
    if control is None:
        return {}
    if not isinstance(control, Mapping) or control.get("kind") not in set(FailoverControl):
        raise OpsError(
            f"stack {stack}: output {StackOutput.FAILOVER_CONTROL.value} is not an object with"
            f" a kind ({', '.join(FailoverControl)})"
        )
    endpoints = tuple(
        ClusterEndpoint(str(item["endpoint"]), str(item["region"]))
        for item in control.get("cluster_endpoints") or ()
        if isinstance(item, Mapping) and item.get("endpoint")
    )
    return {"failover_control": FailoverControl(control["kind"]), "cluster_endpoints": endpoints}


def _parse_switch(stack: str, region: str, raw: Any) -> RegionSwitch | None:
    if raw is None:
        return None
    try:
        return RegionSwitch(
            kind=FailoverControl(raw["kind"]),
            health_check_id=str(raw["health_check_id"]),
            region=raw.get("region"),
            alarm_name=raw.get("alarm_name"),
            namespace=raw.get("namespace"),
            metric_name=raw.get("metric_name"),
            dimensions=dict(raw.get("dimensions") or {}),
            routing_control_arn=raw.get("routing_control_arn"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise OpsError(
            f"stack {stack}, region {region}: output {RegionOutput.SWITCH.value} is malformed"
            f" ({error!r})"
        ) from error


def _parse_region(stack: str, region: str, raw: Any) -> RegionOutputs:
    where = f"stack {stack}, region {region}"
    values = _mapping(raw, where)
    missing = [
        key.value
        for key in RegionOutput
        if key not in OPTIONAL_REGION_OUTPUTS and key.value not in values
    ]
    if missing:
        raise OpsError(f"{where} lacks the outputs {', '.join(missing)}")
    role = _text(values, RegionOutput.ROLE, where)
    if role not in set(RegionRole):
        allowed = " or ".join(role.value for role in RegionRole)
        raise OpsError(f"{where}: output {RegionOutput.ROLE} is {role!r}, not {allowed}")
    alarms = _mapping(values[RegionOutput.ALARM_ARNS], f"{where}: output {RegionOutput.ALARM_ARNS}")
    return RegionOutputs(
        region=region,
        role=RegionRole(role),
        api_endpoint=_text(values, RegionOutput.API_ENDPOINT, where),
        custom_domain_target=_text(values, RegionOutput.CUSTOM_DOMAIN_TARGET, where),
        health_check_id=_text(values, RegionOutput.HEALTH_CHECK_ID, where),
        health_check_url=_text(values, RegionOutput.HEALTH_CHECK_URL, where),
        alarm_arns={str(purpose): str(arn) for purpose, arn in alarms.items()},
        ssm_path=_text(values, RegionOutput.SSM_PATH, where),
        retry_queue_url=_text(values, RegionOutput.RETRY_QUEUE_URL, where),
        dlq_url=_text(values, RegionOutput.DLQ_URL, where),
        log_bucket=_text(values, RegionOutput.LOG_BUCKET, where),
        usage_plan_id=_text(values, RegionOutput.USAGE_PLAN_ID, where),
        web_acl_arn=_text(values, RegionOutput.WEB_ACL_ARN, where),
        switch=_parse_switch(stack, region, values.get(RegionOutput.SWITCH)),
    )


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise OpsError(f"{what} is a JSON {_json_type(value)}, not an object: is the file intact?")
    return value


def _text(values: Mapping[str, Any], key: str, where: str) -> str:
    value = values[key]
    if not isinstance(value, str):
        raise OpsError(
            f"{where}: output {key} is a JSON {_json_type(value)}, not a string:"
            " is the file intact?"
        )
    return value


def _seconds(budget: Mapping[str, Any], field: DrBudgetField, what: str) -> float:
    if field.value not in budget:
        raise OpsError(f"{what} lacks {field.value}: is the file intact?")
    value = budget[field.value]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise OpsError(f"{what}: {field.value} is {value!r}, not a number of seconds")
    return float(value)


def pulumi_cli_available() -> bool:
    return shutil.which("pulumi") is not None


def read_with_automation_api(stack: str, work_dir: Path) -> Mapping[str, Any]:
    from pulumi import automation  # imported late: it is slow and needs the CLI anyway

    if not (work_dir / "Pulumi.yaml").is_file():
        raise OpsError(f"{work_dir} holds no Pulumi.yaml: pass --work-dir <project directory>")
    try:
        return automation.select_stack(stack_name=stack, work_dir=str(work_dir)).outputs()
    except automation.StackNotFoundError as error:
        raise OpsError(f"stack {stack} does not exist in the project at {work_dir}") from error
    except automation.CommandError as error:
        raise OpsError(
            f"the Pulumi CLI could not read stack {stack}: {cli_error_text(error)}"
        ) from error


def cli_error_text(error: Exception) -> str:
    """The CLI's own stderr from an Automation API error, on one line."""
    text = str(error)
    _, found, stderr = text.partition("stderr:")
    return " ".join((stderr if found else text).split())


def load_outputs(
    stack: str,
    outputs_file: Path | None,
    work_dir: Path,
    *,
    cli_available: Callable[[], bool] = pulumi_cli_available,
    read: OutputsReader = read_with_automation_api,
) -> StackOutputs:
    """Reads outputs from `outputs_file` when given, else through the Automation API."""
    if outputs_file is not None:
        try:
            raw = json.loads(outputs_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OpsError(f"outputs file {outputs_file} does not exist") from None
        except IsADirectoryError:
            raise OpsError(f"outputs file {outputs_file} is a directory: name the file") from None
        except OSError as error:
            raise OpsError(
                f"outputs file {outputs_file} cannot be read: {error.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise OpsError(f"outputs file {outputs_file} is not UTF-8 text") from None
        except json.JSONDecodeError as error:
            raise OpsError(f"outputs file {outputs_file} is not JSON: {error}") from None
        return parse_outputs(stack, raw)
    if not cli_available():
        raise OpsError(
            "the Pulumi CLI is not on PATH, so the stack outputs cannot be read: install it, "
            f"or pass --outputs FILE written by `pulumi stack output --json -s {stack}`"
        )
    raw = read(stack, work_dir)
    return parse_outputs(stack, {name: _plain(value) for name, value in raw.items()})


def _plain(output: Any) -> Any:
    # Automation API outputs are OutputValue objects; tests may hand in plain values.
    return getattr(output, "value", output)
