"""Segment conditions: validation and compilation to one parameterised SQL expression.

No I/O here. A segment's conditions are a tree of AND/OR groups whose leaves are
``field / operator / value`` conditions (see ``proto/mktx/v1/segments.proto`` for
the table of fields and the operators each allows). Two entry points matter:

* :func:`validate_conditions` reports every violation with its exact path
  (``conditions.nodes[1].group.nodes[0].condition.operator``); callers prefix it
  with ``segment.`` for Create/Update.
* :func:`compile_conditions` turns the stored JSON of a valid tree into a boolean
  SQL expression over ``contacts c`` plus its parameters. Values are only ever bound
  (``%(s_3)s``), never formatted into the SQL text; attribute keys are bound too.
  The expression leaves out the merchant filter, which the caller adds
  (``c.merchant_id = %(merchant_id)s``); the subqueries it contains filter their own
  tables on ``%(merchant_id)s``, so the caller must always bind ``merchant_id``.

Stored JSON is ``json_format.MessageToDict(group, preserving_proto_field_name=True)``
(:func:`conditions_to_json`); :func:`conditions_from_json` reverses it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from google.protobuf import json_format
from psycopg import sql

from mktx.v1 import segments_pb2

from ..core import prototime
from ..core.errors import FieldViolation, InvalidArgument
from .like import like_escape

S = segments_pb2
Op = int

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_STRING = 500
MAX_LIST = 100
MAX_DAYS = 3_650
MAX_NAME = 200
MAX_DESCRIPTION = 1_000
MAX_PREVIEW_SAMPLE = 50
DEFAULT_PREVIEW_SAMPLE = 20
ATTRIBUTE_PREFIX = "attributes."
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

EQ, NE = S.CONDITION_OPERATOR_EQUALS, S.CONDITION_OPERATOR_NOT_EQUALS
CONTAINS, NOT_CONTAINS = S.CONDITION_OPERATOR_CONTAINS, S.CONDITION_OPERATOR_NOT_CONTAINS
STARTS, ENDS = S.CONDITION_OPERATOR_STARTS_WITH, S.CONDITION_OPERATOR_ENDS_WITH
GT, GE = S.CONDITION_OPERATOR_GREATER_THAN, S.CONDITION_OPERATOR_GREATER_OR_EQUAL
LT, LE = S.CONDITION_OPERATOR_LESS_THAN, S.CONDITION_OPERATOR_LESS_OR_EQUAL
BETWEEN = S.CONDITION_OPERATOR_BETWEEN
IN, NOT_IN = S.CONDITION_OPERATOR_IN, S.CONDITION_OPERATOR_NOT_IN
BEFORE, AFTER = S.CONDITION_OPERATOR_BEFORE, S.CONDITION_OPERATOR_AFTER
WITHIN, MORE_THAN = (
    S.CONDITION_OPERATOR_WITHIN_LAST_DAYS,
    S.CONDITION_OPERATOR_MORE_THAN_DAYS_AGO,
)
IS_SET, IS_NOT_SET = S.CONDITION_OPERATOR_IS_SET, S.CONDITION_OPERATOR_IS_NOT_SET

# Value kinds: the name of the Condition.value oneof member, or None for no value.
STRING, NUMBER, BOOL, TIMESTAMP = "string_value", "number_value", "bool_value", "timestamp_value"
STRING_LIST, NUMBER_RANGE, TIME_RANGE, DAYS = (
    "string_list",
    "number_range",
    "timestamp_range",
    "days",
)

# Field types and, for each, operator -> the value kind it takes.
STRING_OPS: dict[Op, str | None] = {
    EQ: STRING,
    NE: STRING,
    CONTAINS: STRING,
    NOT_CONTAINS: STRING,
    STARTS: STRING,
    ENDS: STRING,
    IN: STRING_LIST,
    NOT_IN: STRING_LIST,
    IS_SET: None,
    IS_NOT_SET: None,
}
TAG_OPS: dict[Op, str | None] = {
    CONTAINS: STRING,
    NOT_CONTAINS: STRING,
    IN: STRING_LIST,
    NOT_IN: STRING_LIST,
    IS_SET: None,
    IS_NOT_SET: None,
}
ENUM_OPS: dict[Op, str | None] = {EQ: STRING, NE: STRING, IN: STRING_LIST, NOT_IN: STRING_LIST}
TIME_OPS: dict[Op, str | None] = {
    BEFORE: TIMESTAMP,
    AFTER: TIMESTAMP,
    BETWEEN: TIME_RANGE,
    WITHIN: DAYS,
    MORE_THAN: DAYS,
    IS_SET: None,
    IS_NOT_SET: None,
}
NUMBER_OPS: dict[Op, str | None] = {
    EQ: NUMBER,
    NE: NUMBER,
    GT: NUMBER,
    GE: NUMBER,
    LT: NUMBER,
    LE: NUMBER,
    BETWEEN: NUMBER_RANGE,
}
BOOL_OPS: dict[Op, str | None] = {EQ: BOOL, NE: BOOL}
CAMPAIGN_OPS: dict[Op, str | None] = {EQ: STRING, NE: STRING, IN: STRING_LIST, NOT_IN: STRING_LIST}

#: For ``attributes.<key>``: (operator, value kind) -> the attribute's inferred type.
ATTRIBUTE_TYPES: dict[tuple[Op, str | None], str] = {
    **{(op, kind): "string" for op, kind in STRING_OPS.items() if kind is not None},
    **{(op, kind): "number" for op, kind in NUMBER_OPS.items()},
    **{(op, kind): "bool" for op, kind in BOOL_OPS.items()},
    **{(op, kind): "timestamp" for op, kind in TIME_OPS.items() if kind is not None},
    (IS_SET, None): "any",
    (IS_NOT_SET, None): "any",
}
ATTRIBUTE_OPS: frozenset[Op] = frozenset(op for op, _ in ATTRIBUTE_TYPES)

STRING_COLUMNS = ("username", "display_name", "language", "time_zone")
TIME_COLUMNS = ("created_at", "first_interaction_at", "last_interaction_at")
COUNT_FIELDS = ("messages_sent", "messages_received")
CAMPAIGN_FIELDS = ("received_campaign", "replied_to_campaign")

FIELD_OPS: dict[str, dict[Op, str | None]] = {
    "tags": TAG_OPS,
    **{f: STRING_OPS for f in STRING_COLUMNS},
    "source": ENUM_OPS,
    **{f: TIME_OPS for f in TIME_COLUMNS},
    **{f: NUMBER_OPS for f in COUNT_FIELDS},
    "follows_account": BOOL_OPS,
    "has_open_conversation": BOOL_OPS,
    **{f: CAMPAIGN_OPS for f in CAMPAIGN_FIELDS},
}

#: What an unknown field's violation lists: every field, then the attribute form.
VALID_FIELDS = ", ".join([*FIELD_OPS, f"{ATTRIBUTE_PREFIX}<key>"])

#: `source` values as the API spells them -> as stored.
SOURCES = {
    "inbound_message": "INBOUND_MESSAGE",
    "new_follower": "NEW_FOLLOWER",
    "mention": "MENTION",
    "import": "IMPORT",
    "manual": "MANUAL",
}

#: Ledger states meaning the campaign's DM reached the contact.
RECEIVED_STATES = ("SENT", "DELIVERED", "READ", "REPLIED")

_MIN_TIME = datetime(1, 1, 2, tzinfo=UTC)
_MAX_TIME = datetime(9999, 12, 30, tzinfo=UTC)


def _op_name(op: Op) -> str:
    try:
        name: str = S.ConditionOperator.Name(op)
    except ValueError:
        return str(op)
    return name.removeprefix("CONDITION_OPERATOR_").lower()


# ------------------------------------------------------------------ JSON round trip


def conditions_to_json(group: segments_pb2.ConditionGroup) -> dict[str, Any]:
    """The stored form of a condition tree (what ``segments.conditions`` holds)."""
    out: dict[str, Any] = json_format.MessageToDict(group, preserving_proto_field_name=True)
    return out


def conditions_from_json(data: dict[str, Any]) -> segments_pb2.ConditionGroup:
    """Parse a stored condition tree. Raises ``json_format.ParseError`` when malformed."""
    group = segments_pb2.ConditionGroup()
    json_format.ParseDict(data, group)
    return group


# ------------------------------------------------------------------ validation


def validate_segment_fields(name: str, description: str) -> list[FieldViolation]:
    """The segment's own text fields; paths are relative to the segment."""
    v: list[FieldViolation] = []
    if not name.strip():
        v.append(FieldViolation("name", "is required"))
    elif len(name) > MAX_NAME:
        v.append(FieldViolation("name", f"must be at most {MAX_NAME} characters"))
    if len(description) > MAX_DESCRIPTION:
        v.append(FieldViolation("description", f"must be at most {MAX_DESCRIPTION} characters"))
    return v


