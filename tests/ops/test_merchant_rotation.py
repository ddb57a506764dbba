"""`payments-dr merchant rotate`: a new key, the old one kept for the overlap, one winner of
two concurrent rotations, and revocation of both keys."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.cli import build_parser
from payments_dr.merchants import MAX_OVERLAP_MINUTES, MIN_OVERLAP_MINUTES
from payments_dr.ops.aws import EXIT_OK, EXIT_REFUSED, Aws
from payments_dr.service.credentials import (
    CredentialStore,
    KeyStatus,
    rotate_key,
)

from .conftest import PRIMARY, SECONDARY, STACK, Deployed
from .merchant_helpers import (
    MERCHANT,
    effect,
    issued_key,
    plan_keys,
    primary_authorizer,
    run,
    secret_of,
    stored,
    table_items,
    verdict,
)


def test_rotate_issues_a_new_key_and_keeps_the_old_one_for_the_overlap(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run(deployed, "create", MERCHANT)
    old_key = issued_key(capsys.readouterr().out)
    usage_keys = {region: plan_keys(deployed, region) for region in (PRIMARY, SECONDARY)}

    assert run(deployed, "rotate", MERCHANT, "--overlap-minutes", "30") == EXIT_OK

    printed = capsys.readouterr()
    new_key = issued_key(printed.out)
    assert printed.out.count(secret_of(new_key)) == 1
    assert secret_of(old_key) not in printed.out
    record = stored(deployed)
    assert record is not None and record.previous is not None
    assert (record.key_id, record.previous.key_id) == (new_key.split(".")[2], old_key.split(".")[2])
    assert f"stays valid until {record.previous.expires_at} (30 min" in printed.out
    # The usage key belongs to the merchant: the plans keep exactly the one they had.
    assert {region: plan_keys(deployed, region) for region in usage_keys} == usage_keys
    table = json.dumps(table_items(deployed, PRIMARY))
    assert secret_of(new_key) not in table and secret_of(old_key) not in table

    expires = datetime.fromisoformat(record.previous.expires_at).timestamp()
    during = primary_authorizer(deployed, clock=lambda: expires - 1)
    assert effect(verdict(during, old_key)) == effect(verdict(during, new_key)) == "Allow"
    after = primary_authorizer(deployed, clock=lambda: expires)
    assert effect(verdict(after, old_key)) == "Deny"
    assert effect(verdict(after, new_key)) == "Allow"


def test_a_second_rotation_says_which_key_it_ends_early(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run(deployed, "create", MERCHANT)
    first = issued_key(capsys.readouterr().out).split(".")[2]
    run(deployed, "rotate", MERCHANT)
    assert "note:" not in capsys.readouterr().out  # the first rotation ends nothing early
    assert run(deployed, "rotate", MERCHANT) == EXIT_OK
    assert f"note: key {first}, from the rotation before, is no longer accepted" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ([], f"merchant {MERCHANT} has no key: create one"),
        ([["create", MERCHANT], ["revoke", MERCHANT]], f"{MERCHANT}'s key is revoked"),
    ],
    ids=["unknown", "revoked"],
)
def test_rotating_an_unknown_or_revoked_merchant_is_refused_and_writes_nothing(
    deployed: Deployed,
    capsys: pytest.CaptureFixture[str],
    setup: list[list[str]],
    message: str,
) -> None:
    for command in setup:
        run(deployed, *command)
    before = table_items(deployed, PRIMARY)
    capsys.readouterr()

    assert run(deployed, "rotate", MERCHANT) == EXIT_REFUSED

    printed = capsys.readouterr()
    assert message in printed.err
    assert "pdr." not in printed.out
    assert table_items(deployed, PRIMARY) == before


@pytest.mark.parametrize("minutes", [MIN_OVERLAP_MINUTES - 1, MAX_OVERLAP_MINUTES + 1, -60])
def test_an_overlap_out_of_bounds_is_a_usage_error_before_anything_is_written(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], minutes: int
) -> None:
    run(deployed, "create", MERCHANT)
    before = table_items(deployed, PRIMARY)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run(deployed, "rotate", MERCHANT, f"--overlap-minutes={minutes}")
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert f"{minutes} is out of range: {MIN_OVERLAP_MINUTES} to {MAX_OVERLAP_MINUTES}" in error
    assert table_items(deployed, PRIMARY) == before


def test_the_overlap_must_be_a_whole_number_of_minutes() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["merchant", "rotate", MERCHANT, "--overlap-minutes", "1.5"])


class RivalRotation:
    """An Aws whose primary table receives another operator's rotation of the same merchant
    between the command's read and its write."""

    def __init__(self, aws: Aws) -> None:
        self._aws = aws
        self.rival_key: str | None = None

    def client(self, service: str, region: str) -> Any:
        client = self._aws.client(service, region)
        if (service, region) != ("dynamodb", PRIMARY):
            return client
        race = self

        class Racing:
            def __getattr__(self, name: str) -> Any:
                if name != "put_item" or race.rival_key is not None:
                    return getattr(client, name)

                def put_item(**request: Any) -> Any:
                    store = CredentialStore(client, contract.table_name(STACK))
                    start = store.get(MERCHANT)
                    assert start is not None
                    rival = rotate_key(start, time.time(), 600)
                    store.rotate(start.key_id, rival.record)
                    race.rival_key = rival.api_key
                    return client.put_item(**request)

                return put_item

        return Racing()

    def require_credentials(self) -> None:
        self._aws.require_credentials()


