"""AutomationService over gRPC against real PostgreSQL: flow CRUD, versions
(draft vs published), activation rules, executions RPCs, validation errors and
merchant isolation."""

from __future__ import annotations

import uuid

import grpc
import pytest
from campaign_helpers import add_contacts, add_template, connect_account
from flow_helpers import c, chain, create_active, engine_pass, flow, n, stub
from google.protobuf.field_mask_pb2 import FieldMask
from helpers import expect_error

from mktx.v1 import automation_pb2 as P

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@pytest.fixture
async def account(api, merchant, sandbox, db):
    row, _ = await connect_account(api, merchant, sandbox, db)
    return row


def manual_flow(account_id: str, **kw) -> P.Flow:
    return flow(
        account_id,
        "MANUAL",
        [n("tag", "ADD_TAG", tags=["vip"]), n("nap", "WAIT", duration="3600s"), n("end", "END")],
        chain("tag", "nap", "end"),
        **kw,
    )


async def test_create_get_list_and_versions(api, merchant, account):
    s, md = stub(api), api.auth(merchant)
    aid = str(account["id"])
    created = await s.CreateFlow(
        P.CreateFlowRequest(flow=manual_flow(aid, name="Welcome")), metadata=md
    )
    assert created.status == P.FLOW_STATUS_DRAFT and created.published_version == 0
    assert created.has_unpublished_changes and not created.HasField("published")
    assert [x.id for x in created.nodes] == ["tag", "nap", "end"]
    assert created.trigger.reentry == P.FLOW_REENTRY_POLICY_EVERY_TIME

    active = await s.ActivateFlow(
        P.ActivateFlowRequest(id=created.id, etag=created.etag), metadata=md
    )
    assert active.status == P.FLOW_STATUS_ACTIVE and active.published_version == 1
    assert not active.has_unpublished_changes
    assert [x.id for x in active.published.nodes] == ["tag", "nap", "end"]

    # An active flow's draft is editable; the published version does not change.
    edit = P.Flow(
        id=created.id,
        nodes=[n("tag", "ADD_TAG", tags=["vip", "new"]), n("end", "END")],
        connections=chain("tag", "end"),
    )
    updated = await s.UpdateFlow(
        P.UpdateFlowRequest(
            flow=edit, update_mask=FieldMask(paths=["nodes", "connections"]), etag=active.etag
        ),
        metadata=md,
    )
    assert updated.status == P.FLOW_STATUS_ACTIVE and updated.published_version == 1
    assert updated.has_unpublished_changes
    assert [x.id for x in updated.nodes] == ["tag", "end"]
    assert [x.id for x in updated.published.nodes] == ["tag", "nap", "end"]
    # A stale etag is ABORTED.
    await expect_error(
        s.UpdateFlow(
            P.UpdateFlowRequest(
                flow=P.Flow(id=created.id, name="x"),
                update_mask=FieldMask(paths=["name"]),
                etag=active.etag,
            ),
            metadata=md,
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    v2 = await s.ActivateFlow(P.ActivateFlowRequest(id=created.id), metadata=md)
    assert v2.published_version == 2 and not v2.has_unpublished_changes
    again = await s.ActivateFlow(P.ActivateFlowRequest(id=created.id), metadata=md)
    assert again.published_version == 2  # nothing new to publish: a no-op

    off = await s.DeactivateFlow(P.DeactivateFlowRequest(id=created.id), metadata=md)
    assert off.status == P.FLOW_STATUS_INACTIVE
    on = await s.ActivateFlow(P.ActivateFlowRequest(id=created.id), metadata=md)
    assert on.status == P.FLOW_STATUS_ACTIVE and on.published_version == 2

    other = await s.CreateFlow(P.CreateFlowRequest(flow=manual_flow(aid)), metadata=md)
    page1 = await s.ListFlows(P.ListFlowsRequest(page_size=1), metadata=md)
    assert [f.id for f in page1.flows] == [other.id] and page1.next_page_token
    page2 = await s.ListFlows(
        P.ListFlowsRequest(page_size=1, page_token=page1.next_page_token), metadata=md
    )
    assert [f.id for f in page2.flows] == [created.id] and not page2.next_page_token
    actives = await s.ListFlows(P.ListFlowsRequest(status=P.FLOW_STATUS_ACTIVE), metadata=md)
    assert [f.id for f in actives.flows] == [created.id]
    await expect_error(
        s.CreateFlow(P.CreateFlowRequest(flow=manual_flow(aid, name="Welcome")), metadata=md),
        grpc.StatusCode.ALREADY_EXISTS,
    )


async def test_create_is_idempotent_with_a_request_id(api, merchant, account):
    s, md = stub(api), api.auth(merchant)
    req = P.CreateFlowRequest(flow=manual_flow(str(account["id"])), request_id="create-1")
    first = await s.CreateFlow(req, metadata=md)
    second = await s.CreateFlow(req, metadata=md)
    assert first.id == second.id
    assert len((await s.ListFlows(P.ListFlowsRequest(), metadata=md)).flows) == 1


async def test_validation_reports_every_problem_at_its_field(
    api, merchant, other_merchant, account
):
    s, md = stub(api), api.auth(merchant)
    aid = str(account["id"])
    bad = flow(
        aid,
        "KEYWORD",
        [
            n("a", "SEND_MESSAGE"),
            n("b", "WAIT_FOR_REPLY", timeout="60s"),
            n("c", "ADD_TAG", tags=["x"]),
            n("d", "SEND_MESSAGE", text="loop"),
        ],
        [c("trigger", "a"), c("a", "b"), c("b", "c", "replied"), c("c", "d"), c("d", "c")],
        keywords=["(unclosed"],
        match="regex",
    )
    bad.name = " "
    err = await expect_error(
        s.CreateFlow(P.CreateFlowRequest(flow=bad), metadata=md), INVALID, "VALIDATION_ERROR"
    )
    assert err.bad_request_count == 1
    for f in (
        "flow.name",
        "flow.trigger.config.keywords[0]",
        "flow.nodes[0].config.text",
        "flow.nodes[1]",  # the timeout branch is not connected
        "flow.nodes[2].id",  # c -> d -> c passes through no wait
        "flow.nodes[3].id",
    ):
        assert f in err.bad_fields, (f, err.bad_fields)

    # A NUL character in any field is INVALID_ARGUMENT naming it.
    nul = manual_flow(aid)
    nul.nodes[0].config["tags"][0] = "v\x00ip"
    err = await expect_error(s.CreateFlow(P.CreateFlowRequest(flow=nul), metadata=md), INVALID)
    assert any(f.startswith("flow.nodes[0].config") for f in err.bad_fields), err.bad_fields

    # Unknown enum numbers and a missing account id.
    odd = manual_flow("")
    odd.nodes[0].type = 99
    odd.trigger.type = 77
    err = await expect_error(s.CreateFlow(P.CreateFlowRequest(flow=odd), metadata=md), INVALID)
    assert {"flow.account_id", "flow.nodes[0].type", "flow.trigger.type"} <= set(err.bad_fields)

    # A template or flow that is not the merchant's is named at the node's field.
    theirs = await add_template(api, other_merchant, "Hi from elsewhere")
    refs = flow(
        aid,
        "MANUAL",
        [
            n("send", "SEND_MESSAGE", template_id=theirs),
            n("next", "START_FLOW", flow_id=str(uuid.uuid4())),
        ],
        chain("send", "next"),
    )
    err = await expect_error(s.CreateFlow(P.CreateFlowRequest(flow=refs), metadata=md), INVALID)
    assert err.bad_fields == {
        "flow.nodes[0].config.template_id": "names no template of yours",
        "flow.nodes[1].config.flow_id": "names no flow of yours",
    }
    # Activation needs a complete flow.
    empty = await s.CreateFlow(
        P.CreateFlowRequest(flow=P.Flow(name="empty", account_id=aid)), metadata=md
    )
    err = await expect_error(
        s.ActivateFlow(P.ActivateFlowRequest(id=empty.id), metadata=md), INVALID
    )
    assert {"trigger.type", "nodes"} <= set(err.bad_fields)
    # Request-level checks.
    err = await expect_error(
        s.ListFlows(P.ListFlowsRequest(page_size=-1, status=9), metadata=md), INVALID
    )
    assert {"page_size", "status"} <= set(err.bad_fields)
    err = await expect_error(
        s.UpdateFlow(
            P.UpdateFlowRequest(flow=P.Flow(id="nope"), update_mask=FieldMask(paths=["status"])),
            metadata=md,
        ),
        INVALID,
    )
    assert {"flow.id", "update_mask.paths[0]"} <= set(err.bad_fields)
    err = await expect_error(
        s.ListFlowExecutions(
            P.ListFlowExecutionsRequest(flow_id=empty.id, contact_id="x", status=42), metadata=md
        ),
        INVALID,
    )
    assert {"contact_id", "status"} <= set(err.bad_fields)
    await expect_error(s.GetFlow(P.GetFlowRequest(id="not-a-uuid"), metadata=md), INVALID)
    await expect_error(
        s.CreateFlow(P.CreateFlowRequest(flow=manual_flow(str(uuid.uuid4()))), metadata=md),
        NOT_FOUND,
    )


async def test_another_merchants_flow_is_not_found_on_every_rpc(
    api, merchant, other_merchant, account, sandbox, db
):
    s, md = stub(api), api.auth(merchant)
    f = await create_active(api, merchant, manual_flow(str(account["id"])))
    ((cid, _),) = await add_contacts(db, sandbox, merchant, account["id"], 1)
    ex = await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=md
    )
    them = api.auth(other_merchant)
    calls = [
        s.GetFlow(P.GetFlowRequest(id=f.id), metadata=them),
        s.UpdateFlow(
            P.UpdateFlowRequest(
                flow=P.Flow(id=f.id, name="mine"), update_mask=FieldMask(paths=["name"])
            ),
            metadata=them,
        ),
        s.ActivateFlow(P.ActivateFlowRequest(id=f.id), metadata=them),
        s.DeactivateFlow(P.DeactivateFlowRequest(id=f.id, cancel_executions=True), metadata=them),
        s.DeleteFlow(P.DeleteFlowRequest(id=f.id), metadata=them),
        s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=them
        ),
        s.CancelFlowExecution(P.CancelFlowExecutionRequest(id=ex.id), metadata=them),
        s.ListFlowExecutions(P.ListFlowExecutionsRequest(flow_id=f.id), metadata=them),
        s.GetFlowExecution(P.GetFlowExecutionRequest(id=ex.id), metadata=them),
    ]
    for call in calls:
        await expect_error(call, NOT_FOUND, "RESOURCE_NOT_FOUND")
    assert not (await s.ListFlows(P.ListFlowsRequest(), metadata=them)).flows
    # Nothing changed for the owner.
    mine = await s.GetFlow(P.GetFlowRequest(id=f.id), metadata=md)
    assert mine.status == P.FLOW_STATUS_ACTIVE and mine.name == f.name
    got = await s.GetFlowExecution(P.GetFlowExecutionRequest(id=ex.id), metadata=md)
    assert got.status == P.FLOW_EXECUTION_STATUS_RUNNING


