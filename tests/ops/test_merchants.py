"""`payments-dr merchant` against a moto-backed stack: keys issued once, stored hashed,
registered in both regions' usage plans, revoked everywhere, listed without secrets."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from payments_dr import contract
from payments_dr.cli import build_parser
from payments_dr.merchants import run_merchant
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Aws
from payments_dr.service.authorizer import build_authorizer
from payments_dr.service.credentials import CredentialStore, KeyStatus
from payments_dr.service.deps import ServiceDeps

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


def test_the_issued_key_passes_the_authorizer(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run(deployed, "create", MERCHANT)
    key = issued_key(capsys.readouterr().out)
    ssm = deployed.aws.client("ssm", PRIMARY)
    ssm.put_parameter(
        Name=contract.ssm_parameter_name(STACK, PRIMARY, contract.Param.TABLE_NAME),
        Value=contract.table_name(STACK),
        Type="String",
    )
    deps = ServiceDeps(
        region=PRIMARY,
        ssm_path=contract.ssm_path(STACK, PRIMARY),
        ssm=ssm,
        dynamodb=deployed.aws.client("dynamodb", PRIMARY),
    )
    # The authorizer needs the table name only; the rest of the configuration is seeded too.
    for param, value in {
        contract.Param.RETRY_QUEUE_URL: "q",
        contract.Param.DLQ_URL: "d",
        contract.Param.LOG_BUCKET: "b",
        contract.Param.REGION_ROLE: contract.RegionRole.PRIMARY.value,
        contract.Param.PEER_REGION: SECONDARY,
    }.items():
        ssm.put_parameter(
            Name=contract.ssm_parameter_name(STACK, PRIMARY, param), Value=value, Type="String"
        )
    event = {
        "methodArn": f"arn:aws:execute-api:{PRIMARY}:123456789012:api1/live/POST/v1/payments",
        "headers": {contract.AUTH_HEADER: f"{contract.AUTH_SCHEME} {key}"},
    }
    verdict = build_authorizer(deps)(event, None)
    assert verdict["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert verdict["usageIdentifierKey"] in plan_keys(deployed, PRIMARY)


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


def test_revoke_marks_the_record_and_empties_both_usage_plans(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run(deployed, "create", MERCHANT)
    assert run(deployed, "revoke", MERCHANT) == EXIT_OK
    assert f"within {contract.AUTHORIZER_CACHE_TTL_SECONDS} s" in capsys.readouterr().out
    record = CredentialStore(
        deployed.aws.client("dynamodb", PRIMARY), contract.table_name(STACK)
    ).get(MERCHANT)
    assert record is not None and record.status is KeyStatus.REVOKED
    assert record.revoked_at is not None
    assert plan_keys(deployed, PRIMARY) == plan_keys(deployed, SECONDARY) == []
    assert run(deployed, "revoke", "merchant-unknown") == EXIT_REFUSED


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


def test_invalid_merchant_ids_are_refused(deployed: Deployed) -> None:
    assert run(deployed, "create", "bad id!") == EXIT_REFUSED
    assert table_items(deployed, PRIMARY) == []


def test_the_cli_registers_every_merchant_action() -> None:
    parser = build_parser()
    for action in ("create", "revoke", "list", "sync"):
        extra = ["m-1"] if action in ("create", "revoke") else []
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