def test_of_two_concurrent_rotations_exactly_one_wins(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run(deployed, "create", MERCHANT)
    original = issued_key(capsys.readouterr().out).split(".")[2]
    race = RivalRotation(deployed.aws)

    assert run(deployed, "rotate", MERCHANT, aws=race) == EXIT_REFUSED

    printed = capsys.readouterr()
    assert "changed while rotating" in printed.err and "nothing written" in printed.err
    assert "pdr." not in printed.out  # the losing key is never handed out
    record = stored(deployed)
    assert race.rival_key is not None and record is not None and record.previous is not None
    assert (record.key_id, record.previous.key_id) == (race.rival_key.split(".")[2], original)


def test_revoke_after_rotate_ends_both_keys(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run(deployed, "create", MERCHANT)
    run(deployed, "rotate", MERCHANT)
    old_key, new_key = (issued_key(part) for part in capsys.readouterr().out.split("API key")[1:])
    authorize = primary_authorizer(deployed)
    assert effect(verdict(authorize, old_key)) == effect(verdict(authorize, new_key)) == "Allow"

    assert run(deployed, "revoke", MERCHANT) == EXIT_OK

    assert effect(verdict(authorize, old_key)) == effect(verdict(authorize, new_key)) == "Deny"
    record = stored(deployed)
    assert record is not None and record.status is KeyStatus.REVOKED and record.previous is None
    assert plan_keys(deployed, PRIMARY) == plan_keys(deployed, SECONDARY) == []


def test_list_shows_both_key_ids_and_the_expiry_but_no_secret_or_hash(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run(deployed, "create", MERCHANT)
    run(deployed, "rotate", MERCHANT)
    keys = [issued_key(part) for part in capsys.readouterr().out.split("API key")[1:]]
    record = stored(deployed)
    assert record is not None and record.previous is not None
    hashes = [record.secret_sha256, record.previous.secret_sha256]

    assert run(deployed, "list", "--json") == EXIT_OK
    listed = capsys.readouterr().out
    (row,) = json.loads(listed)
    assert (row["key_id"], row["previous_key_id"], row["previous_expires_at"]) == (
        record.key_id,
        record.previous.key_id,
        record.previous.expires_at,
    )
    assert run(deployed, "list") == EXIT_OK
    table = capsys.readouterr().out
    assert f"{record.previous.key_id} valid until {record.previous.expires_at}" in table
    for output in (listed, table):
        assert not any(secret_of(key) in output for key in keys)
        assert not any(digest in output for digest in hashes)
        assert record.usage_key not in output


def test_the_new_secret_never_reaches_the_logs(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    run(deployed, "create", MERCHANT)
    capsys.readouterr()
    with caplog.at_level(logging.DEBUG):
        assert run(deployed, "rotate", MERCHANT) == EXIT_OK
    printed = capsys.readouterr()
    secret = secret_of(issued_key(printed.out))
    assert caplog.records  # the AWS calls were logged: the check below has something to read
    assert secret not in caplog.text
    assert secret not in printed.err
