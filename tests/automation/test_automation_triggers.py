"""The other triggers and the send rules: tag and attribute changes, a new contact,
a mention, a quick reply; a flow that triggers on a tag it adds itself stops; an
opted-out contact gets nothing; a template is rendered with the contact's names."""

from __future__ import annotations

from campaign_helpers import add_contacts, add_template, scalar
from flow_helpers import (
    c,
    chain,
    contact_id_of,
    create_active,
    engine_pass,
    executions,
    flow,
    n,
    run_until,
    steps,
    struct,
    stub,
)

from mktx.v1 import automation_pb2 as P
from mktx.v1 import contacts_pb2 as C
from mktx.v1 import contacts_pb2_grpc


async def test_tag_and_attribute_triggers_and_no_self_loop(api, merchant, shop, db, sandbox):
    deps, md = api.app.deps, api.auth(merchant)
    contacts = contacts_pb2_grpc.ContactsServiceStub(api.channel)
    on_vip = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "TAG_ADDED",
            [n("t", "ADD_TAG", tags=["welcomed"])],
            chain("t"),
            tag="VIP",
        ),
    )
    on_unvip = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "TAG_REMOVED",
            [n("t", "ADD_TAG", tags=["lapsed"])],
            chain("t"),
            tag="vip",
        ),
    )
    on_plan = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "ATTRIBUTE_CHANGED",
            [n("t", "ADD_TAG", tags=["plan-changed"])],
            chain("t"),
            key="plan",
        ),
    )
    # Adds the very tag it triggers on: runs once, then there is no change to react to.
    loop = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "TAG_ADDED",
            [n("again", "ADD_TAG", tags=["loop"])],
            chain("again"),
            tag="loop",
        ),
    )
    ((cid, _),) = await add_contacts(db, sandbox, merchant, shop.account_id, 1)
    await contacts.AddContactTags(
        C.AddContactTagsRequest(id=str(cid), tags=["vip", "loop"]), metadata=md
    )
    await contacts.RemoveContactTag(C.RemoveContactTagRequest(id=str(cid), tag="vip"), metadata=md)
    await contacts.MergeContactAttributes(
        C.MergeContactAttributesRequest(id=str(cid), attributes=struct(plan="pro")), metadata=md
    )
    await contacts.MergeContactAttributes(
        C.MergeContactAttributesRequest(id=str(cid), attributes=struct(city="Porto")), metadata=md
    )
    for _ in range(4):
        await engine_pass(deps, send=False)
    for f in (on_vip, on_unvip, on_plan, loop):
        assert len(await executions(db, f.id)) == 1, f.name
    tags = await scalar(db, "SELECT tags FROM contacts WHERE id = %s", cid)
    assert {"welcomed", "lapsed", "plan-changed", "loop"} <= set(tags) and "vip" not in tags


async def test_contact_created_mention_and_quick_reply_triggers(api, merchant, shop, db):
    deps = api.app.deps
    created = await create_active(
        api,
        merchant,
        flow(shop.account_id, "CONTACT_CREATED", [n("t", "ADD_TAG", tags=["new"])], chain("t")),
    )
    mentioned = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "MENTION",
            [n("t", "ADD_TAG", tags=["fan"])],
            chain("t"),
            keywords=["love"],
        ),
    )
    post_id = str(10**18 + 12345)
    on_post = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "MENTION",
            [n("t", "ADD_TAG", tags=["replied"])],
            chain("t"),
            post_id=post_id,
        ),
    )
    fan, critic = shop.customer(), shop.customer()
    await shop._admin(
        "/_sandbox/mentions",
        {"author_id": fan.id, "mentioned_user_id": shop.owner.id, "text": "I love this shop"},
    )
    await shop._admin(
        "/_sandbox/mentions",
        {
            "author_id": critic.id,
            "mentioned_user_id": shop.owner.id,
            "text": "meh",
            "in_reply_to": post_id,
        },
    )

    async def both_known() -> bool:
        return all(
            [await contact_id_of(db, merchant, fan), await contact_id_of(db, merchant, critic)]
        )

    await run_until(deps, both_known, send=False)
    await engine_pass(deps, send=False)
    fan_id, critic_id = (
        await contact_id_of(db, merchant, fan),
        await contact_id_of(db, merchant, critic),
    )
    assert {e["contact_id"] for e in await executions(db, created.id)} == {fan_id, critic_id}
    (m,) = await executions(db, mentioned.id)
    assert m["contact_id"] == fan_id and m["trigger_event"]["type"] == "mention"
    (r,) = await executions(db, on_post.id)  # only the reply to that post
    assert r["contact_id"] == critic_id


