"""Hex HMAC-SHA256 signatures: Meta's X-Hub-Signature-256 and the forum/email/chat scheme."""

from __future__ import annotations

import hashlib
import hmac

from socialcrm_ingest.security.signatures import hex_signature, hex_signature_problem

SECRET = "app-secret"


def test_the_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"object":"page","entry":[]}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hex_signature(SECRET, body) == f"sha256={expected}"
    assert hex_signature_problem(SECRET, body, f"sha256={expected}", "x-hub-signature-256") is None
    assert (
        hex_signature_problem(SECRET, body, f"SHA256={expected.upper()}", "x-hub-signature-256")
        is None
    )


def test_missing_and_wrong_signatures_are_refused_with_the_header_named() -> None:
    assert (
        hex_signature_problem(SECRET, b"{}", None, "x-hub-signature-256")
        == "missing x-hub-signature-256 header"
    )
    assert hex_signature_problem(SECRET, b"{}", "sha256=00", "x-signature-256") == (
        "x-signature-256 does not match the body"
    )
