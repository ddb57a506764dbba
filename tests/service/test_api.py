"""The payment API against moto: idempotency, failure paths, reads and health."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.service.api import HealthReason, build_api_handler
from payments_dr.service.store import Attr

from .conftest import (
    ID_KEY,
    MERCHANT,
    VALID_REQUEST,
    FaultyClient,
    Region,
    api_event,
    client_error,
    post_event,
)


def body(response: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response["body"])
    return parsed


def header(response: dict[str, Any], name: str) -> str | None:
    value: str | None = response["headers"].get(name)
    return value


def test_new_payment_is_created_once_with_its_region_and_integer_amount(region: Region) -> None:
    api = build_api_handler(region.deps)
    response = api(post_event(VALID_REQUEST, key="key-0001-abcd"), None)
    assert response["statusCode"] == 201
    created = body(response)
    assert created["id"] == ID_KEY.payment_id(MERCHANT, "key-0001-abcd")
    assert created["status"] == "accepted"
    assert created["region"] == region.name
    assert created["amount"] == VALID_REQUEST["amount"]
    assert isinstance(created["amount"], int)
    assert header(response, contract.REGION_HEADER) == region.name
    (item,) = region.items()
    assert item[Attr.AMOUNT.value] == {"N": "1999"}
    assert item[Attr.REGION.value] == {"S": region.name}


def test_duplicate_submission_replays_and_stores_one_item(region: Region) -> None:
    api = build_api_handler(region.deps)
    first = api(post_event(VALID_REQUEST), None)
    region.clock.advance(30)
    second = api(post_event(VALID_REQUEST), None)
    assert (first["statusCode"], second["statusCode"]) == (201, 200)
    assert body(second) == body(first)  # the stored payment, original timestamp included
    assert len(region.items()) == 1


def serialize_calls(client: Any) -> None:
    """DynamoDB applies each conditional write atomically; moto's in-memory table does not
    under threads, so the test gives it that guarantee and checks the handler's own logic."""
    lock = threading.Lock()
    make_api_call = client._make_api_call

    def serialized(operation_name: str, params: dict[str, Any]) -> Any:
        with lock:
            return make_api_call(operation_name, params)

    client._make_api_call = serialized


def test_concurrent_duplicates_store_one_item(region: Region) -> None:
    serialize_calls(region.deps.dynamodb)
    api = build_api_handler(region.deps)
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def submit() -> None:
        barrier.wait()
        statuses.append(api(post_event(VALID_REQUEST), None)["statusCode"])

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 7 + [201]
    assert len(region.items()) == 1


def test_key_reuse_with_a_different_request_is_422_and_leaves_the_original(
    region: Region,
) -> None:
    api = build_api_handler(region.deps)
    api(post_event(VALID_REQUEST), None)
    original = region.items()
    response = api(post_event({**VALID_REQUEST, "amount": 2000}), None)
    assert response["statusCode"] == 422
    assert body(response)["code"] == "idempotency_conflict"
    assert region.items() == original


def test_same_key_for_two_merchants_gives_two_payments(region: Region) -> None:
    api = build_api_handler(region.deps)
    first = api(post_event(VALID_REQUEST), None)
    second = api(post_event(VALID_REQUEST, merchant_id="merchant-43"), None)
    assert (first["statusCode"], second["statusCode"]) == (201, 201)
    assert body(first)["id"] != body(second)["id"]


@pytest.mark.parametrize(
    ("event_change", "reason"),
    [
        ({"headers": {"Content-Type": "application/json"}}, "Idempotency-Key"),
        ({"body": None}, "body is required"),
        ({"body": '{"amount": 1.5}'}, ""),
        ({"body": "not json"}, "not valid JSON"),
        ({"body": "x" * 5000}, "exceeds"),
    ],
)
def test_malformed_requests_are_400_and_write_nothing(
    region: Region, event_change: dict[str, Any], reason: str
) -> None:
    api = build_api_handler(region.deps)
    response = api({**post_event(VALID_REQUEST), **event_change}, None)
    assert response["statusCode"] == 400
    assert body(response)["code"] == "bad_request"
    assert reason in body(response)["message"]
    assert region.items() == []
    assert region.queue_depth(region.queue_url) == 0


