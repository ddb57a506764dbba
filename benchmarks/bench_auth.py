"""Costs of authentication: authorizer cold import, its latency against moto, added resources.

- cold import of the authorizer's module in fresh interpreters (median), next to the API's;
- one authorizer invocation against in-process moto (one GetItem when API Gateway's cache
  misses), for an admitted key, a wrong secret and a malformed key;
- how many resources authentication, WAF and per-merchant throttling add to the stack.

Run: .venv/bin/python benchmarks/bench_auth.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from bench_service import import_seconds
from moto import mock_aws

from payments_dr import contract
from payments_dr.service.artifact import build_artifact
from payments_dr.service.authorizer import build_authorizer
from payments_dr.service.config import ServiceConfig
from payments_dr.service.credentials import CredentialStore, issue_key
from payments_dr.service.deps import ServiceDeps
from payments_dr.synth import synthesize

REGION = contract.DEFAULT_PRIMARY_REGION
STACK = "bench"
REPO_ROOT = Path(__file__).resolve().parents[1]
# What issue 7 added to each region; the authorizer function brings its role, policy, logs.
AUTH_TYPES = {
    "aws:wafv2/webAcl:WebAcl",
    "aws:wafv2/webAclAssociation:WebAclAssociation",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
    "aws:apigateway/usagePlan:UsagePlan",
}


def provision(session: boto3.session.Session) -> ServiceDeps:
    clients = {name: session.client(name, region_name=REGION) for name in ("dynamodb", "ssm")}
    table = contract.table_name(STACK)
    clients["dynamodb"].create_table(**contract.table_definition(table))
    values = {
        contract.Param.TABLE_NAME: table,
        contract.Param.RETRY_QUEUE_URL: "unused",
        contract.Param.DLQ_URL: "unused",
        contract.Param.LOG_BUCKET: "unused",
        contract.Param.REGION_ROLE: contract.RegionRole.PRIMARY.value,
        contract.Param.PEER_REGION: contract.DEFAULT_SECONDARY_REGION,
        contract.Param.PEER_RETRY_QUEUE_URL: "https://sqs.peer.amazonaws.com/000000000000/unused",
        contract.Param.MODE: contract.Mode.ACTIVE.value,
    }
    for param, value in values.items():
        clients["ssm"].put_parameter(
            Name=contract.ssm_parameter_name(STACK, REGION, param), Value=value, Type="String"
        )
    return ServiceDeps(
        region=REGION,
        ssm_path=contract.ssm_path(STACK, REGION),
        # The stack puts these in the functions' environment at deploy time.
        config=ServiceConfig.from_values(
            {p.value: values[p] for p in contract.DEPLOY_TIME_PARAMS if p in values}
        ),
        mode_read_spread_seconds=0,  # no random delay before the first read in a benchmark
        **clients,
    )


def event(key: str) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:{REGION}:123456789012:api1/live/POST/v1/payments",
        "headers": {contract.AUTH_HEADER: f"{contract.AUTH_SCHEME} {key}"},
    }


def latencies_ms(calls: int) -> dict[str, tuple[float, float]]:
    """p50 and p95 milliseconds of one authorizer call per kind of key."""
    session = boto3.session.Session()
    results = {}
    with mock_aws():
        deps = provision(session)
        issued = [issue_key(f"merchant-{n:03d}", time.time()) for n in range(50)]
        store = CredentialStore(deps.dynamodb, contract.table_name(STACK))
        for key in issued:
            store.create(key.record)
        authorize = build_authorizer(deps)
        authorize(event(issued[0].api_key), None)  # the first call reads SSM
        keys = {
            "admitted key (GetItem, Allow)": [k.api_key for k in issued],
            "wrong secret (GetItem, Deny)": [k.api_key[:-6] + "AAAAAA" for k in issued],
            "malformed key (no AWS call)": ["pdr.not-a-key"] * len(issued),
        }
        for label, candidates in keys.items():
            samples = []
            for _ in range(calls // len(candidates)):
                for key in candidates:
                    started = time.perf_counter()
                    authorize(event(key), None)
                    samples.append((time.perf_counter() - started) * 1000)
            samples.sort()
            results[label] = (statistics.median(samples), samples[int(len(samples) * 0.95)])
    return results


def added_resources() -> tuple[Counter[str], int]:
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as scratch:
        stack = synthesize(REPO_ROOT / "Pulumi.dev.yaml", build_artifact(Path(scratch)))
    firewalls = {r["urn"] for r in stack.resources if r["type"] == "payments-dr:infra:Firewall"}
    added: Counter[str] = Counter()
    for resource in stack.resources:
        by_type = resource["type"] in AUTH_TYPES
        in_firewall = resource["parent"] in firewalls or resource["urn"] in firewalls
        of_authorizer = contract.Function.AUTHORIZER.value in resource["name"]
        if by_type or in_firewall or of_authorizer:
            added[resource["type"].rsplit(":", 1)[-1]] += 1
    return added, len(stack.resources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}, Python {sys.version.split()[0]}")

    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    installed = f"import sys; sys.path[:0] = {site_packages!r}; import site; site.main()"
    print(f"== Cold import, median of {args.import_runs} fresh interpreters (bytecode cached) ==")
    for module in ("payments_dr.service.authorizer", "payments_dr.service.api"):
        wall, cpu = import_seconds(module, installed, args.import_runs)
        print(f"{module:36s} {wall * 1000:6.0f} ms wall {cpu * 1000:5.0f} ms CPU")

    print(f"== Authorizer invocation against in-process moto, {args.calls} calls each ==")
    for label, (p50, p95) in latencies_ms(args.calls).items():
        print(f"{label:36s} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")

    added, total = added_resources()
    print("== Resources added by authentication, WAF and throttling (both regions) ==")
    for name, count in sorted(added.items()):
        print(f"{name:36s} {count:3d}")
    print(f"{'added':36s} {sum(added.values()):3d} of {total} in the stack")


if __name__ == "__main__":
    main()
