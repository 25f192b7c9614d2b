"""Automation persistence (sql/queries/automation.sql): flows with their draft and
immutable versions, executions (each its own timer row), the step log, and the few
contact and conversation writes a step makes.

Caller functions run on the current connection, in the caller's transaction. The
functions marked cross-merchant serve the worker's timer claim.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from ..core.context import current_connection
from ..core.errors import AlreadyExists
from ..domain import automation as domain
from ..domain.segments import CompiledSegment, compile_conditions
from . import Jsonb, Queries, Row, execute, fetch_all, fetch_one
from .outbound import cancel_outbound

Q = Queries("automation")

#: NOTIFY channel that wakes the step runners (payload: merchant id).
CHANNEL = "mktx_automation"

LIVE = ("RUNNING", "WAITING")


def _duplicate(name: str) -> AlreadyExists:
    return AlreadyExists(f"a flow named {name!r} already exists")


# ------------------------------------------------------------------ flows


async def insert_flow(
    merchant_id: UUID,
    account_id: UUID,
    name: str,
    description: str,
    definition: dict[str, Any],
    trigger_type: str,
) -> UUID:
    """Insert a DRAFT flow; AlreadyExists when the name is taken."""
    try:
        row = await fetch_one(
            Q.insert_flow,
            {
                "merchant_id": merchant_id,
                "account_id": account_id,
                "name": name,
                "description": description,
                "definition": Jsonb(definition),
                "trigger_type": trigger_type,
            },
        )
    except psycopg.errors.UniqueViolation:
        raise _duplicate(name) from None
    assert row is not None
    return UUID(str(row["id"]))


async def get_flow(merchant_id: UUID, flow_id: UUID) -> Row | None:
    """The flow with ``published_definition`` / ``published_at`` (NULL before the
    first activation)."""
    return await fetch_one(Q.get_flow, {"merchant_id": merchant_id, "id": flow_id})


async def lock_flow(merchant_id: UUID, flow_id: UUID) -> Row | None:
    return await fetch_one(Q.lock_flow, {"merchant_id": merchant_id, "id": flow_id})


async def update_flow(
    merchant_id: UUID,
    flow_id: UUID,
    *,
    name: str,
    description: str,
    definition: dict[str, Any],
    trigger_type: str,
) -> None:
    try:
        await execute(
            Q.update_flow,
            {
                "merchant_id": merchant_id,
                "id": flow_id,
                "name": name,
                "description": description,
                "definition": Jsonb(definition),
                "trigger_type": trigger_type,
            },
        )
    except psycopg.errors.UniqueViolation:
        raise _duplicate(name) from None


async def publish(
    merchant_id: UUID, flow_id: UUID, version: int, definition: dict[str, Any], trigger_type: str
) -> None:
    """Store ``definition`` as immutable version ``version`` and make it the flow's
    published, ACTIVE version."""
    await execute(
        Q.insert_flow_version,
        {
            "merchant_id": merchant_id,
            "flow_id": flow_id,
            "version": version,
            "definition": Jsonb(definition),
            "trigger_type": trigger_type,
        },
    )
    await execute(
        Q.activate_flow,
        {"merchant_id": merchant_id, "id": flow_id, "published_version": version},
    )


async def activate_published(merchant_id: UUID, flow_id: UUID, version: int) -> None:
    """Make the flow ACTIVE again on its existing published ``version``."""
    await execute(
        Q.activate_flow,
        {"merchant_id": merchant_id, "id": flow_id, "published_version": version},
    )


async def deactivate(merchant_id: UUID, flow_id: UUID) -> None:
    await execute(Q.deactivate_flow, {"merchant_id": merchant_id, "id": flow_id})


async def delete_flow(merchant_id: UUID, flow_id: UUID) -> None:
    await execute(Q.delete_flow, {"merchant_id": merchant_id, "id": flow_id})


async def list_flows(
    merchant_id: UUID,
    *,
    account_id: UUID | None,
    status: str | None,
    trigger_type: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Row]:
    return await fetch_all(
        Q.list_flows,
        {
            "merchant_id": merchant_id,
            "account_id": account_id,
            "status": status,
            "trigger_type": trigger_type,
            "after_created": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


async def _existing(query: str, merchant_id: UUID, ids: Iterable[str]) -> set[str]:
    wanted = {str(UUID(i)) for i in ids}
    if not wanted:
        return set()
    rows = await fetch_all(query, {"merchant_id": merchant_id, "ids": list(wanted)})
    return {str(r["id"]) for r in rows}


async def existing_templates(merchant_id: UUID, ids: Iterable[str]) -> set[str]:
    """The ids (canonical form) among ``ids`` that are templates of this merchant."""
    return await _existing(Q.existing_template_ids, merchant_id, ids)


async def existing_flows(merchant_id: UUID, ids: Iterable[str]) -> set[str]:
    return await _existing(Q.existing_flow_ids, merchant_id, ids)


async def live_execution_count(merchant_id: UUID, flow_id: UUID) -> int:
    row = await fetch_one(Q.live_execution_count, {"merchant_id": merchant_id, "flow_id": flow_id})
    return int(row["n"]) if row else 0


async def stats(merchant_id: UUID, flow_id: UUID) -> tuple[Row | None, list[Row]]:
    """Execution totals of the flow and its per-node step counts."""
    params = {"merchant_id": merchant_id, "flow_id": flow_id}
    totals = await fetch_one(Q.flow_stats, params)
    nodes = await fetch_all(Q.flow_node_stats, params)
    return totals, nodes


# ------------------------------------------------------------------ executions


async def active_flows(merchant_id: UUID, account_id: UUID, types: Iterable[str]) -> list[Row]:
    """ACTIVE flows of the account whose published trigger type is one of ``types``,
    with their published ``definition``."""
    return await fetch_all(
        Q.active_flows_for_account,
        {"merchant_id": merchant_id, "account_id": account_id, "types": list(types)},
    )


async def flow_version(merchant_id: UUID, flow_id: UUID, version: int) -> dict[str, Any] | None:
    row = await fetch_one(
        Q.get_flow_version, {"merchant_id": merchant_id, "flow_id": flow_id, "version": version}
    )
    return None if row is None else dict(row["definition"])


async def contact_entries(merchant_id: UUID, flow_id: UUID, contact_id: UUID) -> Row:
    """``n`` previous executions, ``last_start``, ``live`` (one is running)."""
    row = await fetch_one(
        Q.contact_entries,
        {"merchant_id": merchant_id, "flow_id": flow_id, "contact_id": contact_id},
    )
    assert row is not None
    return row


async def insert_execution(
    merchant_id: UUID,
    *,
    flow_id: UUID,
    flow_version: int,
    account_id: UUID,
    contact_id: UUID,
    conversation_id: UUID | None,
    trigger_key: str,
    trigger_event: dict[str, Any],
    node_id: str,
) -> Row | None:
    """A RUNNING execution due now; None when this trigger event already started the
    flow for the contact, or the contact is in a live execution of it. Wakes the step
    runners when it commits."""
    row = await fetch_one(
        Q.insert_execution,
        {
            "merchant_id": merchant_id,
            "flow_id": flow_id,
            "flow_version": flow_version,
            "account_id": account_id,
            "contact_id": contact_id,
            "conversation_id": conversation_id,
            "trigger_key": trigger_key,
            "trigger_event": Jsonb(trigger_event),
            "node_id": node_id,
        },
    )
    if row is not None:
        await notify(merchant_id)
    return row


async def notify(merchant_id: UUID) -> None:
    await execute(
        sql.SQL("SELECT pg_notify({}, %(payload)s)").format(sql.Literal(CHANNEL)),  # type: ignore[arg-type]
        {"payload": str(merchant_id)},
    )


async def get_execution(merchant_id: UUID, execution_id: UUID, *, lock: bool = False) -> Row | None:
    q = Q.lock_execution if lock else Q.get_execution
    return await fetch_one(q, {"merchant_id": merchant_id, "id": execution_id})


async def execution_steps(merchant_id: UUID, execution_id: UUID) -> list[Row]:
    return await fetch_all(Q.execution_steps, {"merchant_id": merchant_id, "id": execution_id})


async def list_executions(
    merchant_id: UUID,
    flow_id: UUID,
    *,
    status: str | None,
    contact_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Row]:
    return await fetch_all(
        Q.list_executions,
        {
            "merchant_id": merchant_id,
            "flow_id": flow_id,
            "status": status,
            "contact_id": contact_id,
            "after_created": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


async def cancel_executions(
    merchant_id: UUID, *, flow_id: UUID | None = None, execution_id: UUID | None = None
) -> list[UUID]:
    """Cancel the flow's live executions, or one, with the DMs they queued that no
    sender has armed yet (SKIPPED 'cancelled' on the ledger) and the AI reply
    requests their ai_reply steps wait on that no assistant has taken yet
    (:func:`withdraw_ai_replies`); returns the ids cancelled."""
    rows = await fetch_all(
        Q.cancel_executions,
        {"merchant_id": merchant_id, "flow_id": flow_id, "id": execution_id},
    )
    for r in rows:
        await cancel_outbound(merchant_id, "flow", f"{r['id']}:")
    awaited = {str(r["ai_reply_message_id"]) for r in rows if r["ai_reply_message_id"]}
    if awaited:
        await withdraw_ai_replies(merchant_id, awaited)
    return [r["id"] for r in rows]


async def withdraw_ai_replies(merchant_id: UUID, message_ids: Iterable[str]) -> int:
    """Withdraw the assistant's QUEUED rows for these messages that only cancelled
    ai_reply steps wanted (not auto-reply's, none another live execution waits on);
    returns rows withdrawn."""
    ids: list[str] = []
    for i in message_ids:
        try:
            ids.append(str(UUID(i)))
        except ValueError:
            continue
    if not ids:
        return 0
    return await execute(Q.withdraw_ai_replies, {"merchant_id": merchant_id, "message_ids": ids})


async def claim_due(limit: int) -> list[Row]:
    """Cross-merchant: lock up to ``limit`` due executions for this transaction,
    skipping those other workers hold."""
    return await fetch_all(Q.claim_due_executions, {"limit": limit})


async def seconds_to_next_due() -> float | None:
    """Cross-merchant: seconds until the next timer is due (<= 0: due now)."""
    row = await fetch_one(Q.next_due, {})
    if row is None or row["seconds"] is None:
        return None
    return float(row["seconds"])


async def save_execution(merchant_id: UUID, execution_id: UUID, **fields: Any) -> None:
    params = {
        "merchant_id": merchant_id,
        "id": execution_id,
        **fields,
        "context": Jsonb(fields["context"]),
    }
    await execute(Q.save_execution, params)


async def insert_step(
    merchant_id: UUID,
    *,
    execution_id: UUID,
    flow_id: UUID,
    step_no: int,
    node_id: str,
    node_type: str,
    status: str,
    branch: str,
    output: dict[str, Any],
    error: str,
) -> None:
    await execute(
        Q.insert_step,
        {
            "merchant_id": merchant_id,
            "execution_id": execution_id,
            "flow_id": flow_id,
            "step_no": step_no,
            "node_id": node_id,
            "node_type": node_type,
            "status": status,
            "branch": branch,
            "output": Jsonb(output),
            "error": error,
        },
    )


async def finish_step(
    merchant_id: UUID,
    execution_id: UUID,
    step_no: int,
    *,
    status: str,
    branch: str,
    output: dict[str, Any],
) -> None:
    await execute(
        Q.finish_step,
        {
            "merchant_id": merchant_id,
            "execution_id": execution_id,
            "step_no": step_no,
            "status": status,
            "branch": branch,
            "output": Jsonb(output),
        },
    )


async def reply_waits(merchant_id: UUID, contact_id: UUID) -> list[Row]:
    """The contact's executions waiting for a reply, locked."""
    return await fetch_all(
        Q.reply_waits_for_update, {"merchant_id": merchant_id, "contact_id": contact_id}
    )


async def resolve_reply(
    merchant_id: UUID, execution_id: UUID, branch: str, context: dict[str, Any]
) -> None:
    """Make a reply-waiting execution due now, continuing on ``branch``."""
    await execute(
        Q.resolve_reply_wait,
        {
            "merchant_id": merchant_id,
            "id": execution_id,
            "branch": branch,
            "context": Jsonb(context),
        },
    )


# ------------------------------------------------------------------ what steps touch


async def contact(merchant_id: UUID, contact_id: UUID) -> Row | None:
    return await fetch_one(Q.flow_contact, {"merchant_id": merchant_id, "id": contact_id})


async def merchant_time_zone(merchant_id: UUID) -> str:
    row = await fetch_one(Q.merchant_time_zone, {"merchant_id": merchant_id})
    return str(row["time_zone"]) if row else "UTC"


async def add_tags(merchant_id: UUID, contact_id: UUID, tags: list[str]) -> None:
    await execute(Q.add_contact_tags, {"merchant_id": merchant_id, "id": contact_id, "tags": tags})


async def remove_tags(merchant_id: UUID, contact_id: UUID, tags: list[str]) -> None:
    await execute(
        Q.remove_contact_tags, {"merchant_id": merchant_id, "id": contact_id, "tags": tags}
    )


async def set_attribute(merchant_id: UUID, contact_id: UUID, key: str, value: Any) -> None:
    """Set attribute ``key`` to ``value`` (None removes it)."""
    await execute(
        Q.set_contact_attribute,
        {
            "merchant_id": merchant_id,
            "id": contact_id,
            "key": key,
            "remove": value is None,
            "value": Jsonb(value),
        },
    )


async def live_conversation(merchant_id: UUID, account_id: UUID, contact_id: UUID) -> Row | None:
    return await fetch_one(
        Q.live_conversation,
        {"merchant_id": merchant_id, "account_id": account_id, "contact_id": contact_id},
    )


async def escalate_conversation(merchant_id: UUID, conversation_id: UUID, reason: str) -> None:
    await execute(
        Q.escalate_conversation,
        {"merchant_id": merchant_id, "id": conversation_id, "reason": reason},
    )


async def message(merchant_id: UUID, message_id: UUID) -> Row | None:
    return await fetch_one(Q.inbound_message, {"merchant_id": merchant_id, "id": message_id})


async def inbound_message_count(merchant_id: UUID, contact_id: UUID) -> int:
    row = await fetch_one(
        Q.inbound_message_count, {"merchant_id": merchant_id, "contact_id": contact_id}
    )
    return int(row["n"]) if row else 0


@lru_cache(maxsize=1024)
def _compiled_condition(conditions_json: str) -> CompiledSegment:
    """Compiled segment conditions, cached: a flow version's conditions never change."""
    return compile_conditions(json.loads(conditions_json))


async def contact_matches(merchant_id: UUID, contact_id: UUID, conditions: dict[str, Any]) -> bool:
    """Whether the contact matches segment ``conditions`` now (the segment compiler,
    evaluated for one contact)."""
    compiled = _compiled_condition(json.dumps(conditions, sort_keys=True))
    query = sql.SQL(Q.contact_matches).format(where=compiled.where)
    row = await fetch_one(
        query,  # type: ignore[arg-type]
        {**compiled.params, "merchant_id": merchant_id, "contact_id": contact_id},
    )
    return bool(row and row["total"])


async def start_execution(
    merchant_id: UUID,
    *,
    flow_id: UUID,
    flow_version: int,
    definition: dict[str, Any],
    account_id: UUID,
    contact_id: UUID,
    conversation_id: UUID | None,
    trigger_key: str,
    trigger_event: dict[str, Any],
    check_reentry: bool = True,
) -> Row | None:
    """Start the flow's published ``definition`` for a contact, in the caller's
    transaction: None when the re-entry policy refuses, the contact is in a live
    execution of the flow, or ``trigger_key`` already started it (a replayed event)."""
    d = domain.Definition.from_json(definition)
    entry = domain.Graph(d).entry
    if entry is None:
        return None
    if check_reentry:
        prev = await contact_entries(merchant_id, flow_id, contact_id)
        if not domain.may_enter(
            d.trigger, int(prev["n"]), prev["last_start"], bool(prev["live"]), datetime.now(UTC)
        ):
            return None
    return await insert_execution(
        merchant_id,
        flow_id=flow_id,
        flow_version=flow_version,
        account_id=account_id,
        contact_id=contact_id,
        conversation_id=conversation_id,
        trigger_key=trigger_key,
        trigger_event=trigger_event,
        node_id=entry,
    )


async def conversation_inbound_count(merchant_id: UUID, conversation_id: UUID) -> int:
    row = await fetch_one(
        Q.conversation_inbound_count,
        {"merchant_id": merchant_id, "conversation_id": conversation_id},
    )
    return int(row["n"]) if row else 0


async def contacts_for_steps(merchant_id: UUID, ids: Iterable[UUID]) -> dict[UUID, Row]:
    """The contacts of a claimed batch (one merchant), by id."""
    rows = await fetch_all(Q.contacts_for_steps, {"merchant_id": merchant_id, "ids": list(ids)})
    return {r["id"]: r for r in rows}


def _plain(value: Any) -> Any:
    """A value for a pass's jsonb rows (ids and times as text)."""
    if isinstance(value, (UUID, datetime)):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return value


def _rows(params: list[dict[str, Any]]) -> str:
    return json.dumps([{k: _plain(v) for k, v in p.items()} for p in params])


def step_params(merchant_id: UUID, **fields: Any) -> dict[str, Any]:
    """One step log row for :func:`insert_steps` (fields as :func:`insert_step`)."""
    return {"merchant_id": merchant_id, **fields}


def execution_params(merchant_id: UUID, execution_id: UUID, **fields: Any) -> dict[str, Any]:
    """One execution update for :func:`save_executions` (fields as :func:`save_execution`)."""
    return {"merchant_id": merchant_id, "id": execution_id, **fields}


def finish_params(
    merchant_id: UUID, execution_id: UUID, step_no: int, **fields: Any
) -> dict[str, Any]:
    """One resumed step for :func:`finish_steps` (fields as :func:`finish_step`)."""
    return {"merchant_id": merchant_id, "execution_id": execution_id, "step_no": step_no, **fields}


async def insert_steps(params: list[dict[str, Any]]) -> None:
    """Insert step log rows (any merchants) in one statement."""
    if params:
        await execute(Q.insert_steps, {"rows": _rows(params)})


async def finish_steps(params: list[dict[str, Any]]) -> None:
    """Finish parked steps (any merchants) in one statement."""
    if params:
        await execute(Q.finish_steps, {"rows": _rows(params)})


async def save_executions(params: list[dict[str, Any]]) -> None:
    """Write executions' new state (any merchants, each once) in one statement."""
    if params:
        await execute(Q.save_executions, {"rows": _rows(params)})


async def apply_contact_changes(changes: list[dict[str, Any]]) -> None:
    """Apply net tag and attribute changes, one row per contact (``merchant_id``,
    ``id``, ``add_tags``, ``del_tags``, ``set_attrs``, ``unset_attrs``), in one
    statement relative to the contacts as they are now."""
    if changes:
        await execute(Q.apply_contact_changes, {"rows": _rows(changes)})


async def contacts_matching(
    merchant_id: UUID, contact_ids: Iterable[UUID], conditions: dict[str, Any]
) -> set[UUID]:
    """Which of the contacts match segment ``conditions`` now (one query for many:
    the segment compiler, as :func:`contact_matches`)."""
    compiled = _compiled_condition(json.dumps(conditions, sort_keys=True))
    query = sql.SQL(Q.contacts_matching).format(where=compiled.where)
    rows = await fetch_all(
        query,  # type: ignore[arg-type]
        {
            **compiled.params,
            "merchant_id": merchant_id,
            "flow_contact_ids": [str(c) for c in contact_ids],
        },
    )
    return {r["id"] for r in rows}


async def reply_waits_many(merchant_id: UUID, contact_ids: Iterable[UUID]) -> list[Row]:
    """The executions of these contacts waiting for a reply, locked."""
    return await fetch_all(
        Q.reply_waits_many_for_update,
        {"merchant_id": merchant_id, "contact_ids": list(contact_ids)},
    )


async def messages(merchant_id: UUID, ids: Iterable[UUID]) -> dict[UUID, Row]:
    rows = await fetch_all(Q.inbound_messages, {"merchant_id": merchant_id, "ids": list(ids)})
    return {r["id"]: r for r in rows}


def new_execution_params(
    merchant_id: UUID,
    *,
    flow_id: UUID,
    flow_version: int,
    account_id: UUID,
    contact_id: UUID,
    conversation_id: UUID | None,
    trigger_key: str,
    trigger_event: dict[str, Any],
    node_id: str,
) -> dict[str, Any]:
    """One execution for :func:`insert_executions` (as :func:`insert_execution`)."""
    return {
        "merchant_id": merchant_id,
        "flow_id": flow_id,
        "flow_version": flow_version,
        "account_id": account_id,
        "contact_id": contact_id,
        "conversation_id": conversation_id,
        "trigger_key": trigger_key,
        "trigger_event": Jsonb(trigger_event),
        "node_id": node_id,
    }


async def insert_executions(params: list[dict[str, Any]]) -> None:
    """Insert executions in one pipelined executemany, each skipped on conflict as
    :func:`insert_execution` is, and wake the step runners once per merchant."""
    if not params:
        return
    async with current_connection().cursor() as cur:
        await cur.executemany(Q.insert_execution, params)
    for m in {p["merchant_id"] for p in params}:
        await notify(m)


async def flows_using_template(merchant_id: UUID, template_id: UUID) -> list[Row]:
    """The merchant's flows (``id``, ``name``, ``status``) whose draft, published
    version or a version a live execution runs on sends the template."""
    return await fetch_all(
        Q.flows_using_template, {"merchant_id": merchant_id, "template_id": str(template_id)}
    )
