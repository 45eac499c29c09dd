"""The routing rules: their YAML schema, validation and loading (pure logic, no I/O).

A rule file declares queues (team, business hours, fallback), ordered routing rules
(first match wins), high-risk escalation triggers, the SLA table and the escalation
policy. ``parse_rules`` turns its text into a validated ``RuleSet`` or raises
``RulesError`` whose message names the rule id and the field at fault.
"""

from __future__ import annotations

import hashlib
import re
from datetime import time, timedelta
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml  # type: ignore[import-untyped]
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ChannelName = Literal[
    "x",
    "facebook",
    "instagram",
    "youtube",
    "google_reviews",
    "tripadvisor",
    "forum",
    "community",
    "email",
    "chat",
]
PolarityName = Literal["negative", "neutral", "positive"]
IntentName = Literal["complaint", "question", "praise", "purchase_intent", "churn_threat", "other"]
PriorityName = Literal["low", "normal", "high", "urgent"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
NextBestChannel = Literal["private_message", "live_chat"]

WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PRIORITY_RANK: dict[PriorityName, int] = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
DEFAULT_RULES_RESOURCE = "rules/default.yaml"

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class RulesError(ValueError):
    """A rule file that cannot be used; the message says where and why."""


def _duration(value: Any) -> timedelta:
    """``90``, ``"45s"``, ``"30m"``, ``"1h30m"``, ``"2d"`` as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match and any(match.groups()):
            days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
            return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    raise ValueError(f"{value!r} is not a duration such as 45s, 30m, 1h30m, 2d or seconds")


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    # YAML 1.1 reads an unquoted 08:00 as the sexagesimal integer 480 (minutes).
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a time of day such as 08:00")


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Clock = Annotated[time, BeforeValidator(_clock)]


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeWindow(_Strict):
    """Local time window; ``end`` before ``start`` spans midnight."""

    start: Clock
    end: Clock
    timezone: str = "UTC"
    days: tuple[Weekday, ...] = WEEKDAYS

    _check_timezone = field_validator("timezone")(_timezone)


class Condition(_Strict):
    """Every field set must hold; list fields hold when any listed value matches."""

    channel: tuple[ChannelName, ...] | None = None
    language: tuple[str, ...] | None = None
    polarity: tuple[PolarityName, ...] | None = None
    sentiment_min: float | None = Field(None, ge=-1, le=1)
    sentiment_max: float | None = Field(None, ge=-1, le=1)
    intent: tuple[IntentName, ...] | None = None
    urgency_min: float | None = Field(None, ge=0, le=1)
    urgency_signals: tuple[str, ...] | None = None
    reach_min: float | None = Field(None, ge=0, le=1)
    reach_max: float | None = Field(None, ge=0, le=1)
    keywords: tuple[str, ...] | None = None
    brand: tuple[str, ...] | None = None
    tier: tuple[str, ...] | None = None
    is_public: bool | None = None
    time_of_day: TimeWindow | None = None

    @field_validator(
        "channel",
        "language",
        "polarity",
        "intent",
        "urgency_signals",
        "keywords",
        "brand",
        "tier",
        mode="before",
    )
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Queue(_Strict):
    team: str
    # None: open around the clock.
    hours: TimeWindow | None = None
    # Where interactions go while the queue is closed (required with hours).
    fallback: str | None = None
    # Told to the customer while closed; "{opens_at}" becomes the next opening time.
    outside_hours_message: str = ""
    # First SLA escalation level; default "<team>-lead".
    lead_queue: str | None = None

    @model_validator(mode="after")
    def _fallback_when_closed(self) -> Queue:
        if self.hours is not None and self.fallback is None:
            raise ValueError("a queue with business hours needs a fallback queue")
        return self

    @property
    def first_level_queue(self) -> str:
        return self.lead_queue or f"{self.team}-lead"


class Rule(_Strict):
    id: str = Field(min_length=1)
    when: Condition = Condition()
    queue: str
    priority: PriorityName
    needs_response: bool = True
    # Proposed to public interactions only.
    next_best_channel: NextBestChannel | None = None


class EscalationTrigger(_Strict):
    """High risk seen at routing time: escalate immediately."""

    id: str = Field(min_length=1)
    when: Condition
    reason: str = Field(min_length=1)
    priority: PriorityName = "urgent"


class SlaEntry(_Strict):
    """First-response deadline; the entry matching the most fields (then the shortest) wins."""

    channel: ChannelName | None = None
    priority: PriorityName | None = None
    tier: str | None = None
    first_response: Duration

    @property
    def specificity(self) -> int:
        return sum(v is not None for v in (self.channel, self.priority, self.tier))


class EscalationPolicy(_Strict):
    # Second level fires this long after the SLA deadline, to this queue.
    second_level_after: Duration = timedelta(hours=1)
    second_level_queue: str = "duty-manager"


class RuleSet(_Strict):
    version: str = Field(min_length=1)
    default_tier: str = "standard"
    queues: dict[str, Queue]
    rules: tuple[Rule, ...] = Field(min_length=1)
    escalations: tuple[EscalationTrigger, ...] = ()
    sla: tuple[SlaEntry, ...] = Field(min_length=1)
    escalation: EscalationPolicy = EscalationPolicy()

    def sla_for(self, channel: str, priority: str, tier: str) -> timedelta:
        candidates = [
            entry
            for entry in self.sla
            if entry.channel in (None, channel)
            and entry.priority in (None, priority)
            and entry.tier in (None, tier)
        ]
        # Among equally specific entries, the strictest commitment wins.
        best = max(candidates, key=lambda e: (e.specificity, -e.first_response.total_seconds()))
        return best.first_response


def _reference_problems(rule_set: RuleSet) -> list[str]:
    """Names that must point at something declared elsewhere in the file."""
    problems = []
    for name, queue in rule_set.queues.items():
        if queue.fallback is not None and queue.fallback not in rule_set.queues:
            problems.append(f"queue {name!r}: field fallback: unknown queue {queue.fallback!r}")
    seen: set[str] = set()
    for index, rule in enumerate(rule_set.rules):
        where = f"rule {rule.id!r} (rules[{index}])"
        if rule.id in seen:
            problems.append(f"{where}: field id: duplicate rule id")
        seen.add(rule.id)
        if rule.queue not in rule_set.queues:
            declared = ", ".join(sorted(rule_set.queues))
            problems.append(
                f"{where}: field queue: unknown queue {rule.queue!r} (declared: {declared})"
            )
    last = rule_set.rules[-1]
    if last.when != Condition():
        problems.append(
            f"rule {last.id!r} (rules[{len(rule_set.rules) - 1}]): field when:"
            " the last rule must be a catch-all (no conditions)"
        )
    if not any(entry.specificity == 0 for entry in rule_set.sla):
        problems.append("field sla: needs a catch-all entry (no channel, priority or tier)")
    return problems


def _describe(loc: tuple[int | str, ...], document: Any) -> str:
    """'rule 'x' (rules[3]): field when.reach_min' from a pydantic error location."""
    if len(loc) >= 2 and loc[0] in ("rules", "escalations") and isinstance(loc[1], int):
        items = document.get(loc[0]) if isinstance(document, dict) else None
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        rule_id = item.get("id") if isinstance(item, dict) else None
        kind = "rule" if loc[0] == "rules" else "escalation"
        where = f"{kind} {rule_id!r} ({loc[0]}[{loc[1]}])" if rule_id else f"{loc[0]}[{loc[1]}]"
        field = ".".join(str(part) for part in loc[2:]) or "(whole entry)"
        return f"{where}: field {field}"
    if len(loc) >= 2 and loc[0] == "queues":
        field = ".".join(str(part) for part in loc[2:]) or "(whole entry)"
        return f"queue {loc[1]!r}: field {field}"
    return "field " + (".".join(str(part) for part in loc) or "(document)")


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Validate a rule file's text; raise RulesError naming the rule and field at fault.

    Without a ``version:`` key, the version is the content hash.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise RulesError(f"{source}: expected a mapping at the top level")
    document = dict(document)
    if "version" not in document:
        document["version"] = "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]
    else:
        document["version"] = str(document["version"])
    try:
        rule_set = RuleSet.model_validate(document)
    except ValidationError as exc:
        problems = [
            f"{_describe(tuple(error['loc']), document)}: {error['msg']}" for error in exc.errors()
        ]
        raise RulesError(f"{source}: " + "; ".join(problems)) from exc
    problems = _reference_problems(rule_set)
    if problems:
        raise RulesError(f"{source}: " + "; ".join(problems))
    return rule_set


@cache
def packaged_rules() -> RuleSet:
    """The default rules shipped in this package."""
    text = resources.files("socialcrm_router").joinpath(DEFAULT_RULES_RESOURCE).read_text()
    return parse_rules(text, DEFAULT_RULES_RESOURCE)
