"""`payments-dr synth`: evaluate the real Pulumi program offline, under mocks.

No Pulumi CLI or AWS account is needed: the program's resource registrations go to an
in-process mock engine that answers with simulated provider values (ids, ARNs, URLs, the
account id). Everything the program itself decides - names, settings, policies, wiring - is
real; every provider-computed value is labelled simulated.
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import json
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from payments_dr import contract
from payments_dr.infra.config import ConfigError, DrBudget, StackConfig, load_stack_file
from payments_dr.infra.stack import build_stack
from payments_dr.policy import evaluate, format_verdicts
from payments_dr.service.artifact import build_artifact

SIMULATED_ACCOUNT_ID = "123456789012"
SIMULATION_NOTE = (
    "Simulated: ids, ARNs, URLs, name servers and the account id are produced by Pulumi mocks,"
    " not by AWS. Names, settings, policies and wiring are the program's own."
)
GLOBAL_REGION = "global"  # resources of global services (IAM, Route 53) and components
DEFAULT_STACK_FILE = "Pulumi.dev.yaml"
# Lambda refuses a reservation that leaves an account fewer unreserved executions than this.
LAMBDA_UNRESERVED_MINIMUM = 100


@dataclass(frozen=True)
class SynthResult:
    config: StackConfig
    resources: list[dict[str, Any]]  # {"type", "name", "urn", "region", "parent", "inputs", ...}
    outputs: dict[str, Any]

    @property
    def budget(self) -> DrBudget:
        return self.config.budget

    def of_type(self, resource_type: str, region: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.resources
            if r["type"] == resource_type and (region is None or r["region"] == region)
        ]

    def reserved_concurrency(self, region: str) -> int:
        """Executions the region's functions reserve out of the account's regional quota."""
        return sum(
            int(function["inputs"].get("reservedConcurrentExecutions") or 0)
            for function in self.of_type("aws:lambda/function:Function", region)
        )

    def counts_by_type_and_region(self) -> Counter[tuple[str, str]]:
        return Counter((r["type"], r["region"]) for r in self.resources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "simulation": SIMULATION_NOTE,
            "stack": self.config.stack,
            "consistency_mode": self.config.consistency_mode.value,
            "regions": list(self.config.regions),
            "dr_budget": self.budget.to_dict(),
            "outputs": self.outputs,
            "resources": self.resources,
        }


# --- simulated provider ----------------------------------------------------------------------
def _digest(*parts: str, length: int = 12) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


class SimulatedAws(pulumi.runtime.Mocks):
    """Answers the program's invokes and computes plausible provider values per resource."""

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            account = SIMULATED_ACCOUNT_ID
            return {
                "accountId": account,
                "arn": f"arn:aws:iam::{account}:user/simulated",
                "userId": "SIMULATED",
                "id": account,
            }, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            region = args.args["region"]
            names = [f"{region}{suffix}" for suffix in "abc"]
            return {"id": region, "names": names, "zoneIds": names, "groupNames": names}, []
        raise ValueError(f"the simulation has no answer for invoke {args.token}")

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        region = inputs.get("region", contract.DEFAULT_PRIMARY_REGION)
        account = SIMULATED_ACCOUNT_ID
        token = _digest(args.typ, args.name)
        resource_id = f"sim-{token}"
        state: dict[str, Any] = dict(inputs)
        kind = args.typ

        def put(**values: Any) -> None:
            state.update(values)

        if kind == "aws:kms/key:Key":
            resource_id = f"mrk-{_digest(args.name, length=32)}"
            put(keyId=resource_id, arn=f"arn:aws:kms:{region}:{account}:key/{resource_id}")
        elif kind == "aws:kms/replicaKey:ReplicaKey":
            key_id = inputs["primaryKeyArn"].rsplit("/", 1)[1]  # replicas share the key id
            resource_id = key_id
            put(keyId=key_id, arn=f"arn:aws:kms:{region}:{account}:key/{key_id}")
        elif kind == "aws:dynamodb/table:Table":
            resource_id = inputs["name"]
            put(**_table_state(region, account, inputs))
        elif kind == "aws:sqs/queue:Queue":
            name = inputs["name"]
            resource_id = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
            put(arn=f"arn:aws:sqs:{region}:{account}:{name}", url=resource_id)
        elif kind == "aws:s3/bucket:Bucket":
            resource_id = inputs["bucket"]
            put(
                arn=f"arn:aws:s3:::{resource_id}",
                bucketRegionalDomainName=f"{resource_id}.s3.{region}.amazonaws.com",
            )
        elif kind == "aws:lambda/function:Function":
            resource_id = inputs["name"]
            arn = f"arn:aws:lambda:{region}:{account}:function:{resource_id}"
            put(
                arn=arn,
                invokeArn=(
                    f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
                ),
            )
        elif kind == "aws:apigateway/restApi:RestApi":
            resource_id = _digest(args.name, length=10)
            put(
                rootResourceId=_digest(resource_id, length=10),
                executionArn=f"arn:aws:execute-api:{region}:{account}:{resource_id}",
                arn=f"arn:aws:apigateway:{region}::/restapis/{resource_id}",
            )
        elif kind == "aws:apigateway/stage:Stage":
            host = f"{inputs['restApi']}.execute-api.{region}.amazonaws.com"
            put(
                invokeUrl=f"https://{host}/{inputs['stageName']}",
                arn=(
                    f"arn:aws:apigateway:{region}::/restapis/{inputs['restApi']}"
                    f"/stages/{inputs['stageName']}"
                ),
            )
        elif kind == "aws:wafv2/webAcl:WebAcl":
            put(arn=f"arn:aws:wafv2:{region}:{account}:regional/webacl/{inputs['name']}/{token}")
        elif kind == "aws:apigateway/domainName:DomainName":
            put(
                regionalDomainName=(
                    f"d-{_digest(args.name, length=10)}.execute-api.{region}.amazonaws.com"
                ),
                regionalZoneId=f"ZSIM{_digest(region, length=10).upper()}",
                arn=f"arn:aws:apigateway:{region}::/domainnames/{inputs['domainName']}",
            )
        elif kind == "aws:acm/certificate:Certificate":
            domain = inputs["domainName"]
            label = _digest(account, domain, length=32)  # ACM reuses it across regions
            put(
                arn=f"arn:aws:acm:{region}:{account}:certificate/{token}",
                domainValidationOptions=[
                    {
                        "domainName": domain,
                        "resourceRecordName": f"_{label}.{domain}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{label[::-1]}.acm-validations.aws.",
                    }
                ],
            )
        elif kind == "aws:route53/zone:Zone":
            resource_id = f"ZSIM{token.upper()}"
            put(
                zoneId=resource_id,
                nameServers=[f"ns-{n}.awsdns-sim.example" for n in range(1, 5)],
                arn=f"arn:aws:route53:::hostedzone/{resource_id}",
            )
        elif kind == "aws:route53/record:Record":
            put(fqdn=str(inputs.get("name", "")).rstrip("."))
        elif kind == "aws:iam/role:Role":
            resource_id = inputs.get("name") or f"{args.name}-{token[:7]}"
            put(name=resource_id, arn=f"arn:aws:iam::{account}:role/{resource_id}")
        elif kind == "aws:ec2/vpcEndpoint:VpcEndpoint":
            put(prefixListId=f"pl-{token[:8]}")
            if inputs.get("vpcEndpointType") == "Interface":
                # As AWS lists them: the regional endpoint-specific name, then one per zone.
                service = str(inputs["serviceName"]).rsplit(".", 1)[-1]
                endpoint = f"vpce-{token[:17]}"
                names = [f"{endpoint}.{service}.{region}.vpce.amazonaws.com"] + [
                    f"{endpoint}-{region}{zone}.{service}.{region}.vpce.amazonaws.com"
                    for zone in "ab"
                ]
                put(
                    dnsEntries=[
                        {"dnsName": name, "hostedZoneId": "Z7HUB22UULQXV"} for name in names
                    ]
                )
        elif kind == "aws:sns/topic:Topic":
            put(arn=f"arn:aws:sns:{region}:{account}:{inputs['name']}")
        elif kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
            put(arn=f"arn:aws:cloudwatch:{region}:{account}:alarm:{inputs['name']}")
        elif kind == "aws:cloudwatch/logGroup:LogGroup":
            resource_id = inputs["name"]
            put(arn=f"arn:aws:logs:{region}:{account}:log-group:{resource_id}")
        elif kind == "aws:acm/certificateValidation:CertificateValidation":
            put(certificateArn=inputs["certificateArn"])
        if "arn" not in state:
            service = kind.split(":")[1].split("/")[0]
            state["arn"] = f"arn:aws:{service}:{region}:{account}:{args.name}/{resource_id}"
        return resource_id, state


