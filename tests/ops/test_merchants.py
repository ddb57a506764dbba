"""`payments-dr merchant` against a moto-backed stack: keys issued once, stored hashed,
registered in both regions' usage plans, revoked everywhere, listed without secrets."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

import pytest
from botocore.exceptions import EndpointConnectionError

from payments_dr import contract
from payments_dr.cli import build_parser
from payments_dr.merchants import MAX_OVERLAP_MINUTES, MIN_OVERLAP_MINUTES, run_merchant
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Aws
from payments_dr.service.authorizer import build_authorizer
from payments_dr.service.config import ServiceConfig
from payments_dr.service.credentials import (
    CredentialStore,
    KeyStatus,
    MerchantRecord,
    issue_key,
    rotate_key,
)
from payments_dr.service.deps import Handler, ServiceDeps

from .conftest import PRIMARY, SECONDARY, STACK, Deployed

MERCHANT = "merchant-11"


def run(deployed: Deployed, *argv: str, aws: Any = None) -> int:
    args = build_parser().parse_args(
        ["merchant", *argv, "--stack", STACK, "--outputs", str(deployed.outputs_file)]
    )
    return run_merchant(args, aws or deployed.aws)


def issued_key(printed: str) -> str:
    return next(line for line in printed.splitlines() if line.startswith("pdr."))


def table_items(deployed: Deployed, region: str) -> list[dict[str, Any]]:
    dynamodb = deployed.aws.client("dynamodb", region)
    items: list[dict[str, Any]] = dynamodb.scan(TableName=contract.table_name(STACK))["Items"]
    return items


def plan_keys(deployed: Deployed, region: str) -> list[str]:
    """Values of the API keys in the region's usage plan."""
    apigateway = deployed.aws.client("apigateway", region)
    plan_id = deployed.outputs[contract.StackOutput.REGIONS][region][
        contract.RegionOutput.USAGE_PLAN_ID
    ]
    keys = apigateway.get_usage_plan_keys(usagePlanId=plan_id)["items"]
    return [key["value"] for key in keys]


class TableDown:
    """An Aws whose DynamoDB client in one region cannot be reached."""

    def __init__(self, aws: Aws, region: str) -> None:
        self._aws = aws
        self._region = region

    def client(self, service: str, region: str) -> Any:
        client = self._aws.client(service, region)
        if (service, region) != ("dynamodb", self._region):
            return client

        class Unreachable:
            def __getattr__(self, name: str) -> Any:
                def fail(**_: Any) -> Any:
                    raise EndpointConnectionError(endpoint_url=f"https://dynamodb.{region}")

                return fail

        return Unreachable()

    def require_credentials(self) -> None:
        self._aws.require_credentials()


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


def primary_authorizer(deployed: Deployed, clock: Callable[[], float] = time.time) -> Handler:
    """The primary region's real authorizer over the moto-backed table, on `clock`."""
    # The authorizer needs the table name only, from its environment; it reads no SSM.
    config = ServiceConfig.from_values(
        {
            contract.Param.TABLE_NAME: contract.table_name(STACK),
            contract.Param.RETRY_QUEUE_URL: "q",
            contract.Param.DLQ_URL: "d",
            contract.Param.LOG_BUCKET: "b",
            contract.Param.REGION_ROLE: contract.RegionRole.PRIMARY.value,
            contract.Param.PEER_REGION: SECONDARY,
            contract.Param.PEER_RETRY_QUEUE_URL: "https://sqs.peer.amazonaws.com/0/unused",
        }
    )
    deps = ServiceDeps(
        region=PRIMARY,
        ssm_path=contract.ssm_path(STACK, PRIMARY),
        config=config,
        dynamodb=deployed.aws.client("dynamodb", PRIMARY),
        clock=clock,
    )
    return build_authorizer(deps)


def verdict(authorize: Handler, key: str) -> dict[str, Any]:
    event = {
        "methodArn": f"arn:aws:execute-api:{PRIMARY}:123456789012:api1/live/POST/v1/payments",
        "headers": {contract.AUTH_HEADER: f"{contract.AUTH_SCHEME} {key}"},
    }
    return authorize(event, None)


def effect(answer: dict[str, Any]) -> str:
    return str(answer["policyDocument"]["Statement"][0]["Effect"])


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


# --- rotate --------------------------------------------------------------------------------


def stored(deployed: Deployed, region: str = PRIMARY) -> MerchantRecord | None:
    dynamodb = deployed.aws.client("dynamodb", region)
    return CredentialStore(dynamodb, contract.table_name(STACK)).get(MERCHANT)


def secret_of(key: str) -> str:
    return key.rsplit(".", 1)[1]


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
def test_an_overlap_out_of_bounds_is_refused_before_anything_is_written(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], minutes: int
) -> None:
    run(deployed, "create", MERCHANT)
    before = table_items(deployed, PRIMARY)
    capsys.readouterr()
    assert run(deployed, "rotate", MERCHANT, f"--overlap-minutes={minutes}") == EXIT_REFUSED
    error = capsys.readouterr().err
    assert f"between {MIN_OVERLAP_MINUTES} and {MAX_OVERLAP_MINUTES}" in error
    assert f"not {minutes}" in error
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
