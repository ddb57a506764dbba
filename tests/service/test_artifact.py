"""The Lambda artifact: reproducible, self-contained, nothing build-local inside."""

from __future__ import annotations

import zipfile
from pathlib import Path

import payments_dr.service
from payments_dr.service.artifact import EXCLUDED_SERVICE_MODULES, FIXED_TIMESTAMP, build_artifact


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
    assert not any("__pycache__" in name or name.endswith((".pyc", ".so")) for name in names)
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
