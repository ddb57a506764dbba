"""Reading and flipping a region's traffic switch (infra/switch.py) with data-plane calls only.

- alarm: the switch of region R is a custom metric and its alarm in R's *peer*. Flipping it is
  one `PutMetricData` there; reading it is `DescribeAlarms` there. Nothing calls into R.
- arc: the switch is R's routing control, flipped through the ARC cluster's data-plane
  endpoints (five regions). Each is tried in turn until one answers, as AWS advises: any one
  endpoint can change a routing control.

Neither touches the Route 53 control plane (its API lives in us-east-1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from payments_dr.contract import FailoverControl, SwitchState
from payments_dr.ops.aws import Aws, OpsError
from payments_dr.ops.outputs import ClusterEndpoint, RegionSwitch, StackOutputs

ARC_SERVICE = "route53-recovery-cluster"
# Answers that say "this endpoint cannot serve now": try the next one. Any other answer (a
# safety rule refusing the change, a bad ARN) is the cluster's verdict and is final.
_TRY_NEXT_ENDPOINT = frozenset(
    {"EndpointTemporarilyUnavailableException", "InternalServerException", "ThrottlingException"}
)
_ARC_STATE = {SwitchState.SERVE: "On", SwitchState.AWAY: "Off"}
_METRIC_VALUE = {SwitchState.SERVE: 0.0, SwitchState.AWAY: 1.0}


def switch_of(outputs: StackOutputs, region: str) -> RegionSwitch:
    switch = outputs.region(region).switch
    if switch is None:
        raise OpsError(
            f"stack {outputs.stack} was deployed before the traffic switch: update it with"
            f" `payments-dr stack up --stack {outputs.stack}`"
        )
    return switch


def switch_location(outputs: StackOutputs, region: str) -> str:
    """Where the switch of `region` is read and written, for messages."""
    switch = switch_of(outputs, region)
    if switch.kind is FailoverControl.ARC:
        return "ARC cluster"
    return str(switch.region)


def read_switch(aws: Aws, outputs: StackOutputs, region: str) -> SwitchState:
    switch = switch_of(outputs, region)
    if switch.kind is FailoverControl.ARC:
        response = _on_any_endpoint(
            aws,
            outputs.cluster_endpoints,
            lambda client: client.get_routing_control_state(
                RoutingControlArn=switch.routing_control_arn
            ),
        )
        return SwitchState.SERVE if response["RoutingControlState"] == "On" else SwitchState.AWAY
    response = aws.client("cloudwatch", str(switch.region)).describe_alarms(
        AlarmNames=[switch.alarm_name], AlarmTypes=["MetricAlarm"]
    )
    alarms = response["MetricAlarms"]
    if not alarms:
        raise OpsError(f"switch alarm {switch.alarm_name} not found in {switch.region}")
    # INSUFFICIENT_DATA: never set, and Route 53 then counts a new check healthy.
    return SwitchState.AWAY if alarms[0]["StateValue"] == "ALARM" else SwitchState.SERVE


def write_switches(
    aws: Aws,
    outputs: StackOutputs,
    states: dict[str, SwitchState],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Sets each region's switch. ARC changes them in one call, so a safety rule sees the
    whole change; alarm switches are one datapoint each, in each switch's own region."""
    if not states:
        return
    kinds = {switch_of(outputs, region).kind for region in states}
    if kinds == {FailoverControl.ARC}:
        entries = [
            {
                "RoutingControlArn": switch_of(outputs, region).routing_control_arn,
                "RoutingControlState": _ARC_STATE[state],
            }
            for region, state in states.items()
        ]
        _on_any_endpoint(
            aws,
            outputs.cluster_endpoints,
            lambda client: client.update_routing_control_states(
                UpdateRoutingControlStateEntries=entries
            ),
        )
        return
    for region, state in states.items():
        switch = switch_of(outputs, region)
        aws.client("cloudwatch", str(switch.region)).put_metric_data(
            Namespace=switch.namespace,
            MetricData=[
                {
                    "MetricName": switch.metric_name,
                    "Dimensions": [
                        {"Name": name, "Value": value} for name, value in switch.dimensions.items()
                    ],
                    "Timestamp": now(),
                    "Value": _METRIC_VALUE[state],
                    "Unit": "Count",
                }
            ],
        )


def _on_any_endpoint(
    aws: Aws, endpoints: Sequence[ClusterEndpoint], call: Callable[[Any], Any]
) -> Any:
    """The first answer from the cluster's endpoints, tried in order."""
    if not endpoints:
        raise OpsError("the stack lists no ARC cluster endpoints: is failoverControl arc deployed?")
    failures: list[str] = []
    for endpoint in endpoints:
        client = aws.endpoint_client(ARC_SERVICE, endpoint.region, endpoint.endpoint)
        try:
            return call(client)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            if code not in _TRY_NEXT_ENDPOINT:
                raise
            failures.append(f"{endpoint.region}: {code}")
        except BotoCoreError as error:  # no connection, timeout
            failures.append(f"{endpoint.region}: {error}")
    raise OpsError(f"no ARC cluster endpoint answered ({'; '.join(failures)})", exit_code=1)
