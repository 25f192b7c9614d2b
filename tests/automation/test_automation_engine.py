"""The automation engine end to end: the X sandbox over HTTP → the webhook sidecar →
the outbox → the trigger consumer → the step runner → the DM ledger → the sandbox.
Waits are shortened by making their timers due (no timed assertions)."""

from __future__ import annotations

from typing import Any

from campaign_helpers import add_contacts, scalar, tag_condition
from flow_helpers import (
    c,
    chain,
    contact_id_of,
    create_active,
    engine_pass,
    executions,
    fast_forward,
    flow,
    n,
    run_until,
    steps,
    stub,
)
from google.protobuf.field_mask_pb2 import FieldMask

from mktx.v1 import automation_pb2 as P
from mktx.v1 import contacts_pb2, contacts_pb2_grpc
from mktx_grpc.worker.automation import AUTOMATION_TRIGGERS
from mktx_grpc.worker.consumer import drain


async def test_welcome_flow_end_to_end(api, merchant, shop, db):
    deps = api.app.deps
    welcome = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "NEW_FOLLOWER",
            [
                n("hello", "SEND_MESSAGE", text="Hi {{first_name|there}}, thanks for following!"),
                n("wait", "WAIT", duration="86400s"),
                n("follow_up", "SEND_MESSAGE", text="Here is 10% off, {{first_name|friend}}."),
                n("done", "END"),
            ],
            chain("hello", "wait", "follow_up", "done"),
        ),
    )
    alice = shop.customer("Alice Smith")
    await shop.follow(alice)

    async def first_dm() -> bool:
        return len(shop.texts_to(alice)) >= 1

    await run_until(deps, first_dm)
    assert shop.texts_to(alice) == ["Hi Alice, thanks for following!"]
    (ex,) = await executions(db, welcome.id)
    assert ex["status"] == "WAITING" and ex["current_node_id"] == "wait"
    assert ex["trigger_event"]["type"] == "follow"
    # Nothing more happens before the wait is over.
    await engine_pass(deps)
    assert len(shop.texts_to(alice)) == 1

    await fast_forward(db, welcome.id)

    async def second_dm() -> bool:
        return len(shop.texts_to(alice)) >= 2

    await run_until(deps, second_dm)
    assert shop.texts_to(alice) == [
        "Hi Alice, thanks for following!",
        "Here is 10% off, Alice.",
    ]
    (ex,) = await executions(db, welcome.id)
    assert ex["status"] == "COMPLETED" and ex["flow_version"] == 1
    assert await steps(db, ex["id"]) == [
        ("hello", "COMPLETED", "default"),
        ("wait", "COMPLETED", "default"),
        ("follow_up", "COMPLETED", "default"),
        ("done", "COMPLETED", ""),
    ]
    # The sends went through the one ledger, marked as the flow's.
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM outbound_dms WHERE flow_id = %s AND state = 'SENT'",
            welcome.id,
        )
        == 2
    )

    # A replayed outbox (the consumer's cursor rewound) starts nothing twice, and
    # neither does a second follow event while the contact is still in the flow.
    await db.execute(
        "UPDATE event_consumer_cursors SET last_event_id = 0 WHERE consumer = %s",
        (AUTOMATION_TRIGGERS.name,),
    )
    await engine_pass(deps)
    assert len(await executions(db, welcome.id)) == 1
    assert len(shop.texts_to(alice)) == 2
    stats = (
        await stub(api).GetFlow(P.GetFlowRequest(id=welcome.id), metadata=api.auth(merchant))
    ).stats
    assert (stats.started_count, stats.completed_count) == (1, 1)
    assert [(x.node_id, x.entered_count) for x in stats.nodes] == [
        ("hello", 1),
        ("wait", 1),
        ("follow_up", 1),
        ("done", 1),
    ]


