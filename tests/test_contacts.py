"""ContactsService end to end through the production interceptor chain, on a real
PostgreSQL. Data the webhook path would create is inserted directly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.struct_pb2 import Struct
from helpers import expect_error

from mktx.v1 import contacts_pb2, contacts_pb2_grpc, conversations_pb2

P = contacts_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.fixture
def stub(api):
    return contacts_pb2_grpc.ContactsServiceStub(api.channel)


async def insert_account(db, merchant, x_user_id=None, status="ACTIVE"):
    account_id = uuid.uuid4()
    x_user_id = x_user_id or str(uuid.uuid4().int % 10**15)
    await db.execute(
        "INSERT INTO accounts (id, merchant_id, x_user_id, username, status, auth_method,"
        " access_token_enc) VALUES (%s, %s, %s, %s, %s, 'OAUTH2', %s)",
        (account_id, merchant, x_user_id, f"shop{x_user_id[-5:]}", status, b"\x01enc"),
    )
    return str(account_id)


async def insert_contact(
    db,
    merchant,
    account_id,
    x_user_id,
    username="",
    display_name="",
    tags=(),
    last_interaction=None,
    source="INBOUND_MESSAGE",
):
    cid = uuid.uuid4()
    await db.execute(
        "INSERT INTO contacts (id, merchant_id, account_id, x_user_id, username, display_name,"
        " tags, source, first_interaction_at, last_interaction_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            cid,
            merchant,
            account_id,
            x_user_id,
            username,
            display_name,
            list(tags),
            source,
            last_interaction,
            last_interaction,
        ),
    )
    return str(cid)


def attrs(**kw):
    s = Struct()
    s.update(kw)
    return s


def contact(account_id, x_user_id="12345", **kw):
    return P.Contact(account_id=account_id, x_user_id=x_user_id, **kw)


async def test_create_get_and_idempotent_retry(api, stub, merchant, db):
    md = api.auth(merchant)
    account = await insert_account(db, merchant)
    req = P.CreateContactRequest(
        contact=contact(
            account,
            username="@alice_x",
            display_name="Alice A",
            tags=[" VIP ", "vip", "Beta"],
            attributes=attrs(plan="pro", seats=3),
            time_zone="Europe/Berlin",
            language="pt-BR",
            source=P.CONTACT_SOURCE_NEW_FOLLOWER,
        ),
        request_id="create-1",
    )
    created = await stub.CreateContact(req, metadata=md)
    assert created.username == "alice_x"
    assert list(created.tags) == ["vip", "beta"]
    assert created.source == P.CONTACT_SOURCE_MANUAL  # output only
    assert dict(created.attributes) == {"plan": "pro", "seats": 3}
    again = await stub.CreateContact(req, metadata=md)
    assert again.id == created.id
    (count,) = await (await db.execute("SELECT count(*) FROM contacts")).fetchone()
    assert count == 1
    got = await stub.GetContact(P.GetContactRequest(id=created.id), metadata=md)
    assert got.id == created.id and got.etag == created.etag
    await expect_error(
        stub.CreateContact(P.CreateContactRequest(contact=contact(account)), metadata=md),
        grpc.StatusCode.ALREADY_EXISTS,
        "DUPLICATE_RESOURCE",
    )


async def test_create_reports_every_bad_field(api, stub, merchant, db):
    md = api.auth(merchant)
    bad = P.Contact(
        account_id="nope",
        x_user_id="12a",
        username="way_too_long_username",
        display_name="x" * 51,
        tags=["ok", "a,b", ""],
        attributes=attrs(**{"1bad": "x", "nested": {"a": 1}, "long": "y" * 1001}),
        time_zone="Mars/Base",
        language="english!",
    )
    err = await expect_error(
        stub.CreateContact(P.CreateContactRequest(contact=bad, request_id="bad id"), metadata=md),
        INVALID,
        "VALIDATION_ERROR",
    )
    assert set(err.bad_fields) == {
        "request_id",
        "contact.account_id",
        "contact.x_user_id",
        "contact.username",
        "contact.display_name",
        "contact.tags[1]",
        "contact.tags[2]",
        "contact.attributes.1bad",
        "contact.attributes.nested",
        "contact.attributes.long",
        "contact.time_zone",
        "contact.language",
    }
    await expect_error(
        stub.CreateContact(P.CreateContactRequest(contact=contact(str(uuid.uuid4()))), metadata=md),
        NOT_FOUND,
        "RESOURCE_NOT_FOUND",
    )


async def test_list_search_tags_attributes_source_and_pages(api, stub, merchant, db):
    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    acc2 = await insert_account(db, merchant)
    now = datetime.now(UTC)
    ids = []
    for i in range(7):
        ids.append(
            await insert_contact(
                db,
                merchant,
                acc,
                str(100 + i),
                username=f"user_{i}",
                display_name=f"Person {i}",
                tags=["even"] if i % 2 == 0 else ["odd", "x"],
                last_interaction=now - timedelta(minutes=i) if i < 5 else None,
            )
        )
    ana = await insert_contact(
        db, merchant, acc2, "999", username="SomeOne", display_name="Ana María 100%"
    )
    await db.execute(
        'UPDATE contacts SET attributes = \'{"plan": "pro", "n": 2}\' WHERE id = %s', (ids[1],)
    )

    async def all_ids(**kw):
        out, token = [], ""
        while True:
            page = await stub.ListContacts(
                P.ListContactsRequest(page_size=2, page_token=token, **kw), metadata=md
            )
            out += [c.id for c in page.contacts]
            token = page.next_page_token
            if not token:
                return out

    # Latest interaction first, those without interactions last (by id descending).
    tail = sorted([ids[5], ids[6], ana], reverse=True)
    assert await all_ids() == ids[:5] + tail
    assert await all_ids(account_id=acc2) == [ana]
    assert await all_ids(query="@someone") == [ana]
    assert await all_ids(query="maría") == [ana]
    assert await all_ids(query="100%") == [ana]  # % matches literally
    assert await all_ids(query="PERSON 3") == [ids[3]]
    # Terms of one or two characters match the start of the username or display name.
    assert await all_ids(query="an") == [ana]  # display name "Ana María 100%"
    assert await all_ids(query="So") == [ana]  # username "SomeOne"
    assert await all_ids(query="ma") == []  # "María" is inside, not at the start
    assert await all_ids(query="u_") == []  # "_" is literal: no "u_…" usernames
    assert await all_ids(query="@p") == [*ids[:5], max(ids[5], ids[6]), min(ids[5], ids[6])]
    assert await all_ids(tags=["EVEN"]) == [ids[0], ids[2], ids[4], ids[6]]
    assert (
        await all_ids(tags=["odd", "even"])
        == ids[:5] + [ids[5], ids[6]][:: -1 if ids[6] > ids[5] else 1]
    )
    assert await all_ids(tags=["odd", "x"], tag_match_mode=P.TAG_MATCH_MODE_ALL) == [
        ids[1],
        ids[3],
        ids[5],
    ]
    assert await all_ids(attributes=attrs(plan="pro", n=2)) == [ids[1]]
    assert await all_ids(attributes=attrs(plan="free")) == []
    assert await all_ids(source=P.CONTACT_SOURCE_MANUAL) == []

    page = await stub.ListContacts(P.ListContactsRequest(page_size=1), metadata=md)
    err = await expect_error(
        stub.ListContacts(
            P.ListContactsRequest(page_size=1, page_token=page.next_page_token, query="other"),
            metadata=md,
        ),
        INVALID,
    )
    assert "page_token" in err.bad_fields
    err = await expect_error(
        stub.ListContacts(
            P.ListContactsRequest(
                page_size=-1,
                account_id="x",
                query="q" * 201,
                tags=["t"] * 51,
                attributes=attrs(a={"b": 1}),
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"page_size", "account_id", "query", "tags", "attributes.a"}
    big = await stub.ListContacts(P.ListContactsRequest(page_size=10_000), metadata=md)
    assert len(big.contacts) == 8


async def test_update_with_mask_etag_and_opt_out(api, stub, merchant, db):
    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    c = await stub.CreateContact(
        P.CreateContactRequest(contact=contact(acc, tags=["a"])), metadata=md
    )
    upd = await stub.UpdateContact(
        P.UpdateContactRequest(
            contact=P.Contact(
                id=c.id,
                tags=["B", "b"],
                time_zone="America/New_York",
                language="en",
                opted_out=True,
                username="ignored",
            ),
            update_mask=FieldMask(paths=["tags", "time_zone", "language", "opted_out"]),
            etag=c.etag,
        ),
        metadata=md,
    )
    assert list(upd.tags) == ["b"] and upd.time_zone == "America/New_York"
    assert upd.opted_out and upd.opt_out_time.seconds > 0 and upd.username == ""
    assert upd.etag != c.etag
    await expect_error(
        stub.UpdateContact(
            P.UpdateContactRequest(
                contact=P.Contact(id=c.id, language="de"),
                update_mask=FieldMask(paths=["language"]),
                etag=c.etag,
            ),
            metadata=md,
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    err = await expect_error(
        stub.UpdateContact(
            P.UpdateContactRequest(
                contact=P.Contact(id=c.id, time_zone="Nowhere"),
                update_mask=FieldMask(paths=["time_zone", "x_user_id"]),
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"update_mask.paths[1]", "contact.time_zone"}
    cleared = await stub.UpdateContact(
        P.UpdateContactRequest(
            contact=P.Contact(id=c.id), update_mask=FieldMask(paths=["opted_out"])
        ),
        metadata=md,
    )
    assert not cleared.opted_out and not cleared.HasField("opt_out_time")
    events = await (
        await db.execute("SELECT type, payload->>'contact_id' FROM domain_events ORDER BY id")
    ).fetchall()
    assert [e[0] for e in events] == ["contact.created", "contact.updated", "contact.updated"]
    assert {e[1] for e in events} == {c.id}


async def test_tags_add_remove_and_limits(api, stub, merchant, db):
    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    c = await stub.CreateContact(
        P.CreateContactRequest(contact=contact(acc, tags=["one"])), metadata=md
    )
    out = await stub.AddContactTags(
        P.AddContactTagsRequest(id=c.id, tags=[" Two", "ONE", "two"]), metadata=md
    )
    assert list(out.tags) == ["one", "two"]
    same = await stub.AddContactTags(P.AddContactTagsRequest(id=c.id, tags=["two"]), metadata=md)
    assert same.etag == out.etag  # nothing new: no write
    out = await stub.RemoveContactTag(P.RemoveContactTagRequest(id=c.id, tag=" ONE "), metadata=md)
    assert list(out.tags) == ["two"]
    noop = await stub.RemoveContactTag(P.RemoveContactTagRequest(id=c.id, tag="zzz"), metadata=md)
    assert noop.etag == out.etag
    err = await expect_error(
        stub.AddContactTags(
            P.AddContactTagsRequest(id=c.id, tags=["ok", "bad,tag", "x" * 65]), metadata=md
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"tags[1]", "tags[2]"}
    err = await expect_error(
        stub.AddContactTags(P.AddContactTagsRequest(id=c.id), metadata=md), INVALID
    )
    assert set(err.bad_fields) == {"tags"}
    for start in (0, 50):
        await stub.AddContactTags(
            P.AddContactTagsRequest(id=c.id, tags=[f"t{i}" for i in range(start, start + 49)]),
            metadata=md,
        )
    err = await expect_error(
        stub.AddContactTags(P.AddContactTagsRequest(id=c.id, tags=["x1", "x2"]), metadata=md),
        INVALID,
    )
    assert set(err.bad_fields) == {"tags"}
    err = await expect_error(
        stub.RemoveContactTag(P.RemoveContactTagRequest(id=c.id, tag="  "), metadata=md), INVALID
    )
    assert set(err.bad_fields) == {"tag"}


async def test_merge_attributes(api, stub, merchant, db):
    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    c = await stub.CreateContact(
        P.CreateContactRequest(
            contact=contact(acc, attributes=attrs(plan="pro", seats=2, vip=True))
        ),
        metadata=md,
    )
    patch = Struct()
    patch.update({"seats": 5, "vip": None, "city": "Lisbon"})
    out = await stub.MergeContactAttributes(
        P.MergeContactAttributesRequest(id=c.id, attributes=patch, etag=c.etag), metadata=md
    )
    assert dict(out.attributes) == {"plan": "pro", "seats": 5, "city": "Lisbon"}
    await expect_error(
        stub.MergeContactAttributes(
            P.MergeContactAttributesRequest(id=c.id, attributes=patch, etag=c.etag), metadata=md
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    err = await expect_error(
        stub.MergeContactAttributes(
            P.MergeContactAttributesRequest(
                id=c.id, attributes=attrs(**{"_x": 1, "ok": [1], "s": "z" * 1001})
            ),
            metadata=md,
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"attributes._x", "attributes.ok", "attributes.s"}
    err = await expect_error(
        stub.MergeContactAttributes(P.MergeContactAttributesRequest(id=c.id), metadata=md), INVALID
    )
    assert set(err.bad_fields) == {"attributes"}
    # Totals are checked on the merged result.
    for start in (0, 60):
        req = P.MergeContactAttributesRequest(
            id=c.id, attributes=attrs(**{f"k{i}": i for i in range(start, start + 60)})
        )
        if start == 0:
            await stub.MergeContactAttributes(req, metadata=md)
        else:
            err = await expect_error(stub.MergeContactAttributes(req, metadata=md), INVALID)
            assert set(err.bad_fields) == {"attributes"}
    big = attrs(**{f"b{i}": "v" * 1000 for i in range(17)})
    err = await expect_error(
        stub.MergeContactAttributes(
            P.MergeContactAttributesRequest(id=c.id, attributes=big), metadata=md
        ),
        INVALID,
    )
    assert "16384 bytes" in err.bad_fields["attributes"]


async def seed_conversation(db, merchant, account_id, contact_id, messages, status="OPEN"):
    """Insert a conversation and (direction, minutes offset, state) messages."""
    conv = uuid.uuid4()
    await db.execute(
        "INSERT INTO conversations (id, merchant_id, account_id, contact_id, status,"
        " message_count) VALUES (%s, %s, %s, %s, %s, %s)",
        (conv, merchant, account_id, contact_id, status, len(messages)),
    )
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for direction, minutes, state in messages:
        await db.execute(
            "INSERT INTO messages (merchant_id, conversation_id, direction, text, delivery_state,"
            " sent_at, created_at) VALUES (%s, %s, %s, 'hi', %s, %s, %s)",
            (
                merchant,
                conv,
                direction,
                state,
                base + timedelta(minutes=minutes),
                base + timedelta(minutes=minutes),
            ),
        )
    return str(conv)


async def test_engagement_figures(api, stub, merchant, db):
    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    cid = await insert_contact(db, merchant, acc, "555", username="eng")
    # Conversation 1: in@0, in@2, out@10 (answers run from 0: 10 min), in@20, out@24 (4 min),
    # a failed outbound that does not count.
    await seed_conversation(
        db,
        merchant,
        acc,
        cid,
        [
            ("INBOUND", 0, "DELIVERED"),
            ("INBOUND", 2, "DELIVERED"),
            ("OUTBOUND", 10, "SENT"),
            ("INBOUND", 20, "READ"),
            ("OUTBOUND", 22, "FAILED"),
            ("OUTBOUND", 24, "DELIVERED"),
        ],
        status="CLOSED",
    )
    # Conversation 2: out@100 first (no inbound to answer), in@101 unanswered.
    await seed_conversation(
        db,
        merchant,
        acc,
        cid,
        [
            ("OUTBOUND", 100, "READ"),
            ("INBOUND", 101, "DELIVERED"),
        ],
    )
    t0 = datetime(2024, 4, 1, tzinfo=UTC)
    await db.execute(
        "INSERT INTO contact_interactions (merchant_id, contact_id, kind, occurred_at)"
        " VALUES (%s, %s, 'FOLLOW', %s), (%s, %s, 'MESSAGE_IN', %s)",
        (merchant, cid, t0, merchant, cid, t0 + timedelta(days=40)),
    )
    got = await stub.GetContact(P.GetContactRequest(id=cid), metadata=md)
    e = got.engagement
    assert (e.messages_sent, e.messages_received, e.conversation_count) == (3, 4, 2)
    assert e.average_response_time.ToTimedelta() == timedelta(minutes=7)
    assert e.first_interaction_time.ToDatetime(tzinfo=UTC) == t0
    assert e.last_interaction_time.ToDatetime(tzinfo=UTC) == t0 + timedelta(days=40)
    assert got.first_interaction_time == e.first_interaction_time
    empty = await insert_contact(db, merchant, acc, "556")
    got = await stub.GetContact(P.GetContactRequest(id=empty), metadata=md)
    assert not got.engagement.HasField("average_response_time")
    assert got.engagement.messages_sent == 0

    convs = await stub.ListContactConversations(
        P.ListContactConversationsRequest(id=cid, page_size=1), metadata=md
    )
    assert len(convs.conversations) == 1 and convs.next_page_token
    more = await stub.ListContactConversations(
        P.ListContactConversationsRequest(id=cid, page_size=1, page_token=convs.next_page_token),
        metadata=md,
    )
    assert len(more.conversations) == 1 and not more.next_page_token
    assert {convs.conversations[0].id, more.conversations[0].id} == {
        str(r[0])
        for r in await (
            await db.execute("SELECT id FROM conversations WHERE contact_id = %s", (cid,))
        ).fetchall()
    }
    closed = await stub.ListContactConversations(
        P.ListContactConversationsRequest(
            id=cid, status=conversations_pb2.CONVERSATION_STATUS_CLOSED
        ),
        metadata=md,
    )
    assert [c.status for c in closed.conversations] == [
        conversations_pb2.CONVERSATION_STATUS_CLOSED
    ]


async def tables_with_contact_id(db):
    rows = await (
        await db.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name = 'contact_id'"
        )
    ).fetchall()
    return sorted(r[0] for r in rows)


async def test_gdpr_delete_erases_everything(api, stub, merchant, db):
    md = api.auth(merchant, user_id="agent-7")
    acc = await insert_account(db, merchant)
    victim = await insert_contact(db, merchant, acc, "4242", username="victim", tags=["x"])
    keeper = await insert_contact(db, merchant, acc, "4343", username="keeper")
    conv = await seed_conversation(
        db, merchant, acc, victim, [("INBOUND", 0, "DELIVERED")], status="CLOSED"
    )
    conv2 = await seed_conversation(db, merchant, acc, victim, [("OUTBOUND", 5, "SENT")])
    keep_conv = await seed_conversation(db, merchant, acc, keeper, [("INBOUND", 0, "DELIVERED")])
    await db.execute(
        "INSERT INTO contact_interactions (merchant_id, contact_id, kind, occurred_at)"
        " VALUES (%s, %s, 'MESSAGE_IN', now())",
        (merchant, victim),
    )
    campaign = uuid.uuid4()
    await db.execute(
        "INSERT INTO campaigns (id, merchant_id, account_id, name, type)"
        " VALUES (%s, %s, %s, 'c', 'BULK_DM')",
        (campaign, merchant, acc),
    )
    await db.execute(
        "INSERT INTO campaign_recipients (merchant_id, campaign_id, contact_id)"
        " VALUES (%s, %s, %s), (%s, %s, %s)",
        (merchant, campaign, victim, merchant, campaign, keeper),
    )
    await db.execute(
        "INSERT INTO outbound_dms (merchant_id, account_id, contact_id, source, source_ref,"
        " origin, text) VALUES (%s, %s, %s, 'flow', 'e:1', 'AUTOMATION', 'private text'),"
        " (%s, %s, %s, 'flow', 'e:2', 'AUTOMATION', 'kept')",
        (merchant, acc, victim, merchant, acc, keeper),
    )
    flow = uuid.uuid4()
    await db.execute(
        "INSERT INTO flows (id, merchant_id, account_id, name) VALUES (%s, %s, %s, 'f')",
        (flow, merchant, acc),
    )
    execution = uuid.uuid4()
    await db.execute(
        "INSERT INTO flow_executions (id, merchant_id, flow_id, contact_id)"
        " VALUES (%s, %s, %s, %s)",
        (execution, merchant, flow, victim),
    )
    await db.execute(
        "INSERT INTO flow_execution_steps (merchant_id, execution_id, node_id, status)"
        " VALUES (%s, %s, 'n1', 'DONE')",
        (merchant, execution),
    )
    await db.execute(
        "INSERT INTO ai_sessions (merchant_id, conversation_id, summary)"
        " VALUES (%s, %s, 'private summary')",
        (merchant, conv),
    )
    await db.execute(
        "INSERT INTO domain_events (merchant_id, type, aggregate_id, payload) VALUES"
        " (%s, 'message.received', %s, jsonb_build_object('conversation_id', %s::text,"
        "  'contact_id', %s::text, 'text', 'secret'))",
        (merchant, conv, conv, victim),
    )

    got = await stub.GetContact(P.GetContactRequest(id=victim), metadata=md)
    await expect_error(
        stub.DeleteContact(P.DeleteContactRequest(id=victim, etag='"stale"'), metadata=md),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    await stub.DeleteContact(P.DeleteContactRequest(id=victim, etag=got.etag), metadata=md)

    tables = await tables_with_contact_id(db)
    assert {
        "contacts",
        "conversations",
        "contact_interactions",
        "campaign_recipients",
        "flow_executions",
        "outbound_dms",
    } <= set(tables) | {"contacts"}
    for table in tables:
        (n,) = await (
            await db.execute(f"SELECT count(*) FROM {table} WHERE contact_id = %s", (victim,))
        ).fetchone()
        assert n == 0, table
    for table, col, value in [
        ("contacts", "id", victim),
        ("messages", "conversation_id", conv),
        ("messages", "conversation_id", conv2),
        ("ai_sessions", "conversation_id", conv),
        ("flow_execution_steps", "execution_id", execution),
    ]:
        (n,) = await (
            await db.execute(f"SELECT count(*) FROM {table} WHERE {col} = %s", (value,))
        ).fetchone()
        assert n == 0, table
    # The outbox keeps only id-only tombstones.
    leftover = await (
        await db.execute(
            "SELECT type, payload FROM domain_events WHERE payload::text LIKE %s OR payload::text"
            " LIKE %s OR payload::text LIKE %s",
            (f"%{victim}%", f"%{conv}%", f"%{conv2}%"),
        )
    ).fetchall()
    assert sorted(t for t, _ in leftover) == [
        "contact.deleted",
        "conversation.deleted",
        "conversation.deleted",
    ]
    assert not any("secret" in str(p) for _, p in leftover)
    audit = await (
        await db.execute(
            "SELECT merchant_id, account_id, x_user_id, erased_by, erased_at FROM erasure_audit"
        )
    ).fetchall()
    assert len(audit) == 1
    assert audit[0][:4] == (merchant, uuid.UUID(acc), "4242", "agent-7")
    # The other contact is untouched.
    (n,) = await (
        await db.execute("SELECT count(*) FROM messages WHERE conversation_id = %s", (keep_conv,))
    ).fetchone()
    assert n == 1
    (n,) = await (await db.execute("SELECT count(*) FROM campaign_recipients")).fetchone()
    assert n == 1
    (n,) = await (await db.execute("SELECT count(*) FROM outbound_dms")).fetchone()
    assert n == 1
    await expect_error(stub.GetContact(P.GetContactRequest(id=victim), metadata=md), NOT_FOUND)
    await expect_error(
        stub.DeleteContact(P.DeleteContactRequest(id=victim), metadata=md), NOT_FOUND
    )


async def import_call(stub, md, messages):
    async def gen():
        for m in messages:
            yield m

    return await stub.ImportContacts(gen(), metadata=md)


async def test_import_rows_errors_policies_and_idempotency(api, stub, merchant, db):
    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    existing = await insert_contact(
        db, merchant, acc, "1", username="old", display_name="Old", tags=["keep"]
    )
    await db.execute(
        'UPDATE contacts SET attributes = \'{"a": 1, "b": 2}\' WHERE id = %s', (existing,)
    )
    rows1 = [
        P.Contact(
            x_user_id="1", display_name="New Name", tags=["Added"], attributes=attrs(b=3, c="x")
        ),
        P.Contact(x_user_id="2", username="two"),
        P.Contact(x_user_id="abc"),  # bad id
        P.Contact(x_user_id="3", tags=["bad,tag"], language="!!"),  # two bad fields
    ]
    rows2 = [P.Contact(x_user_id=str(1000 + i)) for i in range(1000)] + []
    rows3 = [
        P.Contact(x_user_id="2"),  # repeats an earlier row
        P.Contact(x_user_id="4", account_id=str(uuid.uuid4())),
    ]
    opts = P.ImportContactsOptions(account_id=acc, tags=["Imported"], request_id="imp-1")
    summary = await import_call(
        stub,
        md,
        [
            P.ImportContactsRequest(options=opts, contacts=rows1),
            P.ImportContactsRequest(contacts=rows2),
            P.ImportContactsRequest(contacts=rows3),
        ],
    )
    assert (
        summary.received_count,
        summary.created_count,
        summary.updated_count,
        summary.skipped_count,
        summary.failed_count,
    ) == (1006, 1001, 1, 1, 3)
    assert [(e.row_index, e.field) for e in summary.errors] == [
        (2, "x_user_id"),
        (3, "tags[0]"),
        (3, "language"),
        (1005, "account_id"),
    ]
    row = await (
        await db.execute(
            "SELECT display_name, username, tags, attributes, source FROM contacts WHERE id = %s",
            (existing,),
        )
    ).fetchone()
    assert row == (
        "New Name",
        "old",
        ["keep", "added", "imported"],
        {"a": 1, "b": 3, "c": "x"},
        "INBOUND_MESSAGE",
    )
    (n,) = await (
        await db.execute("SELECT count(*) FROM contacts WHERE source = 'IMPORT'")
    ).fetchone()
    assert n == 1001
    # The same request id returns the summary and imports nothing again.
    again = await import_call(
        stub, md, [P.ImportContactsRequest(options=opts, contacts=[P.Contact(x_user_id="77777")])]
    )
    assert again == summary
    # SKIP policy and validate_only write nothing for existing rows / at all.
    skip = await import_call(
        stub,
        md,
        [
            P.ImportContactsRequest(
                options=P.ImportContactsOptions(
                    account_id=acc, conflict_policy=P.IMPORT_CONFLICT_POLICY_SKIP
                ),
                contacts=[
                    P.Contact(x_user_id="1", display_name="Ignored"),
                    P.Contact(x_user_id="5"),
                ],
            )
        ],
    )
    assert (skip.created_count, skip.skipped_count, skip.updated_count) == (1, 1, 0)
    dry = await import_call(
        stub,
        md,
        [
            P.ImportContactsRequest(
                options=P.ImportContactsOptions(account_id=acc, validate_only=True),
                contacts=[
                    P.Contact(x_user_id="1"),
                    P.Contact(x_user_id="6"),
                    P.Contact(x_user_id=""),
                ],
            )
        ],
    )
    assert (dry.created_count, dry.updated_count, dry.failed_count, dry.validate_only) == (
        1,
        1,
        1,
        True,
    )
    (n,) = await (
        await db.execute("SELECT count(*) FROM contacts WHERE x_user_id = '6'")
    ).fetchone()
    assert n == 0


async def test_import_stream_errors(api, stub, merchant, other_merchant, db):
    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    err = await expect_error(
        import_call(stub, md, [P.ImportContactsRequest(contacts=[P.Contact(x_user_id="1")])]),
        INVALID,
    )
    assert set(err.bad_fields) == {"options"}
    err = await expect_error(
        import_call(
            stub,
            md,
            [
                P.ImportContactsRequest(options=P.ImportContactsOptions(account_id=acc)),
                P.ImportContactsRequest(options=P.ImportContactsOptions(account_id=acc)),
            ],
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"requests[1].options"}
    err = await expect_error(
        import_call(
            stub,
            md,
            [
                P.ImportContactsRequest(
                    options=P.ImportContactsOptions(account_id=acc),
                    contacts=[P.Contact(x_user_id=str(i)) for i in range(1001)],
                )
            ],
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"requests[0].contacts"}
    err = await expect_error(
        import_call(
            stub,
            md,
            [
                P.ImportContactsRequest(
                    options=P.ImportContactsOptions(
                        account_id="x", tags=["a,b"], request_id="no spaces"
                    )
                )
            ],
        ),
        INVALID,
    )
    assert set(err.bad_fields) == {"options.account_id", "options.tags[0]", "options.request_id"}
    await expect_error(
        import_call(
            stub,
            api.auth(other_merchant),
            [P.ImportContactsRequest(options=P.ImportContactsOptions(account_id=acc))],
        ),
        NOT_FOUND,
    )


async def test_export_batches_filters_and_snapshot(api, stub, merchant, other_merchant, db):
    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    await db.execute(
        "INSERT INTO contacts (merchant_id, account_id, x_user_id, username, tags)"
        " SELECT %s, %s, g::text, 'u' || g, CASE WHEN g %% 3 = 0 THEN '{three}'::text[]"
        " ELSE '{}' END FROM generate_series(1, 1201) g",
        (merchant, acc),
    )
    other_acc = await insert_account(db, other_merchant)
    await insert_contact(db, other_merchant, other_acc, "1", username="u1")
    batches = []
    async for batch in stub.ExportContacts(P.ExportContactsRequest(), metadata=md):
        batches.append([c.id for c in batch.contacts])
        if len(batches) == 1:  # a change after the stream started is not in its snapshot
            await db.execute(
                "INSERT INTO contacts (merchant_id, account_id, x_user_id)"
                " VALUES (%s, %s, '99999')",
                (merchant, acc),
            )
    assert [len(b) for b in batches] == [500, 500, 201]
    flat = [i for b in batches for i in b]
    assert flat == sorted(flat) and len(set(flat)) == 1201
    three = [
        c
        async for b in stub.ExportContacts(
            P.ExportContactsRequest(tags=["THREE"], query="u1"), metadata=md
        )
        for c in b.contacts
    ]
    expected = sum(
        1
        for g in range(1, 1202)
        if g % 3 == 0 and "1" in str(g)[:1] + str(g)[1:] and f"u{g}".find("u1") >= 0
    )
    assert all("three" in c.tags and "u1" in c.username for c in three)
    assert len(three) == expected
    err = await expect_error(
        stub.ExportContacts(P.ExportContactsRequest(account_id="nope"), metadata=md).read(), INVALID
    )
    assert set(err.bad_fields) == {"account_id"}
    await expect_error(
        stub.ExportContacts(P.ExportContactsRequest(account_id=other_acc), metadata=md).read(),
        NOT_FOUND,
    )
    await expect_error(
        stub.ExportContacts(
            P.ExportContactsRequest(segment_id=str(uuid.uuid4())), metadata=md
        ).read(),
        NOT_FOUND,
    )


async def test_export_by_segment(api, stub, merchant, other_merchant, db):
    """Export restricted to a segment's members, through the segment compiler."""
    from psycopg.types.json import Jsonb

    md = api.auth(merchant)
    acc = await insert_account(db, merchant)
    await db.execute(
        "INSERT INTO contacts (merchant_id, account_id, x_user_id, username, tags)"
        " SELECT %s, %s, g::text, 'u' || g, CASE WHEN g %% 4 = 0 THEN '{vip}'::text[]"
        " ELSE '{}' END FROM generate_series(1, 40) g",
        (merchant, acc),
    )
    vip = {
        "operator": "CONDITION_GROUP_OPERATOR_AND",
        "nodes": [
            {
                "condition": {
                    "field": "tags",
                    "operator": "CONDITION_OPERATOR_CONTAINS",
                    "string_value": "vip",
                }
            }
        ],
    }
    seg = uuid.uuid4()
    await db.execute(
        "INSERT INTO segments (id, merchant_id, name, conditions) VALUES (%s, %s, 'vip', %s)",
        (seg, merchant, Jsonb(vip)),
    )
    got = [
        c
        async for b in stub.ExportContacts(
            P.ExportContactsRequest(segment_id=str(seg)), metadata=md
        )
        for c in b.contacts
    ]
    assert sorted(int(c.x_user_id) for c in got) == list(range(4, 41, 4))
    # Segment and list filters combine.
    got = [
        c
        async for b in stub.ExportContacts(
            P.ExportContactsRequest(segment_id=str(seg), query="u2"), metadata=md
        )
        for c in b.contacts
    ]
    assert sorted(c.username for c in got) == ["u20", "u24", "u28"]
    # Another merchant's segment is NOT_FOUND.
    await expect_error(
        stub.ExportContacts(
            P.ExportContactsRequest(segment_id=str(seg)), metadata=api.auth(other_merchant)
        ).read(),
        NOT_FOUND,
    )


