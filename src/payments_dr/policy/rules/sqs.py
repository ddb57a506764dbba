"""SQS: queues encrypted; failed messages always land in a terminal queue kept long enough.

Terminal queues are the dead-letter queues and the on-failure destinations of event source
mappings: nothing consumes them automatically, so they need no redrive policy of their own,
but they must keep what lands in them long enough to investigate. A queue that a mapping
consumes is a work queue, whatever else points at it, and needs its redrive policy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from payments_dr.policy import tokens
from payments_dr.policy.model import Finding, ResourceRule, ResourceView, StackRule, StackView
from payments_dr.policy.props import (
    InvalidDocumentError,
    describe,
    get,
    number,
    policy_document,
    refers_to,
    resolve,
    text,
    tls_only_findings,
    truthy,
)

# Two weeks to investigate and replay failed payments; also the SQS maximum.
MIN_DLQ_RETENTION_SECONDS = 14 * 24 * 3600
SQS_DEFAULT_RETENTION_SECONDS = 4 * 24 * 3600  # what AWS applies when none is given
_QUEUE_KEYS = ("arn", "url", "name")


def _check_encryption(view: ResourceView) -> Iterator[str]:
    if not text(view.props.get("kmsMasterKeyId")) and not truthy(
        view.props.get("sqsManagedSseEnabled")
    ):
        yield (
            f"{describe(view)} is not encrypted. Fix: set kms_master_key_id to the region's "
            "customer-managed KMS key (or at least sqs_managed_sse_enabled=True)."
        )


def _redrive(value: Any) -> Mapping[str, Any] | None:
    """A redrive policy from its JSON string or object; None when absent or unreadable."""
    try:
        return policy_document(value)
    except InvalidDocumentError:
        return None


@dataclass(frozen=True)
class _Redrive:
    queue: ResourceView
    carrier: ResourceView  # the queue itself, or a RedrivePolicy resource for it
    policy: Mapping[str, Any] | None


def _redrives(stack: StackView) -> list[_Redrive]:
    """Each queue's redrive policy, declared on the queue or on a sibling resource."""
    queues = stack.of_type(tokens.SQS_QUEUE)
    siblings = stack.of_type(tokens.SQS_REDRIVE_POLICY)
    found = []
    for queue in queues:
        redrive = _Redrive(queue, queue, _redrive(queue.props.get("redrivePolicy")))
        for sibling in siblings:
            if redrive.policy is None and refers_to(sibling, "queueUrl", queue, queues, "url"):
                redrive = _Redrive(queue, sibling, _redrive(sibling.props.get("redrivePolicy")))
        found.append(redrive)
    return found


def _dead_letter_queues(stack: StackView) -> list[ResourceView]:
    """Queues other queues redrive to, or that declare which queues may redrive to them."""
    queues = stack.of_type(tokens.SQS_QUEUE)
    targeted = {
        target.urn
        for redrive in _redrives(stack)
        if redrive.policy is not None
        for target in resolve(
            redrive.carrier,
            "redrivePolicy",
            queues,
            *_QUEUE_KEYS,
            value=text(redrive.policy.get("deadLetterTargetArn")),
        )
    }
    allow_policies = stack.of_type(tokens.SQS_REDRIVE_ALLOW_POLICY)
    return [
        queue
        for queue in queues
        if queue.urn in targeted
        or _allows_redrive(queue)
        or any(
            _allows_redrive(allow) and refers_to(allow, "queueUrl", queue, queues, "url")
            for allow in allow_policies
        )
    ]


def _allows_redrive(carrier: ResourceView) -> bool:
    """Whether a queue (or its RedriveAllowPolicy) lets other queues use it as their DLQ."""
    policy = _redrive(carrier.props.get("redriveAllowPolicy"))
    return policy is not None and policy.get("redrivePermission") != "denyAll"


