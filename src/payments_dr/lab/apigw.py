"""A region's API Gateway, simulated: HTTP on a loopback port, adapted to Lambda proxy events.

The real API handler receives exactly what API Gateway's REST proxy integration would send,
and its proxy response becomes the HTTP answer. During a simulated region outage the server
accepts connections but never answers: requests that arrive fail, and requests in flight
lose their answer even when the handler already wrote. While only answers are lost, requests
are still processed: the case that makes clients retry a payment that was in fact written.

Payment routes go through the real REQUEST authorizer first, as API Gateway does: no
Authorization header answers 401, a Deny 403, a failing authorizer 503 with Retry-After (the
deployed gateway's AUTHORIZER_FAILURE response), all before the API
handler runs; an Allow passes its context to the handler in `requestContext.authorizer`.
Verdicts are cached per header value for the authorizer cache time (simulated seconds).

After an Allow, the stack's throttling applies as API Gateway's does: the merchant's usage
plan (a token bucket per `usageIdentifierKey`), then the stage's limits, which API Gateway
applies to each method on its own (a bucket per method and resource: a flood of payments
never throttles the health check Route 53 probes). Over either limit: 429 with the deployed
THROTTLED body, and the handler does not run. Buckets run on the lab's clock.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra.gateway_responses import GATEWAY_RESPONSES
from payments_dr.lab.aws import RegionFaults
from payments_dr.lab.httpserver import JsonRequestHandler, LoopbackServer
from payments_dr.lab.settings import LAB_ACCOUNT_ID
from payments_dr.lab.workers import Handler, LambdaContext

log = logging.getLogger(__name__)
LAB_API_ID = "lab"

# (method, resource) pairs the OpenAPI document defines.
_ROUTES = {
    ("POST", contract.PAYMENTS_PATH),
    ("GET", contract.PAYMENT_PATH),
    ("GET", contract.HEALTH_PATH),
}


@dataclass(frozen=True)
class GatewayError:
    """An answer API Gateway gives itself: its response type, default status and message."""

    response_type: str
    default_status: int
    message: str  # what API Gateway puts in $context.error.messageString

    def render(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Status, headers and body as the stack's gateway responses shape them."""
        family = f"DEFAULT_{self.default_status // 100}XX"
        response = GATEWAY_RESPONSES.get(self.response_type, GATEWAY_RESPONSES[family])
        template = response["responseTemplates"]["application/json"]
        body = json.loads(
            template.replace("$context.error.messageString", json.dumps(self.message))
        )
        headers = {
            name.removeprefix("gatewayresponse.header."): value.strip("'")
            for name, value in response.get("responseParameters", {}).items()
        }
        return int(response.get("statusCode", self.default_status)), headers, body


MISSING_AUTHENTICATION_TOKEN = GatewayError(
    "MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token"
)
UNAUTHORIZED = GatewayError("UNAUTHORIZED", 401, "Unauthorized")
ACCESS_DENIED = GatewayError("ACCESS_DENIED", 403, "User is not authorized to access this resource")
# The methods require an API key; an Allow without a usage key does not name one.
INVALID_API_KEY = GatewayError("INVALID_API_KEY", 403, "Forbidden")
THROTTLED = GatewayError("THROTTLED", 429, "Too Many Requests")
AUTHORIZER_FAILURE = GatewayError("AUTHORIZER_FAILURE", 500, "Authorizer error")
INTEGRATION_FAILURE = GatewayError("DEFAULT_5XX", 502, "Internal server error")
_PAYMENT_ID_SEGMENT = re.compile(r"^/v1/payments/(?P<id>[^/]+)$")


def match_resource(path: str) -> tuple[str, dict[str, str] | None] | None:
    """The OpenAPI resource a request path falls under, with its path parameters."""
    if path in (contract.PAYMENTS_PATH, contract.HEALTH_PATH):
        return path, None
    match = _PAYMENT_ID_SEGMENT.match(path)
    if match:
        return contract.PAYMENT_PATH, {"id": unquote(match.group("id"))}
    return None


