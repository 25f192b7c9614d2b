"""Proto ⇄ domain and row conversions for templates (shared by the servicer, validation and
other modules that need them)."""

from __future__ import annotations

from mktx.v1 import common_pb2, templates_pb2

from ..domain import templates as domain
from ..store import Row, etag_of
from .common import ts

TYPE_TO_DB = {
    templates_pb2.TEMPLATE_TYPE_TEXT: domain.TYPE_TEXT,
    templates_pb2.TEMPLATE_TYPE_QUICK_REPLY: domain.TYPE_QUICK_REPLY,
    templates_pb2.TEMPLATE_TYPE_CARD: domain.TYPE_CARD,
}

TYPE_FROM_DB = {v: k for k, v in TYPE_TO_DB.items()}

#: Update mask paths and the draft attribute each one sets.
UPDATABLE = (
    "name",
    "description",
    "content",
    "quick_replies",
    "card_media_url",
    "card_buttons",
    "tags",
)


def draft_from_proto(t: templates_pb2.Template) -> domain.TemplateDraft:
    return domain.TemplateDraft(
        name=t.name.strip(),
        type=TYPE_TO_DB.get(t.type, ""),
        content=t.content,
        description=t.description,
        quick_replies=[
            domain.QuickReply(q.label, q.description, q.metadata) for q in t.quick_replies
        ],
        card_media_url=t.card_media_url,
        card_buttons=[domain.Button(b.label, b.url) for b in t.card_buttons],
        tags=list(t.tags),
    )


def template_to_proto(row: Row) -> templates_pb2.Template:
    return templates_pb2.Template(
        id=str(row["id"]),
        name=row["name"],
        description=row["description"],
        type=TYPE_FROM_DB[row["type"]],
        content=row["content"],
        quick_replies=[common_pb2.QuickReplyOption(**q) for q in row["quick_replies"]],
        card_media_url=row["card_media_url"],
        card_buttons=[common_pb2.CardButton(**b) for b in row["card_buttons"]],
        variables=row["variables"],
        tags=row["tags"],
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag_of(row["id"], row["version"]),
    )
