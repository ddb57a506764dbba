"""Global-table replication between the two regional tables (simulated).

No emulator replicates DynamoDB global tables, so the lab does it the way the service
behaves: each table's stream is read and every local write is applied to the other region.

- eventual: after a configurable lag, last writer wins; writes the replicator itself made are
  recognised on the target's stream and not sent back.
- strong: the service's DynamoDB clients are wrapped so that a write is applied to the peer
  before the call returns; a peer that is down catches up before it serves again (a
  multi-Region strong table keeps accepting writes with a witness while one replica is down).

While a region is down its stream is not read, nothing is applied to it, and nothing it
wrote leaves it: writes read from its stream before the fault but not yet applied wait with
it, and are lost for good if it never comes back (the drill's `region-loss`).

A replication stall holds back every replicated write in eventual mode. In strong mode it
isolates one replica from the rest of the region set: AWS documents that an isolated MRSC
replica can serve neither writes nor strongly consistent reads, while the others keep both
(the witness makes their quorum). The isolated replica's calls fail with a server error here;
AWS does not document the exact error.

What the service wrote is recorded apart from replication (lab.ledger), so a payment created
in both regions is counted whatever replication does with it.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from payments_dr import contract
from payments_dr.lab.aws import RegionAws, RegionResources
from payments_dr.lab.clock import SimClock
from payments_dr.lab.threads import BackgroundLoop

StreamListener = Callable[[str, list[dict[str, Any]]], None]


@dataclass(frozen=True)
class _Change:
    source: str
    key: dict[str, Any]
    event: str  # INSERT, MODIFY or REMOVE
    new_image: dict[str, Any] | None
    written_at: float  # simulated seconds

    @property
    def payment_id(self) -> str:
        return str(self.key[contract.TABLE_HASH_KEY][contract.TABLE_HASH_KEY_TYPE])


@dataclass(frozen=True)
class _Version:
    """The last write to an item in one region, as far as replication is concerned."""

    written_at: float
    origin: str  # the region where this version was first written


def _digest(image: Mapping[str, Any] | None) -> str:
    return hashlib.sha256(json.dumps(image, sort_keys=True).encode()).hexdigest()


class Replicator(BackgroundLoop):
    def __init__(
        self,
        clock: SimClock,
        regions: Mapping[str, RegionAws],
        resources: Mapping[str, RegionResources],
        lock: threading.RLock,
        lag_seconds: float,
        strong: bool,
        stream_listener: StreamListener,
    ) -> None:
        self._clock = clock
        self._regions = dict(regions)
        self._resources = dict(resources)
        self._lag = lag_seconds
        self.strong = strong
        self._listener = stream_listener
        # The lab's AWS lock: holding it makes a write and its replication one atomic step.
        self._lock = lock
        self._records_last_read = 0
        self._iterators: dict[str, str] = {}
        self._writes_seen: dict[str, int] = {region: -1 for region in regions}
        self._pending: dict[tuple[str, str], deque[_Change]] = {
            (source, target): deque()
            for source in regions
            for target in regions
            if source != target
        }
        # Per region that was down in strong mode: encoded key -> when it was written.
        self._catch_up: dict[str, dict[str, float]] = {region: {} for region in regions}
        self._echoes: dict[tuple[str, str], list[str]] = {}
        self._versions: dict[tuple[str, str], _Version] = {}
        self._lags: list[float] = []
        self._stalled = False
        self._isolated: str | None = None  # strong mode: the replica cut off by a stall
        super().__init__("lab-replicator")
        # Wall seconds between polls: a fraction of the lag, within sensible bounds.
        self._poll_wall = min(max(clock.to_wall(lag_seconds) / 2, 0.005), 0.02)

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self.open_streams()
        super().start()

    def open_streams(self) -> None:
        """Position a reader at the start of each table's stream; `tick` reads from there."""
        for region, resources in self._resources.items():
            streams = self._regions[region].lab_streams
            shard = streams.describe_stream(StreamArn=resources.stream_arn)["StreamDescription"][
                "Shards"
            ][0]["ShardId"]
            self._iterators[region] = streams.get_shard_iterator(
                StreamArn=resources.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]

    def stall(self, region: str) -> None:
        """Eventual: hold back every replicated write (streams are still read). Strong: cut
        `region`'s replica off from the region set."""
        with self._lock:
            if self.strong:
                self._isolated = region
            else:
                self._stalled = True

    def resume(self) -> None:
        with self._lock:
            isolated, self._isolated, self._stalled = self._isolated, None, False
            if isolated is not None:
                self.catch_up(isolated)

    def stalls(self, region: str) -> bool:
        """Is replication to or from `region` stalled (the `replication-stall` fault)?"""
        with self._lock:
            return self._stalled or self._isolated == region

    def reachable(self, region: str) -> bool:
        """Can `region`'s replica take part in replication?"""
        return self._regions[region].faults.table_reachable and region != self._isolated

    # --- observations --------------------------------------------------------------------
    def lag_stats_ms(self) -> tuple[float, float]:
        """(p50, max) of the simulated time between a write and its arrival in the peer."""
        with self._lock:
            if not self._lags:
                return (0.0, 0.0)
            return (statistics.median(self._lags) * 1000, max(self._lags) * 1000)

    def backlog(self, deliverable_only: bool = False) -> int:
        """Writes read from a stream and not yet applied to the peer; `deliverable_only`:
        leave out those stuck with a region that is down (lost for good, if it never returns)."""
        with self._lock:
            pending = sum(
                len(queue)
                for (source, target), queue in self._pending.items()
                if not deliverable_only or (self.reachable(source) and self.reachable(target))
            )
            catch_up = sum(
                len(keys)
                for region, keys in self._catch_up.items()
                if not deliverable_only or self.reachable(region)
            )
            return pending + catch_up

    def idle(self) -> bool:
        """Nothing left to replicate: every stream read and every read write applied."""
        with self._lock:
            unread = any(
                aws.faults.table_reachable and aws.table_writes != self._writes_seen[region]
                for region, aws in self._regions.items()
            )
            return (
                not unread
                and self._records_last_read == 0
                and self.backlog(deliverable_only=True) == 0
            )

    # --- strong mode ---------------------------------------------------------------------
    def wrap_for_strong_consistency(self, client: BaseClient, region: str) -> None:
        """Make `client`'s writes reach the peer table before they return."""
        make_api_call: Callable[[str, dict[str, Any]], Any] = client._make_api_call

        def replicated(operation_name: str, params: dict[str, Any]) -> Any:
            with self._lock:
                if region == self._isolated and _needs_quorum(operation_name, params):
                    raise ClientError(
                        {
                            "Error": {
                                "Code": "InternalServerError",
                                "Message": f"{region} cannot reach the other replicas (lab)",
                            },
                            "ResponseMetadata": {"HTTPStatusCode": 500},
                        },
                        operation_name,
                    )
                result = make_api_call(operation_name, params)
                keys = _written_keys(operation_name, params)
                if keys:
                    written_at = self._clock.now()
                    for key in keys:
                        self._copy_to_peers(region, key, written_at)
                return result

        setattr(client, "_make_api_call", replicated)  # noqa: B010 - instance override on purpose

    def _copy_to_peers(self, source: str, key: dict[str, Any], written_at: float) -> None:
        for target in self._regions:
            if target == source:
                continue
            if self.reachable(target):
                self._copy_item(source, target, key)
                self._lags.append(0.0)
            else:
                self._catch_up[target].setdefault(json.dumps(key, sort_keys=True), written_at)

    def _copy_item(self, source: str, target: str, key: dict[str, Any]) -> None:
        item = (
            self._regions[source]
            .lab_dynamodb.get_item(
                TableName=self._resources[source].table_name, Key=key, ConsistentRead=True
            )
            .get("Item")
        )
        table = self._resources[target].table_name
        if item is None:
            self._regions[target].lab_dynamodb.delete_item(TableName=table, Key=key)
        else:
            self._regions[target].lab_dynamodb.put_item(TableName=table, Item=item)

    def catch_up(self, region: str) -> None:
        """Bring a recovering region up to date before it serves again (strong mode)."""
        with self._lock:
            keys = self._catch_up[region]
            peer = next(name for name in self._regions if name != region)
            now = self._clock.now()
            for encoded, written_at in sorted(keys.items()):
                self._copy_item(peer, region, json.loads(encoded))
                self._lags.append(now - written_at)
            keys.clear()

    # --- eventual mode -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self._poll_wall):
            self.tick()

    def tick(self) -> None:
        """Read every reachable stream, then apply the replicated writes that are due."""
        batches: list[tuple[str, list[dict[str, Any]]]] = []
        with self._lock:
            for region in self._regions:
                records = self._read_stream(region)
                if records:
                    batches.append((region, records))
            self._records_last_read = sum(len(records) for _, records in batches)
            if not self.strong:
                self._apply_due()
        for region, records in batches:
            self._listener(region, records)

    def _read_stream(self, region: str) -> list[dict[str, Any]]:
        aws = self._regions[region]
        if not aws.faults.table_reachable or aws.table_writes == self._writes_seen[region]:
            return []
        # Records read in this call cover every write counted so far (we hold the AWS lock).
        self._writes_seen[region] = aws.table_writes
        response = aws.lab_streams.get_records(ShardIterator=self._iterators[region], Limit=1000)
        self._iterators[region] = response["NextShardIterator"]
        records: list[dict[str, Any]] = response["Records"]
        for record in records:
            _label_region(record, region, self._resources[region].stream_arn, self._clock)
            if not self.strong:
                self._note_local_write(region, record)
        return records

    def _note_local_write(self, region: str, record: dict[str, Any]) -> None:
        data = record["dynamodb"]
        image = data.get("NewImage")
        key = data["Keys"]
        change = _Change(
            source=region,
            key=key,
            event=record["eventName"],
            new_image=image,
            written_at=self._clock.since_start(float(data["ApproximateCreationDateTime"])),
        )
        echoes = self._echoes.get((region, change.payment_id))
        if echoes and _digest(image) in echoes:
            echoes.remove(_digest(image))  # our own replicated write coming back: not a change
            return
        self._versions[(region, change.payment_id)] = _Version(
            written_at=change.written_at, origin=region
        )
        for (source, _target), queue in self._pending.items():
            if source == region:
                queue.append(change)

    def _apply_due(self) -> None:
        if self._stalled:
            return
        now = self._clock.now()
        for (source, target), queue in self._pending.items():
            # Nothing reaches a region that is down, and nothing leaves one.
            if not (self.reachable(source) and self.reachable(target)):
                continue
            while queue and queue[0].written_at + self._lag <= now:
                self._apply(queue.popleft(), target, now)

    def _apply(self, change: _Change, target: str, now: float) -> None:
        current = self._versions.get((target, change.payment_id))
        # Last writer wins; a tie goes to the region that sorts last, in both directions.
        if (
            current is not None
            and current.origin == target
            and (current.written_at, target) > (change.written_at, change.source)
        ):
            return
        table = self._resources[target].table_name
        dynamodb = self._regions[target].lab_dynamodb
        if change.new_image is None:
            dynamodb.delete_item(TableName=table, Key=change.key)
        else:
            dynamodb.put_item(TableName=table, Item=change.new_image)
        self._echoes.setdefault((target, change.payment_id), []).append(_digest(change.new_image))
        self._versions[(target, change.payment_id)] = _Version(
            written_at=change.written_at, origin=change.source
        )
        self._lags.append(max(0.0, now - change.written_at))


