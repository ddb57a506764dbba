"""A customer-managed key per region for log groups and the alarm topic.

Kept apart from the data key (`infra.data`): the services that write logs and publish alarms
get no use of the key that protects payments, and a log reader needs no right to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.infra import resource_policies
from payments_dr.infra.alarms import alarm_topic_name
from payments_dr.infra.data import KEY_DELETION_WINDOW_DAYS


def stack_alarm_arns(region: str, account_id: str, stack: str) -> str:
    """Every alarm of the stack in `region` (their names start with alarms.alarm_name's)."""
    return f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{contract.PROJECT}-{stack}-{region}-*"


class LogKeys(pulumi.ComponentResource):
    """One single-Region key per region: CloudWatch Logs and alarm notifications only."""

    def __init__(
        self,
        name: str,
        *,
        stack: str,
        account_id: str,
        regions: Sequence[str],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("payments-dr:infra:LogKeys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key_arns: dict[str, pulumi.Output[str]] = {}
        for region in regions:
            topic_arn = f"arn:aws:sns:{region}:{account_id}:{alarm_topic_name(stack)}"
            key = aws.kms.Key(
                f"{name}-{region}",
                region=region,
                description=f"{contract.PROJECT} {stack}: log groups and alarm topic, {region}",
                enable_key_rotation=True,
                deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
                policy=json.dumps(
                    resource_policies.log_key_policy(
                        region, account_id, stack_alarm_arns(region, account_id, stack), topic_arn
                    )
                ),
                tags=dict(tags),
                opts=child,
            )
            aws.kms.Alias(
                f"{name}-alias-{region}",
                region=region,
                name=f"alias/{contract.PROJECT}-{stack}-logs",
                target_key_id=key.key_id,
                opts=child,
            )
            self.key_arns[region] = key.arn
        self.register_outputs({"key_arns": self.key_arns})
