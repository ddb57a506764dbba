"""Pulumi entry point: read the stack configuration, build the stack, export its outputs."""

from pathlib import Path

from payments_dr.infra.config import StackConfig
from payments_dr.infra.stack import build_stack, export_outputs
from payments_dr.service.artifact import build_artifact

# The Lambda artifact is rebuilt on every run; an unchanged source keeps its hash.
BUILD_DIR = Path(__file__).resolve().parent / "build" / "artifact"

export_outputs(build_stack(StackConfig.from_pulumi(), build_artifact(BUILD_DIR)))
