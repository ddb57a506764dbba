"""What the service wrote: every conditional payment write, its region and its outcome.

The drill counts from here, not from what replication did or what the design promises: a
payment created in two regions shows up as two CREATED entries whatever happens later, in
either consistency mode.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from payments_dr.contract import TABLE_HASH_KEY
from payments_dr.service.model import PAYMENT_ID_PATTERN
from payments_dr.service.store import CONDITIONAL_CHECK_FAILED, Attr


class WriteOutcome(StrEnum):
    CREATED = "created"  # the condition held: this write stored the payment
    EXISTS = "exists"  # the id was taken in this region: replay or conflict
    FAILED = "failed"  # the table did not confirm: nothing known to be written


@dataclass(frozen=True)
class Write:
    at: float  # simulated seconds, when the table answered
    region: str
    payment_id: str
    fingerprint: str
    outcome: WriteOutcome


class WriteLedger:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._writes: list[Write] = []

    @property
    def writes(self) -> list[Write]:
        with self._lock:
            return list(self._writes)

    def created(self) -> dict[str, list[Write]]:
        """CREATED writes by payment id, oldest first."""
        by_id: dict[str, list[Write]] = {}
        for write in self.writes:
            if write.outcome is WriteOutcome.CREATED:
                by_id.setdefault(write.payment_id, []).append(write)
        return by_id

    def watch(self, client: BaseClient, region: str) -> None:
        """Record the outcome of every conditional payment PutItem `client` makes."""
        make_api_call: Callable[[str, dict[str, Any]], Any] = client._make_api_call

        def recorded(operation_name: str, params: dict[str, Any]) -> Any:
            item = params.get("Item") or {}
            key = item.get(TABLE_HASH_KEY, {}).get("S", "")
            watched = (
                operation_name == "PutItem"
                and "ConditionExpression" in params
                and PAYMENT_ID_PATTERN.fullmatch(key) is not None
            )
            if not watched:
                return make_api_call(operation_name, params)
            fingerprint = item.get(Attr.FINGERPRINT.value, {}).get("S", "")
            try:
                result = make_api_call(operation_name, params)
            except ClientError as error:
                taken = error.response.get("Error", {}).get("Code") == CONDITIONAL_CHECK_FAILED
                outcome = WriteOutcome.EXISTS if taken else WriteOutcome.FAILED
                self._add(region, key, fingerprint, outcome)
                raise
            except Exception:
                self._add(region, key, fingerprint, WriteOutcome.FAILED)
                raise
            self._add(region, key, fingerprint, WriteOutcome.CREATED)
            return result

        setattr(client, "_make_api_call", recorded)  # noqa: B010 - instance override on purpose

    def _add(self, region: str, payment_id: str, fingerprint: str, outcome: WriteOutcome) -> None:
        with self._lock:
            self._writes.append(Write(self._now(), region, payment_id, fingerprint, outcome))