def test_a_card_number_in_the_description_is_400_and_writes_nothing(region: Region) -> None:
    api = build_api_handler(region.deps)
    request = {**VALID_REQUEST, "description": "pan 4111 1111 1111 1111"}
    response = api(post_event(request), None)
    assert response["statusCode"] == 400
    assert "4111" not in response["body"]  # the answer does not echo the number either
    assert region.items() == []
    assert region.queue_depth(region.queue_url) == 0


def test_non_json_content_type_is_400(region: Region) -> None:
    api = build_api_handler(region.deps)
    response = api(post_event(VALID_REQUEST, **{"Content-Type": "text/plain"}), None)
    assert response["statusCode"] == 400
    assert region.items() == []


def test_idempotency_key_sent_twice_with_different_values_is_400(region: Region) -> None:
    # API Gateway's single-valued `headers` keeps only the last value of a repeated header.
    event = post_event(VALID_REQUEST, key="key-0002-bbbb")
    event["multiValueHeaders"][contract.IDEMPOTENCY_HEADER] = ["key-0001-aaaa", "key-0002-bbbb"]
    response = build_api_handler(region.deps)(event, None)
    assert response["statusCode"] == 400
    assert contract.IDEMPOTENCY_HEADER in body(response)["message"]
    assert region.items() == []
    assert region.queue_depth(region.queue_url) == 0


def test_idempotency_key_in_two_letter_cases_with_different_values_is_400(
    region: Region,
) -> None:
    event = post_event(VALID_REQUEST, key="key-0001-aaaa")
    event["headers"][contract.IDEMPOTENCY_HEADER.lower()] = "key-0002-bbbb"
    response = build_api_handler(region.deps)(event, None)
    assert response["statusCode"] == 400
    assert region.items() == []


def test_a_header_repeated_with_one_value_is_accepted(region: Region) -> None:
    event = post_event(VALID_REQUEST, key="key-0001-aaaa")
    event["multiValueHeaders"][contract.IDEMPOTENCY_HEADER] = ["key-0001-aaaa"] * 2
    event["headers"][contract.IDEMPOTENCY_HEADER.upper()] = "key-0001-aaaa"
    response = build_api_handler(region.deps)(event, None)
    assert response["statusCode"] == 201


def test_get_returns_the_stored_payment_or_404(region: Region) -> None:
    api = build_api_handler(region.deps)
    created = body(api(post_event(VALID_REQUEST), None))
    found = api(api_event("GET", f"{contract.PAYMENTS_PATH}/{created['id']}"), None)
    assert found["statusCode"] == 200
    assert body(found) == created
    missing = api(api_event("GET", f"{contract.PAYMENTS_PATH}/pay_{'0' * 32}"), None)
    assert missing["statusCode"] == 404
    malformed = api(api_event("GET", f"{contract.PAYMENTS_PATH}/not-an-id"), None)
    assert malformed["statusCode"] == 400


def test_the_id_comes_from_the_gateways_decoded_path_parameter(region: Region) -> None:
    # A REST API passes `path` as the client encoded it and `pathParameters` decoded.
    api = build_api_handler(region.deps)
    created = body(api(post_event(VALID_REQUEST), None))
    hex_digits = created["id"].removeprefix("pay_")
    encoded = f"{contract.PAYMENTS_PATH}/pay_" + "".join(f"%{ord(c):02x}" for c in hex_digits)
    event = {**api_event("GET", encoded), "pathParameters": {"id": created["id"]}}
    found = api(event, None)
    assert found["statusCode"] == 200 and body(found) == created
    slash = {**api_event("GET", f"{encoded}%2Fx"), "pathParameters": {"id": created["id"] + "/x"}}
    assert api(slash, None)["statusCode"] == 400


