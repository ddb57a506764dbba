"""The answers API Gateway gives itself, as its gateway-response definitions.

Kept apart from the Pulumi program (no Pulumi import) because the lab renders its simulated
gateway's answers from the same definitions the stack deploys.
"""

from __future__ import annotations

from typing import Any

from payments_dr import contract

# A throttled client waits this long before its next try: by then a bucket refilled at
# the lowest allowed rate (1 request/s) holds a token again.
THROTTLED_RETRY_AFTER_SECONDS = 1


def _gateway_response(code: str, retry_after_seconds: int | None = None) -> dict[str, Any]:
    # messageString arrives already quoted; the body then matches the service's Error schema.
    response: dict[str, Any] = {
        "responseTemplates": {
            "application/json": f'{{"code": "{code}", "message": $context.error.messageString}}'
        }
    }
    if retry_after_seconds is not None:
        response["responseParameters"] = {
            "gatewayresponse.header.Retry-After": f"'{retry_after_seconds}'"
        }
    return response


# The authorizer fails only when its region's table or configuration does not answer: the
# same condition in which the service answers 503 with Retry-After, so clients retry
# (by then, perhaps, through the other region) instead of taking API Gateway's default 500.
AUTHORIZER_UNAVAILABLE: dict[str, Any] = {
    **_gateway_response("unavailable", contract.RETRY_AFTER_SECONDS),
    "statusCode": "503",
}


# Requests API Gateway answers itself (rejected by validation, or failing before the function)
# get the same error shape as the service's own answers, so clients parse one format.
GATEWAY_RESPONSES: dict[str, Any] = {
    "UNAUTHORIZED": _gateway_response("unauthorized"),  # no Authorization header
    "ACCESS_DENIED": _gateway_response("forbidden"),  # the authorizer's Deny
    "WAF_FILTERED": _gateway_response("forbidden"),
    # Stage or merchant usage plan limits.
    "THROTTLED": _gateway_response("throttled", THROTTLED_RETRY_AFTER_SECONDS),
    "AUTHORIZER_FAILURE": AUTHORIZER_UNAVAILABLE,
    "AUTHORIZER_CONFIGURATION_ERROR": AUTHORIZER_UNAVAILABLE,
    # No such resource or method: API Gateway answers 403 (it cannot tell an unknown path
    # from a missing signature); the body says what it is, not a malformed request.
    "MISSING_AUTHENTICATION_TOKEN": _gateway_response("not_found"),
    "RESOURCE_NOT_FOUND": _gateway_response("not_found"),
    "BAD_REQUEST_BODY": _gateway_response("bad_request"),
    "BAD_REQUEST_PARAMETERS": _gateway_response("bad_request"),
    "DEFAULT_4XX": _gateway_response("bad_request"),
    "DEFAULT_5XX": _gateway_response("unavailable"),
}