def proxy_event(
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    resource: str,
    path_parameters: dict[str, str] | None,
    source_ip: str,
    api_host: str,
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event for one HTTP request."""
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    try:
        text_body: str | None = body.decode("utf-8") if body else None
        is_base64 = False
    except UnicodeDecodeError:
        text_body = base64.b64encode(body).decode("ascii")
        is_base64 = True
    return {
        "resource": resource,
        "path": url.path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{contract.API_STAGE}{url.path}",
            "stage": contract.API_STAGE,
            "requestId": str(uuid.uuid4()),
            "accountId": LAB_ACCOUNT_ID,
            "apiId": LAB_API_ID,
            "domainName": api_host,
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": single_headers.get("User-Agent")},
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def authorizer_event(
    region: str, method: str, resource: str, event: dict[str, Any]
) -> dict[str, Any]:
    """The REQUEST authorizer event API Gateway sends before invoking the integration."""
    path = str(event["path"])
    return {
        "type": "REQUEST",
        "methodArn": (
            f"arn:aws:execute-api:{region}:{LAB_ACCOUNT_ID}:{LAB_API_ID}"
            f"/{contract.API_STAGE}/{method}{path}"
        ),
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": event["headers"],
        "multiValueHeaders": event["multiValueHeaders"],
        "pathParameters": event["pathParameters"],
        "requestContext": event["requestContext"],
    }


def allows(verdict: dict[str, Any], method_arn: str) -> bool:
    """IAM evaluation of the authorizer's policy for one method: an explicit Deny wins."""
    allowed = False
    for statement in verdict.get("policyDocument", {}).get("Statement", []):
        resources = statement.get("Resource", [])
        patterns = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, pattern) for pattern in patterns):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


class AuthorizerCache:
    """API Gateway's authorizer cache: verdicts per identity (header value) for a TTL."""

    def __init__(self, now: Callable[[], float], ttl_seconds: float) -> None:
        self._now = now
        self._ttl = ttl_seconds
        self._verdicts: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, identity: str) -> dict[str, Any] | None:
        with self._lock:
            cached = self._verdicts.get(identity)
        if cached is None or self._now() - cached[0] >= self._ttl:
            return None
        return cached[1]

    def put(self, identity: str, verdict: dict[str, Any]) -> None:
        with self._lock:
            self._verdicts[identity] = (self._now(), verdict)


@dataclass(frozen=True)
class ThrottleLimits:
    """API Gateway's throttle settings: steady requests per second and the burst on top."""

    rate: float
    burst: int


