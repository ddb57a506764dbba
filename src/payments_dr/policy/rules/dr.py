"""DR readiness: both regions serve alike and replication lag is watched.

These rules read the whole stack: they compare the regions' functions and join tables and
alarms. DNS failover has its own module, failover.py.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from payments_dr.policy import tokens
from payments_dr.policy.model import Finding, ResourceView, StackRule, StackView
from payments_dr.policy.props import (
    blocks,
    describe,
    get,
    number,
    text,
)

REPLICATION_METRIC = "ReplicationLatency"
# Strong consistency: writes wait for the other regions, so failures show in the writer's
# own table metrics instead of a replication lag.
WRITE_ERRORS_METRIC = "SystemErrors"
DYNAMODB_NAMESPACE = "AWS/DynamoDB"
RECEIVING_REGION = "ReceivingRegion"
TABLE_NAME = "TableName"
RISING_COMPARISONS = frozenset({"GreaterThanThreshold", "GreaterThanOrEqualToThreshold"})

# What must match between the regions' copies of a function, and where it is in the props.
FUNCTION_SETTINGS: dict[str, tuple[str, ...]] = {
    "runtime": ("runtime",),
    "handler": ("handler",),
    "memory": ("memorySize",),
    "timeout": ("timeout",),
    "architectures": ("architectures",),
    "package type": ("packageType",),
    "code hash": ("sourceCodeHash",),
    "tracing": ("tracingConfig", "mode"),
    "reserved concurrency": ("reservedConcurrentExecutions",),
    "ephemeral storage": ("ephemeralStorage", "size"),
    "log format": ("loggingConfig", "logFormat"),
}


def _artifact(props: Mapping[str, Any]) -> str:
    """What identifies the deployed code: its S3 key, image, or archive."""
    for key in ("s3Key", "imageUri"):
        if text(props.get(key)):
            return text(props[key])
    code = props.get("code")
    if isinstance(code, Mapping):  # an archive as synthesized offline
        return json.dumps(dict(code), sort_keys=True, default=str)
    # pulumi-policy hands over the archive object itself (FileArchive: its path).
    return text(getattr(code, "path", None)) or text(code)


def function_fingerprint(function: ResourceView) -> dict[str, Any]:
    fingerprint: dict[str, Any] = {
        setting: get(function.props, *path) for setting, path in FUNCTION_SETTINGS.items()
    }
    variables = get(function.props, "environment", "variables")
    fingerprint["environment keys"] = sorted(variables) if isinstance(variables, Mapping) else []
    fingerprint["artifact"] = _artifact(function.props)
    return fingerprint


def _function_key(function: ResourceView) -> str:
    """Copies of a function share its name; without one, the logical name minus the region."""
    return text(function.props.get("name")) or function.name.replace(function.region, "")


def _check_identical_functions(stack: StackView) -> Iterator[Finding]:
    functions = stack.of_type(tokens.LAMBDA_FUNCTION)
    regions = sorted({f.region for f in functions})
    copies: dict[str, dict[str, ResourceView]] = defaultdict(dict)
    for function in functions:
        copies[_function_key(function)][function.region] = function
    for key, by_region in sorted(copies.items()):
        missing = [region for region in regions if region not in by_region]
        present = [by_region[region] for region in regions if region in by_region]
        if missing:
            yield Finding(
                f"Lambda function {key} exists in {', '.join(sorted(by_region))} but not in "
                f"{', '.join(missing)}. Fix: deploy the same function in every region.",
                present[0].urn,
            )
        reference, *others = present
        expected = function_fingerprint(reference)
        for other in others:
            actual = function_fingerprint(other)
            differences = [
                f"{setting} {expected[setting]!r} vs {actual[setting]!r}"
                for setting in expected
                if expected[setting] != actual[setting]
            ]
            if differences:
                yield Finding(
                    f"Lambda function {key} differs between {reference.region} and "
                    f"{other.region}: {'; '.join(differences)}. Fix: build both regions' "
                    "functions from the same settings and artifact.",
                    other.urn,
                )


def _source_regions(stack: StackView) -> dict[str, ResourceView]:
    """Regions that write to a global table (and so emit ReplicationLatency), with the table."""
    regions: dict[str, ResourceView] = {}
    for table in stack.of_type(tokens.DYNAMODB_TABLE):
        replicas = blocks(table.props.get("replicas"))
        if not replicas:
            continue  # a single-region table has nothing to replicate
        regions.setdefault(table.region, table)
        for replica in replicas:
            regions.setdefault(text(get(replica, "regionName")), table)
    for replica in stack.of_type(tokens.DYNAMODB_TABLE_REPLICA):
        regions.setdefault(replica.region, replica)
    regions.pop("", None)
    return regions


def _alarm_metrics(alarm: ResourceView) -> list[Mapping[str, Any]]:
    """The metric(s) an alarm watches, whether declared directly or as metric queries."""
    direct = {
        "metricName": alarm.props.get("metricName"),
        "namespace": alarm.props.get("namespace"),
        "dimensions": alarm.props.get("dimensions"),
    }
    queried = [get(query, "metric") for query in blocks(alarm.props.get("metricQueries"))]
    return [direct, *(metric for metric in queried if isinstance(metric, Mapping))]


def _watches_replication_from(alarm: ResourceView, region: str, table: ResourceView) -> bool:
    table_name = text(table.props.get("name"))
    for metric in _alarm_metrics(alarm):
        dimensions = metric.get("dimensions")
        receiving = text(get(dimensions, RECEIVING_REGION))
        watched_table = text(get(dimensions, TABLE_NAME))
        if (
            text(metric.get("metricName")) == REPLICATION_METRIC
            and text(metric.get("namespace")) == DYNAMODB_NAMESPACE
            and receiving
            and receiving != region
            # Another table's lag says nothing about this one (unknown names are given the
            # benefit of the doubt: a preview may not know them yet).
            and not (table_name and watched_table and watched_table != table_name)
        ):
            return True
    return False


def _is_strong(table: ResourceView) -> bool:
    return any(
        text(get(replica, "consistencyMode")).upper() == "STRONG"
        for replica in blocks(table.props.get("replicas"))
    )


def _watches_writes_of(alarm: ResourceView, table: ResourceView) -> bool:
    table_name = text(table.props.get("name"))
    for metric in _alarm_metrics(alarm):
        watched_table = text(get(metric.get("dimensions"), TABLE_NAME))
        if (
            text(metric.get("metricName")) == WRITE_ERRORS_METRIC
            and text(metric.get("namespace")) == DYNAMODB_NAMESPACE
            and not (table_name and watched_table and watched_table != table_name)
        ):
            return True
    return False


def _check_strong_write_alarms(
    region: str, table: ResourceView, alarms: list[ResourceView]
) -> Iterator[Finding]:
    if not any(a.region == region and _watches_writes_of(a, table) for a in alarms):
        yield Finding(
            f"No {WRITE_ERRORS_METRIC} alarm in {region} for {describe(table)}: under strong "
            "consistency a write returns only once another region has it, so there is no "
            f"replication lag to alarm on and failures show as failed writes. Fix: add a "
            f"MetricAlarm in {region} on {DYNAMODB_NAMESPACE} {WRITE_ERRORS_METRIC} with "
            "TableName=<table>.",
            table.urn,
        )


def _check_replication_alarms(stack: StackView) -> Iterator[Finding]:
    limit = stack.targets.max_replication_alarm_ms
    alarms = stack.of_type(tokens.CLOUDWATCH_METRIC_ALARM)
    for region, table in sorted(_source_regions(stack).items()):
        if _is_strong(table):
            yield from _check_strong_write_alarms(region, table, alarms)
            continue
        watching = [
            a for a in alarms if a.region == region and _watches_replication_from(a, region, table)
        ]
        if not watching:
            yield Finding(
                f"No {REPLICATION_METRIC} alarm in {region} for {describe(table)}: the metric "
                f"lives in the source region. Fix: add a MetricAlarm in {region} on "
                f"{DYNAMODB_NAMESPACE} {REPLICATION_METRIC} with TableName and "
                f"{RECEIVING_REGION}=<peer region>, threshold <= {limit:.0f} ms.",
                table.urn,
            )
        for alarm in watching:
            threshold = number(alarm.props.get("threshold"))
            comparison = text(alarm.props.get("comparisonOperator"))
            if threshold is None or threshold > limit or comparison not in RISING_COMPARISONS:
                yield Finding(
                    f"{describe(alarm)} fires on {comparison or 'no comparison'} "
                    f"{threshold if threshold is not None else 'no threshold'} ms; replication "
                    f"lag must alarm above at most {limit:.0f} ms. Fix: "
                    f"comparison_operator='GreaterThanThreshold', threshold <= {limit:.0f}.",
                    alarm.urn,
                )


RULES = (
    StackRule(
        name="dr-identical-functions",
        description=(
            "Every function exists in both regions with identical configuration and artifact."
        ),
        check=_check_identical_functions,
    ),
    StackRule(
        name="dr-replication-lag-alarm",
        description=(
            "Each source region of the global table has a ReplicationLatency alarm with a "
            "threshold of at most 30 s (strong consistency: a SystemErrors alarm on its writes)."
        ),
        check=_check_replication_alarms,
        uses_targets=True,
    ),
)
