"""Cold start of each handler as Lambda runs it: import, then the first invocation.

Importing is only part of a cold start: the handlers build their botocore session and clients
on the first invocation, which is when botocore loads its service models and endpoint rules.
A change that only moved work from import into the first call would make the import figure
look better and the cold start no faster, so bench_service.py prints both.

Each run is a fresh interpreter, with the Lambda runtime's environment (tracing on, metrics
and INFO logs written to stdout), that imports the handler from the unpacked artifact and
calls `handler(event, context)` once with real work: a new payment (api), a queued payment
applied (retry_worker), a stream batch archived to S3 (log_archiver), a stored merchant key
admitted (authorizer). AWS is moto's server, in this process, reached over HTTP through
AWS_ENDPOINT_URL, so the probe does everything the function does except the network to
AWS. CPU seconds are the probe's own (moto's work is not in them); wall seconds include
moto's answers.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from payments_dr import contract
from payments_dr.service import retry_message
from payments_dr.service.credentials import CredentialStore, issue_key
from payments_dr.service.model import IdKey, new_payment, parse_payment_request
from payments_dr.service.store import to_item

REGION = contract.DEFAULT_PRIMARY_REGION
STACK = "bench"
ACCOUNT_ID = "123456789012"
MERCHANT = "merchant-bench"
REQUEST = {"amount": 1999, "currency": "EUR", "payment_token": "tok_4f9a2c7e81b3"}
# A sampled trace, as Lambda sets it when active tracing is on: the Tracer records for real.
TRACE_HEADER = "Root=1-6750a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"

PROBE = """
import sys, json, time
sys.path[:0] = {paths!r}
wall, cpu = time.perf_counter(), time.process_time()
import {module} as function
imported = time.perf_counter() - wall, time.process_time() - cpu

class Context:
    function_name = "payments-dr-bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:{account}:function:payments-dr-bench"
    aws_request_id = "cold-start"
    def get_remaining_time_in_millis(self):
        return 10_000

event = json.loads(sys.stdin.read())
wall, cpu = time.perf_counter(), time.process_time()
result = function.handler(event, Context())
invoked = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({{"import": imported, "invoke": invoked, "result": result}}, default=str))
"""


@dataclass(frozen=True)
class ColdStart:
    """Seconds per run: wall and CPU of the import, and of import + first call."""

    import_wall: list[float]
    import_cpu: list[float]
    total_wall: list[float]
    total_cpu: list[float]

    def summary(self, name: str) -> tuple[float, float]:
        """(minimum, median) of one measure."""
        values: list[float] = getattr(self, name)
        return min(values), statistics.median(values)


@dataclass
class Fixture:
    environment: dict[str, str]  # the function's deploy-time settings
    events: dict[str, Callable[[], dict[str, Any]]]  # handler module -> a fresh event
    checks: dict[str, Callable[[Any], bool]]  # handler module -> is this the expected result


def _fresh_key(prefix: str) -> str:
    """A new idempotency key per run, without digits: a random run of digits can pass the
    Luhn check and be refused as card-shaped (docs/security.md)."""
    letters = uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))
    return f"{prefix}-{letters[:20]}"


def _payment(key: str, id_key: IdKey) -> Any:
    request = parse_payment_request(json.dumps(REQUEST), merchant_id=MERCHANT)
    return new_payment(request, key, REGION, time.time(), id_key)


def post_event(key: str) -> dict[str, Any]:
    """API Gateway's event for a new payment under `key`, after the authorizer admitted it."""
    return {
        "resource": contract.PAYMENTS_PATH,
        "path": contract.PAYMENTS_PATH,
        "httpMethod": "POST",
        "headers": {contract.IDEMPOTENCY_HEADER: key, "Content-Type": "application/json"},
        "body": json.dumps(REQUEST),
        "isBase64Encoded": False,
        "requestContext": {
            "stage": contract.API_STAGE,
            "requestId": key,
            "authorizer": {contract.AUTH_CONTEXT_MERCHANT_ID: MERCHANT, "principalId": MERCHANT},
        },
    }


def _retry_event(queue_arn: str, id_key: IdKey) -> dict[str, Any]:
    body = retry_message.encode(_payment(_fresh_key("retry"), id_key))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        ]
    }


