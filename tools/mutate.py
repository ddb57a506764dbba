"""A curated mutation check: do the tests catch the bugs that would hurt most?

Each mutation is one deliberate, plausible bug in a behaviour that matters (the payment
store, the authorizer, the retry worker, the DR budget, the policy rules, health and fence,
the drill's verdicts, conflict records and replication). For each, the tracked files are
copied to a scratch directory, the one edit is applied there, and the tests named for it run
against that copy. A mutation is caught when those tests fail. The unmutated copy must pass
the same tests first, or nothing is learnt.

    python tools/mutate.py                  # every mutation (`make mutate`)
    python tools/mutate.py --list
    python tools/mutate.py store-overwrites-a-payment dr-rto-boundary
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A mutation whose tests hang (a deadline ignored) is caught by pytest-timeout: not all day.
DEFAULT_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS


SERVICE = "src/payments_dr/service"
LAB = "src/payments_dr/lab"
DRILL_TESTS = (
    "tests/lab/test_drill_faults.py",
    "tests/lab/test_drill_verdict.py",
    "tests/lab/test_drill_accounting.py",
)

MUTATIONS = (
    # --- the payment store: written once, replays told from conflicts --------------------
    Mutation(
        "store-overwrites-a-payment",
        f"{SERVICE}/store.py",
        'ConditionExpression="attribute_not_exists(#pk)",',
        'ConditionExpression="attribute_not_exists(#pk) OR attribute_exists(#pk)",',
        ("tests/service/test_api.py", "tests/service/test_properties.py"),
    ),
    Mutation(
        "store-replay-taken-for-a-conflict",
        f"{SERVICE}/store.py",
        "if existing.fingerprint == payment.fingerprint",
        "if existing.fingerprint != payment.fingerprint",
        ("tests/service/test_api.py", "tests/service/test_properties.py"),
    ),
    # --- the authorizer and credentials --------------------------------------------------
    Mutation(
        "authorizer-ignores-revocation",
        f"{SERVICE}/authorizer.py",
        "if record.status is not KeyStatus.ACTIVE:",
        "if False:",
        ("tests/service/test_authorizer.py",),
    ),
    Mutation(
        "authorizer-keeps-an-expired-rotated-key",
        f"{SERVICE}/authorizer.py",
        "if not previous.valid_at(deps.clock()):",
        "if False:",
        ("tests/service/test_authorizer.py",),
    ),
    Mutation(
        "credentials-compared-in-variable-time",
        f"{SERVICE}/credentials.py",
        "return hmac.compare_digest(secret_digest(key.secret), stored)",
        "return secret_digest(key.secret) == stored",
        ("tests/service/test_constant_time.py", "tests/service/test_authorizer.py"),
    ),
    # --- the retry worker ----------------------------------------------------------------
    Mutation(
        "retry-worker-drops-a-conflicting-payment",
        f"{SERVICE}/retry_worker.py",
        "if outcome is PutOutcome.CONFLICT:",
        "if outcome is PutOutcome.CONFLICT and False:",
        ("tests/service/test_retry_worker.py",),
    ),
    Mutation(
        "retry-worker-fails-the-whole-batch",
        f"{SERVICE}/retry_worker.py",
        "raise_on_entire_batch_failure=False",
        "raise_on_entire_batch_failure=True",
        ("tests/service/test_retry_worker.py",),
    ),
    # --- the DR budget -------------------------------------------------------------------
    Mutation(
        "dr-rto-boundary",
        "src/payments_dr/infra/config_rules.py",
        "if budget.rto_budget_seconds > config.rto_target_seconds:",
        "if budget.rto_budget_seconds >= config.rto_target_seconds:",
        ("tests/infra/test_config.py",),
    ),
    Mutation(
        "dr-rpo-boundary",
        "src/payments_dr/infra/config_rules.py",
        "if budget.rpo_budget_seconds > config.rpo_target_seconds:",
        "if budget.rpo_budget_seconds >= config.rpo_target_seconds:",
        ("tests/infra/test_config.py",),
    ),
    Mutation(
        "dr-budget-forgets-the-dns-ttl",
        "src/payments_dr/infra/config.py",
        "rto_budget_seconds=detection + dns + FAILOVER_MARGIN_SECONDS,",
        "rto_budget_seconds=detection + FAILOVER_MARGIN_SECONDS,",
        ("tests/infra/test_config.py",),
    ),
    # --- policy rules --------------------------------------------------------------------
    Mutation(
        "policy-ignores-not-action",
        "src/payments_dr/policy/rules/iam.py",
        ' or "NotAction" in statement:',
        ":",
        ("tests/policy/test_policy_rules.py",),
    ),
    Mutation(
        "policy-ignores-not-resource",
        "src/payments_dr/policy/rules/iam.py",
        ' and "NotResource" not in statement:',
        ":",
        ("tests/policy/test_policy_rules.py",),
    ),
    # --- health and fence ----------------------------------------------------------------
    Mutation(
        "health-ignores-the-fence",
        f"{SERVICE}/api.py",
        "if config.mode is Mode.FENCED:\n            self.reasons",
        "if False:\n            self.reasons",
        ("tests/service/test_api.py",),
    ),
    Mutation(
        "fenced-region-takes-writes",
        f"{SERVICE}/api.py",
        "if config.mode is Mode.FENCED:\n            # A fenced region takes no writes",
        "if False:\n            # A fenced region takes no writes",
        ("tests/service/test_api.py",),
    ),
    Mutation(
        "health-waits-past-its-deadline",
        f"{SERVICE}/api.py",
        "return results.get(timeout=deadline_seconds)",
        "return results.get()",
        ("tests/service/test_api.py",),
        timeout_seconds=60,
    ),
    # --- the drill's verdicts ------------------------------------------------------------
    Mutation(
        "drill-counts-no-lost-payment",
        f"{LAB}/verdict.py",
        "report.payments_lost = len(accounting.lost)",
        "report.payments_lost = 0",
        DRILL_TESTS,
    ),
    Mutation(
        "drill-ignores-a-payment-missing-in-one-region",
        f"{LAB}/verdict.py",
        "if accounting.partial:",
        "if False:",
        DRILL_TESTS,
    ),
    Mutation(
        "drill-passes-strong-mode-duplicates",
        f"{LAB}/verdict.py",
        "if lab.settings.strong and (accounting.accepted_twice or accounting.two_versions):",
        "if False:",
        DRILL_TESTS,
    ),
    Mutation(
        "accounting-never-finds-a-partial-payment",
        f"{LAB}/accounting.py",
        "if len(regions_holding(payment, tables)) < len(tables):",
        "if False:",
        DRILL_TESTS,
    ),
    # --- cross-region: conflict records, replication, the gateway's path -----------------
    Mutation(
        "conflict-never-detected",
        f"{SERVICE}/conflicts.py",
        "if _text(old, Attr.FINGERPRINT) == _text(new, Attr.FINGERPRINT):",
        "if True:",
        ("tests/service/test_conflicts.py", "tests/service/test_property_conflicts.py"),
    ),
    Mutation(
        "replication-first-writer-wins",
        f"{LAB}/replication.py",
        "and (current.written_at, target) > (change.written_at, change.source)",
        "and (current.written_at, target) < (change.written_at, change.source)",
        ("tests/lab/test_replication_properties.py",),
    ),
    Mutation(
        "gateway-passes-the-encoded-id",
        f"{LAB}/apigw.py",
        'return contract.PAYMENT_PATH, {"id": unquote(match.group("id"))}',
        'return contract.PAYMENT_PATH, {"id": match.group("id")}',
        ("tests/lab/test_apigw.py",),
    ),
)


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def copy_repository(target: Path) -> None:
    for name in tracked_files():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, destination)


def mutated_text(mutation: Mutation, root: Path) -> str:
    """The file's text with the mutation applied; exits if the code no longer matches."""
    path = root / mutation.path
    text = path.read_text()
    found = text.count(mutation.old)
    if found != 1:
        raise SystemExit(
            f"error: mutation {mutation.name}: the text to change occurs {found} times in"
            f" {mutation.path}; the code moved on. Fix: update the mutation in tools/mutate.py."
        )
    mutated = text.replace(mutation.old, mutation.new)
    compile(mutated, str(path), "exec")  # a mutation must be a bug, not a syntax error
    return mutated


