"""The one-time split of the care posts into train, dev and test (see README.md).

The split was made once with this script and is fixed: the three files are the record.
Re-running it on the union of the three files gives the same assignment, which is what
``python split.py --check`` verifies. Never re-split to move posts into or out of test.

Per language, posts are grouped by (sentiment, first urgency signal or none); each group is
shuffled with a seeded RNG and cut at the same fractions, so every split keeps the sentiment
balance of its language and gets its share of each urgency signal.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "dev", "test")
SEED = 20261130
# Posts per language in test and dev; the rest is train.
TARGETS = {"fr": {"test": 340, "dev": 250}, "en": {"test": 120, "dev": 80}}
Post = dict[str, Any]
FIELDS = ("id", "lang", "channel", "text", "sentiment", "intent", "urgency")


def load(paths: list[Path]) -> list[Post]:
    posts: list[Post] = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            posts.extend(json.loads(line) for line in f if line.strip())
    return sorted(posts, key=lambda p: p["id"])


def assign(posts: list[Post]) -> dict[str, str]:
    rng = random.Random(SEED)
    split_of: dict[str, str] = {}
    for lang in sorted(TARGETS):
        mine = [p for p in posts if p["lang"] == lang]
        f_test = TARGETS[lang]["test"] / len(mine)
        f_dev = TARGETS[lang]["dev"] / len(mine)
        groups: dict[tuple[str, str], list[Post]] = {}
        for p in mine:
            key = (p["sentiment"], p["urgency"][0] if p["urgency"] else "-")
            groups.setdefault(key, []).append(p)
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
    return split_of


def write(posts: list[Post], split_of: dict[str, str]) -> None:
    for split in SPLITS:
        with (HERE / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for p in posts:
                if split_of[p["id"]] == split:
                    f.write(json.dumps({k: p[k] for k in FIELDS}, ensure_ascii=False) + "\n")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        current = {s: load([HERE / f"{s}.jsonl"]) for s in SPLITS}
        posts = load([HERE / f"{s}.jsonl" for s in SPLITS])
        split_of = assign(posts)
        wrong = [p["id"] for s in SPLITS for p in current[s] if split_of[p["id"]] != s]
        print("split reproduces" if not wrong else f"{len(wrong)} posts differ: {wrong[:10]}")
        return 1 if wrong else 0
    if argv[:1] == ["--from"] and len(argv) > 1:
        posts = load([Path(a) for a in argv[1:]])
        write(posts, assign(posts))
        return 0
    print(__doc__)
    print("usage: split.py --check | --from POOL.jsonl [...]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