def _table_state(region: str, account: str, inputs: dict[str, Any]) -> dict[str, Any]:
    name = inputs["name"]
    label = "2026-01-01T00:00:00.000"

    def arn(in_region: str) -> str:
        return f"arn:aws:dynamodb:{in_region}:{account}:table/{name}"

    replicas = [
        {
            **replica,
            "arn": arn(replica["regionName"]),
            "streamArn": f"{arn(replica['regionName'])}/stream/{label}",
            "streamLabel": label,
        }
        for replica in inputs.get("replicas", [])
    ]
    return {
        "arn": arn(region),
        "streamArn": f"{arn(region)}/stream/{label}",
        "streamLabel": label,
        "replicas": replicas,
    }


class RecordingMonitor(mocks.MockMonitor):
    """The mock engine, recording each registration's inputs, parent and dependencies."""

    def __init__(self, simulated: pulumi.runtime.Mocks) -> None:
        super().__init__(simulated)
        self.registrations: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # the engine's RPC name
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
        record = {
            "type": request.type,
            "name": request.name,
            "urn": response.urn,
            "region": inputs.get("region", GLOBAL_REGION),
            "parent": request.parent or None,
            "custom": bool(request.custom),
            "inputs": inputs,
            "dependencies": sorted(request.dependencies),
            "ignore_changes": sorted(request.ignoreChanges),
        }
        with self._lock:
            self.registrations.append(record)
        return response