def _walk(
    group: segments_pb2.ConditionGroup, path: str, depth: int = 1
) -> Iterator[tuple[str, int, segments_pb2.ConditionNode]]:
    for i, node in enumerate(group.nodes):
        yield f"{path}.nodes[{i}]", depth, node
        if node.WhichOneof("node") == "group":
            yield from _walk(node.group, f"{path}.nodes[{i}].group", depth + 1)


def conditions_in(group: segments_pb2.ConditionGroup) -> list[segments_pb2.Condition]:
    """Every leaf condition of the tree, depth first."""
    return [n.condition for _, _, n in _walk(group, "") if n.WhichOneof("node") == "condition"]


def campaign_ids(group: segments_pb2.ConditionGroup) -> list[str]:
    """The campaign ids named by campaign-fact conditions (for an existence check)."""
    out: dict[str, None] = {}
    for c in conditions_in(group):
        if c.field in CAMPAIGN_FIELDS:
            kind = c.WhichOneof("value")
            values = [c.string_value] if kind == STRING else list(c.string_list.values)
            for v in values:
                out.setdefault(v.lower(), None)
    return list(out)


def validate_conditions(
    group: segments_pb2.ConditionGroup, path: str = "conditions"
) -> list[FieldViolation]:
    """Every rule a condition tree satisfies, each violation at its exact path.

    Checks: group operators are known; nested groups hold 1 to 50 nodes (the root may
    be empty); depth at most 5 with the root at 1; at most 50 conditions in total;
    each node is a condition or a group; each condition's field is known, its
    operator allowed for the field, and its value of the kind the operator takes
    and within limits (strings 1 to 500 characters, lists 1 to 100, days 1 to 3,650,
    finite numbers, ranges not inverted, campaign ids UUIDs, known sources).
    """
    v: list[FieldViolation] = []
    v += _check_group(group, path, root=True)
    count = 0
    for node_path, depth, node in _walk(group, path):
        kind = node.WhichOneof("node")
        if kind is None:
            v.append(FieldViolation(node_path, "must hold a condition or a group"))
        elif kind == "group":
            if depth + 1 > MAX_DEPTH:
                v.append(
                    FieldViolation(f"{node_path}.group", f"nesting is limited to depth {MAX_DEPTH}")
                )
            v += _check_group(node.group, f"{node_path}.group", root=False)
        else:
            count += 1
            v += validate_condition(node.condition, f"{node_path}.condition")
    if count > MAX_CONDITIONS:
        v.append(FieldViolation(path, f"at most {MAX_CONDITIONS} conditions (found {count})"))
    return v