async def test_manual_start_cancel_list_get_and_delete_rules(
    api, merchant, other_merchant, account, sandbox, db
):
    s, md = stub(api), api.auth(merchant)
    draft = await s.CreateFlow(
        P.CreateFlowRequest(flow=manual_flow(str(account["id"]))), metadata=md
    )
    (a, _), (b, _) = await add_contacts(db, sandbox, merchant, account["id"], 2)
    await expect_error(
        s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=draft.id, contact_id=str(a)), metadata=md
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "FLOW_NOT_PUBLISHED",
    )
    f = await s.ActivateFlow(P.ActivateFlowRequest(id=draft.id), metadata=md)
    ex_a = await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(a), request_id="start-a"),
        metadata=md,
    )
    assert ex_a.flow_version == 1 and ex_a.status == P.FLOW_EXECUTION_STATUS_RUNNING
    again = await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(a), request_id="start-a"),
        metadata=md,
    )
    assert again.id == ex_a.id
    await expect_error(
        s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(a)), metadata=md
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    ((theirs, _),) = await add_contacts(db, sandbox, other_merchant, account["id"], 1)
    await expect_error(
        s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(theirs)), metadata=md
        ),
        NOT_FOUND,
    )
    ex_b = await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(b)), metadata=md
    )
    await engine_pass(api.app.deps, send=False)

    got = await s.GetFlowExecution(P.GetFlowExecutionRequest(id=ex_a.id), metadata=md)
    assert got.status == P.FLOW_EXECUTION_STATUS_WAITING and got.current_node_id == "nap"
    assert got.HasField("wake_time")
    assert [(x.node_id, x.status, x.branch) for x in got.steps] == [
        ("tag", P.FLOW_STEP_STATUS_COMPLETED, "default"),
        ("nap", P.FLOW_STEP_STATUS_WAITING, ""),
    ]
    tags = (await (await db.execute("SELECT tags FROM contacts WHERE id = %s", (a,))).fetchone())[0]
    assert tags == ["vip"]

    cancelled = await s.CancelFlowExecution(P.CancelFlowExecutionRequest(id=ex_a.id), metadata=md)
    assert cancelled.status == P.FLOW_EXECUTION_STATUS_CANCELLED and cancelled.HasField(
        "complete_time"
    )
    assert cancelled.steps[-1].status == P.FLOW_STEP_STATUS_SKIPPED
    page = await s.ListFlowExecutions(
        P.ListFlowExecutionsRequest(flow_id=f.id, page_size=1), metadata=md
    )
    assert [e.id for e in page.executions] == [ex_b.id] and page.next_page_token
    assert not page.executions[0].steps
    rest = await s.ListFlowExecutions(
        P.ListFlowExecutionsRequest(flow_id=f.id, page_size=1, page_token=page.next_page_token),
        metadata=md,
    )
    assert [e.id for e in rest.executions] == [ex_a.id] and not rest.next_page_token
    waiting = await s.ListFlowExecutions(
        P.ListFlowExecutionsRequest(flow_id=f.id, status=P.FLOW_EXECUTION_STATUS_WAITING),
        metadata=md,
    )
    assert [e.id for e in waiting.executions] == [ex_b.id]
    of_a = await s.ListFlowExecutions(
        P.ListFlowExecutionsRequest(flow_id=f.id, contact_id=str(a)), metadata=md
    )
    assert [e.id for e in of_a.executions] == [ex_a.id]

    stats = (await s.GetFlow(P.GetFlowRequest(id=f.id), metadata=md)).stats
    assert (
        stats.started_count,
        stats.active_count,
        stats.waiting_count,
        stats.cancelled_count,
    ) == (2, 1, 1, 1)
    per_node = {
        x.node_id: (x.entered_count, x.completed_count, x.waiting_count) for x in stats.nodes
    }
    assert per_node == {"tag": (2, 2, 0), "nap": (2, 0, 1)}

    await expect_error(
        s.DeleteFlow(P.DeleteFlowRequest(id=f.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESOURCE_IN_USE",
    )
    await s.DeactivateFlow(P.DeactivateFlowRequest(id=f.id), metadata=md)
    await expect_error(
        s.DeleteFlow(P.DeleteFlowRequest(id=f.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESOURCE_IN_USE",
    )
    off = await s.DeactivateFlow(
        P.DeactivateFlowRequest(id=f.id, cancel_executions=True), metadata=md
    )
    assert off.stats.active_count == 0 and off.stats.cancelled_count == 2
    await s.DeleteFlow(P.DeleteFlowRequest(id=f.id, etag=off.etag), metadata=md)
    await expect_error(s.GetFlow(P.GetFlowRequest(id=f.id), metadata=md), NOT_FOUND)
    await expect_error(
        s.GetFlowExecution(P.GetFlowExecutionRequest(id=ex_b.id), metadata=md), NOT_FOUND
    )


async def test_timers_due_and_waiting_gauges(api, merchant, account, sandbox, db):
    from flow_helpers import fast_forward

    from mktx_grpc.core.db import use_connection
    from mktx_grpc.metrics import _database_families
    from mktx_grpc.store.metrics import queue_depths

    async def depths() -> tuple[int, int]:
        async with use_connection(api.app.deps.pool):
            d = await queue_depths()
        return d["flow_timers_due"], d["flow_executions_waiting"]

    s, md = stub(api), api.auth(merchant)
    f = await create_active(api, merchant, manual_flow(str(account["id"])))
    for cid, _ in await add_contacts(db, sandbox, merchant, account["id"], 2):
        await s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=md
        )
    assert await depths() == (2, 0)
    await engine_pass(api.app.deps, send=False)
    assert await depths() == (0, 2)
    await fast_forward(db, f.id)
    assert await depths() == (2, 2)
    families = {fam.name: fam for fam in await _database_families(api.app.deps)}
    assert families["mktx_flow_timers_due"].samples[0].value == 2
    assert families["mktx_flow_executions_waiting"].samples[0].value == 2


async def test_cancelling_an_execution_cancels_its_queued_dm(api, merchant, account, sandbox, db):
    from campaign_helpers import scalar

    s, md = stub(api), api.auth(merchant)
    f = await create_active(
        api,
        merchant,
        flow(
            str(account["id"]),
            "MANUAL",
            [n("say", "SEND_MESSAGE", text="hello"), n("nap", "WAIT", duration="60s")],
            chain("say", "nap"),
        ),
    )
    ((cid, _),) = await add_contacts(db, sandbox, merchant, account["id"], 1)
    ex = await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=md
    )
    await engine_pass(api.app.deps, send=False)  # queued on the ledger, not sent
    assert await scalar(db, "SELECT state FROM outbound_dms WHERE contact_id = %s", cid) == "QUEUED"
    await s.CancelFlowExecution(P.CancelFlowExecutionRequest(id=ex.id), metadata=md)
    row = await (
        await db.execute("SELECT state, reason FROM outbound_dms WHERE contact_id = %s", (cid,))
    ).fetchone()
    assert tuple(row) == ("SKIPPED", "cancelled")
    again = await s.CancelFlowExecution(P.CancelFlowExecutionRequest(id=ex.id), metadata=md)
    assert again.status == P.FLOW_EXECUTION_STATUS_CANCELLED  # a no-op the second time


async def test_update_is_validated_like_create(api, merchant, account):
    s, md = stub(api), api.auth(merchant)
    f = await s.CreateFlow(P.CreateFlowRequest(flow=manual_flow(str(account["id"]))), metadata=md)
    loop = P.Flow(
        id=f.id,
        nodes=[n("a", "ADD_TAG", tags=["x"]), n("b", "REMOVE_TAG", tags=["x"])],
        connections=[c("trigger", "a"), c("a", "b"), c("b", "a")],
    )
    err = await expect_error(
        s.UpdateFlow(
            P.UpdateFlowRequest(flow=loop, update_mask=FieldMask(paths=["nodes", "connections"])),
            metadata=md,
        ),
        INVALID,
    )
    assert {"flow.nodes[0].id", "flow.nodes[1].id"} <= set(err.bad_fields)
    # Nothing was saved.
    got = await s.GetFlow(P.GetFlowRequest(id=f.id), metadata=md)
    assert [x.id for x in got.nodes] == ["tag", "nap", "end"] and got.version == f.version


async def test_a_failing_step_fails_the_execution_with_its_error(
    api, merchant, account, sandbox, db
):
    from campaign_helpers import add_template, scalar

    s, md = stub(api), api.auth(merchant)
    tpl = await add_template(api, merchant, "Hello {{first_name}}")
    f = await create_active(
        api,
        merchant,
        flow(
            str(account["id"]), "MANUAL", [n("say", "SEND_MESSAGE", template_id=tpl)], chain("say")
        ),
    )
    (a, _), (b, _) = await add_contacts(db, sandbox, merchant, account["id"], 2)
    # The template disappears after publication (DeleteTemplate refuses while a flow
    # uses it, see below; here it is removed behind the API): the step cannot render it.
    await db.execute("DELETE FROM templates WHERE id = %s", (tpl,))
    ex = await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(a)), metadata=md
    )
    # An execution at the step limit fails rather than running on.
    ex_b = await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(b)), metadata=md
    )
    await db.execute("UPDATE flow_executions SET step_count = 500 WHERE id = %s", (ex_b.id,))
    await engine_pass(api.app.deps, send=False)
    got = await s.GetFlowExecution(P.GetFlowExecutionRequest(id=ex.id), metadata=md)
    assert got.status == P.FLOW_EXECUTION_STATUS_FAILED and "template" in got.error
    assert got.steps[0].status == P.FLOW_STEP_STATUS_FAILED and got.steps[0].error == got.error
    got_b = await s.GetFlowExecution(P.GetFlowExecutionRequest(id=ex_b.id), metadata=md)
    assert got_b.status == P.FLOW_EXECUTION_STATUS_FAILED and "500 steps" in got_b.error
    assert await scalar(db, "SELECT count(*) FROM outbound_dms WHERE flow_id = %s", f.id) == 0
    stats = (await s.GetFlow(P.GetFlowRequest(id=f.id), metadata=md)).stats
    assert stats.failed_count == 2
    assert [(x.node_id, x.failed_count) for x in stats.nodes] == [("say", 1)]


