"""Powertools logger, metrics and tracer shared by the handlers.

These hold no region-specific state: every log line names its region explicitly, so two
regions can run in one process (the local lab) without mixing.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from payments_dr.contract import PROJECT

SERVICE_NAME = "payments"

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=PROJECT, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)


def count(name: str, value: int = 1) -> None:
    """Add to a count metric, flushed by the Lambda entry point's `log_metrics`.

    Honours POWERTOOLS_METRICS_DISABLED also when Powertools would flush a full metric set
    on its own, so long in-process runs (the local lab) stay quiet.
    """
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
