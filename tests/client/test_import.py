"""The SDK imports and works in a process where Pulumi, boto3 and the service's libraries
cannot be imported at all: a merchant installs only `payments-dr[client]`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Everything the project installs besides urllib3 and the standard library.
BLOCKED = (
    "pulumi",
    "pulumi_aws",
    "pulumi_policy",
    "boto3",
    "botocore",
    "moto",
    "aws_lambda_powertools",
    "yaml",
    "matplotlib",
    "requests",
)

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = set(sys.argv[1].split(","))

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                # What Python raises for a package that is not installed.
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    from payments_dr.client import PaymentsClient, new_idempotency_key

    client = PaymentsClient.for_domain("pay.example.com", api_key="pdr.acme.k1.secret")
    loaded = sorted({name.split(".")[0] for name in sys.modules})
    project = sorted(name for name in sys.modules if name.startswith("payments_dr"))
    print(json.dumps({"regions": list(client.regions), "loaded": loaded, "project": project,
                      "key": new_idempotency_key()}))
    """
)


def test_the_client_imports_without_pulumi_or_boto3() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(BLOCKED)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["regions"] == ["us-east-1", "us-east-2"]
    assert not set(result["loaded"]) & set(BLOCKED)
    assert "urllib3" in result["loaded"]
    # Of the project, only the client and the stdlib-only contract module are loaded.
    assert {
        name
        for name in result["project"]
        if name not in ("payments_dr", "payments_dr.contract")
        and not name.startswith("payments_dr.client")
    } == set()
    assert result["key"].startswith("pdr_")


def test_pyproject_keeps_the_sdk_install_free_of_the_stack() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\[=<>]", requirement)[0] for requirement in requirements}

    assert project["dependencies"] == []
    assert names(extras["client"]) == {"urllib3"}
    assert {"pulumi", "pulumi-aws", "boto3"} <= names(extras["stack"])


@pytest.mark.parametrize("command", [["synth", "Pulumi.dev.yaml"], ["drill"], ["--help"]])
def test_the_commands_without_the_stack_extra_say_what_to_install(command: list[str]) -> None:
    script = SCRIPT.split("from payments_dr.client")[0] + (
        "from payments_dr.cli import main\nsys.exit(main(sys.argv[2:]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, ",".join(BLOCKED), *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().endswith("Fix: pip install 'payments-dr[stack]'")
    assert completed.stderr.count("\n") == 1
