"""Card numbers are refused in every client-chosen text and never echoed (issue 16, point 1)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from payments_dr.service import model
from payments_dr.service.api import build_api_handler
from payments_dr.service.credentials import issue_key
from payments_dr.service.model import (
    CANONICAL_UUID_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    InvalidRequest,
    contains_card_number,
    parse_payment_request,
    validate_idempotency_key,
)

from .conftest import MERCHANT, VALID_REQUEST, Region, post_event

# The inputs the security review got accepted (201) and stored before this check.
REVIEWED_BODIES: list[dict[str, str]] = [
    {"description": "Invoice 2024 4111 1111 1111 1111"},
    {"reference": "2024-4111111111111111"},
    {"reference": "4111.1111.1111.1111"},
    {"reference": "4111:1111:1111:1111"},
    {"description": "card 5555/5555/5555/4444 exp 12/29"},
    {"description": "4111_1111_1111_1111"},
    {"description": "4111  1111  1111  1111"},
    {"payment_token": "tok_124111111111111111"},
]
REVIEWED_IDEMPOTENCY_KEYS = ["4111111111111111", "key_4111_1111_1111_1111", "x-5555555555554444"]
# Separators a field's pattern admits; the detector ignores every non-letter between digits.
SEPARATORS = st.sampled_from([" ", "  ", "-", ".", "/", ":", "_", ",", ";", "(", ")", "&"])
SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def luhn_check_digit(body: str) -> str:
    """The digit that makes `body` + digit pass the Luhn check."""
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (1 if position % 2 else 2)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    length = draw(st.integers(min_value=13, max_value=19))
    first = draw(st.sampled_from("123456789"))
    rest = draw(st.text(alphabet="0123456789", min_size=length - 2, max_size=length - 2))
    return first + rest + luhn_check_digit(first + rest)


@st.composite
def written_out(draw: st.DrawFn, number: str) -> str:
    """`number` as a person might write it: digits split by any admitted separators."""
    parts: list[str] = []
    for digit in number:
        parts.append(digit)
        if draw(st.booleans()):
            parts.append(draw(SEPARATORS))
    return "".join(parts)


def _no_digits(text: str) -> bool:
    return re.search(r"[0-9]", text) is None


def test_the_luhn_helper_of_these_tests_agrees_with_known_test_cards() -> None:
    for card in ("4111111111111111", "5555555555554444", "378282246310005", "4012888888881881"):
        assert luhn_check_digit(card[:-1]) == card[-1]
        assert contains_card_number(card)


@pytest.mark.parametrize("change", REVIEWED_BODIES, ids=lambda c: next(iter(c.values())))
def test_every_reviewed_card_shape_is_refused_without_echo(change: dict[str, str]) -> None:
    (name,) = change
    with pytest.raises(InvalidRequest) as raised:
        parse_payment_request(json.dumps({**VALID_REQUEST, **change}), merchant_id=MERCHANT)
    assert str(raised.value) == f"{name} must not contain a card number"


@pytest.mark.parametrize("key", REVIEWED_IDEMPOTENCY_KEYS)
def test_a_card_number_in_the_idempotency_key_is_refused(key: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^Idempotency-Key must not contain a card number$"):
        validate_idempotency_key(key)


def test_a_card_shaped_merchant_id_is_refused_at_enrolment_and_in_a_request() -> None:
    with pytest.raises(ValueError, match="merchant id must not contain a card number"):
        issue_key("m-4111111111111111", now=0.0)
    with pytest.raises(InvalidRequest, match="merchant_id must not contain a card number"):
        parse_payment_request(json.dumps(VALID_REQUEST), merchant_id="m-4111111111111111")


@SETTINGS
@given(data=st.data(), number=card_numbers())
def test_any_card_number_is_found_whatever_surrounds_or_splits_it(
    data: st.DataObject, number: str
) -> None:
    text = data.draw(written_out(number))
    # Digits right next to the number join its run and must not hide it.
    before = data.draw(st.text(alphabet="0123456789 -abc", max_size=8))
    after = data.draw(st.text(alphabet="0123456789 -xyz", max_size=8))
    # A canonical UUID's groups are checked one by one (tests below).
    assume(not CANONICAL_UUID_PATTERN.fullmatch(before + text + after))
    assert contains_card_number(before + text + after)


@SETTINGS
@given(
    groups=st.lists(st.text(alphabet="0123456789", min_size=1, max_size=12), max_size=6),
    separator=st.sampled_from(["a", "x", "Q", "tok"]),
)
def test_digit_runs_shorter_than_a_card_number_are_never_flagged(
    groups: list[str], separator: str
) -> None:
    # Letters end a run, so no run reaches 13 digits: nothing card-shaped to find.
    assert not contains_card_number(separator.join(groups))


@SETTINGS
@given(data=st.data(), number=card_numbers())
def test_the_api_refuses_a_card_anywhere_with_a_reason_that_has_no_digits(
    region: Region, data: st.DataObject, number: str
) -> None:
    field = data.draw(st.sampled_from(["payment_token", "reference", "description", "key"]))
    api = build_api_handler(region.deps)
    if field == "key":
        event = post_event(VALID_REQUEST, key=f"key-{number}")
    else:
        text = number if field != "payment_token" else f"tok_{number}"
        if field == "description":
            text = data.draw(written_out(number))
        event = post_event({**VALID_REQUEST, field: text})
    response: dict[str, Any] = api(event, None)
    assert response["statusCode"] == 400
    answer = json.loads(response["body"])
    assert answer["code"] == "bad_request"
    assert answer["message"].endswith("must not contain a card number")
    assert _no_digits(response["body"])  # neither the number nor any part of it comes back
    assert region.items() == []
    assert region.queue_depth(region.queue_url) == 0


def test_the_card_digit_bounds_are_iso_7812s() -> None:
    assert range(13, 20) == model.CARD_NUMBER_DIGITS
    assert not contains_card_number("411111111117")  # Luhn-valid, but 12 digits are too few
    assert not contains_card_number("0000000000000000")  # no card number starts with 0


def _luhn_valid(digits: str) -> bool:
    return luhn_check_digit(digits[:-1]) == digits[-1]


def _brute_force(text: str) -> bool:
    """The definition, window by window: what the detector's incremental sums must agree with."""
    if re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", text):
        return any(_brute_force(group) for group in text.split("-"))
    runs = re.findall(r"[0-9]+", re.sub(r"[^A-Za-z0-9]", "", text))
    return any(
        _luhn_valid(run[start : start + length])
        for run in runs
        for length in range(13, 20)
        for start in range(len(run) - length + 1)
        if run[start] != "0"
    )


