"""X webhook security: CRC answers and signature checks, with X's documented algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac

from socialcrm_ingest.security.x_signatures import (
    crc_response,
    crc_token_problem,
    signature_problem,
)

SECRET = "consumer-secret"


def x_signature(body: bytes) -> str:
    return (
        "sha256="
        + base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    )


def test_crc_response_is_the_base64_hmac_of_the_token() -> None:
    assert crc_response(SECRET, "abc") == {"response_token": x_signature(b"abc")}


def test_a_body_signed_with_the_secret_is_accepted() -> None:
    assert signature_problem(SECRET, b'{"a":1}', x_signature(b'{"a":1}')) is None


def test_missing_and_wrong_signatures_are_refused_with_a_reason() -> None:
    assert signature_problem(SECRET, b"{}", None) == "missing x-twitter-webhooks-signature header"
    assert signature_problem(SECRET, b'{"a":2}', x_signature(b'{"a":1}')) == (
        "x-twitter-webhooks-signature does not match the body"
    )


def test_plain_crc_tokens_are_answered() -> None:
    for token in ("challenge", "NjM4NzE0NjQ4NTYyNTk2OTIx", "a-b_c+d/e==", "x" * 256):
        assert crc_token_problem(token) is None, token


def test_crc_tokens_that_could_sign_a_json_body_are_refused() -> None:
    forged = '{"for_user_id":"1","tweet_create_events":[]}'
    assert crc_token_problem(forged) == "crc_token may hold only letters, digits and -_+/="
    assert crc_token_problem("abc\n") is not None
    assert crc_token_problem("é") is not None


def test_crc_tokens_are_bounded_and_not_empty() -> None:
    assert crc_token_problem("x" * 257) == "crc_token is longer than 256 characters"
    assert crc_token_problem("x" * 60_000) is not None
    assert crc_token_problem("") == "crc_token is empty"
