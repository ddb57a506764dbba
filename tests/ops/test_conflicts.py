"""`payments-dr conflicts list|resolve` against moto tables in both regions."""

from __future__ import annotations

import argparse
import json

import pytest
from botocore.exceptions import EndpointConnectionError

from payments_dr import contract
from payments_dr.contract import ConflictStatus
from payments_dr.ops import conflicts as conflicts_command
from payments_dr.ops.aws import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, Aws
from payments_dr.service.conflicts import Conflict, ConflictStore

from .conftest import PRIMARY, SECONDARY, SESSION, STACK, Deployed


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    conflicts_command.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["conflicts", *argv])


def record(deployed: Deployed, regions: tuple[str, ...], amount: int = 1250) -> Conflict:
    """A conflict record as the archiver writes it, replicated to `regions`."""
    version = {
        contract.TABLE_HASH_KEY: {"S": "pay_" + "a" * 32},
        "merchant_id": {"S": "acme"},
        "amount": {"N": str(amount)},
        "currency": {"S": "EUR"},
        "payment_token": {"S": "tok_secret12345678"},
        "fingerprint": {"S": f"fp-{amount}"},
        "region": {"S": PRIMARY},
        "created_at": {"S": "2026-11-30T10:00:00.000Z"},
    }
    conflict = Conflict(
        payment_id="pay_" + "a" * 32,
        merchant_id="acme",
        acknowledged_by=PRIMARY,
        overwritten=version,
        stored={**version, "amount": {"N": "9900"}, "fingerprint": {"S": "fp-9900"}},
        overwritten_at="2026-11-30T10:00:01.000Z",
        detected_in=PRIMARY,
        detected_at="2026-11-30T10:00:01.400Z",
    )
    for region in regions:
        table = contract.table_name(STACK)
        assert ConflictStore(deployed.aws.client("dynamodb", region), table).record(conflict)
    return conflict


def listing_args(deployed: Deployed, *extra: str) -> argparse.Namespace:
    return parse("list", "--stack", STACK, "--outputs", str(deployed.outputs_file), *extra)


def test_lists_each_open_conflict_once_without_the_payment_token(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    conflict = record(deployed, (PRIMARY, SECONDARY))
    assert conflicts_command.run_list(listing_args(deployed, "--json"), deployed.aws) == EXIT_OK
    output = capsys.readouterr().out
    listed = json.loads(output)
    assert [c["key"] for c in listed["conflicts"]] == [conflict.key]
    assert listed["conflicts"][0]["overwritten"]["amount"] == "1250"
    assert listed["complete"] is True and "tok_" not in output


def test_resolving_closes_it_everywhere_it_replicates(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    conflict = record(deployed, (SECONDARY,))
    args = parse(
        "resolve",
        conflict.key,
        "--stack",
        STACK,
        "--outputs",
        str(deployed.outputs_file),
        "--resolution",
        "refunded  the superseded order",
        "--yes",
    )
    assert conflicts_command.run_resolve(args, deployed.aws) == EXIT_OK
    assert f"resolved {conflict.key} in {SECONDARY}" in capsys.readouterr().out
    table = contract.table_name(STACK)
    store = ConflictStore(deployed.aws.client("dynamodb", SECONDARY), table)
    assert store.list(ConflictStatus.OPEN) == []
    (resolved,) = store.list(ConflictStatus.RESOLVED)
    assert resolved.resolution == "refunded the superseded order"
    # Twice is refused: it is no longer open.
    assert conflicts_command.run_resolve(args, deployed.aws) == EXIT_ENVIRONMENT


def test_with_the_primary_unreachable_the_listing_comes_from_the_secondary(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    conflict = record(deployed, (SECONDARY,))
    down = SESSION.client("dynamodb", region_name=PRIMARY)

    def refuse(**_: object) -> None:
        raise EndpointConnectionError(endpoint_url=f"https://dynamodb.{PRIMARY}.amazonaws.com")

    down.meta.events.register("before-call", refuse)
    aws = Aws(SESSION, clients={("dynamodb", PRIMARY): down})
    assert conflicts_command.run_list(listing_args(deployed, "--json"), aws) == EXIT_FAILED
    listed = json.loads(capsys.readouterr().out)
    assert [c["key"] for c in listed["conflicts"]] == [conflict.key]
    assert set(listed["unreadable_regions"]) == {PRIMARY}


@pytest.mark.parametrize(
    ("key", "resolution", "message"),
    [
        ("pay_123", "done", "is not a conflict key"),
        (f"{contract.CONFLICT_ITEM_PREFIX}x", "   ", "--resolution must say"),
        (f"{contract.CONFLICT_ITEM_PREFIX}x", "x" * 501, "--resolution must say"),
    ],
)
def test_bad_arguments_are_refused_before_any_aws_call(
    key: str, resolution: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("resolve", key, "--stack", STACK, "--resolution", resolution)
    assert conflicts_command.run_resolve(args, aws=None) == EXIT_ENVIRONMENT
    assert message in capsys.readouterr().err
