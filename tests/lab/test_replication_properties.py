"""Eventual replication under arbitrary interleavings of writes, lag and stalls (property-based).

The replicator runs on moto tables with a hand-moved clock and no thread: every step is a
deterministic `tick`. Payments are written the service's way, at most once per region
(`attribute_not_exists`). When both regions created a key, the region whose version loses
(last writer wins) must see the winner arrive as a MODIFY whose old image is its own version:
that record is all the service's conflict detection has, as on AWS.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from payments_dr import contract
from payments_dr.lab.aws import RegionAws, RegionResources
from payments_dr.lab.clock import SimClock
from payments_dr.lab.replication import Replicator

from .helpers import PRIMARY, SECONDARY

LAG_SECONDS = 1.0
REGIONS = (PRIMARY, SECONDARY)
_tables = itertools.count()


class ManualClock(SimClock):
    """Simulated time moved by the test; stream records are stamped with the current time."""

    def __init__(self) -> None:
        super().__init__(time_scale=1.0)
        self.current = 0.0

    def now(self) -> float:
        return self.current

    def at_wall_time(self, unix_seconds: float) -> float:
        return self.current  # every write is read in the tick right after it


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, RegionAws]]:
    with mock_aws():
        lock = threading.RLock()
        yield {region: RegionAws(region, lock) for region in REGIONS}


def fresh_tables(aws: dict[str, RegionAws]) -> dict[str, RegionResources]:
    name = f"payments-{next(_tables)}"
    resources = {}
    for region, region_aws in aws.items():
        description = region_aws.lab_dynamodb.create_table(**contract.table_definition(name))[
            "TableDescription"
        ]
        resources[region] = RegionResources(
            region=region,
            ssm_path="",
            table_name=name,
            stream_arn=description["LatestStreamArn"],
            retry_queue_url="",
            retry_queue_arn="",
            dlq_url="",
            bucket="",
        )
    return resources


def insert_once(aws: RegionAws, table: str, key: str, written_at: float) -> bool:
    """The service's write: create the payment unless this region already has it."""
    try:
        aws.lab_dynamodb.put_item(
            TableName=table,
            Item={
                contract.TABLE_HASH_KEY: {"S": key},
                "region": {"S": aws.region},
                "written_at": {"N": repr(written_at)},
            },
            ConditionExpression=f"attribute_not_exists({contract.TABLE_HASH_KEY})",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return False
    return True


def items(aws: RegionAws, table: str) -> dict[str, dict[str, Any]]:
    scanned = aws.lab_dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {item[contract.TABLE_HASH_KEY]["S"]: item for item in scanned}


operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(REGIONS), st.sampled_from("abcd")),
        st.tuples(st.just("advance"), st.floats(min_value=0.1, max_value=2.5)),
        st.tuples(st.just("stall")),
        st.tuples(st.just("resume")),
    ),
    max_size=30,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=operations)
def test_regions_converge_and_every_overwritten_version_reaches_its_regions_stream(
    aws: dict[str, RegionAws], steps: list[tuple[Any, ...]]
) -> None:
    resources = fresh_tables(aws)
    table = resources[PRIMARY].table_name
    clock = ManualClock()
    streamed: list[tuple[str, dict[str, Any]]] = []
    replicator = Replicator(
        clock,
        aws,
        resources,
        lock=threading.RLock(),
        lag_seconds=LAG_SECONDS,
        strong=False,
        stream_listener=lambda region, records: streamed.extend((region, r) for r in records),
    )
    replicator.open_streams()
    created_in: dict[str, set[str]] = {}
    last_creation: dict[str, tuple[float, str]] = {}
    for step in steps:
        if step[0] == "write":
            _, region, key = step
            if insert_once(aws[region], table, key, clock.current):
                created_in.setdefault(key, set()).add(region)
                last_creation[key] = max(
                    last_creation.get(key, (-1.0, "")), (clock.current, region)
                )
        elif step[0] == "advance":
            clock.current += step[1]
        elif step[0] == "stall":
            replicator.stall(PRIMARY)
        else:
            replicator.resume()
        replicator.tick()

    replicator.resume()
    for _ in range(4):  # reach every due time, then read the echoes of what was applied
        clock.current += LAG_SECONDS
        replicator.tick()
    assert replicator.idle()

    primary, secondary = items(aws[PRIMARY], table), items(aws[SECONDARY], table)
    assert primary == secondary
    assert set(primary) == set(created_in)
    twice = {key for key, regions in created_in.items() if len(regions) == 2}
    overwritten = {
        (region, record["dynamodb"]["Keys"][contract.TABLE_HASH_KEY]["S"])
        for region, record in streamed
        if record["eventName"] == "MODIFY"
        and record["dynamodb"]["OldImage"]["region"]["S"] == region
        and record["dynamodb"]["NewImage"]["region"]["S"] != region
    }
    losers = {(next(iter(set(REGIONS) - {last_creation[key][1]})), key) for key in twice}
    assert overwritten == losers
    for key, item in primary.items():
        # Last writer wins; on a tie, the region that sorts last (as `max` picks it here).
        assert item["region"]["S"] == last_creation[key][1]