def run_tests(root: Path, tests: tuple[str, ...], timeout_seconds: int) -> tuple[bool, float]:
    """(passed, wall seconds) for `tests` run against the copy at `root`."""
    # The copy's own sources come first on the path, ahead of the editable install.
    environment = {**os.environ, "PYTHONPATH": str(root / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            f"timeout={timeout_seconds}",
            *tests,
        ],
        cwd=root,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout_seconds * 20,
        check=False,
    )
    return completed.returncode == 0, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    known = {mutation.name: mutation for mutation in MUTATIONS}
    if args.list:
        for mutation in MUTATIONS:
            print(f"{mutation.name:48} {mutation.path}")
        return 0
    unknown = [name for name in args.names if name not in known]
    if unknown:
        print(
            f"error: unknown mutation {', '.join(unknown)}. Fix: pick names from --list.",
            file=sys.stderr,
        )
        return 2
    chosen = [known[name] for name in args.names] or list(MUTATIONS)

    with tempfile.TemporaryDirectory(prefix="payments-dr-mutate-") as scratch:
        baseline = Path(scratch) / "baseline"
        copy_repository(baseline)
        for mutation in chosen:  # a stale mutation stops the run before any test does
            mutated_text(mutation, baseline)
        test_sets = sorted({tests for mutation in chosen for tests in [mutation.tests]})
        print(f"baseline: the unmutated copy must pass {len(test_sets)} test sets")
        for tests in test_sets:
            passed, seconds = run_tests(baseline, tests, DEFAULT_TIMEOUT_SECONDS)
            if not passed:
                print(f"error: {' '.join(tests)} fail without any mutation ({seconds:.0f} s).")
                return 1
        caught = 0
        for mutation in chosen:
            root = Path(scratch) / mutation.name
            shutil.copytree(baseline, root)
            (root / mutation.path).write_text(mutated_text(mutation, root))
            passed, seconds = run_tests(root, mutation.tests, mutation.timeout_seconds)
            caught += not passed
            verdict = "caught" if not passed else "SURVIVED"
            print(f"{verdict:9} {mutation.name:48} {seconds:6.1f} s", flush=True)
            shutil.rmtree(root)
    rate = 100 * caught / len(chosen)
    print(f"caught {caught} of {len(chosen)} mutations ({rate:.0f}%)")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
