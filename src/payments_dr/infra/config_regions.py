"""Which regions a stack may use: the commercial regions, two distinct ones, and for strong
consistency a DynamoDB multi-Region region set and its witness.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from payments_dr.contract import ConsistencyMode
from payments_dr.infra.config_keys import ConfigError

if TYPE_CHECKING:
    from payments_dr.infra.config import StackConfig

# Commercial-partition regions: ARNs in this program assume the `aws` partition.
KNOWN_REGIONS: Final = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    }
)
# Multi-Region strong consistency: all replicas and the witness come from one of these sets
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/multi-region-strong-consistency-gt.html).
STRONG_CONSISTENCY_REGION_SETS: Final = {
    "US": ("us-east-1", "us-east-2", "us-west-2"),
    "EU": ("eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"),
    "AP": ("ap-northeast-1", "ap-northeast-2", "ap-northeast-3"),
}


def strong_region_set(regions: tuple[str, ...]) -> tuple[str, ...] | None:
    """The MRSC region set holding every one of `regions`, if any."""
    return next(
        (
            members
            for members in STRONG_CONSISTENCY_REGION_SETS.values()
            if set(regions) <= set(members)
        ),
        None,
    )


def validate_regions(config: StackConfig) -> None:
    """Known, distinct regions; with strong consistency, one region set and its witness."""
    for key, region in (
        ("primaryRegion", config.primary_region),
        ("secondaryRegion", config.secondary_region),
    ):
        if region not in KNOWN_REGIONS:
            raise ConfigError(
                key, f"unknown region {region!r}", "use an AWS commercial region such as us-east-2"
            )
    if config.primary_region == config.secondary_region:
        raise ConfigError(
            "secondaryRegion",
            f"same as primaryRegion ({config.primary_region})",
            "choose a different region for disaster recovery",
        )
    _validate_strong_consistency(config)


def _validate_strong_consistency(config: StackConfig) -> None:
    witness = config.witness_region_setting
    if config.consistency_mode is not ConsistencyMode.STRONG:
        if witness is not None:
            raise ConfigError(
                "witnessRegion",
                "only strong consistency has a witness",
                "remove witnessRegion or use consistencyMode: strong",
            )
        return
    members = strong_region_set(config.regions)
    if members is None:
        sets = "; ".join(
            f"{name}: {', '.join(regions)}"
            for name, regions in STRONG_CONSISTENCY_REGION_SETS.items()
        )
        raise ConfigError(
            "consistencyMode",
            f"strong consistency needs both regions in one region set, not"
            f" {', '.join(config.regions)}",
            f"pick two regions of one set ({sets}) or use consistencyMode: eventual",
        )
    candidates = [region for region in members if region not in config.regions]
    if witness is None and len(candidates) > 1:
        raise ConfigError(
            "witnessRegion",
            "missing: the region set offers several witness regions",
            f"set witnessRegion to one of {', '.join(candidates)}",
        )
    if witness is not None and witness not in candidates:
        raise ConfigError(
            "witnessRegion",
            f"{witness!r} cannot be the witness of {', '.join(config.regions)}",
            f"use one of {', '.join(candidates)}",
        )
