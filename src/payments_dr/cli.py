"""`payments-dr` entry point. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a closed pipe

# Modules exposing `register(subparsers)`; each adds its subcommands with `set_defaults(run=...)`
# where `run(args) -> int` returns the exit code.
COMMAND_MODULES = (
    "payments_dr.synth",
    "payments_dr.lab.commands",
    "payments_dr.ops.commands",
    "payments_dr.ops.conflicts",
    "payments_dr.merchants_cli",
    "payments_dr.ops.canary_keys",
)

EXIT_CODES_EPILOG = """\
exit codes:
  0    done (synth: no policy violation; drill: the report passed)
  1    ran but did not reach its goal (a policy violation, a failed drill, a wait that
       timed out, a status reading that failed)
  2    could not start: a usage error, a bad stack or outputs file, missing credentials
  3    refused: a safety check (--force overrides where offered), or not confirmed
  130  interrupted with Ctrl-C; what was left behind is printed
  141  the reader of the output went away (a closed pipe)

`payments-dr COMMAND --help` describes each command and its options."""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions as argparse does, but keeps indented blocks (the exit-code table,
    lists in docstrings) as they are written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = [part for part in text.strip("\n").split("\n\n") if part.strip()]
        filled = []
        for paragraph in paragraphs:
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines[1:]):
                filled.append("\n".join(indent + line for line in lines))
            else:
                filled.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(filled)


class Parser(argparse.ArgumentParser):
    """Reports a usage error as one line naming the command, then exits 2.

    argparse's default prints the whole usage first, which buries the problem; the line
    says where the usage is instead. Subcommand parsers are of this class too.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def package_version() -> str:
    try:
        return version("payments-dr")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="payments-dr",
        description="Multi-region DR for a payment API: synthesize, simulate, operate.",
        epilog=EXIT_CODES_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    _complete_help(parser)
    return parser


def _complete_help(parser: argparse.ArgumentParser) -> None:
    """Every command's own --help describes it (its one-line summary, when the module gave
    no longer description) and lists the exit codes."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        summaries = {choice.dest: choice.help for choice in action._choices_actions}
        for name, command in action.choices.items():
            command.formatter_class = HelpFormatter
            if not command.description and summaries.get(name):
                summary = str(summaries[name])
                command.description = summary[0].upper() + summary[1:] + "."
            if command.epilog is None:
                command.epilog = EXIT_CODES_EPILOG
            _complete_help(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; `argv` None means this process's own command line."""
    try:
        args = build_parser().parse_args(argv)
        exit_code = int(args.run(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        if argv is None and (exit_code == EXIT_INTERRUPTED or getattr(args, "end_at_once", False)):
            _exit_at_once(exit_code)
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
    except KeyboardInterrupt:
        # Commands that change something catch Ctrl-C themselves and say what they left;
        # this is for the rest (importing, reading arguments, a command that only reads).
        print("\ninterrupted", file=sys.stderr)
        if argv is None:
            _exit_at_once(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED


def _exit_at_once(exit_code: int) -> NoReturn:
    """End the process without the interpreter's teardown: after Ctrl-C, and after a command
    that only ever ends that way (`lab up`, which sets `end_at_once`).

    The command has stopped its work, said what it left and closed its files; what is left
    is freeing the heap (the lab's two simulated regions, the Pulumi runtime). That took 4-9 s
    of wall time at load average 10 after `lab up` or a drill had stopped in under a second,
    and more under heavier load: `lab up` then missed its test's 30 s deadline.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


if __name__ == "__main__":
    sys.exit(main())
