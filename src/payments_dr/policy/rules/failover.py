"""DR readiness of DNS failover: records, their health checks, the switch, timing, alarms.

These rules join failover records, health checks and alarms across the whole stack.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from payments_dr import contract
from payments_dr.policy import tokens
from payments_dr.policy.model import Finding, ResourceView, StackRule, StackView
from payments_dr.policy.props import (
    alarm_watches,
    blocks,
    describe,
    get,
    identities,
    number,
    resolve,
    strings,
    text,
)

# Route 53's defaults when a health check leaves them out.
DEFAULT_REQUEST_INTERVAL_SECONDS = 30.0
DEFAULT_FAILURE_THRESHOLD = 3.0
FAILOVER_ROLES = ("PRIMARY", "SECONDARY")
# Route 53 health-check status is 1 (healthy) or 0, published only in us-east-1.
ROUTE53_NAMESPACE = "AWS/Route53"
HEALTH_CHECK_METRIC = "HealthCheckStatus"
HEALTH_CHECK_ID = "HealthCheckId"
ROUTE53_METRICS_REGION = "us-east-1"
# Health checks that probe an endpoint themselves (the others combine checks, or follow an
# alarm or an ARC routing control).
ENDPOINT_CHECK_TYPES = frozenset({"HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP"})
SWITCH_CHECK_TYPES = frozenset({"CLOUDWATCH_METRIC", "RECOVERY_CONTROL"})


def _failover_role(record: ResourceView) -> str:
    policies = blocks(record.props.get("failoverRoutingPolicies"))
    return text(get(policies[0], "type")) if policies else ""


def _failover_records(stack: StackView) -> list[ResourceView]:
    return [r for r in stack.of_type(tokens.ROUTE53_RECORD) if _failover_role(r)]


def _health_check_of(stack: StackView, record: ResourceView) -> ResourceView | None:
    checks = resolve(record, "healthCheckId", stack.of_type(tokens.ROUTE53_HEALTH_CHECK))
    return checks[0] if checks else None


def _check_type(check: ResourceView) -> str:
    return text(check.props.get("type")) or "HTTP"


def _children(stack: StackView, check: ResourceView) -> list[ResourceView]:
    """The child health checks a CALCULATED check combines."""
    candidates = stack.of_type(tokens.ROUTE53_HEALTH_CHECK)
    reported = check.references.get("childHealthchecks")
    if reported:
        return [candidate for candidate in candidates if candidate.urn in reported]
    values = set(strings(check.props.get("childHealthchecks")))
    found = [candidate for candidate in candidates if values & identities(candidate)]
    if found:
        return found
    # Offline, provider-computed ids are unknown: the checks it depends on are its children.
    return [candidate for candidate in candidates if candidate.urn in check.dependencies]


def _endpoint_check_of(stack: StackView, record: ResourceView) -> ResourceView | None:
    """The check that probes the record's region: the record's own, or its CALCULATED child."""
    check = _health_check_of(stack, record)
    if check is None or _check_type(check) != "CALCULATED":
        return check
    probing = [c for c in _children(stack, check) if _check_type(c) in ENDPOINT_CHECK_TYPES]
    return probing[0] if probing else None


def _served_region(record: ResourceView) -> str:
    """The region an alias to an API Gateway regional domain routes to ('' if unknown)."""
    for alias in blocks(record.props.get("aliases")):
        labels = text(get(alias, "name")).rstrip(".").split(".")
        if "execute-api" in labels and labels.index("execute-api") + 1 < len(labels):
            return labels[labels.index("execute-api") + 1]
    return ""


def _check_failover_health_checks(stack: StackView) -> Iterator[Finding]:
    record_sets: dict[tuple[str, str, str], list[ResourceView]] = defaultdict(list)
    for record in _failover_records(stack):
        props = record.props
        set_key = (text(props.get("zoneId")), text(props.get("name")), text(props.get("type")))
        record_sets[set_key].append(record)
        if not text(props.get("healthCheckId")):
            yield Finding(
                f"{describe(record)} ({_failover_role(record)}) has no health check, so Route 53 "
                "cannot fail over from it. Fix: set health_check_id to the health check that "
                "probes this region's own endpoint.",
                record.urn,
            )
            continue
        check = _endpoint_check_of(stack, record)
        if check is None:
            yield Finding(
                f"{describe(record)} names a health check that is not in the stack or probes no"
                " endpoint. Fix: point health_check_id at the stack's health check for this"
                " region (or a CALCULATED check combining it).",
                record.urn,
            )
        elif text(check.props.get("fqdn")) == text(props.get("name")):
            yield Finding(
                f"{describe(check)} probes the shared failover name {text(props.get('name'))}, "
                "which answers from whichever region is active. Fix: probe this region's own "
                "name (api.<region>.<domain>).",
                check.urn,
            )
    for (_, name, _), records in sorted(record_sets.items()):
        roles = sorted(_failover_role(record) for record in records)
        if roles != sorted(FAILOVER_ROLES):
            yield Finding(
                f"Failover record set {name} has {', '.join(roles)} records. Fix: declare "
                "exactly one PRIMARY and one SECONDARY record.",
                records[0].urn,
            )


def _ttl_seconds(record: ResourceView) -> float:
    """Alias records take their target's TTL (60 s for API Gateway); others declare one."""
    if blocks(record.props.get("aliases")):
        return float(contract.ALIAS_RECORD_TTL_SECONDS)
    return number(record.props.get("ttl")) or 0.0


