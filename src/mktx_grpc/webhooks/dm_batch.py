"""The set-based path for runs of plain inbound DMs.

When a batch (:mod:`.batch`) holds consecutive inbound DMs for connected accounts
(no echoes, no other kinds), they are applied with a few parallel-array statements
instead of one statement sequence per event: contacts upserted together,
conversations found, woken, reopened or opened together (by the same rule as the
per-event path, :func:`mktx_grpc.domain.conversations.choose_conversation`),
messages, counters, interactions and domain events inserted together. The effects
are exactly those of :func:`.handlers.apply_event` applied to each in order; when
that cannot be guaranteed (a duplicate message, a race on a conversation) the run
raises :class:`FastPathMiss` and the caller applies the events one by one.
Switched by ``IngestOptions.set_based_dms``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from ..domain import conversations as domain
from ..store import Row
from ..store import ingest as store
from ..store.events import append_events
from .events import DM
from .handlers import Account, event_payload
from .options import IngestOptions
from .payload import MessageContent, as_str, message_content, ms_time, profile, recipient_id

__all__ = ["FastPathMiss", "InboundDm", "apply_dm_run", "plain_inbound_dm"]


class FastPathMiss(Exception):
    """The run met something the set-based path does not decide (a duplicate, a
    race on a conversation): roll it back and apply the events one by one."""


@dataclass(frozen=True, slots=True)
class InboundDm:
    """A plain inbound DM, read out of its inbox payload."""

    account: Account
    event_id: str
    sender: str
    x_conv: str
    at: datetime
    content: MessageContent
    profile: dict[str, str]


def plain_inbound_dm(
    account: Account | None, payload: Mapping[str, Any], received_at: datetime
) -> InboundDm | None:
    """The event as an inbound DM the set-based path can take, or None (echoes,
    other kinds, unknown accounts and malformed events take the per-event path)."""
    if account is None or payload.get("type") != DM:
        return None
    ev = payload.get("event")
    if not isinstance(ev, dict):
        return None
    mc = ev.get("message_create")
    event_id = as_str(ev.get("id"))
    if not isinstance(mc, dict) or not event_id:
        return None
    sender = as_str(mc.get("sender_id"))
    recipient = recipient_id(mc.get("target"))
    me = account.x_user_id
    if not sender or sender == me or recipient != me:
        return None
    users = payload.get("users")
    user = users.get(sender) if isinstance(users, dict) else None
    return InboundDm(
        account,
        event_id,
        sender,
        domain.x_conversation_id(me, sender),
        ms_time(ev.get("created_timestamp"), received_at),
        message_content(mc.get("message_data")),
        profile(user),
    )


async def apply_dm_run(dms: Sequence[InboundDm], options: IngestOptions) -> None:
    """Apply plain inbound DMs with a few set-based statements, with exactly the
    effects of applying them one by one (contacts, conversations found, woken,
    reopened or opened, messages, counters, interactions, domain events in event
    order). Raises FastPathMiss when that cannot be guaranteed."""
    # Contacts: one row per (account, sender), widened over the run.
    contacts: dict[tuple[UUID, str], dict[str, Any]] = {}
    for d in dms:
        c = contacts.setdefault(
            (d.account.id, d.sender),
            {
                "account": d.account,
                "first": d.at,
                "last": d.at,
                "profile": d.profile,
                "x_conv": d.x_conv,
            },
        )
        c["first"], c["last"] = min(c["first"], d.at), max(c["last"], d.at)
        if d.at >= c["last"]:
            c["profile"] = d.profile or c["profile"]
    keys = sorted(contacts, key=lambda k: (str(k[0]), k[1]))  # a stable lock order
    accts = [contacts[k]["account"] for k in keys]
    rows = await store.upsert_contacts_batch(
        merchant_ids=[a.merchant_id for a in accts],
        account_ids=[a.id for a in accts],
        x_user_ids=[k[1] for k in keys],
        usernames=[contacts[k]["profile"].get("username", "") for k in keys],
        names=[contacts[k]["profile"].get("display_name", "") for k in keys],
        images=[contacts[k]["profile"].get("profile_image_url", "") for k in keys],
        first_ats=[contacts[k]["first"] for k in keys],
        last_ats=[contacts[k]["last"] for k in keys],
    )
    for r in rows:
        c = contacts[(r["account_id"], r["x_user_id"])]
        c["id"], c["created"] = r["id"], bool(r["created"])
    if len(rows) != len(keys):
        raise FastPathMiss("contact upsert mismatch")

    # Conversations, by the rule of domain.choose_conversation. Within a run, the
    # contact's earliest message decides whether a closed conversation reopens.
    window = timedelta(seconds=options.reopen_window)
    by_contact = {contacts[k]["id"]: contacts[k] for k in keys}
    cols = {
        "merchant_ids": [a.merchant_id for a in accts],
        "account_ids": [a.id for a in accts],
        "contact_ids": [contacts[k]["id"] for k in keys],
    }
    for r in await store.live_conversations_for_update_batch(**cols):
        c = by_contact[r["contact_id"]]
        c["conv"] = r["id"]
        c["choice"] = domain.choose_conversation(r["status"], None, c["first"], window)
    missing = [c for c in by_contact.values() if "conv" not in c]
    known = [c for c in missing if not c["created"]]
    closed: dict[UUID, Row] = {}
    if known:
        for r in await store.latest_closed_conversations_batch(
            merchant_ids=[c["account"].merchant_id for c in known],
            account_ids=[c["account"].id for c in known],
            contact_ids=[c["id"] for c in known],
        ):
            closed[r["contact_id"]] = r
    reopen, fresh = [], []
    for c in missing:
        old = closed.get(c["id"])
        closed_at = None if old is None else old["closed_at"]
        c["choice"] = domain.choose_conversation(None, closed_at, c["first"], window)
        if c["choice"].route is domain.Route.REOPEN:
            assert old is not None
            c["conv"] = old["id"]
            reopen.append(c)
        else:
            fresh.append(c)
    if reopen:
        done = await store.reopen_conversations_batch(
            merchant_ids=[c["account"].merchant_id for c in reopen],
            ids=[c["conv"] for c in reopen],
        )
        if len(done) != len(reopen):
            raise FastPathMiss("a conversation changed while reopening")
    if fresh:
        opened = await store.open_conversations_batch(
            merchant_ids=[c["account"].merchant_id for c in fresh],
            account_ids=[c["account"].id for c in fresh],
            contact_ids=[c["id"] for c in fresh],
            x_conversation_ids=[c["x_conv"] for c in fresh],
        )
        if len(opened) != len(fresh):
            raise FastPathMiss("a conversation appeared while opening")
        for r in opened:
            by_contact[r["contact_id"]]["conv"] = r["id"]

    # Messages, then per-conversation counters, interactions and domain events.
    message_ids = [uuid4() for _ in dms]
    dm_contacts = [contacts[(d.account.id, d.sender)] for d in dms]
    inserted = await store.insert_inbound_messages_batch(
        ids=message_ids,
        merchant_ids=[d.account.merchant_id for d in dms],
        conversation_ids=[c["conv"] for c in dm_contacts],
        types=[d.content.type for d in dms],
        texts=[d.content.text for d in dms],
        attachments=[json.dumps(d.content.attachments) for d in dms],
        senders=[d.sender for d in dms],
        x_event_ids=[d.event_id for d in dms],
        qr_metadata=[d.content.quick_reply_metadata for d in dms],
        ats=[d.at for d in dms],
    )
    if len(inserted) != len(dms):
        raise FastPathMiss("a message was already stored")
    per_conv: dict[UUID, dict[str, Any]] = {}
    for d, c in zip(dms, dm_contacts, strict=True):
        agg = per_conv.setdefault(
            c["conv"],
            {"m": d.account.merchant_id, "n": 0, "at": d.at, "preview": "", "xc": d.x_conv},
        )
        agg["n"] += 1
        if d.at >= agg["at"]:
            agg["at"], agg["preview"] = d.at, domain.preview(d.content.text, d.content.media_kinds)
    conv_ids = list(per_conv)
    await store.record_inbound_messages_batch(
        merchant_ids=[per_conv[i]["m"] for i in conv_ids],
        ids=conv_ids,
        ns=[per_conv[i]["n"] for i in conv_ids],
        ats=[per_conv[i]["at"] for i in conv_ids],
        previews=[per_conv[i]["preview"] for i in conv_ids],
        x_conversation_ids=[per_conv[i]["xc"] for i in conv_ids],
    )
    await store.insert_interactions_batch(
        merchant_ids=[d.account.merchant_id for d in dms],
        contact_ids=[c["id"] for c in dm_contacts],
        kinds=["MESSAGE_IN"] * len(dms),
        ats=[d.at for d in dms],
        refs=[d.event_id for d in dms],
    )
    events: list[dict[str, Any]] = []

    def emit(d: InboundDm, type_: str, agg: UUID, **payload: Any) -> None:
        events.append(
            {
                "merchant_id": d.account.merchant_id,
                "type": type_,
                "aggregate_id": agg,
                "payload": event_payload(d.account, **payload),
            }
        )

    for d, c, mid in zip(dms, dm_contacts, message_ids, strict=True):
        if c.pop("created", False):
            emit(
                d,
                "contact.created",
                c["id"],
                contact_id=c["id"],
                x_user_id=d.sender,
                source="INBOUND_MESSAGE",
            )
        choice: domain.ConversationChoice | None = c.pop("choice", None)
        if choice is not None and choice.event_type is not None:
            emit(
                d,
                choice.event_type,
                c["conv"],
                conversation_id=c["conv"],
                contact_id=c["id"],
                **choice.event_fields(),
            )
        emit(
            d,
            "message.received",
            c["conv"],
            message_id=mid,
            conversation_id=c["conv"],
            contact_id=c["id"],
            direction="INBOUND",
            status="DELIVERED",
            x_event_id=d.event_id,
        )
    await append_events(events)
