"""`--help` and `--version`, reports written into new folders, and Ctrl-C in `synth`."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from payments_dr import cli, synth
from payments_dr.infra.config import StackConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = REPO_ROOT / "Pulumi.dev.yaml"


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """(command words, its parser, its one-line summary) for every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help for choice in action._choices_actions}
            for name, command in action.choices.items():
                yield (*path, name), command, summaries.get(name)
                yield from commands(command, (*path, name))


def test_every_command_and_option_is_described_with_its_allowed_values() -> None:
    found = list(commands(cli.build_parser()))
    assert len(found) > 15
    for words, parser, summary in found:
        assert summary and parser.description, f"payments-dr {' '.join(words)} lacks a description"
        assert parser.epilog == cli.EXIT_CODES_EPILOG
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            described = action.help not in (None, "", argparse.SUPPRESS)
            assert described, f"payments-dr {' '.join(words)} {action.dest} lacks a help text"
    redrive = dict((words, parser) for words, parser, _ in found)[("redrive",)]
    assert "1 to 500" in redrive.format_help()


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["drill", "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    for line in ("exit codes:", "  2    could not start", "  130  interrupted with Ctrl-C"):
        assert line in shown
    assert "--scenario {" in shown  # allowed values are listed


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"payments-dr {version('payments-dr')}\n"


def test_synth_writes_its_json_into_folders_it_creates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new" / "deeper" / "s.json"
    assert cli.main(["synth", str(STACK_FILE), "--json", str(target)]) == 0
    assert json.loads(target.read_text())["stack"] == "dev"
    assert f"resources to {target}" in capsys.readouterr().out


def test_ctrl_c_during_synthesis_exits_130_and_says_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(config: StackConfig, artifact: Path) -> synth.SynthResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "synthesize_config", interrupted)
    target = tmp_path / "s.json"
    assert cli.main(["synth", str(STACK_FILE), "--json", str(target)]) == 130
    assert capsys.readouterr().err == (
        "\nsynth interrupted: it deploys nothing; no file was written\n"
    )
    assert not target.exists()


# The Pulumi run blocks, as a long one would; the marker says it has started.
BLOCKED_SYNTH = """
import sys, threading
from payments_dr import cli, synth

def blocked(config, artifact):
    print("synthesizing", file=sys.stderr, flush=True)
    threading.Event().wait()

synth.synthesize_config = blocked
sys.exit(cli.main(["synth", sys.argv[1]]))
"""


def interruptible() -> None:
    """For `preexec_fn`: the child takes Ctrl-C even when this run inherited SIGINT ignored
    (a shell starts background jobs so), as the test sends it one."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_real_ctrl_c_stops_a_running_synthesis(tmp_path: Path) -> None:
    """SIGINT reaches the main thread, not the one running the program, and ends the process
    (Pulumi's runtime would swallow the interrupt and wait forever for the cut-short run)."""
    process = subprocess.Popen(
        [sys.executable, "-c", BLOCKED_SYNTH, str(STACK_FILE)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # blocks until the marker; EOF if it died first
        assert first == "synthesizing\n", first + process.stderr.read()
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=60)  # drains stderr; a hang fails here
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert rest == "\nsynth interrupted: it deploys nothing; no file was written\n"
