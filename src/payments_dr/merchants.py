"""`payments-dr merchant create|rotate|revoke|list|sync`: merchant API keys on the deployed stack.

A key's record lives in the payments table, so the global table carries it to every region
and each region's authorizer reads its own replica. Writes go to the primary region, or to
the secondary when the primary does not answer. The secret is printed once and only its
SHA-256 is stored. `rotate` issues a new key and keeps the replaced one valid for an overlap
window, so the merchant switches without a gap; `revoke` ends both at once.

Per-merchant throttling rides on each region's usage plan: every active merchant has an API
Gateway API key (its record's `usage_key`) in the plan of every region, which the authorizer
names in `usageIdentifierKey`. The usage key belongs to the merchant, not to a key, so a
rotation leaves the plans as they are. `sync` brings the plans in line with the records, e.g. after
a region was unreachable during `create` or `revoke`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from payments_dr import contract
from payments_dr.cli_arguments import MERCHANT_ID_HELP, merchant_id
from payments_dr.contract import AUTHORIZER_CACHE_TTL_SECONDS
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Aws, OpsError
from payments_dr.ops.commands import add_stack_arguments, project_root, run_guarded
from payments_dr.ops.observe import AWS_ERRORS, describe_aws_error
from payments_dr.ops.outputs import StackOutputs, load_outputs
from payments_dr.service.credentials import (
    CredentialStore,
    CredentialStoreUnavailable,
    IssuedKey,
    KeyChanged,
    KeyStatus,
    MerchantExists,
    MerchantRecord,
    PreviousKey,
    issue_key,
    rotate_key,
)

# How long a rotation keeps the replaced key valid. At least the authorizer's cache time, so
# that the old key's end is the chosen time, not a cache artefact; at most a week, so a
# forgotten rotation does not leave a second key alive indefinitely.
DEFAULT_OVERLAP_MINUTES = 60
MIN_OVERLAP_MINUTES = 5
MAX_OVERLAP_MINUTES = 7 * 24 * 60


class Merchants:
    """Merchant credentials of one deployed stack."""

    def __init__(
        self,
        outputs: StackOutputs,
        aws: Aws,
        out: TextIO,
        err: TextIO,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outputs = outputs
        self._aws = aws
        self._out = out
        self._err = err
        self._clock = clock

    # --- the table, primary first --------------------------------------------------------
    def _with_store(self, action: Callable[[CredentialStore], Any]) -> Any:
        """Run `action` on the primary's replica, or on the secondary's if the primary fails."""
        failures = []
        for region in (self._outputs.primary, self._outputs.secondary):
            store = CredentialStore(self._aws.client("dynamodb", region), self._outputs.table_name)
            try:
                result = action(store)
            except CredentialStoreUnavailable as error:
                failures.append(f"{region}: {error}")
                print(f"warning: the table in {region} did not answer", file=self._err)
                continue
            if region != self._outputs.primary:
                print(f"note: written through {region}; replication brings it back", file=self._err)
            return result
        raise OpsError("no region's table answered: " + "; ".join(failures), EXIT_FAILED)

    # --- usage plans ---------------------------------------------------------------------
    def _api_keys(self, region: str, merchant_id: str) -> list[dict[str, Any]]:
        name = contract.merchant_api_key_name(self._outputs.stack, merchant_id)
        apigateway = self._aws.client("apigateway", region)
        found = apigateway.get_api_keys(nameQuery=name, includeValues=True).get("items", [])
        return [key for key in found if key.get("name") == name]

    def _sync_region(self, region: str, record: MerchantRecord) -> None:
        """Make the region's usage plan hold exactly the record's key, or none if revoked."""
        apigateway = self._aws.client("apigateway", region)
        plan_id = self._outputs.region(region).usage_plan_id
        keys = self._api_keys(region, record.merchant_id)
        wanted = record.status is KeyStatus.ACTIVE
        for key in keys:
            if not wanted or key.get("value") != record.usage_key:
                # Out of the plan first, so a key whose deletion fails grants no quota.
                in_plan = apigateway.get_usage_plan_keys(
                    usagePlanId=plan_id, nameQuery=key["name"]
                ).get("items", [])
                if any(entry["id"] == key["id"] for entry in in_plan):
                    apigateway.delete_usage_plan_key(usagePlanId=plan_id, keyId=key["id"])
                apigateway.delete_api_key(apiKey=key["id"])
        if wanted and not any(key.get("value") == record.usage_key for key in keys):
            created = apigateway.create_api_key(
                name=contract.merchant_api_key_name(self._outputs.stack, record.merchant_id),
                description=f"usage plan key of merchant {record.merchant_id}",
                value=record.usage_key,
                enabled=True,
            )
            apigateway.create_usage_plan_key(
                usagePlanId=plan_id,
                keyId=created["id"],
                keyType="API_KEY",
            )

    def _sync(self, record: MerchantRecord) -> bool:
        """Every region's usage plan in line with `record`; False if a region failed."""
        complete = True
        for region in self._outputs.regions:
            try:
                self._sync_region(region, record)
            except AWS_ERRORS as error:
                complete = False
                print(
                    f"warning: usage plan in {region} not updated ({describe_aws_error(error)}); "
                    f"run `payments-dr merchant sync --stack {self._outputs.stack}` once it "
                    "answers",
                    file=self._err,
                )
        return complete

    # --- commands ------------------------------------------------------------------------
    def issue(self, merchant_id: str) -> tuple[IssuedKey, bool]:
        """Store a new key's record and register its usage key; (key, every region synced)."""
        try:
            issued = issue_key(merchant_id, self._clock())
        except ValueError as error:
            raise OpsError(str(error), EXIT_REFUSED) from error
        try:
            self._with_store(lambda store: store.create(issued.record))
        except MerchantExists as error:
            raise OpsError(
                f"merchant {merchant_id} already has an active key: revoke it first",
                EXIT_REFUSED,
            ) from error
        return issued, self._sync(issued.record)

    def create(self, merchant_id: str) -> int:
        issued, complete = self.issue(merchant_id)
        print(f"merchant {merchant_id}: key {issued.record.key_id} issued", file=self._out)
        print("API key (shown once, never stored; keep it secret):", file=self._out)
        print(issued.api_key, file=self._out)
        return EXIT_OK if complete else EXIT_FAILED

    def rotate(self, merchant_id: str, overlap_minutes: int) -> int:
        """Issue a new key; the replaced one stays valid for `overlap_minutes`. The usage
        plans need no change: the record keeps the merchant's usage key."""
        if not MIN_OVERLAP_MINUTES <= overlap_minutes <= MAX_OVERLAP_MINUTES:
            raise OpsError(
                f"--overlap-minutes must be between {MIN_OVERLAP_MINUTES} and "
                f"{MAX_OVERLAP_MINUTES} (a week), not {overlap_minutes}",
                EXIT_REFUSED,
            )

        def rotate_in(store: CredentialStore) -> tuple[MerchantRecord, IssuedKey]:
            """Read and write in the same region, so the condition sees what was read."""
            current = store.get(merchant_id)
            if current is None:
                raise OpsError(f"merchant {merchant_id} has no key: create one", EXIT_REFUSED)
            if current.status is not KeyStatus.ACTIVE:
                raise OpsError(
                    f"merchant {merchant_id}'s key is revoked: create a new one", EXIT_REFUSED
                )
            rotated = rotate_key(current, self._clock(), overlap_minutes * 60)
            store.rotate(current.key_id, rotated.record)
            return current, rotated

        try:
            replaced, issued = self._with_store(rotate_in)
        except KeyChanged as error:
            raise OpsError(
                f"merchant {merchant_id}'s key changed while rotating (another rotation or a "
                "revoke won); nothing written: check `merchant list` before trying again",
                EXIT_REFUSED,
            ) from error
        previous = issued.record.previous
        assert previous is not None  # rotate_key always sets it
        print(
            f"merchant {merchant_id}: key {issued.record.key_id} issued; key {previous.key_id} "
            f"stays valid until {previous.expires_at} ({overlap_minutes} min, then up to "
            f"{AUTHORIZER_CACHE_TTL_SECONDS} s of the authorizer cache)",
            file=self._out,
        )
        if replaced.previous is not None and replaced.previous.valid_at(self._clock()):
            print(
                f"note: key {replaced.previous.key_id}, from the rotation before, is no longer "
                f"accepted (it was valid until {replaced.previous.expires_at})",
                file=self._out,
            )
        print("API key (shown once, never stored; keep it secret):", file=self._out)
        print(issued.api_key, file=self._out)
        return EXIT_OK

    def revoke(self, merchant_id: str) -> int:
        if not self._with_store(lambda store: store.revoke(merchant_id, self._clock())):
            raise OpsError(f"merchant {merchant_id} has no key", EXIT_REFUSED)
        record = self._with_store(lambda store: store.get(merchant_id))
        complete = self._sync(record)
        flushed = self._flush_authorizer_caches()
        wait = (
            "at once"
            if flushed
            else f"within {AUTHORIZER_CACHE_TTL_SECONDS} s (the authorizer cache)"
        )
        print(
            f"merchant {merchant_id}: key {record.key_id} revoked, and any key it replaced; "
            f"every region refuses them {wait} once the table has replicated",
            file=self._out,
        )
        return EXIT_OK if complete and flushed else EXIT_FAILED

    def _flush_authorizer_caches(self) -> bool:
        """Drop every stage's cached verdicts, so a revoked key is not admitted from the cache
        for up to its TTL; False if a region's could not be flushed."""
        complete = True
        for region in self._outputs.regions:
            apigateway = self._aws.client("apigateway", region)
            try:
                plan_id = self._outputs.region(region).usage_plan_id
                stages = apigateway.get_usage_plan(usagePlanId=plan_id).get("apiStages", [])
                for stage in stages:
                    apigateway.flush_stage_authorizers_cache(
                        restApiId=stage["apiId"], stageName=stage["stage"]
                    )
            except AWS_ERRORS as error:
                complete = False
                print(
                    f"warning: authorizer cache in {region} not flushed "
                    f"({describe_aws_error(error)}); cached verdicts expire within "
                    f"{AUTHORIZER_CACHE_TTL_SECONDS} s",
                    file=self._err,
                )
        return complete

    def list(self, as_json: bool) -> int:
        records: list[MerchantRecord] = self._with_store(lambda store: store.list())
        now = self._clock()
        max_age = self._outputs.merchant_key_max_age_days
        rows = [
            {
                "merchant_id": record.merchant_id,
                "key_id": record.key_id,
                "status": record.status.value,
                "created_at": record.created_at,
                "key_age_days": round(record.key_age_days(now), 1),
                # What the key-age alarm pages about, for every key, used or not.
                "over_max_age": over_max_age(record, now, max_age),
                "revoked_at": record.revoked_at,
                "previous_key_id": record.previous.key_id if record.previous else None,
                "previous_expires_at": record.previous.expires_at if record.previous else None,
            }
            for record in records
        ]
        if as_json:
            print(json.dumps(rows, indent=2), file=self._out)
            return EXIT_OK
        print(
            f"{'merchant':<24} {'key id':<9} {'status':<8} {'age (d)':>9}  "
            f"{'created / revoked':<51} previous key",
            file=self._out,
        )
        for record in records:
            when = record.created_at + (f" / {record.revoked_at}" if record.revoked_at else "")
            age = f"{record.key_age_days(now):.1f}" + (
                "!" if over_max_age(record, now, max_age) else " "
            )
            print(
                f"{record.merchant_id:<24} {record.key_id:<9} {record.status.value:<8} {age:>9}  "
                f"{when:<51} {describe_previous(record.previous, now)}".rstrip(),
                file=self._out,
            )
        overdue = sum(over_max_age(record, now, max_age) for record in records)
        if overdue:
            print(
                f"! {overdue} active key(s) older than {max_age} days (merchantKeyMaxAgeDays):"
                " rotate them (docs/runbooks/merchant-key-rotation.md)",
                file=self._out,
            )
        return EXIT_OK

    def sync(self) -> int:
        records: list[MerchantRecord] = self._with_store(lambda store: store.list())
        complete = all([self._sync(record) for record in records])
        print(f"usage plans synced for {len(records)} merchant(s)", file=self._out)
        return EXIT_OK if complete else EXIT_FAILED


