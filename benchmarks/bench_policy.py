"""Time to evaluate every policy rule over the synthesized stack, for both example stacks."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from payments_dr.policy import RULES, evaluate
from payments_dr.service.artifact import build_artifact
from payments_dr.synth import synthesize

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_FILES = ("Pulumi.dev.yaml", "Pulumi.eventual.yaml")
RUNS = 50


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-policy-") as build_dir:
        artifact = build_artifact(Path(build_dir))
        for stack_file in STACK_FILES:
            result = synthesize(REPO_ROOT / stack_file, artifact)
            budget = result.budget.to_dict()
            timings, violations = [], []
            for _ in range(RUNS):
                started = time.perf_counter()
                violations = evaluate(result.resources, budget)
                timings.append(time.perf_counter() - started)
            timings.sort()
            print(
                f"{stack_file}: {len(RULES)} rules over {len(result.resources)} resources,"
                f" {len(violations)} violation(s); evaluate median"
                f" {statistics.median(timings) * 1000:.1f} ms,"
                f" p90 {timings[int(RUNS * 0.9)] * 1000:.1f} ms ({RUNS} runs)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
