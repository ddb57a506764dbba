"""The Lambda entry points: deps from the environment, and the artifact as Lambda sees it."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.service import api, authorizer, log_archiver, retry_message, retry_worker
from payments_dr.service import deps as deps_module
from payments_dr.service.artifact import build_artifact
from payments_dr.service.credentials import CredentialStore, issue_key
from payments_dr.service.deps import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
    ServiceDeps,
)
from payments_dr.service.model import new_payment, parse_payment_request
from payments_dr.service.store import Attr, to_item

from .conftest import (
    ID_KEY,
    MERCHANT,
    STACK,
    VALID_REQUEST,
    Region,
    api_event,
    function_environment,
    post_event,
    sqs_event,
)

HANDLER_MODULES = [settings.handler.rsplit(".", 1)[0] for settings in contract.FUNCTIONS.values()]


@dataclass
class FakeLambdaContext:
    function_name: str = "payments-dr-test-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:payments-dr-test-api"
    )
    aws_request_id: str = "req-1"


@pytest.fixture
def lambda_environment(region: Region, monkeypatch: pytest.MonkeyPatch) -> Iterator[Region]:
    monkeypatch.setenv("AWS_REGION", region.name)
    monkeypatch.setenv(contract.ENV_SSM_PATH, contract.ssm_path(STACK, region.name))
    for name, value in function_environment(region).items():
        monkeypatch.setenv(name, value)
    # Real time here: no random delay before the first `mode` read (test_config covers it).
    monkeypatch.setenv(contract.ENV_MODE_READ_SPREAD_SECONDS, "0")
    entry_points = (api, retry_worker, log_archiver)
    for module in entry_points:
        module._handler_from_environment.cache_clear()
    authorizer._authorizer_from_environment.cache_clear()
    yield region
    for module in entry_points:
        module._handler_from_environment.cache_clear()
    authorizer._authorizer_from_environment.cache_clear()


def test_api_entry_point_serves_payments_from_environment_config(
    lambda_environment: Region,
) -> None:
    response = api.handler(post_event(VALID_REQUEST), FakeLambdaContext())
    assert response["statusCode"] == 201
    assert json.loads(response["body"])["region"] == lambda_environment.name
    health = api.handler(api_event("GET", contract.HEALTH_PATH), FakeLambdaContext())
    assert health["statusCode"] == 200
    assert len(lambda_environment.items()) == 1


def test_worker_and_archiver_entry_points_accept_empty_batches(
    lambda_environment: Region,
) -> None:
    assert retry_worker.handler({"Records": []}, FakeLambdaContext()) == {"batchItemFailures": []}
    assert log_archiver.handler({"Records": []}, FakeLambdaContext()) == {
        "batchItemFailures": [],
        "archived": 0,
    }


def test_authorizer_entry_point_admits_a_stored_key(lambda_environment: Region) -> None:
    issued = issue_key("merchant-42", lambda_environment.clock())
    CredentialStore(lambda_environment.dynamodb, lambda_environment.table_name).create(
        issued.record
    )
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1/live/POST/v1/payments",
        "headers": {contract.AUTH_HEADER: f"{contract.AUTH_SCHEME} {issued.api_key}"},
    }
    verdict = authorizer.handler(event, FakeLambdaContext())
    assert verdict["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert verdict["context"] == {contract.AUTH_CONTEXT_MERCHANT_ID: "merchant-42"}


def test_contract_handlers_name_the_entry_points() -> None:
    for settings in contract.FUNCTIONS.values():
        module_name, function_name = settings.handler.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module_name), function_name))


def test_artifact_imports_every_handler_on_its_own(tmp_path: Path) -> None:
    """Unpacked like /var/task: the zip's own Powertools, no bytecode, boto3 from outside."""
    task_root = tmp_path / "task"
    with zipfile.ZipFile(build_artifact(tmp_path)) as archive:
        archive.extractall(task_root)
    probe = f"""
import sys
sys.path[:0] = [{str(task_root)!r}]
sys.path.append({sysconfig.get_paths()["purelib"]!r})  # botocore, as the runtime provides it
import aws_lambda_powertools, payments_dr, wrapt, wrapt.wrappers
for name in {HANDLER_MODULES!r}:
    assert callable(__import__(name, fromlist=["handler"]).handler), name
for module in (aws_lambda_powertools, payments_dr):
    assert module.__file__.startswith({str(task_root)!r}), module.__file__
assert wrapt.ObjectProxy is wrapt.wrappers.ObjectProxy  # pure Python, no extension
# Nothing on a handler's import path uses asyncio; loading it cost every cold start ~17 ms.
assert "asyncio" not in sys.modules, "a handler's import loaded asyncio"
assert "aws_xray_sdk.ext.botocore.patch" in sys.modules  # the Tracer patched botocore
print("ok")
"""
    environment = {
        **{
            name: value for name, value in os.environ.items() if name != "POWERTOOLS_TRACE_DISABLED"
        },
        # As in Lambda: the Tracer is on and patches botocore at import.
        "AWS_LAMBDA_FUNCTION_NAME": "payments-dr-test-api",
        "LAMBDA_TASK_ROOT": str(task_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": "us-east-1",
    }
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_environment_clients_have_short_timeouts_and_bounded_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    monkeypatch.setenv(contract.ENV_SSM_PATH, contract.ssm_path(STACK, "us-east-2"))
    for name in (contract.param_env_var(param) for param in contract.DEPLOY_TIME_PARAMS):
        monkeypatch.setenv(name, "https://example.com/x" if "URL" in name else "primary")
    deps = ServiceDeps.from_environment(services=("dynamodb", "ssm"))
    assert deps.region == "us-east-2"
    assert deps.sqs is None and deps.s3 is None
    for client in (deps.dynamodb, deps.ssm):
        config = client.meta.config
        assert client.meta.region_name == "us-east-2"
        assert (config.connect_timeout, config.read_timeout) == (
            CONNECT_TIMEOUT_SECONDS,
            READ_TIMEOUT_SECONDS,
        )
        assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}


