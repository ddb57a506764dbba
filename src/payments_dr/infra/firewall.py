"""Regional AWS WAF in front of one region's API stage: managed rules, rate and size limits.

Both regions get the same web ACL, so a client blocked in one region is treated the same
after failover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from payments_dr import contract
from payments_dr.infra.alarms import AlarmPurpose, alarm_name
from payments_dr.service.model import MAX_BODY_BYTES

# AWS managed rule groups, by priority: broad common exploits, then known-bad inputs.
MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
RATE_RULE = "requests-per-client-ip"
BODY_SIZE_RULE = "body-size-limit"
# WAF log group names must start with this prefix.
WAF_LOG_GROUP_PREFIX = "aws-waf-logs-"
BLOCKED_ALARM_PERIOD_SECONDS = 300
BLOCKED_ALARM_THRESHOLD = 500  # blocked requests per period worth an operator's look


@dataclass(frozen=True)
class FirewallArgs:
    stack: str
    region: str
    stage_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    requests_per_ip_per_5_minutes: int
    log_retention_days: int
    tags: Mapping[str, str]


def data_protection() -> aws.wafv2.WebAclDataProtectionConfigArgsDict:
    """What the ACL blanks out of every copy of a request it keeps: logs, sampled requests.

    Logging redaction does not reach sampled requests; the ACL's data protection does
    (AWS WAF: "data protection ... alters the data that's available for any other data
    collection activity, including ... web ACL request sampling"). The merchant key is
    replaced; the idempotency key is hashed, which still correlates a client's retries.
    """
    return {
        "data_protections": [
            {
                "action": "SUBSTITUTION",
                "field": {
                    "field_type": "SINGLE_HEADER",
                    "field_keys": [contract.AUTH_HEADER.lower()],
                },
                # Protected in rule match and rate-based details too.
                "exclude_rule_match_details": False,
                "exclude_rate_based_details": False,
            },
            {
                "action": "HASH",
                "field": {
                    "field_type": "SINGLE_HEADER",
                    "field_keys": [contract.IDEMPOTENCY_HEADER.lower()],
                },
                "exclude_rule_match_details": False,
                "exclude_rate_based_details": False,
            },
        ]
    }


def metric_name(stack: str, rule: str) -> str:
    return f"{contract.PROJECT}-{stack}-{rule}"


def visibility(stack: str, rule: str) -> aws.wafv2.WebAclVisibilityConfigArgsDict:
    return {
        "cloudwatch_metrics_enabled": True,
        "metric_name": metric_name(stack, rule),
        "sampled_requests_enabled": True,
    }


def web_acl_rules(
    stack: str, requests_per_ip_per_5_minutes: int
) -> list[aws.wafv2.WebAclRuleArgsDict]:
    rules: list[aws.wafv2.WebAclRuleArgsDict] = [
        {
            "name": group,
            "priority": priority,
            "override_action": {"none": {}},  # keep the group's own block actions
            "statement": {"managed_rule_group_statement": {"name": group, "vendor_name": "AWS"}},
            "visibility_config": visibility(stack, group),
        }
        for priority, group in enumerate(MANAGED_RULE_GROUPS)
    ]
    rules.append(
        {
            "name": RATE_RULE,
            "priority": len(rules),
            "action": {"block": {}},
            "statement": {
                "rate_based_statement": {
                    "aggregate_key_type": "IP",
                    "limit": requests_per_ip_per_5_minutes,
                    "evaluation_window_sec": 300,
                }
            },
            "visibility_config": visibility(stack, RATE_RULE),
        }
    )
    rules.append(
        {
            "name": BODY_SIZE_RULE,
            "priority": len(rules),
            "action": {"block": {}},
            "statement": {
                "size_constraint_statement": {
                    "comparison_operator": "GT",
                    "size": MAX_BODY_BYTES,  # the service's own limit: refuse larger at the edge
                    # A body past WAF's inspection limit is far too large: block it too.
                    "field_to_match": {"body": {"oversize_handling": "MATCH"}},
                    "text_transformations": [{"priority": 0, "type": "NONE"}],
                }
            },
            "visibility_config": visibility(stack, BODY_SIZE_RULE),
        }
    )
    return rules


class Firewall(pulumi.ComponentResource):
    """The web ACL of one region, its association with the stage, its logs and alarm."""

    def __init__(
        self, name: str, args: FirewallArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("payments-dr:infra:Firewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        acl_name = f"{contract.PROJECT}-{args.stack}"
        self.web_acl = aws.wafv2.WebAcl(
            f"{name}-web-acl",
            region=region,
            name=acl_name,
            description="Payment API: managed rules, per-IP rate limit, body size limit",
            scope="REGIONAL",
            default_action=aws.wafv2.WebAclDefaultActionArgs(
                allow=aws.wafv2.WebAclDefaultActionAllowArgs()
            ),
            rules=web_acl_rules(args.stack, args.requests_per_ip_per_5_minutes),
            visibility_config=visibility(args.stack, "web-acl"),
            data_protection_config=data_protection(),
            tags=dict(args.tags),
            opts=child,
        )
        aws.wafv2.WebAclAssociation(
            f"{name}-stage-association",
            region=region,
            resource_arn=args.stage_arn,
            web_acl_arn=self.web_acl.arn,
            opts=child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            region=region,
            name=f"{WAF_LOG_GROUP_PREFIX}{contract.PROJECT}-{args.stack}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            tags=dict(args.tags),
            opts=child,
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging",
            region=region,
            resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_group.arn],
            # Merchant API keys travel in this header: WAF logs must never hold them.
            redacted_fields=[{"single_header": {"name": contract.AUTH_HEADER.lower()}}],
            opts=child,
        )
        self.blocked_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-blocked-requests",
            region=region,
            name=alarm_name(args.stack, region, AlarmPurpose.WAF_BLOCKED),
            alarm_description="The web ACL blocks many requests: an attack or a broken client",
            namespace="AWS/WAFV2",
            metric_name="BlockedRequests",
            dimensions={"WebACL": acl_name, "Region": region, "Rule": "ALL"},
            statistic="Sum",
            period=BLOCKED_ALARM_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=BLOCKED_ALARM_THRESHOLD,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.alarm_topic_arn],
            ok_actions=[args.alarm_topic_arn],
            tags=dict(args.tags),
            opts=child,
        )
        self.register_outputs({"web_acl_arn": self.web_acl.arn})
