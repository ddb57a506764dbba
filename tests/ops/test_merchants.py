"""`payments-dr merchant` against a moto-backed stack: keys issued once, stored hashed,
registered in both regions' usage plans, revoked everywhere, listed without secrets."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, ClassVar

import pytest
from botocore.exceptions import EndpointConnectionError

from payments_dr import contract
from payments_dr.cli import build_parser
from payments_dr.merchants_cli import run_merchant
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from payments_dr.service.credentials import (
    CredentialStore,
    KeyStatus,
    issue_key,
)

from .conftest import PRIMARY, SECONDARY, STACK, Deployed
from .merchant_helpers import (
    MERCHANT,
    TableDown,
    effect,
    issued_key,
    plan_keys,
    primary_authorizer,
    run,
    table_items,
    verdict,
)


def test_create_prints_the_key_once_stores_its_hash_and_registers_usage_keys(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(deployed, "create", MERCHANT) == EXIT_OK
    printed = capsys.readouterr()
    key = issued_key(printed.out)
    secret = key.rsplit(".", 1)[1]
    assert printed.out.count(secret) == 1
    assert secret not in printed.err
    stored = json.dumps(table_items(deployed, PRIMARY))
    assert secret not in stored
    record = CredentialStore(
        deployed.aws.client("dynamodb", PRIMARY), contract.table_name(STACK)
    ).get(MERCHANT)
    assert record is not None and record.status is KeyStatus.ACTIVE
    for region in (PRIMARY, SECONDARY):
        assert plan_keys(deployed, region) == [record.usage_key]
        ssm = deployed.aws.client("ssm", region)
        parameters = ssm.get_parameters_by_path(Path=f"/{contract.PROJECT}", Recursive=True)
        assert secret not in json.dumps(parameters["Parameters"], default=str)


def test_the_issued_key_passes_the_authorizer(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run(deployed, "create", MERCHANT)
    key = issued_key(capsys.readouterr().out)
    answer = verdict(primary_authorizer(deployed), key)
    assert effect(answer) == "Allow"
    assert answer["usageIdentifierKey"] in plan_keys(deployed, PRIMARY)


def test_a_second_create_is_refused_until_revoked(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(deployed, "create", MERCHANT) == EXIT_OK
    assert run(deployed, "create", MERCHANT) == EXIT_REFUSED
    assert "already has an active key" in capsys.readouterr().err
    assert run(deployed, "revoke", MERCHANT) == EXIT_OK
    assert run(deployed, "create", MERCHANT) == EXIT_OK
    for region in (PRIMARY, SECONDARY):
        assert len(plan_keys(deployed, region)) == 1  # only the new key's usage key


@pytest.fixture()
def stages(deployed: Deployed) -> dict[str, list[dict[str, Any]]]:
    """Each region's usage plan on a stage, and every authorizer-cache flush sent there.

    moto has no FlushStageAuthorizersCache: a before-call hook answers it, as botocore lets
    a handler do, and records the call."""
    flushes: dict[str, list[dict[str, Any]]] = {}
    for region in (PRIMARY, SECONDARY):
        apigateway = deployed.aws.client("apigateway", region)
        api_id = apigateway.create_rest_api(name=f"payments-{region}")["id"]
        plan_id = deployed.outputs[contract.StackOutput.REGIONS][region][
            contract.RegionOutput.USAGE_PLAN_ID
        ]
        apigateway.update_usage_plan(
            usagePlanId=plan_id,
            patchOperations=[
                {"op": "add", "path": "/apiStages", "value": f"{api_id}:{contract.API_STAGE}"}
            ],
        )
        calls = flushes.setdefault(region, [])

        def flush(params: dict[str, Any], calls: list[dict[str, Any]] = calls, **_: Any) -> Any:
            calls.append(params)
            return FlushAnswer(), {}

        apigateway.meta.events.register("before-call.api-gateway.FlushStageAuthorizersCache", flush)
    return flushes


class FlushAnswer:
    """The HTTP side of the answer botocore takes from a before-call handler."""

    status_code = 202
    headers: ClassVar[dict[str, str]] = {}


def test_revoke_marks_the_record_and_empties_both_usage_plans(
    deployed: Deployed,
    capsys: pytest.CaptureFixture[str],
    stages: dict[str, list[dict[str, Any]]],
) -> None:
    run(deployed, "create", MERCHANT)
    assert run(deployed, "revoke", MERCHANT) == EXIT_OK
    assert "every region refuses them at once" in capsys.readouterr().out
    # Both stages forget their cached verdicts: the revoked key is not admitted from a cache.
    for region in (PRIMARY, SECONDARY):
        (call,) = stages[region]
        assert call["url_path"].endswith(f"/stages/{contract.API_STAGE}/cache/authorizers")
        assert call["method"] == "DELETE"
    record = CredentialStore(
        deployed.aws.client("dynamodb", PRIMARY), contract.table_name(STACK)
    ).get(MERCHANT)
    assert record is not None and record.status is KeyStatus.REVOKED
    assert record.revoked_at is not None
    assert plan_keys(deployed, PRIMARY) == plan_keys(deployed, SECONDARY) == []
    assert run(deployed, "revoke", "merchant-unknown") == EXIT_REFUSED


def test_a_cache_that_cannot_be_flushed_is_named_and_fails_the_command(
    deployed: Deployed,
    capsys: pytest.CaptureFixture[str],
    stages: dict[str, list[dict[str, Any]]],
) -> None:
    run(deployed, "create", MERCHANT)

    def refuse(**_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url=f"https://apigateway.{SECONDARY}")

    deployed.aws.client("apigateway", SECONDARY).meta.events.register_first(
        "before-call.api-gateway.FlushStageAuthorizersCache", refuse
    )
    assert run(deployed, "revoke", MERCHANT) == EXIT_FAILED
    captured = capsys.readouterr()
    assert f"authorizer cache in {SECONDARY} not flushed" in captured.err
    assert f"within {contract.AUTHORIZER_CACHE_TTL_SECONDS} s" in captured.out
    assert len(stages[PRIMARY]) == 1  # the other region was still flushed


def test_list_shows_merchants_without_secrets_or_hashes(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run(deployed, "create", MERCHANT)
    run(deployed, "create", "merchant-12")
    run(deployed, "revoke", "merchant-12")
    keys = [issued_key(line) for line in capsys.readouterr().out.split("API key") if "pdr." in line]
    assert run(deployed, "list", "--json") == EXIT_OK
    listed = capsys.readouterr().out
    rows = json.loads(listed)
    assert [(row["merchant_id"], row["status"]) for row in rows] == [
        (MERCHANT, "active"),
        ("merchant-12", "revoked"),
    ]
    records = [json.dumps(item) for item in table_items(deployed, PRIMARY)]
    for key in keys:
        assert key.rsplit(".", 1)[1] not in listed
    assert not any(
        item_hash in listed
        for record in records
        for item_hash in json.loads(record).get("secret_sha256", {}).values()
    )
    assert run(deployed, "list") == EXIT_OK
    table = capsys.readouterr().out
    assert MERCHANT in table and "revoked" in table


def test_create_writes_through_the_secondary_when_the_primary_table_is_down(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    aws = TableDown(deployed.aws, PRIMARY)
    assert run(deployed, "create", MERCHANT, aws=aws) == EXIT_OK
    printed = capsys.readouterr()
    assert f"written through {SECONDARY}" in printed.err
    secondary = CredentialStore(
        deployed.aws.client("dynamodb", SECONDARY), contract.table_name(STACK)
    )
    assert secondary.get(MERCHANT) is not None
    assert table_items(deployed, PRIMARY) == []  # moto's tables do not replicate


def test_an_unreachable_usage_plan_is_reported_and_sync_repairs_it(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    class PlanDown(TableDown):
        def client(self, service: str, region: str) -> Any:
            if (service, region) == ("apigateway", SECONDARY):
                return TableDown(self._aws, region).client("dynamodb", region)
            return self._aws.client(service, region)

    assert run(deployed, "create", MERCHANT, aws=PlanDown(deployed.aws, SECONDARY)) == EXIT_FAILED
    printed = capsys.readouterr()
    assert f"usage plan in {SECONDARY} not updated" in printed.err
    assert issued_key(printed.out)  # the key works where the plan has it: still shown
    assert plan_keys(deployed, SECONDARY) == []
    assert run(deployed, "sync") == EXIT_OK
    assert plan_keys(deployed, SECONDARY) == plan_keys(deployed, PRIMARY) != []


def test_an_invalid_merchant_id_is_a_usage_error(deployed: Deployed) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(deployed, "create", "bad id!")
    assert exit_.value.code == 2
    assert table_items(deployed, PRIMARY) == []


def test_the_cli_registers_every_merchant_action() -> None:
    parser = build_parser()
    for action in ("create", "rotate", "revoke", "list", "sync"):
        extra = ["m-1"] if action in ("create", "rotate", "revoke") else []
        args = parser.parse_args(["merchant", action, *extra, "--stack", "s"])
        assert isinstance(args, argparse.Namespace) and args.run is run_merchant


def test_revoke_goes_through_the_secondary_when_the_primary_table_is_down(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(deployed, "create", MERCHANT) == EXIT_OK
    secondary = deployed.aws.client("dynamodb", SECONDARY)
    for item in table_items(deployed, PRIMARY):  # what replication would have done
        secondary.put_item(TableName=contract.table_name(STACK), Item=item)
    capsys.readouterr()

    assert run(deployed, "revoke", MERCHANT, aws=TableDown(deployed.aws, PRIMARY)) == EXIT_OK

    printed = capsys.readouterr()
    assert f"written through {SECONDARY}" in printed.err
    record = CredentialStore(secondary, contract.table_name(STACK)).get(MERCHANT)
    assert record is not None and record.status is KeyStatus.REVOKED
    assert plan_keys(deployed, PRIMARY) == plan_keys(deployed, SECONDARY) == []
    assert "revoked" in printed.out


@pytest.mark.parametrize("max_age_days", [90, None], ids=["from-outputs", "older-stack"])
def test_list_shows_each_keys_age_and_flags_active_keys_past_the_alarms_maximum(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], max_age_days: int | None
) -> None:
    """Keys nobody uses never reach the authorizer's metric: `list` shows them too."""
    if max_age_days is not None:
        outputs = {**deployed.outputs, contract.StackOutput.MERCHANT_KEY_MAX_AGE_DAYS: max_age_days}
        deployed.outputs_file.write_text(json.dumps(outputs))
    store = CredentialStore(deployed.aws.client("dynamodb", PRIMARY), contract.table_name(STACK))
    day, now = 86_400, time.time()
    ages = {"merchant-old": 120, "merchant-new": 10, "merchant-gone": 200}
    for merchant, age in ages.items():
        store.create(issue_key(merchant, now - age * day).record)
    store.revoke("merchant-gone", now)

    assert run(deployed, "list", "--json") == EXIT_OK
    rows = {row["merchant_id"]: row for row in json.loads(capsys.readouterr().out)}
    for merchant, age in ages.items():
        assert rows[merchant]["key_age_days"] == pytest.approx(age, abs=0.1)
    flagged = {merchant for merchant, row in rows.items() if row["over_max_age"]}
    # A revoked key admits nobody: nothing to rotate.
    assert flagged == ({"merchant-old"} if max_age_days else set())

    assert run(deployed, "list") == EXIT_OK
    table = capsys.readouterr().out
    old_line = next(line for line in table.splitlines() if line.startswith("merchant-old"))
    assert ("120.0!" in old_line) is (max_age_days is not None)
    summary = "1 active key(s) older than 90 days (merchantKeyMaxAgeDays)"
    assert (summary in table) is (max_age_days is not None)