def _stream_event(stream_arn: str, id_key: IdKey) -> dict[str, Any]:
    item = to_item(_payment(_fresh_key("stream"), id_key))
    return {
        "Records": [
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": time.time(),
                    "Keys": {contract.TABLE_HASH_KEY: item[contract.TABLE_HASH_KEY]},
                    "NewImage": item,
                    "SequenceNumber": str(time.time_ns()),
                    "SizeBytes": 300,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": stream_arn,
            }
        ]
    }


@contextmanager
def moto_fixture() -> Iterator[Fixture]:
    """moto's server with one region provisioned as the stack would, and the events."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        dynamodb, sqs, ssm, s3, secretsmanager = (
            session.client(name, endpoint_url=endpoint)
            for name in ("dynamodb", "sqs", "ssm", "s3", "secretsmanager")
        )
        table = contract.table_name(STACK)
        stream_arn = dynamodb.create_table(**contract.table_definition(table))[
            "TableDescription"
        ].get("LatestStreamArn", f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}/stream/x")
        queue_url = sqs.create_queue(QueueName=contract.retry_queue_name(STACK))["QueueUrl"]
        dlq_url = sqs.create_queue(QueueName=contract.dlq_name(STACK))["QueueUrl"]
        bucket = contract.log_bucket_name(STACK, REGION, ACCOUNT_ID)
        s3.create_bucket(Bucket=bucket)
        mode = contract.ssm_parameter_name(STACK, REGION, contract.Param.MODE)
        ssm.put_parameter(Name=mode, Value=contract.Mode.ACTIVE.value, Type="String")
        # The id secret the API and the retry worker read at cold start, as deployed.
        id_secret = secrets.token_hex(contract.ID_SECRET_LENGTH // 2)
        id_secret_id = secretsmanager.create_secret(
            Name=contract.id_secret_name(STACK), SecretString=id_secret
        )["ARN"]
        id_key = IdKey(id_secret)
        issued = issue_key(MERCHANT, time.time())
        CredentialStore(dynamodb, table).create(issued.record)
        values = {
            contract.Param.TABLE_NAME: table,
            contract.Param.RETRY_QUEUE_URL: queue_url,
            contract.Param.DLQ_URL: dlq_url,
            contract.Param.LOG_BUCKET: bucket,
            contract.Param.REGION_ROLE: contract.RegionRole.SECONDARY.value,
            contract.Param.PEER_REGION: REGION,
            contract.Param.PEER_RETRY_QUEUE_URL: queue_url,
        }
        environment = {contract.param_env_var(p): v for p, v in values.items()}
        environment.update(
            {
                contract.ENV_SSM_PATH: contract.ssm_path(STACK, REGION),
                contract.ENV_MODE_READ_SPREAD_SECONDS: "0",  # no random wait in a timing
                contract.ENV_ID_SECRET_ID: id_secret_id,
                "AWS_ENDPOINT_URL": endpoint,
                "_X_AMZN_TRACE_ID": TRACE_HEADER,
            }
        )
        authorization = {contract.AUTH_HEADER: f"{contract.AUTH_SCHEME} {issued.api_key}"}
        method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:a1/live/POST/v1/payments"
        queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{contract.retry_queue_name(STACK)}"
        module = "payments_dr.service."
        yield Fixture(
            environment=environment,
            events={
                module + "api": lambda: post_event(_fresh_key("cold")),
                module + "retry_worker": lambda: _retry_event(queue_arn, id_key),
                module + "log_archiver": lambda: _stream_event(stream_arn, id_key),
                module + "authorizer": lambda: {
                    "type": "REQUEST",
                    "methodArn": method_arn,
                    "headers": authorization,
                },
            },
            checks={
                module + "api": lambda result: result["statusCode"] == 201,
                module + "retry_worker": lambda result: result == {"batchItemFailures": []},
                module + "log_archiver": lambda result: result.get("archived") == 1,
                module + "authorizer": lambda result: (
                    result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
                ),
            },
        )
    finally:
        server.stop()


def _probe(
    fixture: Fixture,
    module: str,
    paths: list[str],
    command: list[str],
    environment: dict[str, str],
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """One fresh interpreter (`command` + python) importing `module` and calling it once."""
    env = {**environment, **fixture.environment}
    # As deployed: metrics are flushed and INFO logs written (to a pipe here).
    env.pop("POWERTOOLS_METRICS_DISABLED", None)
    env["POWERTOOLS_LOG_LEVEL"] = "INFO"
    completed = subprocess.run(
        [*command, "-S", "-B", "-c", PROBE.format(paths=paths, module=module, account=ACCOUNT_ID)],
        input=json.dumps(fixture.events[module]()),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{module} cold start failed:\n{completed.stderr[-2000:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    if not fixture.checks[module](report["result"]):
        raise RuntimeError(f"{module} answered unexpectedly: {report['result']}")
    return completed


def cold_start(
    fixture: Fixture,
    module: str,
    paths: list[str],
    python: str,
    environment: dict[str, str],
    runs: int,
) -> ColdStart:
    """`runs` fresh interpreters, each importing `module` and calling it once."""
    samples: dict[str, list[float]] = {name: [] for name in ColdStart.__dataclass_fields__}
    for _ in range(runs):
        completed = _probe(fixture, module, paths, [python], environment)
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        (import_wall, import_cpu), (invoke_wall, invoke_cpu) = report["import"], report["invoke"]
        samples["import_wall"].append(import_wall)
        samples["import_cpu"].append(import_cpu)
        samples["total_wall"].append(import_wall + invoke_wall)
        samples["total_cpu"].append(import_cpu + invoke_cpu)
    return ColdStart(**samples)


def instructions(
    fixture: Fixture, module: str, paths: list[str], python: str, environment: dict[str, str]
) -> tuple[float, float]:
    """Millions of instructions (callgrind) of the import alone and of import + first call.

    The count does not depend on the machine's load, unlike time on shared cores; it
    includes the interpreter's start-up, the same for every handler."""
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    env = {**environment, "PYTHONHASHSEED": "0"}  # the same dict layouts in every run
    import_only = f"import sys\nsys.path[:0] = {paths!r}\nimport {module}\n"
    counts = []
    for probe in (import_only, None):
        if probe is None:
            completed = _probe(fixture, module, paths, [*valgrind, python], env, timeout=900)
        else:
            completed = subprocess.run(
                [*valgrind, python, "-S", "-B", "-c", probe],
                capture_output=True,
                text=True,
                env={**env, **fixture.environment},
                timeout=900,
                check=True,
            )
        collected = re.search(r"Collected : (\d+)", completed.stderr)
        assert collected is not None, completed.stderr[-2000:]
        counts.append(int(collected.group(1)) / 1e6)
    return counts[0], counts[1]


