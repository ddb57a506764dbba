"""The example stack files list every configuration key, as their comments promise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from payments_dr import contract
from payments_dr.infra.config import load_stack_file
from payments_dr.infra.config_keys import KEYS

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stack_file", ["Pulumi.dev.yaml", "Pulumi.eventual.yaml"])
def test_an_example_stack_file_sets_every_key_the_program_accepts(stack_file: str) -> None:
    path = REPO_ROOT / stack_file
    listed = set(yaml.safe_load(path.read_text(encoding="utf-8"))["config"])
    assert listed == {f"{contract.CONFIG_NAMESPACE}:{key}" for key in KEYS}
    load_stack_file(path)  # and every value is accepted
