"""Every command that writes to a deployed stack asks first, run through `payments-dr` itself.

Without a terminal and without `--yes` each is refused (exit 2, one line) before credentials
are looked for; `--yes` writes; a "no" typed at the prompt writes nothing. What was written
is read back from moto (merchant keys, conflict records) or from a fake Automation API stack.
The terminal is a monkeypatched `isatty` and `input`.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ops.conftest import PRIMARY, SECONDARY, STACK, Deployed, aws_credentials, deployed
from ops.test_conflicts import record

from payments_dr import cli, contract
from payments_dr.cli_arguments import ask_on_terminal
from payments_dr.contract import ConflictStatus
from payments_dr.merchants import Merchants
from payments_dr.ops import commands
from payments_dr.ops.aws import Aws
from payments_dr.ops.outputs import load_outputs
from payments_dr.service.conflicts import ConflictStore
from payments_dr.service.credentials import CredentialStore, KeyStatus

__all__ = ["aws_credentials", "deployed"]  # fixtures of tests/ops, used here

MERCHANT = "merchant-ab"
RESOLUTION = "refunded the superseded order"


class FakeStack:
    """An Automation API stack that records its calls; `up` is the only write."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _result(self, name: str, on_output: Callable[[str], None]) -> SimpleNamespace:
        self.calls.append(name)
        on_output(f"{name} running")
        changes = {"update": 2, "same": 40}
        summary = SimpleNamespace(result="succeeded", resource_changes=changes)
        return SimpleNamespace(summary=summary, change_summary=changes)

    def preview(self, *, on_output: Callable[[str], None], target: Any = None) -> Any:
        return self._result("preview", on_output)

    def up(self, *, on_output: Callable[[str], None], target: Any = None) -> Any:
        return self._result("up", on_output)

    def outputs(self) -> dict[str, Any]:
        return {}

    def export_stack(self) -> Any:
        return SimpleNamespace(deployment={"resources": []})


