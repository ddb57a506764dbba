"""Keyed ids: every id, fingerprint and log digest depends on the stack's id secret, the same
secret gives the same id in both regions, and a cold start without the secret fails."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from payments_dr import contract
from payments_dr.service import model
from payments_dr.service.api import build_api_handler
from payments_dr.service.config import ConfigUnavailable
from payments_dr.service.deps import ServiceDeps
from payments_dr.service.id_secret import IdKeyUnavailable, read_id_key
from payments_dr.service.model import IdKey, parse_payment_request
from payments_dr.service.observability import logger
from payments_dr.service.retry_worker import build_retry_worker

from .conftest import ID_KEY, MERCHANT, SESSION, STACK, VALID_REQUEST, Region

SECRET = "a-64-character-secret-of-letters-and-digits-0123456789ABCDEFGHIJ"
IDEMPOTENCY_KEY = "key-00001"


def request() -> model.PaymentRequest:
    return parse_payment_request(json.dumps(VALID_REQUEST), merchant_id=MERCHANT)


def test_ids_depend_on_the_secret() -> None:
    other = IdKey(SECRET.replace("a", "b"))
    assert ID_KEY.payment_id(MERCHANT, IDEMPOTENCY_KEY) != other.payment_id(
        MERCHANT, IDEMPOTENCY_KEY
    )
    assert ID_KEY.fingerprint(request()) != other.fingerprint(request())
    assert ID_KEY.log_digest(IDEMPOTENCY_KEY) != other.log_digest(IDEMPOTENCY_KEY)


def test_the_same_secret_gives_the_same_id_in_both_regions() -> None:
    # Each region builds its own IdKey from its own copy of the replicated secret.
    primary, secondary = IdKey(SECRET), IdKey(SECRET)
    assert primary.payment_id(MERCHANT, IDEMPOTENCY_KEY) == secondary.payment_id(
        MERCHANT, IDEMPOTENCY_KEY
    )
    made = [
        model.new_payment(request(), IDEMPOTENCY_KEY, region, 1.0, key)
        for region, key in (("us-east-1", primary), ("us-east-2", secondary))
    ]
    assert made[0].id == made[1].id and made[0].fingerprint == made[1].fingerprint


def test_no_value_equals_an_unkeyed_sha256() -> None:
    """The old values, reversible offline for a guessable key or token, are gone."""
    unkeyed_id = hashlib.sha256(f"{MERCHANT}\n{IDEMPOTENCY_KEY}".encode()).hexdigest()
    unkeyed_fingerprint = hashlib.sha256(request().canonical().encode()).hexdigest()
    unkeyed_log = hashlib.sha256(IDEMPOTENCY_KEY.encode()).hexdigest()
    assert ID_KEY.payment_id(MERCHANT, IDEMPOTENCY_KEY) != f"pay_{unkeyed_id[:32]}"
    assert ID_KEY.fingerprint(request()) != unkeyed_fingerprint
    assert ID_KEY.log_digest(IDEMPOTENCY_KEY) != unkeyed_log[:12]


def test_digests_of_different_purposes_never_coincide() -> None:
    # The log digest of a key and the id's digest must not be comparable.
    assert ID_KEY.log_digest(IDEMPOTENCY_KEY) not in ID_KEY.payment_id(MERCHANT, IDEMPOTENCY_KEY)


def test_the_secret_stays_out_of_repr_and_short_secrets_are_refused() -> None:
    assert SECRET not in repr(IdKey(SECRET)) and SECRET not in str(IdKey(SECRET))
    with pytest.raises(ValueError, match="at least 32 characters"):
        IdKey("x" * 31)


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the service logger writes at ERROR, as the function would log it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


@pytest.fixture
def secretsmanager():  # type: ignore[no-untyped-def]
    with mock_aws():
        yield SESSION.client("secretsmanager", region_name="us-east-2")


def test_the_secret_is_read_from_the_callers_region(secretsmanager) -> None:  # type: ignore[no-untyped-def]
    name = contract.id_secret_name(STACK)
    secretsmanager.create_secret(Name=name, SecretString=SECRET)
    key = read_id_key(secretsmanager, name)
    assert key.payment_id(MERCHANT, IDEMPOTENCY_KEY) == IdKey(SECRET).payment_id(
        MERCHANT, IDEMPOTENCY_KEY
    )


def test_a_replica_serves_the_same_key_with_the_primary_region_gone() -> None:
    """The secondary reads its replica: nothing in us-east-1 is called."""
    with mock_aws():
        name = contract.id_secret_name(STACK)
        primary = SESSION.client("secretsmanager", region_name="us-east-1")
        primary.create_secret(
            Name=name, SecretString=SECRET, AddReplicaRegions=[{"Region": "us-east-2"}]
        )
        secondary = SESSION.client("secretsmanager", region_name="us-east-2")
        calls: list[str] = []
        primary.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
        key = read_id_key(secondary, name)
        assert calls == []
        assert key.payment_id(MERCHANT, IDEMPOTENCY_KEY) == read_id_key(primary, name).payment_id(
            MERCHANT, IDEMPOTENCY_KEY
        )


@pytest.mark.parametrize("case", ["missing", "too-short", "binary"])
def test_an_unusable_secret_fails_the_cold_start_with_a_clear_log_line(
    secretsmanager, case: str, log_output: io.StringIO
) -> None:  # type: ignore[no-untyped-def]
    name = contract.id_secret_name(STACK)
    if case == "too-short":
        secretsmanager.create_secret(Name=name, SecretString="short-secret")
    elif case == "binary":
        secretsmanager.create_secret(Name=name, SecretBinary=SECRET.encode())
    with pytest.raises(IdKeyUnavailable, match=name):
        read_id_key(secretsmanager, name)
    logged = log_output.getvalue()
    assert "payment id secret unreadable" in logged
    assert "short-secret" not in logged and SECRET not in logged


def test_access_denied_fails_the_cold_start() -> None:
    class Denied:
        def get_secret_value(self, **_: str) -> dict[str, str]:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "denied"}},
                "GetSecretValue",
            )

    with pytest.raises(IdKeyUnavailable, match="AccessDeniedException"):
        read_id_key(Denied(), "any")


def test_the_functions_cold_start_reads_the_secret_named_in_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = {
        "AWS_REGION": "us-east-2",
        contract.ENV_SSM_PATH: contract.ssm_path(STACK, "us-east-2"),
        **{
            contract.param_env_var(param): f"value-of-{param.value}"
            for param in contract.DEPLOY_TIME_PARAMS
        },
        contract.param_env_var(contract.Param.REGION_ROLE): "secondary",
    }
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    with mock_aws():
        name = contract.id_secret_name(STACK)
        boto3.client("secretsmanager", region_name="us-east-2").create_secret(
            Name=name, SecretString=SECRET
        )
        monkeypatch.delenv(contract.ENV_ID_SECRET_ID, raising=False)
        with pytest.raises(ConfigUnavailable, match=contract.ENV_ID_SECRET_ID):
            ServiceDeps.from_environment(("dynamodb",), id_key=True)
        monkeypatch.setenv(contract.ENV_ID_SECRET_ID, name)
        deps = ServiceDeps.from_environment(("dynamodb",), id_key=True)
        assert deps.require_id_key().payment_id(MERCHANT, IDEMPOTENCY_KEY) == IdKey(
            SECRET
        ).payment_id(MERCHANT, IDEMPOTENCY_KEY)
        monkeypatch.setenv(contract.ENV_ID_SECRET_ID, "no-such-secret")
        with pytest.raises(IdKeyUnavailable, match="ResourceNotFoundException"):
            ServiceDeps.from_environment(("dynamodb",), id_key=True)


def test_no_handler_that_makes_ids_is_built_without_the_key(region: Region) -> None:
    unkeyed = dataclasses.replace(region.deps, id_key=None)
    for build in (build_api_handler, build_retry_worker):
        with pytest.raises(ConfigUnavailable, match="no payment id key"):
            build(unkeyed)
