"""Issue 16 on the synthesized stack, in both modes: no card data or merchant key in any
sample, log or archive, and least privilege on payment data."""

from __future__ import annotations

from typing import Any

import pytest

from payments_dr import contract
from payments_dr.infra import storage
from payments_dr.infra.functions import TRACER_CAPTURE_RESPONSE_ENV
from payments_dr.synth import SynthResult

from .support import one

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
FUNCTION = "aws:lambda/function:Function"


def _protected_headers(acl: dict[str, Any]) -> dict[str, str]:
    """Header name -> protection action of a web ACL's data protection setting."""
    protections = acl["inputs"]["dataProtectionConfig"]["dataProtections"]
    return {
        key: protection["action"]
        for protection in protections
        if protection["field"]["fieldType"] == "SINGLE_HEADER"
        and not protection.get("excludeRuleMatchDetails")
        and not protection.get("excludeRateBasedDetails")
        for key in protection["field"]["fieldKeys"]
    }


def test_sampled_requests_never_hold_the_merchant_key(stack: SynthResult) -> None:
    for region in stack.config.regions:
        acl = one(stack.of_type(WEB_ACL, region))
        visibilities = [acl["inputs"]["visibilityConfig"]] + [
            rule["visibilityConfig"] for rule in acl["inputs"]["rules"]
        ]
        assert any(v["sampledRequestsEnabled"] for v in visibilities)  # sampling stays useful
        protected = _protected_headers(acl)
        assert protected[contract.AUTH_HEADER.lower()] == "SUBSTITUTION"
        # A refused card-shaped key would otherwise sit in the samples: hashed, still joinable.
        assert protected[contract.IDEMPOTENCY_HEADER.lower()] == "HASH"


def test_transaction_logs_expire_after_the_configured_retention(stack: SynthResult) -> None:
    days = stack.config.transaction_log_retention_days
    lifecycles = stack.of_type(LIFECYCLE)
    assert {lifecycle["inputs"]["region"] for lifecycle in lifecycles} == set(stack.config.regions)
    for lifecycle in lifecycles:
        rules = {rule["id"]: rule for rule in lifecycle["inputs"]["rules"]}
        logs = rules["age-transaction-logs"]
        assert logs["filter"] == {"prefix": contract.LOG_PREFIX}
        assert logs["expiration"] == {"days": days}
        assert logs["noncurrentVersionExpiration"] == {
            "noncurrentDays": storage.NONCURRENT_VERSION_EXPIRY_DAYS
        }
        for transition in logs["transitions"]:
            assert transition["days"] < days
        assert rules["abort-incomplete-uploads"]["expiration"] == {
            "expiredObjectDeleteMarker": True
        }


@pytest.mark.parametrize(
    ("days", "classes"),
    [(35, []), (60, ["STANDARD_IA"]), (269, ["STANDARD_IA"]), (270, ["STANDARD_IA", "GLACIER"])],
)
def test_a_transition_is_made_only_when_the_object_outlives_its_minimum_charge(
    days: int, classes: list[str]
) -> None:
    (logs, _) = storage.lifecycle_rules(days)
    assert [t["storage_class"] for t in logs["transitions"]] == classes
    assert logs["expiration"] == {"days": days}


def test_no_function_records_its_response_in_traces(stack: SynthResult) -> None:
    functions = stack.of_type(FUNCTION)
    assert len(functions) == 2 * len(contract.Function)
    for function in functions:
        variables = function["inputs"]["environment"]["variables"]
        assert variables[TRACER_CAPTURE_RESPONSE_ENV] == "false", function["name"]
