"""Proto ⇄ domain and row conversions for contacts (shared by the servicer, validation and
other modules that need them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from google.protobuf.struct_pb2 import Struct

from mktx.v1 import contacts_pb2

from ..core import prototime
from ..domain import contacts as domain
from ..store import Row, etag_of
from ..store import contacts as store
from .common import struct_to_dict, ts

P = contacts_pb2

SOURCE_FROM_DB: dict[str, Any] = {
    domain.SOURCE_INBOUND_MESSAGE: P.CONTACT_SOURCE_INBOUND_MESSAGE,
    domain.SOURCE_NEW_FOLLOWER: P.CONTACT_SOURCE_NEW_FOLLOWER,
    domain.SOURCE_MENTION: P.CONTACT_SOURCE_MENTION,
    domain.SOURCE_IMPORT: P.CONTACT_SOURCE_IMPORT,
    domain.SOURCE_MANUAL: P.CONTACT_SOURCE_MANUAL,
}

SOURCE_TO_DB: dict[Any, str] = {v: k for k, v in SOURCE_FROM_DB.items()}

#: The contact fields a client may change: update-mask path (= column) -> the stored
#: value taken from a ``Contact`` message. UpdateContact writes the paths it is given;
#: the tag and attribute RPCs write one of them; the store writes them all.
EDITABLE: dict[str, Callable[[P.Contact], Any]] = {
    "tags": lambda c: domain.normalize_tags(c.tags),
    "attributes": lambda c: attributes_of(c.attributes),
    "time_zone": lambda c: c.time_zone,
    "language": lambda c: c.language,
    "opted_out": lambda c: c.opted_out,
}


def struct_of(data: dict[str, Any]) -> Struct:
    s = Struct()
    s.update(data)
    return s


def contact_to_proto(row: Row, engagement: Row | None = None) -> P.Contact:
    first = row["first_interaction_at"]
    last = row["last_interaction_at"]
    eng = P.ContactEngagement()
    if engagement is not None:
        if engagement["first_interaction_at"] is not None:
            first = min(x for x in (first, engagement["first_interaction_at"]) if x)
        if engagement["last_interaction_at"] is not None:
            last = max(x for x in (last, engagement["last_interaction_at"]) if x)
        eng.messages_sent = engagement["messages_sent"]
        eng.messages_received = engagement["messages_received"]
        eng.conversation_count = engagement["conversation_count"]
        if engagement["average_response_time"] is not None:
            eng.average_response_time.CopyFrom(
                prototime.duration(engagement["average_response_time"])
            )
    if first is not None:
        eng.first_interaction_time.CopyFrom(prototime.timestamp(first))
    if last is not None:
        eng.last_interaction_time.CopyFrom(prototime.timestamp(last))
    return P.Contact(
        id=str(row["id"]),
        account_id=str(row["account_id"]),
        x_user_id=row["x_user_id"],
        username=row["username"],
        display_name=row["display_name"],
        profile_image_url=row["profile_image_url"],
        source=SOURCE_FROM_DB.get(row["source"], 0),
        follows_account=row["follows_account"],
        follow_time=ts(row.get("follow_time")),
        tags=row["tags"],
        attributes=struct_of(row["attributes"] or {}),
        time_zone=row["time_zone"],
        language=row["language"],
        opted_out=row.get("opted_out", False),
        opt_out_time=ts(row.get("opted_out_at")) if row.get("opted_out") else None,
        first_interaction_time=ts(first),
        last_interaction_time=ts(last),
        engagement=eng,
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag_of(row["id"], row["version"]),
    )


def attributes_of(s: Struct) -> dict[str, Any]:
    return {k: domain.integral(v) for k, v in struct_to_dict(s).items()}


def contact_filter(req: Any) -> store.ContactFilter:
    tags = domain.normalize_tags(req.tags) or None
    all_mode = req.tag_match_mode == P.TAG_MATCH_MODE_ALL
    attributes = attributes_of(req.attributes) if req.attributes.fields else None
    return store.ContactFilter(
        account_id=UUID(req.account_id) if req.account_id else None,
        pattern=domain.search_pattern(req.query),
        prefix=domain.search_prefix(req.query),
        tags_any=None if all_mode else tags,
        tags_all=tags if all_mode else None,
        attributes=attributes,
        source=SOURCE_TO_DB.get(req.source),
    )


def new_contact(
    c: P.Contact,
    account_id: UUID,
    source: str,
    extra_tags: Sequence[str] = (),
) -> store.NewContact:
    return store.NewContact(
        account_id=account_id,
        x_user_id=c.x_user_id,
        username=c.username.removeprefix("@"),
        display_name=c.display_name,
        profile_image_url=c.profile_image_url,
        source=source,
        tags=domain.normalize_tags([*c.tags, *extra_tags]),
        attributes=attributes_of(c.attributes),
        time_zone=c.time_zone,
        language=c.language,
        opted_out=c.opted_out,
    )
