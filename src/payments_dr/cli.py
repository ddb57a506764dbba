"""`payments-dr` entry point. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules exposing `register(subparsers)`; each adds its subcommands with `set_defaults(run=...)`
# where `run(args) -> int` returns the exit code.
COMMAND_MODULES = (
    "payments_dr.synth",
    "payments_dr.lab.commands",
    "payments_dr.ops.commands",
    "payments_dr.merchants",
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
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
