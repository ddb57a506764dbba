"""Each rule passes the compliant stack and catches a deliberately broken one, by name."""

from __future__ import annotations

import pytest
from cases_access import CASES as ACCESS_CASES
from cases_data import CASES as DATA_CASES
from cases_dr import CASES as DR_CASES
from mutations import EAST, Case
from policy_stack import REGIONS, api_body, build_good_stack, find

from payments_dr.contract import HEALTH_PATH
from payments_dr.policy import RULES, evaluate
from payments_dr.policy.model import Violation

CASES = [*DATA_CASES, *ACCESS_CASES, *DR_CASES]


def test_a_web_acl_that_samples_nothing_needs_no_data_protection() -> None:
    stack = build_good_stack()
    for region in REGIONS:
        acl = find(stack, f"web-acl-{region}")["inputs"]
        acl.pop("dataProtectionConfig")
        acl["visibilityConfig"]["sampledRequestsEnabled"] = False
    assert evaluate(stack) == []


def test_every_rule_is_exercised_by_a_broken_case() -> None:
    assert {rule.name for rule in RULES} == {case.rule for case in CASES}


def test_the_health_check_may_stay_open_and_an_unknown_body_is_not_judged() -> None:
    stack = build_good_stack()
    body = api_body(EAST)
    assert body["paths"][HEALTH_PATH]["get"]["security"] == []
    find(stack, f"rest-api-{EAST}")["inputs"]["body"] = None  # a preview may not know it yet
    assert evaluate(stack) == []


def test_rule_names_are_unique() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))


def test_compliant_stack_passes_every_rule() -> None:
    assert evaluate(build_good_stack()) == []


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_resource_is_caught(case: Case) -> None:
    stack = build_good_stack()
    case.mutate(stack)

    violations = evaluate(stack)

    assert {v.rule for v in violations} == {case.rule, *case.also}, _describe(violations)
    assert all("Fix:" in v.message for v in violations)
    named = [v for v in violations if v.rule == case.rule and v.resource_name == case.resource]
    assert named, _describe(violations)
    assert any(case.message in v.message for v in named), _describe(named)


def _describe(violations: list[Violation]) -> str:
    return "\n".join(f"{v.rule}: {v.message}" for v in violations)
