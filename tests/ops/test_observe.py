"""Observations: Route 53 health rule, DNS answer mapping, lag, alarms and DLQ depth."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from payments_dr import contract
from payments_dr.ops.observe import (
    HealthCheckState,
    alarm_states,
    dlq_depth,
    dns_answer,
    health_check_state,
    replication_latency_ms,
)
from payments_dr.ops.outputs import parse_outputs

from .conftest import (
    ADDRESSES,
    PRIMARY,
    SECONDARY,
    STACK,
    TARGETS,
    Deployed,
    alarm_name,
    health_check_id,
    put_alarm,
    resolve,
)


@pytest.mark.parametrize(
    ("reporting_healthy", "checkers", "healthy"),
    [(0, 0, False), (0, 16, False), (18, 100, False), (19, 100, True), (16, 16, True)],
)
def test_healthy_means_more_than_18_percent_of_checkers(
    reporting_healthy: int, checkers: int, healthy: bool
) -> None:
    assert HealthCheckState("hc", checkers, reporting_healthy).healthy is healthy


def test_health_check_state_counts_success_reports(deployed: Deployed) -> None:
    deployed.route53.health(PRIMARY, healthy=3, total=10)

    state = health_check_state(deployed.aws, health_check_id(PRIMARY))

    assert (state.reporting_healthy, state.checkers, state.healthy) == (3, 10, True)
    deployed.assert_stubs_used()


@pytest.mark.parametrize("region", [PRIMARY, SECONDARY])
def test_dns_answer_names_the_region_whose_domain_has_the_address(
    deployed: Deployed, region: str
) -> None:
    deployed.route53.dns(region)
    outputs = parse_outputs(STACK, deployed.outputs)

    answer = dns_answer(deployed.aws, outputs, resolve)

    assert answer.region == region
    assert answer.records == (ADDRESSES[region][0],)


def test_dns_answer_matches_a_host_name_record(deployed: Deployed) -> None:
    deployed.route53.stubber.add_response(
        "test_dns_answer",
        {
            "Nameserver": "ns",
            "RecordName": "api",
            "RecordType": "A",
            "RecordData": [TARGETS[SECONDARY] + "."],
            "ResponseCode": "NOERROR",
            "Protocol": "UDP",
        },
    )
    outputs = parse_outputs(STACK, deployed.outputs)

    assert dns_answer(deployed.aws, outputs, lambda host: set()).region == SECONDARY


def test_dns_answer_with_unknown_addresses_names_no_region(deployed: Deployed) -> None:
    deployed.route53.dns(None)
    outputs = parse_outputs(STACK, deployed.outputs)

    answer = dns_answer(deployed.aws, outputs, resolve)

    assert answer.region is None
    assert "192.0.2.250" in answer.describe()


def test_replication_latency_is_the_latest_datapoint_towards_the_receiver(
    deployed: Deployed,
) -> None:
    cloudwatch = deployed.aws.client("cloudwatch", PRIMARY)
    now = datetime.now(UTC)
    dimensions = [
        {"Name": "TableName", "Value": contract.table_name(STACK)},
        {"Name": "ReceivingRegion", "Value": SECONDARY},
    ]
    for minutes_ago, value in ((5, 9000.0), (1, 420.0)):
        cloudwatch.put_metric_data(
            Namespace="AWS/DynamoDB",
            MetricData=[
                {
                    "MetricName": "ReplicationLatency",
                    "Dimensions": dimensions,
                    "Timestamp": now - timedelta(minutes=minutes_ago),
                    "Value": value,
                    "Unit": "Milliseconds",
                }
            ],
        )
    outputs = parse_outputs(STACK, deployed.outputs)

    assert replication_latency_ms(deployed.aws, outputs, PRIMARY, SECONDARY) == 420.0
    # The metric lives in the source region: the other direction has no data.
    assert replication_latency_ms(deployed.aws, outputs, SECONDARY, PRIMARY) is None


def test_alarm_states_by_purpose(deployed: Deployed) -> None:
    deployed.aws.client("cloudwatch", SECONDARY).set_alarm_state(
        AlarmName=alarm_name(SECONDARY, "dlq-not-empty"), StateValue="ALARM", StateReason="test"
    )
    deployed.aws.client("cloudwatch", SECONDARY).delete_alarms(
        AlarmNames=[alarm_name(SECONDARY, "api-5xx")]
    )
    outputs = parse_outputs(STACK, deployed.outputs)

    states = alarm_states(deployed.aws, outputs, SECONDARY)

    assert states == {
        "replication-latency": "OK",
        "dlq-not-empty": "ALARM",
        "api-5xx": "MISSING",
    }


def test_each_alarm_is_read_in_the_region_its_arn_names(deployed: Deployed) -> None:
    # A stack outside us-east-1 lists its Route 53 health-check alarms with the primary's,
    # but they live in us-east-1.
    elsewhere = "us-east-1" if "us-east-1" not in (PRIMARY, SECONDARY) else "eu-west-1"
    raw = copy.deepcopy(deployed.outputs)
    arns = raw[contract.StackOutput.REGIONS][PRIMARY][contract.RegionOutput.ALARM_ARNS]
    arns["health-check-x"] = put_alarm(deployed.aws, elsewhere, "health-check-x", "ALARM")

    states = alarm_states(deployed.aws, parse_outputs(STACK, raw), PRIMARY)

    assert states["health-check-x"] == "ALARM"
    assert states["replication-latency"] == "OK"  # the primary's own, read in the primary


def test_dlq_depth_counts_waiting_messages(deployed: Deployed) -> None:
    deployed.dead_letters(SECONDARY, 3)
    outputs = parse_outputs(STACK, deployed.outputs)

    assert dlq_depth(deployed.aws, outputs, SECONDARY) == 3
    assert dlq_depth(deployed.aws, outputs, PRIMARY) == 0