def _check_failover_timing(stack: StackView) -> Iterator[Finding]:
    target = stack.targets.rto_target_seconds
    margin = stack.targets.rto_margin_seconds
    for record in _failover_records(stack):
        check = _endpoint_check_of(stack, record)
        if check is None:
            continue  # reported by dr-failover-health-checks
        interval = number(check.props.get("requestInterval")) or DEFAULT_REQUEST_INTERVAL_SECONDS
        threshold = number(check.props.get("failureThreshold")) or DEFAULT_FAILURE_THRESHOLD
        ttl = _ttl_seconds(record)
        total = interval * threshold + ttl + margin
        if total > target:
            yield Finding(
                f"{describe(record)} fails over in up to {total:.0f} s (interval {interval:.0f} s "
                f"x threshold {threshold:.0f} + TTL {ttl:.0f} s + margin {margin:.0f} s), above "
                f"the RTO target of {target:.0f} s. Fix: use a 10 s interval, a lower failure "
                "threshold or a shorter TTL.",
                record.urn,
            )


def _watched_health_checks(alarm: ResourceView, checks: list[ResourceView]) -> set[str]:
    """URNs of the health checks whose status `alarm` watches, directly or in a query."""
    return alarm_watches(alarm, checks, ROUTE53_NAMESPACE, HEALTH_CHECK_METRIC, HEALTH_CHECK_ID)


def _fires_when_unhealthy(alarm: ResourceView) -> bool:
    """Status is 0 or 1: the alarm must fire on 0 and not on 1."""
    threshold = number(alarm.props.get("threshold"))
    comparison = text(alarm.props.get("comparisonOperator"))
    if threshold is None:
        return False
    if comparison == "LessThanThreshold":
        return 0 < threshold <= 1
    if comparison == "LessThanOrEqualToThreshold":
        return 0 <= threshold < 1
    return False


