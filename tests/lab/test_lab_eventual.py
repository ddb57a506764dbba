"""The running lab in eventual mode: replication, conflicts, faults, the retry queue."""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from payments_dr import contract
from payments_dr.contract import ConsistencyMode
from payments_dr.lab.client_payments import REJECTED, TrafficOptions, Workload, new_payment
from payments_dr.lab.control import ControlServer
from payments_dr.lab.faults import Fault
from payments_dr.lab.lab import Lab
from payments_dr.lab.routing import NO_ANSWER_HEADER, ROUTED_TO_HEADER
from payments_dr.lab.traffic import Traffic
from payments_dr.service.credentials import CredentialStore
from payments_dr.service.id_secret import read_id_key

from .helpers import (
    PRIMARY,
    SECONDARY,
    bearer,
    enrol,
    lab_settings,
    new_idempotency_key,
    post_payment,
    request,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(lab_settings(ConsistencyMode.EVENTUAL, time_scale=0.02)) as running:
        yield running


@pytest.fixture(scope="module")
def api_key(lab: Lab) -> str:
    return enrol(lab)


@pytest.fixture(autouse=True)
def clients_on_the_primary(lab: Lab) -> Iterator[None]:
    """Each test starts with both regions healthy and clients resolving the primary.

    The lab is shared and runs at 50x: a fault held a little longer on a loaded machine can
    fail DNS over, and the next test must not inherit that."""
    yield
    deadline = time.monotonic() + 60
    while not (
        all(region.health.healthy for region in lab.regions.values())
        and lab.dns.resolve() == PRIMARY
    ):
        assert time.monotonic() < deadline, f"the lab did not recover: {lab.status()}"
        time.sleep(0.05)


def new_key() -> str:
    return new_idempotency_key("test")


def stream_records_for(lab: Lab, region: str, payment_id: str) -> int:
    region_lab = lab.regions[region]
    streams = region_lab.aws.lab_streams
    arn = region_lab.resources.stream_arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return sum(
        1 for r in records if r["dynamodb"]["Keys"][contract.TABLE_HASH_KEY]["S"] == payment_id
    )


def test_a_payment_written_in_one_region_reaches_the_other_once(lab: Lab, api_key: str) -> None:
    status, headers, body = post_payment(lab.region_url(PRIMARY), new_key(), api_key)
    assert status == 201 and headers[contract.REGION_HEADER] == PRIMARY
    assert lab.settle(60)
    primary_items, secondary_items = lab.table_items(PRIMARY), lab.table_items(SECONDARY)
    assert secondary_items[body["id"]] == primary_items[body["id"]]
    # Applied once in the secondary, and the replicated write did not come back.
    assert stream_records_for(lab, PRIMARY, body["id"]) == 1
    assert stream_records_for(lab, SECONDARY, body["id"]) == 1


def created_in(lab: Lab, payment_id: str) -> list[str]:
    """The regions where the service's own conditional write created the payment."""
    return sorted(write.region for write in lab.ledger.created().get(payment_id, []))


def test_a_retry_in_the_other_region_inside_the_window_is_created_twice_and_stored_once(
    lab: Lab, api_key: str
) -> None:
    key = new_key()
    lab.stall_replication(PRIMARY, True)
    try:
        first = post_payment(lab.region_url(PRIMARY), key, api_key)
        second = post_payment(lab.region_url(SECONDARY), key, api_key)
    finally:
        lab.stall_replication(PRIMARY, False)
    assert first[0] == 201 and second[0] == 201  # both regions accepted it
    assert lab.settle(60)
    assert created_in(lab, first[2]["id"]) == [PRIMARY, SECONDARY]
    # Last writer wins everywhere: both regions keep the secondary's later write, which is
    # the same request, so nothing acknowledged is lost and no conflict is recorded.
    primary_item = lab.table_items(PRIMARY)[first[2]["id"]]
    assert primary_item == lab.table_items(SECONDARY)[first[2]["id"]]
    assert primary_item["region"]["S"] == SECONDARY
    assert first[2]["id"] not in {conflict.payment_id for conflict in lab.conflicts()}


def test_a_key_reused_in_both_regions_keeps_the_overwritten_version_as_a_conflict(
    lab: Lab, api_key: str
) -> None:
    key = new_key()
    lab.stall_replication(PRIMARY, True)
    try:
        first = post_payment(lab.region_url(PRIMARY), key, api_key, amount=1250)
        second = post_payment(lab.region_url(SECONDARY), key, api_key, amount=9900)
    finally:
        lab.stall_replication(PRIMARY, False)
    assert first[0] == 201 and second[0] == 201  # two acknowledged versions of one id
    assert lab.settle(60)
    payment_id = first[2]["id"]
    # The secondary's later write wins; the primary acknowledged the version it overwrote.
    assert lab.table_items(PRIMARY)[payment_id]["amount"] == {"N": "9900"}
    (conflict,) = [c for c in lab.conflicts() if c.payment_id == payment_id]
    assert conflict.acknowledged_by == PRIMARY and conflict.detected_in == PRIMARY
    summary = conflict.summary()
    assert summary["overwritten"]["amount"] == "1250" and summary["stored"]["amount"] == "9900"
    # Kept in both regions: the record replicates like a payment.
    for region in (PRIMARY, SECONDARY):
        assert conflict.key in lab.table_items(region)
    # And the lab's control endpoint lists it.
    status, body = ControlServer(lab).handle("GET", "/status", b"")
    assert status == 200
    listed = [c for c in body["conflicts"] if c["payment_id"] == payment_id]
    assert listed == [summary]


def test_a_replay_in_the_other_region_after_replication_is_created_once(
    lab: Lab, api_key: str
) -> None:
    key = new_key()
    status, _, body = post_payment(lab.region_url(PRIMARY), key, api_key)
    assert status == 201
    assert lab.settle(60)
    status, _, replay = post_payment(lab.region_url(SECONDARY), key, api_key)
    assert status == 200 and replay == body
    assert lab.settle(60)
    assert created_in(lab, body["id"]) == [PRIMARY]


def test_writes_during_a_peer_outage_replicate_once_it_is_back(lab: Lab, api_key: str) -> None:
    lab.set_region_outage(SECONDARY, True)
    try:
        status, _, body = post_payment(lab.region_url(PRIMARY), new_key(), api_key)
        assert status == 201
        time.sleep(0.3)  # many replication lags
        assert body["id"] not in lab.table_items(SECONDARY)
    finally:
        lab.set_region_outage(SECONDARY, False)
    assert lab.settle(60)
    assert body["id"] in lab.table_items(SECONDARY)


def test_an_unreachable_region_drops_connections(lab: Lab) -> None:
    lab.set_region_outage(SECONDARY, True)
    try:
        with pytest.raises(OSError):
            request(lab.region_url(SECONDARY), "GET", contract.HEALTH_PATH)
    finally:
        lab.set_region_outage(SECONDARY, False)
    # It answers again at once; healthy within a few probes (on a loaded machine the first
    # deep check can miss its 1.5 s deadline and answer 503).
    deadline = time.monotonic() + 60
    while (status := request(lab.region_url(SECONDARY), "GET", contract.HEALTH_PATH)[0]) != 200:
        assert status == 503 and time.monotonic() < deadline


def test_the_router_tells_a_gateway_answer_from_no_answer(lab: Lab) -> None:
    # A refusal by the region's gateway is an answer from that region (the drill counts it)...
    status, headers, _ = post_payment(lab.failover_url, new_key(), "pdr.not.a.key")
    assert status == 403
    assert headers[ROUTED_TO_HEADER] == PRIMARY and NO_ANSWER_HEADER not in headers
    # ...while a region that does not answer at all gets the router's own marked 502. Both
    # regions are down, so wherever DNS sends the client, nobody answers.
    for region in (PRIMARY, SECONDARY):
        lab.set_region_outage(region, True)
    try:
        status, headers, _ = request(lab.failover_url, "GET", contract.HEALTH_PATH)
    finally:
        for region in (PRIMARY, SECONDARY):
            lab.set_region_outage(region, False)
    assert status == 502 and headers[NO_ANSWER_HEADER] == "1"
    assert headers[ROUTED_TO_HEADER] in (PRIMARY, SECONDARY)


def test_the_drill_takes_a_gateway_refusal_as_the_routed_regions_final_answer(lab: Lab) -> None:
    options = TrafficOptions(1, 0.5, Workload.STEADY, 60.0, 1.0, 8.0)
    traffic = Traffic(lab, options, lab.clock.now(), api_keys={})
    payment = new_payment(random.Random(0), 0, 1)
    attempt, _ = traffic._send(payment, "pdr.not.a.key", None)
    # The gateway's 403 carries no service region header, yet the primary answered it.
    assert (attempt.routed_to, attempt.answered_by, attempt.status) == (PRIMARY, PRIMARY, 403)
    assert attempt.status in REJECTED
    for region in (PRIMARY, SECONDARY):  # nobody answers, wherever DNS points
        lab.set_region_outage(region, True)
    try:
        attempt, _ = traffic._send(payment, "pdr.not.a.key", None)
    finally:
        for region in (PRIMARY, SECONDARY):
            lab.set_region_outage(region, False)
    assert attempt.routed_to in (PRIMARY, SECONDARY)
    assert (attempt.answered_by, attempt.status) == ("", 0)


def test_table_outage_queues_the_payment_and_the_retry_worker_applies_it(
    lab: Lab, api_key: str
) -> None:
    # The authorizer reads the same table: a verdict cached just before the outage lets the
    # request through to the API, whose write then fails over to the retry queue.
    warm = request(
        lab.region_url(PRIMARY), "GET", f"/v1/payments/pay_{'0' * 32}", None, bearer(api_key)
    )
    assert warm[0] == 404
    lab.set_table_outage(PRIMARY, True)
    try:
        status, _, body = post_payment(lab.region_url(PRIMARY), new_key(), api_key)
        health_status, _, health = request(lab.region_url(PRIMARY), "GET", contract.HEALTH_PATH)
    finally:
        lab.set_table_outage(PRIMARY, False)
    assert status == 202 and body["status"] == "pending"
    assert health_status == 503 and "table unreachable" in health["reasons"]
    assert lab.settle(60)
    assert body["id"] in lab.table_items(PRIMARY)
    assert body["id"] in lab.table_items(SECONDARY)


def test_a_poison_message_ends_in_the_dlq_after_max_receives(lab: Lab) -> None:
    region = lab.regions[PRIMARY]
    poison = json.dumps({"version": 1, "id": "not-a-payment"})
    region.aws.lab_sqs.send_message(QueueUrl=region.resources.retry_queue_url, MessageBody=poison)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and poison not in lab.dlq_messages(PRIMARY):
        region.retry_poller.release_all()  # skip the (simulated) visibility timeouts
        time.sleep(0.05)
    assert poison in lab.dlq_messages(PRIMARY)
    assert region.retry_poller.invocations >= contract.RETRY_MAX_RECEIVE_COUNT


def test_the_log_archiver_archives_both_regions_streams(lab: Lab, api_key: str) -> None:
    post_payment(lab.region_url(PRIMARY), new_key(), api_key)
    assert lab.settle(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
        lab.archived_object_count(region) for region in (PRIMARY, SECONDARY)
    ):
        time.sleep(0.05)
    assert lab.archived_object_count(PRIMARY) > 0
    assert lab.archived_object_count(SECONDARY) > 0


# --- authentication through the real authorizer ----------------------------------------------
def test_requests_without_a_valid_key_are_refused_and_write_nothing(lab: Lab, api_key: str) -> None:
    url = lab.region_url(PRIMARY)
    before = lab.table_items(PRIMARY)
    body = {"amount": 1250, "currency": "EUR", "payment_token": "tok_labtest12345678"}
    headers = {contract.IDEMPOTENCY_HEADER: new_key()}
    wrong = api_key[:-4] + ("AAAA" if not api_key.endswith("AAAA") else "BBBB")
    assert request(url, "POST", contract.PAYMENTS_PATH, body, headers)[0] == 401
    for refused in ("not-a-key", wrong, api_key.replace("merchant-01", "merchant-02")):
        status, _, answer = request(
            url, "POST", contract.PAYMENTS_PATH, body, {**headers, **bearer(refused)}
        )
        assert status == 403 and answer["code"] == "forbidden"
    assert lab.table_items(PRIMARY) == before


def test_a_percent_encoded_id_is_decoded_before_the_service_sees_it(lab: Lab, api_key: str) -> None:
    status, _, body = post_payment(lab.region_url(PRIMARY), new_key(), api_key)
    assert status == 201
    encoded = "pay_" + "".join(f"%{ord(char):02x}" for char in body["id"].removeprefix("pay_"))
    url = lab.region_url(PRIMARY)
    status, _, fetched = request(
        url, "GET", f"{contract.PAYMENTS_PATH}/{encoded}", None, bearer(api_key)
    )
    assert status == 200 and fetched == body
    # An encoded slash is one segment, so the id resource: the service refuses the id.
    status, _, answer = request(
        url, "GET", f"{contract.PAYMENTS_PATH}/{body['id']}%2Fx", None, bearer(api_key)
    )
    assert status == 400 and answer["code"] == "bad_request"


def test_another_merchants_payment_answers_404_in_both_regions(lab: Lab, api_key: str) -> None:
    other_key = enrol(lab, "merchant-02")
    status, _, body = post_payment(lab.region_url(PRIMARY), new_key(), api_key)
    assert status == 201 and body["merchant_id"] == "merchant-01"
    assert lab.settle(60)
    path = f"{contract.PAYMENTS_PATH}/{body['id']}"
    for region in (PRIMARY, SECONDARY):
        assert request(lab.region_url(region), "GET", path, None, bearer(api_key))[0] == 200
        assert request(lab.region_url(region), "GET", path, None, bearer(other_key))[0] == 404


def test_a_revoked_key_is_refused_in_both_regions_after_the_cache_time(lab: Lab) -> None:
    key = enrol(lab, "merchant-03")
    assert post_payment(lab.region_url(SECONDARY), new_key(), key)[0] == 201  # cached: allowed
    primary = lab.regions[PRIMARY]
    CredentialStore(primary.aws.lab_dynamodb, primary.resources.table_name).revoke(
        "merchant-03", lab.clock.epoch()
    )
    assert lab.settle(60)
    lab.clock.sleep(contract.AUTHORIZER_CACHE_TTL_SECONDS)
    for region in (PRIMARY, SECONDARY):
        assert post_payment(lab.region_url(region), new_key(), key)[0] == 403


def test_an_uncached_key_during_a_table_outage_answers_503_and_writes_nothing(lab: Lab) -> None:
    key = enrol(lab, "merchant-05")
    before = set(lab.table_items(PRIMARY))
    lab.set_table_outage(PRIMARY, True)
    try:
        status, headers, body = post_payment(lab.region_url(PRIMARY), new_key(), key)
    finally:
        lab.set_table_outage(PRIMARY, False)
    # Unverifiable is refused, but as "try again" (503 + Retry-After), not as a server fault.
    assert status == 503 and body["code"] == "unavailable"
    assert headers["Retry-After"] == str(contract.RETRY_AFTER_SECONDS)
    assert lab.settle(60)  # anything queued would be applied by now
    assert set(lab.table_items(PRIMARY)) == before


def test_the_secondary_authorizes_while_the_primary_is_down(lab: Lab) -> None:
    key = enrol(lab, "merchant-04")
    lab.set_region_outage(PRIMARY, True)
    lab.set_table_outage(PRIMARY, True)
    try:
        status, headers, _ = post_payment(lab.region_url(SECONDARY), new_key(), key)
    finally:
        lab.set_table_outage(PRIMARY, False)
        lab.set_region_outage(PRIMARY, False)
    assert status == 201 and headers[contract.REGION_HEADER] == SECONDARY


def test_the_lab_provisions_the_id_secret_as_the_stack_does(lab: Lab) -> None:
    """One secret, generated by Secrets Manager in the primary, replicated to the secondary."""
    name = contract.id_secret_name(lab.settings.stack)
    primary = lab.regions[PRIMARY].aws.lab_secretsmanager
    replicas = primary.describe_secret(SecretId=name)["ReplicationStatus"]
    assert [replica["Region"] for replica in replicas] == [SECONDARY]
    value = primary.get_secret_value(SecretId=name)["SecretString"]
    assert len(value) == contract.ID_SECRET_LENGTH and value.isalnum()
    secondary = lab.regions[SECONDARY].aws.lab_secretsmanager
    assert secondary.get_secret_value(SecretId=name)["SecretString"] == value


def test_a_payment_retried_through_the_other_region_keeps_one_id(lab: Lab) -> None:
    """The primary's answer is lost; the client retries through the secondary, which reads
    its own copy of the id secret even with the primary gone: one id, one payment."""
    merchant = "merchant-idkey"
    api_key = enrol(lab, merchant)
    key = new_key()
    lab.set_answers_lost(PRIMARY, True)
    try:
        with pytest.raises(OSError):  # the client never hears the primary's answer
            post_payment(lab.region_url(PRIMARY), key, api_key)
    finally:
        lab.set_answers_lost(PRIMARY, False)
    assert lab.settle(60)
    expected = lab.id_key.payment_id(merchant, key)
    assert expected in lab.table_items(SECONDARY)  # the primary did create it
    lab.set_region_outage(PRIMARY, True)
    try:
        status, headers, body = post_payment(lab.region_url(SECONDARY), key, api_key)
        # A cold start in the secondary now reads the same key, from its replica.
        cold = read_id_key(
            lab.regions[SECONDARY].aws.service_client("secretsmanager"),
            contract.id_secret_name(lab.settings.stack),
        )
    finally:
        lab.set_region_outage(PRIMARY, False)
    assert status == 200 and headers[contract.REGION_HEADER] == SECONDARY
    assert body["id"] == expected == cold.payment_id(merchant, key)
    assert created_in(lab, expected) == [PRIMARY]


def test_a_repeated_idempotency_key_is_refused_through_the_failover_endpoint_too(
    lab: Lab, api_key: str
) -> None:
    for base in (lab.failover_url, lab.region_url(PRIMARY)):
        parts = urlsplit(base)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=15)
        body = json.dumps({"amount": 100, "currency": "EUR", "payment_token": "tok_abcdefgh1"})
        try:
            connection.putrequest("POST", contract.PAYMENTS_PATH)
            for name, value in [
                ("Content-Type", "application/json"),
                (contract.IDEMPOTENCY_HEADER, new_key()),
                (contract.IDEMPOTENCY_HEADER, new_key()),
                *bearer(api_key).items(),
                ("Content-Length", str(len(body))),
            ]:
                connection.putheader(name, value)
            connection.endheaders(body.encode())
            response = connection.getresponse()
            answer = json.loads(response.read())
        finally:
            connection.close()
        assert response.status == 400, base
        assert answer["code"] == "bad_request" and "sent once" in answer["message"]


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"POST /v1/payments HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
        (b"POST /v1/payments HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
        (b"POST /v1/payments HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        (b"GET /v1/health HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    ],
    ids=["content-length-not-a-number", "negative-content-length", "chunked", "long-header"],
)
def test_malformed_http_gets_a_json_refusal_from_the_gateway_and_the_router(
    lab: Lab, request_head: bytes, status: int
) -> None:
    for base in (lab.failover_url, lab.region_url(PRIMARY)):
        parts = urlsplit(base)
        with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=15) as raw:
            raw.sendall(request_head)
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == str(status).encode(), (base, head)
        assert b"Content-Type: application/json" in head
        assert json.loads(body)["code"] in ("bad_request", "not_found")


def test_status_shows_every_fault_the_control_endpoint_switches(lab: Lab) -> None:
    control = ControlServer(lab)

    def faults_on(region: str) -> set[str]:
        status, body = control.handle("GET", "/status", b"")
        assert status == 200
        return {
            fault.value for fault in Fault if body["regions"][region][fault.value.replace("-", "_")]
        }

    assert faults_on(SECONDARY) == set()
    for fault in Fault:
        switch = {"region": SECONDARY, "fault": fault.value}
        assert (
            control.handle("POST", "/faults", json.dumps({**switch, "active": True}).encode())[0]
            == 200
        )
        try:
            assert faults_on(SECONDARY) == {fault.value}
        finally:
            control.handle("POST", "/faults", json.dumps({**switch, "active": False}).encode())
        assert faults_on(SECONDARY) == set()
    assert lab.settle(20)
