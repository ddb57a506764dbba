"""Shared fixtures: the whole program synthesized under mocks, once per worker and mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from payments_dr.service.artifact import build_artifact
from payments_dr.synth import SynthResult, synthesize

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = {
    "eventual": REPO_ROOT / "Pulumi.eventual.yaml",
    "strong": REPO_ROOT / "Pulumi.dev.yaml",
}


@pytest.fixture(scope="session")
def artifact_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_artifact(tmp_path_factory.mktemp("artifact"))


@pytest.fixture(scope="session")
def eventual(artifact_path: Path) -> SynthResult:
    return synthesize(STACK_FILES["eventual"], artifact_path)


@pytest.fixture(scope="session")
def strong(artifact_path: Path) -> SynthResult:
    return synthesize(STACK_FILES["strong"], artifact_path)


@pytest.fixture(scope="session", params=sorted(STACK_FILES))
def stack(request: pytest.FixtureRequest) -> SynthResult:
    """Each test using this fixture runs against both consistency modes."""
    result: SynthResult = request.getfixturevalue(request.param)
    return result


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns about its own deprecated classes when a module is imported; the
    # program uses none of them.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:.*has been deprecated in favor of:DeprecationWarning:pulumi_aws",
    )