def _check_failover_switch(stack: StackView) -> Iterator[Finding]:
    alarms = stack.of_type(tokens.CLOUDWATCH_METRIC_ALARM)
    for record in _failover_records(stack):
        check = _health_check_of(stack, record)
        if check is None:
            continue  # reported by dr-failover-health-checks
        served = _served_region(record)
        children = _children(stack, check) if _check_type(check) == "CALCULATED" else []
        switches = [child for child in children if _check_type(child) in SWITCH_CHECK_TYPES]
        fix = (
            "Fix: guard the record with a CALCULATED health check that needs all of its"
            " children: the region's HTTPS check and a switch held outside the region (a"
            " CLOUDWATCH_METRIC check on an alarm in another region, or a RECOVERY_CONTROL"
            " check)."
        )
        if not switches:
            yield Finding(
                f"{describe(record)} can be moved away from {served or 'its region'} only by"
                f" its own health check or the Route 53 control plane. {fix}",
                record.urn,
            )
            continue
        threshold = number(check.props.get("childHealthThreshold"))
        if threshold is None or threshold < len(children):
            yield Finding(
                f"{describe(check)} stays healthy with {threshold or 0:.0f} of {len(children)}"
                f" children healthy, so its switch cannot move traffic alone. {fix}",
                check.urn,
            )
        for switch in switches:
            if _check_type(switch) == "RECOVERY_CONTROL":
                continue
            held_in = text(switch.props.get("cloudwatchAlarmRegion"))
            name = text(switch.props.get("cloudwatchAlarmName"))
            if served and held_in == served:
                yield Finding(
                    f"{describe(switch)} follows an alarm in {held_in}, the region it is meant"
                    f" to move traffic away from: flipping it needs that region. {fix}",
                    switch.urn,
                )
            elif not any(a.region == held_in and text(a.props.get("name")) == name for a in alarms):
                yield Finding(
                    f"{describe(switch)} follows alarm {name!r} in {held_in}, which the stack"
                    f" does not declare there. {fix}",
                    switch.urn,
                )


def _check_health_check_alarms(stack: StackView) -> Iterator[Finding]:
    checks = [
        check
        for check in stack.of_type(tokens.ROUTE53_HEALTH_CHECK)
        if _check_type(check) in ENDPOINT_CHECK_TYPES
    ]
    alarms = stack.of_type(tokens.CLOUDWATCH_METRIC_ALARM)
    watching = {alarm.urn: _watched_health_checks(alarm, checks) for alarm in alarms}
    for check in checks:
        on_check = [alarm for alarm in alarms if check.urn in watching[alarm.urn]]
        usable = [alarm for alarm in on_check if alarm.region == ROUTE53_METRICS_REGION]
        if not usable:
            elsewhere = sorted({alarm.region for alarm in on_check})
            where = f" (the alarms in {', '.join(elsewhere)} never see data)" if elsewhere else ""
            yield Finding(
                f"No {HEALTH_CHECK_METRIC} alarm in {ROUTE53_METRICS_REGION} on "
                f"{describe(check)}{where}: Route 53 would fail over with nobody notified, and "
                f"it publishes health-check metrics only in {ROUTE53_METRICS_REGION}. Fix: add a "
                f"MetricAlarm in {ROUTE53_METRICS_REGION} on {ROUTE53_NAMESPACE} "
                f"{HEALTH_CHECK_METRIC} with {HEALTH_CHECK_ID}=<this check>, "
                "comparison_operator='LessThanThreshold', threshold=1, and alarm actions.",
                check.urn,
            )
        for alarm in usable:
            if not _fires_when_unhealthy(alarm) or not blocks(alarm.props.get("alarmActions")):
                yield Finding(
                    f"{describe(alarm)} watches {describe(check)} but would not notify anyone "
                    "when it fails (status 0). Fix: comparison_operator='LessThanThreshold', "
                    "threshold=1, and alarm_actions naming the alarm topic.",
                    alarm.urn,
                )


RULES = (
    StackRule(
        name="dr-failover-health-checks",
        description=(
            "Each failover record has a health check in the stack probing its own region, and "
            "each failover set has one PRIMARY and one SECONDARY."
        ),
        check=_check_failover_health_checks,
    ),
    StackRule(
        name="dr-failover-switch",
        description=(
            "Each failover record's health check includes a switch held outside the region it"
            " serves (an alarm in another region or an ARC routing control), so traffic can"
            " leave a region with data-plane calls that need nothing in it."
        ),
        check=_check_failover_switch,
    ),
    StackRule(
        name="dr-failover-within-rto",
        description="Health-check interval x threshold + TTL + margin is within the RTO target.",
        check=_check_failover_timing,
        uses_targets=True,
    ),
    StackRule(
        name="dr-health-check-alarm",
        description=(
            "Every Route 53 health check that probes an endpoint has an alarm in us-east-1"
            " (where its metric is) that fires and notifies when the check fails."
        ),
        check=_check_health_check_alarms,
    ),
)