def test_another_merchants_payment_answers_like_a_missing_one(region: Region) -> None:
    api = build_api_handler(region.deps)
    created = body(api(post_event(VALID_REQUEST), None))
    path = f"{contract.PAYMENTS_PATH}/{created['id']}"
    foreign = api(api_event("GET", path, merchant_id="merchant-43"), None)
    missing = api(api_event("GET", f"{contract.PAYMENTS_PATH}/pay_{'0' * 32}"), None)
    assert foreign["statusCode"] == 404
    assert body(foreign) == body(missing)  # nothing tells "not yours" from "not there"


def test_the_merchant_comes_from_the_authorizer_never_from_the_body(region: Region) -> None:
    api = build_api_handler(region.deps)
    response = api(post_event({**VALID_REQUEST, "merchant_id": "merchant-43"}), None)
    assert response["statusCode"] == 400
    assert "merchant_id" in body(response)["message"]
    assert region.items() == []


@pytest.mark.parametrize(
    "event",
    [
        post_event(VALID_REQUEST, merchant_id=None),
        api_event("GET", f"{contract.PAYMENTS_PATH}/pay_{'0' * 32}", merchant_id=None),
    ],
    ids=["create", "read"],
)
def test_payment_routes_without_an_authorizer_verdict_are_refused(
    region: Region, event: dict[str, Any]
) -> None:
    response = build_api_handler(region.deps)(event, None)
    assert response["statusCode"] == 401
    assert body(response)["code"] == "unauthorized"
    assert region.items() == []


def test_health_needs_no_merchant(region: Region) -> None:
    event = api_event("GET", contract.HEALTH_PATH, merchant_id=None)
    response = build_api_handler(region.deps)(event, None)
    assert response["statusCode"] == 200
    assert set(body(response)) == {"status", "region", "reasons"}


def test_get_with_the_table_down_is_503(region: Region) -> None:
    region.deps.dynamodb = FaultyClient(
        region.dynamodb, {"get_item": client_error("InternalServerError", "GetItem", 500)}
    )
    response = build_api_handler(region.deps)(
        api_event("GET", f"{contract.PAYMENTS_PATH}/pay_{'0' * 32}"), None
    )
    assert response["statusCode"] == 503


def test_health_is_ok_in_an_active_region(region: Region) -> None:
    response = build_api_handler(region.deps)(api_event("GET", contract.HEALTH_PATH), None)
    assert response["statusCode"] == 200
    assert body(response) == {"status": "ok", "region": region.name, "reasons": []}


def test_fencing_turns_health_503_within_the_mode_refresh_period(region: Region) -> None:
    api = build_api_handler(region.deps)
    assert api(api_event("GET", contract.HEALTH_PATH), None)["statusCode"] == 200
    region.set_mode(contract.Mode.FENCED)
    region.clock.advance(contract.MODE_REFRESH_SECONDS)
    response = api(api_event("GET", contract.HEALTH_PATH), None)
    assert response["statusCode"] == 503
    assert body(response)["reasons"] == [HealthReason.FENCED]
    # A fenced region takes no writes either.
    assert api(post_event(VALID_REQUEST), None)["statusCode"] == 503
    assert region.items() == []


def test_health_reports_an_unreachable_table(region: Region) -> None:
    region.deps.dynamodb = FaultyClient(
        region.dynamodb, {"get_item": client_error("ResourceNotFoundException", "GetItem")}
    )
    response = build_api_handler(region.deps)(api_event("GET", contract.HEALTH_PATH), None)
    assert response["statusCode"] == 503
    assert body(response)["reasons"] == [HealthReason.TABLE_UNREACHABLE]


class HangingClient(FaultyClient):
    """The named operations block until the test releases them: an answer given while they
    still block did not wait for them, however slow the machine."""

    def __init__(self, client: Any, faults: dict[str, Exception]) -> None:
        super().__init__(client, faults)
        self.release = threading.Event()
        self.calls_started = threading.Semaphore(0)

    def __getattr__(self, name: str) -> Any:
        if name in self.faults:

            def hang(**_: Any) -> Any:
                self.calls_started.release()
                self.release.wait()
                raise self.faults[name]

            return hang
        return getattr(self._client, name)


@pytest.fixture
def hanging() -> Iterator[list[HangingClient]]:
    clients: list[HangingClient] = []
    yield clients
    for client in clients:
        client.release.set()


