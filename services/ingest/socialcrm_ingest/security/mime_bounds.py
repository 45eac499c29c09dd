"""Bounds of an inbound email's structure, so that parsing it stays cheap (pure logic).

The standard parser recurses once per nesting level and checks each line against every
open boundary; its structured headers parse address lists and MIME parameters in time that
grows faster than their length. A few KB shaped against it took seconds, overflowed the
stack or exhausted memory. So the raw bytes are checked first (parts that contain parts,
boundaries, delimiter lines, the size of each header block and of the fields the parser
reads), then the parsed tree (depth and number of parts). Anyone can send an email, so
these bounds apply before the parser sees a byte.
"""

from __future__ import annotations

import re
from email.message import Message

CONTAINERS_MAX = 32  # multipart/* and message/* parts
DEPTH_MAX = 10
PARTS_MAX = 100
HEADER_BLOCK_MAX = 128 * 1024  # the headers of the message, or of one part
# Fields read through the structured-header parser, in bytes (folded lines included).
# References lists a whole thread; the others are one value each.
FIELD_MAX = {
    b"from": 4_096,
    b"message-id": 1_024,
    b"in-reply-to": 16_384,
    b"references": 65_536,
    b"subject": 16_384,
    b"date": 256,
    b"content-language": 1_024,
    b"content-type": 2_048,
    b"content-disposition": 2_048,
    b"content-transfer-encoding": 256,
    # The mail gateway's verdict (mail_verdict): a few results and a 64-digit signature.
    b"x-socialcrm-mail-verdict": 1_024,
}
# Real MIME fields carry a handful of parameters (boundary, charset, name, filename...).
PARAMETERS_MAX = 16
WITH_PARAMETERS = (b"content-type", b"content-disposition")

# Characters of the decoded body part that are read to make its text (HTML to text, quoted
# lines cut): 8 times EMAIL_TEXT_MAX leaves room for the markup of an HTML message, and
# bounds the time of reading whatever arrives. The text of a longer body ends with the
# truncation marker.
BODY_SOURCE_MAX = 262_144

TOO_DEEP = f"MIME parts nested more than {DEPTH_MAX} levels deep, over the limit"
TOO_MANY_PARTS = f"more than {PARTS_MAX} MIME parts, over the limit"

_CONTAINER = re.compile(rb"content-type[ \t]*:\s*(?:multipart|message)/", re.IGNORECASE)
_BOUNDARY = re.compile(rb"""boundary\s*=\s*"?([^"\s;]+)""", re.IGNORECASE)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# A field ends at a line break not followed by white space (which would fold it).
_FIELD_END = re.compile(rb"\r?\n(?![ \t])")


def raw_problem(raw: bytes) -> str | None:
    """Why the raw message is out of bounds (None: within them)."""
    containers = len(_CONTAINER.findall(raw))
    if containers > CONTAINERS_MAX:
        return f"{containers} multipart or message parts, over the limit of {CONTAINERS_MAX}"
    boundaries = set(_BOUNDARY.findall(raw))
    if len(boundaries) > CONTAINERS_MAX:
        return f"{len(boundaries)} MIME boundaries, over the limit of {CONTAINERS_MAX}"
    delimiters = [b"\n--" + boundary for boundary in boundaries]
    if sum(raw.count(delimiter) for delimiter in delimiters) > PARTS_MAX + CONTAINERS_MAX:
        return TOO_MANY_PARTS
    starts = [0]
    for delimiter in delimiters:
        for found in re.finditer(re.escape(delimiter), raw):
            # A part's headers start on the line after its delimiter line.
            line_end = raw.find(b"\n", found.end())
            if line_end >= 0:
                starts.append(line_end + 1)
    for start in starts:
        problem = _header_block_problem(raw, start)
        if problem is not None:
            return problem
    return None


def _header_block_problem(raw: bytes, start: int) -> str | None:
    blank = _BLANK_LINE.search(raw, start, start + HEADER_BLOCK_MAX + 4)
    end = blank.start() if blank else len(raw)
    if end - start > HEADER_BLOCK_MAX:
        return f"a header block is over {HEADER_BLOCK_MAX} bytes, over the limit"
    for field in _FIELD_END.split(raw[start:end]):
        name = field.split(b":", 1)[0].strip().lower()
        limit = FIELD_MAX.get(name)
        if limit is not None and len(field) > limit:
            return f"header {name.decode()} is over {limit} bytes, over the limit"
        if name in WITH_PARAMETERS and field.count(b";") > PARAMETERS_MAX:
            return f"header {name.decode()} has over {PARAMETERS_MAX} parameters, over the limit"
    return None


def tree_problem(message: Message) -> str | None:
    """Why the parsed MIME tree is out of bounds (None: within them), walked without recursion."""
    parts = 0
    stack: list[tuple[Message, int]] = [(message, 1)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if parts > PARTS_MAX:
            return TOO_MANY_PARTS
        if depth > DEPTH_MAX:
            return TOO_DEEP
        if part.is_multipart():
            stack.extend(
                (child, depth + 1) for child in part.get_payload() if isinstance(child, Message)
            )
    return None
