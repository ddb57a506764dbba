"""dr-failover-within-rto agrees with the arithmetic for any health-check timing and TTL."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_stack import REGIONS, build_good_stack, find

from payments_dr import contract
from payments_dr.policy import DrTargets, evaluate


@settings(max_examples=60, deadline=None)
@given(
    interval=st.sampled_from([10.0, 30.0]),
    threshold=st.integers(min_value=1, max_value=10),
    ttl=st.one_of(st.none(), st.integers(min_value=0, max_value=3600)),
    target=st.integers(min_value=60, max_value=3600),
)
def test_failover_time_is_checked_against_the_target(
    interval: float, threshold: int, ttl: int | None, target: int
) -> None:
    stack = build_good_stack()
    east, west = REGIONS
    check = find(stack, f"health-{east}")["inputs"]
    check["requestInterval"], check["failureThreshold"] = interval, float(threshold)
    record = find(stack, f"failover-{east}")["inputs"]
    if ttl is not None:  # a plain record with its own TTL instead of an alias
        del record["aliases"]
        record["ttl"] = float(ttl)
    dns_seconds = contract.ALIAS_RECORD_TTL_SECONDS if ttl is None else ttl
    margin = DrTargets().rto_margin_seconds

    violations = evaluate(stack, {contract.DrBudgetField.RTO_TARGET_SECONDS: target})

    # The untouched record: 10 s x 3 + 60 s alias TTL + margin.
    expected = set()
    if interval * threshold + dns_seconds + margin > target:
        expected.add(f"failover-{east}")
    if 10 * 3 + contract.ALIAS_RECORD_TTL_SECONDS + margin > target:
        expected.add(f"failover-{west}")
    assert {v.rule for v in violations} <= {"dr-failover-within-rto"}
    assert {v.resource_name for v in violations} == expected
