"""Property readers and the IAM wildcard logic, over the shapes both callers produce."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from payments_dr.policy import tokens
from payments_dr.policy.model import ResourceView
from payments_dr.policy.props import (
    InvalidDocumentError,
    blocks,
    get,
    number,
    policy_document,
    refers_to,
    resolve,
    strings,
    truthy,
)
from payments_dr.policy.rules import iam, lambda_functions
from payments_dr.policy.runner import run_rules

DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:q"}],
}


def test_policy_document_reads_json_strings_and_mappings_alike() -> None:
    assert policy_document(json.dumps(DOCUMENT)) == DOCUMENT
    assert policy_document(DOCUMENT) is DOCUMENT
    assert policy_document(None) is None
    assert policy_document("") is None


@pytest.mark.parametrize("raw", ['{"Statement": [', "[1, 2]", 42])
def test_policy_document_rejects_what_is_not_a_json_object(raw: object) -> None:
    with pytest.raises(InvalidDocumentError):
        policy_document(raw)


def test_get_follows_mappings_and_list_indexes() -> None:
    props = {"rules": [{"destination": {"metrics": {"status": "Enabled"}}}]}
    assert get(props, "rules", 0, "destination", "metrics", "status") == "Enabled"
    assert get(props, "rules", 1, "destination") is None
    assert get(props, "missing", "deeper") is None
    assert get("not a mapping", "key") is None


def test_blocks_and_strings_accept_single_values_and_lists() -> None:
    assert blocks(None) == []
    assert blocks({"a": 1}) == [{"a": 1}]
    assert strings("s3:GetObject") == ["s3:GetObject"]
    assert strings(["a", "b"]) == ["a", "b"]


def test_mock_values_are_coerced_the_same_way_as_real_ones() -> None:
    assert truthy(True) and truthy("true") and truthy("True")
    assert not truthy(None) and not truthy("false") and not truthy(1)
    assert number(30000.0) == 30000.0 and number("5") == 5.0
    assert number(True) is None and number(None) is None and number("soon") is None


def test_references_resolve_by_value_or_by_reported_property_dependency() -> None:
    bucket = ResourceView(tokens.S3_BUCKET, "b", "urn:b", {"bucket": "logs"})
    other = ResourceView(tokens.S3_BUCKET, "o", "urn:o", {"bucket": "other"})
    buckets = [bucket, other]
    by_value = ResourceView(tokens.S3_BUCKET_VERSIONING, "v", "urn:v", {"bucket": "logs"})
    # In a preview the value is unknown; the engine still reports where it came from.
    by_dependency = ResourceView(
        tokens.S3_BUCKET_VERSIONING,
        "p",
        "urn:p",
        unknown_checking_proxy({"bucket": UNKNOWN_STRING_VALUE}),
        references={"bucket": frozenset({"urn:b"})},
    )
    assert [b.name for b in resolve(by_value, "bucket", buckets, "bucket")] == ["b"]
    assert [b.name for b in resolve(by_dependency, "bucket", buckets, "bucket")] == ["b"]
    assert not refers_to(by_dependency, "bucket", other, buckets, "bucket")


def test_unmatched_values_fall_back_on_a_single_dependency() -> None:
    """Offline, a mocked id is not among the target's inputs; the dependency still names it."""
    checks = [
        ResourceView(tokens.ROUTE53_HEALTH_CHECK, "east", "urn:east", {}),
        ResourceView(tokens.ROUTE53_HEALTH_CHECK, "west", "urn:west", {}),
    ]

    def record(*dependencies: str) -> ResourceView:
        return ResourceView(
            tokens.ROUTE53_RECORD,
            "r",
            "urn:r",
            {"healthCheckId": "sim-1234"},
            dependencies=frozenset(dependencies),
        )

    assert [c.name for c in resolve(record("urn:west", "urn:zone"), "healthCheckId", checks)] == [
        "west"
    ]
    assert resolve(record("urn:east", "urn:west"), "healthCheckId", checks) == []  # ambiguous
    assert resolve(record(), "healthCheckId", checks) == []


def test_unknown_values_surface_as_pulumi_policy_errors() -> None:
    """pulumi-policy reports this error as "can't run policy during preview", never as a pass."""
    function = ResourceView(
        tokens.LAMBDA_FUNCTION,
        "f",
        "urn:f",
        unknown_checking_proxy({"tracingConfig": {"mode": UNKNOWN_STRING_VALUE}}),
    )
    tracing = [rule for rule in lambda_functions.RULES if rule.name == "lambda-active-tracing"]
    with pytest.raises(UnknownValueError):
        run_rules([function], rules=tracing)


def _wildcard_resource_violations(actions: list[str]) -> list[str]:
    role_policy = ResourceView(
        tokens.IAM_ROLE_POLICY,
        "p",
        "urn:p",
        {"policy": {"Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}},
    )
    rule = next(rule for rule in iam.RULES if rule.name == "iam-no-wildcard-resource")
    return [v.message for v in run_rules([role_policy], rules=[rule])]


ALLOWED = sorted(iam.ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS)
SCOPED = st.from_regex(r"(dynamodb|sqs|ssm|s3|kms):[A-Z][a-zA-Z]{2,20}", fullmatch=True)


@given(st.lists(st.sampled_from(ALLOWED), min_size=1))
def test_allow_listed_actions_may_use_any_resource(actions: list[str]) -> None:
    assert _wildcard_resource_violations(actions) == []


@given(st.lists(st.sampled_from(ALLOWED)), SCOPED)
def test_any_other_action_on_any_resource_is_named(allowed: list[str], scoped: str) -> None:
    (message,) = _wildcard_resource_violations([*allowed, scoped])
    assert f"grants {scoped} on every resource" in message
