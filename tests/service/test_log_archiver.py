"""The log archiver against moto's DynamoDB stream and S3."""

from __future__ import annotations

import json
from typing import Any

from payments_dr import contract
from payments_dr.service.api import build_api_handler
from payments_dr.service.credentials import CredentialStore, issue_key
from payments_dr.service.log_archiver import (
    ARCHIVED_FIELDS,
    archive_key,
    archived_image,
    build_log_archiver,
    plain_value,
)

from .conftest import SESSION, VALID_REQUEST, Region, post_event


def stream_event(region: Region) -> dict[str, Any]:
    """The table's stream records in the Lambda event format (creation time in epoch seconds)."""
    # This botocore addresses streams by account id, a host moto does not intercept.
    streams = SESSION.client(
        "dynamodbstreams",
        region_name=region.name,
        endpoint_url=f"https://streams.dynamodb.{region.name}.amazonaws.com",
    )
    stream_arn = region.dynamodb.describe_table(TableName=region.table_name)["Table"][
        "LatestStreamArn"
    ]
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    for record in records:
        change = record["dynamodb"]
        change["ApproximateCreationDateTime"] = change["ApproximateCreationDateTime"].timestamp()
        record["eventSourceARN"] = stream_arn
    return {"Records": records}


def archived_objects(region: Region) -> dict[str, list[dict[str, Any]]]:
    listing = region.s3.list_objects_v2(Bucket=region.bucket, Prefix=contract.LOG_PREFIX)
    objects = {}
    for entry in listing.get("Contents", []):
        text = region.s3.get_object(Bucket=region.bucket, Key=entry["Key"])["Body"].read()
        objects[entry["Key"]] = [json.loads(line) for line in text.decode().splitlines()]
    return objects


def submit_payments(region: Region, count: int) -> None:
    api = build_api_handler(region.deps)
    for index in range(count):
        response = api(post_event(VALID_REQUEST, key=f"key-{index:04d}-abcd"), None)
        assert response["statusCode"] == 201


def test_a_batch_becomes_one_json_lines_object(region: Region) -> None:
    submit_payments(region, 3)
    event = stream_event(region)
    result = build_log_archiver(region.deps)(event, None)
    assert result["archived"] == 3
    objects = archived_objects(region)
    assert list(objects) == [result["key"]]
    lines = objects[result["key"]]
    assert [line["event_name"] for line in lines] == ["INSERT"] * 3
    assert {line["new_image"]["amount"] for line in lines} == {VALID_REQUEST["amount"]}
    assert all(isinstance(line["new_image"]["amount"], int) for line in lines)
    assert result["key"].startswith(f"{contract.log_region_prefix(region.name)}date=")


def test_redelivered_batch_overwrites_instead_of_duplicating(region: Region) -> None:
    submit_payments(region, 2)
    event = stream_event(region)
    archiver = build_log_archiver(region.deps)
    archiver(event, None)
    archiver(event, None)
    objects = archived_objects(region)
    assert len(objects) == 1
    (lines,) = objects.values()
    assert len(lines) == len({line["event_id"] for line in lines}) == 2


def test_each_region_archives_under_its_own_prefix(region: Region) -> None:
    submit_payments(region, 1)
    event = stream_event(region)
    key_here = archive_key(region.name, event["Records"])
    key_peer = archive_key(contract.DEFAULT_SECONDARY_REGION, event["Records"])
    # Replicated into the peer bucket, this region's object can never overwrite the peer's own.
    assert key_here != key_peer
    assert key_here.replace(region.name, contract.DEFAULT_SECONDARY_REGION, 1) == key_peer


def test_keys_sort_by_sequence_number() -> None:
    def record(sequence: str) -> dict[str, Any]:
        return {"dynamodb": {"SequenceNumber": sequence, "ApproximateCreationDateTime": 0}}

    early = archive_key("us-east-1", [record("9"), record("99")])
    late = archive_key("us-east-1", [record("100"), record("200")])
    assert early < late
    assert early.endswith("/hour=00/" + "9".zfill(40) + "-" + "99".zfill(40) + ".jsonl")


