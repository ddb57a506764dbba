"""The lab's parameters: the stack configuration (names, regions, budget) and simulation knobs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from payments_dr.contract import ConsistencyMode
from payments_dr.infra.config import StackConfig, load_stack_file

DEFAULT_STACK_FILE: Final = Path("Pulumi.dev.yaml")
# Used when no stack file is around, e.g. `payments-dr lab up` outside a checkout.
BUILTIN_CONFIG: Final = StackConfig(stack="lab", domain_name="pay.example.com")
LAB_ACCOUNT_ID: Final = "123456789012"  # moto's default account


@dataclass(frozen=True)
class LabSettings:
    config: StackConfig
    # Wall seconds per simulated second; 0.02 plays one simulated minute in 1.2 s.
    time_scale: float = 0.02
    # Global tables typically replicate in under a second.
    replication_lag_seconds: float = 1.0
    # Route 53 probes from many locations; the lab runs a few checkers per region, staggered.
    health_checkers: int = 3
    # Route 53 counts an endpoint healthy while more than 18% of its checkers see it healthy.
    healthy_checker_fraction: float = 0.18

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {self.time_scale}")
        if self.replication_lag_seconds < 0:
            raise ValueError("replication_lag_seconds must not be negative")
        if self.health_checkers < 1:
            raise ValueError("at least one health checker is needed")

    @property
    def stack(self) -> str:
        return self.config.stack

    @property
    def primary(self) -> str:
        return self.config.primary_region

    @property
    def secondary(self) -> str:
        return self.config.secondary_region

    @property
    def strong(self) -> bool:
        return self.config.consistency_mode is ConsistencyMode.STRONG


def load_config(stack_file: Path | None, mode: ConsistencyMode | None = None) -> StackConfig:
    """The stack file given, else Pulumi.dev.yaml when present, else built-in defaults."""
    if stack_file is not None:
        config = load_stack_file(stack_file)
    elif DEFAULT_STACK_FILE.is_file():
        config = load_stack_file(DEFAULT_STACK_FILE)
    else:
        config = BUILTIN_CONFIG
    if mode is not None and mode is not config.consistency_mode:
        config = dataclasses.replace(config, consistency_mode=mode)
    return config
