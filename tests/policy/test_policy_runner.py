"""The offline runner: synthesized resources in, verdicts and an exit decision out."""

from __future__ import annotations

import json

from policy_stack import REGIONS, build_good_stack, find

from payments_dr import contract
from payments_dr.policy import RULES, Violation, evaluate, format_verdicts
from payments_dr.policy.runner import targets_from_budget, view_from_synthesized


def test_verdicts_list_every_rule_and_a_summary_when_all_pass() -> None:
    text = format_verdicts([])
    lines = text.splitlines()
    assert lines[:-1] == [f"pass  {rule.name}" for rule in RULES]
    assert lines[-1] == f"policy: {len(RULES)}/{len(RULES)} rules pass, 0 violation(s)"


def test_verdicts_show_each_violation_under_its_failing_rule() -> None:
    violations = [
        Violation("sqs-encryption", "Queue 'a' is not encrypted. Fix: x.", "urn:a"),
        Violation("sqs-encryption", "Queue 'b' is not encrypted. Fix: x.", "urn:b"),
        Violation("lambda-in-vpc", "Function 'f' does not run in a VPC. Fix: y.", "urn:f"),
    ]
    lines = format_verdicts(violations).splitlines()

    start = lines.index("FAIL  sqs-encryption")
    assert lines[start + 1 : start + 3] == [
        "      - Queue 'a' is not encrypted. Fix: x.",
        "      - Queue 'b' is not encrypted. Fix: x.",
    ]
    assert "FAIL  lambda-in-vpc" in lines
    assert "pass  s3-versioning" in lines
    assert lines[-1] == f"policy: {len(RULES) - 2}/{len(RULES)} rules pass, 3 violation(s)"


def test_the_stack_budget_sets_the_rto_target() -> None:
    stack = build_good_stack()
    # Detection 10 s x 3 + TTL 60 s + margin 60 s = 150 s for each failover record.
    tight = {contract.DrBudgetField.RTO_TARGET_SECONDS: 149}

    violations = evaluate(stack, budget=tight)

    assert {v.rule for v in violations} == {"dr-failover-within-rto"}
    assert {v.resource_name for v in violations} == {f"failover-{r}" for r in REGIONS}
    assert evaluate(stack, budget={contract.DrBudgetField.RTO_TARGET_SECONDS: 150}) == []


def test_targets_fall_back_to_policy_defaults() -> None:
    assert targets_from_budget(None).rto_target_seconds == 900.0
    assert targets_from_budget({}).max_replication_alarm_ms == 30_000.0


def test_synthesized_resources_without_id_or_inputs_are_read() -> None:
    view = view_from_synthesized({"type": "t", "name": "n", "urn": "u", "inputs": None})
    assert (view.id, view.region, dict(view.props)) == ("", "", {})


def test_a_dead_letter_queue_is_recognised_from_the_queue_redriving_to_it() -> None:
    stack = build_good_stack()
    for region in REGIONS:
        del find(stack, f"retry-dlq-{region}")["inputs"]["redriveAllowPolicy"]
        find(stack, f"retry-dlq-{region}")["inputs"]["messageRetentionSeconds"] = 60.0

    violations = evaluate(stack)

    assert {v.rule for v in violations} == {"sqs-dlq-retention"}
    assert {v.resource_name for v in violations} == {f"retry-dlq-{r}" for r in REGIONS}


def test_a_queue_that_denies_redrive_is_not_taken_for_a_dead_letter_queue() -> None:
    stack = build_good_stack()
    east, _ = REGIONS
    find(stack, f"retry-dlq-{east}")["inputs"]["redriveAllowPolicy"] = json.dumps(
        {"redrivePermission": "denyAll"}
    )
    del find(stack, f"retry-{east}")["inputs"]["redrivePolicy"]

    violations = evaluate(stack)

    assert {v.rule for v in violations} == {"sqs-redrive-policy"}
    assert {v.resource_name for v in violations} == {f"retry-{east}", f"retry-dlq-{east}"}
