"""The dynamic provider that gives a strong-consistency replica its stream, against moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from payments_dr.infra import replica_stream
from payments_dr.infra.replica_stream import (
    REGION,
    STREAM_ARN,
    STREAM_VIEW_TYPE,
    TABLE_NAME,
    ReplicaStreamProvider,
    StreamConflictError,
)

REGION_NAME = "us-east-2"
TABLE = "payments-dr-t-payments"
PROPS = {TABLE_NAME: TABLE, REGION: REGION_NAME, STREAM_VIEW_TYPE: "NEW_AND_OLD_IMAGES"}


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION_NAME)
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        # The waiter would poll every 5 s; moto's table is ACTIVE at once.
        monkeypatch.setattr(replica_stream, "_WAIT", {"Delay": 0, "MaxAttempts": 2})
        yield client


def stream_of(client: Any) -> dict[str, Any]:
    table = client.describe_table(TableName=TABLE)["Table"]
    return {"spec": table.get("StreamSpecification"), "arn": table.get("LatestStreamArn")}


def test_create_enables_the_replicas_stream_and_reports_it(dynamodb: Any) -> None:
    assert stream_of(dynamodb)["arn"] is None  # as under MRSC: the replica has none

    created = ReplicaStreamProvider().create(dict(PROPS))

    now = stream_of(dynamodb)
    assert now["spec"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert created.outs is not None
    assert created.outs[STREAM_ARN] == now["arn"]
    assert now["arn"].startswith(f"arn:aws:dynamodb:{REGION_NAME}:")
    assert created.id == f"{TABLE}@{REGION_NAME}"


def test_create_adopts_a_stream_already_there(dynamodb: Any) -> None:
    first = ReplicaStreamProvider().create(dict(PROPS))
    again = ReplicaStreamProvider().create(dict(PROPS))  # e.g. once the provider is fixed
    assert first.outs is not None and again.outs is not None
    assert again.outs[STREAM_ARN] == first.outs[STREAM_ARN]


def test_a_stream_of_another_view_type_is_refused_not_replaced(dynamodb: Any) -> None:
    dynamodb.update_table(
        TableName=TABLE, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    )
    with pytest.raises(StreamConflictError, match="already streams KEYS_ONLY"):
        ReplicaStreamProvider().create(dict(PROPS))
    assert stream_of(dynamodb)["spec"]["StreamViewType"] == "KEYS_ONLY"


def test_read_reports_the_current_stream_or_none(dynamodb: Any) -> None:
    provider = ReplicaStreamProvider()
    created = provider.create(dict(PROPS))
    assert created.outs is not None
    read = provider.read(created.id, created.outs)
    assert read.outs is not None and read.outs[STREAM_ARN] == created.outs[STREAM_ARN]
    dynamodb.update_table(TableName=TABLE, StreamSpecification={"StreamEnabled": False})
    assert provider.read(created.id, created.outs).outs == {**created.outs, STREAM_ARN: ""}
    dynamodb.delete_table(TableName=TABLE)
    gone = provider.read(created.id, created.outs)
    assert gone.id == ""


def test_diff_replaces_on_a_new_table_region_or_lost_stream() -> None:
    provider = ReplicaStreamProvider()
    olds = {**PROPS, STREAM_ARN: "arn:aws:dynamodb:us-east-2:1:table/t/stream/x"}
    assert not provider.diff("id", olds, dict(PROPS)).changes
    moved = provider.diff("id", olds, {**PROPS, REGION: "us-west-2"})
    assert moved.changes and moved.replaces == [REGION]
    assert moved.delete_before_replace
    lost = provider.diff("id", {**olds, STREAM_ARN: ""}, dict(PROPS))
    assert lost.changes and lost.replaces == [TABLE_NAME]