def over_max_age(record: MerchantRecord, now: float, max_age_days: int | None) -> bool:
    """An active key older than the stack's key-age alarm threshold (unknown: never)."""
    return (
        max_age_days is not None
        and record.status is KeyStatus.ACTIVE
        and record.key_age_days(now) > max_age_days
    )


def describe_previous(previous: PreviousKey | None, now: float) -> str:
    if previous is None:
        return ""
    state = "valid until" if previous.valid_at(now) else "expired"
    return f"{previous.key_id} {state} {previous.expires_at}"


def register(subparsers: Any) -> None:
    merchant = subparsers.add_parser(
        "merchant", help="issue, rotate, revoke and list merchant API keys of a deployed stack"
    )
    actions = merchant.add_subparsers(dest="merchant_command", required=True)
    create = actions.add_parser("create", help="issue a key (printed once, stored hashed)")
    create.add_argument("merchant_id", type=merchant_id, help=MERCHANT_ID_HELP)
    rotate = actions.add_parser(
        "rotate", help="issue a new key; the replaced one stays valid for an overlap window"
    )
    rotate.add_argument("merchant_id", type=merchant_id, help=MERCHANT_ID_HELP)
    rotate.add_argument(
        "--overlap-minutes",
        type=int,
        default=DEFAULT_OVERLAP_MINUTES,
        help=f"how long the replaced key stays valid ({MIN_OVERLAP_MINUTES}-"
        f"{MAX_OVERLAP_MINUTES}, default {DEFAULT_OVERLAP_MINUTES})",
    )
    revoke = actions.add_parser(
        "revoke", help="revoke a merchant's keys (current and previous) in every region"
    )
    revoke.add_argument("merchant_id", type=merchant_id, help=MERCHANT_ID_HELP)
    listing = actions.add_parser("list", help="merchants and key states, never secrets")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    actions.add_parser("sync", help="bring every region's usage plan in line with the keys")
    for parser in actions.choices.values():
        add_stack_arguments(parser)
        parser.set_defaults(run=run_merchant)


def run_merchant(args: argparse.Namespace, aws: Aws | None = None) -> int:
    def command() -> int:
        clients = aws or Aws()
        outputs = load_outputs(args.stack, args.outputs, args.work_dir or project_root())
        clients.require_credentials()
        merchants = Merchants(outputs, clients, sys.stdout, sys.stderr)
        if args.merchant_command == "create":
            return merchants.create(args.merchant_id)
        if args.merchant_command == "rotate":
            return merchants.rotate(args.merchant_id, args.overlap_minutes)
        if args.merchant_command == "revoke":
            return merchants.revoke(args.merchant_id)
        if args.merchant_command == "list":
            return merchants.list(args.json)
        return merchants.sync()

    return run_guarded(command)
