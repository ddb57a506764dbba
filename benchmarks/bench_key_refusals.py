"""How often a randomly generated Idempotency-Key is refused as card-shaped. Prints the numbers.

The card check (`model.contains_card_number`) removes separators and looks for a Luhn-valid
13-19 digit window, so a random key whose characters happen to include a long enough run of
digits is refused with 400. This counts, for the key formats clients commonly generate, the
share of keys `validate_idempotency_key` refuses. The keys come from a seeded generator, so
a run repeats exactly.

Usage: .venv/bin/python benchmarks/bench_key_refusals.py [--keys N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import random
import string
import uuid
from collections.abc import Callable

from payments_dr.service.model import InvalidRequest, validate_idempotency_key

CROCKFORD_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # the alphabet of ULIDs
URL_SAFE = string.ascii_letters + string.digits + "_-"  # nanoid's and base64url's


def key_shapes(rng: random.Random) -> dict[str, Callable[[], str]]:
    def uuid4() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    def chars(alphabet: str, count: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(count))

    return {
        "UUID v4, canonical (8-4-4-4-12)": lambda: str(uuid4()),
        "UUID v4, canonical, upper case": lambda: str(uuid4()).upper(),
        "UUID v4, 32 hex digits (no hyphens)": lambda: uuid4().hex,
        "20 hex digits": lambda: f"{rng.getrandbits(80):020x}",
        "ULID (26 Crockford base32)": lambda: chars(CROCKFORD_BASE32, 26),
        "nanoid (21 of A-Za-z0-9_-)": lambda: chars(URL_SAFE, 21),
        "16 random digits": lambda: chars(string.digits, 16),
    }


def refused(key: str) -> bool:
    try:
        validate_idempotency_key(key)
    except InvalidRequest:
        return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000, help="keys per format")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    print(f"Idempotency-Key refused as card-shaped, {args.keys} random keys per format")
    for label, generate in key_shapes(random.Random(args.seed)).items():
        count = sum(refused(generate()) for _ in range(args.keys))
        share = count / args.keys
        # Normal approximation of a 95% interval; "0" needs the rule of three instead.
        half_width = 1.96 * math.sqrt(share * (1 - share) / args.keys)
        bound = f"+/- {half_width:.3%}" if count else f"(below {3 / args.keys:.4%} at 95%)"
        one_in = f"1 in {args.keys / count:,.0f}" if count else "none"
        print(f"  {label:<38} {count:>7} {share:8.3%} {bound:<24} {one_in}")


if __name__ == "__main__":
    main()
