"""Secrets are compared in constant time: a spy on the comparison, and a static check."""

from __future__ import annotations

import ast
import hmac
import inspect
from pathlib import Path

import pytest

from payments_dr.service import credentials
from payments_dr.service.credentials import PresentedKey, issue_key, parse_key, rotate_key

NOW = 1_800_000_000.0


def presented(api_key: str) -> PresentedKey:
    return parse_key(api_key)


@pytest.mark.parametrize("which", ["current", "previous"])
def test_both_keys_are_checked_with_hmac_compare_digest(
    monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    issued = issue_key("merchant-01", NOW)
    rotated = rotate_key(issued.record, NOW, overlap_seconds=3600)
    api_key = rotated.api_key if which == "current" else issued.api_key
    calls: list[tuple[object, object]] = []
    compare = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    key = presented(api_key)
    assert rotated.record.secret_matches(key)
    wrong = PresentedKey(key.merchant_id, key.key_id, key.secret[:-1] + "x")
    assert not rotated.record.secret_matches(wrong)
    # Each verdict came from the constant-time comparison of the two SHA-256 digests.
    assert len(calls) == 2
    stored = rotated.record.secret_sha256 if which == "current" else issued.record.secret_sha256
    assert calls[0] == (credentials.secret_digest(key.secret), stored)


def test_no_secret_or_digest_is_compared_with_an_operator() -> None:
    """`==` on a secret leaks, through timing, how much of it matched."""
    tree = ast.parse(Path(inspect.getfile(credentials)).read_text())
    offending = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
        ):
            names = ast.unparse(node).lower()
            if any(word in names for word in ("secret", "digest", "sha256")):
                offending.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert offending == []
