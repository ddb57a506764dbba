"""Reading resource properties the same way whatever produced them.

Properties arrive as plain dicts offline and as read-only mappings in pulumi-policy; numbers may
be floats, booleans may be strings, and policy documents may be JSON strings or objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from payments_dr.policy.model import Finding, ResourceView


def get(value: Any, *path: str | int) -> Any:
    """Follows `path` through nested mappings and sequences; None where any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not is_list(value) or not -len(value) <= step < len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
    return value


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def blocks(value: Any) -> list[Any]:
    """A repeated block as a list: a single object becomes a one-element list."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    if is_list(value):
        return list(value)
    return [value]


def strings(value: Any) -> list[str]:
    """A "string or list of strings" field (IAM Action, Resource...) as a list."""
    return [str(item) for item in blocks(value)]


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class InvalidDocumentError(ValueError):
    """A policy document that is neither a JSON object nor a mapping."""


def policy_document(value: Any) -> Mapping[str, Any] | None:
    """An IAM-style policy document from a JSON string or a mapping; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise InvalidDocumentError(f"not valid JSON ({error.msg})") from error
        if isinstance(parsed, Mapping):
            return parsed
    raise InvalidDocumentError("not a JSON object")


def statements(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if document is None:
        return []
    return [s for s in blocks(document.get("Statement")) if isinstance(s, Mapping)]


def describe(view: ResourceView) -> str:
    """How messages name a resource: its short type and logical name, plus its region."""
    short_type = view.type.rsplit(":", 1)[-1]
    where = f" in {view.region}" if view.region else ""
    return f"{short_type} '{view.name}'{where}"


def identities(view: ResourceView, *keys: str) -> set[str]:
    """Values other resources may use to point at `view`: its URN and id, plus the given props."""
    found = {view.urn}
    if view.id:
        found.add(view.id)
    for key in keys:
        value = view.props.get(key)
        if isinstance(value, str) and value:
            found.add(value)
    return found


def resolve(
    source: ResourceView,
    prop: str,
    candidates: Sequence[ResourceView],
    *keys: str,
    value: Any = None,
) -> list[ResourceView]:
    """The candidates `source.props[prop]` (or `value`, read from inside it) points at.

    Where the engine reports which resources a property came from, that answer is final (the
    value itself may be unknown in a preview). Otherwise the value is compared with each
    candidate's identities (`keys` name the props that may hold it). Provider-computed ids and
    ARNs are not among synthesized inputs, so failing that, a candidate the source depends on
    counts when it is the only one.
    """
    reported = source.references.get(prop)
    if reported:
        return [candidate for candidate in candidates if candidate.urn in reported]
    if value is None:
        value = source.props.get(prop)
    if not isinstance(value, str) or not value:
        return []
    matched = [candidate for candidate in candidates if value in identities(candidate, *keys)]
    if matched:
        return matched
    depended_on = [c for c in candidates if c.urn in source.dependencies]
    return depended_on if len(depended_on) == 1 else []


def refers_to(
    source: ResourceView,
    prop: str,
    target: ResourceView,
    candidates: Sequence[ResourceView],
    *keys: str,
) -> bool:
    """Whether `source.props[prop]` points at `target`, one of `candidates`."""
    return target.urn in {c.urn for c in resolve(source, prop, candidates, *keys)}


def everyone(principal: Any) -> bool:
    """Whether a statement's principal is anyone at all."""
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in strings(principal.get("AWS"))


def requires_secure_transport(condition: Any) -> bool:
    """Whether a Deny's condition matches requests made without TLS."""
    if not isinstance(condition, Mapping):
        return False
    for operator, tests in condition.items():
        if operator.lower() != "bool" or not isinstance(tests, Mapping):
            continue
        for key, value in tests.items():
            if key.lower() == "aws:securetransport" and [str(v).lower() for v in blocks(value)] == [
                "false"
            ]:
                return True
    return False


def _denies_plain_transport(statement: Mapping[str, Any], service: str) -> bool:
    actions = {action.lower() for action in strings(statement.get("Action"))}
    return (
        statement.get("Effect") == "Deny"
        and everyone(statement.get("Principal"))
        and bool({f"{service}:*", "*"} & actions)
        and requires_secure_transport(statement.get("Condition"))
    )


def tls_only_findings(
    subject: ResourceView,
    carriers: Sequence[ResourceView],
    service: str,
    fix: str,
    covers: Callable[[Mapping[str, Any]], bool] = lambda _statement: True,
) -> Iterator[Finding]:
    """Findings unless one of the policies in `carriers` denies `service`:* to anyone without TLS.

    `covers` says whether a statement's resources reach all of `subject` (a bucket's policy
    must name the bucket and its objects). An unreadable policy is a finding of its own.
    """
    enforced = False
    for carrier in carriers:
        try:
            document = policy_document(carrier.props.get("policy"))
        except InvalidDocumentError as error:
            yield Finding(
                f"{describe(carrier)}: the policy is {error}. Fix: pass a JSON policy document.",
                carrier.urn,
            )
            continue
        enforced = enforced or any(
            _denies_plain_transport(statement, service) and covers(statement)
            for statement in statements(document)
        )
    if not enforced:
        yield Finding(f"{describe(subject)} accepts requests without TLS. Fix: {fix}", subject.urn)


def alarm_watches(
    alarm: ResourceView,
    candidates: Sequence[ResourceView],
    namespace: str,
    metric_name: str,
    dimension: str,
    *keys: str,
) -> set[str]:
    """URNs of the candidates whose `namespace`/`metric_name` metric `alarm` watches, directly
    or in a metric query, identified by the metric's `dimension` (compared with `keys`)."""
    metrics = [("dimensions", alarm.props)]
    metrics += [
        ("metricQueries", get(q, "metric")) for q in blocks(alarm.props.get("metricQueries"))
    ]
    watched: set[str] = set()
    for prop, metric in metrics:
        if (
            isinstance(metric, Mapping)
            and text(metric.get("namespace")) == namespace
            and text(metric.get("metricName")) == metric_name
        ):
            value = get(metric.get("dimensions"), dimension)
            watched |= {c.urn for c in resolve(alarm, prop, candidates, *keys, value=value)}
    return watched
