"""Helpers for reading synthesized resources."""

from __future__ import annotations

import json
from typing import Any


def policy(resource: dict[str, Any], key: str = "policy") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resource["inputs"][key])
    return document


def one(resources: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(resources) == 1, [r["name"] for r in resources]
    return resources[0]
