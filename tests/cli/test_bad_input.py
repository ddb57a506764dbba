"""Bad input to any command: one line naming the problem, exit 2, no traceback, no work done.

Each case runs in-process through `payments-dr`'s own entry point. Synthesis, credentials
and the lab are replaced by tripwires, so a case that got past its check fails loudly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from payments_dr import cli, contract, synth
from payments_dr.contract import DrBudgetField, RegionOutput, StackOutput
from payments_dr.ops.aws import Aws
from payments_dr.ops.outputs import OPTIONAL_REGION_OUTPUTS

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK = "s"
REGIONS = ("us-east-1", "us-east-2")


def valid_outputs() -> dict[str, Any]:
    """Outputs of a deployed stack as `pulumi stack output --json` writes them."""

    def region(name: str, role: str) -> dict[str, Any]:
        values: dict[str, Any] = {
            key.value: f"{key.value}-{name}"
            for key in RegionOutput
            if key not in OPTIONAL_REGION_OUTPUTS
        }
        values[RegionOutput.ROLE] = role
        values[RegionOutput.ALARM_ARNS] = {"dlq-not-empty": f"arn:aws:cloudwatch:{name}:1:alarm:x"}
        values[RegionOutput.FUNCTION_NAMES] = {"api": f"api-{name}"}
        return values

    return {
        StackOutput.PRIMARY_API_ENDPOINT: "https://api.us-east-1.pay.example.com",
        StackOutput.SECONDARY_API_ENDPOINT: "https://api.us-east-2.pay.example.com",
        StackOutput.FAILOVER_URL: "https://api.pay.example.com",
        StackOutput.API_DOMAIN: "api.pay.example.com",
        StackOutput.HOSTED_ZONE_ID: "Z123",
        StackOutput.NAME_SERVERS: [],
        StackOutput.TABLE_NAME: contract.table_name(STACK),
        StackOutput.DR_BUDGET: {field.value: 60 for field in DrBudgetField},
        StackOutput.REGIONS: {
            REGIONS[0]: region(REGIONS[0], "primary"),
            REGIONS[1]: region(REGIONS[1], "secondary"),
        },
        StackOutput.CONSISTENCY_MODE: "strong",
    }


def broken_outputs(change: str) -> Any:
    """`valid_outputs()` with one thing wrong."""
    outputs = valid_outputs()
    primary = outputs[StackOutput.REGIONS][REGIONS[0]]
    if change == "array":
        return [outputs]
    if change == "regions-list":
        outputs[StackOutput.REGIONS] = list(outputs[StackOutput.REGIONS].values())
    elif change == "budget-string":
        outputs[StackOutput.DR_BUDGET] = "900"
    elif change == "budget-value-string":
        outputs[StackOutput.DR_BUDGET][DrBudgetField.RTO_TARGET_SECONDS] = "900"
    elif change == "budget-value-missing":
        del outputs[StackOutput.DR_BUDGET][DrBudgetField.RPO_BUDGET_SECONDS]
    elif change == "region-string":
        outputs[StackOutput.REGIONS][REGIONS[0]] = "us-east-1"
    elif change == "alarms-list":
        primary[RegionOutput.ALARM_ARNS] = ["arn"]
    elif change == "role-unknown":
        primary[RegionOutput.ROLE] = "tertiary"
    elif change == "url-number":
        outputs[StackOutput.FAILOVER_URL] = 443
    return outputs


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with good and bad input files, no AWS credentials, and tripwires."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO_ROOT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    (tmp_path / "Pulumi.tab.yaml").write_text("config:\n\tpayments-dr:domainName: x\n")
    (tmp_path / "Pulumi.list.yaml").write_text("- payments-dr:domainName: x\n")
    (tmp_path / "Pulumi.latin1.yaml").write_bytes(b"config:\n  payments-dr:domainName: caf\xe9\n")
    (tmp_path / "Pulumi.folder.yaml").mkdir()
    for name, tags in TAG_CASES.items():
        (tmp_path / f"Pulumi.{name}.yaml").write_text(
            "config:\n  payments-dr:domainName: pay.example.com\n  payments-dr:tags:\n" + tags
        )
    (tmp_path / "README.md").write_text("a file, not a folder\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (tmp_path / "outputs.json").write_text(json.dumps(valid_outputs()))
    for change in (
        "array",
        "regions-list",
        "budget-string",
        "budget-value-string",
        "budget-value-missing",
        "region-string",
        "alarms-list",
        "role-unknown",
        "url-number",
    ):
        (tmp_path / f"{change}.json").write_text(json.dumps(broken_outputs(change)))

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    def tripwire(*_: object, **__: object) -> Any:
        raise AssertionError("the command went on to work its arguments should have stopped")

    monkeypatch.setattr(synth, "synthesize_interruptibly", tripwire)
    monkeypatch.setattr(Aws, "require_credentials", tripwire)
    monkeypatch.setattr(Aws, "client", tripwire)
    return tmp_path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `payments-dr ARGV`."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's usage errors, --help and --version
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


TAG_CASES = {
    "tag-null": "    owner:\n",
    "tag-nested": "    owner:\n      team: payments\n",
    "tag-list": "    owner: [a, b]\n",
    "tag-bool": "    billable: yes\n",
    "tag-characters": "    owner: pay#ments\n",
    "tag-name-characters": '    "cost center!": x\n',
    "tag-project": "    project: other\n",
    "tag-stack": "    stack: prod\n",
    "tag-aws-value": "    owner: aws:team\n",
    "tag-too-many": "".join(f"    t{number}: x\n" for number in range(49)),
}

SYNTH_CASES = [
    (["Pulumi.tag-null.yaml"], "payments-dr:tags: tag 'owner' has no value"),
    (["Pulumi.tag-nested.yaml"], "tag 'owner' is a dict, not text"),
    (["Pulumi.tag-list.yaml"], "tag 'owner' is a list, not text"),
    (["Pulumi.tag-bool.yaml"], "tag 'billable' is true/false, not text. Fix: write the value as"),
    (["Pulumi.tag-characters.yaml"], "the value of tag 'owner' is not accepted by AWS"),
    (["Pulumi.tag-name-characters.yaml"], "tag name 'cost center!' is not accepted by AWS"),
    (["Pulumi.tag-project.yaml"], "tag 'project' would replace the one the stack always adds"),
    (["Pulumi.tag-stack.yaml"], "tag 'stack' would replace the one the stack always adds"),
    (["Pulumi.tag-aws-value.yaml"], "tag 'owner' is not accepted by AWS (aws: is reserved)"),
    (["Pulumi.tag-too-many.yaml"], "49 tags; with project and stack that is over AWS's 50"),
    (["Pulumi.missing.yaml"], "Pulumi.missing.yaml does not exist"),
    (["Pulumi.tab.yaml"], "Pulumi.tab.yaml is not valid YAML (line 2, column 1: found character"),
    (["Pulumi.list.yaml"], "Pulumi.list.yaml holds a YAML list, not a mapping"),
    (["Pulumi.latin1.yaml"], "Pulumi.latin1.yaml is not UTF-8 text (line 2, column 30: byte 0xe9)"),
    (["Pulumi.folder.yaml"], "Pulumi.folder.yaml is a directory"),
    (["notes.yaml"], "'notes.yaml' is not named Pulumi.<stack>.yaml"),
    (["--json", "README.md/s.json"], "--json README.md/s.json: README.md is a file, not a dir"),
    (["--json", "reports"], "--json reports is a directory; name a file"),
    (["--outputs", "array.json"], "--outputs array.json is not a JSON object"),
    (["--outputs", "missing.json"], "--outputs missing.json cannot be read (No such file"),
    (["--outputs", "latin1.json"], "--outputs latin1.json is not UTF-8 text"),
    (["--outputs", "README.md"], "--outputs README.md is not JSON (Expecting value"),
]

OUTPUTS_CASES = [
    ("array.json", f"the outputs of stack {STACK} are a JSON array, not a JSON object"),
    ("regions-list.json", "output regions is a JSON array, not an object"),
    ("budget-string.json", "output dr_budget is a JSON string, not an object"),
    ("budget-value-string.json", "dr_budget: rto_target_seconds is '900', not a number of sec"),
    ("budget-value-missing.json", "output dr_budget lacks rpo_budget_seconds"),
    ("region-string.json", f"stack {STACK}, region us-east-1 is a JSON string, not an object"),
    ("alarms-list.json", "output alarm_arns is a JSON array, not an object"),
    ("role-unknown.json", "output role is 'tertiary', not primary or secondary"),
    ("url-number.json", "output failover_url is a JSON number, not a string"),
    ("missing.json", "outputs file missing.json does not exist"),
    ("latin1.json", "outputs file latin1.json is not UTF-8 text"),
    ("reports", "outputs file reports is a directory"),
    ("README.md", "outputs file README.md is not JSON"),
]

REDRIVE = ["redrive", "--stack", STACK, "--outputs", "outputs.json"]
REDRIVE_CASES = [
    ([*REDRIVE, "--region", "us-east-1", "--max-per-second", "-5"], "-5 is out of range: 1 to 500"),
    ([*REDRIVE, "--region", "us-east-1", "--max-per-second", "0"], "0 is out of range: 1 to 500"),
    ([*REDRIVE, "--region", "us-east-1", "--max-per-second", "501"], "501 is out of range"),
    ([*REDRIVE, "--region", "us-east-1", "--max-per-second", "fast"], "'fast' is not a whole"),
    ([*REDRIVE, "--region", "eu-west-1"], f"stack {STACK} has no region eu-west-1 (its regions:"),
    ([*REDRIVE, "--region", "Frankfurt"], "'Frankfurt' is not an AWS region name"),
    (
        [*REDRIVE, "--region", "us-east-1", "--timeout", "-1"],
        "--timeout: must be more than 0 sec",
    ),
    (
        [*REDRIVE, "--region", "us-east-1", "--poll-interval", "0"],
        "--poll-interval: must be more",
    ),
]

AWS_DRILL = ["drill", "--on-aws", "--stack", STACK]
DRILL_CASES = [
    (["drill", "--clients", "0"], "--clients must be at least 1"),
    (["drill", "--rate", "0"], "--rate must be a positive number"),
    (["drill", "--rate", "-1"], "--rate must be a positive number"),
    (["drill", "--time-scale", "0"], "--time-scale must be a positive number"),
    (["drill", "--replication-lag", "-1"], "--replication-lag must be 0 or more"),
    (["drill", "--timeline", "t.txt"], "t.txt: the timeline is a .png picture"),
    (["drill", "--json", "README.md/x.json"], "README.md is a file, not a directory"),
    (["drill", "--timeline", "README.md/t.png"], "README.md is a file, not a directory"),
    (["drill", "--json", "reports"], "reports is a directory"),
    ([*AWS_DRILL, "--mode", "strong"], "--mode applies to the lab drill only"),
    ([*AWS_DRILL, "--time-scale", "1"], "--time-scale applies to the lab drill only"),
    ([*AWS_DRILL, "--client", "sdk", "--clients", "0"], "--clients must be at least 1"),
    ([*AWS_DRILL, "--client", "sdk", "--rate", "0"], "--rate must be a positive number"),
    ([*AWS_DRILL, "--config", "Pulumi.dev.yaml"], "--config applies to the lab drill only"),
    ([*AWS_DRILL, "--workload", "adversarial"], "--workload applies to the lab drill only"),
    ([*AWS_DRILL, "--client", "sdk", "--workload", "adversarial"], "--workload applies to the"),
    ([*AWS_DRILL, "--client", "both", "--time-scale", "1"], "--time-scale applies to the lab"),
    (
        [*AWS_DRILL, "--client", "sdk", "--scenario", "region-outage"],
        "run scenario 'region-outage' in the lab",
    ),
    # The SDK needs each region's own https endpoint; these outputs hold none (nor does the
    # default, both kinds): refused before credentials, with the way out.
    (
        [*AWS_DRILL, "--outputs", "outputs.json", "--client", "sdk"],
        "--client sdk needs each region's own API endpoint in the stack's outputs",
    ),
    ([*AWS_DRILL, "--outputs", "outputs.json"], "run with --client dns, or update the stack"),
    (["drill", "--on-aws", "--client", "sdk"], "--on-aws needs --stack NAME"),
    (["drill", "--stack", "prod"], "--stack applies to --on-aws drills only"),
    (["drill", "--outputs", "outputs.json"], "--outputs applies to --on-aws drills only"),
    (["drill", "--force"], "--force applies to --on-aws drills only"),
    (["drill", "--dry-run"], "--dry-run applies to --on-aws drills only"),
    (["drill", "--yes"], "--yes applies to --on-aws drills only"),
]

USAGE_CASES = [
    (
        ["stack", "up", "--stack", STACK, "--delegation-timeout", "-1"],
        "--delegation-timeout: must be more",
    ),
    (["stack", "launch", "--stack", STACK], "argument operation: invalid choice: 'launch'"),
    ([], "the following arguments are required: COMMAND"),
    (["deploy"], "argument COMMAND: invalid choice: 'deploy'"),
    (["synth", "--bogus"], "unrecognized arguments: --bogus"),
    (["drill", "--scenario", "meteor"], "argument --scenario: invalid choice: 'meteor'"),
    (["merchant", "create", "no!", "--stack", STACK], "'no!' is not a merchant id (3-64"),
    (
        ["merchant", "rotate", "m-1", "--stack", STACK, "--overlap-minutes", "x"],
        "'x' is not a whole",
    ),
]


def assert_one_line_error(err: str, fragment: str) -> None:
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert fragment in err, err


@pytest.mark.parametrize(("argv", "fragment"), SYNTH_CASES)
def test_synth_refuses_bad_files_before_synthesizing(
    argv: list[str], fragment: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = [] if argv[0].endswith(".yaml") else ["Pulumi.dev.yaml"]
    code, out, err = run_cli(["synth", *stack_file, *argv], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, fragment)


@pytest.mark.parametrize(("outputs_file", "fragment"), OUTPUTS_CASES)
def test_status_refuses_outputs_of_the_wrong_shape_before_credentials(
    outputs_file: str, fragment: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["status", "--stack", STACK, "--outputs", outputs_file], capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, fragment)


@pytest.mark.parametrize(("argv", "fragment"), REDRIVE_CASES + DRILL_CASES + USAGE_CASES)
def test_bad_arguments_are_refused_before_credentials_or_work(
    argv: list[str], fragment: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    assert_one_line_error(err, fragment)


def test_an_argument_error_names_the_command_and_its_help(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = run_cli([*REDRIVE, "--region", "us-east-1", "--max-per-second", "-5"], capsys)
    assert err == (
        "error: payments-dr redrive: argument --max-per-second: -5 is out of range: 1 to 500"
        " messages per second (see `payments-dr redrive --help`)\n"
    )
