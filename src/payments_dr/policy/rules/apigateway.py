"""API Gateway: regional endpoints, TLS 1.2+ custom domains as the only way in (the default
execute-api endpoint disabled, health checks on the custom names), logged and throttled stages,
an authorizer on every method but the health check."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from payments_dr.contract import HEALTH_PATH
from payments_dr.policy import tokens
from payments_dr.policy.model import Finding, ResourceRule, ResourceView, StackRule, StackView
from payments_dr.policy.props import describe, get, number, refers_to, strings, text, truthy

# "TLS_1_2", or an enhanced policy whose minimum is TLS 1.2 or 1.3 (SecurityPolicy_TLS13_...).
TLS12_POLICY = re.compile(r"^(TLS_1_2|SecurityPolicy_TLS1[23]_.+)$")
ALL_METHODS = "*/*"  # method settings path that covers every resource and method
# A REST API's default endpoint, or the API Gateway host a custom domain's alias points to.
EXECUTE_API_HOST = re.compile(r"\.execute-api\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\.?$")


def _check_regional(view: ResourceView) -> Iterator[str]:
    types = strings(get(view.props, "endpointConfiguration", "types"))
    if types != ["REGIONAL"]:
        shown = ", ".join(types) or "unset (EDGE)"
        yield (
            f"{describe(view)} has endpoint type {shown}. Fix: set endpoint_configuration="
            "{'types': 'REGIONAL'}: each region must answer from its own region for failover."
        )


def _check_domain_tls(view: ResourceView) -> Iterator[str]:
    policy = text(view.props.get("securityPolicy"))
    if not TLS12_POLICY.match(policy):
        yield (
            f"{describe(view)} allows TLS below 1.2 (security policy {policy or 'unset'}). "
            "Fix: set security_policy='TLS_1_2'."
        )


def _check_default_endpoint_disabled(view: ResourceView) -> Iterator[str]:
    if not truthy(view.props.get("disableExecuteApiEndpoint")):
        yield (
            f"{describe(view)} keeps its default execute-api endpoint, which anyone can call "
            "past the custom domains and their TLS policy. Fix: set "
            "disable_execute_api_endpoint=True and serve the API through custom domains."
        )


def _check_health_check_target(view: ResourceView) -> Iterator[str]:
    host = text(view.props.get("fqdn")).lower()
    if EXECUTE_API_HOST.search(host):
        yield (
            f"{describe(view)} probes the API Gateway host {host}, not a custom domain: with "
            "the default endpoint disabled it only ever sees 403, and it skips the custom "
            "domain the traffic goes through. Fix: probe the region's own name "
            "(api.<region>.<domain>) on the health path."
        )


def _check_access_logs(view: ResourceView) -> Iterator[str]:
    settings = view.props.get("accessLogSettings")
    if not text(get(settings, "destinationArn")) or not text(get(settings, "format")):
        yield (
            f"{describe(view)} has no access logging. Fix: set access_log_settings with a log "
            "group destination_arn and a JSON format including the request id."
        )


def _same_reference(first: ResourceView, second: ResourceView, prop: str) -> bool:
    """Whether two resources' `prop` point at the same resource (e.g. the same REST API)."""
    first_urns = first.references.get(prop, frozenset())
    second_urns = second.references.get(prop, frozenset())
    if first_urns and second_urns:
        return bool(first_urns & second_urns)
    value = text(first.props.get(prop))
    return bool(value) and value == text(second.props.get(prop))


def _throttles(settings: ResourceView) -> bool:
    rate = number(get(settings.props, "settings", "throttlingRateLimit"))
    burst = number(get(settings.props, "settings", "throttlingBurstLimit"))
    return rate is not None and rate > 0 and burst is not None and burst > 0


def _check_stage_throttling(stack: StackView) -> Iterator[Finding]:
    method_settings = stack.of_type(tokens.APIGATEWAY_METHOD_SETTINGS)
    stages = stack.of_type(tokens.APIGATEWAY_STAGE)
    for stage in stages:
        covering = [
            settings
            for settings in method_settings
            if text(settings.props.get("methodPath")) == ALL_METHODS
            and refers_to(settings, "stageName", stage, stages, "stageName")
            and _same_reference(settings, stage, "restApi")
            and settings.region == stage.region
        ]
        if not any(_throttles(settings) for settings in covering):
            yield Finding(
                f"{describe(stage)} is not throttled. Fix: add an aws.apigateway.MethodSettings "
                f"for the stage with method_path='{ALL_METHODS}' and positive "
                "throttling_rate_limit and throttling_burst_limit.",
                stage.urn,
            )


