"""Reproducible build of the Lambda code artifact shared by every function in both regions.

The zip holds the service package, the shared contract, and the pure-Python runtime
dependencies it imports (Powertools and the X-Ray SDK behind its tracer). boto3 comes from
the python3.13 Lambda runtime. Vendoring instead of the AWS-managed Powertools layer keeps
one self-contained, hash-stable artifact whose dependency versions are exactly the ones
pinned in pyproject.toml and tested here, with nothing resolved at deploy time.

Same sources and same installed dependency versions give the same bytes: entries are
sorted, timestamps and permissions fixed, and build-local files (bytecode caches, compiled
extensions for this machine's Python, installer records) left out.

Bytecode for the runtime: every module is compiled by a Python of the runtime's version
(found through pyenv, or on PATH) into `__pycache__/*.cpython-313.pyc` with unchecked-hash
invalidation. Lambda's /var/task is read-only and its files carry no meaningful mtimes, so
timestamp-checked bytecode is useless there and, without any, every cold start compiles every
module it imports. Unchecked-hash .pyc files hold no timestamp, so the zip stays reproducible.
With no such interpreter the build says so and ships sources only.
"""

from __future__ import annotations

import argparse
import functools
import glob
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import payments_dr

ARTIFACT_PREFIX = "payments-dr-service"
# Distributions imported at run time that the Lambda runtime does not provide.
VENDORED_DISTRIBUTIONS = (
    "aws-lambda-powertools",
    "aws-xray-sdk",
    "jmespath",
    "typing-extensions",
    "wrapt",
)
# Build-time only modules of the service package.
EXCLUDED_SERVICE_MODULES = frozenset({"artifact.py"})
# Compiled for this machine's interpreter, not the runtime's: wrapt falls back to pure Python.
EXCLUDED_SUFFIXES = frozenset({".pyc", ".pyo", ".so", ".pyd", ".c", ".h", ".pyi"})
# Installer bookkeeping inside *.dist-info that differs between machines.
EXCLUDED_DIST_INFO_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can express
# The functions' Lambda runtime (python3.13): its bytecode is what the artifact carries.
RUNTIME_VERSION = (3, 13)
RUNTIME_TAG = f"cpython-{RUNTIME_VERSION[0]}{RUNTIME_VERSION[1]}"
# Overrides the search for the runtime's interpreter (a path to a python3.13 executable).
RUNTIME_PYTHON_VARIABLE = "PAYMENTS_DR_RUNTIME_PYTHON"
LAMBDA_TASK_ROOT = "/var/task"  # where tracebacks will say the code lives
FILE_MODE = 0o100644  # regular file, rw-r--r--


def _is_packaged(relative: PurePosixPath) -> bool:
    if "__pycache__" in relative.parts or relative.suffix in EXCLUDED_SUFFIXES:
        return False
    dist_info = relative.parts[0].endswith(".dist-info")
    return not (dist_info and relative.name in EXCLUDED_DIST_INFO_FILES)


def _project_files() -> Iterator[tuple[str, Path]]:
    package_dir = Path(payments_dr.__file__).parent
    yield "payments_dr/__init__.py", package_dir / "__init__.py"
    yield "payments_dr/contract.py", package_dir / "contract.py"
    service_dir = package_dir / "service"
    for path in service_dir.rglob("*"):
        relative = PurePosixPath(path.relative_to(package_dir.parent).as_posix())
        if path.is_file() and _is_packaged(relative) and path.name not in EXCLUDED_SERVICE_MODULES:
            yield str(relative), path


def _vendored_files() -> Iterator[tuple[str, Path]]:
    for distribution_name in VENDORED_DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(distribution_name)
        for package_path in distribution.files or ():
            relative = PurePosixPath(package_path.as_posix())
            if relative.parts[0] == ".." or not _is_packaged(relative):
                continue  # scripts installed outside site-packages
            yield str(relative), Path(str(package_path.locate()))


def artifact_entries() -> dict[str, Path]:
    """Archive name -> source file, for everything the artifact contains."""
    entries: dict[str, Path] = {}
    for archive_name, source in (*_project_files(), *_vendored_files()):
        if archive_name in entries:
            raise ValueError(f"two sources for {archive_name} in the artifact")
        entries[archive_name] = source
    return entries


