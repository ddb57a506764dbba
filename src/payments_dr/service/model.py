"""Payment domain: request validation, deterministic ids and request fingerprints.

Pure functions over plain values: no AWS calls, so every rule is unit-testable and the
lab can derive the same ids the service does. Ids, fingerprints and log digests are
HMAC-SHA256 under the stack's id secret (`IdKey`): an unkeyed hash of a guessable
idempotency key or payment token could be reversed offline from the table, logs or ids.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# Bounds mirrored in openapi.json (a test keeps the two in step).
MAX_AMOUNT_MINOR = 100_000_000  # 1,000,000.00 in a two-decimal currency
CURRENCIES = frozenset({"AUD", "CAD", "CHF", "EUR", "GBP", "JPY", "USD"})
MAX_BODY_BYTES = 4096  # a valid request is under 600 bytes; anything far larger is hostile
MERCHANT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,63}")
PAYMENT_TOKEN_PATTERN = re.compile(r"tok_[A-Za-z0-9]{8,64}")
REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
DESCRIPTION_PATTERN = re.compile(r"[A-Za-z0-9 .,:;'()&/_-]{1,140}")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
# Anything between digits that is not a letter counts as a separator: card numbers are
# written with spaces, hyphens, dots, slashes, colons, underscores, or run into other digits.
CARD_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")
DIGIT_RUN_PATTERN = re.compile(r"[0-9]+")
CARD_NUMBER_DIGITS = range(13, 20)  # ISO/IEC 7812 card numbers have 13 to 19 digits
# A UUID as RFC 9562 writes it (either case): 8-4-4-4-12 hex digits. The card check reads
# its groups one by one; at most 12 characters each, none can hold a card number.
CANONICAL_UUID_PATTERN = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
PAYMENT_ID_PATTERN = re.compile(r"pay_[0-9a-f]{32}")

# Fields of a stored request. The merchant is never in the body: it is the authenticated
# API key's, passed by the authorizer.
MERCHANT_FIELD = "merchant_id"
REQUIRED_FIELDS = frozenset({MERCHANT_FIELD, "amount", "currency", "payment_token"})
OPTIONAL_FIELDS = frozenset({"reference", "description"})
BODY_REQUIRED_FIELDS = REQUIRED_FIELDS - {MERCHANT_FIELD}


class PaymentStatus(StrEnum):
    ACCEPTED = "accepted"  # stored in the table
    PENDING = "pending"  # durable on the retry queue, not yet in the table


class InvalidRequest(ValueError):
    """The request is malformed; the message is safe to return to the client."""


MIN_ID_SECRET_CHARS = 32  # the stack generates 64 letters and digits: about 380 bits


class IdPurpose(StrEnum):
    """Each keyed digest names what it is for, so no two can ever be compared or swapped."""

    PAYMENT_ID = "payment-id"
    FINGERPRINT = "fingerprint"
    LOG_KEY = "log-key"


class IdKey:
    """The stack's id secret, the key of every id, fingerprint and log digest.

    The one place they are computed: the API, the retry worker, the lab and the drill's
    accounting all call these methods, so an id computed anywhere matches the service's.
    The secret is the same in both regions (a replicated secret), so a payment retried
    through the other region keeps its id. It never changes: a new secret would give a
    retried payment a new id, and a second charge."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_ID_SECRET_CHARS:
            raise ValueError(f"the id secret must have at least {MIN_ID_SECRET_CHARS} characters")
        self._secret = secret.encode()

    def __repr__(self) -> str:
        return "IdKey(<secret>)"  # never the secret, in logs or tracebacks

    def _mac(self, purpose: IdPurpose, *parts: str) -> str:
        # Every part is validated first and can contain no newline: the joined form is
        # unambiguous (the canonical request is JSON, whose strings escape newlines).
        message = "\n".join((purpose.value, *parts)).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def payment_id(self, merchant_id: str, idempotency_key: str) -> str:
        """The deterministic id of the payment a merchant submits under an idempotency key."""
        return f"pay_{self._mac(IdPurpose.PAYMENT_ID, merchant_id, idempotency_key)[:32]}"

    def fingerprint(self, request: PaymentRequest) -> str:
        """Equal requests, and only those, share it; it reveals nothing of the token."""
        return self._mac(IdPurpose.FINGERPRINT, request.canonical())

    def log_digest(self, idempotency_key: str) -> str:
        """A short digest to correlate log lines without logging the client's key."""
        return self._mac(IdPurpose.LOG_KEY, idempotency_key)[:12]