def import_floor(module: str, paths: list[str], python: str, runs: int) -> tuple[float, float]:
    """(minimum, median) CPU seconds of importing one module alone, e.g. botocore's."""
    probe = (
        f"import sys, time\nsys.path[:0] = {paths!r}\ncpu = time.process_time()\n"
        f"import {module}\nprint(time.process_time() - cpu)"
    )
    cpus = [
        float(
            subprocess.run(
                [python, "-S", "-B", "-c", probe],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
        )
        for _ in range(runs)
    ]
    return min(cpus), statistics.median(cpus)


def print_cold_starts(
    modules: list[str],
    paths: list[str],
    python: str,
    environment: dict[str, str],
    runs: int,
    count_instructions: bool = False,
) -> None:
    """The runtime's cold start per handler, beside the import alone and botocore's floor."""
    print(
        f"== Cold start on 3.13 from the artifact with its bytecode: import, then the first"
        f" invocation (fresh interpreters, {runs} runs; ms, minimum / median) =="
    )
    for floor in ("botocore.session", "botocore.client"):
        low, middle = import_floor(floor, paths, python, runs)
        print(f"{'import ' + floor + ' alone':34s} {low * 1000:5.0f} / {middle * 1000:3.0f} CPU")
    print(f"{'module':34s} {'import (CPU)':>13s} {'import + 1st call (CPU)':>24s} {'wall':>13s}")
    with moto_fixture() as fixture:
        for module in modules:
            result = cold_start(fixture, module, paths, python, environment, runs)
            (import_low, import_mid), (total_low, total_mid) = (
                result.summary("import_cpu"),
                result.summary("total_cpu"),
            )
            wall = result.summary("total_wall")[1]
            line = (
                f"{module:34s} {import_low * 1000:5.0f} / {import_mid * 1000:3.0f}"
                f" {total_low * 1000:14.0f} / {total_mid * 1000:3.0f}"
                f" {wall * 1000:9.0f} median"
            )
            if count_instructions:
                if shutil.which("valgrind") is None:
                    raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
                imported, total = instructions(fixture, module, paths, python, environment)
                line += f"   instructions: import {imported:4.0f} M, cold start {total:5.0f} M"
            print(line)
