"""The one-time splits of the care posts into train, dev and test (see README.md).

Each batch of posts was split once with this script and is fixed: the three files are the
record. Re-running it on the union of the three files gives the same assignment, which is
what ``python split.py --check`` verifies for every batch. Never re-split to move posts
into or out of test; a new batch is split on its own (``--add-batch``), existing posts
never move.

Batch 1 (ids ``fr-0001``, ``en-0001``...): per language, posts are grouped by (sentiment,
first urgency signal or none); each group is shuffled with a seeded RNG and cut at the same
fractions, so every split keeps the sentiment balance of its language and gets its share of
each urgency signal.

Batch 2 (ids ``fr-b2a-0001``...): the same, with its own seed, about 60/15/25 per cent
train/dev/test, and groups of (sentiment, intent, first urgency signal or none), so that
every intent also gets its share of test (the batch is rich in rare intents and signals).

Batch 3 (ids ``fr-b3a-0001``...): training data only, since new posts go to train or dev,
never to test (``../LABELLING.md``): the same groups as batch 2, its own seed, 80/20 per
cent train/dev.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from socialcrm_sentiment.labelled_splits import load, misplaced, write

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "dev", "test")
SEED = 20261130
# Posts per language in test and dev; the rest is train.
TARGETS = {"fr": {"test": 340, "dev": 250}, "en": {"test": 120, "dev": 80}}
BATCH2_SEED = 20261206
BATCH2_FRACTIONS = {"test": 0.25, "dev": 0.15}
BATCH3_SEED = 20261207
BATCH3_FRACTIONS = {"test": 0.0, "dev": 0.20}
Post = dict[str, Any]
FIELDS = ("id", "lang", "channel", "text", "sentiment", "intent", "urgency")


def batch_of(post: Post) -> int:
    for batch in (2, 3):
        if f"-b{batch}" in post["id"]:
            return batch
    return 1


def assign(posts: list[Post]) -> dict[str, str]:
    """The split of every post: each batch's on its own."""
    return (
        assign_batch1([p for p in posts if batch_of(p) == 1])
        | assign_grouped([p for p in posts if batch_of(p) == 2], BATCH2_SEED, BATCH2_FRACTIONS)
        | assign_grouped([p for p in posts if batch_of(p) == 3], BATCH3_SEED, BATCH3_FRACTIONS)
    )


def assign_batch1(posts: list[Post]) -> dict[str, str]:
    rng = random.Random(SEED)
    split_of: dict[str, str] = {}
    for lang in sorted(TARGETS):
        mine = [p for p in posts if p["lang"] == lang]
        f_test = TARGETS[lang]["test"] / len(mine)
        f_dev = TARGETS[lang]["dev"] / len(mine)
        groups: dict[tuple[str, ...], list[Post]] = {}
        for p in mine:
            key = (p["sentiment"], p["urgency"][0] if p["urgency"] else "-")
            groups.setdefault(key, []).append(p)
        cut(groups, rng, f_test, f_dev, split_of)
    return split_of


def assign_grouped(posts: list[Post], seed: int, fractions: dict[str, float]) -> dict[str, str]:
    """Batches 2 and 3: groups of (sentiment, intent, first urgency signal or none)."""
    rng = random.Random(seed)
    split_of: dict[str, str] = {}
    for lang in sorted(TARGETS):
        groups: dict[tuple[str, ...], list[Post]] = {}
        for p in posts:
            if p["lang"] == lang:
                key = (p["sentiment"], p["intent"], p["urgency"][0] if p["urgency"] else "-")
                groups.setdefault(key, []).append(p)
        f_test, f_dev = fractions["test"], fractions["dev"]
        cut(groups, rng, f_test, f_dev, split_of)
    return split_of


def cut(
    groups: dict[tuple[str, ...], list[Post]],
    rng: random.Random,
    f_test: float,
    f_dev: float,
    split_of: dict[str, str],
) -> None:
    """Each group shuffled and cut at the fractions, from a random offset."""
    for key in sorted(groups):
        group = groups[key]
        rng.shuffle(group)
        offset = rng.random()
        for i, p in enumerate(group):
            position = (i + offset) / len(group)
            if position < f_test:
                split_of[p["id"]] = "test"
            elif position < f_test + f_dev:
                split_of[p["id"]] = "dev"
            else:
                split_of[p["id"]] = "train"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        posts, wrong = misplaced(HERE, SPLITS, assign)
        sizes = ", ".join(
            f"batch {b}: {sum(batch_of(p) == b for p in posts)} posts" for b in (1, 2, 3)
        )
        verdict = f"split reproduces ({sizes})"
        print(verdict if not wrong else f"{len(wrong)} posts differ: {wrong[:10]}")
        return 1 if wrong else 0
    if argv[:1] == ["--from"] and len(argv) > 1:
        posts = load([Path(a) for a in argv[1:]])
        write(HERE, SPLITS, FIELDS, posts, assign(posts))
        return 0
    if argv[:1] == ["--add-batch"] and len(argv) > 1:
        existing = load([HERE / f"{s}.jsonl" for s in SPLITS])
        new = load([Path(a) for a in argv[1:]])
        batches = {batch_of(p) for p in new}
        if len(batches) != 1 or batches <= {batch_of(p) for p in existing} or 1 in batches:
            print("--add-batch takes one new batch's posts (ids with -b2 or -b3), once")
            return 1
        posts = sorted(existing + new, key=lambda p: p["id"])
        split_of = assign(posts)
        was = {p["id"]: s for s in SPLITS for p in load([HERE / f"{s}.jsonl"])}
        moved = [i for i, split in was.items() if split_of[i] != split]
        if moved:
            print(f"{len(moved)} existing posts would move: {moved[:10]}")
            return 1
        write(HERE, SPLITS, FIELDS, posts, split_of)
        return 0
    print(__doc__)
    print("usage: split.py --check | --from POOL.jsonl [...] | --add-batch BATCH.jsonl [...]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
