"""The language detector's contract: supported languages, the network's tag on short texts
and unsure readings, "und" when there is nothing to read or the language is not supported."""

from __future__ import annotations

import pytest

from socialcrm_sentiment.language import (
    LANGUAGES,
    MIN_CONFIDENCE,
    detect_language,
    model_path,
)


def test_the_model_ships_inside_an_installed_package() -> None:
    assert model_path().is_file()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Bonjour, mon colis est toujours bloqué à l'entrepôt depuis lundi", "fr"),
        ("@acme ça fait 3 jours que j'attends une réponse du service client #honte", "fr"),
        ("Hi, my parcel has been stuck at the depot since Monday, any news?", "en"),
        ("@acme three days waiting for an answer from customer service #fail", "en"),
        ("MY ORDER NEVER ARRIVED AND NOBODY ANSWERS THE PHONE", "en"),
    ],
)
def test_french_and_english_posts(text: str, language: str) -> None:
    code, confidence = detect_language(text)
    assert code == language
    assert MIN_CONFIDENCE <= confidence <= 1.0


def test_the_networks_tag_decides_short_texts_even_against_the_model() -> None:
    assert detect_language("ok merci", "fr") == ("fr", 0.8)
    assert detect_language("thanks a lot", "fr-FR") == ("fr", 0.8)
    assert detect_language("ok thanks", "en-GB")[0] == "en"


def test_an_unsupported_tag_is_not_an_answer() -> None:
    assert detect_language("ok merci beaucoup", "ja")[0] == "fr"


@pytest.mark.parametrize("text", ["😍😍🔥", "!!! ???", "", "@acme https://t.co/x 👍"])
def test_nothing_to_read_is_undetermined_or_the_tag(text: str) -> None:
    assert detect_language(text) == ("und", 0.0)
    assert detect_language(text, "en")[0] == "en"


@pytest.mark.parametrize(
    "text",
    [
        "私の荷物はまだ届いていません、どうなっていますか",
        "Моя посылка до сих пор не пришла, что происходит?",
    ],
)
def test_a_language_outside_the_list_is_undetermined_or_the_tag(text: str) -> None:
    assert detect_language(text) == ("und", 0.0)
    assert detect_language(text, "fr")[0] == "fr"


def test_every_answer_is_a_supported_code_or_und_with_a_confidence_in_range() -> None:
    for text in ("El pedido llegó roto y nadie contesta", "Die Lieferung ist zu spät", "x y"):
        code, confidence = detect_language(text)
        assert code in (*LANGUAGES, "und")
        assert 0.0 <= confidence <= 1.0
