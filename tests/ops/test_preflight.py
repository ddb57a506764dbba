"""`payments-dr preflight`: every check against scripted AWS answers (botocore Stubber).

moto implements none of the calls that matter here the way AWS answers them (Lambda account
limits, SSM service settings, ACM certificate states, stream shards), so each test scripts
the account it describes, call by call.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from payments_dr import contract
from payments_dr.contract import Function
from payments_dr.infra.config import StackConfig
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, Aws
from payments_dr.ops.commands import run_preflight
from payments_dr.ops.preflight import render_json, render_table, run_checks, run_preflight_command
from payments_dr.ops.preflight_checks import SSM_HIGH_THROUGHPUT_SETTING, Check, Status

from .conftest import ACCOUNT, PRIMARY, SECONDARY, SESSION, STACK, ZONE_ID

DOMAIN = "payments.example.com"
API_DOMAIN = f"api.{DOMAIN}"
NAME_SERVERS = ["ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk", "ns-3.awsdns-03.com"]
TABLE = contract.table_name(STACK)
STREAM = f"arn:aws:dynamodb:{{region}}:{ACCOUNT}:table/{TABLE}/stream/2026-01-01T00:00:00.000"
SDK = metadata.version("pulumi")
PLUGIN = metadata.version("pulumi_aws")


def stack_config(**values: str) -> StackConfig:
    return StackConfig.from_mapping(STACK, {"domainName": DOMAIN, **values})


@dataclass
class Account:
    """Stubbed clients of both regions; each helper scripts the calls of one check."""

    stubbers: dict[tuple[str, str], Stubber] = field(default_factory=dict)

    def stub(self, service: str, region: str) -> Stubber:
        key = (service, region)
        if key not in self.stubbers:
            self.stubbers[key] = Stubber(SESSION.client(service, region_name=region))
        return self.stubbers[key]

    def aws(self) -> Aws:
        return Aws(SESSION, clients={k: s.client for k, s in self.stubbers.items()})

    def lambda_limits(
        self, region: str, quota: int, unreserved: int, ours: dict[Function, int] | None = None
    ) -> None:
        stub = self.stub("lambda", region)
        stub.add_response(
            "get_account_settings",
            {
                "AccountLimit": {
                    "ConcurrentExecutions": quota,
                    "UnreservedConcurrentExecutions": unreserved,
                }
            },
        )
        for function in Function:
            name = contract.function_name(STACK, function)
            if ours is None:
                stub.add_client_error(
                    "get_function_concurrency",
                    "ResourceNotFoundException",
                    expected_params={"FunctionName": name},
                )
            else:
                stub.add_response(
                    "get_function_concurrency",
                    {"ReservedConcurrentExecutions": ours[function]},
                    {"FunctionName": name},
                )

    def ssm(self, region: str, high_throughput: bool) -> None:
        self.stub("ssm", region).add_response(
            "get_service_setting",
            {
                "ServiceSetting": {
                    "SettingId": SSM_HIGH_THROUGHPUT_SETTING,
                    "SettingValue": str(high_throughput).lower(),
                }
            },
            {"SettingId": SSM_HIGH_THROUGHPUT_SETTING},
        )

    def zone(self, zone_id: str = ZONE_ID) -> None:
        self.stub("route53", "us-east-1").add_response(
            "get_hosted_zone",
            {
                "HostedZone": {"Id": zone_id, "Name": f"{DOMAIN}.", "CallerReference": "r"},
                "DelegationSet": {"NameServers": NAME_SERVERS},
            },
            {"Id": zone_id},
        )

    def certificate(self, region: str, *statuses: str) -> None:
        summaries = [
            {
                "CertificateArn": f"arn:aws:acm:{region}:{ACCOUNT}:certificate/c{index}",
                "DomainName": API_DOMAIN,
                "Status": status,
                "CreatedAt": datetime(2026, 1, index + 1, tzinfo=UTC),
            }
            for index, status in enumerate(statuses)
        ]
        other = {"CertificateArn": "arn:aws:acm:x:1:certificate/o", "DomainName": "other.example"}
        self.stub("acm", region).add_response(
            "list_certificates", {"CertificateSummaryList": [*summaries, other]}
        )

    def table(self, region: str, consistency: str | None = None, stream: bool = True) -> None:
        table: dict[str, Any] = {"TableName": TABLE}
        if consistency:
            table["MultiRegionConsistency"] = consistency
        if stream:
            table["LatestStreamArn"] = STREAM.format(region=region)
        self.stub("dynamodb", region).add_response(
            "describe_table", {"Table": table}, {"TableName": TABLE}
        )

    def no_table(self, region: str) -> None:
        self.stub("dynamodb", region).add_client_error(
            "describe_table", "ResourceNotFoundException", expected_params={"TableName": TABLE}
        )

    def shards(self, region: str, *pages: Sequence[bool]) -> None:
        """Each page lists shards, True for an open one; pages chain by LastEvaluatedShardId."""
        stub = self.stub("dynamodbstreams", region)
        start = None
        for number, page in enumerate(pages):
            shards = [
                {
                    "ShardId": f"shardId-00000001700000000000-{number:04d}{index:04d}",
                    "SequenceNumberRange": {"StartingSequenceNumber": "1" * 21}
                    | ({} if is_open else {"EndingSequenceNumber": "9" * 21}),
                }
                for index, is_open in enumerate(page)
            ]
            last = number == len(pages) - 1
            description: dict[str, Any] = {"Shards": shards}
            if not last:
                description["LastEvaluatedShardId"] = shards[-1]["ShardId"]
            expected = {"StreamArn": STREAM.format(region=region)}
            if start:
                expected["ExclusiveStartShardId"] = start
            stub.add_response("describe_stream", {"StreamDescription": description}, expected)
            start = description.get("LastEvaluatedShardId")

    def fresh(self, quota: int = 1000) -> None:
        """A new account: nothing of the stack exists yet."""
        for region in (PRIMARY, SECONDARY):
            self.lambda_limits(region, quota, quota)
            self.ssm(region, high_throughput=False)
        for region in (PRIMARY, SECONDARY):
            self.certificate(region)
        self.no_table(PRIMARY)
        for region in (PRIMARY, SECONDARY):
            self.no_table(region)

    def activate(self) -> Iterator[None]:
        for stub in self.stubbers.values():
            stub.activate()
        yield
        for stub in self.stubbers.values():
            stub.assert_no_pending_responses()
            stub.deactivate()


def tools(cli: str = f"v{SDK}", plugins: list[str] | None = None) -> Any:
    listed = [{"name": "aws", "kind": "resource", "version": v} for v in (plugins or [PLUGIN])]

    def run(command: Sequence[str]) -> str:
        if cli == "missing":
            raise FileNotFoundError(command[0])
        if list(command) == ["pulumi", "version"]:
            return cli + "\n"
        assert list(command) == ["pulumi", "plugin", "ls", "--json"]
        return json.dumps(listed)

    return run


def delegated(domain: str) -> set[str]:
    assert domain == DOMAIN
    return set(NAME_SERVERS)


def checks_of(
    account: Account,
    config: StackConfig | None = None,
    deployed: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[tuple[str, str], Check]:
    activation = account.activate()
    next(activation)
    found = run_checks(
        config or stack_config(),
        account.aws(),
        deployed or {},
        resolve=kwargs.get("resolve", delegated),
        tool=kwargs.get("tool", tools()),
    )
    next(activation, None)
    return {(c.name, c.region): c for c in found}


def test_a_fresh_account_with_enough_quota_passes_and_skips_what_up_creates() -> None:
    account = Account()
    account.fresh()

    found = checks_of(account)

    assert {key: c.status for key, c in found.items()} == {
        ("pulumi-cli", ""): Status.PASS,
        ("pulumi-aws-plugin", ""): Status.PASS,
        ("lambda-concurrency", PRIMARY): Status.PASS,
        ("lambda-concurrency", SECONDARY): Status.PASS,
        ("ssm-throughput", PRIMARY): Status.PASS,
        ("ssm-throughput", SECONDARY): Status.PASS,
        ("zone-delegation", ""): Status.SKIP,
        ("certificate", PRIMARY): Status.SKIP,
        ("certificate", SECONDARY): Status.SKIP,
        ("consistency-mode", ""): Status.SKIP,
        ("stream-shards", PRIMARY): Status.SKIP,
        ("stream-shards", SECONDARY): Status.SKIP,
    }
    needed = sum(stack_config().reserved_concurrency.values())
    assert f"the functions reserve {needed}" in found["lambda-concurrency", PRIMARY].detail
    assert "stack up` creates it" in found["zone-delegation", ""].detail


def test_a_new_accounts_low_concurrency_quota_fails_with_the_quota_to_ask_for() -> None:
    account = Account()
    account.fresh(quota=10)

    check = checks_of(account)["lambda-concurrency", SECONDARY]

    needed = sum(stack_config().reserved_concurrency.values())
    assert check.status is Status.FAIL
    assert "quota 10, -90 reservable" in check.detail
    assert f"to at least {needed + 100} through Service Quotas" in check.fix
    assert "L-B99A9384" in check.fix


def test_reservations_the_deployed_stack_holds_count_as_available() -> None:
    account = Account()
    config = stack_config()
    ours = config.reserved_concurrency
    needed = sum(ours.values())
    account.lambda_limits(PRIMARY, 1000, 1000 - needed, ours)
    account.lambda_limits(SECONDARY, needed + 100, 100, ours)  # exactly enough
    for region in (PRIMARY, SECONDARY):
        account.ssm(region, high_throughput=False)
        account.certificate(region, "ISSUED")
    account.zone()
    account.table(PRIMARY, "EVENTUAL")
    account.table(PRIMARY)
    account.shards(PRIMARY, [True, True, False])
    account.table(SECONDARY)
    account.shards(SECONDARY, [True])

    found = checks_of(account, config, {"hosted_zone_id": ZONE_ID})

    assert all(check.status is Status.PASS for check in found.values()), found
    assert "quota 1000, 900 reservable" in found["lambda-concurrency", PRIMARY].detail
    assert f"{needed + 100}, {needed} reservable" in found["lambda-concurrency", SECONDARY].detail
    assert f"is delegated to zone {ZONE_ID}" in found["zone-delegation", ""].detail
    assert found["certificate", PRIMARY].detail == f"{API_DOMAIN}: ISSUED"
    assert found["consistency-mode", ""].detail == f"table {TABLE}: eventual"
    assert found["stream-shards", PRIMARY].detail.startswith("2 open shards; the archiver")


def test_ssm_throughput_fails_when_containers_outrun_the_standard_rate() -> None:
    # A stack file assuming higher throughput: 100 API containers over 1 s (140 in the
    # busiest second) + 5 probes/s.
    config = stack_config(ssmThroughputTps="10000", modeReadSpreadSeconds="1")
    account = Account()
    for region in (PRIMARY, SECONDARY):
        account.lambda_limits(region, 5000, 5000)
    account.ssm(PRIMARY, high_throughput=False)
    account.ssm(SECONDARY, high_throughput=True)
    for region in (PRIMARY, SECONDARY):
        account.certificate(region)
    for region in (PRIMARY, PRIMARY, SECONDARY):
        account.no_table(region)

    found = checks_of(account, config)

    standard, high = found["ssm-throughput", PRIMARY], found["ssm-throughput", SECONDARY]
    assert standard.status is Status.FAIL
    assert "peak 145.0/s; limit 40/s (standard throughput)" in standard.detail
    assert f"--setting-id {SSM_HIGH_THROUGHPUT_SETTING} --setting-value true" in standard.fix
    assert high.status is Status.PASS
    assert "limit 10000/s (higher throughput)" in high.detail


def deployed_account(
    *,
    consistency: str = "EVENTUAL",
    certificates: tuple[str, ...] = ("ISSUED",),
    shard_pages: tuple[Sequence[bool], ...] = ([True],),
) -> Account:
    """A deployed stack with enough quota; the arguments script what the test is about."""
    account = Account()
    for region in (PRIMARY, SECONDARY):
        account.lambda_limits(region, 1000, 1000)
        account.ssm(region, high_throughput=False)
    account.zone()
    for region in (PRIMARY, SECONDARY):
        account.certificate(region, *certificates)
    account.table(PRIMARY, consistency)
    for region in (PRIMARY, SECONDARY):
        account.table(region)
        account.shards(region, *shard_pages)
    return account


def test_an_undelegated_zone_fails_naming_the_name_servers_to_set() -> None:
    found = checks_of(
        deployed_account(),
        stack_config(hostedZoneId=ZONE_ID),
        resolve=lambda domain: {"ns1.registrar.example"},
    )
    check = found["zone-delegation", ""]
    assert check.status is Status.FAIL
    assert "public DNS answers ns1.registrar.example" in check.detail
    assert ", ".join(sorted(NAME_SERVERS)) in check.fix


def test_a_certificate_acm_gave_up_on_fails_while_a_pending_one_passes() -> None:
    found = checks_of(
        deployed_account(certificates=("ISSUED", "VALIDATION_TIMED_OUT")),
        deployed={"hosted_zone_id": ZONE_ID},
    )
    check = found["certificate", PRIMARY]  # the newest counts
    assert check.status is Status.FAIL
    assert check.detail == f"{API_DOMAIN}: VALIDATION_TIMED_OUT"
    assert "pulumi up --replace" in check.fix
    pending = checks_of(
        deployed_account(certificates=("PENDING_VALIDATION",)), deployed={"hosted_zone_id": ZONE_ID}
    )
    assert pending["certificate", SECONDARY].status is Status.PASS


def test_a_stack_file_asking_for_another_consistency_mode_fails_with_the_migration() -> None:
    found = checks_of(deployed_account(consistency="STRONG"), deployed={"hosted_zone_id": ZONE_ID})
    check = found["consistency-mode", ""]
    assert check.status is Status.FAIL
    assert "created with strong consistency" in check.detail
    assert check.fix.startswith("set consistencyMode: strong again")
    assert "consistency-mode-migration.md" in check.fix


def test_more_open_shards_than_archiver_executions_fail() -> None:
    pages = ([True] * 5 + [False] * 3, [True] * 5)  # 10 open shards over two pages
    found = checks_of(deployed_account(shard_pages=pages), deployed={"hosted_zone_id": ZONE_ID})
    check = found["stream-shards", SECONDARY]
    assert check.status is Status.FAIL
    assert check.detail == "10 open shards; the archiver reserves 8 executions"
    assert check.fix == "set archiverStreamShards to at least 10"


@pytest.mark.parametrize(
    ("cli", "plugins", "failing", "fix"),
    [
        ("missing", None, "pulumi-cli", f"install the Pulumi CLI v{SDK} or newer"),
        ("v3.1.0", None, "pulumi-cli", f"upgrade the Pulumi CLI to v{SDK} or newer"),
        (
            f"v{SDK}",
            ["6.0.0"],
            "pulumi-aws-plugin",
            f"pulumi plugin install resource aws v{PLUGIN}",
        ),
    ],
)
def test_pulumi_cli_and_plugin_versions(
    cli: str, plugins: list[str] | None, failing: str, fix: str
) -> None:
    account = Account()
    account.fresh()
    found = checks_of(account, tool=tools(cli, plugins))
    failed = {name for (name, _), c in found.items() if c.status is Status.FAIL}
    assert failed == {failing}
    assert found[failing, ""].fix.startswith(fix)


def test_a_check_aws_refuses_fails_with_the_reason_and_the_others_still_run() -> None:
    account = Account()
    for region in (PRIMARY, SECONDARY):
        account.lambda_limits(region, 1000, 1000)
    account.stub("ssm", PRIMARY).add_client_error(
        "get_service_setting", "AccessDeniedException", "not allowed: ssm:GetServiceSetting"
    )
    for region in (PRIMARY, SECONDARY):
        account.certificate(region)
    for region in (PRIMARY, PRIMARY, SECONDARY):
        account.no_table(region)

    found = checks_of(account)

    refused = found["ssm-throughput", ""]
    assert refused.status is Status.FAIL
    assert (
        refused.detail
        == "could not check: AccessDeniedException: not allowed: ssm:GetServiceSetting"
    )
    assert found["consistency-mode", ""].status is Status.SKIP


def test_the_table_lists_each_result_and_the_fixes_of_failures() -> None:
    checks = [
        Check("lambda-concurrency", Status.FAIL, "quota 10", PRIMARY, "raise it"),
        Check("zone-delegation", Status.SKIP, "no zone yet"),
    ]
    text = render_table(STACK, checks)
    lines = text.splitlines()
    assert lines[0] == f"Preflight of stack {STACK}:"
    assert lines[1].split() == ["CHECK", "REGION", "RESULT", "DETAIL"]
    assert lines[2].split()[:3] == ["lambda-concurrency", PRIMARY, "FAIL"]
    assert lines[3].split()[:3] == ["zone-delegation", "-", "SKIP"]
    assert f"  - lambda-concurrency ({PRIMARY}): raise it" in lines
    assert lines[-1] == "preflight: 1/2 pass or skip, 1 fail"
    document = json.loads(render_json(STACK, checks))
    assert document["passed"] is False
    assert document["checks"][1] == {
        "name": "zone-delegation",
        "region": None,
        "status": "skip",
        "detail": "no zone yet",
        "fix": None,
    }


def command_args(tmp_path: Path, *, json_output: bool, outputs: Path | None = None) -> Any:
    return argparse.Namespace(stack=STACK, outputs=outputs, work_dir=tmp_path, json=json_output)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: payments-dr\nruntime: python\n")
    (tmp_path / f"Pulumi.{STACK}.yaml").write_text(f"config:\n  payments-dr:domainName: {DOMAIN}\n")
    return tmp_path


@pytest.mark.parametrize(("quota", "exit_code"), [(1000, EXIT_OK), (10, EXIT_FAILED)])
def test_the_command_prints_json_and_exits_by_the_verdict(
    aws_credentials: None,
    project: Path,
    quota: int,
    exit_code: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = Account()
    account.fresh(quota=quota)
    activation = account.activate()
    next(activation)

    code = run_preflight_command(
        command_args(project, json_output=True),
        account.aws(),
        work_dir=project,
        read=lambda stack, work_dir: {},
        resolve=delegated,
        tool=tools(),
    )

    next(activation, None)
    assert code == exit_code
    document = json.loads(capsys.readouterr().out)
    assert document["stack"] == STACK
    assert document["passed"] is (exit_code == EXIT_OK)
    assert len(document["checks"]) == 12


def test_without_a_stack_file_the_command_says_which_and_exits_2(
    aws_credentials: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = command_args(tmp_path, json_output=False)
    assert run_preflight(args, Aws(SESSION)) == 2
    assert f"Pulumi.{STACK}.yaml does not exist" in capsys.readouterr().err


def test_an_unreadable_outputs_file_is_refused(
    aws_credentials: None, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = project / "outputs.json"
    broken.write_text("{")
    args = command_args(project, json_output=False, outputs=broken)
    assert run_preflight(args, Aws(SESSION)) == 2
    assert "is not readable JSON" in capsys.readouterr().err