async def test_opted_out_contacts_get_nothing_and_templates_render_names(
    api, merchant, shop, db, sandbox
):
    s, md, deps = stub(api), api.auth(merchant), api.app.deps
    template = await add_template(api, merchant, "Hi {{first_name|there}} ({{username}})!")
    f = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "MANUAL",
            [n("say", "SEND_MESSAGE", template_id=template), n("end", "END")],
            chain("say", "end"),
        ),
    )
    (ok, ok_user), (out, out_user) = await add_contacts(db, sandbox, merchant, shop.account_id, 2)
    await db.execute("UPDATE contacts SET display_name = 'Alice Smith' WHERE id = %s", (ok,))
    await db.execute(
        "UPDATE contacts SET opted_out = true, opted_out_at = now() WHERE id = %s", (out,)
    )
    for cid in (ok, out):
        await s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=md
        )

    async def sent() -> bool:
        return bool(shop.texts_to(ok_user))

    await run_until(deps, sent)
    assert shop.texts_to(ok_user) == [f"Hi Alice ({ok_user.username})!"]
    assert shop.texts_to(out_user) == []
    by_contact = {e["contact_id"]: e for e in await executions(db, f.id)}
    assert await steps(db, by_contact[out]["id"]) == [
        ("say", "SKIPPED", "default"),
        ("end", "COMPLETED", ""),
    ]
    got = await s.GetFlowExecution(
        P.GetFlowExecutionRequest(id=str(by_contact[out]["id"])), metadata=md
    )
    assert got.steps[0].status == P.FLOW_STEP_STATUS_SKIPPED and "opted out" in got.steps[0].error
    assert await scalar(db, "SELECT count(*) FROM outbound_dms WHERE contact_id = %s", out) == 0


async def _quick_reply(db, merchant, account_id, contact_id, text: str, metadata: str) -> None:
    """An inbound quick-reply answer as ingestion stores it (the sandbox has no
    quick-reply injection): the message row and its ``message.received`` event."""
    from flow_helpers import emit

    conv = await scalar(
        db,
        "SELECT id FROM conversations WHERE contact_id = %s AND status <> 'CLOSED'",
        contact_id,
    )
    if conv is None:
        conv = await scalar(
            db,
            "INSERT INTO conversations (merchant_id, account_id, contact_id) VALUES (%s, %s, %s)"
            " RETURNING id",
            merchant,
            account_id,
            contact_id,
        )
    msg = await scalar(
        db,
        "INSERT INTO messages (merchant_id, conversation_id, direction, type, text,"
        " quick_reply_metadata, x_event_id) VALUES (%s, %s, 'INBOUND', 'QUICK_REPLY', %s, %s, %s)"
        " RETURNING id",
        merchant,
        conv,
        text,
        metadata,
        f"qr-{contact_id}-{metadata}",
    )
    await emit(
        db,
        merchant,
        "message.received",
        {
            "account_id": str(account_id),
            "contact_id": str(contact_id),
            "conversation_id": str(conv),
            "message_id": str(msg),
            "direction": "INBOUND",
        },
    )


