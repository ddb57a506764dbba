"""Broken variants of the compliant policy stack: the mutations the rule cases apply, and
the names they refer to."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policy_stack import ACCOUNT, REGIONS, api_body, find

Stack = list[dict[str, Any]]


def set_at(name: str, value: Any, *path: str | int) -> Callable[[Stack], None]:
    """A mutation setting `inputs[path]` of resource `name` (None deletes the key)."""

    def mutate(stack: Stack) -> None:
        target: Any = find(stack, name)["inputs"]
        for step in path[:-1]:
            target = target[step]
        if value is None:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value

    return mutate


def set_everywhere(template: str, value: Any, *path: str | int) -> Callable[[Stack], None]:
    """The same mutation in every region, so cross-region rules stay satisfied."""
    mutations = [set_at(template.format(region=region), value, *path) for region in REGIONS]

    def mutate(stack: Stack) -> None:
        for mutation in mutations:
            mutation(stack)

    return mutate


def keep_dependencies(name: str, kept: str) -> Callable[[Stack], None]:
    """A mutation leaving resource `name` depending only on URNs that contain `kept`."""

    def mutate(stack: Stack) -> None:
        resource = find(stack, name)
        resource["dependencies"] = [urn for urn in resource["dependencies"] if kept in urn]

    return mutate


def drop(name: str) -> Callable[[Stack], None]:
    def mutate(stack: Stack) -> None:
        stack.remove(find(stack, name))

    return mutate


def move(name: str, region: str) -> Callable[[Stack], None]:
    def mutate(stack: Stack) -> None:
        find(stack, name)["region"] = region

    return mutate


def consume_retry_queue_without_redrive(stack: Stack) -> None:
    """A work queue polled by a mapping (as its source, not its failure destination)."""
    retry = find(stack, f"retry-{EAST}")["inputs"]
    retry.pop("redrivePolicy")
    mapping = copy.deepcopy(find(stack, f"table-stream-source-{EAST}"))
    mapping["name"] = mapping["urn"] = f"retry-queue-source-{EAST}"
    mapping["inputs"]["eventSourceArn"] = f"arn:aws:sqs:{EAST}:{ACCOUNT}:{retry['name']}"
    mapping["inputs"].pop("destinationConfig")
    stack.append(mapping)


def consume_failure_destination(stack: Stack) -> None:
    """The archive-failures queue, still a failure destination, polled by a mapping too."""
    queue = find(stack, f"archive-failures-{EAST}")["inputs"]
    mapping = copy.deepcopy(find(stack, f"table-stream-source-{EAST}"))
    mapping["name"] = mapping["urn"] = f"archive-failures-source-{EAST}"
    mapping["inputs"]["eventSourceArn"] = queue["arn"]
    mapping["inputs"].pop("destinationConfig")
    stack.append(mapping)


def grant(name: str, statement: dict[str, Any]) -> Callable[[Stack], None]:
    """A mutation adding `statement` to the identity policy of resource `name`."""

    def mutate(stack: Stack) -> None:
        inputs = find(stack, name)["inputs"]
        document = json.loads(inputs["policy"])
        document["Statement"].append(statement)
        inputs["policy"] = json.dumps(document)

    return mutate


def strong_table(stack: Stack) -> None:
    for replica in find(stack, TABLE)["inputs"]["replicas"]:
        replica["consistencyMode"] = "STRONG"


def set_record_ttl(name: str, ttl: float) -> Callable[[Stack], None]:
    """Turns an alias record into a plain record with its own TTL."""
    unalias = set_at(name, None, "aliases")
    set_ttl = set_at(name, ttl, "ttl")

    def mutate(stack: Stack) -> None:
        unalias(stack)
        set_ttl(stack)

    return mutate


def policy_json(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def body_with(region: str, path: str, method: str, security: Any) -> dict[str, Any]:
    """The compliant API body with one operation's security replaced (None removes it)."""
    body = api_body(region)
    operation = body["paths"][path][method]
    if security is None:
        del operation["security"]
    else:
        operation["security"] = security
    return body


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Callable[[Stack], None]
    rule: str
    message: str  # expected in the violation message
    resource: str  # logical name of the resource the violation names
    also: tuple[str, ...] = ()  # other rules the same defect rightly breaks


EAST, WEST = REGIONS
TABLE = "payments-table"
BUCKET = f"txlog-{EAST}"
API_POLICY = f"api-policy-{EAST}"
API_ROLE = f"api-role-{EAST}"
API_FUNCTION = f"api-{EAST}"

ROOT = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
ROOT_KMS_STAR = {
    "Statement": [
        {
            "Sid": "EnableIamUserPermissions",
            "Effect": "Allow",
            "Principal": ROOT,
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
}
ROOT_DECRYPTS = {
    "Statement": [
        {
            "Sid": "Admin",
            "Effect": "Allow",
            "Principal": ROOT,
            "Action": ["kms:Describe*"],
            "Resource": "*",
        },
        {
            "Sid": "Use",
            "Effect": "Allow",
            "Principal": ROOT,
            "Action": ["kms:Decrypt"],
            "Resource": "*",
        },
    ]
}
