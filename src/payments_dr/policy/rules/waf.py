"""AWS WAF: a regional web ACL in front of every API stage, in every region."""

from __future__ import annotations

from collections.abc import Iterator

from payments_dr.policy import tokens
from payments_dr.policy.model import Finding, ResourceRule, ResourceView, StackRule, StackView
from payments_dr.policy.props import (
    blocks,
    describe,
    get,
    refers_to,
    resolve,
    strings,
    text,
    truthy,
)

# The header merchant API keys travel in (contract.AUTH_HEADER); header names are
# case-insensitive.
PROTECTED_HEADER = "authorization"


def _stage_arn_suffix(stage: ResourceView) -> str:
    """How a stage ARN ends: .../restapis/<api id>/stages/<stage name>."""
    return (
        f"/restapis/{text(stage.props.get('restApi'))}/stages/{text(stage.props.get('stageName'))}"
    )


def _protects(association: ResourceView, stage: ResourceView, stages: list[ResourceView]) -> bool:
    if association.region != stage.region:
        return False
    if refers_to(association, "resourceArn", stage, stages, "arn"):
        return True
    arn = text(association.props.get("resourceArn"))
    return bool(arn) and arn.endswith(_stage_arn_suffix(stage))


def _check_stage_web_acl(stack: StackView) -> Iterator[Finding]:
    stages = stack.of_type(tokens.APIGATEWAY_STAGE)
    web_acls = stack.of_type(tokens.WAFV2_WEB_ACL)
    associations = stack.of_type(tokens.WAFV2_WEB_ACL_ASSOCIATION)
    for stage in stages:
        protecting_acls = [
            acl
            for association in associations
            if _protects(association, stage, stages)
            for acl in resolve(association, "webAclArn", web_acls, "arn")
            if acl.region == stage.region and text(acl.props.get("scope")) == "REGIONAL"
        ]
        if not protecting_acls:
            yield Finding(
                f"{describe(stage)} has no web ACL. Fix: associate a REGIONAL "
                "aws.wafv2.WebAcl of the same region with the stage ARN "
                "(aws.wafv2.WebAclAssociation).",
                stage.urn,
            )


def _samples(acl: ResourceView) -> bool:
    configs = [acl.props.get("visibilityConfig")] + [
        get(rule, "visibilityConfig") for rule in blocks(acl.props.get("rules"))
    ]
    return any(truthy(get(config, "sampledRequestsEnabled")) for config in configs)


def _protects_header(acl: ResourceView, header: str) -> bool:
    for protection in blocks(get(acl.props, "dataProtectionConfig", "dataProtections")):
        field = get(protection, "field")
        keys = {key.lower() for key in strings(get(field, "fieldKeys"))}
        if (
            text(get(field, "fieldType")) == "SINGLE_HEADER"
            and header in keys
            and text(get(protection, "action")) in {"SUBSTITUTION", "HASH"}
            and not truthy(get(protection, "excludeRuleMatchDetails"))
            and not truthy(get(protection, "excludeRateBasedDetails"))
        ):
            return True
    return False


def _check_sampling_protection(view: ResourceView) -> Iterator[str]:
    if _samples(view) and not _protects_header(view, PROTECTED_HEADER):
        yield (
            f"{describe(view)} samples requests without protecting the {PROTECTED_HEADER} "
            "header: sampled requests keep every header in full, and logging redaction does "
            "not apply to them. Fix: add data_protection_config with a SINGLE_HEADER "
            f"protection of '{PROTECTED_HEADER}' (SUBSTITUTION or HASH, no exclusions), or "
            "set sampled_requests_enabled=False everywhere."
        )


RULES = (
    ResourceRule(
        name="waf-sampling-data-protection",
        description="A web ACL that samples requests protects the Authorization header.",
        resource_types=frozenset({tokens.WAFV2_WEB_ACL}),
        check=_check_sampling_protection,
    ),
    StackRule(
        name="waf-web-acl-on-every-stage",
        description="Every API stage, in every region, has a regional WAF web ACL associated.",
        check=_check_stage_web_acl,
    ),
)