@SETTINGS
@given(st.text(alphabet="0123456789 -._/a", max_size=60))
def test_the_detector_agrees_with_the_definition_window_by_window(text: str) -> None:
    assert contains_card_number(text) == _brute_force(text)


# --- canonical UUIDs: their hyphens are the UUID's shape, not a card's separators ----------

# Random UUID v4 strings whose hex digits, hyphens removed, hold a Luhn-valid 13-19 digit
# window: the check refused them as card-shaped before it read a UUID's groups one by one.
REFUSED_BEFORE = ["10956772-6424-4144-887b-7e4a67032a0b"]
# Separators the security review (issue 16) wrote card numbers with.
REVIEWED_SEPARATORS = [" ", "  ", "-", ".", ":", "/", "_"]


@pytest.mark.parametrize("key", REFUSED_BEFORE)
def test_a_uuid_once_refused_as_card_shaped_is_now_a_valid_key(region: Region, key: str) -> None:
    assert _brute_force(key.replace("-", ""))  # its joined digits do hold a card-like window
    assert validate_idempotency_key(key) == key
    assert validate_idempotency_key(key.upper()) == key.upper()
    response = build_api_handler(region.deps)(post_event(VALID_REQUEST, key=key), None)
    assert response["statusCode"] == 201


@SETTINGS
@given(value=st.uuids(), upper=st.booleans())
def test_a_random_uuid_is_never_refused(value: uuid.UUID, upper: bool) -> None:
    key = str(value).upper() if upper else str(value)
    assert not contains_card_number(key)
    assert validate_idempotency_key(key) == key


@SETTINGS
@given(
    number=card_numbers(), separator=st.sampled_from(REVIEWED_SEPARATORS), size=st.integers(1, 8)
)
def test_every_card_number_written_with_the_reviewed_separators_is_still_found(
    number: str, separator: str, size: int
) -> None:
    written = separator.join(number[start : start + size] for start in range(0, len(number), size))
    assert not CANONICAL_UUID_PATTERN.fullmatch(written)  # 13-19 digits never make a UUID
    assert contains_card_number(written)
    if IDEMPOTENCY_KEY_PATTERN.fullmatch(written):
        with pytest.raises(InvalidRequest, match="must not contain a card number"):
            validate_idempotency_key(written)


@pytest.mark.parametrize(
    "text",
    [
        "41111111-1111-1111-1111",  # four groups: not a UUID
        "41111111-1111-1111-1111-11111111111",  # a last group one short
        "{41111111-1111-1111-1111-111111111111}",  # braces: not the canonical form
        "41111111111111111111111111111111",  # a UUID's hex without hyphens
        "41111111_1111_1111_1111_111111111111",  # underscores instead of hyphens
        "x41111111-1111-1111-1111-111111111111",  # more than the UUID
    ],
)
def test_only_the_exact_canonical_uuid_shape_is_read_group_by_group(text: str) -> None:
    assert not CANONICAL_UUID_PATTERN.fullmatch(text)
    assert contains_card_number(text)