def test_each_entry_point_builds_only_the_clients_every_invocation_uses(
    lambda_environment: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client costs every cold start its model and endpoint rules; rare paths make theirs."""
    built: list[str] = []
    real_create_client = deps_module.create_client

    def record(session: Any, service: str, region: str, endpoint_url: str | None = None) -> Any:
        built.append(service)
        return real_create_client(session, service, region, endpoint_url)

    monkeypatch.setattr(deps_module, "create_client", record)
    expected = {
        # Secrets Manager: the id secret, read once per cold start by the functions that make ids.
        api._handler_from_environment: ["dynamodb", "secretsmanager", "ssm"],
        retry_worker._handler_from_environment: ["dynamodb", "secretsmanager"],
        log_archiver._handler_from_environment: ["s3"],
        authorizer._authorizer_from_environment: ["dynamodb"],
    }
    for build, services in expected.items():
        built.clear()
        build()
        assert sorted(built) == services, build.__module__


def test_a_client_made_on_first_use_shares_the_session_and_settings(
    lambda_environment: Region,
) -> None:
    deps = ServiceDeps.from_environment(services=("dynamodb",))
    assert deps.sqs is None and deps.session is not None
    sqs = deps.client("sqs")
    assert deps.client("sqs") is sqs is deps.sqs
    assert deps.client("dynamodb") is deps.dynamodb  # a client already made is kept
    assert sqs.meta.region_name == lambda_environment.name
    assert (sqs.meta.config.connect_timeout, sqs.meta.config.read_timeout) == (
        CONNECT_TIMEOUT_SECONDS,
        READ_TIMEOUT_SECONDS,
    )


def test_the_worker_entry_point_parks_a_conflict_through_a_client_made_on_first_use(
    lambda_environment: Region,
) -> None:
    region = lambda_environment
    key = "key-0002-abcd"
    api_handler = api.build_api_handler(region.deps)
    assert (
        api_handler(post_event({**VALID_REQUEST, "amount": 5}, key=key), None)["statusCode"] == 201
    )
    queued = new_payment(
        parse_payment_request(json.dumps(VALID_REQUEST), merchant_id=MERCHANT),
        key,
        region.name,
        1.0,
        ID_KEY,
    )
    region.sqs.send_message(QueueUrl=region.queue_url, MessageBody=retry_message.encode(queued))
    messages = region.sqs.receive_message(QueueUrl=region.queue_url, AttributeNames=["All"])
    event = sqs_event(messages["Messages"], "arn:aws:sqs:us-east-1:123456789012:q", region.name)
    assert retry_worker.handler(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert region.queue_depth(region.dlq_url) == 1


def test_the_archiver_entry_point_records_a_conflict_through_a_client_made_on_first_use(
    lambda_environment: Region,
) -> None:
    region = lambda_environment
    acknowledged = to_item(
        new_payment(
            parse_payment_request(json.dumps(VALID_REQUEST), merchant_id=MERCHANT),
            "key-0003-abcd",
            region.name,
            1.0,
            ID_KEY,
        )
    )
    overwriting = {
        **acknowledged,
        Attr.AMOUNT.value: {"N": "5"},
        Attr.REGION.value: {"S": contract.DEFAULT_SECONDARY_REGION},
        Attr.FINGERPRINT.value: {"S": "0" * 64},
    }
    record = {
        "eventID": "1",
        "eventName": "MODIFY",
        "eventSource": "aws:dynamodb",
        "awsRegion": region.name,
        "dynamodb": {
            "ApproximateCreationDateTime": 1_764_100_000.0,
            "Keys": {contract.TABLE_HASH_KEY: acknowledged[contract.TABLE_HASH_KEY]},
            "OldImage": acknowledged,
            "NewImage": overwriting,
            "SequenceNumber": "100",
            "SizeBytes": 300,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    result = log_archiver.handler({"Records": [record]}, FakeLambdaContext())
    assert result["archived"] == 1
    (stored,) = region.items()  # the conflict record, made with the table client
    assert stored[contract.TABLE_HASH_KEY]["S"].startswith("conflict#")


def test_authorizer_entry_point_flushes_the_key_age_metric(
    lambda_environment: Region,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`log_metrics` flushes what the authorizer measured as one EMF record per invocation."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    issued_days_ago = 100
    issued = issue_key("merchant-43", time.time() - issued_days_ago * 86_400)
    CredentialStore(lambda_environment.dynamodb, lambda_environment.table_name).create(
        issued.record
    )
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1/live/POST/v1/payments",
        "headers": {contract.AUTH_HEADER: f"{contract.AUTH_SCHEME} {issued.api_key}"},
    }
    capsys.readouterr()
    authorizer.handler(event, FakeLambdaContext())
    printed = capsys.readouterr().out
    (record,) = [
        json.loads(line)
        for line in printed.splitlines()
        if contract.MERCHANT_KEY_AGE_METRIC in line
    ]
    (age,) = record[contract.MERCHANT_KEY_AGE_METRIC]
    assert age == pytest.approx(issued_days_ago, abs=0.01)  # 0.01 day: 14 min of test time
    assert issued.api_key.rsplit(".", 1)[1] not in printed