async def test_wait_until_a_time_of_day_in_the_contacts_time_zone(
    api, merchant, account, sandbox, db
):
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    s, md = stub(api), api.auth(merchant)
    f = await create_active(
        api,
        merchant,
        flow(
            str(account["id"]),
            "MANUAL",
            [n("morning", "WAIT", until_time="09:00"), n("end", "END")],
            chain("morning", "end"),
        ),
    )
    ny = (
        await add_contacts(db, sandbox, merchant, account["id"], 1, time_zone="America/New_York")
    )[0][0]
    plain = (await add_contacts(db, sandbox, merchant, account["id"], 1))[0][0]  # merchant's: UTC
    for cid in (ny, plain):
        await s.StartFlowExecution(
            P.StartFlowExecutionRequest(flow_id=f.id, contact_id=str(cid)), metadata=md
        )
    await engine_pass(api.app.deps, send=False)
    rows = dict(
        await (
            await db.execute(
                "SELECT contact_id, wake_at FROM flow_executions WHERE flow_id = %s", (f.id,)
            )
        ).fetchall()
    )
    now = datetime.now(UTC)
    for cid, tz in ((ny, "America/New_York"), (plain, "UTC")):
        local = rows[cid].astimezone(ZoneInfo(tz))
        assert (local.hour, local.minute) == (9, 0), (tz, local)
        assert now < rows[cid] <= now + timedelta(days=1)


