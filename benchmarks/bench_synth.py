"""Synthesis time of the full stack under mocks, and its resource count, for both modes.

Times, in one fresh process: the import of the pulumi_aws service modules the program uses
(paid once per process), the Lambda artifact build (once), the first synthesis and the median
of later ones. Target: a synthesis under 3 s.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from payments_dr.service.artifact import build_artifact
from payments_dr.synth import synthesize

SERVICE_MODULES = (
    *("acm", "apigateway", "cloudwatch", "dynamodb", "ec2", "iam", "kms"),
    *("lambda_", "route53", "s3", "sns", "sqs", "ssm", "vpc"),
)

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_FILES = ("Pulumi.dev.yaml", "Pulumi.eventual.yaml")
WARM_RUNS = 5
TARGET_SECONDS = 3.0


def main() -> int:
    started = time.perf_counter()
    for module in SERVICE_MODULES:
        # pulumi_aws executes a service module only when one of its attributes is first read.
        getattr(importlib.import_module(f"pulumi_aws.{module}"), "__all__", None)
    print(f"pulumi_aws service modules import: {time.perf_counter() - started:.2f} s")
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as build_dir:
        started = time.perf_counter()
        artifact = build_artifact(Path(build_dir))
        print(f"artifact build: {time.perf_counter() - started:.2f} s")
        worst = 0.0
        for stack_file in STACK_FILES:
            timings = []
            for _ in range(1 + WARM_RUNS):
                started = time.perf_counter()
                result = synthesize(REPO_ROOT / stack_file, artifact)
                timings.append(time.perf_counter() - started)
            cloud = sum(1 for r in result.resources if r["custom"])
            components = len(result.resources) - cloud
            first, warm = timings[0], statistics.median(timings[1:])
            worst = max(worst, first)
            print(
                f"{stack_file}: {cloud} AWS resources + {components} components;"
                f" synth first {first:.2f} s, median of {WARM_RUNS} more {warm:.2f} s"
            )
    verdict = "within" if worst < TARGET_SECONDS else "ABOVE"
    print(f"slowest synthesis {worst:.2f} s: {verdict} the {TARGET_SECONDS:.0f} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
