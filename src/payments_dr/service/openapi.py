"""The API's OpenAPI 3 document, shared by the service, API Gateway and the lab's fuzzing."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

OPENAPI_RESOURCE = "openapi.json"


@cache
def _document_text() -> str:
    return (
        resources.files("payments_dr.service")
        .joinpath(OPENAPI_RESOURCE)
        .read_text(encoding="utf-8")
    )


def load_openapi() -> dict[str, Any]:
    """A fresh copy of the plain OpenAPI 3.0 document (no API Gateway extensions).

    Callers may mutate the result, e.g. to add `x-amazon-apigateway-*` extensions.
    """
    document: dict[str, Any] = json.loads(_document_text())
    return document
