"""Adapts the rules to pulumi-policy, for `pulumi preview --policy-pack policy`.

Only the pack's entry module (policy/__main__.py) constructs the `PolicyPack`, which starts the
analyzer server; everything here can be imported and exercised without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyProviderResource,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from payments_dr import contract
from payments_dr.policy.model import (
    DrTargets,
    ResourceRule,
    ResourceView,
    Rule,
    StackRule,
    StackView,
)
from payments_dr.policy.rules import RULES

PACK_NAME = f"{contract.PROJECT}-policy"

# Policy config keys (`pulumi preview --policy-pack-config`) for the DR targets.
_TARGET_CONFIG = {
    "rtoTargetSeconds": "rto_target_seconds",
    "rtoMarginSeconds": "rto_margin_seconds",
    "maxReplicationAlarmMs": "max_replication_alarm_ms",
}


def _targets_schema() -> PolicyConfigSchema:
    defaults = DrTargets()
    return PolicyConfigSchema(
        properties={
            key: {"type": "number", "minimum": 0, "default": getattr(defaults, field)}
            for key, field in _TARGET_CONFIG.items()
        }
    )


def targets_from_config(config: Mapping[str, Any]) -> DrTargets:
    values = {field: float(config[key]) for key, field in _TARGET_CONFIG.items() if key in config}
    return DrTargets(**values)


def _region(props: Mapping[str, Any], provider: PolicyProviderResource | None) -> str:
    """A resource's own `region` (pulumi-aws 7), else its provider's."""
    region = props.get("region") or (provider.props.get("region") if provider else None)
    return region if isinstance(region, str) else ""


def view_from_args(args: ResourceValidationArgs) -> ResourceView:
    return ResourceView(
        type=args.resource_type,
        name=args.name,
        urn=args.urn,
        props=args.props,
        region=_region(args.props, args.provider),
    )


def view_from_stack_resource(resource: PolicyResource) -> ResourceView:
    return ResourceView(
        type=resource.resource_type,
        name=resource.name,
        urn=resource.urn,
        props=resource.props,
        region=_region(resource.props, resource.provider),
        references={
            prop: frozenset(dependency.urn for dependency in dependencies)
            for prop, dependencies in resource.property_dependencies.items()
        },
        dependencies=frozenset(dependency.urn for dependency in resource.dependencies),
    )


def _resource_policy(rule: ResourceRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.resource_types:
            return
        for message in rule.check(view_from_args(args)):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _stack_policy(rule: StackRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        stack = StackView(
            [view_from_stack_resource(resource) for resource in args.resources],
            targets_from_config(args.get_config()),
        )
        for finding in rule.check(stack):
            report_violation(finding.message, finding.urn or None)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_targets_schema() if rule.uses_targets else None,
    )


def build_policies(rules: tuple[Rule, ...] = RULES) -> list[Policy]:
    return [
        _resource_policy(rule) if isinstance(rule, ResourceRule) else _stack_policy(rule)
        for rule in rules
    ]
