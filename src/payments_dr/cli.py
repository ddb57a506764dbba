"""`payments-dr` entry point. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a closed pipe
EXIT_USAGE = 2

# Modules exposing `register(subparsers)`; each adds its subcommands with `set_defaults(run=...)`
# where `run(args) -> int` returns the exit code.
COMMAND_MODULES = (
    "payments_dr.synth",
    "payments_dr.lab.commands",
    "payments_dr.ops.commands",
    "payments_dr.ops.conflicts",
    "payments_dr.merchants",
    "payments_dr.ops.canary_keys",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payments-dr",
        description="Multi-region DR for a payment API: synthesize, simulate, operate.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        exit_code = int(args.run(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return exit_code
    except BrokenPipeError:
        # The reader went away (`payments-dr synth | head`): stop quietly, as shell tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ModuleNotFoundError as error:
        if (error.name or "").startswith("payments_dr"):
            raise  # our own code is broken: a traceback is the right answer
        # Only the merchant SDK is installed (`payments-dr[client]`).
        print(
            f"error: the payments-dr commands need {error.name}, which is not installed."
            " Fix: pip install 'payments-dr[stack]'",
            file=sys.stderr,
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
