"""The rule file on disk: loaded at start, reloaded when its modification time changes.

A file that fails validation is rejected with the parser's message and the rules in
force stay active; at start, an invalid file stops the service.
"""

from __future__ import annotations

import logging
from pathlib import Path

from socialcrm.lifecycle import PeriodicTask
from socialcrm_router.rules import RulesError, RuleSet, packaged_rules, parse_rules

log = logging.getLogger(__name__)


class RulesSource:
    name = "rules"

    def __init__(self, path: str, poll_seconds: float) -> None:
        # Empty path: the packaged default rules, which never change at run time.
        self.path = Path(path) if path else None
        self.poll_seconds = poll_seconds
        self.current: RuleSet = packaged_rules()
        self.last_error = ""
        self._mtime_ns = 0
        self._reloads = PeriodicTask("rules-reload", poll_seconds, self._reload)

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "packaged:rules/default.yaml"

    async def start(self) -> None:
        if self.path is None:
            return
        self.reload_if_changed()
        if self.last_error:
            raise RulesError(self.last_error)
        await self._reloads.start()

    async def stop(self) -> None:
        await self._reloads.stop()

    async def check(self) -> None:
        return None

    def reload_if_changed(self) -> bool:
        """Load the file when it changed; True when new rules took effect."""
        if self.path is None:
            return False
        try:
            mtime_ns = self.path.stat().st_mtime_ns
            if mtime_ns == self._mtime_ns:
                return False
            self._mtime_ns = mtime_ns
            rules = parse_rules(self.path.read_text(encoding="utf-8"), str(self.path))
        except (OSError, RulesError) as exc:
            self.last_error = str(exc)
            log.error(
                "rule file rejected, previous rules stay active",
                extra={"error": self.last_error, "rules_version": self.current.version},
            )
            return False
        self.current, self.last_error = rules, ""
        log.info("rules loaded", extra={"source": self.source, "rules_version": rules.version})
        return True

    async def _reload(self) -> None:
        self.reload_if_changed()