class TokenBucket:
    """API Gateway's throttling algorithm: `burst` requests at once, then `rate` per second.

    The bucket holds at most `burst` tokens, refills at `rate` tokens per second of `now`
    and each admitted request takes one.
    """

    def __init__(self, now: Callable[[], float], limits: ThrottleLimits) -> None:
        self._now = now
        self._limits = limits
        self._tokens = float(limits.burst)
        self._updated = now()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Admit one request (True) or refuse it, taking nothing (False)."""
        with self._lock:
            now = self._now()
            refilled = self._tokens + (now - self._updated) * self._limits.rate
            self._tokens = min(float(self._limits.burst), refilled)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class Throttle:
    """Token buckets with the same limits, one per key, each created at first use."""

    def __init__(self, now: Callable[[], float], limits: ThrottleLimits) -> None:
        self._now = now
        self._limits = limits
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> bool:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self._now, self._limits)
        return bucket.take()


class RegionApi(LoopbackServer):
    """One region's API endpoint on 127.0.0.1, port chosen by the OS."""

    def __init__(
        self,
        region: str,
        stack: str,
        faults: RegionFaults,
        *,
        stage_limits: ThrottleLimits,
        merchant_limits: ThrottleLimits,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.region = region
        self._stack = stack
        self.faults = faults
        self.handler: Handler | None = None  # set once the region's configuration is seeded
        self.authorizer: Handler | None = None
        self._now = now
        self._authorizer_cache = AuthorizerCache(now, contract.AUTHORIZER_CACHE_TTL_SECONDS)
        self._stage_throttle = Throttle(now, stage_limits)  # by (method, resource)
        self._usage_plan_throttle = Throttle(now, merchant_limits)  # by usage key
        super().__init__(self._request_handler_class(), f"lab-api-{region}")

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.handler is None:
            raise RuntimeError(f"the {self.region} API has no handler yet")
        context = LambdaContext.for_function(self._stack, Function.API, self.region)
        return self.handler(event, context)

    def admit_to_stage(self, method: str, resource: str) -> bool:
        """The stage's limits, which API Gateway applies to each method separately."""
        return self._stage_throttle.take((method, resource))

    def authorize(self, method: str, resource: str, event: dict[str, Any]) -> GatewayError | None:
        """Run the authorizer, then the usage plan's and the stage's throttles, as API Gateway
        would. None: admitted, and `event` now carries the authorizer's context; otherwise
        the answer API Gateway gives itself."""
        identity = next(
            (
                value
                for name, value in (event["headers"] or {}).items()
                if name.lower() == contract.AUTH_HEADER.lower()
            ),
            "",
        )
        if not identity:
            return UNAUTHORIZED  # the identity source is missing: the authorizer is not called
        if self.authorizer is None:
            raise RuntimeError(f"the {self.region} API has no authorizer yet")
        request = authorizer_event(self.region, method, resource, event)
        verdict = self._authorizer_cache.get(identity)
        if verdict is None:
            context = LambdaContext.for_function(self._stack, Function.AUTHORIZER, self.region)
            verdict = self.authorizer(request, context)
            self._authorizer_cache.put(identity, verdict)
        if not allows(verdict, request["methodArn"]):
            return ACCESS_DENIED
        usage_key = verdict.get("usageIdentifierKey")
        if not usage_key:
            return INVALID_API_KEY
        if not self._usage_plan_throttle.take(str(usage_key)) or not self.admit_to_stage(
            method, resource
        ):
            return THROTTLED
        event["requestContext"]["authorizer"] = {
            **verdict.get("context", {}),
            "principalId": verdict.get("principalId"),
        }
        return None

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class RequestHandler(JsonRequestHandler):
            server_version = "lab-apigateway"
            # Headers and body go out in separate writes; without this, Nagle's algorithm and
            # delayed ACKs add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def __getattr__(self, name: str) -> Callable[[], None]:
                # Any HTTP method, even one http.server has never heard of, lands in one place:
                # what API Gateway answers to each method is decided there.
                if name.startswith("do_"):
                    return lambda: self._serve(name.removeprefix("do_"))
                raise AttributeError(name)

            def _serve(self, method: str) -> None:
                body = self.read_body()
                if body is None:
                    return
                if api.faults.outage:
                    self._drop()
                    return
                path = urlsplit(self.path).path
                matched = match_resource(path)
                if matched is None or (method, matched[0]) not in _ROUTES:
                    # What API Gateway answers for a resource or method it does not define.
                    self._send_gateway_error(MISSING_AUTHENTICATION_TOKEN)
                    return
                resource, path_parameters = matched
                if api.faults.payments_failing:
                    # A gray failure: the health path exercises nothing that is broken.
                    if (method, resource) == ("GET", contract.HEALTH_PATH):
                        self._send(200, {"status": "ok", "region": api.region}, {})
                    else:
                        self._send_gateway_error(INTEGRATION_FAILURE)
                    return
                event = proxy_event(
                    method=method,
                    target=self.path,
                    headers=list(self.headers.items()),
                    body=body,
                    resource=resource,
                    path_parameters=path_parameters,
                    source_ip=self.client_address[0],
                    api_host=self.headers.get("Host", ""),
                )
                if (method, resource) == ("GET", contract.HEALTH_PATH):
                    # Unauthenticated, so no usage plan; the stage's limits still apply.
                    refused = None if api.admit_to_stage(method, resource) else THROTTLED
                else:
                    try:
                        refused = api.authorize(method, resource, event)
                    except Exception as error:
                        # Expected while the region's table or configuration is down: one
                        # line, as the drill's terminal shows it; the stack at DEBUG.
                        log.warning("authorizer failed in %s: %r", api.region, error)
                        log.debug("authorizer failure in %s", api.region, exc_info=True)
                        # The stack's answer when the authorizer fails: nothing is admitted.
                        refused = AUTHORIZER_FAILURE
                if refused is not None:
                    self._send_gateway_error(refused)
                    return
                try:
                    response = api.invoke(event)
                except Exception:
                    log.exception("API handler failed in %s", api.region)
                    self._send_gateway_error(INTEGRATION_FAILURE)
                    return
                if api.faults.outage or api.faults.answers_lost:
                    # Processed, perhaps written, but the client never hears back.
                    self._drop()
                    return
                self._send_proxy_response(response)

            def _drop(self) -> None:
                self.close_connection = True

            def _send_gateway_error(self, error: GatewayError) -> None:
                status, headers, body = error.render()
                self._send(status, body, headers)

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _send_proxy_response(self, response: dict[str, Any]) -> None:
                raw = response.get("body") or ""
                payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
                self.send_response(int(response["statusCode"]))
                headers: dict[str, list[str]] = {
                    name: [str(value)] for name, value in (response.get("headers") or {}).items()
                }
                for name, values in (response.get("multiValueHeaders") or {}).items():
                    headers[name] = [str(value) for value in values]
                for name, values in headers.items():
                    if name.lower() != "content-length":
                        for value in values:
                            self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", api.region, format % args)

        return RequestHandler
