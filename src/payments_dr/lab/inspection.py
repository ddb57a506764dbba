"""What the lab holds after a run: drained queues, table contents, dead letters, archives.

A mixin of `Lab`, kept apart from the machinery that runs the regions.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from payments_dr import contract
from payments_dr.lab.aws import RegionAws

if TYPE_CHECKING:
    from payments_dr.lab.lab import Region
    from payments_dr.lab.replication import Replicator


class LabInspection:
    regions: dict[str, Region]
    replicator: Replicator

    def settle(self, timeout_wall_seconds: float = 30.0) -> bool:
        """Wait until queues, streams and replication are drained; False on timeout."""
        deadline = time.monotonic() + timeout_wall_seconds
        quiet_checks = 0
        while time.monotonic() < deadline:
            for region in self.regions.values():
                region.retry_poller.release_all()
            if self._drained():
                quiet_checks += 1
                if quiet_checks >= 3:
                    return True
            else:
                quiet_checks = 0
            time.sleep(0.02)
        return False

    def _drained(self) -> bool:
        for region in self.regions.values():
            if region.aws.faults.outage:
                continue  # nothing runs there; what it holds waits until it is back
            if region.archiver_feed.pending() or self.queue_depth(
                region.resources.retry_queue_url, region.aws
            ):
                return False
        return self.replicator.idle()

    @staticmethod
    def queue_depth(queue_url: str, aws: RegionAws) -> int:
        attributes = aws.lab_sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def table_items(self, region: str) -> dict[str, dict[str, Any]]:
        """Every item of a region's table, by payment id."""
        aws = self.regions[region].aws
        items: dict[str, dict[str, Any]] = {}
        paginator = aws.lab_dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.regions[region].resources.table_name, ConsistentRead=True
        ):
            for item in page["Items"]:
                items[item[contract.TABLE_HASH_KEY][contract.TABLE_HASH_KEY_TYPE]] = item
        return items

    def dlq_messages(self, region: str) -> list[str]:
        """The bodies in a region's DLQ, left in place."""
        resources = self.regions[region].resources
        sqs = self.regions[region].aws.lab_sqs
        received: dict[str, dict[str, Any]] = {}
        while True:
            messages = sqs.receive_message(
                QueueUrl=resources.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not messages:
                break
            received.update((message["MessageId"], message) for message in messages)
        for message in received.values():
            sqs.change_message_visibility(
                QueueUrl=resources.dlq_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        return [message["Body"] for message in received.values()]

    def archived_object_count(self, region: str) -> int:
        aws = self.regions[region].aws
        paginator = aws.lab_s3.get_paginator("list_objects_v2")
        return sum(
            page.get("KeyCount", 0)
            for page in paginator.paginate(
                Bucket=self.regions[region].resources.bucket, Prefix=contract.LOG_PREFIX
            )
        )