def _check_group(
    group: segments_pb2.ConditionGroup, path: str, *, root: bool
) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    if group.operator not in S.ConditionGroupOperator.values():
        v.append(FieldViolation(f"{path}.operator", "is not a known value"))
    if not group.nodes and not root:
        v.append(FieldViolation(f"{path}.nodes", "a nested group needs at least one node"))
    return v


def validate_condition(c: segments_pb2.Condition, path: str) -> list[FieldViolation]:
    """The rules of one leaf condition; ``path`` ends with ``.condition``."""
    if not c.field:
        return [FieldViolation(f"{path}.field", "is required")]
    if c.operator == S.CONDITION_OPERATOR_UNSPECIFIED:
        return [FieldViolation(f"{path}.operator", "is required")]
    if c.operator not in S.ConditionOperator.values():
        return [FieldViolation(f"{path}.operator", "is not a known value")]
    kind = c.WhichOneof("value")
    if c.field.startswith(ATTRIBUTE_PREFIX):
        key = c.field[len(ATTRIBUTE_PREFIX) :]
        if not ATTRIBUTE_KEY.match(key):
            return [
                FieldViolation(f"{path}.field", "attribute keys match ^[A-Za-z][A-Za-z0-9_]{0,63}$")
            ]
        if c.operator not in ATTRIBUTE_OPS:
            return [
                FieldViolation(
                    f"{path}.operator", f"{_op_name(c.operator)} does not apply to attributes"
                )
            ]
        if (c.operator, kind) not in ATTRIBUTE_TYPES:
            expected = sorted(k or "no value" for (op, k) in ATTRIBUTE_TYPES if op == c.operator)
            return [_kind_violation(path, kind, c.operator, " or ".join(expected))]
        return _check_value(c, path, kind)
    ops = FIELD_OPS.get(c.field)
    if ops is None:
        return [
            FieldViolation(
                f"{path}.field", f"unknown field {c.field[:80]!r}; valid fields: {VALID_FIELDS}"
            )
        ]
    if c.operator not in ops:
        allowed = ", ".join(_op_name(o) for o in ops)
        return [
            FieldViolation(
                f"{path}.operator",
                f"{_op_name(c.operator)} does not apply to {c.field}; allowed: {allowed}",
            )
        ]
    expected_kind = ops[c.operator]
    if kind != expected_kind:
        return [_kind_violation(path, kind, c.operator, expected_kind or "no value")]
    return _check_value(c, path, kind)