@dataclass(frozen=True)
class PaymentRequest:
    merchant_id: str
    amount: int  # minor units of `currency`
    currency: str
    payment_token: str  # a token from the card vault, never card data
    reference: str | None = None
    description: str | None = None

    def canonical(self) -> str:
        """One encoding per request: equal requests, and only those, share it."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Payment:
    id: str
    request: PaymentRequest
    fingerprint: str
    region: str  # the region that accepted the request
    created_at: str  # ISO 8601 UTC with a trailing Z
    status: PaymentStatus = PaymentStatus.ACCEPTED

    def with_status(self, status: PaymentStatus) -> Payment:
        return replace(self, status=status)

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status.value,
            "merchant_id": self.request.merchant_id,
            "amount": self.request.amount,
            "currency": self.request.currency,
            "region": self.region,
            "created_at": self.created_at,
        }
        if self.request.reference is not None:
            body["reference"] = self.request.reference
        if self.request.description is not None:
            body["description"] = self.request.description
        return body


def new_payment(
    request: PaymentRequest, idempotency_key: str, region: str, now: float, id_key: IdKey
) -> Payment:
    return Payment(
        id=id_key.payment_id(request.merchant_id, idempotency_key),
        request=request,
        fingerprint=id_key.fingerprint(request),
        region=region,
        created_at=iso_timestamp(now),
    )


def iso_timestamp(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validate_idempotency_key(value: str | None) -> str:
    if value is None:
        raise InvalidRequest("the Idempotency-Key header is required")
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(value):
        raise InvalidRequest("Idempotency-Key must be 8-64 characters of A-Z a-z 0-9 _ -")
    # The key is hashed into the payment id and logged as a digest: a card number there
    # would be recoverable offline from either.
    if contains_card_number(value):
        raise InvalidRequest("Idempotency-Key must not contain a card number")
    return value


def validate_payment_id(value: str) -> str:
    if not PAYMENT_ID_PATTERN.fullmatch(value):
        raise InvalidRequest("payment id must look like pay_ followed by 32 hex digits")
    return value


def decode_body(body: str | None, is_base64_encoded: bool) -> bytes:
    if body is None or body == "":
        raise InvalidRequest("a JSON request body is required")
    if is_base64_encoded:
        # Base64 grows by a third: bound the encoded text before decoding it.
        if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
            raise InvalidRequest(f"the request body exceeds {MAX_BODY_BYTES} bytes")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidRequest("the request body is not valid base64") from error
    else:
        if len(body) > MAX_BODY_BYTES:  # characters <= bytes: a cheap early bound
            raise InvalidRequest(f"the request body exceeds {MAX_BODY_BYTES} bytes")
        raw = body.encode("utf-8", errors="surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest(f"the request body exceeds {MAX_BODY_BYTES} bytes")
    return raw


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InvalidRequest("the request body repeats a field")
    return fields


def _reject_constant(name: str) -> Any:
    raise InvalidRequest(f"{name} is not a valid JSON number")


def _parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        document = json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except UnicodeDecodeError as error:
        raise InvalidRequest("the request body is not UTF-8") from error
    except RecursionError as error:
        raise InvalidRequest("the request body nests too deeply") from error
    except ValueError as error:  # JSONDecodeError, and integers beyond the digit limit
        if isinstance(error, InvalidRequest):
            raise
        raise InvalidRequest("the request body is not valid JSON") from error
    if not isinstance(document, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return document


# A digit's contribution to a Luhn sum when doubled: 2d, less 9 when that has two digits.
_LUHN_DOUBLED = tuple(2 * d - 9 if d > 4 else 2 * d for d in range(10))


def contains_card_number(text: str) -> bool:
    """Whether `text` may hold a card number: once separators are removed, any window of 13
    to 19 consecutive digits that does not start with 0 (no card number does) and passes the
    Luhn check. Windows, not whole runs: digits next to a card number ("2024 4111 ...",
    "tok_12" + card) must not hide it. Free-text fields are stored, archived and replicated:
    card data there would put every copy in PCI scope.

    A canonical UUID is the one exception: its hyphens are part of its fixed shape, not a
    card's separators, so each group is checked on its own. Joined, one random UUID in 139
    held a Luhn-valid window and was refused (docs/security.md, "Known limits")."""
    segments = text.split("-") if CANONICAL_UUID_PATTERN.fullmatch(text) else [text]
    return any(_holds_card_window(segment) for segment in segments)


def _holds_card_window(text: str) -> bool:
    shortest, longest = CARD_NUMBER_DIGITS.start, CARD_NUMBER_DIGITS.stop - 1
    for run in DIGIT_RUN_PATTERN.findall(CARD_SEPARATORS.sub("", text)):
        digits = [int(digit) for digit in run]
        # For each window end, grow the window leftwards: its Luhn sum gains one digit at a
        # time (doubled at odd distances from the end), so a run costs 19 steps per digit.
        for end in range(shortest, len(digits) + 1):
            total = 0
            for length in range(1, min(longest, end) + 1):
                digit = digits[end - length]
                total += _LUHN_DOUBLED[digit] if length % 2 == 0 else digit
                if length >= shortest and digit != 0 and total % 10 == 0:
                    return True
    return False


def _string_field(fields: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = fields[name]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidRequest(f"{name} is malformed")
    return value


def _client_text_field(fields: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    """A field whose text the client chooses: it must also hold no card number."""
    value = _string_field(fields, name, pattern)
    if contains_card_number(value):
        raise InvalidRequest(f"{name} must not contain a card number")
    return value


def _amount(value: Any) -> int:
    # bool is an int subclass and floats are never money: accept exact JSON integers only.
    if type(value) is not int:
        raise InvalidRequest("amount must be an integer number of minor units")
    if not 0 < value <= MAX_AMOUNT_MINOR:
        raise InvalidRequest(f"amount must be between 1 and {MAX_AMOUNT_MINOR} minor units")
    return value


def validate_fields(fields: dict[str, Any]) -> PaymentRequest:
    unknown = set(fields) - REQUIRED_FIELDS - OPTIONAL_FIELDS
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(sorted(unknown)[:5])}"[:200])
    missing = REQUIRED_FIELDS - set(fields)
    if missing:
        raise InvalidRequest(f"missing fields: {', '.join(sorted(missing))}")
    currency = fields["currency"]
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise InvalidRequest(f"currency must be one of {', '.join(sorted(CURRENCIES))}")
    return PaymentRequest(
        merchant_id=_client_text_field(fields, "merchant_id", MERCHANT_ID_PATTERN),
        amount=_amount(fields["amount"]),
        currency=currency,
        payment_token=_client_text_field(fields, "payment_token", PAYMENT_TOKEN_PATTERN),
        reference=(
            _client_text_field(fields, "reference", REFERENCE_PATTERN)
            if "reference" in fields
            else None
        ),
        description=(
            _client_text_field(fields, "description", DESCRIPTION_PATTERN)
            if "description" in fields
            else None
        ),
    )


def parse_payment_request(
    body: str | None, is_base64_encoded: bool = False, *, merchant_id: str
) -> PaymentRequest:
    """Validate an authenticated merchant's HTTP body into a request, or raise InvalidRequest
    with a client-safe reason."""
    fields = _parse_json_object(decode_body(body, is_base64_encoded))
    if MERCHANT_FIELD in fields:
        raise InvalidRequest("unknown fields: merchant_id (the merchant is the API key's)")
    return validate_fields({**fields, MERCHANT_FIELD: merchant_id})
