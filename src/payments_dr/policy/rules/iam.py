"""IAM: least privilege in identity policies, and roles only a single, intended service assumes."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from typing import Any

from payments_dr.policy import tokens
from payments_dr.policy.model import (
    Finding,
    ResourceRule,
    ResourceView,
    StackRule,
    StackView,
)
from payments_dr.policy.props import (
    InvalidDocumentError,
    blocks,
    describe,
    get,
    policy_document,
    resolve,
    statements,
    strings,
    text,
)

# Actions AWS does not authorize per resource, so `Resource: "*"` is the only way to grant them.
# Keep this list short and explain every entry: anything else with `Resource: "*"` is a violation.
ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS = frozenset(
    action.lower()
    for action in (
        # X-Ray: active tracing sends segments and fetches sampling rules; no resource types.
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
        # Lambda in a VPC: managing the function's network interfaces (what the AWS managed
        # AWSLambdaVPCAccessExecutionRole grants); Describe* calls have no resource types.
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeVpcs",
        # Custom metrics: scoped by a cloudwatch:namespace condition, not by resource.
        "cloudwatch:PutMetricData",
        # Listing parameter metadata has no resource type (reading values is scoped by path).
        "ssm:DescribeParameters",
        # Listing the account's stream ARNs (a stream consumer's first call) has no resource
        # type; reading a stream (DescribeStream, GetRecords...) is scoped to its ARN.
        "dynamodb:ListStreams",
    )
)
# Actions AWS authorizes against one fixed resource, whatever the call asks for: a grant on
# any narrower ARN never matches and the call is denied. `{region}`/`{account}` come from
# the granted ARN. Describe/List calls of services without resource types are checked
# against "*"; CloudWatch Logs checks DescribeLogGroups against the account's log-group space.
EVALUATED_AGAINST = {
    **{
        action.lower(): "*"
        for action in (
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeVpcs",
            "ssm:DescribeParameters",
            "dynamodb:ListStreams",
            "sqs:ListQueues",
        )
    },
    "logs:describeloggroups": "arn:aws:logs:{region}:{account}:log-group::log-stream:",
}
_ARN_FIELDS = re.compile(r"^arn:[^:]+:[^:]+:(?P<region>[^:]*):(?P<account>[^:]*):")
# AWS managed policies that amount to administrator access.
ADMIN_POLICY_NAMES = frozenset({"AdministratorAccess", "PowerUserAccess", "IAMFullAccess"})
SERVICE_WILDCARD = re.compile(r"^[a-z0-9-]+:\*$", re.IGNORECASE)
TRUST_ACTIONS = frozenset({"sts:assumerole", "sts:tagsession"})
LAMBDA_SERVICE = "lambda.amazonaws.com"
S3_SERVICE = "s3.amazonaws.com"
APIGATEWAY_SERVICE = "apigateway.amazonaws.com"

_IDENTITY_POLICY_TYPES = frozenset(
    {
        tokens.IAM_ROLE,
        tokens.IAM_ROLE_POLICY,
        tokens.IAM_POLICY,
        tokens.IAM_USER_POLICY,
        tokens.IAM_GROUP_POLICY,
    }
)
_ROLE_KEYS = ("arn", "name")


def _raw_documents(view: ResourceView) -> list[tuple[str, Any]]:
    """(label, raw document) for each identity policy a resource carries."""
    if view.type == tokens.IAM_ROLE:
        return [
            (f"inline policy '{text(get(inline, 'name')) or '?'}'", get(inline, "policy"))
            for inline in blocks(view.props.get("inlinePolicies"))
        ]
    return [("policy", view.props.get("policy"))]


def _documents(view: ResourceView) -> list[tuple[str, Mapping[str, Any]]]:
    """Readable identity policies; unreadable ones are reported by `iam-readable-documents`."""
    readable = []
    for label, raw in _raw_documents(view):
        try:
            document = policy_document(raw)
        except InvalidDocumentError:
            continue
        if document is not None:
            readable.append((label, document))
    return readable


def _allow_statements(view: ResourceView) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for label, document in _documents(view):
        for statement in statements(document):
            if statement.get("Effect") == "Allow":
                yield label, statement


def _check_readable(view: ResourceView) -> Iterator[str]:
    for label, raw in _raw_documents(view):
        try:
            policy_document(raw)
        except InvalidDocumentError as error:
            yield f"{describe(view)}: {label} is {error}. Fix: pass a JSON policy document."


def _check_wildcard_action(view: ResourceView) -> Iterator[str]:
    for label, statement in _allow_statements(view):
        if "*" in strings(statement.get("Action")) or "NotAction" in statement:
            yield (
                f"{describe(view)}: {label} allows every action ('Action: \"*\"' or "
                "NotAction). Fix: list the exact actions the principal calls."
            )


def _check_service_wildcard(view: ResourceView) -> Iterator[str]:
    for label, statement in _allow_statements(view):
        wide = [a for a in strings(statement.get("Action")) if SERVICE_WILDCARD.match(a)]
        if wide:
            yield (
                f"{describe(view)}: {label} allows service-wide actions {', '.join(wide)}. "
                "Fix: list the exact actions instead."
            )


def _check_wildcard_resource(view: ResourceView) -> Iterator[str]:
    for label, statement in _allow_statements(view):
        if "*" not in strings(statement.get("Resource")) and "NotResource" not in statement:
            continue
        scoped = [
            action
            for action in strings(statement.get("Action"))
            if action.lower() not in ACTIONS_WITHOUT_RESOURCE_LEVEL_PERMISSIONS
        ]
        if "NotAction" in statement:  # every action but a few: scoped ones among them
            excluded = ", ".join(strings(statement.get("NotAction"))) or "none"
            scoped.append(f"every action except {excluded}")
        if scoped:
            yield (
                f"{describe(view)}: {label} grants {', '.join(scoped)} on every resource, though "
                "they support resource-level permissions. Fix: name the ARNs they act on "
                "(table, queue, parameter path, bucket prefix, key)."
            )


def _covers(granted: str, evaluated: str) -> bool:
    """Whether a granted resource (IAM wildcards * and ?) matches what AWS evaluates."""
    fields = _ARN_FIELDS.match(granted)
    target = evaluated.format(
        region=fields["region"] if fields else "", account=fields["account"] if fields else ""
    )
    return fnmatch.fnmatchcase(target, granted)


def _check_list_actions(view: ResourceView) -> Iterator[str]:
    for label, statement in _allow_statements(view):
        granted = strings(statement.get("Resource"))
        # NotResource grants everything but the listed ARNs: covered unless one excludes it.
        excluded = strings(statement.get("NotResource"))
        negated = "NotResource" in statement
        for action in strings(statement.get("Action")):
            evaluated = EVALUATED_AGAINST.get(action.lower())
            if evaluated is None:
                continue
            if negated != any(_covers(r, evaluated) for r in (excluded if negated else granted)):
                continue
            shown = evaluated.format(region="REGION", account="ACCOUNT")
            where = f"everything but {', '.join(excluded)}" if negated else ", ".join(granted)
            yield (
                f"{describe(view)}: {label} grants {action} on {where}, but AWS "
                f"authorizes it against {shown!r}, which none of them matches: the call is "
                f"denied. Fix: grant {action} on "
                + ('"*"' if evaluated == "*" else "arn:aws:logs:REGION:ACCOUNT:log-group:*")
                + " in a statement of its own."
            )


def _is_admin_arn(arn: str) -> bool:
    owner, _, policy_name = arn.rpartition("/")
    return owner.endswith(":iam::aws:policy") and policy_name in ADMIN_POLICY_NAMES


def _check_admin(view: ResourceView) -> Iterator[str]:
    for label, statement in _allow_statements(view):
        actions = strings(statement.get("Action"))
        if "*" in actions and "*" in strings(statement.get("Resource")):
            yield (
                f"{describe(view)}: {label} grants administrator access (* on *). Fix: replace "
                "it with the function's own least-privilege statements."
            )
    attached = [
        *strings(view.props.get("managedPolicyArns")),
        *strings(view.props.get("policyArn")),
    ]
    for arn in attached:
        if _is_admin_arn(arn):
            yield (
                f"{describe(view)} attaches the administrator-level managed policy {arn}. Fix: "
                "detach it and grant only the actions the role needs."
            )


def trusted_services(role: ResourceView) -> set[str]:
    """The service principals a role's trust policy admits (unreadable policy: none)."""
    try:
        document = policy_document(role.props.get("assumeRolePolicy"))
    except InvalidDocumentError:
        return set()
    services: set[str] = set()
    for statement in statements(document):
        if statement.get("Effect") == "Allow":
            services.update(strings(get(statement, "Principal", "Service")))
    return services


