"""The offline runner: the pack's rules over the resources `payments_dr.synth` evaluates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from payments_dr import contract
from payments_dr.policy.model import (
    DrTargets,
    ResourceRule,
    ResourceView,
    Rule,
    StackView,
    Violation,
)
from payments_dr.policy.rules import RULES


def view_from_synthesized(resource: Mapping[str, Any]) -> ResourceView:
    """Adapts one synthesized resource (`type`, `name`, `urn`, `region`, `inputs`, and where
    present `id` and `dependencies`)."""
    return ResourceView(
        type=str(resource["type"]),
        name=str(resource["name"]),
        urn=str(resource["urn"]),
        props=resource.get("inputs") or {},
        region=str(resource.get("region") or ""),
        id=str(resource.get("id") or ""),
        dependencies=frozenset(resource.get("dependencies") or ()),
    )


def targets_from_budget(budget: Mapping[str, Any] | None) -> DrTargets:
    """DR targets from the stack's `dr_budget` output; policy defaults where it is silent."""
    defaults = DrTargets()
    if not budget:
        return defaults
    return DrTargets(
        rto_target_seconds=float(
            budget.get(contract.DrBudgetField.RTO_TARGET_SECONDS, defaults.rto_target_seconds)
        ),
        rto_margin_seconds=defaults.rto_margin_seconds,
        max_replication_alarm_ms=defaults.max_replication_alarm_ms,
    )


def run_rules(
    views: Sequence[ResourceView],
    targets: DrTargets | None = None,
    rules: Iterable[Rule] = RULES,
) -> list[Violation]:
    stack = StackView(views, targets or DrTargets())
    violations: list[Violation] = []
    for rule in rules:
        if isinstance(rule, ResourceRule):
            for view in views:
                if view.type in rule.resource_types:
                    violations.extend(
                        Violation(rule.name, message, view.urn) for message in rule.check(view)
                    )
        else:
            violations.extend(
                Violation(rule.name, finding.message, finding.urn) for finding in rule.check(stack)
            )
    return violations


def evaluate(
    resources: Iterable[Mapping[str, Any]],
    budget: Mapping[str, Any] | None = None,
) -> list[Violation]:
    """Every violation of the pack's rules by the synthesized `resources` (empty: all pass)."""
    views = [view_from_synthesized(resource) for resource in resources]
    return run_rules(views, targets_from_budget(budget))


def format_verdicts(violations: Sequence[Violation], rules: Iterable[Rule] = RULES) -> str:
    """One line per rule (pass/FAIL), each violation under its rule, and a summary line."""
    by_rule: dict[str, list[Violation]] = {}
    for violation in violations:
        by_rule.setdefault(violation.rule, []).append(violation)
    lines = []
    rule_names = [rule.name for rule in rules]
    for name in rule_names:
        found = by_rule.get(name, [])
        lines.append(f"{'FAIL' if found else 'pass'}  {name}")
        lines.extend(f"      - {violation.message}" for violation in found)
    failed = sum(1 for name in rule_names if name in by_rule)
    lines.append(
        f"policy: {len(rule_names) - failed}/{len(rule_names)} rules pass, "
        f"{len(violations)} violation(s)"
    )
    return "\n".join(lines)
