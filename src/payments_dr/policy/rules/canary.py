"""Canaries: every one pages from its own region, and watches another region.

A canary publishes `CloudWatchSynthetics SuccessPercent` in the region it runs in; an alarm
anywhere else never sees a data point. A canary in the region it probes goes down with it,
so the page about a failing region would never come.
"""

from __future__ import annotations

from collections.abc import Iterator

from payments_dr import contract
from payments_dr.policy import tokens
from payments_dr.policy.model import Finding, ResourceView, StackRule, StackView
from payments_dr.policy.props import alarm_watches, blocks, describe, get, number, text

SYNTHETICS_NAMESPACE = "CloudWatchSynthetics"
SUCCESS_METRIC = "SuccessPercent"
CANARY_DIMENSION = "CanaryName"


def _watched_canaries(alarm: ResourceView, canaries: list[ResourceView]) -> set[str]:
    """URNs of the canaries whose success `alarm` watches, directly or in a metric query."""
    return alarm_watches(
        alarm, canaries, SYNTHETICS_NAMESPACE, SUCCESS_METRIC, CANARY_DIMENSION, "name"
    )


def _fires_on_failed_runs(alarm: ResourceView) -> bool:
    """Success is 0-100 %: the alarm must fire below some success, and notify someone."""
    threshold = number(alarm.props.get("threshold"))
    comparison = text(alarm.props.get("comparisonOperator"))
    fires = threshold is not None and (
        (comparison == "LessThanThreshold" and 0 < threshold <= 100)
        or (comparison == "LessThanOrEqualToThreshold" and 0 <= threshold < 100)
    )
    return fires and bool(blocks(alarm.props.get("alarmActions")))


def _check_canary_alarms(stack: StackView) -> Iterator[Finding]:
    canaries = stack.of_type(tokens.SYNTHETICS_CANARY)
    alarms = stack.of_type(tokens.CLOUDWATCH_METRIC_ALARM)
    watching = {alarm.urn: _watched_canaries(alarm, canaries) for alarm in alarms}
    for canary in canaries:
        on_canary = [alarm for alarm in alarms if canary.urn in watching[alarm.urn]]
        local = [alarm for alarm in on_canary if alarm.region == canary.region]
        if not any(_fires_on_failed_runs(alarm) for alarm in local):
            elsewhere = sorted({alarm.region for alarm in on_canary} - {canary.region})
            where = f" (the alarms in {', '.join(elsewhere)} never see data)" if elsewhere else ""
            yield Finding(
                f"No alarm in {canary.region} pages when {describe(canary)} fails{where}. Fix:"
                f" add a MetricAlarm in {canary.region} on {SYNTHETICS_NAMESPACE}"
                f" {SUCCESS_METRIC} with {CANARY_DIMENSION}=<the canary's name>,"
                " comparison_operator='LessThanThreshold', threshold=100, and alarm_actions"
                " naming that region's alarm topic.",
                canary.urn,
            )
        variables = get(canary.props, "runConfig", "environmentVariables")
        target = text(get(variables, contract.ENV_CANARY_TARGET_REGION))
        if target and target == canary.region:
            yield Finding(
                f"{describe(canary)} probes {target}, the region it runs in: it fails with the"
                " region it watches. Fix: run it in the other region.",
                canary.urn,
            )


RULES = (
    StackRule(
        name="canary-alarm-in-own-region",
        description=(
            "Every Synthetics canary has an alarm in its own region (where its metrics are) that"
            " fires and notifies when its runs fail, and it probes another region than its own."
        ),
        check=_check_canary_alarms,
    ),
)
