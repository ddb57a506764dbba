"""Benchmark of the payment service against moto, in one run. Prints the numbers.

- DynamoDB requests per accepted payment (new and replayed): the service's single
  conditional write, side by side with Powertools' idempotency utility on the same path;
- requests/s of the API handler (new payments and replays) against in-process moto;
- the Lambda artifact's zipped size;
- cold import time of each handler module in a fresh interpreter: from the installed package
  (bytecode cached); from the unpacked artifact without bytecode (as /var/task, which is
  read-only, so the runtime compiles on every cold start), under this Python and under the
  runtime's 3.13; and from the artifact as Lambda loads it: 3.13 with the artifact's
  unchecked-hash bytecode. The 3.13 columns need .venv-runtime (`make test` builds it) for
  the runtime's boto3, which Lambda provides and the artifact does not carry;
- the cold start under 3.13 as Lambda runs it: import, then the first invocation, which builds
  the botocore clients and does real work against moto's server (benchmarks/cold_start.py),
  beside the import of botocore alone.

Usage: .venv/bin/python benchmarks/bench_service.py [--payments N] [--import-runs N]
       [--runtime-only]  (the artifact and the 3.13 cold starts only)
       [--instructions]  (also the cold starts' instruction counts, with valgrind)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_LOG_LEVEL="ERROR",
)

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from cold_start import MERCHANT, REGION, REQUEST, STACK, post_event, print_cold_starts
from moto import mock_aws

from payments_dr import contract
from payments_dr.service.api import build_api_handler
from payments_dr.service.artifact import build_artifact, find_runtime_python
from payments_dr.service.config import ServiceConfig
from payments_dr.service.deps import ServiceDeps
from payments_dr.service.model import IdKey, new_payment, parse_payment_request
from payments_dr.service.store import to_item

# The id secret the stack would generate (any 32+ characters: the HMAC costs the same).
ID_KEY = IdKey("bench-id-secret-0123456789abcdefghijklmnopqrstuv")
HANDLER_MODULES = [settings.handler.rsplit(".", 1)[0] for settings in contract.FUNCTIONS.values()]


class CallCounter:
    """Counts API operations a client sends, through botocore's event hooks."""

    def __init__(self, client: Any) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def take(self) -> dict[str, int]:
        counted = dict(self.calls)
        self.calls.clear()
        return counted


class FakeLambdaContext:
    """Just enough for the idempotency utility's in-progress expiry."""

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def provision(session: boto3.session.Session) -> ServiceDeps:
    dynamodb = session.client("dynamodb", region_name=REGION)
    sqs = session.client("sqs", region_name=REGION)
    ssm = session.client("ssm", region_name=REGION)
    table = contract.table_name(STACK)
    dynamodb.create_table(**contract.table_definition(table))
    queue_url = sqs.create_queue(QueueName=contract.retry_queue_name(STACK))["QueueUrl"]
    values = {
        contract.Param.TABLE_NAME: table,
        contract.Param.RETRY_QUEUE_URL: queue_url,
        contract.Param.DLQ_URL: queue_url,
        contract.Param.LOG_BUCKET: "unused",
        contract.Param.REGION_ROLE: contract.RegionRole.PRIMARY.value,
        contract.Param.PEER_REGION: contract.DEFAULT_SECONDARY_REGION,
        contract.Param.PEER_RETRY_QUEUE_URL: "https://sqs.peer.amazonaws.com/000000000000/unused",
        contract.Param.MODE: contract.Mode.ACTIVE.value,
    }
    for param, value in values.items():
        name = contract.ssm_parameter_name(STACK, REGION, param)
        ssm.put_parameter(Name=name, Value=value, Type="String")
    return ServiceDeps(
        region=REGION,
        ssm_path=contract.ssm_path(STACK, REGION),
        # The stack puts these in the functions' environment at deploy time.
        config=ServiceConfig.from_values(
            {p.value: values[p] for p in contract.DEPLOY_TIME_PARAMS if p in values}
        ),
        ssm=ssm,
        dynamodb=dynamodb,
        sqs=sqs,
        mode_read_spread_seconds=0,  # no random delay before the first read in a benchmark
        id_key=ID_KEY,
    )