async def test_other_merchants_contact_is_not_found_everywhere(
    api, stub, merchant, other_merchant, db
):
    acc = await insert_account(db, merchant)
    cid = await insert_contact(db, merchant, acc, "31337", username="mine", tags=["t"])
    md = api.auth(other_merchant)
    calls = [
        stub.GetContact(P.GetContactRequest(id=cid), metadata=md),
        stub.UpdateContact(
            P.UpdateContactRequest(
                contact=P.Contact(id=cid, language="en"), update_mask=FieldMask(paths=["language"])
            ),
            metadata=md,
        ),
        stub.AddContactTags(P.AddContactTagsRequest(id=cid, tags=["x"]), metadata=md),
        stub.RemoveContactTag(P.RemoveContactTagRequest(id=cid, tag="t"), metadata=md),
        stub.MergeContactAttributes(
            P.MergeContactAttributesRequest(id=cid, attributes=attrs(a=1)), metadata=md
        ),
        stub.ListContactConversations(P.ListContactConversationsRequest(id=cid), metadata=md),
        stub.DeleteContact(P.DeleteContactRequest(id=cid), metadata=md),
        stub.CreateContact(
            P.CreateContactRequest(contact=contact(acc, x_user_id="1")), metadata=md
        ),
    ]
    for call in calls:
        err = await expect_error(call, NOT_FOUND, "RESOURCE_NOT_FOUND")
        assert err.info.metadata["resource"] in ("contact", "account")
    listed = await stub.ListContacts(P.ListContactsRequest(), metadata=md)
    assert list(listed.contacts) == []
    exported = [b async for b in stub.ExportContacts(P.ExportContactsRequest(), metadata=md)]
    assert exported == []
    row = await (
        await db.execute("SELECT tags, version FROM contacts WHERE id = %s", (cid,))
    ).fetchone()
    assert row == (["t"], 1)
    await expect_error(
        stub.GetContact(P.GetContactRequest(id=cid)), grpc.StatusCode.UNAUTHENTICATED
    )
