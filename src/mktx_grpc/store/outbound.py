"""The one-off DM ledger (sql/queries/outbound.sql): every DM a background sender
sends on behalf of an account, other than a campaign's.

Flows, the AI assistant and hand-off/away messages call :func:`enqueue_dm` in their
own transaction; ``worker/outbound.py`` sends each row exactly once through the
send-ledger pattern of ``worker/ledger.py`` (armed before the X call, recorded after,
an unknown outcome resolved at X before any resend), within the account's DM budget.
What callers observe are outbox events written when a row settles:

- ``message.sent`` (the message stored in the conversation) with ``outbound_id``,
  ``source``, ``source_ref`` and ``origin``;
- ``outbound.failed`` / ``outbound.skipped``: ``{outbound_id, source, source_ref,
  contact_id, account_id, reason}`` (skipped: ``opted_out`` or ``cancelled``).

Caller functions run on the current connection, in the caller's transaction. The
rest serve the worker; functions marked cross-merchant discover work for every
merchant and return ``merchant_id`` with each row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one
from .events import append_event

Q = Queries("outbound")

#: The NOTIFY channel :func:`enqueue_dm` wakes the sender on (payload: merchant id).
CHANNEL = "mktx_outbound"

#: messages.origin values a ledger row may store its message as.
ORIGINS = ("AGENT", "AI", "AUTOMATION", "CAMPAIGN")
#: X's limit on a DM's text, in characters.
MAX_TEXT = 10_000
MAX_KEY = 200
MAX_QUICK_REPLIES = 20
MAX_URL = 2_048

QUEUED, SENDING, SENT, FAILED, SKIPPED = "QUEUED", "SENDING", "SENT", "FAILED", "SKIPPED"


@dataclass(frozen=True)
class OutboundDm:
    """One DM to send, as a caller describes it (see :func:`enqueue_dm`)."""

    account_id: UUID
    contact_id: UUID
    #: The final text (templates are rendered before enqueueing).
    text: str
    #: Who wants it sent: "flow", "ai", ... (consumers filter events on it).
    source: str
    #: Unique per (merchant, source): e.g. f"{execution_id}:{step_no}".
    source_ref: str
    #: messages.origin of the stored message: "AUTOMATION" | "AI".
    origin: str
    #: messages.is_from_bot (True for the AI's replies).
    is_from_bot: bool = False
    #: messages.flow_id.
    flow_id: UUID | None = None
    #: Send into this conversation (default: the contact's live one, opened if none).
    conversation_id: UUID | None = None
    #: One https media attachment, fetched and uploaded to X at send time.
    media_url: str | None = None
    #: Stored with the message (X's v2 DMs carry text only): {label, description, metadata}.
    quick_replies: list[dict[str, str]] = field(default_factory=list)
    #: The earliest send time (default: now).
    not_before: datetime | None = None
    #: Send even to a contact who opted out. Never for marketing: only for an answer
    #: to the contact's own message (the AI's reply, a hand-off notice).
    bypass_opt_out: bool = False

    def problems(self) -> list[str]:
        """What makes this DM unsendable as written (a caller's bug, not a business
        condition): empty, too long, NUL characters, bad keys, origin or media URL."""
        out: list[str] = []
        strings = {"text": self.text, "source": self.source, "source_ref": self.source_ref}
        if self.media_url is not None:
            strings["media_url"] = self.media_url
        for i, q in enumerate(self.quick_replies):
            for k, v in q.items():
                strings[f"quick_replies[{i}].{k}"] = v
        for name, value in strings.items():
            if not isinstance(value, str):
                out.append(f"{name} must be text")
            elif "\x00" in value:
                out.append(f"{name} holds a NUL character")
        if not self.text.strip() and not self.media_url:
            out.append("a DM needs text or media")
        if len(self.text) > MAX_TEXT:
            out.append(f"text is longer than {MAX_TEXT} characters")
        for name in ("source", "source_ref"):
            value = getattr(self, name)
            if not value or len(value) > MAX_KEY:
                out.append(f"{name} must be 1 to {MAX_KEY} characters")
        if self.origin not in ORIGINS:
            out.append(f"origin must be one of {', '.join(ORIGINS)}")
        if self.media_url is not None and (
            not self.media_url.startswith("https://") or len(self.media_url) > MAX_URL
        ):
            out.append("media_url must be an https URL")
        if len(self.quick_replies) > MAX_QUICK_REPLIES:
            out.append(f"at most {MAX_QUICK_REPLIES} quick replies")
        return out


# ------------------------------------------------------------------ callers


async def enqueue_dm(merchant_id: UUID, dm: OutboundDm) -> int:
    """Queue one DM in the CALLER'S transaction (on the current connection); returns
    the ledger row id.

    Idempotent: the same (merchant_id, source, source_ref) returns the existing row's
    id and queues nothing new (whatever the rest of ``dm`` says). The row commits with
    the caller's changes, so a decision and its send are atomic, and the sender is
    woken by ``NOTIFY mktx_outbound`` when they commit. Raises nothing for business
    conditions: an opted-out contact, a disconnected account or a spent budget are
    the sender's to decide, and show up as the row's state and events. Raises
    ``ValueError`` for a DM no sender could send (see :meth:`OutboundDm.problems`),
    and what the database raises."""
    problems = dm.problems()
    if problems:
        raise ValueError("; ".join(problems))
    row = await fetch_one(
        Q.enqueue_dm,
        {
            "merchant_id": merchant_id,
            "account_id": dm.account_id,
            "contact_id": dm.contact_id,
            "source": dm.source,
            "source_ref": dm.source_ref,
            "origin": dm.origin,
            "is_from_bot": dm.is_from_bot,
            "flow_id": dm.flow_id,
            "conversation_id": dm.conversation_id,
            "text": dm.text,
            "media_url": dm.media_url,
            "quick_replies": Jsonb(list(dm.quick_replies)),
            "bypass_opt_out": dm.bypass_opt_out,
            "not_before": dm.not_before,
        },
    )
    if row is None:
        existing = await fetch_one(
            Q.outbound_by_source_ref,
            {"merchant_id": merchant_id, "source": dm.source, "source_ref": dm.source_ref},
        )
        assert existing is not None
        return int(existing["id"])
    return int(row["id"])


async def enqueue_dms(dms: Sequence[tuple[UUID, OutboundDm]]) -> list[int]:
    """:func:`enqueue_dm` for many ``(merchant_id, dm)`` in one statement, in the
    CALLER'S transaction; returns each DM's ledger row id, in order (the existing
    row's for a key queued already). Raises ``ValueError`` naming the first DM no
    sender could send (nothing is queued then), and what the database raises."""
    for i, (_, dm) in enumerate(dms):
        problems = dm.problems()
        if problems:
            raise ValueError(f"dms[{i}]: " + "; ".join(problems))
    if not dms:
        return []
    rows = [
        {
            "merchant_id": str(m),
            "account_id": str(dm.account_id),
            "contact_id": str(dm.contact_id),
            "source": dm.source,
            "source_ref": dm.source_ref,
            "origin": dm.origin,
            "is_from_bot": dm.is_from_bot,
            "flow_id": None if dm.flow_id is None else str(dm.flow_id),
            "conversation_id": None if dm.conversation_id is None else str(dm.conversation_id),
            "text": dm.text,
            "media_url": dm.media_url,
            "quick_replies": list(dm.quick_replies),
            "bypass_opt_out": dm.bypass_opt_out,
            "not_before": None if dm.not_before is None else dm.not_before.isoformat(),
        }
        for m, dm in dms
    ]
    got = await fetch_all(Q.enqueue_dms, {"rows": json.dumps(rows)})
    assert len(got) == len(dms) and all(r["id"] is not None for r in got)
    return [int(r["id"]) for r in got]


async def cancel_outbound(merchant_id: UUID, source: str, source_ref_prefix: str) -> int:
    """Cancel QUEUED (not yet armed) rows of ``source`` whose ref starts with the
    prefix (e.g. a cancelled flow execution's f"{execution_id}:"); they become SKIPPED
    'cancelled' with an ``outbound.skipped`` event each. Armed rows finish (they may
    already be at X). Returns the number cancelled. Runs in the caller's transaction;
    a row a sender is arming at that moment is waited for and then left to it."""
    rows = await fetch_all(
        Q.cancel_outbound,
        {"merchant_id": merchant_id, "source": source, "prefix": source_ref_prefix},
    )
    for r in rows:
        await append_settled_event(merchant_id, SKIPPED, r)
    return len(rows)


async def get_outbound(merchant_id: UUID, outbound_id: int) -> Row | None:
    """The ledger row (state, reason, attempts, x_event_id, message_id, ...), or None."""
    return await fetch_one(Q.get_outbound, {"merchant_id": merchant_id, "id": outbound_id})


async def adopt_unclear_send(
    merchant_id: UUID,
    *,
    account_id: UUID,
    contact_id: UUID,
    conversation_id: UUID,
    message_id: UUID,
    text: str,
    armed_at: datetime,
    reason: str,
    lease: timedelta,
) -> int | None:
    """Hand an agent send whose outcome X left unknown (its PENDING message) to the
    ledger's recovery, which settles the message once X can tell: SENT when X has
    the DM, FAILED "not sent" when it does not. It is never resent. Returns the row
    id (None when the message was handed over already)."""
    row = await fetch_one(
        Q.adopt_unclear_send,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "contact_id": contact_id,
            "conversation_id": conversation_id,
            "message_id": message_id,
            "text": text,
            "armed_at": armed_at,
            "reason": reason,
            "lease": lease,
        },
    )
    return None if row is None else int(row["id"])


async def note_pending_message(merchant_id: UUID, message_id: UUID, reason: str) -> None:
    """Say on an agent's PENDING message why it is still pending."""
    await execute(
        Q.note_pending_message, {"merchant_id": merchant_id, "id": message_id, "reason": reason}
    )


async def append_settled_event(merchant_id: UUID, state: str, row: Row) -> None:
    """``outbound.failed`` / ``outbound.skipped`` for a row that settled so."""
    await append_event(
        merchant_id,
        "outbound.failed" if state == FAILED else "outbound.skipped",
        row["contact_id"],
        {
            "outbound_id": int(row["id"]),
            "source": row["source"],
            "source_ref": row["source_ref"],
            "contact_id": str(row["contact_id"]),
            "account_id": str(row["account_id"]),
            "reason": row["reason"],
        },
    )


# ------------------------------------------------------------------ sender


async def claim_due(limit: int, *, busy_accounts: Sequence[UUID] = ()) -> list[Row]:
    """Cross-merchant: up to ``limit`` due QUEUED rows (see claim_due in the SQL),
    locked for this transaction, skipping rows others hold and rows of
    ``busy_accounts``. Each row has the contact's ``x_user_id`` and ``opted_out``,
    ``contact_on_account`` and the account's ``account_status`` (None: gone)."""
    return await fetch_all(
        Q.claim_due, {"limit": limit, "scan": limit * 4, "busy": list(busy_accounts)}
    )


async def mark_sending(merchant_id: UUID, ids: Sequence[int], lease: timedelta) -> None:
    """Arm QUEUED rows: SENDING, one more attempt, a lease (committed before X is called)."""
    await execute(Q.mark_sending, {"merchant_id": merchant_id, "ids": list(ids), "lease": lease})


@dataclass(frozen=True, slots=True)
class Wait:
    """A row going (back) to QUEUED: ready at ``ready_at``, with a readable reason;
    ``waiting_for`` "account" makes it claimable as soon as its account is ACTIVE."""

    id: int
    ready_at: datetime
    reason: str
    waiting_for: str = ""
    #: The armed row never reached X (refused before it left): its attempt is undone.
    refund: bool = False


async def requeue(merchant_id: UUID, waits: Sequence[Wait]) -> None:
    """QUEUED rows, or SENDING rows certainly not sent, wait as ``waits`` say."""
    if not waits:
        return
    await execute(
        Q.requeue_rows,
        {
            "merchant_id": merchant_id,
            "ids": [w.id for w in waits],
            "ready_ats": [w.ready_at for w in waits],
            "reasons": [w.reason for w in waits],
            "waiting_fors": [w.waiting_for for w in waits],
            "refunds": [w.refund for w in waits],
        },
    )


async def pause_account(
    merchant_id: UUID, account_id: UUID, until: datetime, reason: str, waiting_for: str = ""
) -> None:
    """The account's other QUEUED rows (those no one holds) wait until ``until`` too."""
    await execute(
        Q.pause_account,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "until": until,
            "reason": reason,
            "waiting_for": waiting_for,
        },
    )


async def settle(
    merchant_id: UUID, state: str, ids: Sequence[int], reasons: Sequence[str]
) -> list[Row]:
    """QUEUED or SENDING rows become ``state`` (FAILED or SKIPPED) with their reasons,
    each with its ``outbound.failed`` / ``outbound.skipped`` event. Returns the rows
    that did (rows already settled are left alone)."""
    rows = await fetch_all(
        Q.settle_rows,
        {"merchant_id": merchant_id, "state": state, "ids": list(ids), "reasons": list(reasons)},
    )
    for r in rows:
        await append_settled_event(merchant_id, state, r)
    return rows


def _columns(items: Sequence[Any]) -> dict[str, list[Any]]:
    """Dataclass items as one array parameter per field, named as the field."""
    return {f.name: [getattr(i, f.name) for i in items] for f in fields(items[0])}


@dataclass(frozen=True, slots=True)
class Accepted:
    """An armed row X accepted: its DM's X event id and when X took it."""

    id: int
    x_event_id: str
    sent_at: datetime


async def finish_sent(merchant_id: UUID, accepted: Sequence[Accepted]) -> dict[int, Row]:
    """Armed rows X accepted become SENT (locking them). Returns, per row that did,
    ``echo_id`` / ``echo_conversation_id`` (the message X's webhook echo of the DM
    stored already, else None) and ``asked_conversation_id`` (the conversation the row
    asked for, when it is still the contact's on the row's account, else None). Rows
    no longer SENDING are not returned: nothing else may be recorded for them."""
    if not accepted:
        return {}
    rows = await fetch_all(Q.finish_sent, {"merchant_id": merchant_id, **_columns(accepted)})
    return {int(r["id"]): r for r in rows}


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A SENT row's DM to store as a new outbound message (see
    :func:`store_sent_messages`)."""

    id: int
    conversation_id: UUID
    contact_id: UUID
    type: str
    text: str
    attachments: list[dict[str, Any]]
    quick_replies: list[dict[str, Any]]
    origin: str
    is_from_bot: bool
    flow_id: UUID | None
    x_event_id: str
    #: X's conversation id, stored on the conversation when it has none ("" for none).
    x_conversation_id: str
    #: The conversation's new preview (``domain.conversations.preview``).
    preview: str


async def store_sent_messages(merchant_id: UUID, sent: Sequence[SentMessage]) -> dict[int, UUID]:
    """SENT rows' DMs stored in one statement as the agent send path stores one: a
    SENT outbound message each, the conversation's preview, count and X conversation
    id, the contact's outbound interaction, the row linked to its message. At most one
    row per conversation. Returns ``{row id: message id}`` for the rows stored; a row
    whose X event id a message holds already (X's webhook echo, stored meanwhile) is
    left out, for the caller to adopt that message."""
    if not sent:
        return {}
    cols = _columns(sent)
    cols["attachments"] = [json.dumps(a) for a in cols["attachments"]]
    cols["quick_replies"] = [json.dumps(q) for q in cols["quick_replies"]]
    rows = await fetch_all(Q.store_sent_messages, {"merchant_id": merchant_id, **cols})
    return {int(r["id"]): r["message_id"] for r in rows}


async def link_message(merchant_id: UUID, outbound_id: int, message_id: UUID) -> None:
    """The message a SENT row was stored as."""
    await execute(
        Q.link_message, {"merchant_id": merchant_id, "id": outbound_id, "message_id": message_id}
    )


async def delete_pending_message(merchant_id: UUID, message_id: UUID) -> None:
    """Drop an agent's PENDING message whose DM was stored from X's echo already."""
    await execute(Q.delete_pending_message, {"merchant_id": merchant_id, "id": message_id})


async def extend_lease(merchant_id: UUID, ids: Sequence[int], until: datetime, reason: str) -> None:
    """SENDING rows stay their holder's until ``until``; ``reason`` says what is pending."""
    await execute(
        Q.extend_lease,
        {"merchant_id": merchant_id, "ids": list(ids), "until": until, "reason": reason},
    )


async def message_by_x_event_id(merchant_id: UUID, x_event_id: str) -> Row | None:
    """The message already stored for that X event (``id``, ``conversation_id``,
    ``origin``), if any."""
    return await fetch_one(
        Q.message_by_x_event_id, {"merchant_id": merchant_id, "x_event_id": x_event_id}
    )


async def adopt_echo(
    merchant_id: UUID,
    message_id: UUID,
    *,
    origin: str,
    is_from_bot: bool,
    flow_id: UUID | None,
    quick_replies: list[dict[str, Any]],
) -> None:
    """A message stored from the webhook echo as sent from another client was this
    ledger's DM: it takes the row's origin, bot flag, flow and quick replies."""
    await execute(
        Q.adopt_echo,
        {
            "merchant_id": merchant_id,
            "id": message_id,
            "origin": origin,
            "is_from_bot": is_from_bot,
            "flow_id": flow_id,
            "quick_replies": Jsonb(quick_replies),
        },
    )


# ------------------------------------------------------------------ recovery


async def stale_sending(limit: int) -> list[Row]:
    """Cross-merchant: SENDING rows whose lease ran out, locked for this transaction,
    with the contact's ``x_user_id``."""
    return await fetch_all(Q.stale_sending, {"limit": limit})


async def sent_event_ids(merchant_id: UUID, contact_id: UUID, since: datetime) -> set[str]:
    """X event ids of DMs already recorded to the contact since ``since`` (by any
    sender; echoes stored as sent from another client excepted)."""
    rows = await fetch_all(
        Q.sent_event_ids, {"merchant_id": merchant_id, "contact_id": contact_id, "since": since}
    )
    return {r["x_event_id"] for r in rows}
