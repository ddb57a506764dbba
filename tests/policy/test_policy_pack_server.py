"""The pack's entry module, started as the Pulumi CLI starts it, answering the analyzer protocol.

No Pulumi CLI runs here, so the test plays its part: it starts policy/__main__.py, reads the port
it prints, and sends the same gRPC requests `pulumi preview --policy-pack policy` would.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from payments_dr.policy import RULES, tokens
from payments_dr.policy.pack import PACK_NAME

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 60
MANDATORY = analyzer_pb2.EnforcementLevel.Value("MANDATORY")


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    server = subprocess.Popen(
        [sys.executable, str(REPO / "policy" / "__main__.py")],
        cwd=REPO / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(_first_line(server.stdout, STARTUP_TIMEOUT_SECONDS))
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=STARTUP_TIMEOUT_SECONDS)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def _first_line(stream: IO[str], timeout: float) -> str:
    """The stream's first line, read by a thread so that a server that never prints fails the
    test after `timeout` instead of hanging it; the thread then drains the rest."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"the policy pack printed no port within {timeout} s") from None


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def test_the_pack_publishes_every_rule_as_mandatory(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())

    assert info.name == PACK_NAME
    assert [p.name for p in info.policies] == [rule.name for rule in RULES]
    assert {p.enforcementLevel for p in info.policies} == {MANDATORY}


def test_a_resource_violation_comes_back_as_a_mandatory_diagnostic(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    request = analyzer_pb2.AnalyzeRequest(
        type=tokens.SQS_QUEUE,
        name="retry",
        urn="urn:pulumi:dev::payments-dr::aws:sqs/queue:Queue::retry",
        properties=_struct({"name": "payments-dr-dev-retry", "region": "us-east-1"}),
    )

    response = analyzer.Analyze(request)

    (diagnostic,) = response.diagnostics
    assert diagnostic.policyName == "sqs-encryption"
    assert diagnostic.enforcementLevel == MANDATORY
    # pulumi-policy puts the rule's description on the first line, then our message.
    assert diagnostic.message.splitlines()[1].startswith(
        "Queue 'retry' in us-east-1 is not encrypted. Fix:"
    )


def test_a_value_unknown_during_preview_is_reported_not_passed(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    request = analyzer_pb2.AnalyzeRequest(
        type=tokens.LAMBDA_FUNCTION,
        name="api",
        urn="urn:pulumi:dev::payments-dr::aws:lambda/function:Function::api",
        properties=_struct({"tracingConfig": {"mode": UNKNOWN_STRING_VALUE}}),
    )

    response = analyzer.Analyze(request)

    tracing = [d for d in response.diagnostics if d.policyName == "lambda-active-tracing"]
    assert len(tracing) == 1
    assert "can't be known during preview" in tracing[0].message


def test_a_stack_violation_names_the_offending_resource(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    bucket_urn = "urn:pulumi:dev::payments-dr::aws:s3/bucket:Bucket::logs"
    request = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=tokens.S3_BUCKET,
                name="logs",
                urn=bucket_urn,
                properties=_struct({"bucket": "logs-bucket", "region": "us-east-2"}),
            )
        ]
    )

    response = analyzer.AnalyzeStack(request)

    by_policy = {d.policyName: d for d in response.diagnostics}
    assert by_policy["s3-versioning"].urn == bucket_urn
    assert "Bucket 'logs' in us-east-2 is not versioned" in by_policy["s3-versioning"].message
    assert {"s3-sse-kms", "s3-public-access-block", "s3-tls-only"} <= set(by_policy)