async def test_keyword_routing_and_the_first_dm_trigger(api, merchant, shop, db):
    deps = api.app.deps

    def replying(text: str, trigger: str, **config: Any) -> P.Flow:
        return flow(
            shop.account_id, trigger, [n("say", "SEND_MESSAGE", text=text)], chain("say"), **config
        )

    exact = await create_active(
        api, merchant, replying("exact", "KEYWORD", keywords=["price"], match="exact")
    )
    contains = await create_active(
        api, merchant, replying("contains", "KEYWORD", keywords=["ship"])
    )
    regex = await create_active(
        api, merchant, replying("regex", "KEYWORD", keywords=[r"order\s*#?\d{3,}"], match="regex")
    )
    first = await create_active(
        api, merchant, replying("first", "INBOUND_MESSAGE", first_message_only=True)
    )
    cases = [
        ("PRICE ", {exact.id}),
        ("Do you ship to Lisbon?", {contains.id}),
        ("where is Order #12345", {regex.id}),
        ("hello there", {first.id}),
    ]
    people = []
    for text, _ in cases:
        who = shop.customer()
        people.append(who)
        await shop.dm(who, text)

    async def all_answered() -> bool:
        return all(shop.texts_to(p) for p in people)

    await run_until(deps, all_answered)
    for (text, expected), who in zip(cases, people, strict=True):
        cid = await contact_id_of(db, merchant, who)
        started = await db.execute(
            "SELECT flow_id::text FROM flow_executions WHERE contact_id = %s", (cid,)
        )
        assert {r[0] for r in await started.fetchall()} == expected, text
    # A second DM is not the contact's first: the first-DM flow does not run again.
    late = people[-1]
    await shop.dm(late, "hello again")
    await shop.dm(people[0], "what is the price")  # contains, not exact: nothing

    async def ingested() -> bool:
        return (
            await scalar(
                db,
                "SELECT count(*) FROM messages WHERE merchant_id = %s AND direction = 'INBOUND'",
                merchant,
            )
            == 6
        )

    await run_until(deps, ingested)
    await engine_pass(deps)
    assert len(await executions(db, first.id)) == 1
    assert len(await executions(db, exact.id)) == 1
    assert shop.texts_to(late) == ["first"]


async def test_wait_for_reply_on_both_branches_and_conditions(api, merchant, shop, db):
    deps = api.app.deps
    survey = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "KEYWORD",
            [
                n("ask", "SEND_MESSAGE", text="Shall we send you deals? (yes/no)"),
                n("wait", "WAIT_FOR_REPLY", timeout="3600s"),
                n("keep", "SET_ATTRIBUTE", key="answer", from_reply=True),
                n("yes", "CONDITION", reply_contains="yes"),
                n("opt_in", "ADD_TAG", tags=["deals"]),
                n("silent", "ADD_TAG", tags=["silent"]),
                n(
                    "vip",
                    "CONDITION",
                    conditions={
                        "operator": "CONDITION_GROUP_OPERATOR_AND",
                        "nodes": [
                            {
                                "condition": {
                                    "field": "tags",
                                    "operator": "CONDITION_OPERATOR_CONTAINS",
                                    "string_value": "deals",
                                }
                            }
                        ],
                    },
                ),
                n("thanks", "SEND_MESSAGE", text="Deals are on their way."),
                n("bye", "SEND_MESSAGE", text="OK, no deals."),
            ],
            [
                c("trigger", "ask"),
                c("ask", "wait"),
                c("wait", "keep", "replied"),
                c("wait", "silent", "timeout"),
                c("keep", "yes"),
                c("yes", "opt_in", "true"),
                c("yes", "vip", "false"),
                c("opt_in", "vip"),
                c("vip", "thanks", "true"),
                c("vip", "bye", "false"),
            ],
            keywords=["deals"],
        ),
    )
    keen, quiet = shop.customer(), shop.customer()
    for who in (keen, quiet):
        await shop.dm(who, "deals?")

    async def asked() -> bool:
        return all(shop.texts_to(p) for p in (keen, quiet))

    await run_until(deps, asked)
    await shop.dm(keen, "Yes please!")

    async def keen_done() -> bool:
        return len(shop.texts_to(keen)) == 2

    await run_until(deps, keen_done)
    assert shop.texts_to(keen)[-1] == "Deals are on their way."
    keen_id = await contact_id_of(db, merchant, keen)
    row = await (
        await db.execute("SELECT tags, attributes FROM contacts WHERE id = %s", (keen_id,))
    ).fetchone()
    assert row[0] == ["deals"] and row[1]["answer"] == "Yes please!"
    exs = {e["contact_id"]: e for e in await executions(db, survey.id)}
    assert [s[:3] for s in await steps(db, exs[keen_id]["id"])][1] == (
        "wait",
        "COMPLETED",
        "replied",
    )

    quiet_id = await contact_id_of(db, merchant, quiet)
    assert exs[quiet_id]["status"] == "WAITING"
    await fast_forward(db, survey.id)
    await engine_pass(deps)
    quiet_steps = await steps(db, exs[quiet_id]["id"])
    assert ("wait", "COMPLETED", "timeout") in quiet_steps and (
        "silent",
        "COMPLETED",
        "default",
    ) in quiet_steps
    assert (await scalar(db, "SELECT tags FROM contacts WHERE id = %s", quiet_id)) == ["silent"]
    assert len(shop.texts_to(quiet)) == 1


