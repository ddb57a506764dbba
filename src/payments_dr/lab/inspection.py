"""What the lab holds: its status, queues, table contents, dead letters, archives, conflicts.

A mixin of `Lab`, kept apart from the machinery that runs the regions.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from payments_dr import contract
from payments_dr.contract import ConflictStatus, Mode, Param
from payments_dr.lab.aws import RegionAws
from payments_dr.service.conflicts import Conflict, ConflictStore

if TYPE_CHECKING:
    from payments_dr.lab.clock import SimClock
    from payments_dr.lab.lab import Region
    from payments_dr.lab.replication import Replicator
    from payments_dr.lab.routing import FailoverDns
    from payments_dr.lab.settings import LabSettings


class LabInspection:
    settings: LabSettings
    clock: SimClock
    regions: dict[str, Region]
    replicator: Replicator
    dns: FailoverDns

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

    def status(self) -> dict[str, Any]:
        """What DNS answers, what each region's health checks and faults are."""
        return {
            "simulated_seconds": round(self.clock.now(), 1),
            "dns_answer": self.dns.answer(),
            "client_cached_answer": self.dns.cached_answer(),
            "replication_backlog": self.replicator.backlog(),
            "regions": {
                name: {
                    "role": self.settings.config.role_of(name).value,
                    "api": region.api.url,
                    "healthy": region.health.healthy,
                    "switch_serves": region.record.switch is None or region.record.switch.serves,
                    "record_healthy": region.record.healthy,
                    "outage": region.aws.faults.outage,
                    "table_outage": region.aws.faults.table_outage,
                    "answers_lost": region.aws.faults.answers_lost,
                    "fenced": self.mode(name) is Mode.FENCED,
                    "replication_stall": self.replicator.stalls(name),
                    "gray_failure": region.aws.faults.payments_failing,
                }
                for name, region in self.regions.items()
            },
            "conflicts": [conflict.summary() for conflict in self.conflicts()],
        }

    def conflicts(self, status: ConflictStatus | None = None) -> list[Conflict]:
        """Conflict records in any region whose table answers (by default open and resolved),
        each once: they replicate like payments, so a record may be in both regions."""
        statuses = list(ConflictStatus) if status is None else [status]
        found: dict[str, Conflict] = {}
        for region in self.regions.values():
            if not region.aws.faults.table_reachable:
                continue
            store = ConflictStore(region.aws.lab_dynamodb, region.resources.table_name)
            for wanted in statuses:
                for conflict in store.list(wanted):
                    found.setdefault(conflict.key, conflict)
        return sorted(found.values(), key=lambda conflict: conflict.detected_at)

    def mode(self, region: str) -> Mode:
        """The region's mode as its service reads it from SSM."""
        name = contract.ssm_parameter_name(self.settings.stack, region, Param.MODE)
        aws = self.regions[region].aws
        return Mode(aws.lab_ssm.get_parameter(Name=name)["Parameter"]["Value"])
