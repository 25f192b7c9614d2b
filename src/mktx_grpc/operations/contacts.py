"""ImportContacts and ExportContacts: streams that borrow their own connections.

Import commits each message's rows in a short transaction of its own; export reads
every batch from one REPEATABLE READ, read-only snapshot. Both are declared
``stream`` in the method table (no unit of work spans a stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from mktx.v1 import contacts_pb2

from ..core.db import use_connection
from ..core.errors import FieldViolation, InvalidArgument, NotFound
from ..deps import Deps
from ..domain import contacts as domain
from ..mapping.contacts import contact_filter, new_contact
from ..store import Row
from ..store import accounts as accounts_store
from ..store import contacts as store
from ..store.events import append_event
from ..validation import contacts as rules
from ..validation.rules import enum_field, uuid_field
from ..validation.rules import request_id as request_id_rule

P = contacts_pb2

EXPORT_BATCH = 500
IMPORT_MAX_ROWS_PER_MESSAGE = 1_000
IMPORT_MAX_ROWS = 100_000
IMPORT_MAX_ERRORS = 1_000
IMPORT_MAX_OPTION_TAGS = 20


async def export_contacts(
    deps: Deps, merchant: UUID, request: P.ExportContactsRequest
) -> AsyncIterator[list[Row]]:
    """ExportContacts: the merchant's matching contacts in id order, in batches of
    ``EXPORT_BATCH``, all read from one REPEATABLE READ, read-only snapshot, so the
    export is consistent however slowly the client reads. NotFound for an account or
    segment that is not the merchant's."""
    f = contact_filter(request)
    # One read-only snapshot for the whole export; batches are small, so the
    # client's pace only holds this read-only transaction, never a lock.
    async with use_connection(deps.pool, isolation="repeatable_read", read_only=True):
        if f.account_id and await accounts_store.get(merchant, f.account_id) is None:
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
            yield rows
            if len(rows) < EXPORT_BATCH:
                break


async def import_contacts(
    deps: Deps, merchant: UUID, request_iterator: AsyncIterator[P.ImportContactsRequest]
) -> dict[str, Any]:
    """ImportContacts: options in the first message, then rows; each message (up to
    1,000 rows) is validated row by row and upserted in one short transaction, so a
    broken stream keeps what was committed. Returns the summary (counts and up to
    ``IMPORT_MAX_ERRORS`` row errors). A repeated ``request_id`` returns the first
    import's summary without importing again."""
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
    v += [x for x in domain.validate_tags(opts.tags, "options.tags") if x.field != "options.tags"]
    v += enum_field(
        opts.conflict_policy, "options.conflict_policy", P.ImportConflictPolicy, required=False
    )
    if v:
        raise InvalidArgument(v)
    account_id = UUID(opts.account_id)
    async with use_connection(deps.pool):
        if await accounts_store.get(merchant, account_id) is None:
            raise NotFound("account", opts.account_id)
        if opts.request_id and not opts.validate_only:
            done = await store.get_import(merchant, opts.request_id)
            if done is not None:
                return dict(done)

    importer = _Importer(deps, merchant, account_id, opts)
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
        async with use_connection(deps.pool):
            await store.record_import(merchant, opts.request_id, account_id, summary)
    return summary


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
            new = new_contact(c, self._account_id, domain.SOURCE_IMPORT, self._extra_tags)
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
            if inserted or updates:
                # One outbox event per message naming the contacts it wrote (analytics
                # rollups, worker/rollups.py, recompute them).
                written = await store.existing_for_import(
                    self._merchant, self._account_id, ids, lock=False
                )
                await append_event(
                    self._merchant,
                    "contact.imported",
                    None,
                    {
                        "account_id": str(self._account_id),
                        "contact_ids": [str(r["id"]) for r in written.values()],
                    },
                )

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
