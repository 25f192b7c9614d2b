"""ContactsService: proto in, domain call, proto out. No SQL here.

ImportContacts (client streaming) and ExportContacts (server streaming) are declared
``db=False`` and borrow pooled connections themselves: import commits each batch in
its own short transaction, export reads every batch from one REPEATABLE READ
snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.empty_pb2 import Empty
from google.protobuf.struct_pb2 import Struct

from mktx.v1 import contacts_pb2, contacts_pb2_grpc

from ..core.context import current_principal
from ..core.db import use_connection
from ..core.errors import FieldViolation, InvalidArgument, NotFound
from ..core.pagination import effective_page_size
from ..deps import Deps
from ..domain import contacts as domain
from ..mapping.common import ts
from ..store import Row, check_etag, etag_of
from ..store import contacts as store
from ..store.events import append_event
from ..store.idempotency import create_once
from ..validation import contacts as rules
from ..validation.rules import enum_field, uuid_field
from ..validation.rules import request_id as request_id_rule
from .conversations import list_conversations_page

P = contacts_pb2

SOURCE_FROM_DB: dict[str, Any] = {
    domain.SOURCE_INBOUND_MESSAGE: P.CONTACT_SOURCE_INBOUND_MESSAGE,
    domain.SOURCE_NEW_FOLLOWER: P.CONTACT_SOURCE_NEW_FOLLOWER,
    domain.SOURCE_MENTION: P.CONTACT_SOURCE_MENTION,
    domain.SOURCE_IMPORT: P.CONTACT_SOURCE_IMPORT,
    domain.SOURCE_MANUAL: P.CONTACT_SOURCE_MANUAL,
}
SOURCE_TO_DB: dict[Any, str] = {v: k for k, v in SOURCE_FROM_DB.items()}

EXPORT_BATCH = 500
IMPORT_MAX_ROWS_PER_MESSAGE = 1_000
IMPORT_MAX_ROWS = 100_000
IMPORT_MAX_ERRORS = 1_000
IMPORT_MAX_OPTION_TAGS = 20
#: The columns UpdateContact and the tag/attribute RPCs write (store.update takes all).
EDITABLE_COLUMNS = ("tags", "attributes", "time_zone", "language", "opted_out")


def _struct(data: dict[str, Any]) -> Struct:
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
            d = Duration()
            d.FromTimedelta(engagement["average_response_time"])
            eng.average_response_time.CopyFrom(d)
    if first is not None:
        eng.first_interaction_time.FromDatetime(first.astimezone(UTC))
    if last is not None:
        eng.last_interaction_time.FromDatetime(last.astimezone(UTC))
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
        attributes=_struct(row["attributes"] or {}),
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


def _attrs(s: Struct) -> dict[str, Any]:
    return {k: domain.integral(v) for k, v in rules.struct_to_dict(s).items()}


def _filter(req: Any) -> store.ContactFilter:
    tags = domain.normalize_tags(req.tags) or None
    all_mode = req.tag_match_mode == P.TAG_MATCH_MODE_ALL
    attributes = _attrs(req.attributes) if req.attributes.fields else None
    return store.ContactFilter(
        account_id=UUID(req.account_id) if req.account_id else None,
        pattern=domain.search_pattern(req.query),
        prefix=domain.search_prefix(req.query),
        tags_any=None if all_mode else tags,
        tags_all=tags if all_mode else None,
        attributes=attributes,
        source=SOURCE_TO_DB.get(req.source),
    )


def _new_contact(
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
        attributes=_attrs(c.attributes),
        time_zone=c.time_zone,
        language=c.language,
        opted_out=c.opted_out,
    )


class ContactsServicer(contacts_pb2_grpc.ContactsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _load(self, merchant: UUID, contact_id: str, *, for_update: bool = False) -> Row:
        row = await store.get(merchant, UUID(contact_id), for_update=for_update)
        if row is None:
            raise NotFound("contact", contact_id)
        return row

    async def _save(self, merchant: UUID, row: Row, **changes: Any) -> P.Contact:
        """Write the editable fields (``changes`` over the row's current values),
        record ``contact.updated`` naming the changed fields, return the new view."""
        values: dict[str, Any] = {f: changes.get(f, row[f]) for f in EDITABLE_COLUMNS}
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
        if await store.account(merchant, account_id) is None:
            raise NotFound("account", request.contact.account_id)
        new = _new_contact(request.contact, account_id, domain.SOURCE_MANUAL)

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
        f = _filter(request)
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
        c = request.contact
        paths = list(dict.fromkeys(request.update_mask.paths))
        changes: dict[str, Any] = {}
        if "tags" in paths:
            changes["tags"] = domain.normalize_tags(c.tags)
        if "attributes" in paths:
            changes["attributes"] = _attrs(c.attributes)
        if "time_zone" in paths:
            changes["time_zone"] = c.time_zone
        if "language" in paths:
            changes["language"] = c.language
        if "opted_out" in paths:
            changes["opted_out"] = c.opted_out
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
        merged = domain.merge_attributes(row["attributes"] or {}, _attrs(request.attributes))
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

    async def ExportContacts(
        self, request: P.ExportContactsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[P.ExportContactsResponse]:
        merchant = current_principal().merchant_id
        f = _filter(request)
        # One read-only snapshot for the whole export; batches are small, so the
        # client's pace only holds this read-only transaction, never a lock.
        async with use_connection(self._deps.pool, isolation="repeatable_read", read_only=True):
            if f.account_id and await store.account(merchant, f.account_id) is None:
                raise NotFound("account", request.account_id)
            segment = None
            if request.segment_id:
                segment = await store.segment_conditions(merchant, UUID(request.segment_id))
                if segment is None:
                    raise NotFound("segment", request.segment_id)
            after: UUID | None = None
            while True:
                rows = await store.export_batch(
                    merchant, f, after_id=after, limit=EXPORT_BATCH, segment=segment
                )
                if not rows:
                    break
                after = rows[-1]["id"]
                yield P.ExportContactsResponse(contacts=[contact_to_proto(r) for r in rows])
                if len(rows) < EXPORT_BATCH:
                    break

    async def ImportContacts(
        self,
        request_iterator: AsyncIterator[P.ImportContactsRequest],
        context: grpc.aio.ServicerContext,
    ) -> P.ImportContactsResponse:
        merchant = current_principal().merchant_id
        first: P.ImportContactsRequest | None = None
        async for msg in request_iterator:
            first = msg
            break
        if first is None or not first.HasField("options"):
            raise InvalidArgument.single("options", "is required in the first message")
        opts = first.options
        v = uuid_field(opts.account_id, "options.account_id")
        v += request_id_rule(opts.request_id, "options.request_id")
        if len(opts.tags) > IMPORT_MAX_OPTION_TAGS:
            v.append(FieldViolation("options.tags", f"at most {IMPORT_MAX_OPTION_TAGS} tags"))
        v += [
            x for x in domain.validate_tags(opts.tags, "options.tags") if x.field != "options.tags"
        ]
        v += enum_field(
            opts.conflict_policy, "options.conflict_policy", P.ImportConflictPolicy, required=False
        )
        if v:
            raise InvalidArgument(v)
        account_id = UUID(opts.account_id)
        async with use_connection(self._deps.pool):
            if await store.account(merchant, account_id) is None:
                raise NotFound("account", opts.account_id)
            if opts.request_id and not opts.validate_only:
                done = await store.get_import(merchant, opts.request_id)
                if done is not None:
                    return P.ImportContactsResponse(**done)

        importer = _Importer(self._deps, merchant, account_id, opts)
        await importer.feed(first, 0)
        index = 1
        async for msg in request_iterator:
            if msg.HasField("options"):
                raise InvalidArgument.single(
                    f"requests[{index}].options", "is only allowed in the first message"
                )
            await importer.feed(msg, index)
            index += 1
        summary = importer.summary()
        if opts.request_id and not opts.validate_only:
            async with use_connection(self._deps.pool):
                await store.record_import(merchant, opts.request_id, account_id, summary)
        return P.ImportContactsResponse(**summary)


class _Importer:
    """Validates rows and upserts them one message (up to 1,000 rows) per transaction."""

    def __init__(
        self, deps: Deps, merchant: UUID, account_id: UUID, opts: P.ImportContactsOptions
    ) -> None:
        self._deps = deps
        self._merchant = merchant
        self._account_id = account_id
        self._merge = opts.conflict_policy != P.IMPORT_CONFLICT_POLICY_SKIP
        self._validate_only = opts.validate_only
        self._extra_tags = domain.normalize_tags(opts.tags)
        self._seen: set[str] = set()
        self.received = self.created = self.updated = self.skipped = self.failed = 0
        self.errors: list[dict[str, Any]] = []
        self.truncated = False
        self._index: dict[str, int] = {}

    def _error(self, row_index: int, x_user_id: str, field: str, description: str) -> None:
        if len(self.errors) < IMPORT_MAX_ERRORS:
            self.errors.append(
                {
                    "row_index": row_index,
                    "x_user_id": x_user_id,
                    "field": field,
                    "description": description,
                }
            )
        else:
            self.truncated = True

    async def feed(self, msg: P.ImportContactsRequest, index: int) -> None:
        if len(msg.contacts) > IMPORT_MAX_ROWS_PER_MESSAGE:
            raise InvalidArgument.single(
                f"requests[{index}].contacts",
                f"at most {IMPORT_MAX_ROWS_PER_MESSAGE} rows per message",
            )
        if self.received + len(msg.contacts) > IMPORT_MAX_ROWS:
            raise InvalidArgument.single("contacts", f"at most {IMPORT_MAX_ROWS} rows in total")
        batch: list[store.NewContact] = []
        for c in msg.contacts:
            row_index = self.received
            self.received += 1
            problems = rules.contact_fields(c, prefix="")
            problems = [FieldViolation(p.field.lstrip("."), p.description) for p in problems]
            if c.account_id and c.account_id != str(self._account_id):
                problems.append(
                    FieldViolation("account_id", "must be empty or equal options.account_id")
                )
            if problems:
                self.failed += 1
                for p in problems:
                    self._error(row_index, c.x_user_id, p.field, p.description)
                continue
            if c.x_user_id in self._seen:
                self.skipped += 1
                continue
            new = _new_contact(c, self._account_id, domain.SOURCE_IMPORT, self._extra_tags)
            if len(new.tags) > domain.MAX_TAGS:
                self.failed += 1
                self._error(
                    row_index, c.x_user_id, "tags", f"at most {domain.MAX_TAGS} tags per contact"
                )
                continue
            self._seen.add(c.x_user_id)
            self._index[c.x_user_id] = row_index
            batch.append(new)
        if batch:
            await self._write(batch)

    async def _write(self, batch: list[store.NewContact]) -> None:
        ids = [c.x_user_id for c in batch]
        if self._validate_only:
            async with use_connection(self._deps.pool):
                existing = await store.existing_for_import(
                    self._merchant, self._account_id, ids, lock=False
                )
            n_existing = sum(1 for c in batch if c.x_user_id in existing)
            self.created += len(batch) - n_existing
            if self._merge:
                self.updated += n_existing
            else:
                self.skipped += n_existing
            return
        async with use_connection(self._deps.pool, transaction=True):
            existing = await store.existing_for_import(
                self._merchant, self._account_id, ids, lock=True
            )
            new = [c for c in batch if c.x_user_id not in existing]
            inserted = await store.import_insert(self._merchant, self._account_id, new)
            self.created += inserted
            self.skipped += len(new) - inserted  # created concurrently meanwhile
            updates: list[tuple[UUID, store.NewContact]] = []
            for c in batch:
                cur = existing.get(c.x_user_id)
                if cur is None:
                    continue
                if not self._merge:
                    self.skipped += 1
                    continue
                merged = _merged(cur, c)
                if merged is None:
                    self.failed += 1
                    self._error(
                        self._index.get(c.x_user_id, -1),
                        c.x_user_id,
                        "tags",
                        "merged with the existing contact, it would exceed the"
                        " tag or attribute limits",
                    )
                    continue
                updates.append((cur["id"], merged))
            await store.import_update(self._merchant, updates)
            self.updated += len(updates)

    def summary(self) -> dict[str, Any]:
        return {
            "received_count": self.received,
            "created_count": self.created,
            "updated_count": self.updated,
            "skipped_count": self.skipped,
            "failed_count": self.failed,
            "errors": self.errors[:IMPORT_MAX_ERRORS],
            "errors_truncated": self.truncated,
            "validate_only": self._validate_only,
        }


def _merged(cur: Row, c: store.NewContact) -> store.NewContact | None:
    """MERGE policy: non-empty row fields overwrite, tags are added, attributes merged.
    None when the result would break the per-contact limits."""
    tags = domain.normalize_tags([*cur["tags"], *c.tags])
    attributes = domain.merge_attributes(cur["attributes"] or {}, c.attributes)
    if len(tags) > domain.MAX_TAGS or domain.check_attribute_totals(attributes):
        return None
    return store.NewContact(
        account_id=c.account_id,
        x_user_id=c.x_user_id,
        username=c.username or cur["username"],
        display_name=c.display_name or cur["display_name"],
        profile_image_url=c.profile_image_url or cur["profile_image_url"],
        source=domain.SOURCE_IMPORT,
        tags=tags,
        attributes=attributes,
        time_zone=c.time_zone or cur["time_zone"],
        language=c.language or cur["language"],
    )