def _kind_violation(path: str, kind: str | None, op: Op, expected: str) -> FieldViolation:
    where = f"{path}.{kind}" if kind else f"{path}.value"
    return FieldViolation(where, f"{_op_name(op)} takes {expected}")


def _check_string(value: str, path: str) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(path, "must not be empty")]
    if len(value) > MAX_STRING:
        return [FieldViolation(path, f"must be at most {MAX_STRING} characters")]
    return []


def _check_time(value: Any, path: str) -> list[FieldViolation]:
    if prototime.timestamp_problem(value.seconds, value.nanos):
        return [FieldViolation(path, "is not a valid timestamp")]
    t = prototime.to_datetime(value, path)
    if not _MIN_TIME <= t <= _MAX_TIME:
        return [FieldViolation(path, "is out of range")]
    return []


def _check_value(c: segments_pb2.Condition, path: str, kind: str | None) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    p = f"{path}.{kind}"
    strings: list[tuple[str, str]] = []
    if kind == STRING:
        strings = [(p, c.string_value)]
    elif kind == STRING_LIST:
        values = list(c.string_list.values)
        if not 1 <= len(values) <= MAX_LIST:
            v.append(FieldViolation(f"{p}.values", f"must hold 1 to {MAX_LIST} values"))
        strings = [(f"{p}.values[{i}]", s) for i, s in enumerate(values[:MAX_LIST])]
    elif kind == NUMBER:
        if not math.isfinite(c.number_value):
            v.append(FieldViolation(p, "must be a finite number"))
    elif kind == NUMBER_RANGE:
        lo, hi = c.number_range.min, c.number_range.max
        if not (math.isfinite(lo) and math.isfinite(hi)):
            v.append(FieldViolation(p, "bounds must be finite numbers"))
        elif lo > hi:
            v.append(FieldViolation(f"{p}.max", "must not be less than min"))
    elif kind == TIMESTAMP:
        v += _check_time(c.timestamp_value, p)
    elif kind == TIME_RANGE:
        r = c.timestamp_range
        if not r.HasField("start_time"):
            v.append(FieldViolation(f"{p}.start_time", "is required"))
        if not r.HasField("end_time"):
            v.append(FieldViolation(f"{p}.end_time", "is required"))
        if not v:
            v += _check_time(r.start_time, f"{p}.start_time")
            v += _check_time(r.end_time, f"{p}.end_time")
        if not v and (r.end_time.seconds, r.end_time.nanos) < (
            r.start_time.seconds,
            r.start_time.nanos,
        ):
            v.append(FieldViolation(f"{p}.end_time", "must not be before start_time"))
    elif kind == DAYS:
        if not 1 <= c.days <= MAX_DAYS:
            v.append(FieldViolation(p, f"must be 1 to {MAX_DAYS}"))
    for sp, s in strings:
        problems = _check_string(s, sp)
        if not problems and c.field in CAMPAIGN_FIELDS and not _is_uuid(s):
            problems = [FieldViolation(sp, "must be a campaign id (UUID)")]
        if not problems and c.field == "source" and s.lower() not in SOURCES:
            problems = [FieldViolation(sp, f"must be one of {', '.join(SOURCES)}")]
        v += problems
    return v


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return len(value) == 36


