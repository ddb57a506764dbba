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

import pytest

from payments_dr import contract
from payments_dr.service import api, authorizer, log_archiver, retry_worker
from payments_dr.service.artifact import build_artifact
from payments_dr.service.credentials import CredentialStore, issue_key
from payments_dr.service.deps import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
    ServiceDeps,
)

from .conftest import STACK, VALID_REQUEST, Region, api_event, function_environment, post_event

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
import aws_lambda_powertools, payments_dr, wrapt.__wrapt__
for name in {HANDLER_MODULES!r}:
    assert callable(__import__(name, fromlist=["handler"]).handler), name
for module in (aws_lambda_powertools, payments_dr):
    assert module.__file__.startswith({str(task_root)!r}), module.__file__
assert not wrapt.__wrapt__._using_c_extension
print("ok")
"""
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "AWS_REGION": "us-east-1"}
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
