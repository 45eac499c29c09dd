"""Bounds of an inbound email's raw structure, checked before the parser sees it."""

from __future__ import annotations

import email
import email.policy

import pytest

from socialcrm_ingest.security.mime_bounds import (
    FIELD_MAX,
    HEADER_BLOCK_MAX,
    PARAMETERS_MAX,
    raw_problem,
    tree_problem,
)

HEAD = b"From: a@example.com\r\nMessage-ID: <m@example.com>\r\n"


def multipart(parts: list[bytes]) -> bytes:
    body = b"".join(b"--b\r\n" + part + b"\r\n" for part in parts)
    return HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + body + b"--b--\r\n"


def test_an_ordinary_message_is_within_bounds() -> None:
    message = multipart(
        [
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour",
            b'Content-Type: application/pdf; name="facture.pdf"\r\n'
            b'Content-Disposition: attachment; filename="facture.pdf"\r\n\r\nJVBERi0=',
        ]
    )
    assert raw_problem(message) is None
    assert tree_problem(email.message_from_bytes(message, policy=email.policy.default)) is None


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (HEAD.replace(b"a@example.com", b"a@example.com, " * 400), "header from is over 4096"),
        (HEAD + b"Date: " + b"1" * 300 + b"\r\n\r\nhi", "header date is over 256"),
        (HEAD + b"X-Long: " + b"x" * HEADER_BLOCK_MAX + b"\r\n\r\nhi", "a header block is over"),
        (
            multipart([b"Content-Type: text/plain; " + b"a=b; " * PARAMETERS_MAX + b"\r\n\r\nx"]),
            "header content-type has over 16 parameters",
        ),
        (
            multipart([b'Content-Disposition: attachment; filename="' + b"f" * 3_000 + b'"']),
            "header content-disposition is over 2048",
        ),
    ],
    ids=["long-from", "long-date", "header-block", "parameters", "part-field"],
)
def test_fields_the_parser_reads_are_bounded_in_every_part(message: bytes, reason: str) -> None:
    problem = raw_problem(message)
    assert problem is not None
    assert reason in problem


def test_folded_lines_count_as_one_field() -> None:
    folded = HEAD.replace(b"a@example.com", b"a@example.com,\r\n " * 300)
    assert FIELD_MAX[b"from"] < len(folded)
    assert raw_problem(folded) == "header from is over 4096 bytes, over the limit"


def test_long_fields_nobody_parses_are_left_alone() -> None:
    message = HEAD + b"To: " + b"someone@example.com, " * 3_000 + b"\r\n\r\nhi"
    assert raw_problem(message) is None