# The one operation Route 53 must reach without credentials.
OPEN_OPERATIONS = frozenset({("get", HEALTH_PATH)})
# Security scheme markers of API Gateway authorizers (Lambda or Cognito).
AUTHORIZER_AUTHTYPES = frozenset({"custom", "cognito_user_pools"})
HTTP_METHODS = frozenset(
    {"get", "put", "post", "delete", "options", "head", "patch", "x-amazon-apigateway-any-method"}
)


def _authorizer_schemes(document: Mapping[str, Any]) -> set[str]:
    schemes = get(document, "components", "securitySchemes") or {}
    return {
        name
        for name, scheme in schemes.items()
        if isinstance(scheme, Mapping)
        and (
            "x-amazon-apigateway-authorizer" in scheme
            or text(scheme.get("x-amazon-apigateway-authtype")).lower() in AUTHORIZER_AUTHTYPES
        )
    }


def _check_methods_authorized(view: ResourceView) -> Iterator[str]:
    body = view.props.get("body")
    if not isinstance(body, str):
        return  # no OpenAPI body, or not yet known in a preview: nothing to read
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        yield f"{describe(view)} has a body that is not valid JSON. Fix: pass an OpenAPI document."
        return
    if not isinstance(document, Mapping):
        return
    authorizers = _authorizer_schemes(document)
    default_security = document.get("security")
    for path, operations in (document.get("paths") or {}).items():
        if not isinstance(operations, Mapping):
            continue
        for method, operation in operations.items():
            if method.lower() not in HTTP_METHODS or not isinstance(operation, Mapping):
                continue
            if (method.lower(), path) in OPEN_OPERATIONS:
                continue
            requirements = operation.get("security", default_security)
            # Any one requirement admits a request, so each must name an authorizer.
            alternatives = [r for r in requirements or [] if isinstance(r, Mapping)]
            if not alternatives or not all(set(r) & authorizers for r in alternatives):
                yield (
                    f"{describe(view)} serves {method.upper()} {path} without an authorizer. "
                    "Fix: give the operation a security requirement naming a scheme with "
                    "x-amazon-apigateway-authorizer (only the health check stays open)."
                )


RULES = (
    ResourceRule(
        name="apigateway-regional-endpoint",
        description="REST APIs and custom domains use REGIONAL endpoints.",
        resource_types=frozenset({tokens.APIGATEWAY_REST_API, tokens.APIGATEWAY_DOMAIN_NAME}),
        check=_check_regional,
    ),
    ResourceRule(
        name="apigateway-domain-tls12",
        description="Custom domains require TLS 1.2 or later.",
        resource_types=frozenset({tokens.APIGATEWAY_DOMAIN_NAME}),
        check=_check_domain_tls,
    ),
    ResourceRule(
        name="apigateway-default-endpoint-disabled",
        description="REST APIs disable the default execute-api endpoint; custom domains serve.",
        resource_types=frozenset({tokens.APIGATEWAY_REST_API}),
        check=_check_default_endpoint_disabled,
    ),
    ResourceRule(
        name="apigateway-health-checks-on-custom-domains",
        description="Route 53 health checks probe custom domain names, never execute-api hosts.",
        resource_types=frozenset({tokens.ROUTE53_HEALTH_CHECK}),
        check=_check_health_check_target,
    ),
    ResourceRule(
        name="apigateway-stage-access-logs",
        description="API stages write access logs.",
        resource_types=frozenset({tokens.APIGATEWAY_STAGE}),
        check=_check_access_logs,
    ),
    ResourceRule(
        name="apigateway-methods-authorized",
        description="Every API method except the health check has an authorizer.",
        resource_types=frozenset({tokens.APIGATEWAY_REST_API}),
        check=_check_methods_authorized,
    ),
    StackRule(
        name="apigateway-stage-throttling",
        description="Every API stage has throttling limits on all methods.",
        check=_check_stage_throttling,
    ),
)
