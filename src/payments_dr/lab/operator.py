"""The on-call operator in the lab: `payments-dr failover` and `failback`, the real code paths
(ops/switch.py), against the lab's regions.

The operator's AWS clients are the lab's fault-injected ones: a region's outage or SSM outage
fails their calls as it would fail a real operator's, and while the lab's Route 53 API is down
every Route 53 call fails too. What the commands read, decide and write is noted on the
drill's timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import EndpointConnectionError

from payments_dr import contract
from payments_dr.contract import FailoverControl
from payments_dr.lab.aws import shared_session
from payments_dr.ops.aws import ROUTE53_API_REGION, Aws, OpsError
from payments_dr.ops.outputs import RegionOutputs, RegionSwitch, StackOutputs
from payments_dr.ops.switch import SwitchResult, apply_writes
from payments_dr.ops.switch_plan import SwitchPlan, assess, plan_failback, plan_failover

if TYPE_CHECKING:
    from payments_dr.lab.lab import Lab


def lab_outputs(lab: Lab) -> StackOutputs:
    """The lab's regions as `pulumi stack output` would describe a deployed stack."""
    config = lab.settings.config
    budget = config.budget
    regions = {}
    for name, region in lab.regions.items():
        peer = lab.peer_of(name)
        resources = region.resources
        regions[name] = RegionOutputs(
            region=name,
            role=config.role_of(name),
            api_endpoint=region.api.url,
            custom_domain_target=f"lab-{name}",
            health_check_id=f"lab-health-{name}",
            health_check_url=region.api.url + contract.HEALTH_PATH,
            alarm_arns={},
            ssm_path=resources.ssm_path,
            retry_queue_url=resources.retry_queue_url,
            dlq_url=resources.dlq_url,
            log_bucket=resources.bucket,
            usage_plan_id="lab",
            web_acl_arn="lab",
            switch=RegionSwitch(
                kind=FailoverControl.ALARM,
                health_check_id=f"lab-switch-{name}",
                region=peer,
                alarm_name=contract.switch_alarm_name(config.stack, name),
                namespace=contract.SWITCH_NAMESPACE,
                metric_name=contract.SWITCH_METRIC,
                dimensions=contract.switch_dimensions(config.stack, name),
            ),
        )
    return StackOutputs(
        stack=config.stack,
        failover_url=lab.failover_url,
        api_domain=config.api_domain,
        hosted_zone_id="lab",
        table_name=contract.table_name(config.stack),
        rto_target_seconds=budget.rto_target_seconds,
        rpo_target_seconds=budget.rpo_target_seconds,
        rto_budget_seconds=budget.rto_budget_seconds,
        rpo_budget_seconds=budget.rpo_budget_seconds,
        regions=regions,
        failover_control=FailoverControl.ALARM,
    )


def operator_aws(lab: Lab) -> Aws:
    clients: dict[tuple[str, str], Any] = {}
    for name, region in lab.regions.items():
        for service in ("ssm", "cloudwatch", "dynamodb"):
            clients[(service, name)] = region.aws.service_client(service)
    route53 = shared_session().client("route53", region_name=ROUTE53_API_REGION)

    def route53_api(**_: Any) -> None:
        # The lab plays Route 53's health checking and DNS, not its API: a reading through it
        # is unknown even when the API is up, which the commands must survive anyway.
        state = "down" if lab.route53_api_down else "not simulated"
        raise EndpointConnectionError(endpoint_url=f"https://route53.amazonaws.com ({state})")

    route53.meta.events.register("before-call", route53_api)
    clients[("route53", ROUTE53_API_REGION)] = route53
    return Aws(shared_session(), clients=clients)


def operator_failover(lab: Lab) -> None:
    outputs = lab_outputs(lab)
    _run(lab, outputs, plan_failover(outputs, lab.secondary), f"failover --to {lab.secondary}")


def operator_failback(lab: Lab) -> None:
    outputs = lab_outputs(lab)
    _run(lab, outputs, plan_failback(outputs), "failback")


def _run(lab: Lab, outputs: StackOutputs, plan: SwitchPlan, command: str) -> None:
    aws = operator_aws(lab)
    assessment = assess(aws, outputs, plan)
    unknown = ", ".join(f"{r.what} [{r.region}]" for r in assessment.unknown)
    if unknown:
        lab.note("note", f"payments-dr {command}: unknown readings: {unknown}")
    if assessment.reasons:
        lab.note("note", f"payments-dr {command} refused: {'; '.join(assessment.reasons)}")
        return
    result = SwitchResult(plan)
    try:
        apply_writes(aws, outputs, plan, result, lambda: _simulated_now(lab))
    except OpsError as error:
        lab.note("note", f"payments-dr {command} failed: {error}")
        return
    for step in result.steps:
        detail = step.detail if step.ok else f"FAILED ({step.error})"
        lab.note("operator", f"payments-dr {command}: {step.name} {step.region}: {detail}")


def _simulated_now(lab: Lab) -> datetime:
    return datetime.fromtimestamp(lab.clock.epoch(), UTC)
