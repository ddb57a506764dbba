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


def confirmation_refusal(
    action: str, assume_yes: bool, terminal: TextIO | None = None, ask: Callable[[str], str] = input
) -> Refusal | None:
    """Asks on a terminal before a write to a deployed stack; None when it may go ahead.

    `--yes` skips the question. Without a terminal (a script, CI) and without `--yes` the
    write is refused as a usage error (2), so nothing changes a stack unattended by accident;
    an answer other than yes refuses it (3).
    """
    if assume_yes:
        return None
    if not (terminal or sys.stdin).isatty():
        return Refusal(
            f"{action} changes a deployed stack: there is no terminal to confirm on; pass --yes",
            EXIT_USAGE,
        )
    answer = ask(f"{action}? [y/N] ")
    if answer.strip().lower() in {"y", "yes"}:
        return None
    return Refusal("not confirmed; nothing was changed", EXIT_REFUSED)
