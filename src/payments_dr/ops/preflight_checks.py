"""The account and tool checks `payments-dr preflight` runs before a deployment changes anything.

Each check is a function of the stack configuration, the deployed outputs (if any) and the
AWS clients, and returns `Check`s: one per region where the fact is regional. AWS and tool
calls are made here only; the verdict logic is plain arithmetic on what they return.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from importlib import metadata
from typing import Any

from payments_dr import contract
from payments_dr.contract import Function, StackOutput
from payments_dr.infra.config import (
    LAMBDA_UNRESERVED_MINIMUM,
    ConfigError,
    StackConfig,
    refuse_consistency_change,
)
from payments_dr.infra.ssm_budget import (
    SSM_DEFAULT_THROUGHPUT_TPS,
    SSM_HIGHER_THROUGHPUT_TPS,
    ssm_loads,
)
from payments_dr.ops.aws import Aws

# Lambda's "Concurrent executions" quota, raised through Service Quotas.
LAMBDA_CONCURRENCY_QUOTA_CODE = "L-B99A9384"
SSM_HIGH_THROUGHPUT_SETTING = "/ssm/parameter-store/high-throughput-enabled"
# GetParameter requests per second per account and region: standard and higher throughput.
SSM_GET_PARAMETER_TPS = {False: SSM_DEFAULT_THROUGHPUT_TPS, True: SSM_HIGHER_THROUGHPUT_TPS}
CERTIFICATE_OK = frozenset({"ISSUED", "PENDING_VALIDATION"})

# Runs a command (e.g. ["pulumi", "version"]) and returns its stdout; raises OSError when the
# program is missing and subprocess.CalledProcessError when it fails.
ToolRunner = Callable[[Sequence[str]], str]
# A domain -> the name servers public DNS answers for it (lower case, no trailing dot).
NsResolver = Callable[[str], set[str]]


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # nothing to check yet (the resource does not exist before the first up)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    region: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Context:
    config: StackConfig
    aws: Aws
    deployed: Mapping[str, Any]  # the stack's outputs; empty before the first up
    resolve_ns: NsResolver
    run_tool: ToolRunner


def run_tool(command: Sequence[str]) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout


def resolve_ns(domain: str) -> set[str]:
    import dns.resolver  # imported late: only this check resolves name servers

    try:
        answer = dns.resolver.resolve(domain, "NS")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return set()
    return {host_name(str(record.target)) for record in answer}


def host_name(name: str) -> str:
    """A DNS name as compared here: lower case, no trailing dot."""
    return name.lower().rstrip(".")


# --- Lambda ------------------------------------------------------------------------------
def lambda_concurrency(ctx: Context) -> Iterator[Check]:
    """Each region can reserve what the functions need and keep 100 unreserved."""
    needed = sum(ctx.config.reserved_concurrency.values())
    for region in ctx.config.regions:
        client = ctx.aws.client("lambda", region)
        limit = client.get_account_settings()["AccountLimit"]
        ours = 0  # what a deployed stack already reserves comes back to it on update
        for function in Function:
            name = contract.function_name(ctx.config.stack, function)
            try:
                reserved = client.get_function_concurrency(FunctionName=name)
            except client.exceptions.ResourceNotFoundException:
                continue
            ours += int(reserved.get("ReservedConcurrentExecutions") or 0)
        available = int(limit["UnreservedConcurrentExecutions"]) + ours - LAMBDA_UNRESERVED_MINIMUM
        quota = int(limit["ConcurrentExecutions"])
        detail = (
            f"quota {quota}, {available} reservable; the functions reserve {needed}"
            f" (Lambda keeps {LAMBDA_UNRESERVED_MINIMUM} unreserved)"
        )
        shortfall = needed - available
        yield Check(
            "lambda-concurrency",
            Status.PASS if shortfall <= 0 else Status.FAIL,
            detail,
            region,
            fix=(
                f"raise the Lambda quota 'Concurrent executions' ({LAMBDA_CONCURRENCY_QUOTA_CODE})"
                f" in {region} to at least {quota + shortfall} through Service Quotas"
                if shortfall > 0
                else ""
            ),
        )


# --- SSM ---------------------------------------------------------------------------------
def ssm_throughput(ctx: Context) -> Iterator[Check]:
    """The API's `mode` reads at a full cold start fit the account's Parameter Store quota.

    Synthesis already checks them against ssmThroughputTps; this checks that the account
    really has that quota."""
    for load in ssm_loads(ctx.config):
        region = load.region
        client = ctx.aws.client("ssm", region)
        setting = client.get_service_setting(SettingId=SSM_HIGH_THROUGHPUT_SETTING)
        high = setting["ServiceSetting"]["SettingValue"].lower() == "true"
        limit = SSM_GET_PARAMETER_TPS[high]
        detail = (
            f"{load.readers} containers read mode at a full cold start: peak"
            f" {load.peak_tps:.1f}/s; limit {limit}/s ({'higher' if high else 'standard'}"
            " throughput)"
        )
        fix = ""
        if load.peak_tps > limit:
            fix = (
                f"enable higher throughput: aws ssm update-service-setting --region {region}"
                f" --setting-id {SSM_HIGH_THROUGHPUT_SETTING} --setting-value true; or set"
                f" ssmThroughputTps to {limit} and raise modeReadSpreadSeconds until"
                " `payments-dr synth` accepts it"
            )
        yield Check(
            "ssm-throughput",
            Status.PASS if load.peak_tps <= limit else Status.FAIL,
            detail,
            region,
            fix,
        )


# --- DNS and certificates ----------------------------------------------------------------
def zone_delegation(ctx: Context) -> Iterator[Check]:
    """The parent zone hands the domain to the zone the stack writes its records in."""
    config = ctx.config
    zone_id = config.hosted_zone_id or ctx.deployed.get(StackOutput.HOSTED_ZONE_ID)
    if not zone_id:
        yield Check(
            "zone-delegation",
            Status.SKIP,
            f"no zone for {config.domain_name} yet: `payments-dr stack up` creates it, prints"
            " its name servers and waits until the domain is delegated to them",
        )
        return
    zone = ctx.aws.route53().get_hosted_zone(Id=zone_id)
    expected = {host_name(ns) for ns in zone["DelegationSet"]["NameServers"]}
    answered = {host_name(ns) for ns in ctx.resolve_ns(config.domain_name)}
    delegated = answered == expected
    yield Check(
        "zone-delegation",
        Status.PASS if delegated else Status.FAIL,
        f"{config.domain_name} is delegated to zone {zone_id}"
        if delegated
        else f"public DNS answers {', '.join(sorted(answered)) or 'nothing'} for"
        f" {config.domain_name}, not zone {zone_id}'s name servers",
        fix=""
        if delegated
        else f"set the NS records of {config.domain_name} in its parent zone (or registrar) to"
        f" {', '.join(sorted(expected))}; ACM validates the certificates only then",
    )


def certificates(ctx: Context) -> Iterator[Check]:
    """A certificate ACM gave up on is not requested again by an update: it must be replaced."""
    domain = ctx.config.api_domain
    for region in ctx.config.regions:
        client = ctx.aws.client("acm", region)
        found = [
            summary
            for page in client.get_paginator("list_certificates").paginate(
                Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]}
            )
            for summary in page["CertificateSummaryList"]
            if summary["DomainName"] == domain
        ]
        if not found:
            yield Check(
                "certificate", Status.SKIP, f"none for {domain} yet: up requests it", region
            )
            continue
        newest = max(found, key=lambda c: c.get("CreatedAt") or datetime.min.replace(tzinfo=UTC))
        status = newest.get("Status", "UNKNOWN")
        yield Check(
            "certificate",
            Status.PASS if status in CERTIFICATE_OK else Status.FAIL,
            f"{domain}: {status}",
            region,
            fix=""
            if status in CERTIFICATE_OK
            else "fix the zone delegation, then replace the certificate: `pulumi up --replace"
            " <its URN>` (from `pulumi stack --show-urns`)",
        )


# --- the table and its streams -----------------------------------------------------------
def consistency_mode(ctx: Context) -> Iterator[Check]:
    """The deployed table's mode, as DynamoDB reports it, matches the stack file."""
    config = ctx.config
    client = ctx.aws.client("dynamodb", config.primary_region)
    name = contract.table_name(config.stack)
    try:
        table = client.describe_table(TableName=name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        yield Check("consistency-mode", Status.SKIP, f"table {name} does not exist yet")
        return
    deployed = str(table.get("MultiRegionConsistency") or "EVENTUAL").lower()
    try:
        refuse_consistency_change(config, deployed)
    except ConfigError as refused:
        problem, _, fix = str(refused).partition(". Fix: ")
        yield Check("consistency-mode", Status.FAIL, problem, fix=fix)
        return
    yield Check("consistency-mode", Status.PASS, f"table {name}: {deployed}")


def stream_shards(ctx: Context) -> Iterator[Check]:
    """The log archiver reads each open shard with one of its reserved executions."""
    reserved = ctx.config.reserved_concurrency[Function.LOG_ARCHIVER]
    name = contract.table_name(ctx.config.stack)
    for region in ctx.config.regions:
        dynamodb = ctx.aws.client("dynamodb", region)
        try:
            stream_arn = dynamodb.describe_table(TableName=name)["Table"].get("LatestStreamArn")
        except dynamodb.exceptions.ResourceNotFoundException:
            stream_arn = None
        if not stream_arn:
            yield Check("stream-shards", Status.SKIP, f"no stream of {name} yet", region)
            continue
        open_shards = _open_shards(ctx.aws.client("dynamodbstreams", region), stream_arn)
        fits = open_shards <= reserved
        yield Check(
            "stream-shards",
            Status.PASS if fits else Status.FAIL,
            f"{open_shards} open shards; the archiver reserves {reserved} executions",
            region,
            fix="" if fits else f"set archiverStreamShards to at least {open_shards}",
        )


def _open_shards(client: Any, stream_arn: str) -> int:
    count, start = 0, None
    while True:
        request = {"StreamArn": stream_arn, **({"ExclusiveStartShardId": start} if start else {})}
        description = client.describe_stream(**request)["StreamDescription"]
        shards = description["Shards"]
        count += sum(
            1 for s in shards if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})
        )
        start = description.get("LastEvaluatedShardId")
        if not start:
            return count


