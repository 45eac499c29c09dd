"""Social-media text made comparable with lexicons (pure): what a word list can score.

URLs and @mentions carry no sentiment; hashtags do (#honte, #FailDelivery); elongations
("nuuuul", "sooo") are emphasis on a known word.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"(?<=[a-zà-ÿ])(?=[A-Z])")
_ELONGATION = re.compile(r"(\w)\1{2,}")
_TOKEN = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


def clean(text: str) -> str:
    """Text without URLs and mentions, hashtags as words, elongations shortened."""
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _HASHTAG.sub(lambda m: " " + _CAMEL.sub(" ", m.group(1)) + " ", text)
    return _ELONGATION.sub(r"\1", text)


def tokens(text: str) -> list[str]:
    """Lower-case words (apostrophes split off: "c'est" -> "c'", "est") and symbols."""
    words: list[str] = []
    for token in _TOKEN.findall(clean(text).lower()):
        if "'" in token and not token.endswith("'"):
            head, _, tail = token.partition("'")
            words.extend([head + "'", tail])
        else:
            words.append(token)
    return words


@lru_cache(maxsize=200_000)
def strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
