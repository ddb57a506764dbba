"""The table stream of a multi-Region strong consistency (MRSC) replica, enabled by the program.

Under MRSC the Terraform provider (and so pulumi-aws) enables the stream on the primary table
only; the replica in the other region gets none and its `stream_arn` comes back empty
(terraform-provider-aws#48213). No resource or data source of the provider offers the
replica's stream, so this dynamic resource enables it with DynamoDB's own API, in the
replica's region (UpdateTable with a StreamSpecification, as the provider fork in
crossplane-contrib/provider-upjet-aws#2185 does), and reports its ARN for the log archiver.

It runs with the credentials `pulumi up` runs with (boto3's default chain), like the
Pulumi CLI's own plugins. Deleting it leaves the stream alone: the stream goes with the table,
and disabling it first would drop records the archiver has not yet written.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider

# Inputs and outputs of the resource (dynamic providers see them under these exact names).
TABLE_NAME = "table_name"
REGION = "region"
STREAM_VIEW_TYPE = "stream_view_type"
STREAM_ARN = "stream_arn"
_INPUTS = (TABLE_NAME, REGION, STREAM_VIEW_TYPE)
# UpdateTable returns at once; the stream exists when the table is ACTIVE again.
_WAIT = {"Delay": 5, "MaxAttempts": 120}


class StreamConflictError(RuntimeError):
    """The replica already has a stream of another view type."""


def _client(region: str) -> Any:
    import boto3  # imported late: the provider process needs it, the program does not

    return boto3.client("dynamodb", region_name=region)


def enable_stream(client: Any, table_name: str, view_type: str) -> str:
    """The table's stream ARN, enabling a `view_type` stream first if it has none."""
    table = client.describe_table(TableName=table_name)["Table"]
    spec = table.get("StreamSpecification") or {}
    if spec.get("StreamEnabled"):
        if spec.get("StreamViewType") != view_type:
            raise StreamConflictError(
                f"{table_name} already streams {spec.get('StreamViewType')}, not {view_type}:"
                " disable that stream (after the archiver has drained it) and run up again"
            )
        return str(table["LatestStreamArn"])
    client.update_table(
        TableName=table_name,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type},
    )
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig=_WAIT)
    return str(client.describe_table(TableName=table_name)["Table"]["LatestStreamArn"])


def current_stream(client: Any, table_name: str) -> str:
    """The table's stream ARN, or "" when it has none."""
    table = client.describe_table(TableName=table_name)["Table"]
    enabled = (table.get("StreamSpecification") or {}).get("StreamEnabled")
    return str(table.get("LatestStreamArn") or "") if enabled else ""


class ReplicaStreamProvider(ResourceProvider):
    """Create enables the stream (or adopts an existing one); nothing else changes it."""

    serialize_as_secret_always = False  # the provider holds no secret

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = _client(props[REGION])
        arn = enable_stream(client, props[TABLE_NAME], props[STREAM_VIEW_TYPE])
        return CreateResult(f"{props[TABLE_NAME]}@{props[REGION]}", {**props, STREAM_ARN: arn})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = _client(props[REGION])
        try:
            arn = current_stream(client, props[TABLE_NAME])
        except client.exceptions.ResourceNotFoundException:
            return ReadResult("", {})  # the replica is gone, and its stream with it
        return ReadResult(id_, {**props, STREAM_ARN: arn})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in _INPUTS if olds.get(key) != news.get(key)]
        # A refresh that found the stream gone makes the next up enable it again.
        gone = not olds.get(STREAM_ARN)
        return DiffResult(
            changes=bool(changed) or gone,
            replaces=changed or ([TABLE_NAME] if gone else []),
            delete_before_replace=True,
        )


class ReplicaStream(pulumi.dynamic.Resource, module="dynamodb", name="ReplicaStream"):
    """The stream of one replica region's copy of a global table."""

    stream_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        table_name: pulumi.Input[str],
        region: str,
        stream_view_type: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            ReplicaStreamProvider(),
            name,
            {
                TABLE_NAME: table_name,
                REGION: region,
                STREAM_VIEW_TYPE: stream_view_type,
                STREAM_ARN: None,
            },
            opts,
        )
