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
