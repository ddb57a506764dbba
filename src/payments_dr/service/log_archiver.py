"""Log archiver: one DynamoDB stream batch -> one JSON-lines object in the region's bucket.

Every region archives its whole stream, replicated writes included, under a key naming
the archiving region: `txlog/region=<region>/date=YYYY-MM-DD/hour=HH/<first>-<last>.jsonl`.
Two-way bucket replication then copies each region's objects under that region's prefix,
where they never collide with the local ones, so each bucket holds two complete logs and
no object twice. Keys depend only on the batch (its first record's time and its sequence
range), so a redelivered batch overwrites its own object instead of adding a duplicate.

Only an allow-list of attributes is archived (`ARCHIVED_FIELDS`): the log is the payments'
history for reconciliation and audit, kept for years in two regions, and holds neither the
payment token nor the merchant's free-text description. The table keeps both; a version's
fingerprint (SHA-256 of the whole request) still ties each logged line to the exact request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from payments_dr.contract import (
    CONFLICT_DETECTED_AT_ATTRIBUTE,
    CONFLICT_STATUS_ATTRIBUTE,
    MERCHANT_ITEM_PREFIX,
    TABLE_HASH_KEY,
    log_region_prefix,
)
from payments_dr.service.config import ServiceConfig
from payments_dr.service.conflicts import ConflictStore, accepted_twice, overwritten_version
from payments_dr.service.deps import Handler, ServiceDeps
from payments_dr.service.model import iso_timestamp
from payments_dr.service.observability import count, logger, metrics, tracer
from payments_dr.service.store import Attr, CorruptItem, integer_from_number

SEQUENCE_DIGITS = 40  # stream sequence numbers have up to 40 digits; padding keeps keys sorted
CONTENT_TYPE = "application/x-ndjson"
# What a payment version contributes to the log: never the token or the description.
ARCHIVED_FIELDS = frozenset(
    {
        Attr.PK,
        Attr.MERCHANT_ID,
        Attr.AMOUNT,
        Attr.CURRENCY,
        Attr.REFERENCE,
        Attr.FINGERPRINT,
        Attr.REGION,
        Attr.CREATED_AT,
    }
)
# A conflict record (service.conflicts) adds these; its two payment versions are archived
# through ARCHIVED_FIELDS like any other.
ARCHIVED_CONFLICT_FIELDS = frozenset(
    {
        CONFLICT_STATUS_ATTRIBUTE,
        CONFLICT_DETECTED_AT_ATTRIBUTE,
        "payment_id",
        "acknowledged_by",
        "overwritten_at",
        "detected_in",
        "resolution",
    }
)
CONFLICT_VERSIONS = ("overwritten", "stored")


def plain_value(attribute: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as JSON; integral numbers as ints, others as exact strings."""
    (kind, value), *_ = attribute.items()
    if kind == "N":
        try:
            return integer_from_number(value)
        except CorruptItem:
            return value  # never through float: keep the exact decimal text
    if kind == "M":
        return {name: plain_value(inner) for name, inner in sorted(value.items())}
    if kind == "L":
        return [plain_value(inner) for inner in value]
    if kind == "NULL":
        return None
    if kind in {"SS", "NS", "BS"}:
        return sorted(value)
    return value  # S, BOOL, B (already base64 text in the event)


def archived_image(image: dict[str, Any]) -> dict[str, Any]:
    """The allow-listed attributes of an item image, as plain JSON."""
    kept = {name: value for name, value in image.items() if name in ARCHIVED_FIELDS}
    for name in ARCHIVED_CONFLICT_FIELDS & image.keys():
        kept[name] = image[name]
    for name in CONFLICT_VERSIONS:
        version = image.get(name, {}).get("M")
        if version is not None:
            kept[name] = {"M": {k: v for k, v in version.items() if k in ARCHIVED_FIELDS}}
    return dict(plain_value({"M": kept}))


def _image(record: dict[str, Any], name: str) -> dict[str, Any] | None:
    image = record["dynamodb"].get(name)
    return None if image is None else archived_image(image)


def log_line(record: dict[str, Any]) -> dict[str, Any]:
    change = record["dynamodb"]
    return {
        "event_id": record["eventID"],
        "event_name": record["eventName"],
        "stream_region": record["awsRegion"],
        "sequence_number": change["SequenceNumber"],
        "approximate_creation_time": _timestamp(record).isoformat().replace("+00:00", "Z"),
        "keys": plain_value({"M": change["Keys"]}),
        "new_image": _image(record, "NewImage"),
        "old_image": _image(record, "OldImage"),
    }


def _timestamp(record: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(record["dynamodb"]["ApproximateCreationDateTime"]), UTC)


def is_payment_change(record: dict[str, Any]) -> bool:
    key = record["dynamodb"]["Keys"][TABLE_HASH_KEY]["S"]
    return not str(key).startswith(MERCHANT_ITEM_PREFIX)


def archive_key(region: str, records: list[dict[str, Any]]) -> str:
    sequence_numbers = [int(record["dynamodb"]["SequenceNumber"]) for record in records]
    started = _timestamp(records[0])
    first = str(min(sequence_numbers)).zfill(SEQUENCE_DIGITS)
    last = str(max(sequence_numbers)).zfill(SEQUENCE_DIGITS)
    partition = f"date={started:%Y-%m-%d}/hour={started:%H}"
    return f"{log_region_prefix(region)}{partition}/{first}-{last}.jsonl"


def build_log_archiver(deps: ServiceDeps) -> Handler:
    """The DynamoDB stream handler for one region's table."""

    def record_conflicts(records: list[dict[str, Any]], config: ServiceConfig) -> None:
        """Keep every acknowledged version replication overwrote (see service.conflicts)."""
        detected_at = iso_timestamp(deps.clock())
        for record in records:
            conflict = overwritten_version(record, detected_at)
            if conflict is not None:
                # The table client is made on the first conflict: most containers see none.
                store = ConflictStore(deps.client("dynamodb"), config.table_name)
                if store.record(conflict):
                    logger.error(
                        "replication overwrote an acknowledged payment; conflict recorded",
                        region=deps.region,
                        payment_id=conflict.payment_id,
                        acknowledged_by=conflict.acknowledged_by,
                    )
                    count("ReplicationConflicts")
            elif accepted_twice(record):
                count("PaymentsAcceptedTwice")

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # The transaction log holds payments; merchant credential records stay out of it.
        records = [r for r in event.get("Records") or [] if is_payment_change(r)]
        if not records:
            return {"batchItemFailures": [], "archived": 0}
        config = deps.config
        # First, so that a failing bucket cannot delay it; a redelivered batch finds the
        # conflicts recorded and the object written under the same key.
        record_conflicts(records, config)
        key = archive_key(deps.region, records)
        body = "".join(
            json.dumps(log_line(record), sort_keys=True, separators=(",", ":")) + "\n"
            for record in records
        )
        # Any failure propagates: Lambda retries the same batch, which rewrites the same key.
        deps.s3.put_object(
            Bucket=config.log_bucket, Key=key, Body=body.encode(), ContentType=CONTENT_TYPE
        )
        logger.info("archived stream batch", region=deps.region, key=key, records=len(records))
        count("LogRecordsArchived", len(records))
        # The batch is archived whole or not at all: with ReportBatchItemFailures on the
        # event source, an empty failure list confirms every record.
        return {"batchItemFailures": [], "archived": len(records), "key": key}

    return handle


@cache
def _handler_from_environment() -> Handler:
    """Built on the first invocation of a cold start, then reused."""
    return build_log_archiver(ServiceDeps.from_environment(services=("s3",)))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    return _handler_from_environment()(event, context)
