"""What the AWS drill counts: which acknowledged payments each region's table holds, and per
client kind the payments lost and duplicated and the client-perceived RTO, judged by the rule
of the SDK: never more lost or duplicated than the clients of the failover name, and a p99
within its target (`SDK_RTO_TARGET_SECONDS`; wall-clock seconds on AWS)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from payments_dr.contract import TABLE_HASH_KEY
from payments_dr.drill_report import ClientRto, DrillReport, RequestSample
from payments_dr.lab.client_payments import KIND_CATEGORY, SDK_RTO_TARGET_SECONDS, ClientKind
from payments_dr.ops.aws import Aws
from payments_dr.ops.drill_traffic import DrillTraffic

BATCH_GET_LIMIT = 100  # keys per BatchGetItem call
BATCH_GET_ATTEMPTS = 5  # DynamoDB may leave keys unprocessed under load; ask again


def first_served(samples: Iterable[RequestSample], region: str, since: float) -> float | None:
    """Seconds from `since` to the first successful answer from `region`."""
    for sample in samples:
        if sample.at_seconds >= since and sample.region == region and 200 <= sample.status < 300:
            return round(sample.at_seconds - since, 3)
    return None


def present_ids(aws: Aws, table: str, region: str, ids: set[str]) -> set[str]:
    """The ids among `ids` that the table holds in `region`."""
    client = aws.client("dynamodb", region)
    found: set[str] = set()
    ordered = sorted(ids)
    for start in range(0, len(ordered), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            "Keys": [
                {TABLE_HASH_KEY: {"S": value}} for value in ordered[start : start + BATCH_GET_LIMIT]
            ],
            "ProjectionExpression": "#key",
            "ExpressionAttributeNames": {"#key": TABLE_HASH_KEY},
        }
        for _ in range(BATCH_GET_ATTEMPTS):
            response = client.batch_get_item(RequestItems={table: request})
            found |= {item[TABLE_HASH_KEY]["S"] for item in response["Responses"].get(table, [])}
            unprocessed = response.get("UnprocessedKeys", {}).get(table)
            if not unprocessed:
                break
            request = unprocessed  # keys left over count as absent after the last attempt
    return found


def timed_kinds(kinds: tuple[ClientKind, ...]) -> tuple[ClientKind, ...]:
    """Whose answers time failover and failback: the clients of the failover name, which
    follow the switch; the SDK's only when they run alone (as in the lab)."""
    return (ClientKind.DNS,) if ClientKind.DNS in kinds else kinds


def account_clients(
    report: DrillReport, traffic: DrillTraffic, missing: set[str], fault_at: float
) -> None:
    """Per client kind: sent, acknowledged, lost (`missing`: acknowledged ids no region
    holds), duplicated, and each client's wait from the fault to its first success."""
    lost: dict[ClientKind, int] = {}
    duplicated: dict[ClientKind, int] = {}
    for kind in traffic.kinds:
        tallies = traffic.tallies([kind])
        acknowledged = traffic.acknowledged_ids([kind])
        lost[kind] = len(acknowledged & missing)
        duplicated[kind] = sum(len(tally.duplicates) for tally in tallies)
        report.categories[KIND_CATEGORY[kind].value] = {
            "sent": sum(tally.sent for tally in tallies),
            "acknowledged": len(acknowledged),
            "lost": lost[kind],
            "duplicated": duplicated[kind],
            "rejected": sum(tally.rejected for tally in tallies),
            "unanswered": sum(tally.failed for tally in tallies),
        }
        waits = [tally.first_success(fault_at) for tally in tallies]
        report.client_rto_seconds[kind.value] = ClientRto.of(
            len(tallies), [wait for wait in waits if wait is not None]
        )
    if ClientKind.SDK in traffic.kinds:
        report.sdk_rto_target_seconds = SDK_RTO_TARGET_SECONDS
    report.failed_checks.extend(client_checks(report, lost, duplicated))


def client_checks(
    report: DrillReport, lost: dict[ClientKind, int], duplicated: dict[ClientKind, int]
) -> list[str]:
    """The SDK's rule; each broken part is a reason the drill fails."""
    checks = []
    sdk, dns = ClientKind.SDK, ClientKind.DNS
    if sdk in lost and dns in lost:
        for what, counts in (("lost", lost), ("duplicated", duplicated)):
            if counts[sdk] > counts[dns]:
                checks.append(
                    f"the SDK clients {what} {counts[sdk]} payments, the DNS clients"
                    f" {counts[dns]}: the SDK must never have more"
                )
    rto = report.client_rto_seconds.get(sdk.value)
    target = report.sdk_rto_target_seconds
    if rto is not None and rto.recovered < rto.clients:
        checks.append(
            f"{rto.clients - rto.recovered} of {rto.clients} SDK clients were never served"
            " after the fault"
        )
    if rto is not None and target is not None and (rto.p99_seconds or 0.0) > target:
        checks.append(
            f"the SDK clients' client-perceived RTO p99 {rto.p99_seconds:g} s is over its"
            f" target of {target:g} s"
        )
    return checks