async def test_delete_template_used_by_a_flow_is_refused_naming_the_flows(
    api, merchant, account, sandbox, db
):
    """DeleteTemplate of a template a flow sends (its draft, its published version,
    or a version a live execution still runs on) is FAILED_PRECONDITION
    RESOURCE_IN_USE, naming the flows; once none does, it is deleted."""
    from campaign_helpers import scalar

    from mktx.v1 import templates_pb2, templates_pb2_grpc

    s, md = stub(api), api.auth(merchant)
    templates = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    tpl = await add_template(api, merchant, "Hello {{first_name}}")
    other = await add_template(api, merchant, "Unused by flows")
    acct = str(account["id"])

    def uses(t: str) -> list[P.FlowNode]:
        return [n("nap", "WAIT", duration="3600s"), n("say", "SEND_MESSAGE", template_id=t)]

    async def refused(*flow_ids: str) -> None:
        err = await expect_error(
            templates.DeleteTemplate(templates_pb2.DeleteTemplateRequest(id=tpl), metadata=md),
            grpc.StatusCode.FAILED_PRECONDITION,
            "RESOURCE_IN_USE",
        )
        assert set(err.info.metadata["flow_ids"].split(",")) == set(flow_ids), err.info
        assert "flows" in err.message

    draft = await s.CreateFlow(
        P.CreateFlowRequest(flow=flow(acct, "MANUAL", uses(tpl), chain("nap", "say"))),
        metadata=md,
    )
    live = await create_active(
        api, merchant, flow(acct, "MANUAL", uses(tpl.upper()), chain("nap", "say"))
    )
    await refused(draft.id, live.id)
    # The draft stops using it; the active flow's execution parks on v1's WAIT.
    await s.DeleteFlow(P.DeleteFlowRequest(id=draft.id), metadata=md)
    ((cid, _),) = await add_contacts(db, sandbox, merchant, account["id"], 1)
    ex = await s.StartFlowExecution(
        P.StartFlowExecutionRequest(flow_id=live.id, contact_id=str(cid)), metadata=md
    )
    await engine_pass(api.app.deps, send=False)
    # Version 2 sends another template; v1 still runs for the waiting execution.
    edit = P.Flow(id=live.id, nodes=uses(other), connections=chain("nap", "say"))
    got = await s.UpdateFlow(
        P.UpdateFlowRequest(
            flow=edit, update_mask=FieldMask(paths=["nodes", "connections"]), etag=live.etag
        ),
        metadata=md,
    )
    v2 = await s.ActivateFlow(P.ActivateFlowRequest(id=got.id), metadata=md)
    assert v2.published_version == 2
    await refused(live.id)
    # v2 (published) sends `other`: refused as well.
    await expect_error(
        templates.DeleteTemplate(templates_pb2.DeleteTemplateRequest(id=other), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESOURCE_IN_USE",
    )
    # Once v1's last execution is cancelled, nothing uses `tpl` any more.
    await s.CancelFlowExecution(P.CancelFlowExecutionRequest(id=ex.id), metadata=md)
    await templates.DeleteTemplate(templates_pb2.DeleteTemplateRequest(id=tpl), metadata=md)
    assert await scalar(db, "SELECT count(*) FROM templates WHERE id = %s", tpl) == 0
