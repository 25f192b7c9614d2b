"""ContactsService: proto in, domain call, proto out. No SQL here.

ImportContacts (client streaming) and ExportContacts (server streaming) are
``operations/contacts.py``: import commits each message in its own short
transaction, export reads every batch from one REPEATABLE READ snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

import grpc
from google.protobuf.empty_pb2 import Empty

from mktx.v1 import contacts_pb2_grpc

from ..core.context import current_principal
from ..core.errors import InvalidArgument, NotFound
from ..core.pagination import effective_page_size
from ..deps import Deps
from ..domain import contacts as domain
from ..mapping.contacts import (
    EDITABLE,
    P,
    attributes_of,
    contact_filter,
    contact_to_proto,
    new_contact,
)
from ..operations.contacts import export_contacts, import_contacts
from ..operations.conversations import list_conversations_page
from ..store import Row, check_etag
from ..store import accounts as accounts_store
from ..store import contacts as store
from ..store.events import append_event
from ..store.idempotency import create_once

EXPORT_BATCH = 500
IMPORT_MAX_ROWS_PER_MESSAGE = 1_000
IMPORT_MAX_ROWS = 100_000
IMPORT_MAX_ERRORS = 1_000
IMPORT_MAX_OPTION_TAGS = 20


class ContactsServicer(contacts_pb2_grpc.ContactsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _load(self, merchant: UUID, contact_id: str, *, for_update: bool = False) -> Row:
        if for_update or not self._deps.settings.coalesce_reads:
            row = await store.get(merchant, UUID(contact_id), for_update=for_update)
        else:
            row = await store.read_one(merchant, UUID(contact_id))
        if row is None:
            raise NotFound("contact", contact_id)
        return row

    async def _save(self, merchant: UUID, row: Row, **changes: Any) -> P.Contact:
        """Write the editable fields (``changes`` over the row's current values),
        record ``contact.updated`` naming the changed fields, return the new view."""
        values: dict[str, Any] = {f: changes.get(f, row[f]) for f in EDITABLE}
        updated = await store.update(merchant, row["id"], **values)
        await self._changed(merchant, updated, sorted(changes))
        return await self._full(merchant, updated)

    async def _full(self, merchant: UUID, row: Row) -> P.Contact:
        return contact_to_proto(row, await store.engagement(merchant, row["id"]))

    async def _changed(self, merchant: UUID, row: Row, fields: list[str]) -> None:
        await append_event(
            merchant,
            "contact.updated",
            row["id"],
            {
                "contact_id": str(row["id"]),
                "account_id": str(row["account_id"]),
                "fields": fields,
                "actor_user_id": current_principal().user_id,
            },
        )

    async def CreateContact(
        self, request: P.CreateContactRequest, context: grpc.aio.ServicerContext
    ) -> P.Contact:
        merchant = current_principal().merchant_id
        account_id = UUID(request.contact.account_id)
        if await accounts_store.get(merchant, account_id) is None:
            raise NotFound("account", request.contact.account_id)
        new = new_contact(request.contact, account_id, domain.SOURCE_MANUAL)

        async def create() -> tuple[UUID, P.Contact]:
            row = await store.insert(merchant, new)
            await append_event(
                merchant,
                "contact.created",
                row["id"],
                {
                    "contact_id": str(row["id"]),
                    "account_id": str(account_id),
                    "source": row["source"],
                },
            )
            return row["id"], contact_to_proto(row)

        async def load(contact_id: UUID) -> P.Contact:
            return await self._full(merchant, await self._load(merchant, str(contact_id)))

        return await create_once(merchant, "contact", request.request_id, create, load)

    async def GetContact(
        self, request: P.GetContactRequest, context: grpc.aio.ServicerContext
    ) -> P.Contact:
        merchant = current_principal().merchant_id
        return await self._full(merchant, await self._load(merchant, request.id))

    async def ListContacts(
        self, request: P.ListContactsRequest, context: grpc.aio.ServicerContext
    ) -> P.ListContactsResponse:
        merchant = current_principal().merchant_id
        f = contact_filter(request)
        tokens = self._deps.page_tokens
        fingerprint = [
            "contacts",
            str(merchant),
            f.account_id,
            f.pattern,
            f.prefix,
            f.tags_any,
            f.tags_all,
            f.attributes,
            f.source,
        ]
        after: tuple[datetime | None, UUID] | None = None
        if request.page_token:
            keys = tokens.decode(request.page_token, fingerprint)
            try:
                if keys is None:
                    raise ValueError
                after = (datetime.fromisoformat(keys[0]) if keys[0] else None, UUID(keys[1]))
            except (ValueError, IndexError, TypeError):
                raise InvalidArgument.single(
                    "page_token", "is not a valid page token for this query"
                ) from None
        size = effective_page_size(request.page_size)
        rows = await store.list_page(merchant, f, after=after, limit=size + 1)
        next_token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            t = last["last_interaction_at"]
            next_token = tokens.encode([t.isoformat() if t else None, str(last["id"])], fingerprint)
        return P.ListContactsResponse(
            contacts=[contact_to_proto(r) for r in rows], next_page_token=next_token
        )

    async def UpdateContact(
        self, request: P.UpdateContactRequest, context: grpc.aio.ServicerContext
    ) -> P.Contact:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.contact.id, for_update=True)
        check_etag(request.etag, row, "contact")
        paths = dict.fromkeys(request.update_mask.paths)
        changes = {path: EDITABLE[path](request.contact) for path in paths}
        return await self._save(merchant, row, **changes)

    async def AddContactTags(
        self, request: P.AddContactTagsRequest, context: grpc.aio.ServicerContext
    ) -> P.Contact:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id, for_update=True)
        tags = domain.normalize_tags([*row["tags"], *request.tags])
        if len(tags) > domain.MAX_TAGS:
            raise InvalidArgument.single(
                "tags", f"the contact would have {len(tags)} tags; at most {domain.MAX_TAGS}"
            )
        if tags == list(row["tags"]):
            return await self._full(merchant, row)
        return await self._save(merchant, row, tags=tags)

    async def RemoveContactTag(
        self, request: P.RemoveContactTagRequest, context: grpc.aio.ServicerContext
    ) -> P.Contact:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id, for_update=True)
        tag = domain.normalize_tag(request.tag)
        if tag not in row["tags"]:
            return await self._full(merchant, row)
        return await self._save(merchant, row, tags=[t for t in row["tags"] if t != tag])

    async def MergeContactAttributes(
        self, request: P.MergeContactAttributesRequest, context: grpc.aio.ServicerContext
    ) -> P.Contact:
        merchant = current_principal().merchant_id
        row = await self._load(merchant, request.id, for_update=True)
        check_etag(request.etag, row, "contact")
        merged = domain.merge_attributes(row["attributes"] or {}, attributes_of(request.attributes))
        problems = domain.check_attribute_totals(merged)
        if problems:
            raise InvalidArgument(problems)
        return await self._save(merchant, row, attributes=merged)

    async def ListContactConversations(
        self, request: P.ListContactConversationsRequest, context: grpc.aio.ServicerContext
    ) -> P.ListContactConversationsResponse:
        merchant = current_principal().merchant_id
        await self._load(merchant, request.id)
        page = await list_conversations_page(
            self._deps,
            merchant,
            account_id="",
            status=request.status,
            assignee=None,
            contact_id=request.id,
            updated_after=None,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return P.ListContactConversationsResponse(
            conversations=page.conversations, next_page_token=page.next_page_token
        )

    async def DeleteContact(
        self, request: P.DeleteContactRequest, context: grpc.aio.ServicerContext
    ) -> Empty:
        principal = current_principal()
        merchant = principal.merchant_id
        row = await self._load(merchant, request.id, for_update=True)
        check_etag(request.etag, row, "contact")
        conversations = await store.erase(merchant, row["id"], erased_by=principal.user_id)
        for conv in conversations:
            # Ids only: the erased contact's personal content is not repeated here.
            await append_event(
                merchant,
                "conversation.deleted",
                conv["id"],
                {
                    "conversation_id": str(conv["id"]),
                    "account_id": str(conv["account_id"]),
                    "actor_user_id": principal.user_id,
                },
            )
        await append_event(
            merchant,
            "contact.deleted",
            row["id"],
            {
                "contact_id": str(row["id"]),
                "account_id": str(row["account_id"]),
                "actor_user_id": principal.user_id,
            },
        )
        return Empty()

    # ------------------------------------------------------------ streams

    # ------------------------------------------------------------ streams

    async def ExportContacts(
        self, request: P.ExportContactsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[P.ExportContactsResponse]:
        merchant = current_principal().merchant_id
        async for rows in export_contacts(self._deps, merchant, request):
            yield P.ExportContactsResponse(contacts=[contact_to_proto(r) for r in rows])

    async def ImportContacts(
        self,
        request_iterator: AsyncIterator[P.ImportContactsRequest],
        context: grpc.aio.ServicerContext,
    ) -> P.ImportContactsResponse:
        merchant = current_principal().merchant_id
        summary = await import_contacts(self._deps, merchant, request_iterator)
        return P.ImportContactsResponse(**summary)
