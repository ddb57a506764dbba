"""No card number reaches any store of the lab (issue 16, point 1).

Posts every card-shaped input of the security review, through the failover name and each
region's own name, then reads every store the lab has (the table in both regions, the
transaction logs in both buckets with every object version, the retry queues and DLQs, SSM,
the service's and the lab's logs, the timeline) and looks for the card's digits with
every separator removed. A valid payment with a marker goes through the same path and must
be found in the table and both logs, so the search provably reaches those stores.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.contract import ConsistencyMode
from payments_dr.lab.commands import service_log_handler
from payments_dr.lab.lab import Lab

from .helpers import PRIMARY, SECONDARY, bearer, enrol, lab_settings, request

CARDS = ("4111111111111111", "5555555555554444")
TOKEN = "tok_labcard0000safe"
# (field, value) pairs: each holds one of CARDS, written as the review wrote it.
CARD_FIELDS: list[tuple[str, str]] = [
    ("description", "Invoice 2024 4111 1111 1111 1111"),
    ("reference", "2024-4111111111111111"),
    ("reference", "4111.1111.1111.1111"),
    ("reference", "4111:1111:1111:1111"),
    ("description", "card 5555/5555/5555/4444 exp 12/29"),
    ("description", "4111_1111_1111_1111"),
    ("description", "4111  1111  1111  1111"),
    ("payment_token", "tok_124111111111111111"),
]
CARD_KEYS = ["4111111111111111", "key-5555-5555-5555-4444"]
MARKER = "marker-977777777"  # digits no card check refuses: the positive control


def squeezed(text: str) -> str:
    """`text` with everything but letters and digits removed, as the detector sees it."""
    return re.sub(r"[^A-Za-z0-9]", "", text)


@pytest.fixture()
def captured_logs() -> Iterator[io.StringIO]:
    """The service's JSON logs and the lab's own log records, while the test runs."""
    stream = io.StringIO()
    handler = service_log_handler()
    previous = handler.setStream(stream)
    lab_handler = logging.StreamHandler(stream)
    lab_logger = logging.getLogger("payments_dr")
    lab_logger.addHandler(lab_handler)
    try:
        yield stream
    finally:
        lab_logger.removeHandler(lab_handler)
        handler.setStream(previous)


def every_store(lab: Lab) -> dict[str, str]:
    """Each store of the lab, by name, as one text."""
    stores: dict[str, str] = {}
    for region in (PRIMARY, SECONDARY):
        aws = lab.regions[region].aws
        resources = lab.regions[region].resources
        stores[f"table {region}"] = json.dumps(lab.table_items(region))
        versions = aws.lab_s3.list_object_versions(Bucket=resources.bucket).get("Versions", [])
        stores[f"bucket {region}"] = "".join(
            aws.lab_s3.get_object(Bucket=resources.bucket, Key=v["Key"], VersionId=v["VersionId"])[
                "Body"
            ]
            .read()
            .decode()
            for v in versions
        )
        for name, url in (("retry", resources.retry_queue_url), ("dlq", resources.dlq_url)):
            messages = aws.lab_sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            stores[f"queue {name} {region}"] = json.dumps([m["Body"] for m in messages])
        parameters = aws.lab_ssm.get_parameters_by_path(Path=resources.ssm_path, Recursive=True)
        stores[f"ssm {region}"] = json.dumps(parameters["Parameters"], default=str)
    stores["timeline"] = json.dumps([str(event) for event in lab.events])
    return stores


def test_no_card_shaped_input_is_accepted_or_stored_anywhere(
    captured_logs: io.StringIO,
) -> None:
    with Lab(
        lab_settings(ConsistencyMode.EVENTUAL, time_scale=0.02), service_log_level="DEBUG"
    ) as lab:
        api_key = enrol(lab)
        urls = [lab.failover_url, lab.region_url(PRIMARY), lab.region_url(SECONDARY)]
        base = {"amount": 1250, "currency": "EUR", "payment_token": TOKEN}
        answers: list[tuple[int, Any]] = []
        for number, url in enumerate(urls):
            for index, (field, value) in enumerate(CARD_FIELDS):
                headers = {contract.IDEMPOTENCY_HEADER: f"card-test-{number}-{index}abc"}
                status, _, body = request(
                    url,
                    "POST",
                    contract.PAYMENTS_PATH,
                    {**base, field: value},
                    {**headers, **bearer(api_key)},
                )
                answers.append((status, body))
            for key in CARD_KEYS:
                status, _, body = request(
                    url,
                    "POST",
                    contract.PAYMENTS_PATH,
                    base,
                    {contract.IDEMPOTENCY_HEADER: key, **bearer(api_key)},
                )
                answers.append((status, body))
        marker = request(
            lab.failover_url,
            "POST",
            contract.PAYMENTS_PATH,
            {**base, "reference": MARKER},
            {contract.IDEMPOTENCY_HEADER: "card-test-marker", **bearer(api_key)},
        )
        assert lab.settle(30)
        stores = every_store(lab)
        stores["logs"] = captured_logs.getvalue()

    for status, body in answers:
        assert status == 400, body
        assert body["code"] == "bad_request"
        assert body["message"].endswith("must not contain a card number")
        assert re.search(r"[0-9]", json.dumps(body)) is None  # nothing of the number echoed
    assert marker[0] == 201
    # The control proves the search reads the stores the cards would have reached.
    for region in (PRIMARY, SECONDARY):
        for name in (f"table {region}", f"bucket {region}"):
            assert squeezed(MARKER) in squeezed(stores[name]), name
    assert "archived stream batch" in stores["logs"]  # the service's logs were captured
    for name, text in stores.items():
        for card in CARDS:
            assert card not in squeezed(text), f"{card} found in {name}"
