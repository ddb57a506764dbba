"""The lab's API, fuzzed from the OpenAPI document: no 5xx, answers conform to the schema."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from payments_dr.contract import ConsistencyMode
from payments_dr.lab.lab import Lab
from payments_dr.service.openapi import load_openapi

from .helpers import bearer, enrol, lab_settings

schema = schemathesis.openapi.from_dict(load_openapi())
UNREACHABLE_RATE = 100_000  # requests per second
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    # Real time: nothing time-dependent is under test, and health checks stay rare.
    settings = lab_settings(ConsistencyMode.EVENTUAL, time_scale=1.0)
    # Fuzzing is not load: limits no single client reaches, so every answer comes from past
    # the gateway's throttle (tested on its own in test_throttling.py).
    unthrottled = dataclasses.replace(
        settings.config,
        api_throttle_rate_limit=UNREACHABLE_RATE,
        api_throttle_burst_limit=UNREACHABLE_RATE,
        merchant_throttle_rate_limit=UNREACHABLE_RATE,
        merchant_throttle_burst_limit=UNREACHABLE_RATE,
    )
    with Lab(dataclasses.replace(settings, config=unthrottled)) as running:
        yield running


@pytest.fixture(scope="module")
def api_key(lab: Lab) -> str:
    return enrol(lab)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_failover_endpoint_conforms_to_the_openapi_document(
    case: schemathesis.Case, lab: Lab, api_key: str
) -> None:
    """Authenticated, so the fuzzing reaches the API behind the authorizer."""
    case.call_and_validate(base_url=lab.failover_url, checks=CHECKS, headers=bearer(api_key))
