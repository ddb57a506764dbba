"""redrive: moto for the queues; a Stubber for SQS message move tasks, which moto lacks."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from payments_dr.ops import commands
from payments_dr.ops.aws import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, Aws

from .conftest import SECONDARY, SESSION, STACK, Deployed, FakeClock

DLQ_ARN = f"arn:aws:sqs:{SECONDARY}:123456789012:payments-dr-{STACK}-retry-dlq"
RETRY_ARN = f"arn:aws:sqs:{SECONDARY}:123456789012:payments-dr-{STACK}-retry"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def redrive_args(deployed: Deployed, *extra: str, yes: bool = True) -> argparse.Namespace:
    """The command line of a redrive; `yes`: confirmed with --yes, as a script would."""
    outputs = str(deployed.outputs_file)
    confirm = ["--yes"] if yes else []
    return parse(
        "redrive", "--stack", STACK, "--outputs", outputs, "--region", SECONDARY, *confirm, *extra
    )


class SqsScript:
    """An SQS client that answers only what the test scripts, in order."""

    def __init__(self, deployed: Deployed) -> None:
        self.deployed = deployed
        self.client = SESSION.client("sqs", region_name=SECONDARY)
        self.stubber = Stubber(self.client)
        self.queues = deployed.outputs["regions"][SECONDARY]

    def queue_attributes(self, depth: int) -> None:
        self.stubber.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": DLQ_ARN, "ApproximateNumberOfMessages": str(depth)}},
            {
                "QueueUrl": self.queues["dlq_url"],
                "AttributeNames": ["QueueArn", "ApproximateNumberOfMessages"],
            },
        )
        self.stubber.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": RETRY_ARN}},
            {"QueueUrl": self.queues["retry_queue_url"], "AttributeNames": ["QueueArn"]},
        )

    def tasks(self, *tasks: dict[str, Any], newest_only: bool = False) -> None:
        expected: dict[str, Any] = {"SourceArn": DLQ_ARN}
        if newest_only:
            expected["MaxResults"] = 1
        self.stubber.add_response("list_message_move_tasks", {"Results": list(tasks)}, expected)

    def start(self, **expected: Any) -> None:
        self.stubber.add_response(
            "start_message_move_task",
            {"TaskHandle": "handle-1"},
            {"SourceArn": DLQ_ARN, "DestinationArn": RETRY_ARN, **expected},
        )

    def aws(self) -> Aws:
        return Aws(SESSION, clients={("sqs", SECONDARY): self.client})

    def move_started(self, depth: int) -> None:
        """A DLQ of `depth` messages, no earlier task, and the move task starting."""
        self.queue_attributes(depth=depth)
        self.tasks()
        self.start()

    def run(
        self,
        clock: FakeClock,
        *extra: str,
        yes: bool = True,
        sleep: Callable[[float], None] | None = None,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> int:
        """`payments-dr redrive` on this script's SQS and the clock; every call it makes must
        be one the test scripted."""
        args = redrive_args(self.deployed, *extra, yes=yes)
        times = {"wall_clock": wall_clock} if wall_clock else {}
        with self.stubber:
            return commands.run_redrive(args, self.aws(), clock, sleep or clock.sleep, **times)


@pytest.fixture
def sqs(deployed: Deployed) -> SqsScript:
    return SqsScript(deployed)


def task(status: str, moved: int, to_move: int, **extra: Any) -> dict[str, Any]:
    return {
        "Status": status,
        "SourceArn": DLQ_ARN,
        "ApproximateNumberOfMessagesMoved": moved,
        "ApproximateNumberOfMessagesToMove": to_move,
        **extra,
    }


def test_moves_every_dead_letter_and_reports_the_count(
    sqs: SqsScript, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.queue_attributes(depth=10)
    sqs.tasks(task("COMPLETED", 4, 4))  # an old finished task does not block
    sqs.start(MaxNumberOfMessagesPerSecond=50)
    sqs.tasks(task("RUNNING", 3, 10, TaskHandle="handle-1"), newest_only=True)
    sqs.tasks(task("COMPLETED", 10, 10), newest_only=True)

    exit_code = sqs.run(clock, "--max-per-second", "50", "--poll-interval", "2")

    captured = capsys.readouterr()
    assert exit_code == EXIT_OK
    assert captured.out.strip() == f"{SECONDARY}: moved 10 of 10 messages (COMPLETED)"
    assert captured.err.splitlines() == [
        f"[   0.0s] {SECONDARY}: RUNNING 3/10 moved",
        f"[   2.0s] {SECONDARY}: COMPLETED 10/10 moved",
    ]
    sqs.stubber.assert_no_pending_responses()


def test_an_empty_dlq_starts_no_task(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # Real moto queues: moto has no move tasks, so reaching for one would fail this test.
    exit_code = commands.run_redrive(redrive_args(deployed), deployed.aws, clock, clock.sleep)

    assert exit_code == EXIT_OK
    assert capsys.readouterr().out.strip() == f"{SECONDARY}: the DLQ is empty, nothing to move"


def test_refuses_while_another_move_task_runs(
    sqs: SqsScript, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.queue_attributes(depth=4)
    sqs.tasks(task("RUNNING", 1, 4, TaskHandle="someone-else"))

    exit_code = sqs.run(clock)

    assert exit_code == EXIT_REFUSED
    assert "already running from the DLQ (task handle someone-else)" in capsys.readouterr().err


def test_a_failed_task_exits_1_with_its_reason(
    sqs: SqsScript, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.move_started(depth=4)
    sqs.tasks(task("FAILED", 1, 4, FailureReason="AccessDenied on kms:Decrypt"), newest_only=True)

    exit_code = sqs.run(clock)

    assert exit_code == EXIT_FAILED
    assert capsys.readouterr().out.strip() == (
        f"{SECONDARY}: moved 1 of 4 messages (FAILED): AccessDenied on kms:Decrypt"
    )


def test_a_task_still_running_at_the_timeout_exits_1_despite_a_failed_reading(
    sqs: SqsScript, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.move_started(depth=9)
    sqs.tasks(task("RUNNING", 2, 9, TaskHandle="handle-1"), newest_only=True)
    sqs.stubber.add_client_error("list_message_move_tasks", "RequestThrottled", "slow down")

    exit_code = sqs.run(clock, "--timeout", "15", "--poll-interval", "10")

    captured = capsys.readouterr()
    assert exit_code == EXIT_FAILED
    assert "moved 2 of 9 messages (TIMED_OUT): still running" in captured.out
    assert f"{SECONDARY}: reading failed, retrying: RequestThrottled: slow down" in captured.err


def test_ctrl_c_while_watching_tells_how_to_follow_or_cancel_the_task(
    sqs: SqsScript, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.move_started(depth=4)
    sqs.tasks(task("RUNNING", 1, 4, TaskHandle="handle-1"), newest_only=True)

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    exit_code = sqs.run(clock, sleep=interrupt)

    err = capsys.readouterr().err
    assert exit_code == EXIT_INTERRUPTED
    assert "Traceback" not in err
    assert "the move task keeps running in SQS" in err
    assert f"--source-arn {DLQ_ARN}" in err
    assert f"cancel-message-move-task --region {SECONDARY} --task-handle handle-1" in err


def test_a_dry_run_reads_the_dlq_and_starts_nothing(
    sqs: SqsScript, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.queue_attributes(depth=10)
    sqs.tasks(task("COMPLETED", 4, 4))  # no start_message_move_task is scripted

    exit_code = sqs.run(clock, "--dry-run", "--max-per-second", "20", yes=False)

    assert exit_code == EXIT_OK
    assert capsys.readouterr().out == (
        f"dry run: {SECONDARY}: start an SQS message move task of about 10 messages from"
        f" {DLQ_ARN} to {RETRY_ARN}, at most 20 messages/s\n"
    )
    sqs.stubber.assert_no_pending_responses()


def test_without_a_terminal_or_yes_nothing_is_read_or_moved(
    sqs: SqsScript, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing scripted: any SQS call fails the test.
    exit_code = sqs.run(clock, yes=False)  # pytest's stdin is no terminal

    assert exit_code == 2
    assert capsys.readouterr().err == (
        "error: redrive writes to a deployed stack and there is no terminal to confirm on:"
        " pass --yes (or --dry-run to only look)\n"
    )


@pytest.mark.parametrize(
    ("answer", "exit_code"), [("y", EXIT_OK), ("yes", EXIT_OK), ("", 3), ("n", 3)]
)
def test_on_a_terminal_the_operator_is_asked(
    answer: str,
    exit_code: int,
    sqs: SqsScript,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda: answer)
    sqs.queue_attributes(depth=3)
    sqs.tasks()
    if exit_code == EXIT_OK:  # only a yes starts the move
        sqs.start()
        sqs.tasks(task("COMPLETED", 3, 3), newest_only=True)

    assert sqs.run(clock, yes=False) == exit_code

    question = (
        f"Move about 3 messages from the DLQ to the retry queue in {SECONDARY} of stack {STACK}?"
        " [y/N] "
    )
    assert capsys.readouterr().err.startswith(question)
    sqs.stubber.assert_no_pending_responses()


def test_json_gives_the_result_with_utc_times_and_errors_as_json(
    deployed: Deployed, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = SqsScript(deployed)
    sqs.move_started(depth=2)
    sqs.tasks(task("COMPLETED", 2, 2), newest_only=True)
    times = iter(
        [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 9, tzinfo=UTC)]
    )

    exit_code = sqs.run(clock, "--json", wall_clock=times.__next__)

    assert exit_code == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {
        "region": SECONDARY,
        "status": "COMPLETED",
        "moved": 2,
        "to_move": 2,
        "failure_reason": "",
        "succeeded": True,
        "started_at": "2026-01-02T03:04:05+00:00",
        "finished_at": "2026-01-02T03:04:09+00:00",
    }

    other = redrive_args(deployed, "--json")
    other.region = "eu-west-1"
    assert commands.run_redrive(other, sqs.aws(), clock, clock.sleep) == 2
    error = json.loads(capsys.readouterr().out)
    assert error["exit_code"] == 2 and "has no region eu-west-1" in error["error"]
