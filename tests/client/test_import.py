"""The SDK imports and works in a process where Pulumi, boto3 and the service's libraries
cannot be imported at all: a merchant installs only `payments-dr[client]`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

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
                raise ImportError(f"{name} is blocked in this test")
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