def _check_trust_policy(view: ResourceView) -> Iterator[str]:
    try:
        document = policy_document(view.props.get("assumeRolePolicy"))
    except InvalidDocumentError as error:
        yield f"{describe(view)}: the trust policy is {error}. Fix: pass a JSON policy document."
        return
    problems = []
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if not isinstance(principal, Mapping) or set(principal) != {"Service"}:
            problems.append(f"it trusts {principal!r}, not only an AWS service")
        elif "*" in "".join(strings(principal.get("Service"))):
            problems.append("it trusts a wildcard service")
        extra = {a.lower() for a in strings(statement.get("Action"))} - TRUST_ACTIONS
        if extra:
            problems.append(f"it allows {', '.join(sorted(extra))}")
    services = trusted_services(view)
    if not services:
        problems.append("it names no service principal")
    elif len(services) > 1:
        problems.append(f"it trusts {len(services)} services ({', '.join(sorted(services))})")
    if problems:
        yield (
            f"{describe(view)} has a loose trust policy: {'; '.join(problems)}. Fix: allow only "
            "sts:AssumeRole to the one service principal that uses the role."
        )


def _role_users(stack: StackView) -> Iterator[tuple[ResourceView, str, str]]:
    """(user, property naming its role, service that must assume it)."""
    for function in stack.of_type(tokens.LAMBDA_FUNCTION):
        yield function, "role", LAMBDA_SERVICE
    for replication in stack.of_type(tokens.S3_BUCKET_REPLICATION):
        yield replication, "role", S3_SERVICE
    for account in stack.of_type(tokens.APIGATEWAY_ACCOUNT):
        yield account, "cloudwatchRoleArn", APIGATEWAY_SERVICE


