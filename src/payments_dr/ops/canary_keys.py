"""`payments-dr canary enrol`: give the cross-region canaries their test merchant's key.

The key is issued like any merchant's (`payments-dr merchant`: stored hashed, in both usage
plans) for the dedicated merchant `contract.CANARY_MERCHANT_ID`, then written straight into
each watching region's Secrets Manager secret, which the stack created empty and encrypted
with that region's key. It is never printed, logged or kept anywhere else.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from payments_dr import contract
from payments_dr.cli_arguments import (
    Ask,
    add_confirmation_arguments,
    ask_on_terminal,
)
from payments_dr.merchants import Merchants
from payments_dr.ops.aws import EXIT_FAILED, EXIT_OK, Aws
from payments_dr.ops.commands import (
    add_stack_arguments,
    project_root,
    refuse_unconfirmable,
    require_confirmation,
    run_guarded,
)
from payments_dr.ops.observe import AWS_ERRORS, describe_aws_error
from payments_dr.ops.outputs import StackOutputs, load_outputs


def enrol(
    outputs: StackOutputs,
    aws: Aws,
    out: TextIO,
    err: TextIO,
    clock: Callable[[], float] = time.time,
) -> int:
    merchants = Merchants(outputs, aws, out, err, clock)
    issued, complete = merchants.issue(contract.CANARY_MERCHANT_ID)
    print(
        f"merchant {contract.CANARY_MERCHANT_ID}: key {issued.record.key_id} issued for the"
        " canaries (not shown)",
        file=out,
    )
    for region in outputs.regions:
        target = outputs.others(region)[0]
        secret = contract.canary_secret_name(outputs.stack, target)
        try:
            aws.client("secretsmanager", region).put_secret_value(
                SecretId=secret, SecretString=issued.api_key
            )
        except AWS_ERRORS as error:
            complete = False
            print(
                f"warning: {secret} in {region} not written ({describe_aws_error(error)}): the"
                f" canary probing {target} fails until it is; revoke the key"
                f" (`payments-dr merchant revoke {contract.CANARY_MERCHANT_ID}`) and enrol again",
                file=err,
            )
            continue
        print(f"{region}: the canary probing {target} reads its key from {secret}", file=out)
    return EXIT_OK if complete else EXIT_FAILED


def register(subparsers: Any) -> None:
    canary = subparsers.add_parser("canary", help="the cross-region canaries of a deployed stack")
    actions = canary.add_subparsers(dest="canary_command", required=True)
    enrol_parser = actions.add_parser(
        "enrol",
        help=f"issue the test merchant {contract.CANARY_MERCHANT_ID}'s key and store it in each"
        " region's canary secret (never printed)",
    )
    add_stack_arguments(enrol_parser)
    add_confirmation_arguments(enrol_parser, dry_run=None)
    enrol_parser.set_defaults(run=run_canary)


def run_canary(args: argparse.Namespace, aws: Aws | None = None, ask: Ask = ask_on_terminal) -> int:
    def command() -> int:
        clients = aws or Aws()
        outputs = load_outputs(args.stack, args.outputs, args.work_dir or project_root())
        refuse_unconfirmable("canary enrol", args)
        clients.require_credentials()
        question = (
            f"Issue {contract.CANARY_MERCHANT_ID}'s key in table {outputs.table_name} and write it"
            f" into the canary secrets of stack {outputs.stack} in {' and '.join(outputs.regions)}?"
        )
        require_confirmation("canary enrol", question, args, ask)
        return enrol(outputs, clients, sys.stdout, sys.stderr)

    return run_guarded(command)
