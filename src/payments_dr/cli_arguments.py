"""Checks on command-line values shared by the subcommands, run before any work starts.

The `argparse` types raise `ArgumentTypeError`, which the parser reports as one usage line
and exit 2; the `*_problem` functions return the sentence to print, or None.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TextIO

EXIT_USAGE = 2  # argparse's own code for a usage error
EXIT_REFUSED = 3  # as the operations commands use it: refused, nothing changed

# us-east-1, eu-central-2, ap-southeast-4, us-gov-west-1: the shape of every AWS region name.
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def aws_region(value: str) -> str:
    """An argparse type: a region name as AWS spells it (whether the stack has it is
    checked against the stack's outputs)."""
    if not _REGION_RE.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an AWS region name such as us-east-1")
    return value


MERCHANT_ID_RULE = "3-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit"
MERCHANT_ID_HELP = f"the merchant's id: {MERCHANT_ID_RULE}"


def merchant_id(value: str) -> str:
    """An argparse type: a merchant id the service accepts."""
    from payments_dr.service.model import MERCHANT_ID_PATTERN  # the service's own rule

    if not MERCHANT_ID_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a merchant id ({MERCHANT_ID_RULE})")
    return value


def int_between(low: int, high: int, unit: str) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{number} is out of range: {low} to {high} {unit}")
        return number

    return parse


def positive_seconds(value: str) -> float:
    """An argparse type: a finite number of seconds above zero."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {value}")
    return seconds


def output_path_problem(path: Path) -> str | None:
    """Why a report cannot be written at `path`; checked before the work that produces it.

    Missing folders are fine (the writer creates them) as long as the nearest existing one
    is a writable directory.
    """
    if path.is_dir():
        return f"{path} is a directory; name a file"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{path}: {parent} is a file, not a directory"
            if not os.access(parent, os.W_OK):
                return f"{path}: {parent} is not writable"
            return None
    return None


def write_text_creating_folders(path: Path, text: str) -> None:
    """Write a report, creating its missing folders (checked by `output_path_problem`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


class Refusal(NamedTuple):
    message: str
    exit_code: int


# Asks the operator a yes/no question; True to go ahead.
Ask = Callable[[str], bool]


def add_confirmation_arguments(parser: argparse.ArgumentParser, dry_run: str | None) -> None:
    """--yes, and --dry-run (`dry_run` is its help) where the command can say what it would
    write without writing."""
    if dry_run is not None:
        parser.add_argument("--dry-run", action="store_true", help=dry_run)
    parser.add_argument(
        "--yes",
        action="store_true",
        help="write without asking for confirmation (needed without a terminal)",
    )


def unconfirmable(
    command: str, args: argparse.Namespace, terminal: TextIO | None = None
) -> Refusal | None:
    """Checked up front, before credentials or any AWS call: a write nobody could confirm.

    Without a terminal (a script, CI) and without `--yes`, a command that writes to a
    deployed stack is refused as a usage error (2), so nothing changes a stack unattended by
    accident. A dry run writes nothing and needs no confirmation.
    """
    if getattr(args, "yes", False) or getattr(args, "dry_run", False):
        return None
    if (terminal or sys.stdin).isatty():
        return None
    look = " (or --dry-run to only look)" if hasattr(args, "dry_run") else ""
    return Refusal(
        f"{command} writes to a deployed stack and there is no terminal to confirm on:"
        f" pass --yes{look}",
        EXIT_USAGE,
    )


def ask_on_terminal(question: str) -> bool:
    """The question on stderr (stdout may carry a JSON document), the answer from stdin."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


def confirmation_refusal(
    command: str,
    question: str,
    args: argparse.Namespace,
    ask: Ask = ask_on_terminal,
    terminal: TextIO | None = None,
) -> Refusal | None:
    """Asks before the write, once the command knows what it will write and where; None when
    it may go ahead. `--yes` skips the question; any answer but yes refuses it (3)."""
    if getattr(args, "yes", False):
        return None
    refusal = unconfirmable(command, args, terminal)
    if refusal is not None:
        return refusal
    if ask(question):
        return None
    return Refusal(f"{command} not confirmed; nothing was written", EXIT_REFUSED)