def _check_intended_service(stack: StackView) -> Iterator[Finding]:
    roles = stack.of_type(tokens.IAM_ROLE)
    for user, prop, service in _role_users(stack):
        for role in resolve(user, prop, roles, *_ROLE_KEYS):
            services = trusted_services(role)
            if services != {service}:
                shown = ", ".join(sorted(services)) or "no service"
                yield Finding(
                    f"{describe(role)} is used by {describe(user)} but trusts {shown}. Fix: its "
                    f"trust policy must allow only {service}.",
                    role.urn,
                )


RULES = (
    ResourceRule(
        name="iam-readable-documents",
        description="IAM policy documents are valid JSON objects.",
        resource_types=_IDENTITY_POLICY_TYPES,
        check=_check_readable,
    ),
    ResourceRule(
        name="iam-no-wildcard-action",
        description='No IAM policy allows Action "*" (or NotAction).',
        resource_types=_IDENTITY_POLICY_TYPES,
        check=_check_wildcard_action,
    ),
    ResourceRule(
        name="iam-no-service-wildcard",
        description='No IAM policy allows a service-wide "service:*" action.',
        resource_types=_IDENTITY_POLICY_TYPES,
        check=_check_service_wildcard,
    ),
    ResourceRule(
        name="iam-no-wildcard-resource",
        description=(
            'No IAM policy grants Resource "*" to actions that support resource-level permissions.'
        ),
        resource_types=_IDENTITY_POLICY_TYPES,
        check=_check_wildcard_resource,
    ),
    ResourceRule(
        name="iam-list-actions-as-evaluated",
        description=(
            "List and describe actions are granted on the resource AWS authorizes them against "
            '("*", or the account\'s log-group space for logs:DescribeLogGroups).'
        ),
        resource_types=_IDENTITY_POLICY_TYPES,
        check=_check_list_actions,
    ),
    ResourceRule(
        name="iam-no-admin",
        description="No inline administrator policy and no administrator managed policy.",
        resource_types=_IDENTITY_POLICY_TYPES
        | {tokens.IAM_ROLE_POLICY_ATTACHMENT, tokens.IAM_POLICY_ATTACHMENT},
        check=_check_admin,
    ),
    ResourceRule(
        name="iam-trust-single-service",
        description="Role trust policies allow sts:AssumeRole to exactly one AWS service.",
        resource_types=frozenset({tokens.IAM_ROLE}),
        check=_check_trust_policy,
    ),
    StackRule(
        name="iam-trust-intended-service",
        description=(
            "Each role is trusted by the service that uses it: Lambda for function roles, S3 for "
            "replication, API Gateway for its logging role."
        ),
        check=_check_intended_service,
    ),
)
