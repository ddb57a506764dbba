"""The faults a drill can inject into the primary region, and how each is cleared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from payments_dr.contract import Mode

if TYPE_CHECKING:  # the lab itself is heavy to import; the CLI lists scenarios without it
    from payments_dr.lab.lab import Lab

ON_AWS: Final = "`payments-dr drill --on-aws --stack NAME`"


class ScenarioName(StrEnum):
    REGION_OUTAGE = "region-outage"
    TABLE_OUTAGE = "table-outage"
    FENCED = "fenced"  # the name the drill on AWS uses for the same fault
    REPLICATION_STALL = "replication-stall"
    REGION_LOSS = "region-loss"
    GRAY_FAILURE = "gray-failure"


DEFAULT_SCENARIO: Final = ScenarioName.REGION_OUTAGE


class Phase(StrEnum):
    FAULT = "fault"
    RESTORE = "restore"


@dataclass(frozen=True)
class Step:
    """One action at a time relative to the fault or to its clearing (simulated seconds)."""

    phase: Phase
    offset_seconds: float
    kind: str  # timeline event kind
    detail: str
    action: Callable[[Lab], None]


@dataclass(frozen=True)
class Scenario:
    name: ScenarioName
    summary: str
    real_counterpart: str
    steps: tuple[Step, ...]
    # The primary never comes back: no failback, and what it acknowledged without
    # replicating is lost for good when the last fault step runs (the drill measures that RPO).
    permanent: bool = False
    # Health checks cannot see the fault: the operator's traffic switch moves clients. The
    # drill then holds the failover to the RTO budget, and the failback to the operator's.
    operator_switch: bool = False


def _outage(down: bool) -> Callable[[Lab], None]:
    return lambda lab: lab.set_region_outage(lab.primary, down)


def _table_outage(down: bool) -> Callable[[Lab], None]:
    return lambda lab: lab.set_table_outage(lab.primary, down)


def _mode(mode: Mode) -> Callable[[Lab], None]:
    return lambda lab: lab.set_mode(lab.primary, mode)


def _answers_lost(lab: Lab) -> None:
    lab.set_answers_lost(lab.primary, True)


def _answers_lost_then_outage(lab: Lab) -> None:
    lab.set_region_outage(lab.primary, True)
    lab.set_answers_lost(lab.primary, False)


def _gray(failing: bool) -> Callable[[Lab], None]:
    return lambda lab: lab.set_gray_failure(lab.primary, failing)


def _operator_failover(lab: Lab) -> None:
    from payments_dr.lab.operator import operator_failover  # imports the ops package

    operator_failover(lab)


def _operator_failback(lab: Lab) -> None:
    from payments_dr.lab.operator import operator_failback

    operator_failback(lab)


def _stall(lab: Lab) -> None:
    lab.stall_replication(lab.primary, True)


def _resume(lab: Lab) -> None:
    lab.stall_replication(lab.primary, False)


# Region loss: the primary's table fails first, so payments are answered 202 (queued), and is
# back shortly before the whole region goes for good, so the last payments it acknowledged
# (201) are still replicating when it is lost. Too short for a failover in between.
TABLE_LEAD_SECONDS: Final = 12.0
TABLE_BACK_BEFORE_LOSS_SECONDS: Final = 2.0

# The stall starts before the outage, so the primary's last acknowledged writes are missing
# in the secondary during failover, and lasts past the restore, so failback finds the primary
# without the payments taken during failover. The outage opens with a spell in which the
# primary still writes but its answers are lost: clients retry those payments, and once DNS
# has moved them, the retries reach a secondary that has not seen the first write.
STALL_LEAD_SECONDS: Final = 10.0
ANSWERS_LOST_SECONDS: Final = 10.0
STALL_TAIL_SECONDS: Final = 30.0

# Gray failure: the page (payments failing, seen by the other region's canary and the API's
# 5XX alarm) reaches the operator, who runs `payments-dr failover` this long after the fault.
# The failback comes this long after the region recovered, well past a health-check detection
# and a DNS TTL, so an automatic return of traffic would show before it.
OPERATOR_REACTION_SECONDS: Final = 20.0
OPERATOR_FAILBACK_AFTER_SECONDS: Final = 120.0

SCENARIOS: Final = {
    ScenarioName.REGION_OUTAGE: Scenario(
        name=ScenarioName.REGION_OUTAGE,
        summary="the primary region is lost: its API and every AWS service in it stop answering",
        real_counterpart=(
            f"a regional impairment; rehearse the same failover path on a real stack with {ON_AWS}"
        ),
        steps=(
            Step(Phase.FAULT, 0.0, "fault", "primary region outage begins", _outage(True)),
            Step(Phase.RESTORE, 0.0, "restore", "primary region is back", _outage(False)),
        ),
    ),
    ScenarioName.TABLE_OUTAGE: Scenario(
        name=ScenarioName.TABLE_OUTAGE,
        summary="DynamoDB fails in the primary: payments are queued (202), health reports 503",
        real_counterpart=(
            "DynamoDB errors in the primary (e.g. an AWS FIS experiment denying the API role's"
            f" table access); the failover itself is rehearsed with {ON_AWS}"
        ),
        steps=(
            Step(Phase.FAULT, 0.0, "fault", "primary table outage begins", _table_outage(True)),
            Step(Phase.RESTORE, 0.0, "restore", "primary table is back", _table_outage(False)),
        ),
    ),
    ScenarioName.FENCED: Scenario(
        name=ScenarioName.FENCED,
        summary="an operator fences the primary (SSM mode=fenced), then sets it active again",
        real_counterpart=f"the same switch on a real stack: {ON_AWS}",
        steps=(
            Step(Phase.FAULT, 0.0, "fault", "operator fences the primary", _mode(Mode.FENCED)),
            Step(
                Phase.RESTORE, 0.0, "restore", "operator activates the primary", _mode(Mode.ACTIVE)
            ),
        ),
    ),
    ScenarioName.REPLICATION_STALL: Scenario(
        name=ScenarioName.REPLICATION_STALL,
        summary=(
            "replication stalls; then the primary loses its answers while still writing, then"
            " the whole region; replication stays stalled for a while after the region is back"
        ),
        real_counterpart=(
            "the AWS FIS action aws:dynamodb:global-table-pause-replication around a regional"
            f" failover; the failover itself is rehearsed with {ON_AWS}"
        ),
        steps=(
            Step(Phase.FAULT, -STALL_LEAD_SECONDS, "note", "replication stalls", _stall),
            Step(
                Phase.FAULT,
                0.0,
                "fault",
                "primary's answers are lost (requests still processed)",
                _answers_lost,
            ),
            Step(
                Phase.FAULT,
                ANSWERS_LOST_SECONDS,
                "note",
                "primary region outage begins",
                _answers_lost_then_outage,
            ),
            Step(Phase.RESTORE, 0.0, "restore", "primary region is back", _outage(False)),
            Step(Phase.RESTORE, STALL_TAIL_SECONDS, "note", "replication resumes", _resume),
        ),
    ),
    ScenarioName.GRAY_FAILURE: Scenario(
        name=ScenarioName.GRAY_FAILURE,
        summary=(
            "the primary's payments fail while its health path answers 200, and its SSM and the"
            " Route 53 API are down: the operator moves traffic with the traffic switch, and"
            " only the operator's failback brings it back"
        ),
        real_counterpart=(
            "a gray failure cannot be injected safely into a real stack; the same switch and"
            f" commands are rehearsed with {ON_AWS}"
        ),
        steps=(
            Step(
                Phase.FAULT,
                0.0,
                "fault",
                "primary's payments fail (health path still 200); its SSM and the Route 53 API"
                " are down",
                _gray(True),
            ),
            Step(
                Phase.FAULT,
                OPERATOR_REACTION_SECONDS,
                "operator",
                "payments-dr failover: the switch, written outside the primary",
                _operator_failover,
            ),
            Step(
                Phase.RESTORE,
                0.0,
                "restore",
                "primary, its SSM and Route 53's API are back",
                _gray(False),
            ),
            Step(
                Phase.RESTORE,
                OPERATOR_FAILBACK_AFTER_SECONDS,
                "operator",
                "payments-dr failback: replication checked, mode active, switch serve",
                _operator_failback,
            ),
        ),
        operator_switch=True,
    ),
    ScenarioName.REGION_LOSS: Scenario(
        name=ScenarioName.REGION_LOSS,
        summary=(
            "the primary's table fails for a while (payments answered 202), recovers, then the"
            " whole region is lost and never comes back: the drill measures what was lost (RPO)"
        ),
        real_counterpart=(
            "the loss of a region cannot be rehearsed on AWS; the failover it forces is, with"
            f" {ON_AWS}, and the RPO it costs is bounded by the replication-lag alarm"
        ),
        steps=(
            Step(
                Phase.FAULT,
                0.0,
                "fault",
                "primary table fails (payments queued)",
                _table_outage(True),
            ),
            Step(
                Phase.FAULT,
                TABLE_LEAD_SECONDS - TABLE_BACK_BEFORE_LOSS_SECONDS,
                "note",
                "primary table is back",
                _table_outage(False),
            ),
            Step(
                Phase.FAULT,
                TABLE_LEAD_SECONDS,
                "note",
                "primary region lost for good",
                _outage(True),
            ),
        ),
        permanent=True,
    ),
}
