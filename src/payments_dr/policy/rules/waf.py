"""AWS WAF: a regional web ACL in front of every API stage, in every region."""

from __future__ import annotations

from collections.abc import Iterator

from payments_dr.policy import tokens
from payments_dr.policy.model import Finding, ResourceView, StackRule, StackView
from payments_dr.policy.props import describe, refers_to, resolve, text


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


RULES = (
    StackRule(
        name="waf-web-acl-on-every-stage",
        description="Every API stage, in every region, has a regional WAF web ACL associated.",
        check=_check_stage_web_acl,
    ),
)
