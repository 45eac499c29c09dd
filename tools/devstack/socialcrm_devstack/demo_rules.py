"""The router's rules for the demo: the packaged defaults with every hour of SLA a minute
(pure logic; the demo writes the text to a file named by ``ROUTER_RULES_FILE``).

The default SLAs (45 minutes to 24 hours) never move in a demo of a few minutes; scaled
down 60 times, a high-priority X complaint is due in 45 s and escalates a minute later
again, so first-response times, compliance and escalations move while one watches.
"""

from __future__ import annotations

import yaml  # type: ignore[import-untyped]

from socialcrm_router.rules import DEFAULT_RULES_RESOURCE, parse_rules

# An hour of the packaged rules is a minute of the demo.
TIME_SCALE = 60


def demo_rules_text(default_text: str) -> str:
    """``default_text`` with every SLA and escalation delay divided by ``TIME_SCALE``."""
    parsed = parse_rules(default_text, DEFAULT_RULES_RESOURCE)
    document = yaml.safe_load(default_text)
    for entry, rule in zip(document["sla"], parsed.sla, strict=True):
        entry["first_response"] = _scaled(rule.first_response.total_seconds())
    document.setdefault("escalation", {})["second_level_after"] = _scaled(
        parsed.escalation.second_level_after.total_seconds()
    )
    document["version"] = f"demo-{parsed.version}-hours-as-minutes"
    return str(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))


def _scaled(seconds: float) -> str:
    return f"{max(1, round(seconds / TIME_SCALE))}s"
