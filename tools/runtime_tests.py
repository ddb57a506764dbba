"""Run the service's tests under the Lambda runtime's Python (3.13), in a venv of their own.

The functions run on python3.13; the rest of the project (Pulumi program, lab tooling, lint)
stays on the development interpreter. This runs tests/service and the lab tests that drive
the real handlers (tests/lab/test_lab_strong.py) with 3.13, against the sources in src/, so
an incompatibility shows up here and not in Lambda. The venv (.venv-runtime) holds the
versions pinned in pyproject.toml, less what only the Pulumi program and the linters need;
it is rebuilt when those pins change.

With no Python 3.13 (pyenv or PATH) it says so and exits 0: the 3.11 run still stands.

    .venv/bin/python tools/runtime_tests.py [pytest arguments]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from payments_dr.service.artifact import RUNTIME_VERSION, find_runtime_python

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-runtime"
TESTS = ("tests/service", "tests/lab/test_lab_strong.py")
# Pinned for the Pulumi program, the timeline plot and the linters: not what these tests run.
NOT_NEEDED = frozenset(
    {"pulumi", "pulumi-aws", "pulumi-policy", "matplotlib", "ruff", "mypy", "types-pyyaml"}
)
INSTALL_TIMEOUT_SECONDS = 1800


def requirements() -> list[str]:
    """The pinned requirements of the runtime venv, from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted: list[str] = []
    pending = [*project["dependencies"], *extras["dev"]]
    while pending:
        requirement = pending.pop(0)
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        assert name is not None, requirement
        if name.group().lower() == project["name"]:  # our own extras: their pins instead
            for extra in re.findall(r"\[([^\]]+)\]", requirement)[0].split(","):
                pending.extend(extras[extra.strip()])
        elif name.group().lower() not in NOT_NEEDED:
            wanted.append(requirement)
    return sorted(wanted)


def ensure_venv(python: Path) -> Path:
    wanted = "\n".join(requirements()) + "\n"
    stamp = VENV / "requirements.txt"
    venv_python = VENV / "bin" / "python"
    if venv_python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return venv_python
    print(f"runtime tests: creating {VENV.name} with {python}", flush=True)
    subprocess.run([str(python), "-m", "venv", "--clear", str(VENV)], check=True, timeout=300)
    stamp.write_text(wanted)
    subprocess.run(
        [str(venv_python), "-m", "pip", "install", "--quiet", "-r", str(stamp)],
        check=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
    )
    return venv_python


def main(argv: list[str]) -> int:
    version = ".".join(str(n) for n in RUNTIME_VERSION)
    python = find_runtime_python()
    if python is None:
        print(
            f"runtime tests: no Python {version} found (pyenv or python{version} on PATH);"
            f" the service was tested on {sys.version.split()[0]} only."
            f" Fix: `pyenv install {version}`."
        )
        return 0
    venv_python = ensure_venv(python)
    print(f"runtime tests: {' '.join(TESTS)} under Python {version} ({python})", flush=True)
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    completed = subprocess.run(
        [str(venv_python), "-m", "pytest", "-p", "no:cacheprovider", *argv, *TESTS],
        cwd=REPO,
        env=environment,
        check=False,
    )
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
