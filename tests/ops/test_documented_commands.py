"""Every command the README, docs/ops.md and the runbooks tell on-call to type must exist.

`payments-dr` commands are parsed by the real argument parser. `aws` commands are checked
against botocore's service models: the operation exists and takes each flag given.
"""

from __future__ import annotations

import argparse
import re
import shlex
from enum import Enum
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from payments_dr import contract
from payments_dr.cli import build_parser
from payments_dr.infra import storage

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    REPO_ROOT / "README.md",
    REPO_ROOT / "docs" / "ops.md",
    *sorted((REPO_ROOT / "docs" / "runbooks").glob("*.md")),
]
# Options the AWS CLI adds to every operation.
AWS_GLOBAL_OPTIONS = {"--region", "--profile", "--output", "--query", "--cli-input-json"}
# The AWS CLI's own commands, which no service model describes.
AWS_CLI_COMMANDS = {("s3", "sync"), ("dynamodb", "wait")}
BOTOCORE = botocore.session.get_session()


def documented_commands(program: str) -> list[tuple[str, str]]:
    """(document, command) for each command starting with `program` in code blocks or spans."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        lines = [
            line.split("  #")[0]  # a trailing comment in a shell block
            for block in blocks
            for line in block.replace("\\\n", " ").splitlines()
        ]
        spans = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        for command in lines + spans:
            command = " ".join(command.split()).removeprefix(".venv/bin/")
            if command.startswith(f"{program} "):
                found.append((document.name, command))
    return found


def is_template(command: str) -> bool:
    """A synopsis such as `status --stack NAME [--json]`, not a command to type."""
    return re.search(r"\[--|\{\w[\w ]*,| \.\.\.|/revoke/", command) is not None


PAYMENTS_DR_COMMANDS = [
    pytest.param(command, id=f"{document}: {command}")
    for document, command in documented_commands("payments-dr")
    if not is_template(command)
]
AWS_COMMANDS = [
    pytest.param(command, id=f"{document}: {command[:60]}")
    for document, command in documented_commands("aws")
    if not is_template(command) and len(command.split()) > 2
]


def test_the_documents_hold_commands_of_both_kinds() -> None:
    assert len(PAYMENTS_DR_COMMANDS) >= 20
    assert len(AWS_COMMANDS) >= 15


@pytest.mark.parametrize("command", PAYMENTS_DR_COMMANDS)
def test_documented_payments_dr_command_parses(command: str) -> None:
    argv = shlex.split(command.split(" > ")[0].replace("<", "").replace(">", ""))[1:]
    parser = build_parser()
    if len(argv) == 1:  # prose naming a command ("watch `payments-dr status`")
        (subparsers,) = [action for action in parser._actions if action.dest == "command"]
        assert argv[0] in subparsers.choices
        return
    args = parser.parse_args(argv)
    command = _subcommand(parser, argv)
    # The command's own handler runs, not one a shared default would pick.
    assert args.run is command.get_default("run") and args.run is not None
    options = {o: a for a in command._actions for o in a.option_strings}
    given = vars(args)
    words = [w for w in argv if w not in _command_words(parser, argv)]
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--"):
            name, _, inline = word.partition("=")
            # Spelled out in full: argparse would also take an abbreviation, which a later
            # option could make ambiguous.
            assert name in options, f"{name} is not an option of {command.prog}"
            action = options[name]
            if action.nargs == 0:  # a flag: it sets its constant
                assert given[action.dest] == action.const, name
            else:
                value = inline or words[index + 1]
                index += 0 if inline else 1
                assert _shown(given[action.dest]) == value, (name, given[action.dest])
        else:  # a positional value reaches the command as typed
            assert _value_taken(given, word), f"{word!r} is not among {given}"
        index += 1


def _command_words(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """The leading words that name (sub)commands, e.g. ["stack", "up"]."""
    words, current = [], parser
    for word in argv:
        choices = _subparser_choices(current)
        if word not in choices:
            break
        words.append(word)
        current = choices[word]
    return words


def _subcommand(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    current = parser
    for word in _command_words(parser, argv):
        current = _subparser_choices(current)[word]
    return current


def _subparser_choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _shown(value: object) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def _value_taken(given: dict[str, object], word: str) -> bool:
    return any(_shown(value) == word for value in given.values())


@pytest.mark.parametrize("command", AWS_COMMANDS)
def test_documented_aws_command_matches_the_service_model(command: str) -> None:
    words = shlex.split(command.replace("<", "").replace(">", ""))
    service, operation = words[1], words[2]
    if (service, operation) in AWS_CLI_COMMANDS:
        return
    model = BOTOCORE.get_service_model("s3" if service == "s3api" else service)
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    assert operation in operations, f"{service} has no operation {operation}"
    members = model.operation_model(operations[operation]).input_shape.members
    flags = {f"--{xform_name(name, '-')}": shape for name, shape in members.items()}
    for word in words[3:]:
        if not word.startswith("--") or word in AWS_GLOBAL_OPTIONS:
            continue
        negated = word.replace("--no-", "--", 1)
        if word.startswith("--no-"):
            assert flags.get(negated) is not None, f"{operation} takes no {negated}"
            assert flags[negated].type_name == "boolean", f"{negated} is not a boolean"
        else:
            assert word in flags, f"{operation} takes no {word}"


def test_the_runbooks_quote_the_stacks_own_settings() -> None:
    runbooks = REPO_ROOT / "docs" / "runbooks"
    dlq = (runbooks / "dlq-replay.md").read_text()
    assert f"DLQ retention is {contract.DLQ_RETENTION_SECONDS // 86400} days" in dlq
    assert f"comes back after {contract.RETRY_MAX_RECEIVE_COUNT} attempts" in dlq
    logs = (runbooks / "transaction-log-restore.md").read_text()
    assert f"for **{storage.NONCURRENT_VERSION_EXPIRY_DAYS} days**" in logs
    assert f"Glacier after {storage.GLACIER_AFTER_DAYS} days" in logs