# --- Pulumi ------------------------------------------------------------------------------
def _version(text: str) -> tuple[int, ...]:
    core = text.strip().lstrip("v").split("-")[0].split("+")[0]
    return tuple(int(part) for part in core.split(".") if part.isdigit())


def pulumi_tools(ctx: Context) -> Iterator[Check]:
    """The CLI is at least as new as the SDK the program runs, and the aws plugin matches."""
    sdk = metadata.version("pulumi")
    try:
        cli = ctx.run_tool(["pulumi", "version"]).strip()
    except (OSError, subprocess.SubprocessError) as error:
        yield Check(
            "pulumi-cli",
            Status.FAIL,
            f"the Pulumi CLI does not run ({error})",
            fix=f"install the Pulumi CLI v{sdk} or newer (https://www.pulumi.com/docs/install/)",
        )
        return
    new_enough = _version(cli) >= _version(sdk)
    yield Check(
        "pulumi-cli",
        Status.PASS if new_enough else Status.FAIL,
        f"CLI {cli}, SDK v{sdk}",
        fix="" if new_enough else f"upgrade the Pulumi CLI to v{sdk} or newer",
    )
    wanted = metadata.version("pulumi_aws")
    plugins = json.loads(ctx.run_tool(["pulumi", "plugin", "ls", "--json"]) or "[]")
    installed = sorted(
        str(p.get("version", "")).lstrip("v")
        for p in plugins
        if p.get("name") == "aws" and p.get("kind") == "resource"
    )
    present = wanted in installed
    yield Check(
        "pulumi-aws-plugin",
        Status.PASS if present else Status.FAIL,
        f"resource plugin aws: {', '.join(installed) or 'none'}; the program uses v{wanted}",
        fix=""
        if present
        else f"pulumi plugin install resource aws v{wanted} (else up downloads it mid-deploy)",
    )


CHECKS: tuple[Callable[[Context], Iterator[Check]], ...] = (
    pulumi_tools,
    lambda_concurrency,
    ssm_throughput,
    zone_delegation,
    certificates,
    consistency_mode,
    stream_shards,
)
