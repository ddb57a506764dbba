"""The traffic switch: what moves traffic away from a region without calling into it.

Each region's failover record is guarded by a CALCULATED health check that is healthy only
while both children are: the region's HTTPS check, and the region's switch. The switch's
state lives outside the region it governs, so an operator flips it with data-plane calls to
services that are not failing, and never with the Route 53 control plane (whose API is in
us-east-1). Two kinds, chosen by `failoverControl`:

- `alarm` (default): a CLOUDWATCH_METRIC health check on an alarm in the *peer* region. The
  operator publishes the custom metric there (`PutMetricData`, 1 = away, 0 = serve). Route 53
  reads the alarm's data stream in that region; with no new data it keeps the last known
  status, so one datapoint holds the switch until the next one.
- `arc`: Route 53 ARC routing controls (a cluster with endpoints in five regions, a control
  panel, one routing control per region, a safety rule that keeps at least one on) and a
  RECOVERY_CONTROL health check per region. The operator flips them through the cluster's
  data-plane endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import FailoverControl

# A CLOUDWATCH_METRIC health check with no data keeps its last status: the switch holds
# between datapoints, and an unreachable CloudWatch does not flip it. A new check starts
# healthy, so a freshly deployed switch serves.
INSUFFICIENT_DATA_STATUS = "LastKnownStatus"
# The region's HTTPS check and its switch: both must be healthy for the record to answer.
RECORD_CHILDREN = 2
# ARC refuses a change that breaks a safety rule; this long it waits before evaluating one.
SAFETY_RULE_WAIT_MS = 5000


@dataclass(frozen=True)
class TrafficSwitchArgs:
    stack: str
    kind: FailoverControl
    regions: tuple[str, ...]
    peer_of: Mapping[str, str]  # region -> the region that holds its alarm switch
    tags: Mapping[str, str]


class TrafficSwitch(pulumi.ComponentResource):
    """One switch per region, as a Route 53 health check id, plus what the CLI needs."""

    def __init__(
        self, name: str, args: TrafficSwitchArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:TrafficSwitch", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        self.args = args
        self.health_checks: dict[str, aws.route53.HealthCheck] = {}
        # {region: description} for the `switch` region output; the stack-level control too.
        self.descriptions: dict[str, dict[str, Any]] = {}
        self.control: dict[str, Any] = {"kind": args.kind.value}
        if args.kind is FailoverControl.ARC:
            self._routing_controls(name)
        else:
            for region in args.regions:
                self._alarm_switch(name, region)
        self.register_outputs(
            {"health_check_ids": {r: c.id for r, c in self.health_checks.items()}}
        )

    def _alarm_switch(self, name: str, region: str) -> None:
        args = self.args
        held_in = args.peer_of[region]
        alarm_name = contract.switch_alarm_name(args.stack, region)
        dimensions = contract.switch_dimensions(args.stack, region)
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-alarm-{region}",
            name=alarm_name,
            region=held_in,
            alarm_description=(
                f"Keeps traffic away from {region} while it fires: `payments-dr failover`"
                f" publishes {contract.SWITCH_METRIC}=1 here, `failback` 0."
            ),
            namespace=contract.SWITCH_NAMESPACE,
            metric_name=contract.SWITCH_METRIC,
            dimensions=dimensions,
            statistic="Maximum",
            period=contract.SWITCH_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="ignore",  # the last datapoint holds, as in the health check
            # No actions: it is a switch, not a page; `payments-dr status` shows its state.
            tags=dict(args.tags),
            opts=self._child,
        )
        check = aws.route53.HealthCheck(
            f"{name}-check-{region}",
            type="CLOUDWATCH_METRIC",
            cloudwatch_alarm_name=alarm_name,
            cloudwatch_alarm_region=held_in,
            insufficient_data_health_status=INSUFFICIENT_DATA_STATUS,
            tags={**args.tags, "Name": f"{contract.PROJECT}-{region}-switch"},
            # Route 53 reads the alarm's configuration when it creates the check.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[alarm]),
        )
        self.health_checks[region] = check
        self.descriptions[region] = {
            "kind": FailoverControl.ALARM.value,
            "health_check_id": check.id,
            "region": held_in,
            "alarm_name": alarm_name,
            "namespace": contract.SWITCH_NAMESPACE,
            "metric_name": contract.SWITCH_METRIC,
            "dimensions": dimensions,
        }

    def _routing_controls(self, name: str) -> None:
        args = self.args
        # ARC's configuration API is in us-west-2 only (the provider calls it there whatever
        # its region); its data plane is the cluster's endpoints, spread over five regions.
        arc = pulumi.ResourceOptions(parent=self)
        cluster = aws.route53recoverycontrol.Cluster(
            f"{name}-cluster", name=f"{contract.PROJECT}-{args.stack}", opts=arc
        )
        panel = aws.route53recoverycontrol.ControlPanel(
            f"{name}-panel",
            name=f"{contract.PROJECT}-{args.stack}",
            cluster_arn=cluster.arn,
            opts=arc,
        )
        controls = {
            served: aws.route53recoverycontrol.RoutingControl(
                f"{name}-control-{served}",
                name=f"{contract.PROJECT}-{args.stack}-{served}",
                cluster_arn=cluster.arn,
                control_panel_arn=panel.arn,
                opts=arc,
            )
            for served in args.regions
        }
        aws.route53recoverycontrol.SafetyRule(
            f"{name}-at-least-one-on",
            name=f"{contract.PROJECT}-{args.stack}-at-least-one-region",
            control_panel_arn=panel.arn,
            asserted_controls=[control.arn for control in controls.values()],
            rule_config={"inverted": False, "threshold": 1, "type": "ATLEAST"},
            wait_period_ms=SAFETY_RULE_WAIT_MS,
            opts=arc,
        )
        for served, control in controls.items():
            check = aws.route53.HealthCheck(
                f"{name}-check-{served}",
                type="RECOVERY_CONTROL",
                routing_control_arn=control.arn,
                tags={**args.tags, "Name": f"{contract.PROJECT}-{served}-switch"},
                opts=self._child,
            )
            self.health_checks[served] = check
            self.descriptions[served] = {
                "kind": FailoverControl.ARC.value,
                "health_check_id": check.id,
                "routing_control_arn": control.arn,
            }
        self.control = {
            "kind": FailoverControl.ARC.value,
            "cluster_endpoints": cluster.cluster_endpoints.apply(_endpoints),
            "control_panel_arn": panel.arn,
        }


def _endpoints(endpoints: Sequence[Any] | None) -> list[dict[str, str]]:
    """The cluster's data-plane endpoints as plain {endpoint, region} pairs."""
    plain = []
    for item in endpoints or ():
        get = item.get if isinstance(item, Mapping) else lambda key, i=item: getattr(i, key, None)
        plain.append({"endpoint": str(get("endpoint") or ""), "region": str(get("region") or "")})
    return plain
