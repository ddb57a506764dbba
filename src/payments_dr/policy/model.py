"""The small data model every rule is written against.

A rule never sees pulumi-policy's argument objects or the offline synthesizer's dicts: both are
adapted to a `ResourceView`, so the same rule backs `pulumi preview --policy-pack policy` and the
offline runner behind `payments-dr synth`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# A Pulumi URN ends with `::<logical name>`.
_URN_NAME_SEPARATOR = "::"


@dataclass(frozen=True)
class ResourceView:
    """One resource as a rule sees it.

    `props` are the resource's properties with camelCase keys (inputs offline and in resource
    policies, outputs in stack policies). `id` is the physical id where the caller knows it.
    `references` maps a property to the URNs of the resources its value came from, when the
    engine reports them; `dependencies` are the URNs of every resource this one depends on.
    """

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    region: str = ""
    id: str = ""
    references: Mapping[str, frozenset[str]] = field(default_factory=dict)
    dependencies: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DrTargets:
    """The recovery targets DR-readiness rules hold the stack to."""

    rto_target_seconds: float = 15 * 60
    # Slack for API Gateway, client retries and Route 53 propagation on top of detection + DNS.
    rto_margin_seconds: float = 60.0
    max_replication_alarm_ms: float = 30_000.0


@dataclass(frozen=True)
class StackView:
    resources: Sequence[ResourceView]
    targets: DrTargets = field(default_factory=DrTargets)

    def of_type(self, *resource_types: str) -> list[ResourceView]:
        return [r for r in self.resources if r.type in resource_types]


@dataclass(frozen=True)
class Finding:
    """A stack rule's finding; `urn` names the offending resource, or is empty for the stack."""

    message: str
    urn: str = ""


ResourceCheck = Callable[[ResourceView], Iterable[str]]
StackCheck = Callable[[StackView], Iterable[Finding]]


@dataclass(frozen=True)
class ResourceRule:
    """Checks one resource at a time; `check` yields one message per problem."""

    name: str
    description: str
    resource_types: frozenset[str]
    check: ResourceCheck


@dataclass(frozen=True)
class StackRule:
    """Checks the stack as a whole, for properties spread over several resources."""

    name: str
    description: str
    check: StackCheck
    uses_targets: bool = False  # reads `StackView.targets` (configurable in the pack)


Rule = ResourceRule | StackRule


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    urn: str = ""

    @property
    def resource_name(self) -> str:
        return self.urn.rsplit(_URN_NAME_SEPARATOR, 1)[-1] if self.urn else ""
