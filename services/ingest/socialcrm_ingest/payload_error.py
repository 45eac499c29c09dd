"""The refusal of an input that is not in its network's shape (pure).

It sits below ``formats`` (whose normalizers raise it while reading) and ``security``
(whose bounds refuse with it), so that ``security`` never imports ``formats``;
``formats.payload`` re-exports it for the normalizers.
"""

from __future__ import annotations


class PayloadError(ValueError):
    """The payload does not have the shape the network documents; the message says where."""