# --- running the program -------------------------------------------------------------------
def synthesize_config(config: StackConfig, artifact_path: Path) -> SynthResult:
    """Run the program for `config` under fresh mocks and collect what it declared.

    Each run gets its own context (Pulumi keeps its settings and root stack in context
    variables), so one process can synthesize several configurations in turn.
    """

    def run() -> SynthResult:
        monitor = RecordingMonitor(SimulatedAws())
        pulumi.runtime.set_mocks(
            monitor.mocks,
            project=contract.PROJECT,
            stack=config.stack,
            preview=False,
            monitor=monitor,
        )
        resolved: dict[str, Any] = {}

        async def program() -> None:
            outputs = build_stack(config, artifact_path)
            resolved.update(await pulumi.Output.from_input(outputs).future() or {})

        _sync_await(run_pulumi_func(program))
        resources = sorted(monitor.registrations, key=lambda r: r["urn"])
        return SynthResult(config=config, resources=_plain(resources), outputs=_plain(resolved))

    return contextvars.Context().run(run)


def synthesize(config_path: Path | str, artifact_path: Path | None = None) -> SynthResult:
    """Synthesize the stack described by a `Pulumi.<stack>.yaml` file."""
    config = load_stack_file(config_path)
    if artifact_path is not None:
        return synthesize_config(config, artifact_path)
    with tempfile.TemporaryDirectory(prefix="payments-dr-synth-") as build_dir:
        return synthesize_config(config, build_artifact(Path(build_dir)))


