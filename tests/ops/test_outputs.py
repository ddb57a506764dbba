"""Reading stack outputs: from a file, through the Automation API, and every way it fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation
from pulumi.automation._cmd import CommandResult

from payments_dr import contract
from payments_dr.contract import RegionOutput, StackOutput
from payments_dr.ops.aws import EXIT_ENVIRONMENT, OpsError
from payments_dr.ops.outputs import load_outputs, parse_outputs

from .conftest import PRIMARY, SECONDARY, STACK, TARGETS, health_check_id, stack_outputs


def raw_outputs() -> dict[str, Any]:
    region = {key.value: f"{key.value}-value" for key in RegionOutput if key != RegionOutput.ROLE}
    region[RegionOutput.ALARM_ARNS] = {"dlq-not-empty": "arn:aws:cloudwatch:r:1:alarm:x"}
    region[RegionOutput.SWITCH] = {"kind": "alarm", "health_check_id": "hc-switch"}
    regions = {
        PRIMARY: {
            **region,
            RegionOutput.ROLE: "primary",
            RegionOutput.CUSTOM_DOMAIN_TARGET: TARGETS[PRIMARY],
            RegionOutput.HEALTH_CHECK_ID: health_check_id(PRIMARY),
        },
        SECONDARY: {
            **region,
            RegionOutput.ROLE: "secondary",
            RegionOutput.CUSTOM_DOMAIN_TARGET: TARGETS[SECONDARY],
            RegionOutput.HEALTH_CHECK_ID: health_check_id(SECONDARY),
        },
    }
    return json.loads(json.dumps(stack_outputs(regions)))


def test_parses_regions_roles_and_budget() -> None:
    outputs = parse_outputs(STACK, raw_outputs())

    assert outputs.primary == PRIMARY
    assert outputs.secondary == SECONDARY
    assert outputs.others(PRIMARY) == (SECONDARY,)
    assert outputs.rpo_target_seconds == 300.0
    assert outputs.rto_target_seconds == 900.0
    assert outputs.region(SECONDARY).health_check_id == health_check_id(SECONDARY)
    assert outputs.region(PRIMARY).custom_domain_target == TARGETS[PRIMARY]


def test_the_key_age_maximum_is_optional_and_checked() -> None:
    raw = raw_outputs()
    assert parse_outputs(STACK, raw).merchant_key_max_age_days is None  # an older stack
    raw[StackOutput.MERCHANT_KEY_MAX_AGE_DAYS] = 45
    assert parse_outputs(STACK, raw).merchant_key_max_age_days == 45
    for bad in ("45", 0, True, 4.5):
        raw[StackOutput.MERCHANT_KEY_MAX_AGE_DAYS] = bad
        with pytest.raises(OpsError, match=r"output merchant_key_max_age_days is .* days"):
            parse_outputs(STACK, raw)


def test_a_missing_stack_output_is_named() -> None:
    raw = raw_outputs()
    del raw[StackOutput.HOSTED_ZONE_ID]

    with pytest.raises(OpsError, match="lacks the outputs hosted_zone_id: is it deployed"):
        parse_outputs(STACK, raw)


def test_a_missing_region_output_is_named_with_its_region() -> None:
    raw = raw_outputs()
    del raw[StackOutput.REGIONS][SECONDARY][RegionOutput.DLQ_URL]

    with pytest.raises(OpsError, match=f"region {SECONDARY} lacks the outputs dlq_url"):
        parse_outputs(STACK, raw)


def test_two_primaries_are_rejected() -> None:
    raw = raw_outputs()
    raw[StackOutput.REGIONS][SECONDARY][RegionOutput.ROLE] = "primary"

    with pytest.raises(OpsError, match="one primary and one secondary"):
        parse_outputs(STACK, raw)


def test_unknown_region_lists_the_known_ones() -> None:
    outputs = parse_outputs(STACK, raw_outputs())

    with pytest.raises(OpsError, match=r"has no region eu-west-1 .*us-east-1, us-east-2"):
        outputs.region("eu-west-1")


def test_reads_the_outputs_file(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(raw_outputs()))

    outputs = load_outputs(STACK, path, tmp_path, cli_available=lambda: False)

    assert outputs.table_name == raw_outputs()[StackOutput.TABLE_NAME]


@pytest.mark.parametrize(
    ("content", "message"), [(None, "does not exist"), ("{not json", "is not JSON")]
)
def test_a_bad_outputs_file_fails_cleanly(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "outputs.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(OpsError, match=message) as raised:
        load_outputs(STACK, path, tmp_path)
    assert raised.value.exit_code == EXIT_ENVIRONMENT


def test_without_file_or_cli_the_message_offers_the_file(tmp_path: Path) -> None:
    with pytest.raises(OpsError, match=r"Pulumi CLI is not on PATH.*--outputs FILE"):
        load_outputs(STACK, None, tmp_path, cli_available=lambda: False)


def test_reads_outputs_through_the_automation_api(tmp_path: Path) -> None:
    asked: list[tuple[str, Path]] = []

    def read(stack: str, work_dir: Path) -> dict[str, automation.OutputValue]:
        asked.append((stack, work_dir))
        return {
            name: automation.OutputValue(value, secret=False)
            for name, value in raw_outputs().items()
        }

    outputs = load_outputs(STACK, None, tmp_path, cli_available=lambda: True, read=read)

    assert asked == [(STACK, tmp_path)]
    assert outputs.secondary == SECONDARY


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: payments-dr\nruntime: python\n")
    return tmp_path


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (automation.StackNotFoundError, "stack gone does not exist in the project at "),
        (automation.CommandError, "the Pulumi CLI could not read stack gone: .*not logged in"),
    ],
)
def test_automation_api_failures_are_reported_by_stack_name(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: type[automation.CommandError],
    message: str,
) -> None:
    def select_stack(stack_name: str, work_dir: str) -> None:
        raise error(CommandResult("", "error: not logged in", 255))

    monkeypatch.setattr(automation, "select_stack", select_stack)

    with pytest.raises(OpsError, match=message):
        load_outputs("gone", None, project, cli_available=lambda: True)


def test_automation_api_needs_the_project_directory(tmp_path: Path) -> None:
    with pytest.raises(OpsError, match=f"{tmp_path} holds no Pulumi.yaml"):
        load_outputs(STACK, None, tmp_path, cli_available=lambda: True)


# Importing the whole pulumi_aws SDK warns about every deprecated resource class it holds.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_reads_what_the_pulumi_program_exports() -> None:
    """The dev stack evaluated under mocks exports every output ops needs, in its shape."""
    from payments_dr.synth import synthesize  # slow to import: only this test needs it

    root = Path(__file__).resolve().parents[2]
    raw = synthesize(root / "Pulumi.dev.yaml").outputs

    outputs = parse_outputs("dev", raw)

    assert (outputs.primary, outputs.secondary) == (PRIMARY, SECONDARY)
    assert outputs.rpo_target_seconds > 0
    assert outputs.rto_budget_seconds <= outputs.rto_target_seconds
    for name, region in outputs.regions.items():
        assert region.ssm_path == contract.ssm_path("dev", name)
        assert region.custom_domain_target.endswith(f".execute-api.{name}.amazonaws.com")
        assert region.api_endpoint == f"https://api.{name}.pay.example.com"
        assert region.health_check_url == f"{region.api_endpoint}{contract.HEALTH_PATH}"
        assert all(f":{name}:" in arn and ":alarm:" in arn for arn in region.alarm_arns.values())
    assert outputs.api_endpoints == {
        PRIMARY: "https://api.us-east-1.pay.example.com",
        SECONDARY: "https://api.us-east-2.pay.example.com",
    }
    assert outputs.merchant_key_max_age_days == 90
