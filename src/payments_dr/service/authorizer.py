"""The API Gateway REQUEST authorizer: merchant API keys checked against their hashed records.

It reads only its own region's replica of the table (through its own region's SSM
configuration), so losing the other region changes nothing here. API Gateway caches each
verdict per Authorization header value for `contract.AUTHORIZER_CACHE_TTL_SECONDS`.

Verdicts, as API Gateway turns them into answers:
- no Authorization header: API Gateway answers 401 itself and never calls the authorizer;
- the merchant's current key, or its previous key (the one the last rotation replaced)
  until that key's expiry by `deps.clock`: Allow, with the merchant in the context;
- a malformed key, an unknown merchant, a wrong secret, a revoked, superseded or expired key:
  an explicit Deny policy (403). Not the "Unauthorized" exception (401): every such exception is
  a Lambda error, and anyone on the internet could then trip the function error alarms;
- the table or configuration unavailable: an exception, which the stack's AUTHORIZER_FAILURE
  gateway response turns into 503 with Retry-After, the service's own "try again" answer.
  It fails closed: nothing is admitted that could not be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from payments_dr.contract import (
    AUTH_CONTEXT_MERCHANT_ID,
    AUTH_HEADER,
    AUTH_PREVIOUS_KEY_METRIC,
    AUTH_SCHEME,
    MERCHANT_KEY_AGE_METRIC,
    PAYMENT_PATH,
    PAYMENTS_PATH,
)
from payments_dr.service.credentials import (
    CredentialStore,
    KeyStatus,
    MalformedKey,
    PresentedKey,
    parse_key,
)
from payments_dr.service.deps import Handler, ServiceDeps
from payments_dr.service.observability import count, logger, measure, metrics, tracer

# Principal of a refused request whose merchant is not known to be genuine.
ANONYMOUS_PRINCIPAL = "anonymous"
# The methods a merchant key opens. Cached verdicts apply to every method the same key
# calls, so the policy names them all, and nothing else (health needs no key).
MERCHANT_METHODS = (
    ("POST", PAYMENTS_PATH),
    ("GET", PAYMENT_PATH.replace("{id}", "*")),
)


@dataclass(frozen=True)
class MethodArn:
    """arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<method>/<path>"""

    api_prefix: str  # everything up to and including the stage

    @classmethod
    def parse(cls, arn: str) -> MethodArn:
        prefix, _, resource = arn.partition(":execute-api:")
        parts = resource.split("/")
        if not prefix.startswith("arn:") or len(parts) < 3:
            raise ValueError(f"not an execute-api method ARN: {arn!r}")
        return cls(api_prefix=f"{prefix}:execute-api:{parts[0]}/{parts[1]}")

    def merchant_resources(self) -> list[str]:
        return [f"{self.api_prefix}/{method}{path}" for method, path in MERCHANT_METHODS]


def bearer_token(headers: dict[str, str] | None) -> str | None:
    """The key from `Authorization: Bearer <key>`, written exactly so; header names are
    case-insensitive.

    API Gateway caches verdicts per header value: if `Bearer  <key>` or `bearer <key>` were
    read as the same key, every spelling would be a new cache entry and a new table read.
    Only the one canonical spelling of a key is accepted.
    """
    for name, value in (headers or {}).items():
        if name.lower() == AUTH_HEADER.lower():
            scheme, separator, token = str(value).partition(" ")
            canonical = scheme == AUTH_SCHEME and separator and token == token.strip()
            return token if canonical and " " not in token else None
    return None


def policy(principal: str, effect: str, resources: list[str]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resources}
            ],
        },
    }


def build_authorizer(deps: ServiceDeps) -> Handler:
    """The REQUEST authorizer for one region; safe to call from many threads at once."""

    def authorize(event: dict[str, Any], context: Any) -> dict[str, Any]:
        resources = MethodArn.parse(str(event.get("methodArn") or "")).merchant_resources()
        try:
            key: PresentedKey = parse_key(bearer_token(event.get("headers")))
        except MalformedKey:
            count("AuthRejected")
            logger.info("authorization refused: malformed or missing key", region=deps.region)
            return policy(ANONYMOUS_PRINCIPAL, "Deny", resources)
        log_context = {"region": deps.region, "merchant": key.merchant_id, "key_id": key.key_id}
        table_name = deps.config.table_name
        record = CredentialStore(deps.dynamodb, table_name).get(key.merchant_id)
        if record is None or not record.secret_matches(key):
            count("AuthRejected")
            logger.info("authorization refused: unknown merchant or wrong key", extra=log_context)
            return policy(ANONYMOUS_PRINCIPAL, "Deny", resources)
        if record.status is not KeyStatus.ACTIVE:
            count("AuthRevoked")
            logger.info("authorization refused: key revoked", extra=log_context)
            return policy(key.merchant_id, "Deny", resources)
        previous = record.previous
        if previous is not None and key.key_id == previous.key_id:
            previous_context = {**log_context, "expires_at": previous.expires_at}
            if not previous.valid_at(deps.clock()):
                count("AuthExpired")
                logger.info("authorization refused: rotated key expired", extra=previous_context)
                return policy(key.merchant_id, "Deny", resources)
            # Tells operators which merchants still use the old key before its window ends.
            count(AUTH_PREVIOUS_KEY_METRIC)
            logger.info("authorized with the previous key of a rotation", extra=previous_context)
        else:
            # The key-age alarm's metric (docs/security.md, "Key age"): the current key's age
            # at each table read, so a key in use is seen within a cache time. No merchant
            # dimension; the merchant and key id ride along as log metadata.
            age = record.key_age_days(deps.clock())
            measure(MERCHANT_KEY_AGE_METRIC, age, merchant=key.merchant_id, key_id=key.key_id)
        count("AuthAllowed")
        return {
            **policy(key.merchant_id, "Allow", resources),
            "context": {AUTH_CONTEXT_MERCHANT_ID: record.merchant_id},
            "usageIdentifierKey": record.usage_key,
        }

    return authorize


@cache
def _authorizer_from_environment() -> Handler:
    return build_authorizer(ServiceDeps.from_environment(services=("dynamodb",)))


@logger.inject_lambda_context(clear_state=True)
# The verdict names the merchant's usage key: keep it out of trace metadata.
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point."""
    return _authorizer_from_environment()(event, context)
