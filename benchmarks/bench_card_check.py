"""Benchmark of the card-number check (`model.contains_card_number`). Prints the numbers.

The check looks at every 13-19 digit window of every digit run once separators are removed,
so its cost grows with the digits in a field. Measured for a typical request's fields and
for the worst inputs the patterns admit (a 140-character description of digits, a 64-digit
reference and idempotency key), each a miss (the whole text is scanned), and for a whole
request through `parse_payment_request`.

Usage: .venv/bin/python benchmarks/bench_card_check.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from payments_dr.service.model import contains_card_number, parse_payment_request


def _no_card_digits(length: int) -> str:
    """A run of ones: no 13-19 digit window of it passes Luhn, so the check scans them all
    (random digits would hold a Luhn-valid window almost surely)."""
    digits = "1" * length
    assert not contains_card_number(digits)
    return digits


def _per_call_microseconds(call: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    runs = parser.parse_args().runs
    cases = {
        "typical reference 'order-2026-000123'": "order-2026-000123",
        "typical token 'tok_' + 16 letters and digits": "tok_a8Kq2m9Zp0Lr4Tx1",
        "description of 140 digits (worst case)": _no_card_digits(140),
        "reference of 64 digits": _no_card_digits(64),
    }
    body = json.dumps(
        {
            "amount": 1999,
            "currency": "EUR",
            "payment_token": "tok_a8Kq2m9Zp0Lr4Tx1",
            "reference": "order-2026-000123",
            "description": "2 widgets, order 123456 of 2026-01-05",
        }
    )
    print(f"card-number check, {runs} calls each: median / p99 microseconds per call")
    for label, text in cases.items():
        median, p99 = _per_call_microseconds(lambda text=text: contains_card_number(text), runs)
        print(f"  {label:<48} {median:8.1f} / {p99:8.1f}")
    median, p99 = _per_call_microseconds(
        lambda: parse_payment_request(body, merchant_id="merchant-01"), runs
    )
    print(f"  {'whole request through parse_payment_request':<48} {median:8.1f} / {p99:8.1f}")


if __name__ == "__main__":
    main()
