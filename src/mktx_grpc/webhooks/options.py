"""The knobs of the webhook sidecar and of ingestion (:class:`IngestOptions`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = ["IngestOptions"]


@dataclass(frozen=True)
class IngestOptions:
    """Tunables of the sidecar and ingestion. :meth:`from_settings` reads them from
    ``Settings`` attributes named ``webhook_<field>`` when present (see the field
    comments for names); otherwise the defaults apply."""

    #: Largest accepted delivery body (``webhook_max_body_bytes``).
    max_body_bytes: int = 1_048_576
    #: Seconds a client gets to send a request's headers, and separately its body,
    #: before the connection is cut (headers) or 408 answered (body)
    #: (``webhook_receive_timeout``); slow clients cannot hold the sidecar.
    receive_timeout: float = 10.0
    #: Most concurrent connections (and requests); beyond it uvicorn answers 503
    #: (``webhook_max_connections``).
    max_connections: int = 1000
    #: Seconds an idle keep-alive connection stays open (``webhook_keep_alive``).
    keep_alive: float = 5.0
    #: A CLOSED conversation closed less than this many seconds before an inbound
    #: message is reopened; otherwise a new one opens (``webhook_reopen_window``).
    reopen_window: float = 86_400.0
    #: In-process processing workers; a contact's events always go to the same one
    #: (``webhook_workers``).
    workers: int = 2
    #: Most events applied in one transaction (``webhook_batch_size``).
    batch_size: int = 200
    #: Seconds after receipt before the retry loop may take a row the sidecar has
    #: not finished (``webhook_claim_delay``).
    claim_delay: float = 30.0
    #: Back-off: ``retry_base * 2**(attempt-1)`` seconds, capped at ``retry_max``,
    #: ±20 % jitter (``webhook_retry_base``, ``webhook_retry_max``).
    retry_base: float = 5.0
    retry_max: float = 3_600.0
    #: Attempts before a failing event is marked DEAD (``webhook_max_attempts``).
    max_attempts: int = 12
    #: How long an echo of an outbound DM may wait for the send path to store the
    #: message with its X event id before it is recorded as sent from another
    #: client (``webhook_echo_grace``), and how often it is retried meanwhile
    #: (``webhook_echo_retry_delay``).
    echo_grace: float = 30.0
    echo_retry_delay: float = 1.0
    #: Seconds the retry loop sleeps when it found less than a full batch
    #: (``webhook_retry_poll``).
    retry_poll: float = 1.0
    #: Events queued in memory before new ones are left to the retry loop
    #: (``webhook_queue_limit``).
    queue_limit: int = 50_000
    #: Retry failed events in the sidecar process too (after their back-off),
    #: besides the retry loop (``webhook_inline_retries``).
    inline_retries: bool = True
    #: Apply runs of plain inbound DMs with set-based statements (falling back to
    #: one event at a time on any surprise); off applies every event singly
    #: (``webhook_set_based_dms``).
    set_based_dms: bool = True

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> IngestOptions:
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            attr = f"webhook_{name}"
            if hasattr(settings, attr):
                values[name] = getattr(settings, attr)
        values.update(overrides)
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        delay = min(self.retry_max, self.retry_base * 2.0 ** max(0, attempt - 1))
        return delay * random.uniform(0.8, 1.2)
