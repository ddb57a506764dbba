"""Shared configuration for the lab's tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: runs a full failover drill in the lab (seconds, not milliseconds)"
    )
