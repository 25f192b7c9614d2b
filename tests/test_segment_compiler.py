"""compile_conditions against a real PostgreSQL: each field × operator matches exactly
the contacts it should, nested groups combine, hostile values match literally and
never reach the SQL text, and other merchants' rows never leak in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from mktx.v1 import segments_pb2 as S
from mktx_grpc.core.errors import InvalidArgument
from mktx_grpc.domain.segments import (
    compile_conditions,
    conditions_from_json,
    conditions_to_json,
    like_escape,
    validate_conditions,
)

Op = S.ConditionOperator
M = uuid.UUID("00000000-0000-4000-8000-00000000000a")
OTHER = uuid.UUID("00000000-0000-4000-8000-00000000000b")
C1 = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
C2 = uuid.UUID("00000000-0000-4000-8000-0000000000c2")
C_OTHER = uuid.UUID("00000000-0000-4000-8000-0000000000c3")
HOSTILE = "'; drop table contacts; --"
EVERYONE = {"alice", "bob", "carol", "dave", "erin", "frank"}


def when(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def tsp(s: str) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(when(s))
    return t


# label: username, display_name, tags, attributes, source, follows, language, time_zone,
#        created_at, last_interaction (days ago or None), first_interaction
PEOPLE: list[tuple[Any, ...]] = [
    (
        "alice",
        "alice",
        "Alice Liddell",
        ["vip", "promo"],
        {"score": 90, "plan": "Gold", "beta": True, "signup": "2024-01-15T10:00:00Z"},
        "INBOUND_MESSAGE",
        True,
        "en",
        "Europe/Berlin",
        "2024-01-01",
        2,
        "2023-12-01",
    ),
    (
        "bob",
        "bob",
        "Bob 100% Real_Name",
        ["promo"],
        {"score": 40, "plan": "silver", "beta": False, "signup": "not a date"},
        "NEW_FOLLOWER",
        False,
        "de",
        "",
        "2024-03-01",
        40,
        None,
    ),
    (
        "carol",
        "carol",
        "Carol O'Brien \\ back",
        [],
        {"score": "95", "plan": "GOLD plus"},
        "MENTION",
        False,
        "",
        "",
        "2024-06-01",
        None,
        None,
    ),
    (
        "dave",
        "dave",
        "Dave_%",
        ["vip"],
        {"signup": "2023-05-05"},
        "IMPORT",
        True,
        "en",
        "",
        "2023-06-01",
        400,
        "2023-06-01",
    ),
    (
        "erin",
        "",
        HOSTILE,
        [HOSTILE],
        {"note": HOSTILE},
        "MANUAL",
        False,
        "",
        "",
        "2024-02-01",
        10,
        None,
    ),
    (
        "frank",
        "frank",
        "Zoë Ünïcødé 日本",
        ["日本"],
        {"score": 40.5},
        "MANUAL",
        False,
        "pt-BR",
        "Asia/Tokyo",
        "2024-04-01",
        1,
        None,
    ),
]


@pytest.fixture(scope="module")
def conn(pg_admin_url: str, template_db: str) -> Iterator[psycopg.Connection[Any]]:
    name = f"mktx_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    c = psycopg.connect(make_conninfo(pg_admin_url, dbname=name), autocommit=True)
    try:
        _populate(c)
        yield c
    finally:
        c.close()
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _populate(c: psycopg.Connection[Any]) -> None:
    acc, other_acc = uuid.uuid4(), uuid.uuid4()
    for a, m in ((acc, M), (other_acc, OTHER)):
        c.execute(
            "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method)"
            " VALUES (%s, %s, %s, 'OAUTH1')",
            (a, m, str(a.int % 10**12)),
        )
    ids: dict[str, uuid.UUID] = {}
    for (
        label,
        username,
        display,
        tags,
        attrs,
        source,
        follows,
        lang,
        tz,
        created,
        last_days,
        first,
    ) in PEOPLE:
        ids[label] = c.execute(
            "INSERT INTO contacts (merchant_id, account_id, x_user_id, username, display_name,"
            " tags, attributes, source, follows_account, language, time_zone, created_at,"
            " last_interaction_at, first_interaction_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " now() - make_interval(days => %s::int), %s) RETURNING id",
            (
                M,
                acc,
                label,
                username,
                display,
                tags,
                Jsonb(attrs),
                source,
                follows,
                lang,
                tz,
                when(created),
                last_days,
                when(first) if first else None,
            ),
        ).fetchone()[0]
    # Another merchant's contact that matches nearly everything.
    ids["other"] = c.execute(
        "INSERT INTO contacts (merchant_id, account_id, x_user_id, username, display_name, tags,"
        " attributes, follows_account, last_interaction_at)"
        " VALUES (%s, %s, 'other', 'alice', 'Alice Liddell', '{vip,promo}',"
        ' \'{"score": 90, "plan": "Gold"}\', true, now()) RETURNING id',
        (OTHER, other_acc),
    ).fetchone()[0]

    def conversation(merchant: uuid.UUID, account: uuid.UUID, who: str, status: str) -> uuid.UUID:
        return c.execute(
            "INSERT INTO conversations (merchant_id, account_id, contact_id, status)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (merchant, account, ids[who], status),
        ).fetchone()[0]

    def message(merchant: uuid.UUID, conv: uuid.UUID, direction: str, state: str) -> None:
        c.execute(
            "INSERT INTO messages (merchant_id, conversation_id, direction, delivery_state)"
            " VALUES (%s, %s, %s, %s)",
            (merchant, conv, direction, state),
        )

    a = conversation(M, acc, "alice", "OPEN")
    for direction, state in [
        ("OUTBOUND", "SENT"),
        ("OUTBOUND", "READ"),
        ("OUTBOUND", "FAILED"),
        ("INBOUND", "DELIVERED"),
    ]:
        message(M, a, direction, state)
    b = conversation(M, acc, "bob", "CLOSED")
    message(M, b, "INBOUND", "DELIVERED")
    conversation(M, acc, "carol", "PENDING")
    # Rows carrying another merchant's id never count for this merchant's contacts.
    f = conversation(OTHER, acc, "frank", "OPEN")
    message(OTHER, f, "OUTBOUND", "SENT")
    message(OTHER, f, "INBOUND", "SENT")

    for cid, merchant in ((C1, M), (C2, M), (C_OTHER, OTHER)):
        c.execute(
            "INSERT INTO campaigns (id, merchant_id, account_id, name, type)"
            " VALUES (%s, %s, %s, 'c', 'BULK_DM')",
            (cid, merchant, acc if merchant == M else other_acc),
        )

    def recipient(
        merchant: uuid.UUID, campaign: uuid.UUID, who: str, state: str, replied: bool = False
    ) -> None:
        c.execute(
            "INSERT INTO campaign_recipients (merchant_id, campaign_id, contact_id, state,"
            " replied_at) VALUES (%s, %s, %s, %s, CASE WHEN %s THEN now() END)",
            (merchant, campaign, ids[who], state, replied),
        )

    recipient(M, C1, "alice", "SENT")
    recipient(M, C1, "bob", "REPLIED", replied=True)
    recipient(M, C1, "carol", "QUEUED")
    recipient(M, C1, "dave", "FAILED")
    recipient(M, C2, "alice", "DELIVERED")
    recipient(OTHER, C1, "erin", "REPLIED", replied=True)
    recipient(OTHER, C_OTHER, "other", "SENT")


def matched(
    conn: psycopg.Connection[Any], group: S.ConditionGroup, merchant: uuid.UUID = M
) -> set[str]:
    compiled = compile_conditions(conditions_to_json(group))
    query = sql.SQL(
        "SELECT c.x_user_id FROM contacts c WHERE c.merchant_id = %(merchant_id)s AND {}"
    ).format(compiled.where)
    rows = conn.execute(query, {**compiled.params, "merchant_id": merchant}).fetchall()
    return {r[0] for r in rows}


def cond(field: str, op: int, **value: Any) -> S.ConditionNode:
    if "strings" in value:
        value["string_list"] = S.ConditionStringList(values=value.pop("strings"))
    if "num_range" in value:
        lo, hi = value.pop("num_range")
        value["number_range"] = S.ConditionNumberRange(min=lo, max=hi)
    if "time_range" in value:
        lo, hi = value.pop("time_range")
        value["timestamp_range"] = S.ConditionTimestampRange(start_time=tsp(lo), end_time=tsp(hi))
    if "ts" in value:
        value["timestamp_value"] = tsp(value.pop("ts"))
    return S.ConditionNode(condition=S.Condition(field=field, operator=op, **value))


def AND(*nodes: S.ConditionNode) -> S.ConditionGroup:
    return S.ConditionGroup(operator=S.CONDITION_GROUP_OPERATOR_AND, nodes=nodes)


def OR(*nodes: S.ConditionNode) -> S.ConditionGroup:
    return S.ConditionGroup(operator=S.CONDITION_GROUP_OPERATOR_OR, nodes=nodes)


def grp(g: S.ConditionGroup) -> S.ConditionNode:
    return S.ConditionNode(group=g)


def but(*labels: str) -> set[str]:
    return EVERYONE - set(labels)


CASES: list[tuple[str, S.ConditionNode, set[str]]] = [
    # tags (stored lowercased; conditions are case-insensitive)
    (
        "tags contains",
        cond("tags", Op.CONDITION_OPERATOR_CONTAINS, string_value="VIP"),
        {"alice", "dave"},
    ),
    (
        "tags not_contains",
        cond("tags", Op.CONDITION_OPERATOR_NOT_CONTAINS, string_value="vip"),
        but("alice", "dave"),
    ),
    (
        "tags in",
        cond("tags", Op.CONDITION_OPERATOR_IN, strings=["promo", "日本"]),
        {"alice", "bob", "frank"},
    ),
    (
        "tags not_in",
        cond("tags", Op.CONDITION_OPERATOR_NOT_IN, strings=["promo", "vip"]),
        {"carol", "erin", "frank"},
    ),
    ("tags is_set", cond("tags", Op.CONDITION_OPERATOR_IS_SET), but("carol")),
    ("tags is_not_set", cond("tags", Op.CONDITION_OPERATOR_IS_NOT_SET), {"carol"}),
    ("tags hostile", cond("tags", Op.CONDITION_OPERATOR_CONTAINS, string_value=HOSTILE), {"erin"}),
    # username
    (
        "username equals",
        cond("username", Op.CONDITION_OPERATOR_EQUALS, string_value="ALICE"),
        {"alice"},
    ),
    (
        "username not_equals",
        cond("username", Op.CONDITION_OPERATOR_NOT_EQUALS, string_value="alice"),
        but("alice"),
    ),
    (
        "username contains",
        cond("username", Op.CONDITION_OPERATOR_CONTAINS, string_value="a"),
        {"alice", "carol", "dave", "frank"},
    ),
    (
        "username starts_with",
        cond("username", Op.CONDITION_OPERATOR_STARTS_WITH, string_value="B"),
        {"bob"},
    ),
    (
        "username ends_with",
        cond("username", Op.CONDITION_OPERATOR_ENDS_WITH, string_value="E"),
        {"alice", "dave"},
    ),
    (
        "username in",
        cond("username", Op.CONDITION_OPERATOR_IN, strings=["Bob", "carol"]),
        {"bob", "carol"},
    ),
    (
        "username not_in",
        cond("username", Op.CONDITION_OPERATOR_NOT_IN, strings=["Bob", "carol"]),
        but("bob", "carol"),
    ),
    ("username is_set", cond("username", Op.CONDITION_OPERATOR_IS_SET), but("erin")),
    ("username is_not_set", cond("username", Op.CONDITION_OPERATOR_IS_NOT_SET), {"erin"}),
    # display_name: LIKE wildcards and quotes match literally
    (
        "display contains %",
        cond("display_name", Op.CONDITION_OPERATOR_CONTAINS, string_value="%"),
        {"bob", "dave"},
    ),
    (
        "display contains _",
        cond("display_name", Op.CONDITION_OPERATOR_CONTAINS, string_value="_"),
        {"bob", "dave"},
    ),
    (
        "display contains \\",
        cond("display_name", Op.CONDITION_OPERATOR_CONTAINS, string_value="\\"),
        {"carol"},
    ),
    (
        "display contains '",
        cond("display_name", Op.CONDITION_OPERATOR_CONTAINS, string_value="'"),
        {"carol", "erin"},
    ),
    (
        "display starts_with %",
        cond("display_name", Op.CONDITION_OPERATOR_STARTS_WITH, string_value="%"),
        set(),
    ),
    (
        "display ends_with _%",
        cond("display_name", Op.CONDITION_OPERATOR_ENDS_WITH, string_value="_%"),
        {"dave"},
    ),
    (
        "display equals no wildcard",
        cond("display_name", Op.CONDITION_OPERATOR_EQUALS, string_value="Dave__"),
        set(),
    ),
    (
        "display not_contains %",
        cond("display_name", Op.CONDITION_OPERATOR_NOT_CONTAINS, string_value="%"),
        but("bob", "dave"),
    ),
    (
        "display unicode case-insensitive",
        cond("display_name", Op.CONDITION_OPERATOR_CONTAINS, string_value="zOË ünïcødÉ 日本"),
        {"frank"},
    ),
    (
        "display hostile equals",
        cond("display_name", Op.CONDITION_OPERATOR_EQUALS, string_value=HOSTILE),
        {"erin"},
    ),
    (
        "display long",
        cond("display_name", Op.CONDITION_OPERATOR_CONTAINS, string_value="x" * 500),
        set(),
    ),
    # language, time_zone
    (
        "language equals",
        cond("language", Op.CONDITION_OPERATOR_EQUALS, string_value="EN"),
        {"alice", "dave"},
    ),
    ("language in", cond("language", Op.CONDITION_OPERATOR_IN, strings=["pt-br"]), {"frank"}),
    ("language is_not_set", cond("language", Op.CONDITION_OPERATOR_IS_NOT_SET), {"carol", "erin"}),
    ("time_zone is_set", cond("time_zone", Op.CONDITION_OPERATOR_IS_SET), {"alice", "frank"}),
    (
        "time_zone starts_with",
        cond("time_zone", Op.CONDITION_OPERATOR_STARTS_WITH, string_value="europe/"),
        {"alice"},
    ),
    # source
    (
        "source equals",
        cond("source", Op.CONDITION_OPERATOR_EQUALS, string_value="new_follower"),
        {"bob"},
    ),
    (
        "source not_equals",
        cond("source", Op.CONDITION_OPERATOR_NOT_EQUALS, string_value="manual"),
        {"alice", "bob", "carol", "dave"},
    ),
    (
        "source in",
        cond("source", Op.CONDITION_OPERATOR_IN, strings=["mention", "IMPORT"]),
        {"carol", "dave"},
    ),
    (
        "source not_in",
        cond("source", Op.CONDITION_OPERATOR_NOT_IN, strings=["manual"]),
        {"alice", "bob", "carol", "dave"},
    ),
    # times
    (
        "created before",
        cond("created_at", Op.CONDITION_OPERATOR_BEFORE, ts="2024-02-01"),
        {"alice", "dave"},
    ),
    (
        "created after",
        cond("created_at", Op.CONDITION_OPERATOR_AFTER, ts="2024-02-01"),
        {"bob", "carol", "frank"},
    ),
    (
        "created between inclusive",
        cond("created_at", Op.CONDITION_OPERATOR_BETWEEN, time_range=("2024-02-01", "2024-04-01")),
        {"erin", "bob", "frank"},
    ),
    ("created is_set", cond("created_at", Op.CONDITION_OPERATOR_IS_SET), EVERYONE),
    ("created is_not_set", cond("created_at", Op.CONDITION_OPERATOR_IS_NOT_SET), set()),
    (
        "created within_last_days",
        cond("created_at", Op.CONDITION_OPERATOR_WITHIN_LAST_DAYS, days=3650),
        EVERYONE,
    ),
    (
        "last before",
        cond("last_interaction_at", Op.CONDITION_OPERATOR_BEFORE, ts="2020-01-01"),
        set(),
    ),
    (
        "last after",
        cond("last_interaction_at", Op.CONDITION_OPERATOR_AFTER, ts="2020-01-01"),
        but("carol"),
    ),
    (
        "last within_last_days",
        cond("last_interaction_at", Op.CONDITION_OPERATOR_WITHIN_LAST_DAYS, days=7),
        {"alice", "frank"},
    ),
    (
        "last more_than_days_ago",
        cond("last_interaction_at", Op.CONDITION_OPERATOR_MORE_THAN_DAYS_AGO, days=30),
        {"bob", "dave"},
    ),
    ("last is_not_set", cond("last_interaction_at", Op.CONDITION_OPERATOR_IS_NOT_SET), {"carol"}),
    ("last is_set", cond("last_interaction_at", Op.CONDITION_OPERATOR_IS_SET), but("carol")),
    ("first is_set", cond("first_interaction_at", Op.CONDITION_OPERATOR_IS_SET), {"alice", "dave"}),
    (
        "first before",
        cond("first_interaction_at", Op.CONDITION_OPERATOR_BEFORE, ts="2023-07-01"),
        {"dave"},
    ),
    # message counts (only DMs that left count as sent; other merchants' rows never)
    (
        "sent greater_than",
        cond("messages_sent", Op.CONDITION_OPERATOR_GREATER_THAN, number_value=1),
        {"alice"},
    ),
    (
        "sent equals 0",
        cond("messages_sent", Op.CONDITION_OPERATOR_EQUALS, number_value=0),
        but("alice"),
    ),
    (
        "sent between",
        cond("messages_sent", Op.CONDITION_OPERATOR_BETWEEN, num_range=(1, 2)),
        {"alice"},
    ),
    (
        "received greater_or_equal",
        cond("messages_received", Op.CONDITION_OPERATOR_GREATER_OR_EQUAL, number_value=1),
        {"alice", "bob"},
    ),
    (
        "received less_than",
        cond("messages_received", Op.CONDITION_OPERATOR_LESS_THAN, number_value=1),
        but("alice", "bob"),
    ),
    (
        "received less_or_equal",
        cond("messages_received", Op.CONDITION_OPERATOR_LESS_OR_EQUAL, number_value=0.5),
        but("alice", "bob"),
    ),
    (
        "received not_equals",
        cond("messages_received", Op.CONDITION_OPERATOR_NOT_EQUALS, number_value=1),
        but("alice", "bob"),
    ),
    # booleans
    (
        "follows equals true",
        cond("follows_account", Op.CONDITION_OPERATOR_EQUALS, bool_value=True),
        {"alice", "dave"},
    ),
    (
        "follows equals false",
        cond("follows_account", Op.CONDITION_OPERATOR_EQUALS, bool_value=False),
        but("alice", "dave"),
    ),
    (
        "follows not_equals true",
        cond("follows_account", Op.CONDITION_OPERATOR_NOT_EQUALS, bool_value=True),
        but("alice", "dave"),
    ),
    (
        "open conversation",
        cond("has_open_conversation", Op.CONDITION_OPERATOR_EQUALS, bool_value=True),
        {"alice", "carol"},
    ),
    (
        "no open conversation",
        cond("has_open_conversation", Op.CONDITION_OPERATOR_EQUALS, bool_value=False),
        but("alice", "carol"),
    ),
    (
        "open conversation not_equals",
        cond("has_open_conversation", Op.CONDITION_OPERATOR_NOT_EQUALS, bool_value=True),
        but("alice", "carol"),
    ),
    # campaign facts
    (
        "received C1",
        cond("received_campaign", Op.CONDITION_OPERATOR_EQUALS, string_value=str(C1)),
        {"alice", "bob"},
    ),
    (
        "not received C1",
        cond("received_campaign", Op.CONDITION_OPERATOR_NOT_EQUALS, string_value=str(C1)),
        but("alice", "bob"),
    ),
    (
        "received C2 (upper-case id)",
        cond("received_campaign", Op.CONDITION_OPERATOR_EQUALS, string_value=str(C2).upper()),
        {"alice"},
    ),
    (
        "received any",
        cond("received_campaign", Op.CONDITION_OPERATOR_IN, strings=[str(C1), str(C2)]),
        {"alice", "bob"},
    ),
    (
        "received none",
        cond("received_campaign", Op.CONDITION_OPERATOR_NOT_IN, strings=[str(C1), str(C2)]),
        but("alice", "bob"),
    ),
    (
        "received other merchant's",
        cond("received_campaign", Op.CONDITION_OPERATOR_EQUALS, string_value=str(C_OTHER)),
        set(),
    ),
    (
        "replied C1",
        cond("replied_to_campaign", Op.CONDITION_OPERATOR_EQUALS, string_value=str(C1)),
        {"bob"},
    ),
    (
        "not replied C1",
        cond("replied_to_campaign", Op.CONDITION_OPERATOR_NOT_IN, strings=[str(C1)]),
        but("bob"),
    ),
    # attributes: the value's kind decides the type; other kinds never match
    (
        "attr number gt",
        cond("attributes.score", Op.CONDITION_OPERATOR_GREATER_THAN, number_value=50),
        {"alice"},
    ),
    (
        "attr number equals",
        cond("attributes.score", Op.CONDITION_OPERATOR_EQUALS, number_value=40),
        {"bob"},
    ),
    (
        "attr number between",
        cond("attributes.score", Op.CONDITION_OPERATOR_BETWEEN, num_range=(40, 41)),
        {"bob", "frank"},
    ),
    (
        "attr number lt",
        cond("attributes.score", Op.CONDITION_OPERATOR_LESS_THAN, number_value=41),
        {"bob", "frank"},
    ),
    (
        "attr number ge",
        cond("attributes.score", Op.CONDITION_OPERATOR_GREATER_OR_EQUAL, number_value=40.5),
        {"alice", "frank"},
    ),
    (
        "attr number le",
        cond("attributes.score", Op.CONDITION_OPERATOR_LESS_OR_EQUAL, number_value=40),
        {"bob"},
    ),
    (
        "attr number not_equals",
        cond("attributes.score", Op.CONDITION_OPERATOR_NOT_EQUALS, number_value=40),
        but("bob"),
    ),
    (
        "attr string equals",
        cond("attributes.plan", Op.CONDITION_OPERATOR_EQUALS, string_value="gold"),
        {"alice"},
    ),
    (
        "attr string not_equals",
        cond("attributes.plan", Op.CONDITION_OPERATOR_NOT_EQUALS, string_value="gold"),
        but("alice"),
    ),
    (
        "attr string contains",
        cond("attributes.plan", Op.CONDITION_OPERATOR_CONTAINS, string_value="GOLD"),
        {"alice", "carol"},
    ),
    (
        "attr string not_contains",
        cond("attributes.plan", Op.CONDITION_OPERATOR_NOT_CONTAINS, string_value="gold"),
        but("alice", "carol"),
    ),
    (
        "attr string starts_with",
        cond("attributes.plan", Op.CONDITION_OPERATOR_STARTS_WITH, string_value="gold"),
        {"alice", "carol"},
    ),
    (
        "attr string ends_with",
        cond("attributes.plan", Op.CONDITION_OPERATOR_ENDS_WITH, string_value="PLUS"),
        {"carol"},
    ),
    (
        "attr string in",
        cond("attributes.plan", Op.CONDITION_OPERATOR_IN, strings=["Silver"]),
        {"bob"},
    ),
    (
        "attr string not_in",
        cond("attributes.plan", Op.CONDITION_OPERATOR_NOT_IN, strings=["gold", "silver"]),
        but("alice", "bob"),
    ),
    (
        "attr string vs number",
        cond("attributes.score", Op.CONDITION_OPERATOR_CONTAINS, string_value="9"),
        {"carol"},
    ),
    (
        "attr string hostile",
        cond("attributes.note", Op.CONDITION_OPERATOR_EQUALS, string_value=HOSTILE),
        {"erin"},
    ),
    (
        "attr bool true",
        cond("attributes.beta", Op.CONDITION_OPERATOR_EQUALS, bool_value=True),
        {"alice"},
    ),
    (
        "attr bool false",
        cond("attributes.beta", Op.CONDITION_OPERATOR_EQUALS, bool_value=False),
        {"bob"},
    ),
    (
        "attr bool not_equals",
        cond("attributes.beta", Op.CONDITION_OPERATOR_NOT_EQUALS, bool_value=True),
        but("alice"),
    ),
    (
        "attr time before",
        cond("attributes.signup", Op.CONDITION_OPERATOR_BEFORE, ts="2024-01-01"),
        {"dave"},
    ),
    (
        "attr time after",
        cond("attributes.signup", Op.CONDITION_OPERATOR_AFTER, ts="2024-01-01"),
        {"alice"},
    ),
    (
        "attr time between",
        cond(
            "attributes.signup",
            Op.CONDITION_OPERATOR_BETWEEN,
            time_range=("2024-01-15T10:00:00", "2024-01-15T10:00:00"),
        ),
        {"alice"},
    ),
    (
        "attr time within",
        cond("attributes.signup", Op.CONDITION_OPERATOR_WITHIN_LAST_DAYS, days=3650),
        {"alice", "dave"},
    ),
    (
        "attr time more_than",
        cond("attributes.signup", Op.CONDITION_OPERATOR_MORE_THAN_DAYS_AGO, days=1),
        {"alice", "dave"},
    ),
    (
        "attr is_set",
        cond("attributes.signup", Op.CONDITION_OPERATOR_IS_SET),
        {"alice", "bob", "dave"},
    ),
    (
        "attr is_not_set",
        cond("attributes.plan", Op.CONDITION_OPERATOR_IS_NOT_SET),
        but("alice", "bob", "carol"),
    ),
    ("attr missing key", cond("attributes.nothing", Op.CONDITION_OPERATOR_IS_NOT_SET), EVERYONE),
]


@pytest.mark.parametrize(("node", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_field_and_operator_matches_exactly(conn, node, expected):
    assert matched(conn, AND(node)) == expected


def test_every_operator_of_every_field_type_is_covered():
    from mktx_grpc.domain.segments import ATTRIBUTE_TYPES, FIELD_OPS

    covered = {(n.condition.field, n.condition.operator) for _, n, _ in CASES}
    by_type: dict[int, set[int]] = {}
    for f, ops in FIELD_OPS.items():
        by_type.setdefault(id(ops), set()).update(op for op in ops if (f, op) in covered)
    missing = [
        (f, Op.Name(op)) for f, ops in FIELD_OPS.items() for op in ops if op not in by_type[id(ops)]
    ]
    assert missing == []
    attr_kinds = {
        (n.condition.operator, n.condition.WhichOneof("value"))
        for _, n, _ in CASES
        if n.condition.field.startswith("attributes.")
    }
    assert set(ATTRIBUTE_TYPES) - attr_kinds == set()


def test_nested_and_or(conn):
    vip_or_new_nonfollower = OR(
        cond("tags", Op.CONDITION_OPERATOR_CONTAINS, string_value="vip"),
        grp(
            AND(
                cond("source", Op.CONDITION_OPERATOR_EQUALS, string_value="new_follower"),
                cond("follows_account", Op.CONDITION_OPERATOR_EQUALS, bool_value=False),
            )
        ),
    )
    assert matched(conn, vip_or_new_nonfollower) == {"alice", "dave", "bob"}
    en_or_de_recent = AND(
        grp(
            OR(
                cond("language", Op.CONDITION_OPERATOR_EQUALS, string_value="en"),
                cond("language", Op.CONDITION_OPERATOR_EQUALS, string_value="de"),
            )
        ),
        cond("last_interaction_at", Op.CONDITION_OPERATOR_WITHIN_LAST_DAYS, days=7),
    )
    assert matched(conn, en_or_de_recent) == {"alice"}
    # Depth 5 (the limit) still compiles and runs.
    deep = AND(cond("tags", Op.CONDITION_OPERATOR_CONTAINS, string_value="promo"))
    for _ in range(4):
        deep = OR(grp(deep), cond("username", Op.CONDITION_OPERATOR_EQUALS, string_value="dave"))
    assert not validate_conditions(deep)
    assert matched(conn, deep) == {"alice", "bob", "dave"}


def test_empty_root_matches_every_contact_of_the_merchant_only(conn):
    assert matched(conn, S.ConditionGroup()) == EVERYONE
    assert matched(conn, S.ConditionGroup(), merchant=OTHER) == {"other"}


def test_other_merchants_rows_never_count(conn):
    # The other merchant's contact matches these conditions, but not under M.
    assert "other" not in matched(
        conn, AND(cond("tags", Op.CONDITION_OPERATOR_CONTAINS, string_value="vip"))
    )
    # frank has an OPEN conversation and messages filed under the other merchant.
    assert "frank" not in matched(
        conn, AND(cond("has_open_conversation", Op.CONDITION_OPERATOR_EQUALS, bool_value=True))
    )
    assert "frank" not in matched(
        conn, AND(cond("messages_sent", Op.CONDITION_OPERATOR_GREATER_THAN, number_value=0))
    )
    # erin has a ledger row for C1 filed under the other merchant.
    assert "erin" not in matched(
        conn, AND(cond("replied_to_campaign", Op.CONDITION_OPERATOR_EQUALS, string_value=str(C1)))
    )
    # The other merchant sees its own campaign fact.
    other = AND(cond("received_campaign", Op.CONDITION_OPERATOR_EQUALS, string_value=str(C_OTHER)))
    assert matched(conn, other, merchant=OTHER) == {"other"}


HOSTILE_VALUES = [
    HOSTILE,
    "' OR '1'='1",
    "\"; DELETE FROM contacts WHERE ''='",
    "%",
    "_",
    "%_%",
    "\\",
    "\\%",
    "a\\_b",
    "$1",
    "%(merchant_id)s",
    "%s",
    "{}",
    "); DROP TABLE segments; --",
    "\x7f\u200b\u202e",
    "日本語 — ñ ß ﬃ 🎉",
    "x" * 500,
    "'" * 500,
]
STRING_OPS = [
    Op.CONDITION_OPERATOR_EQUALS,
    Op.CONDITION_OPERATOR_NOT_EQUALS,
    Op.CONDITION_OPERATOR_CONTAINS,
    Op.CONDITION_OPERATOR_NOT_CONTAINS,
    Op.CONDITION_OPERATOR_STARTS_WITH,
    Op.CONDITION_OPERATOR_ENDS_WITH,
]


def _expected(op: int, stored: str, value: str) -> bool:
    s, v = stored.lower(), value.lower()
    return {
        Op.CONDITION_OPERATOR_EQUALS: s == v,
        Op.CONDITION_OPERATOR_NOT_EQUALS: s != v,
        Op.CONDITION_OPERATOR_CONTAINS: v in s,
        Op.CONDITION_OPERATOR_NOT_CONTAINS: v not in s,
        Op.CONDITION_OPERATOR_STARTS_WITH: s.startswith(v),
        Op.CONDITION_OPERATOR_ENDS_WITH: s.endswith(v),
    }[op]


@pytest.mark.parametrize("field", ["display_name", "attributes.note"])
def test_hostile_values_match_literally_and_never_reach_the_sql(conn, field):
    hostile_merchant = uuid.uuid4()
    acc = uuid.uuid4()
    conn.execute(
        "INSERT INTO accounts (id, merchant_id, x_user_id, auth_method)"
        " VALUES (%s, %s, %s, 'OAUTH1')",
        (acc, hostile_merchant, str(acc.int % 10**12)),
    )
    stored = {f"h{i}": v for i, v in enumerate(HOSTILE_VALUES)}
    stored["plain"] = "plain text"
    for label, value in stored.items():
        conn.execute(
            "INSERT INTO contacts (merchant_id, account_id, x_user_id, display_name, attributes)"
            " VALUES (%s, %s, %s, %s, %s)",
            (hostile_merchant, acc, label, value, Jsonb({"note": value})),
        )
    before = conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
    for value in HOSTILE_VALUES:
        for op in STRING_OPS:
            group = AND(cond(field, op, string_value=value))
            compiled = compile_conditions(conditions_to_json(group))
            assert value not in compiled.where.as_string(conn) or value in ("_", "%", "{}")
            got = matched(conn, group, merchant=hostile_merchant)
            want = {label for label, s in stored.items() if _expected(op, s, value)}
            assert got == want, (Op.Name(op), value[:40])
        group = AND(cond(field, Op.CONDITION_OPERATOR_IN, strings=[value, "plain text"]))
        assert matched(conn, group, merchant=hostile_merchant) == {
            label for label, s in stored.items() if s.lower() in (value.lower(), "plain text")
        }
    assert conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == before
    assert conn.execute("SELECT to_regclass('segments')").fetchone()[0] is not None


def test_tag_hostile_values_match_literally(conn):
    for value in HOSTILE_VALUES[:10]:
        group = AND(cond("tags", Op.CONDITION_OPERATOR_IN, strings=[value]))
        assert matched(conn, group) == ({"erin"} if value == HOSTILE else set())


def test_values_and_attribute_keys_are_bound_not_formatted(conn):
    group = AND(
        cond("attributes.Drop_table_1", Op.CONDITION_OPERATOR_EQUALS, string_value=HOSTILE),
        cond("username", Op.CONDITION_OPERATOR_IN, strings=["zzz_marker"]),
        cond("created_at", Op.CONDITION_OPERATOR_BEFORE, ts="2024-01-01"),
        cond("attributes.score", Op.CONDITION_OPERATOR_GREATER_THAN, number_value=12345),
    )
    compiled = compile_conditions(conditions_to_json(group), prefix="seg_")
    text = compiled.where.as_string(conn)
    for needle in ("Drop_table_1", HOSTILE, "zzz_marker", "2024", "12345"):
        assert needle not in text
    assert set(compiled.params) == {f"seg_{i}" for i in range(len(compiled.params))}
    assert "Drop_table_1" in compiled.params.values()


@pytest.mark.parametrize(
    "key", ["x'; drop table contacts; --", "a b", "1abc", "a-b", "", "é", "a" * 65, "a.b", "_a"]
)
def test_bad_attribute_keys_are_rejected_before_any_sql(key):
    group = AND(cond(f"attributes.{key}", Op.CONDITION_OPERATOR_IS_SET))
    with pytest.raises(InvalidArgument) as err:
        compile_conditions(conditions_to_json(group))
    assert [v.field for v in err.value.violations] == ["conditions.nodes[0].condition.field"]


def test_two_segments_share_one_statement_with_distinct_prefixes(conn):
    a = compile_conditions(
        conditions_to_json(AND(cond("tags", Op.CONDITION_OPERATOR_CONTAINS, string_value="vip"))),
        prefix="a_",
    )
    b = compile_conditions(
        conditions_to_json(AND(cond("tags", Op.CONDITION_OPERATOR_CONTAINS, string_value="promo"))),
        prefix="b_",
    )
    query = sql.SQL(
        "SELECT c.x_user_id FROM contacts c WHERE c.merchant_id = %(merchant_id)s"
        " AND ({} OR {}) AND NOT ({} AND {})"
    ).format(a.where, b.where, a.where, b.where)
    rows = conn.execute(query, {**a.params, **b.params, "merchant_id": M}).fetchall()
    assert {r[0] for r in rows} == {"bob", "dave"}


def test_json_round_trip_is_stable():
    group = OR(
        cond("created_at", Op.CONDITION_OPERATOR_BETWEEN, time_range=("2024-01-01", "2024-02-01")),
        grp(
            AND(
                cond("attributes.beta", Op.CONDITION_OPERATOR_EQUALS, bool_value=False),
                cond("attributes.n", Op.CONDITION_OPERATOR_EQUALS, number_value=0),
            )
        ),
    )
    data = conditions_to_json(group)
    assert conditions_from_json(data) == group
    # Values equal to the proto default survive (oneof members have presence).
    leaf = data["nodes"][1]["group"]["nodes"]
    assert leaf[0]["condition"]["bool_value"] is False
    assert leaf[1]["condition"]["number_value"] == 0


def test_like_escape():
    assert like_escape("a%b_c\\d") == "a\\%b\\_c\\\\d"
