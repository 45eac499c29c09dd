"""The labelled sets under socialcrm_sentiment/data: their splits are the ones their
scripts make, and no review training text repeats a care test post."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from socialcrm_sentiment.fast_training import DATA_DIR
from socialcrm_sentiment.labelled_splits import load


def split_script(folder: str) -> ModuleType:
    path = DATA_DIR / folder / "split.py"
    spec = importlib.util.spec_from_file_location(f"split_{folder}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def texts(*paths: Path) -> set[str]:
    return {" ".join(row["text"].lower().split()) for row in load(paths)}


@pytest.mark.parametrize("folder", ["care", "reviews"])
def test_the_split_files_are_what_the_split_script_makes(
    folder: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert split_script(folder).main(["--check"]) == 0, capsys.readouterr().out


def test_no_review_text_repeats_a_care_test_post() -> None:
    care_test = texts(DATA_DIR / "care" / "test.jsonl")
    reviews = texts(DATA_DIR / "reviews" / "train.jsonl", DATA_DIR / "reviews" / "dev.jsonl")
    assert not reviews & care_test