def _failure_destinations(stack: StackView) -> list[ResourceView]:
    """Queues an event source mapping sends the records of the batches it discards to."""
    queues = stack.of_type(tokens.SQS_QUEUE)
    targeted: set[str] = set()
    for mapping in stack.of_type(tokens.LAMBDA_EVENT_SOURCE_MAPPING):
        on_failure = get(mapping.props, "destinationConfig", "onFailure")
        if on_failure is None:
            continue
        targets = resolve(
            mapping,
            "destinationConfig",
            queues,
            *_QUEUE_KEYS,
            value=get(on_failure, "destinationArn"),
        )
        targeted.update(target.urn for target in targets)
    return [queue for queue in queues if queue.urn in targeted]


def _consumed_queues(stack: StackView) -> set[str]:
    """URNs of the queues an event source mapping polls."""
    queues = stack.of_type(tokens.SQS_QUEUE)
    consumed: set[str] = set()
    for mapping in stack.of_type(tokens.LAMBDA_EVENT_SOURCE_MAPPING):
        source = text(mapping.props.get("eventSourceArn"))
        if source and source.split(":")[2:3] != ["sqs"]:
            # A table stream: resolving it against queues could fall back on the mapping's
            # one queue dependency, its failure destination, and call that consumed.
            continue
        consumed.update(q.urn for q in resolve(mapping, "eventSourceArn", queues, *_QUEUE_KEYS))
    return consumed


def _terminal_queues(stack: StackView) -> dict[str, tuple[ResourceView, str]]:
    """Each terminal queue by URN, with what makes it terminal."""
    found = {q.urn: (q, "failure destination") for q in _failure_destinations(stack)}
    found.update({q.urn: (q, "dead-letter queue") for q in _dead_letter_queues(stack)})
    return found


def _check_redrive(stack: StackView) -> Iterator[Finding]:
    exempt = set(_terminal_queues(stack)) - _consumed_queues(stack)
    for redrive in _redrives(stack):
        queue, policy = redrive.queue, redrive.policy
        if queue.urn in exempt:
            continue
        max_receives = number(policy.get("maxReceiveCount")) if policy else None
        if (
            policy is None
            or not text(policy.get("deadLetterTargetArn"))
            or max_receives is None
            or max_receives < 1
        ):
            yield Finding(
                f"{describe(queue)} has no usable redrive policy, so poison messages are "
                "retried forever or lost. Fix: set redrive_policy with deadLetterTargetArn (its "
                "DLQ) and maxReceiveCount >= 1.",
                queue.urn,
            )


def _check_dlq_retention(stack: StackView) -> Iterator[Finding]:
    for queue, kind in _terminal_queues(stack).values():
        retention = number(queue.props.get("messageRetentionSeconds"))
        if retention is None:
            retention = SQS_DEFAULT_RETENTION_SECONDS
        if retention < MIN_DLQ_RETENTION_SECONDS:
            yield Finding(
                f"{describe(queue)} is a {kind} keeping messages {retention:.0f} s, "
                f"less than 14 days. Fix: set message_retention_seconds="
                f"{MIN_DLQ_RETENTION_SECONDS}.",
                queue.urn,
            )


def _check_tls_only(stack: StackView) -> Iterator[Finding]:
    queues = stack.of_type(tokens.SQS_QUEUE)
    policies = stack.of_type(tokens.SQS_QUEUE_POLICY)
    for queue in queues:
        yield from tls_only_findings(
            queue,
            [queue] + [p for p in policies if refers_to(p, "queueUrl", queue, queues, "url")],
            "sqs",
            "give it a policy with a statement that denies sqs:* to Principal '*' when "
            "aws:SecureTransport is false.",
        )


RULES = (
    StackRule(
        name="sqs-tls-only",
        description="Every SQS queue refuses requests made without TLS.",
        check=_check_tls_only,
    ),
    ResourceRule(
        name="sqs-encryption",
        description="Every SQS queue is encrypted at rest.",
        resource_types=frozenset({tokens.SQS_QUEUE}),
        check=_check_encryption,
    ),
    StackRule(
        name="sqs-redrive-policy",
        description=(
            "Every SQS queue that is neither a dead-letter queue nor an event source's "
            "on-failure destination, and every queue an event source consumes, has a redrive "
            "policy."
        ),
        check=_check_redrive,
    ),
    StackRule(
        name="sqs-dlq-retention",
        description=(
            "Dead-letter queues and on-failure destinations keep messages for at least 14 days."
        ),
        check=_check_dlq_retention,
    ),
)
