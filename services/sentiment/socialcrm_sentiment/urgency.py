"""Urgency signals of a post (pure): what must reach a person now, in French or English.

The patterns are written in lower case and search the lowercased post, like the intent
rules (``intent.py``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

SIGNALS: dict[str, re.Pattern[str]] = {
    "safety": re.compile(
        r"\b(?:danger\w*|incendie|feu|brûl\w*|explos\w*|bless\w*|électrocut\w*|intoxi\w*"
        r"|fumée|fire|burn\w*|explod\w*|injur\w*|unsafe|smoke|shock(?:ed)?|poison\w*)\b",
    ),
    "legal": re.compile(
        r"\b(?:avocat|plainte|tribunal|procès|justice|mise en demeure|ufc|dgccrf|porter plainte"
        r"|lawyer|attorney|sue|lawsuit|legal action|court|small claims)\b",
    ),
    "outage": re.compile(
        r"\b(?:panne|coupure|hors service|(?:ne )?(?:marche|fonctionne) plus|inaccessible|bloqué"
        r"|outage|down|not working|service unavailable|can'?t (?:log ?in|connect))\b",
    ),
    "fraud": re.compile(
        r"\b(?:fraude|arnaque|escroquerie|piraté|piratage|débité (?:deux|2) fois|usurpation"
        r"|fraud\w*|scam\w*|hacked|charged twice|identity theft|unauthori[sz]ed)\b",
    ),
    "explicit_urgency": re.compile(
        r"\b(?:urgent\w*|urgence|au plus vite|immédiatement|tout de suite"
        r"|asap|emergency|right now|immediately)\b",
    ),
    "escalation_request": re.compile(
        r"\b(?:responsable|supérieur|directeur|direction|un humain|service client (?:svp|please)"
        r"|manager|supervisor|speak to (?:a|someone)|real person|escalate)\b",
    ),
}
WEIGHTS = {
    "safety": 0.9,
    "legal": 0.7,
    "fraud": 0.7,
    "outage": 0.5,
    "explicit_urgency": 0.5,
    "escalation_request": 0.4,
}


def urgency_of(text: str, matched: Sequence[bool] | None = None) -> tuple[float, list[str]]:
    """(urgency in [0, 1], the signals found, in a stable order); ``matched``, when given:
    whether each of SIGNALS matches ``text``, already searched."""
    if matched is None:
        lowered = text.lower()
        matched = [bool(pattern.search(lowered)) for pattern in SIGNALS.values()]
    found = [name for name, hit in zip(SIGNALS, matched, strict=True) if hit]
    return urgency_score(found), found


def urgency_score(found: list[str]) -> float:
    """The strongest signal's weight, plus 0.1 per further signal, at most 1."""
    if not found:
        return 0.0
    strongest = max(WEIGHTS[name] for name in found)
    return min(1.0, strongest + 0.1 * (len(found) - 1))