def requests_per_payment(session: boto3.session.Session) -> dict[str, dict[str, int]]:
    deps = provision(session)
    counter = CallCounter(deps.dynamodb)
    api = build_api_handler(deps)
    api(post_event("warm-up-key-0"), None)  # the first call also reads SSM
    counter.take()
    results = {}
    assert api(post_event("count-key-0001"), None)["statusCode"] == 201
    results["service: new payment"] = counter.take()
    assert api(post_event("count-key-0001"), None)["statusCode"] == 200
    results["service: replay"] = counter.take()

    # The same path with Powertools' idempotency utility around a plain write.
    dynamodb = deps.dynamodb
    dynamodb.create_table(
        TableName="idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    persistence = DynamoDBPersistenceLayer(table_name="idempotency", boto3_client=dynamodb)
    config = IdempotencyConfig(event_key_jmespath="key", use_local_cache=False)
    table = contract.table_name(STACK)

    @idempotent_function(
        data_keyword_argument="submission", persistence_store=persistence, config=config
    )
    def store_payment(submission: dict[str, Any]) -> dict[str, Any]:
        request = parse_payment_request(json.dumps(submission["request"]), merchant_id=MERCHANT)
        payment = new_payment(request, submission["key"], REGION, time.time(), ID_KEY)
        dynamodb.put_item(TableName=table, Item=to_item(payment))
        return payment.to_api()

    config.register_lambda_context(FakeLambdaContext())
    counter.take()
    store_payment(submission={"key": "count-key-0002", "request": REQUEST})
    results["powertools idempotency: new payment"] = counter.take()
    store_payment(submission={"key": "count-key-0002", "request": REQUEST})
    results["powertools idempotency: replay"] = counter.take()
    return results


def api_throughput(session: boto3.session.Session, payments: int) -> dict[str, tuple[float, float]]:
    """Requests per wall second and per CPU second (moto's work included: it runs in-process)."""
    deps = provision(session)
    api = build_api_handler(deps)
    api(post_event("warm-up-key-0"), None)
    rates = {}
    for label, expected in (("new payments", 201), ("replays", 200)):
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(payments):
            assert api(post_event(f"rate-key-{index:06d}"), None)["statusCode"] == expected
        rates[label] = (
            payments / (time.perf_counter() - wall),
            payments / (time.process_time() - cpu),
        )
    return rates


def lambda_environment() -> dict[str, str]:
    """The variables the Lambda runtime sets that change what an import does.

    With LAMBDA_TASK_ROOT set, the X-Ray SDK (loaded by the Tracer) uses Lambda's sampling
    decision instead of creating two X-Ray API clients for central sampling at import.
    """
    environment = {
        name: value for name, value in os.environ.items() if name != "POWERTOOLS_TRACE_DISABLED"
    }
    environment.update(
        LAMBDA_TASK_ROOT=tempfile.gettempdir(),
        AWS_LAMBDA_FUNCTION_NAME="payments-dr-bench-api",
        AWS_REGION="us-east-1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return environment


def load_average() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def import_breakdown(
    module: str, path_setup: str, python: str = sys.executable
) -> collections.Counter[str]:
    """Seconds of one import by top-level package, from the self times of -X importtime."""
    probe = f"{path_setup}\nimport {module}"
    report = subprocess.run(
        [python, "-S", "-B", "-X", "importtime", "-c", probe],
        capture_output=True,
        text=True,
        env=lambda_environment(),
        check=True,
    ).stderr
    seconds: collections.Counter[str] = collections.Counter()
    for line in report.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            self_time, _, name = line.removeprefix("import time:").split("|")
            if self_time.strip().isdigit():
                seconds[name.strip().split(".")[0]] += int(self_time) / 1e6
    return seconds


def import_seconds(
    module: str, path_setup: str, runs: int, python: str = sys.executable
) -> tuple[float, float]:
    """Median wall and CPU seconds of `import module` in fresh interpreters.

    CPU time is reported beside wall time because this machine's cores are shared: under
    load the wall figure includes waiting for a core.
    """
    probe = (
        f"{path_setup}\nimport time\nwall, cpu = time.perf_counter(), time.process_time()\n"
        f"import {module}\nprint(time.perf_counter() - wall, time.process_time() - cpu)"
    )
    environment = lambda_environment()
    walls, cpus = [], []
    for _ in range(runs):
        output = subprocess.run(
            [python, "-S", "-B", "-c", probe],
            capture_output=True,
            text=True,
            env=environment,
            check=True,
            timeout=120,
        ).stdout
        wall, cpu = (float(value) for value in output.split())
        walls.append(wall)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus)


def runtime_interpreter() -> tuple[str, str] | None:
    """(python, site-packages) of .venv-runtime, the 3.13 venv `make test` builds; None,
    with a note, when it is missing."""
    python = Path(__file__).resolve().parents[1] / ".venv-runtime" / "bin" / "python"
    if find_runtime_python() is None or not python.exists():
        print("note: no .venv-runtime with Python 3.13 (run `make test`): 3.13 columns skipped")
        return None
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    return str(python), site_packages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--import-runs", type=int, default=5)
    parser.add_argument("--runtime-only", action="store_true")
    # Instructions under valgrind (callgrind): load-independent, about a minute per figure.
    parser.add_argument("--instructions", action="store_true")
    args = parser.parse_args()

    python_version = sys.version.split()[0]
    print(f"machine: {os.cpu_count()} cores, load {load_average()}, Python {python_version}")
    if not args.runtime_only:
        session = boto3.session.Session()
        print("== DynamoDB requests per payment (botocore event hooks, moto) ==")
        with mock_aws():
            for label, calls in requests_per_payment(session).items():
                detail = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
                print(f"{label:40s} {sum(calls.values()):2d}  ({detail})")

        print(f"== API handler throughput, {args.payments} requests each (in-process moto) ==")
        with mock_aws():
            rates = api_throughput(session, args.payments)
            for label, (per_second, per_cpu_second) in rates.items():
                print(f"{label:40s} {per_second:6.0f} /s wall {per_cpu_second:6.0f} /s CPU")

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        artifact = build_artifact(Path(scratch))
        build_seconds = time.perf_counter() - started
        with zipfile.ZipFile(artifact) as archive:
            entries = len(archive.namelist())
            unpacked = sum(info.file_size for info in archive.infolist())
            archive.extractall(Path(scratch) / "task")
        print("== Lambda artifact ==")
        print(f"{'zipped size':40s} {artifact.stat().st_size / 1024:8.0f} KiB ({artifact.name})")
        print(f"{'unpacked size':40s} {unpacked / 1024:8.0f} KiB in {entries} files")
        print(f"{'build time':40s} {build_seconds * 1000:8.0f} ms")
        runtime = runtime_interpreter()
        if runtime:
            python, runtime_site = runtime
            paths = [str(Path(scratch) / "task"), runtime_site]
            print_cold_starts(
                HANDLER_MODULES,
                paths,
                python,
                lambda_environment(),
                args.import_runs,
                count_instructions=args.instructions,
            )
            for module in HANDLER_MODULES:
                setup = f"import sys; sys.path[:0] = {paths!r}"
                breakdown = import_breakdown(module, setup, python)
                total = sum(breakdown.values())
                shares = ", ".join(
                    f"{package} {share / total:.0%}" for package, share in breakdown.most_common(6)
                )
                print(f"{module:34s} import by package (3.13): {shares}")
            print(f"load average after: {load_average()}")
        if args.runtime_only:
            return

        # The same artifact without its bytecode: what every cold start compiled until now.
        sources_only = Path(scratch) / "task-sources"
        shutil.copytree(Path(scratch) / "task", sources_only)
        for cache in sorted(sources_only.rglob("__pycache__"), reverse=True):
            shutil.rmtree(cache)
        site_packages = [p for p in sys.path if p.endswith("site-packages")]
        installed = f"import sys; sys.path[:0] = {site_packages!r}; import site; site.main()"
        task = f"import sys; sys.path[:0] = [{str(sources_only)!r}, *{site_packages!r}]"
        print(f"== Cold import, median of {args.import_runs} fresh interpreters ==")
        print(
            f"{'module':34s} {'installed, bytecode cached':>27s} {'artifact, no bytecode':>23s}"
            + (f" {'3.13, no bytecode':>23s} {'3.13 + artifact bytecode':>23s}" if runtime else "")
        )
        floor_wall, floor_cpu = import_seconds("botocore.session", installed, args.import_runs)
        print(
            f"{'botocore.session (runtime floor)':34s} "
            f"{floor_wall * 1000:8.0f} ms wall {floor_cpu * 1000:5.0f} ms CPU"
        )
        for module in HANDLER_MODULES:
            cached_wall, cached_cpu = import_seconds(module, installed, args.import_runs)
            fresh_wall, fresh_cpu = import_seconds(module, task, args.import_runs)
            line = (
                f"{module:34s} {cached_wall * 1000:8.0f} ms wall {cached_cpu * 1000:5.0f} ms CPU"
                f" {fresh_wall * 1000:6.0f} ms wall {fresh_cpu * 1000:5.0f} ms CPU"
            )
            if runtime:
                python, runtime_site = runtime
                for root in (sources_only, Path(scratch) / "task"):
                    setup = f"import sys; sys.path[:0] = [{str(root)!r}, {runtime_site!r}]"
                    wall, cpu = import_seconds(module, setup, args.import_runs, python)
                    line += f" {wall * 1000:6.0f} ms wall {cpu * 1000:5.0f} ms CPU"
            print(line)


if __name__ == "__main__":
    main()
