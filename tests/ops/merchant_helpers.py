"""What the `payments-dr merchant` tests share: running the command, reading the stored
records and usage plans, and asking the primary's authorizer about a key."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import EndpointConnectionError

from payments_dr import contract
from payments_dr.cli import build_parser
from payments_dr.merchants_cli import WRITES, run_merchant
from payments_dr.ops.aws import Aws
from payments_dr.service.authorizer import build_authorizer
from payments_dr.service.config import ServiceConfig
from payments_dr.service.credentials import (
    CredentialStore,
    MerchantRecord,
)
from payments_dr.service.deps import Handler, ServiceDeps

from .conftest import PRIMARY, SECONDARY, STACK, Deployed

MERCHANT = "merchant-11"


def run(deployed: Deployed, *argv: str, aws: Any = None) -> int:
    """`payments-dr merchant ARGV`; a write confirmed with --yes, as a script must."""
    confirmed = ["--yes"] if argv[0] in WRITES else []
    args = build_parser().parse_args(
        ["merchant", *argv, "--stack", STACK, "--outputs", str(deployed.outputs_file), *confirmed]
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


def stored(deployed: Deployed, region: str = PRIMARY) -> MerchantRecord | None:
    dynamodb = deployed.aws.client("dynamodb", region)
    return CredentialStore(dynamodb, contract.table_name(STACK)).get(MERCHANT)


def secret_of(key: str) -> str:
    return key.rsplit(".", 1)[1]