async def test_randomizer_is_sticky_and_start_flow_runs_the_other_flow(
    api, merchant, shop, db, sandbox
):
    s, md, deps = stub(api), api.auth(merchant), api.app.deps
    child = await create_active(
        api,
        merchant,
        flow(shop.account_id, "MANUAL", [n("mark", "ADD_TAG", tags=["child"])], chain("mark")),
    )
    split = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "MANUAL",
            [
                n(
                    "coin",
                    "RANDOMIZER",
                    paths=[{"branch": "a", "weight": 50}, {"branch": "b", "weight": 50}],
                ),
                n("tag_a", "ADD_TAG", tags=["a"]),
                n("tag_b", "ADD_TAG", tags=["b"]),
                n("next", "START_FLOW", flow_id=child.id),
            ],
            [
                c("trigger", "coin"),
                c("coin", "tag_a", "a"),
                c("coin", "tag_b", "b"),
                c("tag_a", "next"),
                c("tag_b", "next"),
            ],
        ),
    )
    people = await add_contacts(db, sandbox, merchant, shop.account_id, 120)
    for cid, _ in people:
        await s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=split.id, contact_id=str(cid)), metadata=md
        )
    await engine_pass(deps, send=False)
    await engine_pass(deps, send=False)  # the started child executions
    rows = await (
        await db.execute(
            "SELECT id, tags FROM contacts WHERE merchant_id = %s AND id = ANY(%s)",
            (merchant, [p[0] for p in people]),
        )
    ).fetchall()
    first = {cid: ("a" if "a" in tags else "b") for cid, tags in rows}
    assert all("child" in tags for _, tags in rows)
    count_a = sum(1 for v in first.values() if v == "a")
    chi2 = ((count_a - 60) ** 2 + (120 - count_a - 60) ** 2) / 60
    assert chi2 < 10.83, count_a  # df 1, alpha 0.001: generous on purpose
    # Entering again, each contact takes the same path.
    await db.execute("UPDATE contacts SET tags = '{}' WHERE merchant_id = %s", (merchant,))
    for cid, _ in people[:30]:
        await s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=split.id, contact_id=str(cid)), metadata=md
        )
    await engine_pass(deps, send=False)
    again = await (
        await db.execute(
            "SELECT id, tags FROM contacts WHERE id = ANY(%s)", ([p[0] for p in people[:30]],)
        )
    ).fetchall()
    assert all(first[cid] in tags for cid, tags in again)
    child_runs = await executions(db, child.id)
    assert len(child_runs) == 120 + 30
    assert {r["trigger_event"]["type"] for r in child_runs} == {"start_flow"}


async def test_version_published_mid_run_keeps_running_executions_on_theirs(
    api, merchant, shop, db, sandbox
):
    s, md, deps = stub(api), api.auth(merchant), api.app.deps
    f = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "MANUAL",
            [
                n("before", "ADD_TAG", tags=["v1"]),
                n("wait", "WAIT", duration="3600s"),
                n("after", "ADD_TAG", tags=["v1-after"]),
            ],
            chain("before", "wait", "after"),
        ),
    )
    (old, _), (new, _) = await add_contacts(db, sandbox, merchant, shop.account_id, 2)
    await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(old)), metadata=md
    )
    await engine_pass(deps, send=False)
    v2 = P.Flow(
        id=f.id,
        nodes=[
            n("before", "ADD_TAG", tags=["v2"]),
            n("wait", "WAIT", duration="3600s"),
            n("after", "ADD_TAG", tags=["v2-after"]),
        ],
        connections=chain("before", "wait", "after"),
    )
    await s.UpdateFlow(
        P.UpdateFlowRequest(flow=v2, update_mask=FieldMask(paths=["nodes"])), metadata=md
    )
    published = await s.ActivateFlow(P.ActivateFlowRequest(id=f.id), metadata=md)
    assert published.published_version == 2
    await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(new)), metadata=md
    )
    await engine_pass(deps, send=False)
    await fast_forward(db, f.id)
    await engine_pass(deps, send=False)
    tags = dict(
        await (
            await db.execute("SELECT id, tags FROM contacts WHERE id = ANY(%s)", ([old, new],))
        ).fetchall()
    )
    assert tags[old] == ["v1", "v1-after"] and tags[new] == ["v2", "v2-after"]
    versions = {
        e["contact_id"]: (e["flow_version"], e["status"]) for e in await executions(db, f.id)
    }
    assert versions == {old: (1, "COMPLETED"), new: (2, "COMPLETED")}


