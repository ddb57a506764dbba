"""The Lambda artifact: reproducible, self-contained, nothing build-local inside."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

import payments_dr.service
from payments_dr.service import artifact
from payments_dr.service.artifact import (
    EXCLUDED_SERVICE_MODULES,
    FIXED_TIMESTAMP,
    RUNTIME_PYTHON_VARIABLE,
    RUNTIME_TAG,
    build_artifact,
    find_runtime_python,
)


def test_same_sources_give_the_same_bytes(tmp_path: Path) -> None:
    first = build_artifact(tmp_path / "a")
    second = build_artifact(tmp_path / "b")
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()


def test_rebuilding_in_place_leaves_one_file(tmp_path: Path) -> None:
    build_artifact(tmp_path)
    build_artifact(tmp_path)
    assert len(list(tmp_path.iterdir())) == 1


def test_entries_are_sorted_with_fixed_metadata(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_artifact(tmp_path)) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {FIXED_TIMESTAMP}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_contains_the_service_and_its_dependencies_only(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_artifact(tmp_path)) as archive:
        names = set(archive.namelist())
    assert {
        "payments_dr/__init__.py",
        "payments_dr/contract.py",
        "payments_dr/service/openapi.json",
        "aws_lambda_powertools/__init__.py",
        "aws_xray_sdk/__init__.py",
    } <= names
    assert not any(name.endswith((".so", ".pyd")) for name in names)
    # Bytecode only for the runtime, next to a source for every module.
    for name in (n for n in names if n.endswith(".pyc")):
        pyc = PurePosixPath(name)
        assert pyc.parent.name == "__pycache__" and pyc.name.endswith(f".{RUNTIME_TAG}.pyc")
        source = pyc.parent.parent / f"{pyc.name.split('.')[0]}.py"
        assert str(source) in names, name
    assert not any(
        name.startswith(("tests/", "payments_dr/infra", "payments_dr/lab")) for name in names
    )
    assert "payments_dr/service/artifact.py" not in names
    assert not any(name.startswith(("boto3/", "botocore/")) for name in names)


def test_every_service_module_is_packaged(tmp_path: Path) -> None:
    service_dir = Path(payments_dr.service.__file__).parent
    expected = {
        f"payments_dr/service/{path.name}"
        for path in service_dir.glob("*.py")
        if path.name not in EXCLUDED_SERVICE_MODULES
    }
    with zipfile.ZipFile(build_artifact(tmp_path)) as archive:
        assert expected <= set(archive.namelist())


@pytest.fixture
def runtime_python() -> Path:
    python = find_runtime_python()
    # CI has pyenv's 3.13 as every developer machine does: a missing one must not pass quietly.
    assert python is not None, "no Python 3.13 (pyenv install 3.13.0): the artifact's bytecode"
    return python


@pytest.fixture
def fresh_search(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    find_runtime_python.cache_clear()
    artifact._say_sources_only.cache_clear()
    yield monkeypatch
    find_runtime_python.cache_clear()
    artifact._say_sources_only.cache_clear()


def test_every_module_has_unchecked_hash_bytecode_for_the_runtime(
    tmp_path: Path, runtime_python: Path
) -> None:
    magic = subprocess.run(
        [
            str(runtime_python),
            "-c",
            "import importlib.util, sys; sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    with zipfile.ZipFile(build_artifact(tmp_path)) as archive:
        names = set(archive.namelist())
        sources = {name for name in names if name.endswith(".py")}
        for source in sources:
            folder, _, file = source.rpartition("/")
            pyc = f"{folder}/__pycache__/{file[:-3]}.{RUNTIME_TAG}.pyc".lstrip("/")
            assert pyc in names, source
            header = archive.read(pyc)[:16]
            # PEP 552: the runtime's magic, then flags 0b01: hash-based, source never checked.
            assert header[:4] == magic and int.from_bytes(header[4:8], "little") == 0b01, pyc
    assert len(sources) > 100


def test_the_runtime_loads_the_bytecode_without_reading_the_sources(
    tmp_path: Path, runtime_python: Path
) -> None:
    with zipfile.ZipFile(build_artifact(tmp_path / "build")) as archive:
        archive.extractall(tmp_path / "task")
    task = tmp_path / "task"
    # Break a source after the build: the import still works only if its .pyc is used.
    source = task / "payments_dr" / "contract.py"  # imports nothing outside the standard library
    source.write_text(source.read_text() + "\nthis is not python\n")
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import payments_dr.contract as module; print(module.__spec__.cached)"
    )
    result = subprocess.run(
        [str(runtime_python), "-S", "-B", "-c", probe, str(task)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_REGION": "us-east-1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"contract.{RUNTIME_TAG}.pyc")


def test_a_fresh_process_builds_the_same_bytes(tmp_path: Path, runtime_python: Path) -> None:
    here = build_artifact(tmp_path / "here")
    built = subprocess.run(
        [sys.executable, "-m", "payments_dr.service.artifact", "--build", str(tmp_path / "there")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    there = Path(built.stdout.strip())
    assert there.name == here.name and there.read_bytes() == here.read_bytes()


def test_without_the_runtimes_python_the_build_says_so_and_ships_sources(
    tmp_path: Path, fresh_search: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "python3.11"  # runs, but says it is another version
    other.write_text("#!/bin/sh\necho 3 11\n")
    other.chmod(0o755)
    fresh_search.setenv(RUNTIME_PYTHON_VARIABLE, str(other))
    assert find_runtime_python() is None
    with zipfile.ZipFile(build_artifact(tmp_path / "build")) as archive:
        assert not any(name.endswith(".pyc") for name in archive.namelist())
    note = capsys.readouterr().err
    assert "no Python 3.13 found" in note and "ships sources only" in note


def test_the_search_accepts_only_a_working_313(fresh_search: pytest.MonkeyPatch) -> None:
    fresh_search.setenv(RUNTIME_PYTHON_VARIABLE, "/nonexistent/python3.13")
    assert find_runtime_python() is None
