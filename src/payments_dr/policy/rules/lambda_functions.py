"""Lambda: private networking, traced, bounded, and no secrets in the environment."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from payments_dr.policy import tokens
from payments_dr.policy.model import ResourceRule, ResourceView
from payments_dr.policy.props import describe, get, number, strings, text

_FUNCTIONS = frozenset({tokens.LAMBDA_FUNCTION})

# Variable names that announce a secret; their value may only point at where the secret lives.
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|ACCESS_?KEY", re.IGNORECASE
)
# A reference to a secret store (SSM parameter path or an ARN) rather than the secret itself.
SECRET_REFERENCE = re.compile(r"^(/[\w.\-/]+|arn:aws[\w-]*:(ssm|secretsmanager|kms):.+)$")
# Values that are secrets whatever the variable is called.
SECRET_VALUES = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a URL with a password", re.compile(r"://[^/\s:@]+:[^/\s@]+@")),
    ("a live payment-provider key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{8,}")),
)


def _check_vpc(view: ResourceView) -> Iterator[str]:
    vpc = view.props.get("vpcConfig")
    if not strings(get(vpc, "subnetIds")) or not strings(get(vpc, "securityGroupIds")):
        yield (
            f"{describe(view)} does not run in a VPC. Fix: set vpc_config with the region's "
            "private subnet ids and the function security group."
        )


def _check_tracing(view: ResourceView) -> Iterator[str]:
    if text(get(view.props, "tracingConfig", "mode")) != "Active":
        yield (
            f"{describe(view)} has no active X-Ray tracing. "
            "Fix: set tracing_config={'mode': 'Active'}."
        )


# Powertools records every handler's response as trace metadata unless told not to; a
# payment API's responses hold payments and keys.
CAPTURE_RESPONSE_ENV = "POWERTOOLS_TRACER_CAPTURE_RESPONSE"


def _check_trace_responses(view: ResourceView) -> Iterator[str]:
    if text(get(view.props, "tracingConfig", "mode")) != "Active":
        return
    value = get(view.props, "environment", "variables", CAPTURE_RESPONSE_ENV)
    if text(value).lower() != "false":
        yield (
            f"{describe(view)} is traced and may record its responses in X-Ray. Fix: set "
            f"{CAPTURE_RESPONSE_ENV}=false in its environment (and capture_response=False on "
            "the handler's tracer decorator)."
        )


def _check_concurrency(view: ResourceView) -> Iterator[str]:
    reserved = number(view.props.get("reservedConcurrentExecutions"))
    if reserved is None or reserved < 1:
        shown = "unset" if reserved is None else f"{reserved:.0f}"
        yield (
            f"{describe(view)} has unbounded concurrency (reserved_concurrent_executions is "
            f"{shown}). Fix: reserve a positive limit so one function cannot starve the others "
            "or overload the table."
        )


def _check_environment(view: ResourceView) -> Iterator[str]:
    variables = get(view.props, "environment", "variables")
    if not isinstance(variables, Mapping):
        return
    for key, raw in variables.items():
        value = text(raw)
        if SECRET_NAME.search(key) and value and not SECRET_REFERENCE.match(value):
            yield (
                f"{describe(view)}: environment variable {key} holds a plaintext secret. Fix: "
                "store it in SSM (SecureString) or Secrets Manager and pass only its name."
            )
            continue
        for kind, pattern in SECRET_VALUES:
            if pattern.search(value):
                yield (
                    f"{describe(view)}: environment variable {key} contains {kind}. Fix: move "
                    "it to SSM (SecureString) or Secrets Manager and rotate it."
                )
                break


RULES = (
    ResourceRule(
        name="lambda-in-vpc",
        description="Lambda functions run in private subnets of a VPC.",
        resource_types=_FUNCTIONS,
        check=_check_vpc,
    ),
    ResourceRule(
        name="lambda-active-tracing",
        description="Lambda functions have active X-Ray tracing.",
        resource_types=_FUNCTIONS,
        check=_check_tracing,
    ),
    ResourceRule(
        name="lambda-traces-without-responses",
        description="Traced Lambda functions keep their responses out of X-Ray.",
        resource_types=_FUNCTIONS,
        check=_check_trace_responses,
    ),
    ResourceRule(
        name="lambda-bounded-concurrency",
        description="Lambda functions reserve a bounded, positive concurrency.",
        resource_types=_FUNCTIONS,
        check=_check_concurrency,
    ),
    ResourceRule(
        name="lambda-no-plaintext-secrets",
        description="Lambda environment variables hold no plaintext secrets.",
        resource_types=_FUNCTIONS,
        check=_check_environment,
    ),
)
