"""The one-time split of the review texts into train and dev (see README.md).

The texts were split once with this script and are fixed: the two files are the record.
Re-running it on their union gives the same assignment, which is what
``python split.py --check`` verifies. There is no test split: these texts are training
data, and the review genre is measured on independent public sets (``bench/sentiment.py``).

Per round and language, texts are grouped by (kind, sentiment); each group is shuffled with
a seeded RNG and cut at 20 % dev from a random offset, so dev keeps the balance of every
group. Round 2 (parts ``r1g`` to ``r1l``) came after round 1 (``r1a`` to ``r1f``): its groups
sort after round 1's, so adding it left every round-1 text where it was.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from socialcrm_sentiment.labelled_splits import load, misplaced, write

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "dev")
SEED = 20261207
DEV_FRACTION = 0.20
Text = dict[str, Any]
FIELDS = ("id", "lang", "kind", "text", "sentiment")


def round_of(text: Text) -> int:
    """1 for parts r1a to r1f, 2 for the parts written after them (r1g on)."""
    part = text["id"].split("-")[1]
    return 1 if part <= "r1f" else 2


def assign(texts: list[Text]) -> dict[str, str]:
    rng = random.Random(SEED)
    groups: dict[tuple[int, str, str, str], list[Text]] = {}
    for t in texts:
        groups.setdefault((round_of(t), t["lang"], t["kind"], t["sentiment"]), []).append(t)
    split_of: dict[str, str] = {}
    for key in sorted(groups):
        group = groups[key]
        rng.shuffle(group)
        offset = rng.random()
        for i, t in enumerate(group):
            split_of[t["id"]] = "dev" if (i + offset) / len(group) < DEV_FRACTION else "train"
    return split_of


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        texts, wrong = misplaced(HERE, SPLITS, assign)
        print(
            f"split reproduces ({len(texts)} texts)"
            if not wrong
            else f"{len(wrong)} differ: {wrong[:10]}"
        )
        return 1 if wrong else 0
    if argv[:1] == ["--from"] and len(argv) > 1:
        texts = load([Path(a) for a in argv[1:]])
        write(HERE, SPLITS, FIELDS, texts, assign(texts))
        return 0
    print(__doc__)
    print("usage: split.py --check | --from PART.jsonl [...]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
