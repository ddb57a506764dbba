"""HTTP for the drill's clients of the failover name: one POST, its answer or none.

`ops.drill_traffic` sends the drill's payments with it; tests substitute a `Sender`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

REQUEST_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0 when no answer arrived
    headers: dict[str, str]
    body: dict[str, Any]


class Sender(Protocol):
    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> HttpAnswer: ...


def post_json(url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return HttpAnswer(response.status, dict(response.headers), _json(response.read()))
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, dict(error.headers), _json(error.read()))
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return HttpAnswer(0, {}, {})


def _json(raw: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
