"""Splitting an Account Activity delivery into inbox events (no I/O).

X delivers one JSON object per POST: ``for_user_id`` plus one or more arrays of
events of one kind (``direct_message_events`` with a ``users`` map,
``follow_events``, ``direct_message_mark_read_events``, ``tweet_create_events``)
or a ``user_event``. Each event becomes one ``webhook_inbox`` row whose payload is
self-contained: ``{"for_user_id", "type", "event", "users"}`` where ``users`` holds
only the profiles the event names.

Event keys (``webhook_inbox.event_key``, unique). They start with ``for_user_id``
because X delivers the same event once per subscribed user it concerns: a DM
between two connected accounts, or a post mentioning two of them, must be
recorded for each.

==================================  ==============================================
direct_message_events               ``<for>:dm:<event id>``
follow_events                       ``<for>:follow:<type>:<source>:<target>:<ms>``
direct_message_mark_read_events     ``<for>:read:<sender id>:<last_read_event_id>``
tweet_create_events                 ``<for>:tweet:<id_str>``
user_event (revoke)                 ``<for>:revoke:<sha256 of the canonical JSON>``
==================================  ==============================================

An event lacking the fields its key needs is keyed by a SHA-256 of its canonical
JSON (``<for>:<type>:h:<hex>``): it is still recorded (and then marked DEAD by the
processor as malformed), and a redelivery still deduplicates.

Other kinds (typing indicators, favorites, deletes, ...) are not recorded; they
are counted as unhandled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .payload import as_str, recipient_id, user_id

__all__ = [
    "HANDLED_TYPES",
    "BadPayload",
    "InboxEvent",
    "split_delivery",
]

DM = "direct_message_events"
FOLLOW = "follow_events"
READ = "direct_message_mark_read_events"
TWEET = "tweet_create_events"
USER_EVENT = "user_event"

HANDLED_TYPES = (DM, FOLLOW, READ, TWEET, USER_EVENT)

# Top-level keys that carry context rather than events.
_CONTEXT_KEYS = frozenset({"for_user_id", "users", "apps", "user_has_blocked", "source"})


class BadPayload(ValueError):
    """The delivery is valid JSON but not an Account Activity payload."""


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """One X event, as recorded in ``webhook_inbox``.

    ``shard`` names the X users whose state the event touches (the account and the
    counterpart), so the processor can keep each contact's events on one worker, in
    order, without lock contention between workers.
    """

    event_key: str
    for_user_id: str
    event_type: str
    payload: dict[str, Any]
    shard: str

    def payload_json(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False)


def _canonical_hash(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def _subset(users: Any, *ids: str) -> dict[str, Any]:
    if not isinstance(users, dict):
        return {}
    return {uid: users[uid] for uid in ids if uid and uid in users}


def _key_and_shard(for_user_id: str, event_type: str, event: Any) -> tuple[str | None, str]:
    """The event key (None when the fields it needs are missing) and the shard."""
    if not isinstance(event, dict):
        return None, for_user_id
    if event_type == DM:
        mc = event.get("message_create")
        mc = mc if isinstance(mc, dict) else {}
        sender = as_str(mc.get("sender_id"))
        recipient = recipient_id(mc.get("target"))
        other = recipient if sender == for_user_id else sender
        eid = as_str(event.get("id"))
        return (f"{for_user_id}:dm:{eid}" if eid else None), f"{for_user_id}:{other}"
    if event_type == FOLLOW:
        kind = as_str(event.get("type"))
        src, tgt = user_id(event.get("source")), user_id(event.get("target"))
        ts = as_str(event.get("created_timestamp"))
        other = src if tgt == for_user_id else tgt
        ok = kind and src and tgt and ts
        return (f"{for_user_id}:follow:{kind}:{src}:{tgt}:{ts}" if ok else None), (
            f"{for_user_id}:{other}"
        )
    if event_type == READ:
        sender = as_str(event.get("sender_id"))
        last = as_str(event.get("last_read_event_id"))
        recipient = recipient_id(event.get("target"))
        other = recipient if sender == for_user_id else sender
        ok = sender and last
        return (f"{for_user_id}:read:{sender}:{last}" if ok else None), f"{for_user_id}:{other}"
    if event_type == TWEET:
        tid = as_str(event.get("id_str")) or as_str(event.get("id"))
        author = user_id(event.get("user"))
        return (f"{for_user_id}:tweet:{tid}" if tid else None), f"{for_user_id}:{author}"
    if event_type == USER_EVENT:
        return f"{for_user_id}:revoke:{_canonical_hash(event)}", f"{for_user_id}:"
    return None, for_user_id


def _users_for(event_type: str, event: Any, users: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {}
    if event_type == DM:
        mc = event.get("message_create")
        if isinstance(mc, dict):
            return _subset(users, as_str(mc.get("sender_id")), recipient_id(mc.get("target")))
    if event_type == READ:
        return _subset(users, as_str(event.get("sender_id")), recipient_id(event.get("target")))
    return {}


def split_delivery(body: Any) -> tuple[list[InboxEvent], list[str]]:
    """Split a parsed delivery into inbox events.

    Returns the events to record and the names of unhandled kinds present (for
    metrics). Raises :class:`BadPayload` when the body is not an object or has no
    ``for_user_id``.
    """
    if not isinstance(body, dict):
        raise BadPayload("payload must be a JSON object")
    for_user_id = as_str(body.get("for_user_id"))
    if not for_user_id:
        raise BadPayload("for_user_id is required")
    users = body.get("users")
    events: list[InboxEvent] = []
    unhandled: list[str] = []
    for kind, value in body.items():
        if kind in _CONTEXT_KEYS:
            continue
        if kind not in HANDLED_TYPES:
            unhandled.append(kind)
            continue
        items: list[Any]
        if kind == USER_EVENT:
            if not (isinstance(value, dict) and "revoke" in value):
                unhandled.append(kind)
                continue
            items = [value]
        elif isinstance(value, list):
            items = value
        else:
            items = [value]
        for event in items:
            key, shard = _key_and_shard(for_user_id, kind, event)
            if key is None:
                key = f"{for_user_id}:{kind}:h:{_canonical_hash(event)}"
            payload = {
                "for_user_id": for_user_id,
                "type": kind,
                "event": event,
                "users": _users_for(kind, event, users),
            }
            events.append(InboxEvent(key, for_user_id, kind, payload, shard))
    return events, unhandled