def test_health_answers_in_time_when_the_table_hangs(
    region: Region, hanging: list[HangingClient]
) -> None:
    table = HangingClient(region.dynamodb, {"get_item": RuntimeError()})
    hanging.append(table)
    region.deps.dynamodb = table
    api = build_api_handler(region.deps, health_deadline_seconds=0.3)
    response = api(api_event("GET", contract.HEALTH_PATH), None)
    assert table.calls_started.acquire(blocking=False)  # the read began and is still blocked
    assert not table.release.is_set()
    assert response["statusCode"] == 503
    assert body(response)["reasons"] == [HealthReason.TABLE_UNREACHABLE]


def test_health_answers_in_time_when_ssm_hangs(
    region: Region, hanging: list[HangingClient]
) -> None:
    hanging_ssm = HangingClient(region.ssm, {"get_parameter": RuntimeError()})
    hanging.append(hanging_ssm)
    api = build_api_handler(
        dataclasses.replace(region.deps, ssm=hanging_ssm), health_deadline_seconds=0.3
    )
    response = api(api_event("GET", contract.HEALTH_PATH), None)
    assert hanging_ssm.calls_started.acquire(blocking=False)
    assert response["statusCode"] == 503
    assert body(response)["reasons"] == [HealthReason.CONFIG_UNAVAILABLE]


def test_health_stays_ok_while_ssm_hangs_within_the_stale_limit(
    region: Region, hanging: list[HangingClient]
) -> None:
    # A slow SSM is no reason to fail the region over: recent values keep serving.
    ssm = HangingClient(region.ssm, {})
    hanging.append(ssm)
    # A deadline no loaded machine reaches: a 200 can only mean nothing waited for SSM.
    api = build_api_handler(dataclasses.replace(region.deps, ssm=ssm), health_deadline_seconds=60)
    assert api(api_event("GET", contract.HEALTH_PATH), None)["statusCode"] == 200
    ssm.faults["get_parameter"] = RuntimeError()
    region.clock.advance(contract.MODE_REFRESH_SECONDS)
    response = api(api_event("GET", contract.HEALTH_PATH), None)
    assert ssm.calls_started.acquire(blocking=False)  # the refresh is still blocked
    assert response["statusCode"] == 200
    assert api(post_event(VALID_REQUEST), None)["statusCode"] == 201


def test_health_reports_missing_configuration(region: Region) -> None:
    failing_ssm = FaultyClient(
        region.ssm, {"get_parameter": client_error("AccessDeniedException", "Get")}
    )
    api = build_api_handler(dataclasses.replace(region.deps, ssm=failing_ssm))
    response = api(api_event("GET", contract.HEALTH_PATH), None)
    assert response["statusCode"] == 503
    assert body(response)["reasons"] == [HealthReason.CONFIG_UNAVAILABLE]
    assert api(post_event(VALID_REQUEST), None)["statusCode"] == 503


def test_unknown_route_is_404_with_the_error_shape(region: Region) -> None:
    response = build_api_handler(region.deps)(api_event("GET", "/v1/unknown"), None)
    assert response["statusCode"] == 404
    assert set(body(response)) == {"code", "message"}


def test_concurrent_different_requests_each_get_their_own_answer(region: Region) -> None:
    """One handler serves many threads (the lab's HTTP server does): no request may see
    another's event."""
    api = build_api_handler(region.deps)
    count = 16
    barrier = threading.Barrier(count)
    answers: dict[int, dict[str, Any]] = {}

    def submit(amount: int) -> None:
        barrier.wait()
        response = api(
            post_event({**VALID_REQUEST, "amount": amount}, key=f"key-{amount:08d}"), None
        )
        answers[amount] = body(response)

    threads = [threading.Thread(target=submit, args=(amount,)) for amount in range(1, count + 1)]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose sharing
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)
    for amount, answer in answers.items():
        assert answer["amount"] == amount
        assert answer["id"] == ID_KEY.payment_id(MERCHANT, f"key-{amount:08d}")
    assert len(region.items()) == count
