"""One record's step, shared by both stream processors: decode, handle, or say why it
goes to the dead-letter topic; and the one retry policy (backoff) of the stream plumbing.

Both processors (at-least-once ``processor``, exactly-once ``transactional``) call
``handle_record``: a record that cannot be decoded or breaks the contract, and a record
whose handler raises a non-transient error, come back as a ``Rejected`` with the reason;
the processor then produces its dead letter. Transient errors are the handler's caller's
business (``Backoff`` retries them without committing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import ConsumerRecord
from google.protobuf.message import Message

from socialcrm import contract

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.2
LAST_RETRY_SECONDS = 5.0

In = TypeVar("In", bound=Message)


class Interrupted(Exception):
    """Shutdown or a rebalance arrived while a record waited on a transient failure:
    leave it unhandled (and uncommitted)."""


@dataclass(frozen=True)
class Rejected:
    """A record that goes to the dead-letter topic, and why."""

    error: contract.ContractError


async def handle_record(
    input_type: type[In],
    record: ConsumerRecord[bytes, bytes],
    handler: Callable[[In], Awaitable[Sequence[Message]]],
) -> Sequence[Message] | Rejected:
    """Decode ``record`` and hand it to ``handler``: its outputs, or why it is rejected.
    ``Interrupted`` (and ``BaseException``s) pass through: the record stays unhandled."""
    try:
        event = contract.decode(input_type, record.value)
        return await handler(event)
    except contract.ContractError as error:
        return Rejected(error)
    except Interrupted:
        raise
    except Exception as exc:
        log.exception("handler failed", extra={"topic": record.topic, "offset": record.offset})
        return Rejected(contract.ContractError("handler_error", f"{type(exc).__name__}: {exc}"))


class Backoff:
    """Waits longer after each failure in a row (FIRST_RETRY_SECONDS doubling up to
    LAST_RETRY_SECONDS), until ``reset`` after a success; a wait ends early when
    ``interrupt`` is set (shutdown, a rebalance)."""

    def __init__(self, interrupt: asyncio.Event | None = None) -> None:
        self.interrupt = interrupt
        self.delay = FIRST_RETRY_SECONDS

    def reset(self) -> None:
        self.delay = FIRST_RETRY_SECONDS

    def next_delay(self) -> float:
        """The delay to wait now; the next one doubles."""
        delay, self.delay = self.delay, min(self.delay * 2, LAST_RETRY_SECONDS)
        return delay

    async def wait(self) -> None:
        delay = self.next_delay()
        if self.interrupt is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.interrupt.wait(), delay)
