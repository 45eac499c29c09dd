"""Intent of a post (pure): transparent bilingual rules, first match wins.

The order encodes what a care team must not miss: a churn threat matters more than the
complaint it comes with, a purchase question more than its question mark.

The patterns are written in lower case and search the lowercased post: the same matches as
re.IGNORECASE on 6,584 demo and care posts, in 25 µs a post for the ten intent and urgency
rules instead of 59.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeAlias

from socialcrm.v1 import common_pb2

Intent: TypeAlias = common_pb2.Intent.ValueType

RULES: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    (
        common_pb2.INTENT_CHURN_THREAT,
        re.compile(
            r"\b(?:résilie\w*|je (?:vais )?(?:pars|partir|quitte|change) (?:chez|de)"
            r"|passer chez|je passe chez|dernière fois que|plus jamais (?:chez|client)"
            r"|fermer mon compte"
            r"|cancel(?:l?ing)? my (?:subscription|account|contract)|switch(?:ing)? to"
            r"|i(?:'m| am) (?:leaving|done with)|clos(?:e|ing) my account|never (?:again|buying))",
        ),
    ),
    (
        common_pb2.INTENT_PURCHASE_INTENT,
        re.compile(
            r"\b(?:je (?:veux|voudrais|souhaite) (?:acheter|commander|m'abonner)"
            r"|quel (?:est le )?prix"
            r"|combien (?:coûte|coute|ça coûte)|en stock|disponible en|où (?:acheter|commander)"
            r"|(?:want|like|planning) to (?:buy|order|subscribe)|how much (?:is|does|for)"
            r"|in stock|where (?:can|do) i (?:buy|order)|price of)",
        ),
    ),
    (
        common_pb2.INTENT_COMPLAINT,
        re.compile(
            r"\b(?:honte|inadmissible|inacceptable|scandal\w*|arnaque|toujours pas|jamais reçu"
            r"|pas (?:reçu|livré|fonctionn\w*|marche)|ne (?:marche|fonctionne) (?:pas|plus)"
            r"|rembourse\w*|plainte|panne|retard|cassé|abîmé|injoignable|nul\b|déçu|piraté|bloqué"
            r"|avocat|mise en demeure|erron\w*|plus de connexion|pas de connexion"
            r"|still (?:no|not|waiting)|never (?:received|arrived)|not working|doesn'?t work"
            r"|refund|complain\w*|broken|damaged|delayed|outage|unacceptable|worst|scam"
            r"|disappointed|charged twice|hacked|blocked|lawyer|sue\b|wrong bill|not been working)",
        ),
    ),
    (
        common_pb2.INTENT_QUESTION,
        re.compile(
            r"\?|\b(?:comment (?:faire|puis|je)|est-ce que|pouvez-vous|savez-vous|besoin d'aide"
            r"|how (?:do|can|to)|can you|could you|is there|does anyone|need help)\b",
        ),
    ),
)


def classify_intent(
    text: str, polarity: common_pb2.Polarity.ValueType, matched: Sequence[bool] | None = None
) -> Intent:
    """``matched``, when given: whether each of RULES matches ``text``, already searched."""
    lowered = text.lower() if matched is None else ""
    for index, (intent, pattern) in enumerate(RULES):
        # Thanks that mention a refund or a delay are praise, not a complaint.
        if intent == common_pb2.INTENT_COMPLAINT and polarity == common_pb2.POLARITY_POSITIVE:
            continue
        if matched[index] if matched is not None else pattern.search(lowered):
            return intent
    if polarity == common_pb2.POLARITY_NEGATIVE:
        return common_pb2.INTENT_COMPLAINT
    if polarity == common_pb2.POLARITY_POSITIVE:
        return common_pb2.INTENT_PRAISE
    return common_pb2.INTENT_OTHER
