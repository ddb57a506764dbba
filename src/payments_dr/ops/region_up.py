"""`payments-dr stack up --stack S --region R`: update region R's resources alone.

One Pulumi stack spans both regions, so a plain `up` also updates (and waits on) the other
region; while that region is down it fails. With `--region`, `up` targets only the resources
that live in R, read from the stack's state: each resource's own `region`, else the region in
its own or an ancestor component's logical name (`service-us-east-2`, `canary-us-east-2`,
...), which places the per-region IAM roles. Global resources (everything Route 53, whose
control plane is in us-east-1, and IAM not tied to a region) are left alone unless
`--include-global`.
The program is still evaluated whole; untargeted resources keep their recorded state.

Refused before anything changes: a region the stack does not deploy to, a stack without
state, and a provider whose default region (AWS_REGION / aws:region) is another one: the
provider's own calls (the account lookup) would go to the failing region.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from payments_dr.infra.config import StackConfig
from payments_dr.ops.aws import EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.preflight import render_table
from payments_dr.ops.preflight_checks import Status

# State entries that are never update targets: the stack itself, providers, components.
_NOT_TARGETS = re.compile(r"^(pulumi:pulumi:Stack|pulumi:providers:.*)$")
PROVIDER_REGION_KEY = "aws:region"
# Services whose control plane is in us-east-1 whatever the resource serves: always global.
# (IAM's is too, but each region's roles follow their region: a fix that does not change
# them makes no IAM call, and one that does needs them.)
GLOBAL_SERVICES = ("aws:route53/",)


@dataclass(frozen=True)
class RegionPlan:
    region: str
    targets: tuple[str, ...]  # URNs to update
    global_left: int  # global resources left alone (0 when included)
    other_regions_left: int


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _named_region(name: str, regions: Sequence[str]) -> str | None:
    for region in regions:
        if re.search(rf"(^|-){re.escape(region)}(-|$)", name):
            return region
    return None


def resource_regions(
    resources: Sequence[Mapping[str, Any]], regions: Sequence[str]
) -> dict[str, str | None]:
    """URN -> the region a resource lives in (None: global), for every custom resource."""
    by_urn = {str(r.get("urn")): r for r in resources}
    placed: dict[str, str | None] = {}
    for urn, resource in by_urn.items():
        if _NOT_TARGETS.match(str(resource.get("type"))) or not resource.get("custom", True):
            continue
        own = (resource.get("inputs") or {}).get("region") or (resource.get("outputs") or {}).get(
            "region"
        )
        if str(resource.get("type")).startswith(GLOBAL_SERVICES):
            placed[urn] = None
            continue
        region = str(own) if own else None
        node: Mapping[str, Any] | None = resource
        while region is None and node is not None:
            region = _named_region(_name(str(node.get("urn"))), regions)
            node = by_urn.get(str(node.get("parent") or ""))
        placed[urn] = region
    return placed


def plan_region_update(
    resources: Sequence[Mapping[str, Any]],
    region: str,
    regions: Sequence[str],
    include_global: bool,
) -> RegionPlan:
    placed = resource_regions(resources, regions)
    # Resources of a region outside the stack's two (the health-check alarms a stack without
    # us-east-1 keeps there) are global to it: shared by both regions' failover.
    targets = [
        urn
        for urn, where in placed.items()
        if where == region or (include_global and where not in regions)
    ]
    global_count = sum(1 for where in placed.values() if where not in regions)
    return RegionPlan(
        region=region,
        targets=tuple(sorted(targets)),
        global_left=0 if include_global else global_count,
        other_regions_left=sum(1 for where in placed.values() if where in regions)
        - sum(1 for where in placed.values() if where == region),
    )


def refuse_other_provider_region(
    region: str, stack_name: str, work_dir: Path, environ: Mapping[str, str]
) -> None:
    """The provider's default region must be the one being updated."""
    document = (
        yaml.safe_load((work_dir / f"Pulumi.{stack_name}.yaml").read_text(encoding="utf-8")) or {}
    )
    configured = (document.get("config") or {}).get(PROVIDER_REGION_KEY)
    if configured and configured != region:
        raise OpsError(
            f"--region {region}: Pulumi.{stack_name}.yaml sets {PROVIDER_REGION_KEY}:"
            f" {configured}, where the provider's own calls would go. Fix: set"
            f" {PROVIDER_REGION_KEY}: {region} for this update (resources name their region)",
            EXIT_REFUSED,
        )
    default = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not configured and default != region:
        raise OpsError(
            f"--region {region}: the provider's default region is {default or 'unset'}, where"
            f" its own calls (the account lookup) would go. Fix: run with AWS_REGION={region}",
            EXIT_REFUSED,
        )


def prepare_region_update(
    stack: Any,
    stack_name: str,
    work_dir: Path,
    config: StackConfig,
    aws: Aws,
    out: TextIO,
    preflight: Any,
    region: str,
    include_global: bool,
    environ: Mapping[str, str],
) -> RegionPlan:
    """Validates, runs the region's preflight checks, and plans the targeted update."""
    if region not in config.regions:
        raise OpsError(
            f"--region {region} is not a region of stack {stack_name}: use"
            f" {' or '.join(config.regions)}"
        )
    refuse_other_provider_region(region, stack_name, work_dir, environ)
    deployed = {name: getattr(value, "value", value) for name, value in stack.outputs().items()}
    checks = preflight(config, aws, deployed)
    out.write(render_table(stack_name, checks) + "\n")
    # The other region's checks (and the global ones) may fail because it is down: only
    # this region's can stop its update.
    blocking = [c for c in checks if c.status is Status.FAIL and c.region == region]
    if blocking:
        raise OpsError(
            f"up of {stack_name} in {region} refused: {len(blocking)} of its preflight"
            " check(s) fail (above)",
            EXIT_REFUSED,
        )
    state = getattr(stack.export_stack(), "deployment", None) or {}
    plan = plan_region_update(state.get("resources") or [], region, config.regions, include_global)
    if not plan.targets:
        raise OpsError(
            f"stack {stack_name} has no resources in {region} in its state: --region updates a"
            " deployed stack; deploy it whole first (`payments-dr stack up` without --region)",
            EXIT_REFUSED,
        )
    left = f"{plan.other_regions_left} of the other region"
    if plan.global_left:
        left += f" and {plan.global_left} global (add --include-global to update them)"
    out.write(f"Updating the {len(plan.targets)} resources of {region} alone; left alone: {left}\n")
    return plan