async def test_erasing_a_contact_erases_its_executions(api, merchant, shop, db, sandbox):
    s, md, deps = stub(api), api.auth(merchant), api.app.deps
    f = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "MANUAL",
            [n("wait", "WAIT", duration="3600s"), n("say", "SEND_MESSAGE", text="hi")],
            chain("wait", "say"),
        ),
    )
    (cid, _), (keep, _) = await add_contacts(db, sandbox, merchant, shop.account_id, 2)
    ex = await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=md
    )
    await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(keep)), metadata=md
    )
    await engine_pass(deps, send=False)
    contacts = contacts_pb2_grpc.ContactsServiceStub(api.channel)
    await contacts.DeleteContact(contacts_pb2.DeleteContactRequest(id=str(cid)), metadata=md)
    assert await scalar(db, "SELECT count(*) FROM flow_executions WHERE id = %s", ex.id) == 0
    assert (
        await scalar(db, "SELECT count(*) FROM flow_execution_steps WHERE execution_id = %s", ex.id)
        == 0
    )
    await fast_forward(db, f.id)
    await engine_pass(deps, send=False)
    (left,) = await executions(db, f.id)
    assert left["contact_id"] == keep and left["status"] == "COMPLETED"


async def test_two_runners_do_each_step_once(api, merchant, shop, db, sandbox, settings):
    """Two step runners with their own pools drain the same due executions at once:
    every execution completes with exactly its steps, none twice."""
    import asyncio

    from mktx_grpc.core.db import make_pool
    from mktx_grpc.deps import close_deps, make_deps
    from mktx_grpc.worker.automation import StepOptions, run_due_steps

    s, md = stub(api), api.auth(merchant)
    f = await create_active(
        api,
        merchant,
        flow(
            shop.account_id,
            "MANUAL",
            [
                n("t1", "ADD_TAG", tags=["one"]),
                n("attr", "SET_ATTRIBUTE", key="k", value="v"),
                n("t2", "REMOVE_TAG", tags=["one"]),
                n("end", "END"),
            ],
            chain("t1", "attr", "t2", "end"),
        ),
    )
    people = await add_contacts(db, sandbox, merchant, shop.account_id, 150)
    for cid, _ in people:
        await s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=md
        )
    await drain(api.app.deps.pool, AUTOMATION_TRIGGERS)

    async def runner() -> int:
        pool = make_pool(settings.database_url, min_size=1, max_size=2)
        await pool.open(wait=True)
        deps = make_deps(settings, pool)
        total = 0
        try:
            while claimed := await run_due_steps(deps, StepOptions(batch_size=10)):
                total += claimed
        finally:
            await close_deps(deps)
            await pool.close()
        return total

    done = await asyncio.gather(runner(), runner())
    assert sum(done) == 150
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM flow_executions WHERE flow_id = %s AND status = 'COMPLETED'",
            f.id,
        )
        == 150
    )
    per = await (
        await db.execute(
            "SELECT count(*), count(DISTINCT (execution_id, step_no)) FROM flow_execution_steps WHERE flow_id = %s",
            (f.id,),
        )
    ).fetchone()
    assert per == (600, 600)


async def test_a_disconnected_account_pauses_flow_sends_until_reconnect(api, merchant, shop, db):
    s, md, deps = stub(api), api.auth(merchant), api.app.deps
    f = await create_active(
        api,
        merchant,
        flow(
            shop.account_id, "MANUAL", [n("say", "SEND_MESSAGE", text="still there?")], chain("say")
        ),
    )
    who = shop.customer()
    await shop.dm(who, "hi")  # the contact, through the sidecar

    async def known() -> bool:
        return await contact_id_of(db, merchant, who) is not None

    await run_until(deps, known, send=False)
    cid = await contact_id_of(db, merchant, who)
    await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=md
    )
    await db.execute(
        "UPDATE accounts SET status = 'DISCONNECTED' WHERE id = %s", (shop.account_id,)
    )
    await engine_pass(deps)
    await engine_pass(deps)
    (ex,) = await executions(db, f.id)
    assert ex["status"] == "COMPLETED"  # the flow went on; its DM waits on the ledger
    row = await (
        await db.execute("SELECT state, reason FROM outbound_dms WHERE contact_id = %s", (cid,))
    ).fetchone()
    assert row[0] == "QUEUED" and row[1], row
    assert shop.texts_to(who) == []
    # Reconnected (as CompleteConnection records it).
    await db.execute(
        "UPDATE accounts SET status = 'ACTIVE', updated_at = now() WHERE id = %s",
        (shop.account_id,),
    )

    async def sent() -> bool:
        return shop.texts_to(who) == ["still there?"]

    await run_until(deps, sent)


