"""`payments-dr canary enrol` against a moto-backed stack: the test merchant's key goes to each
watching region's secret, is accepted by the authorizer's store, and is never printed."""

from __future__ import annotations

from typing import Any

import pytest

from payments_dr import contract
from payments_dr.cli import build_parser
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from payments_dr.ops.canary_keys import run_canary
from payments_dr.service.credentials import CredentialStore, parse_key

from .conftest import PRIMARY, SECONDARY, STACK, Deployed


def secret_id(target: str) -> str:
    return contract.canary_secret_name(STACK, target)


def create_secrets(deployed: Deployed, *regions: str) -> None:
    """The empty secrets the stack creates, one per watching region."""
    for region in regions:
        target = SECONDARY if region == PRIMARY else PRIMARY
        deployed.aws.client("secretsmanager", region).create_secret(Name=secret_id(target))


def run(deployed: Deployed, aws: Any = None) -> int:
    args = build_parser().parse_args(
        ["canary", "enrol", "--stack", STACK, "--outputs", str(deployed.outputs_file), "--yes"]
    )
    return run_canary(args, aws or deployed.aws)


def test_enrol_puts_one_valid_key_in_both_secrets_and_prints_none(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    create_secrets(deployed, PRIMARY, SECONDARY)
    assert run(deployed) == EXIT_OK
    printed = capsys.readouterr()
    keys = {
        region: deployed.aws.client("secretsmanager", region).get_secret_value(
            SecretId=secret_id(target)
        )["SecretString"]
        for region, target in ((PRIMARY, SECONDARY), (SECONDARY, PRIMARY))
    }
    assert keys[PRIMARY] == keys[SECONDARY]
    key = parse_key(keys[PRIMARY])
    assert key.merchant_id == contract.CANARY_MERCHANT_ID
    record = CredentialStore(
        deployed.aws.client("dynamodb", PRIMARY), contract.table_name(STACK)
    ).get(contract.CANARY_MERCHANT_ID)
    assert record is not None and record.secret_matches(key)
    assert keys[PRIMARY] not in printed.out + printed.err
    assert f"{SECONDARY}: the canary probing {PRIMARY} reads its key" in printed.out


def test_a_missing_secret_is_reported_and_fails_the_command(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    create_secrets(deployed, SECONDARY)  # us-east-1's secret is missing
    assert run(deployed) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"warning: {secret_id(SECONDARY)} in {PRIMARY} not written" in err


def test_a_second_enrolment_is_refused(deployed: Deployed) -> None:
    create_secrets(deployed, PRIMARY, SECONDARY)
    assert run(deployed) == EXIT_OK
    assert run(deployed) == EXIT_REFUSED
