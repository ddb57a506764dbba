"""Powertools logger, metrics and tracer shared by the handlers.

These hold no region-specific state: every log line names its region explicitly, so two
regions can run in one process (the local lab) without mixing.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.shared import constants

from payments_dr.contract import PROJECT

# The function's environment may name the service and metric namespace (the infrastructure
# sets one name per function); these defaults serve tests and the local lab.
SERVICE_NAME = os.environ.get(constants.SERVICE_NAME_ENV, "payments")
METRICS_NAMESPACE = os.environ.get(constants.METRICS_NAMESPACE_ENV, PROJECT)

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
# Patch only botocore: it is the one client library the service uses, and patching all
# supported libraries would import requests, httplib and more at every cold start.
tracer = Tracer(service=SERVICE_NAME, patch_modules=["botocore"])


def count(name: str, value: int = 1) -> None:
    """Add to a count metric, flushed by the Lambda entry point's `log_metrics`.

    Honours POWERTOOLS_METRICS_DISABLED also when Powertools would flush a full metric set
    on its own, so long in-process runs (the local lab) stay quiet.
    """
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def measure(name: str, value: float, **metadata: str) -> None:
    """Record a measured value (unit None), flushed like `count`. `metadata` goes into the
    flushed log record only, searchable with Logs Insights but no metric dimension: it adds
    no metric to pay for, and it must never hold a secret."""
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=value)
        for key, text in metadata.items():
            metrics.add_metadata(key=key, value=text)