async def test_one_pass_of_many_executions_sees_its_own_writes(api, merchant, shop, db, sandbox):
    """A pass writes its steps' contact changes together and evaluates its conditions
    together: each condition still sees what the contact's earlier steps (in that
    pass, in either of its two executions) did, nothing one execution wrote is lost
    to the other's, and each change is one contact.updated event."""
    from mktx_grpc.worker.automation import StepOptions, run_due_steps

    s, md = stub(api), api.auth(merchant)

    def branchy(tag: str) -> P.Flow:
        return flow(
            shop.account_id,
            "MANUAL",
            [
                n("add", "ADD_TAG", tags=[tag]),
                n("has", "CONDITION", conditions=tag_condition(tag)),
                n("seen", "ADD_TAG", tags=[f"{tag}-seen"]),
                n("missed", "ADD_TAG", tags=[f"{tag}-missed"]),
                n("set", "SET_ATTRIBUTE", key=f"k_{tag}", value="v"),
                n("drop", "REMOVE_TAG", tags=["pre"]),
                n("still", "CONDITION", conditions=tag_condition("pre")),
                n("kept", "ADD_TAG", tags=["pre-still"]),
                n("unset", "SET_ATTRIBUTE", key=f"k_{tag}", value=None),
                n("end", "END"),
            ],
            [
                c("trigger", "add"),
                c("add", "has"),
                c("has", "seen", "true"),
                c("has", "missed", "false"),
                c("seen", "set"),
                c("missed", "set"),
                c("set", "drop"),
                c("drop", "still"),
                c("still", "kept", "true"),
                c("still", "unset", "false"),
                c("kept", "end"),
                c("unset", "end"),
            ],
        )

    flows = [await create_active(api, merchant, branchy(t)) for t in ("a", "b")]
    people = await add_contacts(
        db, sandbox, merchant, shop.account_id, 12, tags=["pre"], attributes={"keep": 1}
    )
    for cid, _ in people:
        for f in flows:
            await s.StartFlowExecution(
                P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=md
            )
    await drain(api.app.deps.pool, AUTOMATION_TRIGGERS)
    # All 24 executions in one pass.
    assert await run_due_steps(api.app.deps, StepOptions(batch_size=50)) == 24
    assert await run_due_steps(api.app.deps, StepOptions(batch_size=50)) == 0
    for f in flows:
        for ex in await executions(db, f.id):
            assert ex["status"] == "COMPLETED", ex
            got = [(node, branch) for node, _, branch in await steps(db, ex["id"])]
            assert got == [
                ("add", "default"),
                ("has", "true"),
                ("seen", "default"),
                ("set", "default"),
                ("drop", "default"),
                ("still", "false"),
                ("unset", "default"),
                ("end", ""),
            ], got
    for cid, _ in people:
        tags, attrs = await (
            await db.execute("SELECT tags, attributes FROM contacts WHERE id = %s", (cid,))
        ).fetchone()
        assert sorted(tags) == ["a", "a-seen", "b", "b-seen"], tags
        assert attrs == {"keep": 1}, attrs
    events = await (
        await db.execute(
            "SELECT payload FROM domain_events WHERE merchant_id = %s AND type = 'contact.updated'"
            " AND payload ->> 'actor_user_id' LIKE 'flow:%%' ORDER BY id",
            (merchant,),
        )
    ).fetchall()
    added = [t for (p,) in events for t in p.get("tags_added", [])]
    removed = [t for (p,) in events for t in p.get("tags_removed", [])]
    assert sorted(added) == sorted(["a", "a-seen", "b", "b-seen"] * 12)
    # "pre" went once per contact: the second execution found it gone (no event).
    assert removed == ["pre"] * 12
