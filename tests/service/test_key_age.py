"""The authorizer reports the age of each admitted merchant key as an embedded metric (issue 16,
item 7): the right age on the injected clock, only for the current key, and never a secret."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from payments_dr import contract
from payments_dr.service.authorizer import build_authorizer
from payments_dr.service.credentials import (
    SECONDS_PER_DAY,
    CredentialStore,
    IssuedKey,
    MerchantRecord,
    issue_key,
    rotate_key,
)
from payments_dr.service.observability import metrics

from .conftest import Region
from .test_authorizer import authorizer_event, bearer, effect

MERCHANT = "merchant-age"
AGE = contract.MERCHANT_KEY_AGE_METRIC
Flush = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Flush]:
    """Turns Powertools metrics on and returns a flush: the EMF records it printed."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()
    capsys.readouterr()

    def flush() -> list[dict[str, Any]]:
        metrics.flush_metrics()
        lines = capsys.readouterr().out.splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    yield flush
    metrics.clear_metrics()


def ages(records: list[dict[str, Any]]) -> list[float]:
    """Every age value flushed (Powertools writes a metric's values as a list)."""
    found: list[float] = []
    for record in records:
        value = record.get(AGE, [])
        found.extend(value if isinstance(value, list) else [value])
    return found


def enrol(region: Region) -> IssuedKey:
    issued = issue_key(MERCHANT, region.clock())
    CredentialStore(region.dynamodb, region.table_name).create(issued.record)
    return issued


def test_an_admitted_key_reports_its_age_as_one_metric_without_any_secret(
    region: Region, emitted: Flush
) -> None:
    issued = enrol(region)
    region.clock.advance(91.5 * SECONDS_PER_DAY)
    verdict = build_authorizer(region.deps)(
        authorizer_event(region.name, bearer(issued.api_key)), None
    )
    assert effect(verdict) == "Allow"
    records = emitted()
    assert ages(records) == [pytest.approx(91.5)]
    (record,) = [record for record in records if AGE in record]
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert {"Name": AGE, "Unit": "None"} in directive["Metrics"]
    # One metric for the whole stack: the merchant is log metadata, not a dimension.
    assert directive["Dimensions"] == [["service"]]
    assert record["merchant"] == MERCHANT
    assert record["key_id"] == issued.record.key_id
    text = json.dumps(records)
    secret = issued.api_key.rsplit(".", 1)[1]
    for forbidden in (issued.api_key, secret, issued.record.secret_sha256, issued.record.usage_key):
        assert forbidden not in text


def test_the_age_restarts_at_a_rotation_and_the_previous_key_reports_none(
    region: Region, emitted: Flush
) -> None:
    store = CredentialStore(region.dynamodb, region.table_name)
    old = enrol(region)
    region.clock.advance(120 * SECONDS_PER_DAY)
    new = rotate_key(old.record, region.clock(), overlap_seconds=3600)
    store.rotate(old.record.key_id, new.record)
    region.clock.advance(600)  # inside the overlap window
    authorize = build_authorizer(region.deps)
    assert effect(authorize(authorizer_event(region.name, bearer(old.api_key)), None)) == "Allow"
    # The previous key ends within the overlap (at most a week): it is not the rotation's
    # concern, and the record does not keep its issue time.
    assert ages(emitted()) == []
    assert effect(authorize(authorizer_event(region.name, bearer(new.api_key)), None)) == "Allow"
    assert ages(emitted()) == [pytest.approx(600 / SECONDS_PER_DAY)]


def test_refused_keys_report_no_age(region: Region, emitted: Flush) -> None:
    issued = enrol(region)
    region.clock.advance(400 * SECONDS_PER_DAY)
    authorize = build_authorizer(region.deps)
    wrong = issued.api_key[:-4] + "AAAA"
    assert effect(authorize(authorizer_event(region.name, bearer(wrong)), None)) == "Deny"
    CredentialStore(region.dynamodb, region.table_name).revoke(MERCHANT, region.clock())
    assert effect(authorize(authorizer_event(region.name, bearer(issued.api_key)), None)) == "Deny"
    assert ages(emitted()) == []


def test_disabled_metrics_record_nothing(region: Region) -> None:
    """The lab and the other tests run with metrics off: nothing accumulates to flush."""
    issued = enrol(region)
    metrics.clear_metrics()
    build_authorizer(region.deps)(authorizer_event(region.name, bearer(issued.api_key)), None)
    assert metrics.metric_set == {}
    assert metrics.metadata_set == {}


@pytest.mark.parametrize(
    ("created_at", "now", "days"),
    [
        ("2026-01-01T00:00:00.000Z", "2026-04-01T00:00:00+00:00", 90.0),
        ("2026-01-01T00:00:00", "2026-01-02T12:00:00+00:00", 1.5),  # no zone: UTC
        ("2026-01-01T00:00:00.000Z", "2025-12-31T23:59:00+00:00", 0.0),  # a clock behind
    ],
)
def test_key_age_is_counted_in_utc_days(created_at: str, now: str, days: float) -> None:
    from datetime import datetime

    record = MerchantRecord.from_item(
        {**issue_key(MERCHANT, 0.0).record.to_item(), "created_at": {"S": created_at}}
    )
    assert record.key_age_days(datetime.fromisoformat(now).timestamp()) == pytest.approx(days)
