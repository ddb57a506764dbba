"""`payments-dr redrive`: move a region's dead letters back to its retry queue.

Uses an SQS message move task, so the messages keep their bodies and attributes and SQS
does the copying; the retry worker then applies each one idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments_dr.ops.aws import EXIT_INTERRUPTED, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.observe import AWS_ERRORS, describe_aws_error
from payments_dr.ops.outputs import StackOutputs
from payments_dr.ops.progress import Progress, Timing

FINISHED_STATUSES = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
# StartMessageMoveTask takes MaxNumberOfMessagesPerSecond up to 500 (SQS API reference).
MAX_MOVE_RATE = 500
REDRIVE_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class RedriveResult:
    region: str
    status: str  # COMPLETED, FAILED, CANCELLED, EMPTY (nothing to move) or TIMED_OUT
    moved: int
    to_move: int
    failure_reason: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status in {"COMPLETED", "EMPTY"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "status": self.status,
            "moved": self.moved,
            "to_move": self.to_move,
            "failure_reason": self.failure_reason,
            "succeeded": self.succeeded,
        }

    def describe(self) -> str:
        if self.status == "EMPTY":
            return f"{self.region}: the DLQ is empty, nothing to move"
        text = f"{self.region}: moved {self.moved} of {self.to_move} messages ({self.status})"
        return f"{text}: {self.failure_reason}" if self.failure_reason else text


@dataclass(frozen=True)
class RedrivePlan:
    """What a redrive would do, read before it does anything."""

    region: str
    dlq_arn: str
    retry_arn: str
    depth: int  # messages in the DLQ now (SQS's approximate count)
    max_per_second: int | None

    def describe(self) -> str:
        if self.depth == 0:
            return f"{self.region}: the DLQ is empty, nothing to move"
        rate = (
            f"at most {self.max_per_second} messages/s"
            if self.max_per_second is not None
            else "at the rate SQS picks"
        )
        return (
            f"{self.region}: start an SQS message move task of about {self.depth} messages from"
            f" {self.dlq_arn} to {self.retry_arn}, {rate}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "dlq_arn": self.dlq_arn,
            "retry_queue_arn": self.retry_arn,
            "messages": self.depth,
            "max_per_second": self.max_per_second,
        }


def plan_redrive(
    aws: Aws, outputs: StackOutputs, region: str, max_per_second: int | None = None
) -> RedrivePlan:
    """Reads the DLQ; refuses (exit 3) while a move task from it is already running."""
    queues = outputs.region(region)
    sqs = aws.client("sqs", region)
    dlq = sqs.get_queue_attributes(
        QueueUrl=queues.dlq_url, AttributeNames=["QueueArn", "ApproximateNumberOfMessages"]
    )["Attributes"]
    retry_arn = sqs.get_queue_attributes(
        QueueUrl=queues.retry_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    plan = RedrivePlan(
        region, dlq["QueueArn"], retry_arn, int(dlq["ApproximateNumberOfMessages"]), max_per_second
    )
    if plan.depth == 0:
        return plan
    running = [
        task
        for task in sqs.list_message_move_tasks(SourceArn=plan.dlq_arn)["Results"]
        if task["Status"] == "RUNNING"
    ]
    if running:
        raise OpsError(
            f"{region}: a message move task is already running from the DLQ "
            f"(task handle {running[0].get('TaskHandle', '?')}); wait for it or cancel it",
            EXIT_REFUSED,
        )
    return plan


def redrive(
    aws: Aws,
    outputs: StackOutputs,
    region: str,
    timing: Timing,
    progress: Progress,
    max_per_second: int | None = None,
    plan: RedrivePlan | None = None,
) -> RedriveResult:
    """Starts the move `plan` describes (read now when not given) and follows it."""
    plan = plan or plan_redrive(aws, outputs, region, max_per_second)
    if plan.depth == 0:
        return RedriveResult(region, "EMPTY", moved=0, to_move=0)
    sqs = aws.client("sqs", region)
    start_args: dict[str, Any] = {"SourceArn": plan.dlq_arn, "DestinationArn": plan.retry_arn}
    if plan.max_per_second is not None:
        start_args["MaxNumberOfMessagesPerSecond"] = plan.max_per_second
    task_handle = sqs.start_message_move_task(**start_args)["TaskHandle"]
    try:
        return _wait_for_task(sqs, region, plan.dlq_arn, plan.depth, timing, progress)
    except KeyboardInterrupt:
        progress.finish()
        raise OpsError(
            f"{region}: stopped watching; the move task keeps running in SQS. Follow it with "
            f"`aws sqs list-message-move-tasks --region {region} --source-arn {plan.dlq_arn}`"
            f", stop it with `aws sqs cancel-message-move-task --region {region} "
            f"--task-handle {task_handle}`",
            EXIT_INTERRUPTED,
        ) from None


def _wait_for_task(
    sqs: Any, region: str, dlq_arn: str, depth: int, timing: Timing, progress: Progress
) -> RedriveResult:
    moved, to_move = 0, depth
    started = timing.clock()
    while True:
        elapsed = timing.clock() - started
        try:
            # SQS runs one task per source queue at a time and lists the newest first.
            tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)
        except AWS_ERRORS as error:
            # The task runs on in SQS; a failed reading only costs this poll.
            progress.update(
                elapsed, f"{region}: reading failed, retrying: {describe_aws_error(error)}"
            )
        else:
            task = tasks["Results"][0]
            moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            to_move = int(task.get("ApproximateNumberOfMessagesToMove", depth))
            progress.update(elapsed, f"{region}: {task['Status']} {moved}/{to_move} moved")
            if task["Status"] in FINISHED_STATUSES:
                progress.finish()
                return RedriveResult(
                    region, task["Status"], moved, to_move, task.get("FailureReason", "")
                )
        if elapsed + timing.poll_interval_seconds > timing.timeout_seconds:
            progress.finish()
            return RedriveResult(region, "TIMED_OUT", moved, to_move, "still running")
        timing.sleep(timing.poll_interval_seconds)
