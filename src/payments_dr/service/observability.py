"""Powertools logger, metrics and tracer shared by the handlers.

These hold no region-specific state: every log line names its region explicitly, so two
regions can run in one process (the local lab) without mixing.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from payments_dr.contract import PROJECT

SERVICE_NAME = "payments"

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=PROJECT, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
