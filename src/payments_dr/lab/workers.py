"""Lambda's event sources, simulated: the retry queue poller and the stream feed of the archiver.

On AWS, Lambda polls the retry queue and the table's stream and invokes the functions with
batches. Here one thread per region and source does the same with the real handlers, keeping
SQS semantics the drill relies on: a failed message becomes visible again after the queue's
visibility timeout (in simulated time) and moves to the DLQ after `maxReceiveCount` receives.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.lab.aws import RegionAws, RegionFaults, RegionResources
from payments_dr.lab.clock import SimClock
from payments_dr.lab.settings import LAB_ACCOUNT_ID
from payments_dr.lab.threads import BackgroundLoop

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

POLL_WALL_SECONDS = 0.005
ARCHIVER_RETRY_WALL_SECONDS = 0.05

log = logging.getLogger(__name__)


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    region: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @classmethod
    def for_function(cls, stack: str, function: Function, region: str) -> LambdaContext:
        settings = contract.FUNCTIONS[function]
        return cls(
            function_name=contract.function_name(stack, function),
            region=region,
            memory_limit_in_mb=settings.memory_mb,
            timeout_seconds=settings.timeout_seconds,
        )

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{LAB_ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"lab/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class RetryQueuePoller(BackgroundLoop):
    """Feeds one region's retry queue to the real retry worker, as Lambda's SQS poller does."""

    def __init__(
        self,
        clock: SimClock,
        aws: RegionAws,
        resources: RegionResources,
        worker: Handler,
        stack: str,
    ) -> None:
        self._clock = clock
        self._aws = aws
        self._resources = resources
        self._worker = worker
        self._stack = stack
        # Failed messages: receipt handle -> wall time at which they become visible again.
        self._hidden: dict[str, float] = {}
        self._hidden_lock = threading.Lock()
        self._sends_seen = -1
        self._visibility_wall = clock.to_wall(contract.RETRY_QUEUE_VISIBILITY_SECONDS)
        super().__init__(f"lab-retry-poller-{aws.region}")
        self.invocations = 0
        self.worker_errors = 0  # invocations that raised: a service fault, not a lab one

    def _run(self) -> None:
        while not self._stop.wait(POLL_WALL_SECONDS):
            if self._aws.faults.outage:
                continue  # Lambda's poller is in the lost region too
            released = self._release_due()
            sends = self._aws.queue_sends
            if released or sends != self._sends_seen:
                self._sends_seen = sends
                while self.poll_once() == contract.RETRY_BATCH_SIZE:
                    pass  # a full batch: there may be more

    def poll_once(self) -> int:
        """Receive one batch and invoke the worker with it; the batch size."""
        # SQS counts whole seconds; the lab hides a failed message itself (see _release_due),
        # so the timeout here only needs to outlast the simulated one.
        hide_seconds = math.ceil(self._visibility_wall) + 30
        messages = self._aws.lab_sqs.receive_message(
            QueueUrl=self._resources.retry_queue_url,
            MaxNumberOfMessages=contract.RETRY_BATCH_SIZE,
            VisibilityTimeout=hide_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        failed_ids = self._invoke(messages)
        for message in messages:
            if message["MessageId"] in failed_ids:
                with self._hidden_lock:
                    self._hidden[message["ReceiptHandle"]] = (
                        time.monotonic() + self._visibility_wall
                    )
            else:
                self._aws.lab_sqs.delete_message(
                    QueueUrl=self._resources.retry_queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                )
        return len(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke the worker with one batch; the ids of the messages that failed."""
        event = {"Records": [self._record(message) for message in messages]}
        context = LambdaContext.for_function(self._stack, Function.RETRY_WORKER, self._aws.region)
        self.invocations += 1
        try:
            response = self._worker(event, context)
        except Exception as error:
            # An invocation error fails the whole batch, as with Lambda.
            log.warning("retry worker failed in %s: %r", self._aws.region, error)
            self.worker_errors += 1
            return {message["MessageId"] for message in messages}
        failures = response.get("batchItemFailures", []) if isinstance(response, dict) else []
        return {str(failure["itemIdentifier"]) for failure in failures}

    def _release_due(self, everything: bool = False) -> int:
        """Make failed messages visible again once their timeout is over; how many."""
        now = time.monotonic()
        with self._hidden_lock:
            due = [h for h, at in self._hidden.items() if everything or at <= now]
            for handle in due:
                del self._hidden[handle]
        for handle in due:
            self._aws.lab_sqs.change_message_visibility(
                QueueUrl=self._resources.retry_queue_url,
                ReceiptHandle=handle,
                VisibilityTimeout=0,
            )
        return len(due)

    def release_all(self) -> None:
        """Make every failed message visible now: the drill's drain fast-forwards time."""
        if self._release_due(everything=True):
            self._sends_seen = -1  # have the poller look again

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {
            name: {"stringValue": value["StringValue"], "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()
            if "StringValue" in value
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._resources.retry_queue_arn,
            "awsRegion": self._aws.region,
        }


class LogArchiverFeed(BackgroundLoop):
    """Hands one region's stream records to the real log archiver in stream-sized batches."""

    def __init__(self, region: str, faults: RegionFaults, archiver: Handler, stack: str) -> None:
        self._region = region
        self._faults = faults
        self._archiver = archiver
        self._stack = stack
        self._records: queue.Queue[list[dict[str, Any]]] = queue.Queue()
        super().__init__(f"lab-log-archiver-{region}")

    def submit(self, records: list[dict[str, Any]]) -> None:
        self._records.put(records)

    def pending(self) -> int:
        return self._records.qsize()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                records = self._records.get(timeout=0.05)
            except queue.Empty:
                continue
            for start in range(0, len(records), contract.STREAM_BATCH_SIZE):
                self._archive(records[start : start + contract.STREAM_BATCH_SIZE])

    def _archive(self, batch: list[dict[str, Any]]) -> None:
        # Lambda retries a failed stream batch until it succeeds, and nothing runs in a region
        # that is down; so does the lab, pausing between attempts.
        while not self._stop.is_set():
            if not self._faults.outage:
                context = LambdaContext.for_function(
                    self._stack, Function.LOG_ARCHIVER, self._region
                )
                try:
                    self._archiver({"Records": batch}, context)
                    return
                except Exception as error:
                    # Expected while a fault lasts; the batch is simply retried.
                    log.info("log archiver failed in %s: %r", self._region, error)
            self._stop.wait(ARCHIVER_RETRY_WALL_SECONDS)
