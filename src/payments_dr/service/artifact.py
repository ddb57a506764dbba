"""Reproducible build of the Lambda code artifact shared by every function in both regions.

The zip holds the service package, the shared contract, and the pure-Python runtime
dependencies it imports (Powertools and the X-Ray SDK behind its tracer). boto3 comes from
the python3.13 Lambda runtime. Vendoring instead of the AWS-managed Powertools layer keeps
one self-contained, hash-stable artifact whose dependency versions are exactly the ones
pinned in pyproject.toml and tested here, with nothing resolved at deploy time.

Same sources and same installed dependency versions give the same bytes: entries are
sorted, timestamps and permissions fixed, and build-local files (bytecode caches, compiled
extensions for this machine's Python, installer records) left out.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
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


def _write_zip(entries: dict[str, Path], target: Path) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for archive_name in sorted(entries):
            info = zipfile.ZipInfo(archive_name, date_time=FIXED_TIMESTAMP)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # unix, so the mode bits are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[archive_name].read_bytes(), compresslevel=9)


def build_artifact(dest_dir: Path) -> Path:
    """Build the artifact zip in dest_dir and return its path.

    The file name carries the first 16 hex digits of the zip's SHA-256, so a changed
    artifact gets a new name and an unchanged one is left in place.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    entries = artifact_entries()
    # Write beside the destination and rename, so concurrent builds never see a partial zip.
    handle, temporary_name = tempfile.mkstemp(prefix=f".{ARTIFACT_PREFIX}-", dir=dest_dir)
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        _write_zip(entries, temporary)
        digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
        target = dest_dir / f"{ARTIFACT_PREFIX}-{digest[:16]}.zip"
        temporary.chmod(0o644)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