def _is_runtime_python(executable: str) -> bool:
    try:
        answer = subprocess.run(
            [executable, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return answer.returncode == 0 and answer.stdout.split() == [str(n) for n in RUNTIME_VERSION]


def _candidates() -> Iterator[str]:
    if os.environ.get(RUNTIME_PYTHON_VARIABLE):
        yield os.environ[RUNTIME_PYTHON_VARIABLE]
        return
    version = ".".join(str(n) for n in RUNTIME_VERSION)
    pyenv = shutil.which("pyenv")
    if pyenv:
        for command in (["prefix", version], ["root"]):
            answer = subprocess.run(
                [pyenv, *command], capture_output=True, text=True, timeout=30, check=False
            )
            if answer.returncode != 0 or not answer.stdout.strip():
                continue
            prefix = answer.stdout.strip().splitlines()[0]
            if command[0] == "prefix":
                yield str(Path(prefix) / "bin" / f"python{version}")
            else:  # every installed patch release, newest first
                for found in sorted(glob.glob(f"{prefix}/versions/{version}.*"), reverse=True):
                    yield str(Path(found) / "bin" / f"python{version}")
    on_path = shutil.which(f"python{version}")
    if on_path:
        yield on_path


@functools.cache
def find_runtime_python() -> Path | None:
    """A Python of the Lambda runtime's version: $PAYMENTS_DR_RUNTIME_PYTHON, else pyenv's,
    else python3.13 on PATH. None when there is none (a shim naming an uninstalled version
    does not count: each candidate must run and say it is 3.13)."""
    return next((Path(c) for c in _candidates() if _is_runtime_python(c)), None)


# Run by the runtime's interpreter: compile each (source, pyc, name shown in tracebacks).
_COMPILE = """
import json, py_compile, sys
for source, cfile, dfile in json.load(sys.stdin):
    py_compile.compile(source, cfile=cfile, dfile=dfile, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def compile_for_runtime(entries: dict[str, Path], python: Path) -> dict[str, bytes]:
    """Archive name -> .pyc bytes for every module in `entries`, compiled by `python`.

    Remembered per process by the sources' digests: a test session builds many artifacts.
    """
    sources = {name: path for name, path in entries.items() if name.endswith(".py")}
    fingerprint = hashlib.sha256(str(python).encode())
    for name in sorted(sources):
        fingerprint.update(
            name.encode() + b"\0" + hashlib.sha256(sources[name].read_bytes()).digest()
        )
    key = fingerprint.hexdigest()
    if key not in _COMPILED:
        _COMPILED[key] = _compile(sources, python)
    return _COMPILED[key]


_COMPILED: dict[str, dict[str, bytes]] = {}


def _compile(sources: dict[str, Path], python: Path) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix=f"{ARTIFACT_PREFIX}-pyc-") as staging:
        jobs, compiled = [], {}
        for name in sorted(sources):
            archive_path = PurePosixPath(name)
            pyc = archive_path.parent / "__pycache__" / f"{archive_path.stem}.{RUNTIME_TAG}.pyc"
            jobs.append([str(sources[name]), f"{staging}/{pyc}", f"{LAMBDA_TASK_ROOT}/{name}"])
            compiled[str(pyc)] = Path(staging) / pyc
        answer = subprocess.run(
            [str(python), "-I", "-c", _COMPILE],
            input=json.dumps(jobs),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if answer.returncode != 0:
            raise RuntimeError(f"compiling the artifact with {python} failed: {answer.stderr}")
        return {name: path.read_bytes() for name, path in compiled.items()}


def _write_zip(entries: dict[str, Path], compiled: dict[str, bytes], target: Path) -> None:
    contents: dict[str, Path | bytes] = {**entries, **compiled}
    with zipfile.ZipFile(target, "w") as archive:
        for archive_name in sorted(contents):
            info = zipfile.ZipInfo(archive_name, date_time=FIXED_TIMESTAMP)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # unix, so the mode bits are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            content = contents[archive_name]
            data = content if isinstance(content, bytes) else content.read_bytes()
            archive.writestr(info, data, compresslevel=9)


def build_artifact(dest_dir: Path, bytecode: bool = True) -> Path:
    """Build the artifact zip in dest_dir and return its path.

    `bytecode`: add .pyc files compiled by the runtime's Python when one is found (else a
    one-line notice on stderr, and sources only). The file name carries the first 16 hex
    digits of the zip's SHA-256, so a changed artifact gets a new name and an unchanged one
    is left in place.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    entries = artifact_entries()
    python = find_runtime_python() if bytecode else None
    if bytecode and python is None:
        _say_sources_only()
    # Write beside the destination and rename, so concurrent builds never see a partial zip.
    handle, temporary_name = tempfile.mkstemp(prefix=f".{ARTIFACT_PREFIX}-", dir=dest_dir)
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        compiled = compile_for_runtime(entries, python) if python is not None else {}
        _write_zip(entries, compiled, temporary)
        digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
        target = dest_dir / f"{ARTIFACT_PREFIX}-{digest[:16]}.zip"
        temporary.chmod(0o644)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


@functools.cache
def _say_sources_only() -> None:
    version = ".".join(str(n) for n in RUNTIME_VERSION)
    print(
        f"note: no Python {version} found (${RUNTIME_PYTHON_VARIABLE}, pyenv, python{version}"
        " on PATH): the Lambda artifact ships sources only, and every cold start compiles"
        f" what it imports. Fix: `pyenv install {version}`.",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The Lambda artifact and its runtime's Python")
    parser.add_argument(
        "--runtime-python", action="store_true", help="print the runtime's interpreter, if any"
    )
    parser.add_argument("--build", type=Path, metavar="DIR", help="build the artifact in DIR")
    args = parser.parse_args(argv)
    if args.runtime_python:
        python = find_runtime_python()
        if python is None:
            return 1
        print(python)
    if args.build:
        print(build_artifact(args.build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
