"""Stack lifecycle through the Automation API, with a fake stack standing in for the CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from pulumi import automation
from pulumi.automation._cmd import CommandResult

from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.stack import Operation, run_lifecycle
from payments_dr.ops.stack_up import UpGuards

from .conftest import STACK


class FakeStack:
    """Records calls; answers like `automation.Stack` with canned results."""

    def __init__(self, result: str = "succeeded", fail_with: Exception | None = None) -> None:
        self.calls: list[str] = []
        self.result = result
        self.fail_with = fail_with

    def _run(self, name: str, on_output: Callable[[str], None]) -> SimpleNamespace:
        self.calls.append(name)
        if self.fail_with:
            raise self.fail_with
        on_output(f"{name} of {STACK} running")
        summary = SimpleNamespace(result=self.result, resource_changes={"create": 3, "same": 40})
        return SimpleNamespace(summary=summary, change_summary={"create": 3, "same": 40})

    def preview(
        self, *, on_output: Callable[[str], None], target: list[str] | None = None
    ) -> SimpleNamespace:
        return self._run("preview", on_output)

    def up(
        self, *, on_output: Callable[[str], None], target: list[str] | None = None
    ) -> SimpleNamespace:
        assert target is None  # this stack uses an existing zone: no zone-only update
        return self._run("up", on_output)

    def destroy(self, *, on_output: Callable[[str], None]) -> SimpleNamespace:
        return self._run("destroy", on_output)

    def outputs(self) -> dict[str, automation.OutputValue]:
        self.calls.append("outputs")
        return {
            "failover_url": automation.OutputValue("https://api.example.com", secret=False),
            "signing_key": automation.OutputValue("s3cr3t", secret=True),
        }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: payments-dr\nruntime: python\n")
    (tmp_path / f"Pulumi.{STACK}.yaml").write_text(
        "config:\n  payments-dr:domainName: pay.example.com\n"
        "  payments-dr:hostedZoneId: Z0123456789ABCDEFGHIJ\n"
    )
    return tmp_path


# Up's own guards are tested in test_stack_up; here they pass.
# approve=None: confirmed beforehand, as `--yes` does.
PASSING = UpGuards(preflight=lambda config, aws, deployed: [], approve=None)


def run(
    operation: Operation,
    project: Path,
    stack: FakeStack,
    confirm: str | None = None,
    opened: list[tuple[str, Path, bool]] | None = None,
) -> tuple[int, str]:
    def opener(name: str, work_dir: Path, create: bool) -> FakeStack:
        if opened is not None:
            opened.append((name, work_dir, create))
        return stack

    out = io.StringIO()
    exit_code = run_lifecycle(
        operation,
        STACK,
        project,
        Aws(),
        out,
        confirm,
        opener=opener,
        cli_available=lambda: True,
        guards=PASSING,
    )
    return exit_code, out.getvalue()


@pytest.mark.parametrize(
    ("operation", "creates"), [("preview", True), ("up", True), ("destroy", False)]
)
def test_operations_run_on_the_opened_stack(
    aws_credentials: None, project: Path, operation: Operation, creates: bool
) -> None:
    stack, opened = FakeStack(), []

    exit_code, out = run(operation, project, stack, confirm=STACK, opened=opened)

    assert exit_code == EXIT_OK
    assert opened == [(STACK, project, creates)]  # only preview and up create a stack
    # Up reads the outputs first, for the deployed consistency mode.
    assert stack.calls == (["outputs", "up"] if operation == "up" else [operation])
    assert f"{operation} of {STACK} running\n" in out
    assert "3 create, 40 same" in out


def test_a_failed_update_exits_1(aws_credentials: None, project: Path) -> None:
    exit_code, out = run("up", project, FakeStack(result="failed"))

    assert exit_code == EXIT_FAILED
    assert f"up of {STACK}: failed" in out


def test_a_cli_error_is_reported_not_raised(aws_credentials: None, project: Path) -> None:
    error = automation.CommandError(CommandResult("", "error: no credentials for backend", 255))

    exit_code, out = run("preview", project, FakeStack(fail_with=error))

    assert exit_code == EXIT_FAILED
    assert "preview of drtest failed" in out
    assert "no credentials for backend" in out


def test_destroy_wants_the_stack_name_repeated(aws_credentials: None, project: Path) -> None:
    stack = FakeStack()

    with pytest.raises(OpsError, match=f"--confirm {STACK}") as raised:
        run("destroy", project, stack, confirm="prod")

    assert raised.value.exit_code == EXIT_REFUSED
    assert stack.calls == []


def test_outputs_print_json_with_secrets_masked(project: Path) -> None:
    exit_code, out = run("outputs", project, FakeStack())

    assert exit_code == EXIT_OK
    assert json.loads(out) == {"failover_url": "https://api.example.com", "signing_key": "[secret]"}


def test_without_the_cli_the_message_says_so(project: Path) -> None:
    with pytest.raises(OpsError, match="Pulumi CLI, which is not on PATH"):
        run_lifecycle("up", STACK, project, Aws(), io.StringIO(), cli_available=lambda: False)


def test_outside_a_project_the_message_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(OpsError, match=f"{tmp_path} holds no Pulumi.yaml"):
        run_lifecycle("up", STACK, tmp_path, Aws(), io.StringIO(), cli_available=lambda: True)


def test_up_without_aws_credentials_fails_before_touching_the_stack(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    stack = FakeStack()

    with pytest.raises(OpsError, match="no AWS credentials found"):
        run("up", project, stack)
    assert stack.calls == []


def _real_stack_reason() -> str | None:
    if shutil.which("pulumi") is None:
        return "the Pulumi CLI is not installed"
    if "PAYMENTS_DR_TEST_STACK" not in os.environ:
        return "PAYMENTS_DR_TEST_STACK names no ephemeral stack to preview"
    if Aws()._session.get_credentials() is None:
        return "no AWS credentials"
    return None


@pytest.mark.skipif(_real_stack_reason() is not None, reason=str(_real_stack_reason()))
def test_preview_of_a_real_stack() -> None:
    root = Path(__file__).resolve().parents[2]
    out = io.StringIO()

    exit_code = run_lifecycle("preview", os.environ["PAYMENTS_DR_TEST_STACK"], root, Aws(), out)

    assert exit_code == EXIT_OK, out.getvalue()
    assert "preview of" in out.getvalue()


def test_a_cli_failure_while_opening_the_stack_is_reported(
    aws_credentials: None, project: Path
) -> None:
    def opener(name: str, work_dir: Path, create: bool) -> FakeStack:
        raise automation.CommandError(CommandResult("", "error: not logged in\n", 255))

    out = io.StringIO()
    exit_code = run_lifecycle(
        "outputs", STACK, project, Aws(), out, opener=opener, cli_available=lambda: True
    )

    assert exit_code == EXIT_FAILED
    assert out.getvalue() == f"outputs of {STACK} failed: error: not logged in\n"