async def test_quick_reply_trigger_and_quick_reply_branch(api, merchant, shop, db, sandbox):
    s, md, deps = stub(api), api.auth(merchant), api.app.deps
    picked = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "QUICK_REPLY",
            [n("t", "ADD_TAG", tags=["picked-gold"])],
            chain("t"),
            metadata="gold",
        ),
    )
    menu = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "MANUAL",
            [
                n(
                    "ask",
                    "SEND_MESSAGE",
                    text="Pick a plan",
                    quick_replies=[{"label": "Gold", "metadata": "gold"}],
                ),
                n("wait", "WAIT_FOR_REPLY", timeout="3600s"),
                n("gold", "SET_ATTRIBUTE", key="plan", value="gold"),
                n("other", "SET_ATTRIBUTE", key="plan", value="other"),
                n("late", "END"),
            ],
            [
                *chain("ask", "wait"),
                c("wait", "gold", "gold"),
                c("wait", "other", "replied"),
                c("wait", "late", "timeout"),
            ],
        ),
    )
    (cid, _), (other, _) = await add_contacts(db, sandbox, merchant, shop.account_id, 2)
    for x in (cid, other):
        await s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=menu.id, contact_id=str(x)), metadata=md
        )
    await engine_pass(deps, send=False)
    await _quick_reply(db, merchant, shop.account_id, cid, "Gold", "gold")
    await _quick_reply(db, merchant, shop.account_id, other, "Silver", "silver")
    await engine_pass(deps, send=False)
    await engine_pass(deps, send=False)
    attrs = dict(
        await (
            await db.execute(
                "SELECT id, attributes->>'plan' FROM contacts WHERE id = ANY(%s)", ([cid, other],)
            )
        ).fetchall()
    )
    assert attrs == {cid: "gold", other: "other"}
    # The ask step queued its DM with the quick reply on the ledger.
    qrs = await scalar(db, "SELECT quick_replies FROM outbound_dms WHERE contact_id = %s", cid)
    assert [q["metadata"] for q in qrs] == ["gold"]
    (hit,) = await executions(db, picked.id)
    assert hit["contact_id"] == cid and hit["trigger_event"]["quick_reply_metadata"] == "gold"


async def test_conversation_steps_ai_reply_escalates_and_conversation_closed_trigger(
    api, merchant, shop, db, sandbox
):
    s, md, deps = stub(api), api.auth(merchant), api.app.deps
    after_close = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "CONVERSATION_CLOSED",
            [n("t", "ADD_TAG", tags=["closed-once"])],
            chain("t"),
        ),
    )
    handoff = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "MANUAL",
            [
                n("ai", "AI_REPLY"),
                n("assign", "ASSIGN", assignee_user_id="agent-7"),
                n("esc", "ESCALATE", reason="needs a human"),
                n("close", "CLOSE_CONVERSATION", reason="handled"),
                n("never", "ADD_TAG", tags=["ai-answered"]),
            ],
            [
                c("trigger", "ai"),
                c("ai", "assign", "escalated"),
                c("ai", "never", "default"),
                c("assign", "esc"),
                c("esc", "close"),
            ],
        ),
    )
    (cid, _), (lonely, _) = await add_contacts(db, sandbox, merchant, shop.account_id, 2)
    conv = await scalar(
        db,
        "INSERT INTO conversations (merchant_id, account_id, contact_id) VALUES (%s, %s, %s) RETURNING id",
        merchant,
        shop.account_id,
        cid,
    )
    for x in (cid, lonely):
        await s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=handoff.id, contact_id=str(x)), metadata=md
        )
    await engine_pass(deps, send=False)
    await engine_pass(deps, send=False)
    row = await (
        await db.execute(
            "SELECT status, assignee_user_id, escalated, close_reason FROM conversations WHERE id = %s",
            (conv,),
        )
    ).fetchone()
    assert tuple(row) == ("CLOSED", "agent-7", False, "handled")  # closing clears escalation
    by_contact = {e["contact_id"]: e for e in await executions(db, handoff.id)}
    # The conversation holds no message from the contact: nothing for the assistant
    # to answer, so the AI step is SKIPPED on "escalated" (test_automation_ai_reply.py
    # covers the answers).
    assert await steps(db, by_contact[cid]["id"]) == [
        ("ai", "SKIPPED", "escalated"),
        ("assign", "COMPLETED", "default"),
        ("esc", "COMPLETED", "default"),
        ("close", "COMPLETED", "default"),
    ]
    # Without a conversation the conversation steps are SKIPPED, and the flow goes on.
    assert [st[1] for st in await steps(db, by_contact[lonely]["id"])] == [
        "SKIPPED",
        "SKIPPED",
        "SKIPPED",
        "SKIPPED",
    ]
    kinds = [
        r[0]
        for r in await (
            await db.execute(
                "SELECT type FROM domain_events WHERE aggregate_id = %s ORDER BY id", (conv,)
            )
        ).fetchall()
    ]
    assert kinds == ["conversation.assigned", "conversation.escalated", "conversation.closed"]
    (closed_run,) = await executions(db, after_close.id)
    assert closed_run["contact_id"] == cid