def _label_region(record: dict[str, Any], region: str, stream_arn: str, clock: SimClock) -> None:
    """Give a stream record the shape Lambda delivers: its region, source ARN, epoch time
    (simulated, like every time the service reads)."""
    record["awsRegion"] = region
    record["eventSourceARN"] = stream_arn
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        created = created.timestamp()
    record["dynamodb"]["ApproximateCreationDateTime"] = clock.epoch_at_wall_time(float(created))


def _needs_quorum(operation_name: str, params: Mapping[str, Any]) -> bool:
    """Writes and strongly consistent reads: what an isolated MRSC replica cannot serve."""
    if operation_name in ("GetItem", "Query", "Scan", "BatchGetItem"):
        return bool(params.get("ConsistentRead"))
    return bool(_written_keys(operation_name, params))


def _written_keys(operation_name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The primary keys a successful DynamoDB write touched."""
    if operation_name == "PutItem":
        return [_key_of(params["Item"])]
    if operation_name in ("UpdateItem", "DeleteItem"):
        return [dict(params["Key"])]
    if operation_name == "BatchWriteItem":
        return [
            _key_of(request["PutRequest"]["Item"])
            if "PutRequest" in request
            else dict(request["DeleteRequest"]["Key"])
            for requests in params["RequestItems"].values()
            for request in requests
        ]
    if operation_name == "TransactWriteItems":
        return list(_transact_keys(params["TransactItems"]))
    return []


def _transact_keys(items: Iterable[Mapping[str, Any]]) -> Iterable[dict[str, Any]]:
    for item in items:
        if "Put" in item:
            yield _key_of(item["Put"]["Item"])
        for action in ("Update", "Delete"):
            if action in item:
                yield dict(item[action]["Key"])


def _key_of(item: Mapping[str, Any]) -> dict[str, Any]:
    return {contract.TABLE_HASH_KEY: item[contract.TABLE_HASH_KEY]}
