"""Domain errors of the CRM (pure), each carrying the HTTP status the API answers with.

``api.py`` maps every ``CrmError`` with one exception handler: the status is the class's,
the detail is the message, which names ids and limits, never a person's data.
"""

from __future__ import annotations

from typing import ClassVar

from socialcrm_crm_sink.limits import MAX_IDENTITIES_PER_CONTACT


class CrmError(Exception):
    status: ClassVar[int] = 400


class ContactNotFound(CrmError):
    status = 404

    def __init__(self, contact_id: str) -> None:
        super().__init__(f"no contact {contact_id}")
        self.contact_id = contact_id


class CaseNotFound(CrmError):
    status = 404

    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id}")


class CaseErased(CrmError):
    """The case of an erased person: anonymised for the KPIs, it takes no change any more."""

    status = 410

    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id} belongs to an erased person and accepts no changes")


class SuggestionNotFound(CrmError):
    status = 404

    def __init__(self, suggestion_id: str) -> None:
        super().__init__(f"no merge suggestion {suggestion_id}")


class BadTransition(CrmError):
    status = 409

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"case cannot go from {current} to {target}")


class IdentityTaken(CrmError):
    status = 409

    def __init__(self, key: str, holder: str) -> None:
        super().__init__(f"identity {key} belongs to contact {holder}; merge the contacts instead")
        self.key = key
        self.holder = holder


class SuggestionDecided(CrmError):
    status = 409

    def __init__(self, suggestion_id: str, status: str) -> None:
        super().__init__(f"merge suggestion {suggestion_id} is already {status}")


class TooManyIdentities(CrmError):
    status = 422

    def __init__(self, contact_id: str) -> None:
        super().__init__(
            f"contact {contact_id} would hold more than {MAX_IDENTITIES_PER_CONTACT} identities"
        )


class InvalidRequest(CrmError):
    """A request the query and body validation lets through but the CRM cannot serve."""

    status = 422


class InteractionNotRecordedYet(Exception):
    """The reply overtook its interaction (another consumer group): retried, not lost."""


class UnknownInteraction(ValueError):
    """The reply answers an interaction the CRM never recorded: dead-lettered with the reason."""
