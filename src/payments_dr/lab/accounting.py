"""The drill's payment accounting: what clients were told against what the service wrote.

Pure functions of the clients' payments, the write ledger (every conditional write and its
outcome, per region), the surviving regions' tables and the conflict records, so each rule
can be tested without a lab. For each acknowledged payment (2xx):

- stored: a surviving table holds the request the client sent under its id (every surviving
  region must, once replication settled);
- overwritten, recorded: another request replaced it (eventual mode, key reuse across
  regions) and a conflict record keeps it;
- lost with its region: the region that acknowledged it is gone for good and no survivor has
  it; its age at the loss is the measured RPO;
- lost: none of the above. Always a failure.

And for each payment id the service created in two regions: the same request in both
("accepted twice, stored once") or two versions, of which every overwritten one must have a
conflict record. A client payment stored under two ids is a duplicate charge.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from payments_dr.contract import TABLE_HASH_KEY
from payments_dr.lab.client_payments import REJECTED, ClientPayment
from payments_dr.lab.ledger import Write
from payments_dr.service.conflicts import Conflict
from payments_dr.service.model import PAYMENT_ID_PATTERN, IdKey
from payments_dr.service.store import Attr

Tables = dict[str, dict[str, dict[str, Any]]]  # region -> payment id -> item


@dataclass
class Accounting:
    acknowledged: int = 0
    stored: int = 0
    overwritten_recorded: int = 0
    lost: list[ClientPayment] = field(default_factory=list)
    lost_with_region: list[ClientPayment] = field(default_factory=list)
    partial: list[ClientPayment] = field(default_factory=list)  # missing in a survivor
    accepted_twice: list[str] = field(default_factory=list)  # ids: same request, two regions
    two_versions: list[str] = field(default_factory=list)  # ids: different requests
    unrecorded_versions: list[str] = field(default_factory=list)  # overwritten, no record
    stored_twice: list[str] = field(default_factory=list)  # one client payment, two ids
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)

    def rpo_seconds(self, lost_at: float) -> float:
        """Age at the loss of the oldest acknowledged payment lost with its region."""
        acknowledged = [p.acknowledged_at for p in self.lost_with_region]
        return max((lost_at - at for at in acknowledged if at is not None), default=0.0)


def fingerprint_of(item: dict[str, Any] | None) -> str | None:
    if item is None:
        return None
    return str(item.get(Attr.FINGERPRINT.value, {}).get("S"))


def regions_holding(payment: ClientPayment, tables: Tables, id_key: IdKey) -> set[str]:
    """The regions whose table stores this payment as the client sent it.

    An item under the payment's id that holds a different request (another amount, say) is
    not the acknowledged payment: it counts as missing, so such a loss cannot hide.
    """
    payment_id, expected = payment.payment_id(id_key), payment.fingerprint(id_key)
    return {
        region
        for region, items in tables.items()
        if fingerprint_of(items.get(payment_id)) == expected
    }


def account(
    payments: list[ClientPayment],
    created: dict[str, list[Write]],
    tables: Tables,
    conflicts: list[Conflict],
    id_key: IdKey,
    lost_regions: frozenset[str] = frozenset(),
) -> Accounting:
    """`tables` holds the surviving regions only; `created` is the ledger's CREATED writes.
    `id_key` is the stack's: the payments are looked up by the ids the service gave them."""
    result = Accounting()
    recorded = {(c.payment_id, fingerprint_of(c.overwritten)) for c in conflicts}
    categories: dict[str, Counter[str]] = {}
    for payment in payments:
        tally = categories.setdefault(payment.category.value, Counter())
        tally["sent"] += 1
        if payment.final_status in REJECTED:
            tally["rejected"] += 1
        if not payment.acknowledged:
            continue
        tally["acknowledged"] += 1
        result.acknowledged += 1
        outcome = _outcome(payment, tables, recorded, id_key, lost_regions)
        tally[outcome] += 1
        if outcome == "stored":
            result.stored += 1
            if len(regions_holding(payment, tables, id_key)) < len(tables):
                result.partial.append(payment)
        elif outcome == "overwritten-recorded":
            result.overwritten_recorded += 1
        elif outcome == "lost-with-region":
            result.lost_with_region.append(payment)
        else:
            result.lost.append(payment)
    result.by_category = {name: dict(tally) for name, tally in sorted(categories.items())}
    _created_twice(result, created, tables, recorded, lost_regions)
    result.stored_twice = _stored_under_two_ids(tables)
    return result


def _outcome(
    payment: ClientPayment,
    tables: Tables,
    recorded: set[tuple[str, str | None]],
    id_key: IdKey,
    lost_regions: frozenset[str],
) -> str:
    if regions_holding(payment, tables, id_key):
        return "stored"
    if (payment.payment_id(id_key), payment.fingerprint(id_key)) in recorded:
        return "overwritten-recorded"
    answered_by = next(
        (a.answered_by for a in payment.attempts if a.status == payment.final_status), ""
    )
    if answered_by in lost_regions:
        return "lost-with-region"
    return "lost"


def _created_twice(
    result: Accounting,
    created: dict[str, list[Write]],
    tables: Tables,
    recorded: set[tuple[str, str | None]],
    lost_regions: frozenset[str],
) -> None:
    for payment_id, writes in sorted(created.items()):
        if len({write.region for write in writes}) < 2:
            continue
        fingerprints = {write.fingerprint for write in writes}
        if len(fingerprints) == 1:
            result.accepted_twice.append(payment_id)
            continue
        result.two_versions.append(payment_id)
        stored = {fingerprint_of(items.get(payment_id)) for items in tables.values()}
        overwritten = [
            write
            for write in writes
            if write.fingerprint not in stored and write.region not in lost_regions
        ]
        if any((payment_id, write.fingerprint) not in recorded for write in overwritten):
            result.unrecorded_versions.append(payment_id)


def _stored_under_two_ids(tables: Tables) -> list[str]:
    """References (unique per client payment in the drill) found under more than one id."""
    ids_by_reference: dict[str, set[str]] = {}
    for items in tables.values():
        for key, item in items.items():
            reference = item.get(Attr.REFERENCE.value, {}).get("S")
            if reference and PAYMENT_ID_PATTERN.fullmatch(item[TABLE_HASH_KEY]["S"]):
                ids_by_reference.setdefault(reference, set()).add(key)
    return sorted(ref for ref, ids in ids_by_reference.items() if len(ids) > 1)
