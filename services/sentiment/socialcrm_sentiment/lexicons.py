"""Word lists of the enrichment: loaded from registry packages, plus our own care terms.

- French adjectives: the textblob-fr subjectivity lexicon (fr-sentiment.xml, PDDL, in the
  MIT-licensed `textblob-fr` wheel), read as data: its NLTK-based code is never imported.
- English: VADER's lexicon (MIT, inside `vaderSentiment`), extended with the care terms.
- Care terms and emoji: ours, written for customer-service text, where nouns and verbs
  ("colis", "remboursement", "arnaque", "refund") carry the sentiment that adjective
  lexicons miss. Polarities in [-1, 1].
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from functools import cache
from importlib import resources

from socialcrm_sentiment.text import strip_accents

MIN_SUBJECTIVITY = 0.5

FRENCH_CARE_TERMS: dict[str, float] = {
    "honte": -0.8, "honteux": -0.8, "scandale": -0.8, "scandaleux": -0.8, "arnaque": -0.9,
    "arnaqueurs": -0.9, "escroc": -0.9, "escrocs": -0.9, "voleurs": -0.9, "nul": -0.7,
    "nulle": -0.7, "naze": -0.6, "pire": -0.8, "horrible": -0.8, "inadmissible": -0.8,
    "inacceptable": -0.8, "lamentable": -0.8, "déçu": -0.6, "déçue": -0.6, "déception": -0.6,
    "marre": -0.7, "ras-le-bol": -0.7, "panne": -0.5, "retard": -0.4, "retardé": -0.4,
    "cassé": -0.5, "cassée": -0.5, "abîmé": -0.5, "perdu": -0.4, "injoignable": -0.6,
    "bug": -0.4, "bugue": -0.4, "plante": -0.3, "galère": -0.6, "attente": -0.2,
    "catastrophe": -0.8, "catastrophique": -0.8, "plainte": -0.4, "remboursez": -0.4,
    "colère": -0.7, "furieux": -0.8, "énervé": -0.6, "inutile": -0.6, "mauvais": -0.6,
    "mauvaise": -0.6, "jamais": -0.2, "toujours": 0.0, "problème": -0.4, "problèmes": -0.4,
    "erreur": -0.4, "annulé": -0.4, "annulée": -0.4, "débité": -0.3, "fuite": -0.4,
    "merci": 0.5, "bravo": 0.7, "génial": 0.8, "géniale": 0.8, "super": 0.6, "top": 0.6,
    "parfait": 0.8, "parfaite": 0.8, "excellent": 0.8, "excellente": 0.8, "adore": 0.8,
    "j'adore": 0.8, "ravi": 0.7, "ravie": 0.7, "rapide": 0.4, "efficace": 0.6,
    "impeccable": 0.8, "nickel": 0.7, "formidable": 0.8, "sympa": 0.5, "content": 0.5,
    "contente": 0.5, "satisfait": 0.6, "satisfaite": 0.6, "recommande": 0.6, "aime": 0.5,
    "félicitations": 0.7, "meilleur": 0.6, "meilleure": 0.6, "agréable": 0.6,
    "terrible": 0.5,  # colloquially "great": "pas terrible" is the usual complaint
}  # fmt: skip

ENGLISH_CARE_TERMS: dict[str, float] = {
    "scam": -0.9, "scammers": -0.9, "fraud": -0.8, "refund": -0.3, "late": -0.4,
    "delayed": -0.4, "broken": -0.6, "damaged": -0.6, "outage": -0.5, "down": -0.2,
    "unreachable": -0.6, "useless": -0.7, "worst": -0.9, "joke": -0.4, "ripoff": -0.9,
    "rip-off": -0.9, "cancelled": -0.4, "lost": -0.4, "missing": -0.4, "waiting": -0.2,
    "disappointed": -0.6, "nightmare": -0.8, "unacceptable": -0.8, "ridiculous": -0.6,
    "charged": -0.2, "bug": -0.4, "crash": -0.5, "crashes": -0.5, "kudos": 0.7,
    "smooth": 0.5, "quick": 0.4, "fast": 0.4, "helpful": 0.7, "lifesaver": 0.8,
}  # fmt: skip

EMOJI: dict[str, float] = {
    "😡": -0.9, "🤬": -0.9, "😠": -0.8, "😤": -0.6, "😞": -0.6, "😢": -0.6, "😭": -0.7,
    "👎": -0.6, "💩": -0.7, "🙄": -0.5, "😒": -0.5, "😫": -0.6, "😩": -0.6, "💔": -0.6,
    "😍": 0.9, "❤": 0.8, "❤️": 0.8, "💖": 0.8, "😊": 0.7, "🙂": 0.4, "😀": 0.6, "😃": 0.6,
    "😁": 0.6, "👍": 0.6, "👏": 0.7, "🙏": 0.4, "🎉": 0.7, "🥰": 0.9, "😂": 0.3, "🔥": 0.3,
}  # fmt: skip


@cache
def french_lexicon() -> dict[str, float]:
    """Polarity of French words: textblob-fr's adjectives, then our care terms."""
    xml = resources.files("textblob_fr").joinpath("fr-sentiment.xml").read_bytes()
    polarities: defaultdict[str, list[float]] = defaultdict(list)
    for word in ElementTree.fromstring(xml).iter("word"):
        form, polarity = word.get("form"), word.get("polarity")
        # Objective adjectives ("nouveau", "bleu") say nothing about how the author feels.
        if form and polarity and float(word.get("subjectivity") or 0) >= MIN_SUBJECTIVITY:
            polarities[form.lower()].append(float(polarity))
    lexicon = {form: sum(values) / len(values) for form, values in polarities.items()}
    lexicon.update(FRENCH_CARE_TERMS)
    lexicon.update(EMOJI)
    return lexicon


@cache
def french_lexicon_without_accents() -> dict[str, float]:
    """The same words typed without accents, as they often are on phones ("decu")."""
    return {strip_accents(form): value for form, value in french_lexicon().items()}