class Scene:
    """One write command on the moto stack: what it needs first and whether it wrote."""

    def __init__(self, deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.deployed = deployed
        self.stack = FakeStack()
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.before: Any = None

    def credentials(self) -> CredentialStore:
        table = contract.table_name(STACK)
        return CredentialStore(self.deployed.aws.client("dynamodb", PRIMARY), table)

    def conflicts(self) -> ConflictStore:
        table = contract.table_name(STACK)
        return ConflictStore(self.deployed.aws.client("dynamodb", SECONDARY), table)

    def issue(self) -> None:
        outputs = load_outputs(STACK, self.deployed.outputs_file, self.tmp_path)
        Merchants(outputs, self.deployed.aws, io.StringIO(), io.StringIO()).issue(MERCHANT)
        self.before = self.credentials().get(MERCHANT)

    def argv(self, command: str) -> list[str]:
        outputs = ["--stack", STACK, "--outputs", str(self.deployed.outputs_file)]
        if command == "merchant create":
            return ["merchant", "create", MERCHANT, *outputs]
        if command in ("merchant rotate", "merchant revoke"):
            self.issue()
            return [*command.split(), MERCHANT, *outputs]
        if command == "conflicts resolve":
            key = record(self.deployed, (SECONDARY,)).key
            return ["conflicts", "resolve", key, "--resolution", RESOLUTION, *outputs]
        if command == "canary enrol":
            for region in (PRIMARY, SECONDARY):
                target = SECONDARY if region == PRIMARY else PRIMARY
                secret = contract.canary_secret_name(STACK, target)
                self.deployed.aws.client("secretsmanager", region).create_secret(Name=secret)
            return ["canary", "enrol", *outputs]
        self.fake_stack_up()
        return ["stack", "up", "--stack", STACK, "--work-dir", str(self.tmp_path)]

    def written(self, command: str) -> bool:
        record = self.credentials().get(MERCHANT)
        if command == "merchant create":
            return record is not None
        if command == "merchant rotate":
            return record is not None and record.key_id != self.before.key_id
        if command == "merchant revoke":
            return record is not None and record.status is KeyStatus.REVOKED
        if command == "conflicts resolve":
            return self.conflicts().list(ConflictStatus.OPEN) == []
        if command == "canary enrol":
            return self.credentials().get(contract.CANARY_MERCHANT_ID) is not None
        return "up" in self.stack.calls

    def fake_stack_up(self) -> None:
        """`stack up` on the fake stack, its preflight checks passing: the project, the stack
        file and the Automation API are all that is replaced."""
        (self.tmp_path / "Pulumi.yaml").write_text("name: payments-dr\nruntime: python\n")
        (self.tmp_path / f"Pulumi.{STACK}.yaml").write_text(
            "config:\n  payments-dr:domainName: pay.example.com\n"
            "  payments-dr:hostedZoneId: Z0123456789ABCDEFGHIJ\n"
        )
        lifecycle = commands.run_lifecycle

        def on_fake_stack(*args: Any, guards: Any, **kwargs: Any) -> int:
            return lifecycle(
                *args,
                guards=dataclasses.replace(guards, preflight=lambda config, aws, deployed: []),
                opener=lambda name, work_dir, create: self.stack,
                cli_available=lambda: True,
                **kwargs,
            )

        self.monkeypatch.setattr(commands, "run_lifecycle", on_fake_stack)


WRITE_COMMANDS = [
    "merchant create",
    "merchant rotate",
    "merchant revoke",
    "conflicts resolve",
    "stack up",
    "canary enrol",
]


@pytest.fixture
def scene(deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    monkeypatch.chdir(tmp_path)
    yield Scene(deployed, tmp_path, monkeypatch)


@pytest.fixture(params=WRITE_COMMANDS)
def command(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def argv(scene: Scene, command: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The command line of `command`, what it acts on in place (its output discarded)."""
    line = scene.argv(command)
    capsys.readouterr()
    return line


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def terminal(monkeypatch: pytest.MonkeyPatch, answer: str | None) -> list[str]:
    """stdin is a terminal on which the operator types `answer` (None: no terminal)."""
    monkeypatch.setattr("sys.stdin.isatty", lambda: answer is not None)
    typed: list[str] = []

    def type_answer() -> str:
        assert answer is not None, "asked with no terminal"
        typed.append(answer)
        return answer

    monkeypatch.setattr("builtins.input", type_answer)
    return typed


def test_without_a_terminal_or_yes_it_is_refused_before_credentials(
    command: str,
    argv: list[str],
    scene: Scene,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    terminal(monkeypatch, None)

    def tripwire(self: Aws) -> None:
        raise AssertionError("credentials were looked for")

    monkeypatch.setattr(Aws, "require_credentials", tripwire)

    code, out, err = run_cli(argv, capsys)

    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {command} writes to a deployed stack and there is no terminal")
    assert "pass --yes" in err
    assert not scene.written(command)
    assert scene.stack.calls == []  # not even the preview


def test_yes_writes_without_asking(
    command: str,
    argv: list[str],
    scene: Scene,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    typed = terminal(monkeypatch, "n")  # a terminal, but --yes means nobody is asked

    code, _, err = run_cli([*argv, "--yes"], capsys)

    assert code == 0, err
    assert typed == []
    assert scene.written(command)
    assert "preview" not in scene.stack.calls  # --yes skips the preview shown for the question


@pytest.mark.parametrize(
    ("answer", "code", "writes"), [("n", 3, False), ("", 3, False), ("y", 0, True)]
)
def test_on_a_terminal_the_answer_decides(
    command: str,
    answer: str,
    code: int,
    writes: bool,
    argv: list[str],
    scene: Scene,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    typed = terminal(monkeypatch, answer)

    exit_code, _, err = run_cli(argv, capsys)

    assert exit_code == code, err
    assert typed == [answer]
    assert scene.written(command) is writes
    # The question names the stack and its region(s); the typed answer is not echoed here.
    (question,) = [line for line in err.splitlines() if "? [y/N] " in line]
    assert (f"stack {STACK}" in question and PRIMARY in question) or SECONDARY in question, err
    if not writes:
        assert question.endswith(f"? [y/N] error: {command} not confirmed; nothing was written")


@pytest.mark.parametrize("command", WRITE_COMMANDS[:4])  # those with a dry run
def test_a_dry_run_says_what_and_where_and_writes_nothing(
    command: str,
    argv: list[str],
    scene: Scene,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    terminal(monkeypatch, None)  # a dry run needs no confirmation

    code, out, err = run_cli([*argv, "--dry-run"], capsys)

    assert code == 0, err
    assert out.startswith(f"{command} on stack {STACK}: dry run, nothing written; would write:")
    assert contract.table_name(STACK) in out and PRIMARY in out and SECONDARY in out
    assert not scene.written(command)


def test_a_dry_run_is_refused_as_the_write_would_be(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = scene.argv("merchant create")
    run_cli([*argv, "--yes"], capsys)

    code, out, err = run_cli([*argv, "--dry-run"], capsys)

    assert (code, out) == (3, "")
    assert err == f"error: merchant {MERCHANT} already has an active key: revoke it first\n"


def test_merchant_sync_writes_only_when_confirmed(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["merchant", "sync", "--stack", STACK, "--outputs", str(scene.deployed.outputs_file)]
    terminal(monkeypatch, None)
    code, out, err = run_cli(argv, capsys)
    assert (code, out) == (2, "")
    assert err.startswith("error: merchant sync writes to a deployed stack")
    assert run_cli([*argv, "--yes"], capsys)[0] == 0


def test_yes_goes_with_stack_up_only(scene: Scene, capsys: pytest.CaptureFixture[str]) -> None:
    argv = scene.argv("stack up")
    code, _, err = run_cli(["stack", "preview", *argv[2:], "--yes"], capsys)
    assert code == 2
    assert err == "error: --yes applies to `stack up` only (destroy takes --confirm STACK)\n"
    assert scene.stack.calls == []


@pytest.mark.parametrize(
    ("typed", "proceed"), [("yes\n", True), ("Y\n", True), ("no\n", False), ("", False)]
)
def test_the_question_goes_to_stderr_and_an_end_of_input_is_a_no(
    typed: str, proceed: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))  # "" ends the input: EOFError
    assert ask_on_terminal("Revoke it?") is proceed
    assert capsys.readouterr() == ("", "Revoke it? [y/N] ")