# ------------------------------------------------------------------ compilation


@dataclass(frozen=True)
class CompiledSegment:
    """A boolean SQL expression over ``contacts c`` and the values it binds.

    ``where`` holds no merchant filter: callers add ``c.merchant_id =
    %(merchant_id)s`` and must bind ``merchant_id`` (subqueries over conversations,
    messages and campaign_recipients filter on it). Every name in ``params`` starts
    with the compile prefix, so several compiled segments can share one statement.
    """

    where: sql.Composable
    params: dict[str, Any] = field(default_factory=dict)


class _Compiler:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> sql.Composable:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def group(self, g: segments_pb2.ConditionGroup) -> sql.Composable:
        parts = [self.node(n) for n in g.nodes]
        if not parts:
            return sql.SQL("TRUE")
        joiner = " OR " if g.operator == S.CONDITION_GROUP_OPERATOR_OR else " AND "
        return sql.SQL("({})").format(sql.SQL(joiner).join(parts))

    def node(self, n: segments_pb2.ConditionNode) -> sql.Composable:
        if n.WhichOneof("node") == "group":
            return self.group(n.group)
        return self.condition(n.condition)

    def condition(self, c: segments_pb2.Condition) -> sql.Composable:
        f = c.field
        if f.startswith(ATTRIBUTE_PREFIX):
            return self.attribute(c, f[len(ATTRIBUTE_PREFIX) :])
        if f == "tags":
            return self.tags(c)
        if f in STRING_COLUMNS:
            col = sql.SQL("c.{}").format(sql.Identifier(f))
            return self.string(c, col, nullable=False)
        if f == "source":
            return self.source(c)
        if f in TIME_COLUMNS:
            return self.time(c, sql.SQL("c.{}").format(sql.Identifier(f)))
        if f in COUNT_FIELDS:
            return self.number(c, self.message_count(f == "messages_sent"), nullable=False)
        if f == "follows_account":
            op = "=" if c.operator == EQ else "<>"
            return sql.SQL("c.follows_account {} {}::boolean").format(
                sql.SQL(op), self.bind(c.bool_value)
            )
        if f == "has_open_conversation":
            wanted = c.bool_value if c.operator == EQ else not c.bool_value
            return sql.SQL(
                "{}EXISTS (SELECT 1 FROM conversations v"
                " WHERE v.merchant_id = %(merchant_id)s AND v.contact_id = c.id"
                " AND v.status <> 'CLOSED')"
            ).format(sql.SQL("" if wanted else "NOT "))
        if f in CAMPAIGN_FIELDS:
            return self.campaign(c, replied=f == "replied_to_campaign")
        raise ValueError(f"unknown field {f!r}")  # validate_conditions rejects it first

    # -- strings (case-insensitive) ------------------------------------------------

    def string(
        self, c: segments_pb2.Condition, expr: sql.Composable, *, nullable: bool
    ) -> sql.Composable:
        op = c.operator
        if op == IS_SET:
            return (
                sql.SQL("{} IS NOT NULL").format(expr)
                if nullable
                else sql.SQL("{} <> ''").format(expr)
            )
        if op == IS_NOT_SET:
            return (
                sql.SQL("{} IS NULL").format(expr) if nullable else sql.SQL("{} = ''").format(expr)
            )
        if op in (EQ, NE):
            p = self.bind(c.string_value)
            if op == EQ:
                return sql.SQL("lower({}) = lower({}::text)").format(expr, p)
            return sql.SQL("lower({}) IS DISTINCT FROM lower({}::text)").format(expr, p)
        if op in (IN, NOT_IN):
            p = self.bind(list(c.string_list.values))
            test = sql.SQL("lower({}) IN (SELECT lower(x) FROM unnest({}::text[]) x)").format(
                expr, p
            )
            if op == IN:
                return test
            return sql.SQL("NOT coalesce({}, false)").format(test)
        escaped = like_escape(c.string_value)
        pattern = {
            CONTAINS: f"%{escaped}%",
            NOT_CONTAINS: f"%{escaped}%",
            STARTS: f"{escaped}%",
            ENDS: f"%{escaped}",
        }[op]
        test = sql.SQL("{} ILIKE {}::text").format(expr, self.bind(pattern))
        if op == NOT_CONTAINS:
            return sql.SQL("NOT coalesce({}, false)").format(test)
        return test

    def tags(self, c: segments_pb2.Condition) -> sql.Composable:
        # Tags are stored trimmed and lowercased; binding lowered values keeps the
        # array operators on the GIN index.
        op = c.operator
        if op == IS_SET:
            return sql.SQL("cardinality(c.tags) > 0")
        if op == IS_NOT_SET:
            return sql.SQL("cardinality(c.tags) = 0")
        test: sql.Composable
        if op in (CONTAINS, NOT_CONTAINS):
            test = sql.SQL("c.tags @> ARRAY[{}::text]").format(
                self.bind(c.string_value.strip().lower())
            )
        else:
            test = sql.SQL("c.tags && {}::text[]").format(
                self.bind([v.strip().lower() for v in c.string_list.values])
            )
        return test if op in (CONTAINS, IN) else sql.SQL("NOT ({})").format(test)

    def source(self, c: segments_pb2.Condition) -> sql.Composable:
        if c.operator in (EQ, NE):
            op = "=" if c.operator == EQ else "<>"
            return sql.SQL("c.source {} {}::text").format(
                sql.SQL(op), self.bind(SOURCES[c.string_value.lower()])
            )
        values = [SOURCES[v.lower()] for v in c.string_list.values]
        test = sql.SQL("c.source = ANY({}::text[])").format(self.bind(values))
        return test if c.operator == IN else sql.SQL("NOT ({})").format(test)

    # -- times -------------------------------------------------------------------

    def time(self, c: segments_pb2.Condition, expr: sql.Composable) -> sql.Composable:
        op = c.operator
        if op == IS_SET:
            return sql.SQL("{} IS NOT NULL").format(expr)
        if op == IS_NOT_SET:
            return sql.SQL("{} IS NULL").format(expr)
        if op in (BEFORE, AFTER):
            return sql.SQL("{} {} {}::timestamptz").format(
                expr,
                sql.SQL("<" if op == BEFORE else ">"),
                self.bind(prototime.to_datetime(c.timestamp_value, "timestamp_value")),
            )
        if op == BETWEEN:
            r = c.timestamp_range
            return sql.SQL("{} BETWEEN {}::timestamptz AND {}::timestamptz").format(
                expr,
                self.bind(prototime.to_datetime(r.start_time, "timestamp_range.start_time")),
                self.bind(prototime.to_datetime(r.end_time, "timestamp_range.end_time")),
            )
        return sql.SQL("{} {} now() - make_interval(days => {}::int)").format(
            expr, sql.SQL(">=" if op == WITHIN else "<"), self.bind(c.days)
        )

    # -- numbers -----------------------------------------------------------------

    def number(
        self, c: segments_pb2.Condition, expr: sql.Composable, *, nullable: bool
    ) -> sql.Composable:
        op = c.operator
        if op == BETWEEN:
            return sql.SQL("{} BETWEEN {}::numeric AND {}::numeric").format(
                expr, self.bind(c.number_range.min), self.bind(c.number_range.max)
            )
        if op == NE and nullable:
            return sql.SQL("{} IS DISTINCT FROM {}::numeric").format(
                expr, self.bind(c.number_value)
            )
        symbol = {EQ: "=", NE: "<>", GT: ">", GE: ">=", LT: "<", LE: "<="}[op]
        return sql.SQL("{} {} {}::numeric").format(expr, sql.SQL(symbol), self.bind(c.number_value))

    def message_count(self, outbound: bool) -> sql.Composable:
        # The same rule as the contact's engagement figures: inbound DMs, and outbound
        # ones that actually left (SENT, DELIVERED, READ).
        which: sql.Composable
        if outbound:
            which = sql.SQL(
                "m.direction = 'OUTBOUND' AND m.delivery_state IN ('SENT', 'DELIVERED', 'READ')"
            )
        else:
            which = sql.SQL("m.direction = 'INBOUND'")
        return sql.SQL(
            "(SELECT count(*) FROM conversations v JOIN messages m"
            " ON m.conversation_id = v.id AND m.merchant_id = %(merchant_id)s"
            " WHERE v.merchant_id = %(merchant_id)s AND v.contact_id = c.id AND {})"
        ).format(which)

    # -- campaign facts ----------------------------------------------------------

    def campaign(self, c: segments_pb2.Condition, *, replied: bool) -> sql.Composable:
        match: sql.Composable
        if c.operator in (EQ, NE):
            match = sql.SQL("r.campaign_id = {}::uuid").format(self.bind(UUID(c.string_value)))
        else:
            match = sql.SQL("r.campaign_id = ANY({}::uuid[])").format(
                self.bind([UUID(v) for v in c.string_list.values])
            )
        state: sql.Composable
        if replied:
            state = sql.SQL("(r.state = 'REPLIED' OR r.replied_at IS NOT NULL)")
        else:
            state = sql.SQL("r.state IN ({})").format(
                sql.SQL(", ").join(sql.Literal(s) for s in RECEIVED_STATES)
            )
        negate = c.operator in (NE, NOT_IN)
        return sql.SQL(
            "{}EXISTS (SELECT 1 FROM campaign_recipients r"
            " WHERE r.merchant_id = %(merchant_id)s AND r.contact_id = c.id AND {} AND {})"
        ).format(sql.SQL("NOT " if negate else ""), match, state)

    # -- attributes --------------------------------------------------------------

    def attribute(self, c: segments_pb2.Condition, key: str) -> sql.Composable:
        # The key is validated against ATTRIBUTE_KEY and still bound, never formatted.
        kind = c.WhichOneof("value")
        kind_type = ATTRIBUTE_TYPES[(c.operator, kind)]
        k = self.bind(key)
        text = sql.SQL("(c.attributes ->> {}::text)").format(k)
        if kind_type == "any":
            return self.string(c, text, nullable=True)
        if kind_type == "string":
            # Only string values compare as strings; a number or bool never equals text.
            typed = sql.SQL(
                "(CASE WHEN jsonb_typeof(c.attributes -> {}::text) = 'string'"
                " THEN c.attributes ->> {}::text END)"
            ).format(k, k)
            return self.string(c, typed, nullable=True)
        if kind_type == "bool":
            test = sql.SQL("c.attributes @> jsonb_build_object({}::text, {}::boolean)").format(
                k, self.bind(c.bool_value)
            )
            return test if c.operator == EQ else sql.SQL("NOT ({})").format(test)
        if kind_type == "number":
            typed = sql.SQL(
                "(CASE WHEN jsonb_typeof(c.attributes -> {}::text) = 'number'"
                " THEN (c.attributes ->> {}::text)::numeric END)"
            ).format(k, k)
            return self.number(c, typed, nullable=True)
        # Timestamps are ISO 8601 strings; anything else never matches (see 0005).
        typed = sql.SQL("mktx_try_timestamptz(c.attributes ->> {}::text)").format(k)
        return self.time(c, typed)


def compile_conditions(conditions: dict[str, Any], *, prefix: str = "s_") -> CompiledSegment:
    """Compile a stored condition tree to a boolean expression over ``contacts c``.

    ``conditions`` is the JSON of a ConditionGroup (:func:`conditions_to_json`).
    Parameter names are ``prefix`` followed by a counter (``s_0``, ``s_1``, ...), so
    give each segment compiled into one statement its own prefix. Raises
    ``InvalidArgument`` (paths under ``conditions``) when the tree does not pass
    :func:`validate_conditions`, and ``json_format.ParseError`` when it is not a
    ConditionGroup at all. An empty root group compiles to ``TRUE``.
    """
    group = conditions_from_json(conditions)
    violations = validate_conditions(group)
    if violations:
        raise InvalidArgument(violations)
    comp = _Compiler(prefix)
    where = comp.group(group)
    return CompiledSegment(where=where, params=comp.params)