def test_empty_batch_writes_nothing(region: Region) -> None:
    assert build_log_archiver(region.deps)({"Records": []}, None) == {
        "batchItemFailures": [],
        "archived": 0,
    }
    assert archived_objects(region) == {}


def test_numbers_never_pass_through_float() -> None:
    value = plain_value(
        {
            "M": {
                "whole": {"N": "12345678901234567890"},
                "fraction": {"N": "0.1"},
                "tags": {"SS": ["b", "a"]},
                "nothing": {"NULL": True},
            }
        }
    )
    assert value == {
        "fraction": "0.1",
        "nothing": None,
        "tags": ["a", "b"],
        "whole": 12345678901234567890,
    }


def test_merchant_credential_records_stay_out_of_the_transaction_log(region: Region) -> None:
    issued = issue_key("merchant-9", region.clock())
    CredentialStore(region.dynamodb, region.table_name).create(issued.record)
    submit_payments(region, 2)
    result = build_log_archiver(region.deps)(stream_event(region), None)
    assert result["archived"] == 2
    (lines,) = archived_objects(region).values()
    assert all(line["keys"][contract.TABLE_HASH_KEY].startswith("pay_") for line in lines)
    assert issued.record.secret_sha256 not in json.dumps(lines)


def test_a_batch_of_only_credential_records_writes_nothing(region: Region) -> None:
    CredentialStore(region.dynamodb, region.table_name).create(
        issue_key("merchant-9", region.clock()).record
    )
    result = build_log_archiver(region.deps)(stream_event(region), None)
    assert result == {"batchItemFailures": [], "archived": 0}
    assert archived_objects(region) == {}


def test_only_allow_listed_fields_reach_the_log(region: Region) -> None:
    api = build_api_handler(region.deps)
    request = {**VALID_REQUEST, "reference": "order-77", "description": "blue widget"}
    assert api(post_event(request, key="key-0001-abcd"), None)["statusCode"] == 201
    # An attribute someone adds to items later is not archived until it is allow-listed.
    region.dynamodb.update_item(
        TableName=region.table_name,
        Key={contract.TABLE_HASH_KEY: {"S": region.items()[0][contract.TABLE_HASH_KEY]["S"]}},
        UpdateExpression="SET card_holder = :name",
        ExpressionAttributeValues={":name": {"S": "A N Other"}},
    )
    build_log_archiver(region.deps)(stream_event(region), None)
    (lines,) = archived_objects(region).values()
    text = json.dumps(lines)
    assert VALID_REQUEST["payment_token"] not in text
    assert "blue widget" not in text and "A N Other" not in text
    for line in lines:
        for image in (line["new_image"], line["old_image"]):
            if image is not None:
                assert set(image) <= set(ARCHIVED_FIELDS)
    assert lines[0]["new_image"]["reference"] == "order-77"
    assert set(lines[0]["new_image"]) == set(ARCHIVED_FIELDS)  # nothing allowed is lost


def test_a_conflict_record_is_archived_without_the_tokens_of_its_versions() -> None:
    version = {
        contract.TABLE_HASH_KEY: {"S": "pay_" + "0" * 32},
        "amount": {"N": "1999"},
        "payment_token": {"S": "tok_secretsecret"},
        "description": {"S": "free text"},
    }
    conflict = {
        contract.TABLE_HASH_KEY: {"S": "conflict#pay_x#abc"},
        contract.CONFLICT_STATUS_ATTRIBUTE: {"S": "open"},
        "acknowledged_by": {"S": "us-east-1"},
        "overwritten": {"M": version},
        "stored": {"M": version},
    }
    archived = archived_image(conflict)
    assert archived["acknowledged_by"] == "us-east-1"
    assert archived["conflict_status"] == "open"
    for name in ("overwritten", "stored"):
        assert archived[name] == {contract.TABLE_HASH_KEY: "pay_" + "0" * 32, "amount": 1999}
    assert "tok_" not in json.dumps(archived) and "free text" not in json.dumps(archived)
