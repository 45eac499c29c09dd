"""Our own webhooks' timestamped X-Signature-256 (pure): freshness, then the signature."""

from __future__ import annotations

import hashlib
import hmac

from socialcrm_ingest.security.signatures import (
    timestamped_signature,
    timestamped_signature_problem,
)

SECRET = "forum-secret"
NOW = 1_790_000_000
BODY = b'{"type":"post"}'


def problem(signature: str | None, timestamp: str | None, now: float = NOW) -> str | None:
    return timestamped_signature_problem(
        SECRET, BODY, signature, timestamp, now=now, window_seconds=300
    )


def test_the_signature_covers_the_timestamp_then_the_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1790000000." + BODY, hashlib.sha256).hexdigest()
    assert timestamped_signature(SECRET, NOW, BODY) == f"sha256={expected}"
    assert problem(f"sha256={expected}", str(NOW)) is None


def test_a_call_inside_the_window_is_accepted_either_side_of_now() -> None:
    for stamp in (NOW - 300, NOW + 300):
        assert problem(timestamped_signature(SECRET, stamp, BODY), str(stamp)) is None


def test_stale_and_future_calls_are_refused_naming_the_header() -> None:
    for stamp in (NOW - 301, NOW + 301):
        assert problem(timestamped_signature(SECRET, stamp, BODY), str(stamp)) == (
            "x-signature-timestamp is more than 300 s away from now (stale call)"
        )


def test_a_signature_moved_to_another_timestamp_is_refused() -> None:
    signature = timestamped_signature(SECRET, NOW - 1000, BODY)
    assert problem(signature, str(NOW)) == (
        "x-signature-256 does not match x-signature-timestamp and the body"
    )


def test_missing_or_malformed_headers_are_named() -> None:
    signature = timestamped_signature(SECRET, NOW, BODY)
    assert problem(signature, None) == "missing x-signature-timestamp header"
    assert problem(None, str(NOW)) == "missing x-signature-256 header"
    for stamp in ("-5", "1.5", "soon", "9" * 40, "١٢٣"):
        assert problem(signature, stamp) == "x-signature-timestamp must be a Unix time in seconds"


def test_the_untimed_signature_of_the_body_alone_is_refused() -> None:
    untimed = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert problem(untimed, str(NOW)) is not None
