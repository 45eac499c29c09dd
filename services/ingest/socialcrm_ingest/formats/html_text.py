"""The text of an HTML email body, in time linear in its length (pure logic).

Anyone can send an email, so the markup is hostile until read. A regex over the whole body
(``<[^>]+>``) backtracks quadratically on ``<<<<...``, and the standard library's
``html.parser`` of Python 3.11 is quadratic too on ``<a <a <a ...``, an unclosed ``<!--``
or ``<?`` (40 k characters took seconds, holding the GIL in one call, so no timeout can stop
it). This scanner only moves forward: every search starts where the previous one ended,
and a search that finds nothing ends the scan (nothing after it can match either), so each
character is examined a bounded number of times. Entities are decoded by ``html.unescape``,
whose pattern is bounded (at most 32 characters per entity).

Text, not rendering: a tag becomes a space (a line break for the block-level ones, so that
quoted lines stay lines), comments, ``<script>`` and ``<style>`` are dropped, and a tag left
unclosed at the end of the body is dropped with the rest of it, as a browser does.
"""

from __future__ import annotations

import html
import re

# Where a tag may start (HTML standard: "<" then an ASCII letter, "/", "!" or "?"); any other
# "<" is text. A fixed two-character pattern: the search cannot backtrack.
_TAG_START = re.compile(r"<[A-Za-z/!?]")
# Tags that start a new line in a browser; the others separate words at most.
_BLOCKS = frozenset(
    "address article aside blockquote br dd div dl dt footer h1 h2 h3 h4 h5 h6 header hr li "
    "main nav ol p pre section table td th tr ul".split()
)
# Elements whose content is not text (raw-text elements of the HTML standard).
_RAW_TEXT = ("script", "style")
_NAME_END = frozenset(" \t\n\r\f/>")
# A tag name longer than this is not one the text depends on (longest known: 10).
_NAME_MAX = 16


def _tag_name(markup: str, start: int) -> str:
    """The lower-cased name of the tag opening at ``start`` (after ``<`` or ``</``)."""
    end = start
    limit = min(len(markup), start + _NAME_MAX)
    while end < limit and markup[end] not in _NAME_END:
        end += 1
    return markup[start:end].lower()


def _raw_text_end(markup: str, start: int, name: str) -> int:
    """Where the raw-text element ``name`` whose content starts at ``start`` ends."""
    closing = "</" + name
    position = start
    while True:
        found = markup.find("</", position)
        if found < 0:
            return len(markup)
        if markup[found : found + len(closing)].lower() == closing:
            close = markup.find(">", found)
            return len(markup) if close < 0 else close + 1
        position = found + 2


def html_to_text(markup: str) -> str:
    """The text of ``markup``, entities decoded; linear in ``len(markup)``."""
    pieces: list[str] = []
    position = 0
    length = len(markup)
    while position < length:
        found = _TAG_START.search(markup, position)
        if found is None:
            pieces.append(markup[position:])
            break
        opening = found.start()
        pieces.append(markup[position:opening])
        if markup.startswith("<!--", opening):
            # An unclosed comment runs to the end of the document (HTML standard).
            close = markup.find("-->", opening + 4)
            position = length if close < 0 else close + 3
            continue
        close = markup.find(">", opening + 1)
        if close < 0:
            # No ">" anywhere after: no later "<" can close a tag either.
            break
        closing_tag = markup[opening + 1] == "/"
        name = _tag_name(markup, opening + (2 if closing_tag else 1))
        pieces.append("\n" if name in _BLOCKS else " ")
        position = close + 1
        if not closing_tag and name in _RAW_TEXT:
            position = _raw_text_end(markup, position, name)
    return html.unescape("".join(pieces))