def _plain(value: Any) -> Any:
    """JSON-ready copy: enum keys become their values, archives their file names.

    Values the provider marks secret (an SSM parameter's value, for one) arrive wrapped; the
    synthesized stack holds no real secret, so they are unwrapped for inspection.
    """
    if pulumi.runtime.rpc.is_rpc_secret(value):
        return _plain(pulumi.runtime.rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"archive": Path(value.path).name}
    return value


# --- command line --------------------------------------------------------------------------
def short_type(resource_type: str) -> str:
    """`aws:s3/bucketPolicy:BucketPolicy` -> `aws:s3.BucketPolicy`, for a readable table."""
    package, module, name = resource_type.split(":")
    return f"{package}:{module.split('/')[0]}.{name}"


def render(result: SynthResult) -> str:
    config = result.config
    lines = [
        f"Stack {config.stack} ({config.consistency_mode.value} consistency):"
        f" {len([r for r in result.resources if r['custom']])} resources in"
        f" {', '.join(config.regions)}"
        + (f", witness {config.witness_region}" if config.witness_region else ""),
        SIMULATION_NOTE,
        "",
        "Resources by type and region:",
    ]
    regions = [*config.regions, GLOBAL_REGION]
    counts = result.counts_by_type_and_region()
    labels = {resource_type: short_type(resource_type) for resource_type, _ in counts}
    width = max(len(label) for label in labels.values())
    lines.append(f"  {'type':<{width}}  " + "  ".join(f"{r:>10}" for r in regions))
    for resource_type, label in sorted(labels.items(), key=lambda item: item[1]):
        cells = "  ".join(f"{counts.get((resource_type, r), 0) or '-':>10}" for r in regions)
        lines.append(f"  {label:<{width}}  {cells}")
    reserved = result.reserved_concurrency(config.primary_region)
    budget = result.budget
    lines += [
        "",
        "Account prerequisite (else `pulumi up` fails creating the functions):",
        f"  Lambda concurrent executions quota >= {reserved + LAMBDA_UNRESERVED_MINIMUM} in"
        f" {' and '.join(config.regions)} ({reserved} reserved by the functions +"
        f" {LAMBDA_UNRESERVED_MINIMUM} Lambda keeps unreserved)",
        "",
        "DR budget (seconds):",
        f"  detection {budget.detection_seconds} (health-check interval x failure threshold)"
        f" + DNS {budget.dns_seconds} + margin {budget.margin_seconds}",
        f"  RTO budget {budget.rto_budget_seconds} <= target {budget.rto_target_seconds}",
        f"  RPO budget {budget.rpo_budget_seconds} <= target {budget.rpo_target_seconds}",
        "",
        "Outputs (provider values simulated):",
        json.dumps(result.outputs, indent=2, sort_keys=True),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        result = synthesize(args.stack_config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(render(result))
    violations = evaluate(result.resources, result.budget.to_dict())
    print("\nPolicy verdicts (the CrossGuard pack's rules, run offline):")
    print(format_verdicts(violations))
    if args.json:
        document = result.to_dict()
        document["policy_violations"] = [asdict(violation) for violation in violations]
        Path(args.json).write_text(
            json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        print(f"\nWrote {len(result.resources)} resources to {args.json}")
    return 1 if violations else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="evaluate the Pulumi program offline under mocks and print what it deploys",
        description=__doc__,
    )
    parser.add_argument(
        "stack_config",
        nargs="?",
        default=DEFAULT_STACK_FILE,
        help=f"a Pulumi.<stack>.yaml file (default: {DEFAULT_STACK_FILE})",
    )
    parser.add_argument("--json", metavar="FILE", help="write every resource and output as JSON")
    parser.set_defaults(run=run)
