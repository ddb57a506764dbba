"""Secrets Manager load at a full cold start, checked against the GetSecretValue quota.

Each container of a function that computes ids (`contract.ID_KEY_READERS`) calls
GetSecretValue once, at its cold start, on its own region's copy of the id secret
(`payments_dr.service.id_secret`), and never again. Secrets Manager serves 10,000
GetSecretValue requests per second per account and region ("AWS Secrets Manager quotas";
raised to 10,000 in November 2022). The worst case is every reserved container of a region
starting in the same second, as when the DR region takes all the traffic at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from payments_dr import contract
from payments_dr.contract import Function

if TYPE_CHECKING:
    from payments_dr.infra.config import StackConfig

GET_SECRET_VALUE_TPS: Final = 10_000


@dataclass(frozen=True)
class RegionSecretLoad:
    """GetSecretValue calls per second one region's functions make, at worst."""

    region: str
    containers: dict[Function, int]  # reserved containers per function
    quota_tps: int = GET_SECRET_VALUE_TPS

    @property
    def readers(self) -> int:
        return sum(n for f, n in self.containers.items() if f in contract.ID_KEY_READERS)

    @property
    def peak_tps(self) -> float:
        """Every reader's one read in the same second."""
        return float(self.readers)

    @property
    def within_quota(self) -> bool:
        return self.peak_tps <= self.quota_tps

    def describe(self) -> str:
        readers = ", ".join(
            f"{f.value} {n}" for f, n in self.containers.items() if f in contract.ID_KEY_READERS
        )
        verdict = "<=" if self.within_quota else ">"
        return (
            f"{self.region}: {self.readers} containers read the id secret once each ({readers}),"
            f" all in one second = peak {self.peak_tps:.0f}/s {verdict} quota {self.quota_tps}/s;"
            " none after their cold start"
        )


def secret_loads(config: StackConfig) -> list[RegionSecretLoad]:
    """Both regions: identical functions and reservations, each region its own quota."""
    return [
        RegionSecretLoad(region=region, containers=dict(config.reserved_concurrency))
        for region in config.regions
    ]
