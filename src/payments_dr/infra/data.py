"""Data layer: the DynamoDB global table and the customer-managed multi-Region data key.

The key is created as a multi-Region primary key in the primary region and replicated to the
secondary, so both replicas of the table, the queues, buckets and function environments of a
region are encrypted under the same key material, administered once. Log groups and alarm
topics have keys of their own (`infra.log_keys`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.contract import ConsistencyMode, Function
from payments_dr.infra import resource_policies, role_names
from payments_dr.infra.replica_stream import ReplicaStream

KEY_DELETION_WINDOW_DAYS = 30  # the longest window: time to notice a mistaken deletion


@dataclass(frozen=True)
class DataArgs:
    stack: str
    account_id: str
    primary_region: str
    secondary_region: str
    consistency_mode: ConsistencyMode
    witness_region: str | None
    tags: Mapping[str, str]
    break_glass_role_arn: str | None = None  # reads logs and dead letters in an incident


def key_users(region: str, peer_region: str, args: DataArgs) -> resource_policies.DataKeyUsers:
    """The roles that use the data key of `region`, each through one service."""

    def role(name: str) -> str:
        return role_names.role_arn(args.account_id, args.stack, name)

    # The retry worker consumes the retries, the archiver records dropped ranges, and the
    # peer region's API queues its retries here.
    return resource_policies.DataKeyUsers(
        sqs=[
            role(role_names.function_role_name(Function.RETRY_WORKER, region)),
            role(role_names.function_role_name(Function.LOG_ARCHIVER, region)),
            role(role_names.function_role_name(Function.API, peer_region)),
        ],
        s3=[role(role_names.function_role_name(Function.LOG_ARCHIVER, region))],
        replication=[
            role(role_names.replication_role_name(region)),
            role(role_names.replication_role_name(peer_region)),
        ],
        break_glass=args.break_glass_role_arn,
    )


def table_arn(region: str, account_id: str, stack: str) -> str:
    """Every replica carries the table's name, so its ARN is known before it exists."""
    return f"arn:aws:dynamodb:{region}:{account_id}:table/{contract.table_name(stack)}"


class Data(pulumi.ComponentResource):
    """Multi-Region KMS key (primary + replica) and the global table with its replica."""

    def __init__(
        self, name: str, args: DataArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:Data", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        primary, secondary = args.primary_region, args.secondary_region
        alias = f"alias/{contract.PROJECT}-{args.stack}"

        primary_key = aws.kms.Key(
            f"{name}-key-{primary}",
            region=primary,
            description=f"{contract.PROJECT} {args.stack}: table, queues, transaction logs",
            multi_region=True,
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=json.dumps(
                resource_policies.key_policy(
                    primary, args.account_id, key_users(primary, secondary, args)
                )
            ),
            tags=dict(args.tags),
            opts=child,
        )
        replica_key = aws.kms.ReplicaKey(
            f"{name}-key-{secondary}",
            region=secondary,
            description=f"{contract.PROJECT} {args.stack}: replica of the {primary} key",
            primary_key_arn=primary_key.arn,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=json.dumps(
                resource_policies.key_policy(
                    secondary, args.account_id, key_users(secondary, primary, args)
                )
            ),
            tags=dict(args.tags),
            opts=child,
        )
        for region, key_id in ((primary, primary_key.key_id), (secondary, replica_key.key_id)):
            aws.kms.Alias(
                f"{name}-key-alias-{region}",
                region=region,
                name=alias,
                target_key_id=key_id,
                opts=child,
            )
        self.key_arns: dict[str, pulumi.Output[str]] = {
            primary: primary_key.arn,
            secondary: replica_key.arn,
        }

        strong = args.consistency_mode is ConsistencyMode.STRONG
        # Strong consistency: the replica joins synchronously and the witness holds the quorum.
        replica = aws.dynamodb.TableReplicaArgs(
            region_name=secondary,
            kms_key_arn=replica_key.arn,
            point_in_time_recovery=True,  # off by default on replicas
            deletion_protection_enabled=True,
            propagate_tags=True,
            consistency_mode="STRONG" if strong else None,
        )
        witness = (
            aws.dynamodb.TableGlobalTableWitnessArgs(region_name=args.witness_region)
            if strong and args.witness_region
            else None
        )

        self.table = aws.dynamodb.Table(
            f"{name}-table",
            region=primary,
            name=contract.table_name(args.stack),
            billing_mode="PAY_PER_REQUEST",
            hash_key=contract.TABLE_HASH_KEY,
            attributes=[
                {"name": contract.TABLE_HASH_KEY, "type": contract.TABLE_HASH_KEY_TYPE},
                {"name": contract.CONFLICT_STATUS_ATTRIBUTE, "type": "S"},
                {"name": contract.CONFLICT_DETECTED_AT_ATTRIBUTE, "type": "S"},
            ],
            # Sparse: only conflict records carry its keys, so listing open conflicts reads
            # them alone (see service.conflicts).
            global_secondary_indexes=[
                {
                    "name": contract.CONFLICTS_INDEX,
                    "key_schemas": [
                        {"attribute_name": contract.CONFLICT_STATUS_ATTRIBUTE, "key_type": "HASH"},
                        {
                            "attribute_name": contract.CONFLICT_DETECTED_AT_ATTRIBUTE,
                            "key_type": "RANGE",
                        },
                    ],
                    "projection_type": "ALL",
                }
            ],
            stream_enabled=True,
            stream_view_type=contract.TABLE_STREAM_VIEW_TYPE,
            point_in_time_recovery={"enabled": True},
            deletion_protection_enabled=True,
            server_side_encryption={"enabled": True, "kms_key_arn": primary_key.arn},
            replicas=[replica],
            global_table_witness=witness,
            tags=dict(args.tags),
            opts=child,
        )
        self.table_name = self.table.name
        self.table_arns = {
            region: table_arn(region, args.account_id, args.stack)
            for region in (primary, secondary)
        }
        # The log archiver reads each region's own stream. Under strong consistency the
        # provider enables none on the replica (see replica_stream), so the program does.
        self.stream_arns: dict[str, pulumi.Output[str]] = {
            primary: self.table.stream_arn,
            secondary: (
                ReplicaStream(
                    f"{name}-stream-{secondary}",
                    table_name=self.table.name,
                    region=secondary,
                    stream_view_type=contract.TABLE_STREAM_VIEW_TYPE,
                    opts=child,
                ).stream_arn
                if strong
                else self.table.replicas.apply(
                    lambda replicas: _replica_stream(replicas, secondary)
                )
            ),
        }
        self.register_outputs(
            {
                "table_name": self.table.name,
                "key_arns": self.key_arns,
                "stream_arns": self.stream_arns,
            }
        )


def _replica_stream(
    replicas: Sequence[aws.dynamodb.outputs.TableReplica] | None, region: str
) -> str:
    for replica in replicas or []:
        if replica.region_name == region and replica.stream_arn:
            return replica.stream_arn
    raise ValueError(f"the table reports no stream for its replica in {region}")
