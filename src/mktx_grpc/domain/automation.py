"""Automation flows without I/O: the definition, its validation, trigger matching and
the step machine's pure decisions (branches, randomizer paths, wake times).

A flow definition is one JSON document, stored as the draft on the flow and copied
into an immutable version by ActivateFlow (the API's shape one-to-one)::

    {"trigger": {"type": "KEYWORD", "config": {...}, "reentry": "EVERY_TIME",
                 "reentry_cooldown_s": 0},
     "nodes": [{"id": "n1", "type": "SEND_MESSAGE", "name": "", "config": {...},
                "position": {"x": 0, "y": 0}}],
     "connections": [{"from": "trigger", "to": "n1", "branch": "default"}]}

Types are the proto enum names without their prefix. :func:`validate_definition`
reports every problem together, each at its field (``nodes[3].config.template_id``,
``connections[2].to_node_id``). Regular expressions (keyword triggers) use RE2, a
linear-time engine, so a merchant's pattern cannot hang a worker.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import re2
from google.protobuf import json_format

from ..core.errors import FieldViolation
from .contacts import tag_problem
from .segments import conditions_from_json, validate_conditions

ENTRY = "trigger"
DEFAULT = "default"
MAX_NODES = 200
MAX_CONNECTIONS = 400
MAX_STEPS = 500
MAX_CONFIG_BYTES = 16 * 1024
MAX_NAME = 200
MAX_DESCRIPTION = 1000
MAX_KEYWORDS = 50
MAX_KEYWORD = 200
MAX_WAIT = timedelta(days=365)
MAX_TEXT = 10_000

_NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BRANCH = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ATTR_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DURATION = re.compile(r"^(\d{1,12})(\.\d{1,9})?s$")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)

TRIGGER_TYPES = (
    "NEW_FOLLOWER",
    "INBOUND_MESSAGE",
    "KEYWORD",
    "MENTION",
    "TAG_ADDED",
    "TAG_REMOVED",
    "ATTRIBUTE_CHANGED",
    "QUICK_REPLY",
    "CONVERSATION_CLOSED",
    "MANUAL",
    "CONTACT_CREATED",
)
NODE_TYPES = (
    "SEND_MESSAGE",
    "WAIT",
    "WAIT_FOR_REPLY",
    "CONDITION",
    "ADD_TAG",
    "REMOVE_TAG",
    "SET_ATTRIBUTE",
    "ASSIGN",
    "AI_REPLY",
    "ESCALATE",
    "CLOSE_CONVERSATION",
    "END",
    "RANDOMIZER",
    "START_FLOW",
)
REENTRY = ("EVERY_TIME", "ONCE", "COOLDOWN")
KEYWORD_MATCHES = ("exact", "contains", "starts_with", "regex")
#: Node types whose step parks the execution (a cycle must pass through one).
WAITING_TYPES = frozenset({"WAIT", "WAIT_FOR_REPLY"})

_FIXED_BRANCHES: dict[str, frozenset[str]] = {
    "SEND_MESSAGE": frozenset({DEFAULT}),
    "WAIT": frozenset({DEFAULT}),
    "CONDITION": frozenset({"true", "false"}),
    "ADD_TAG": frozenset({DEFAULT}),
    "REMOVE_TAG": frozenset({DEFAULT}),
    "SET_ATTRIBUTE": frozenset({DEFAULT}),
    "ASSIGN": frozenset({DEFAULT}),
    "AI_REPLY": frozenset({DEFAULT, "escalated"}),
    "ESCALATE": frozenset({DEFAULT}),
    "CLOSE_CONVERSATION": frozenset({DEFAULT}),
    "END": frozenset(),
    "START_FLOW": frozenset({DEFAULT}),
}


# ------------------------------------------------------------------ the definition


@dataclass
class Trigger:
    type: str = "UNSPECIFIED"
    config: dict[str, Any] = field(default_factory=dict)
    reentry: str = "EVERY_TIME"
    #: With reentry COOLDOWN: seconds from the previous start.
    reentry_cooldown_s: float = 0.0


@dataclass
class Node:
    id: str
    type: str
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class Connection:
    from_node: str
    to_node: str
    branch: str = DEFAULT


@dataclass
class Definition:
    trigger: Trigger = field(default_factory=Trigger)
    nodes: list[Node] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": {
                "type": self.trigger.type,
                "config": self.trigger.config,
                "reentry": self.trigger.reentry,
                "reentry_cooldown_s": self.trigger.reentry_cooldown_s,
            },
            "nodes": [
                {
                    "id": n.id,
                    "type": n.type,
                    "name": n.name,
                    "config": n.config,
                    "position": {"x": n.x, "y": n.y},
                }
                for n in self.nodes
            ],
            "connections": [
                {"from": c.from_node, "to": c.to_node, "branch": c.branch} for c in self.connections
            ],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Definition:
        """The stored form back (as :meth:`to_json` wrote it; {} is an empty draft)."""
        t = data.get("trigger") or {}
        return Definition(
            trigger=Trigger(
                type=str(t.get("type", "UNSPECIFIED")),
                config=dict(t.get("config") or {}),
                reentry=str(t.get("reentry", "EVERY_TIME")),
                reentry_cooldown_s=float(t.get("reentry_cooldown_s", 0.0)),
            ),
            nodes=[
                Node(
                    id=str(n["id"]),
                    type=str(n["type"]),
                    name=str(n.get("name", "")),
                    config=dict(n.get("config") or {}),
                    x=float((n.get("position") or {}).get("x", 0.0)),
                    y=float((n.get("position") or {}).get("y", 0.0)),
                )
                for n in data.get("nodes") or []
            ],
            connections=[
                Connection(str(c["from"]), str(c["to"]), str(c.get("branch") or DEFAULT))
                for c in data.get("connections") or []
            ],
        )


@dataclass(frozen=True)
class References:
    """What a definition names that must exist and belong to the merchant, each with
    the field that names it."""

    template_ids: list[tuple[str, str]]
    flow_ids: list[tuple[str, str]]


def references(d: Definition, prefix: str = "") -> References:
    templates: list[tuple[str, str]] = []
    flows: list[tuple[str, str]] = []
    for i, n in enumerate(d.nodes):
        if n.type == "SEND_MESSAGE" and isinstance(n.config.get("template_id"), str):
            if _UUID.match(n.config["template_id"]):
                templates.append(
                    (f"{prefix}nodes[{i}].config.template_id", n.config["template_id"])
                )
        if n.type == "START_FLOW" and isinstance(n.config.get("flow_id"), str):
            if _UUID.match(n.config["flow_id"]):
                flows.append((f"{prefix}nodes[{i}].config.flow_id", n.config["flow_id"]))
    return References(templates, flows)


# ------------------------------------------------------------------ small parsers


def parse_duration(value: Any) -> timedelta | None:
    """A proto-JSON duration ("3600s", "1.5s") as a timedelta; None when malformed."""
    if not isinstance(value, str):
        return None
    m = _DURATION.match(value)
    if m is None:
        return None
    seconds = int(m.group(1)) + (float(m.group(2)) if m.group(2) else 0.0)
    if seconds > MAX_WAIT.total_seconds() * 10:
        return None
    return timedelta(seconds=seconds)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str))


def _bad_text(value: Any, path: str, *, required: bool, max_len: int) -> list[FieldViolation]:
    if value is None or value == "":
        return [FieldViolation(path, "is required")] if required else []
    if not isinstance(value, str):
        return [FieldViolation(path, "must be a string")]
    if "\x00" in value:
        return [FieldViolation(path, "must not contain NUL characters")]
    if required and not value.strip():
        return [FieldViolation(path, "must not be blank")]
    if len(value) > max_len:
        return [FieldViolation(path, f"must be at most {max_len} characters")]
    return []


def _tag(value: Any, path: str) -> list[FieldViolation]:
    """The tag rule ContactsService applies (``domain.contacts.tag_problem``)."""
    if not isinstance(value, str):
        return [FieldViolation(path, "is required" if value is None else "must be a string")]
    problem = tag_problem(value)
    return [] if problem is None else [FieldViolation(path, problem)]


def _unknown_keys(
    config: Mapping[str, Any], known: Iterable[str], path: str
) -> list[FieldViolation]:
    allowed = set(known)
    return [
        FieldViolation(f"{path}.{k}", "is not a setting of this type")
        for k in config
        if k not in allowed
    ]


def _duration_field(
    value: Any, path: str, *, required: bool = True, minimum: timedelta = timedelta(seconds=1)
) -> list[FieldViolation]:
    if value is None:
        return [FieldViolation(path, "is required")] if required else []
    d = parse_duration(value)
    if d is None:
        return [FieldViolation(path, 'must be a duration such as "3600s"')]
    if d < minimum or d > MAX_WAIT:
        return [FieldViolation(path, f"must be {int(minimum.total_seconds())}s to 365 days")]
    return []


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.max_mem = 8 << 20
    options.log_errors = False
    return re2.compile(pattern, options)


def regex_problem(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern`` (None when it compiles)."""
    try:
        _compiled(pattern)
    except re2.error as exc:
        return f"is not an RE2 regular expression: {exc}"
    except Exception as exc:  # re2 raises plain errors for some inputs
        return f"is not an RE2 regular expression: {exc}"
    return None


# ------------------------------------------------------------------ validation


def validate_flow_fields(name: str, description: str, prefix: str = "") -> list[FieldViolation]:
    v: list[FieldViolation] = []
    v += _bad_text(name, f"{prefix}name", required=True, max_len=MAX_NAME)
    v += _bad_text(description, f"{prefix}description", required=False, max_len=MAX_DESCRIPTION)
    return v


def validate_trigger(t: Trigger, prefix: str = "trigger") -> list[FieldViolation]:
    """The trigger's type, config and re-entry policy (type may be UNSPECIFIED: only
    activation requires it)."""
    v: list[FieldViolation] = []
    cp = f"{prefix}.config"
    c = t.config
    if t.type != "UNSPECIFIED" and t.type not in TRIGGER_TYPES:
        v.append(FieldViolation(f"{prefix}.type", "is not a known value"))
    if _json_size(c) > MAX_CONFIG_BYTES:
        return [*v, FieldViolation(cp, "must be at most 16 KB")]
    if t.type == "KEYWORD":
        v += _unknown_keys(c, ("keywords", "match"), cp)
        match = c.get("match", "contains")
        if match not in KEYWORD_MATCHES:
            v.append(FieldViolation(f"{cp}.match", f"must be one of {', '.join(KEYWORD_MATCHES)}"))
        v += _keywords(c.get("keywords"), f"{cp}.keywords", required=True, regex=match == "regex")
    elif t.type == "INBOUND_MESSAGE":
        v += _unknown_keys(c, ("new_conversation_only", "first_message_only"), cp)
        for k in ("new_conversation_only", "first_message_only"):
            if k in c and not isinstance(c[k], bool):
                v.append(FieldViolation(f"{cp}.{k}", "must be true or false"))
    elif t.type == "MENTION":
        v += _unknown_keys(c, ("keywords", "post_id"), cp)
        if "keywords" in c:
            v += _keywords(c["keywords"], f"{cp}.keywords", required=False, regex=False)
        if "post_id" in c and not (
            isinstance(c["post_id"], str) and c["post_id"].isdigit() and len(c["post_id"]) <= 19
        ):
            v.append(FieldViolation(f"{cp}.post_id", "must be a numeric post id"))
    elif t.type in ("TAG_ADDED", "TAG_REMOVED"):
        v += _unknown_keys(c, ("tag",), cp)
        v += _tag(c.get("tag"), f"{cp}.tag")
    elif t.type == "ATTRIBUTE_CHANGED":
        v += _unknown_keys(c, ("key",), cp)
        v += _attr_key(c.get("key"), f"{cp}.key")
    elif t.type == "QUICK_REPLY":
        v += _unknown_keys(c, ("metadata",), cp)
        v += _bad_text(c.get("metadata"), f"{cp}.metadata", required=False, max_len=1000)
    elif t.type in TRIGGER_TYPES:
        v += _unknown_keys(c, (), cp)
    if t.reentry not in REENTRY:
        v.append(FieldViolation(f"{prefix}.reentry", "is not a known value"))
    elif t.reentry == "COOLDOWN":
        s = t.reentry_cooldown_s
        if not (1 <= s <= MAX_WAIT.total_seconds()):
            v.append(FieldViolation(f"{prefix}.reentry_cooldown", "must be 1 second to 365 days"))
    elif t.reentry_cooldown_s:
        v.append(FieldViolation(f"{prefix}.reentry_cooldown", "is only for reentry COOLDOWN"))
    return v


def _keywords(value: Any, path: str, *, required: bool, regex: bool) -> list[FieldViolation]:
    if not isinstance(value, list) or (required and not value):
        return [FieldViolation(path, f"must be a list of 1 to {MAX_KEYWORDS} keywords")]
    if len(value) > MAX_KEYWORDS:
        return [FieldViolation(path, f"must hold at most {MAX_KEYWORDS} keywords")]
    v: list[FieldViolation] = []
    for i, k in enumerate(value):
        bad = _bad_text(k, f"{path}[{i}]", required=True, max_len=MAX_KEYWORD)
        if not bad and regex:
            problem = regex_problem(k)
            if problem:
                bad = [FieldViolation(f"{path}[{i}]", problem)]
        v += bad
    return v


def _attr_key(value: Any, path: str) -> list[FieldViolation]:
    if not isinstance(value, str) or not _ATTR_KEY.match(value):
        return [FieldViolation(path, "must be 1 to 64 characters of [A-Za-z0-9_.-]")]
    return []


def node_branches(n: Node) -> frozenset[str] | None:
    """The branches a node may have connections for; None: any label (WAIT_FOR_REPLY
    also takes quick-reply metadata values)."""
    if n.type == "RANDOMIZER":
        paths = n.config.get("paths")
        if not isinstance(paths, list):
            return frozenset()
        return frozenset(
            str(p["branch"])
            for p in paths
            if isinstance(p, dict) and isinstance(p.get("branch"), str)
        )
    if n.type == "WAIT_FOR_REPLY":
        return None
    return _FIXED_BRANCHES.get(n.type, frozenset())


def required_branches(n: Node) -> frozenset[str]:
    """Branches that must be connected (every way a branching node can go)."""
    if n.type == "CONDITION":
        return frozenset({"true", "false"})
    if n.type == "WAIT_FOR_REPLY":
        return frozenset({"replied", "timeout"})
    if n.type == "RANDOMIZER":
        return node_branches(n) or frozenset()
    return frozenset()


def validate_node_config(n: Node, path: str) -> list[FieldViolation]:
    """One node's config by its type; ``path`` is the node's (``nodes[3]``)."""
    c, cp = n.config, f"{path}.config"
    if _json_size(c) > MAX_CONFIG_BYTES:
        return [FieldViolation(cp, "must be at most 16 KB")]
    v: list[FieldViolation] = []
    t = n.type
    if t == "SEND_MESSAGE":
        v += _unknown_keys(
            c, ("text", "template_id", "variables", "quick_replies", "media_url"), cp
        )
        has_text, has_tpl = bool(c.get("text")), bool(c.get("template_id"))
        if has_text == has_tpl:
            v.append(FieldViolation(f"{cp}.text", "exactly one of text or template_id is required"))
        if has_text:
            v += _bad_text(c["text"], f"{cp}.text", required=True, max_len=MAX_TEXT)
        if has_tpl and not (isinstance(c["template_id"], str) and _UUID.match(c["template_id"])):
            v.append(FieldViolation(f"{cp}.template_id", "must be a UUID"))
        variables = c.get("variables", {})
        if not isinstance(variables, dict):
            v.append(FieldViolation(f"{cp}.variables", "must be an object of strings"))
        else:
            for k, val in variables.items():
                v += _bad_text(val, f"{cp}.variables.{k}", required=False, max_len=1000)
        qrs = c.get("quick_replies", [])
        if not isinstance(qrs, list) or len(qrs) > 20:
            v.append(FieldViolation(f"{cp}.quick_replies", "must be a list of at most 20"))
        else:
            for i, q in enumerate(qrs):
                qp = f"{cp}.quick_replies[{i}]"
                if not isinstance(q, dict):
                    v.append(FieldViolation(qp, "must be an object"))
                    continue
                v += _unknown_keys(q, ("label", "description", "metadata"), qp)
                v += _bad_text(q.get("label"), f"{qp}.label", required=True, max_len=36)
                v += _bad_text(
                    q.get("description"), f"{qp}.description", required=False, max_len=72
                )
                v += _bad_text(q.get("metadata"), f"{qp}.metadata", required=False, max_len=1000)
        if "media_url" in c:
            url = c["media_url"]
            if not (
                isinstance(url, str)
                and url.startswith("https://")
                and 8 < len(url) <= 2048
                and "\x00" not in url
            ):
                v.append(FieldViolation(f"{cp}.media_url", "must be an https URL"))
    elif t == "WAIT":
        v += _unknown_keys(c, ("duration", "until_time", "weekdays", "until"), cp)
        given = [k for k in ("duration", "until_time", "until") if k in c]
        if len(given) != 1:
            v.append(
                FieldViolation(
                    f"{cp}.duration", "exactly one of duration, until_time or until is required"
                )
            )
        elif given[0] == "duration":
            v += _duration_field(c["duration"], f"{cp}.duration")
        elif given[0] == "until_time":
            if not (isinstance(c["until_time"], str) and _TIME_OF_DAY.match(c["until_time"])):
                v.append(FieldViolation(f"{cp}.until_time", 'must be a time of day "HH:MM"'))
        elif parse_time(c["until"]) is None:
            v.append(FieldViolation(f"{cp}.until", "must be an RFC 3339 time with an offset"))
        if "weekdays" in c:
            wd = c["weekdays"]
            if "until_time" not in c:
                v.append(FieldViolation(f"{cp}.weekdays", "is only for until_time"))
            elif not (
                isinstance(wd, list)
                and 1 <= len(wd) <= 7
                and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7 for d in wd)
            ):
                v.append(FieldViolation(f"{cp}.weekdays", "must be ISO weekdays 1 (Monday) to 7"))
    elif t == "WAIT_FOR_REPLY":
        v += _unknown_keys(c, ("timeout",), cp)
        v += _duration_field(c.get("timeout"), f"{cp}.timeout")
    elif t == "CONDITION":
        v += _unknown_keys(c, ("conditions", "reply_contains"), cp)
        if ("conditions" in c) == ("reply_contains" in c):
            v.append(
                FieldViolation(
                    f"{cp}.conditions", "exactly one of conditions or reply_contains is required"
                )
            )
        elif "conditions" in c:
            if not isinstance(c["conditions"], dict):
                v.append(FieldViolation(f"{cp}.conditions", "must be a ConditionGroup object"))
            else:
                try:
                    group = conditions_from_json(c["conditions"])
                except json_format.ParseError as exc:
                    v.append(FieldViolation(f"{cp}.conditions", f"is not a ConditionGroup: {exc}"))
                else:
                    v += validate_conditions(group, f"{cp}.conditions")
        else:
            v += _bad_text(c["reply_contains"], f"{cp}.reply_contains", required=True, max_len=500)
    elif t in ("ADD_TAG", "REMOVE_TAG"):
        v += _unknown_keys(c, ("tags",), cp)
        tags = c.get("tags")
        if not isinstance(tags, list) or not 1 <= len(tags) <= 20:
            v.append(FieldViolation(f"{cp}.tags", "must be a list of 1 to 20 tags"))
        else:
            for i, tag in enumerate(tags):
                v += _tag(tag, f"{cp}.tags[{i}]")
    elif t == "SET_ATTRIBUTE":
        v += _unknown_keys(c, ("key", "value", "from_reply"), cp)
        v += _attr_key(c.get("key"), f"{cp}.key")
        from_reply = c.get("from_reply", False)
        if not isinstance(from_reply, bool):
            v.append(FieldViolation(f"{cp}.from_reply", "must be true or false"))
        elif from_reply and "value" in c:
            v.append(FieldViolation(f"{cp}.value", "must not be set with from_reply"))
        elif not from_reply and "value" not in c:
            v.append(FieldViolation(f"{cp}.value", "is required (null removes the attribute)"))
        val = c.get("value")
        if isinstance(val, (dict, list)):
            v.append(FieldViolation(f"{cp}.value", "must be a string, number, boolean or null"))
        elif isinstance(val, str):
            v += _bad_text(val, f"{cp}.value", required=False, max_len=1000)
        elif isinstance(val, float) and not math.isfinite(val):
            v.append(FieldViolation(f"{cp}.value", "must be a finite number"))
    elif t == "ASSIGN":
        v += _unknown_keys(c, ("assignee_user_id",), cp)
        v += _bad_text(
            c.get("assignee_user_id"), f"{cp}.assignee_user_id", required=True, max_len=128
        )
    elif t == "AI_REPLY":
        v += _unknown_keys(c, ("instructions",), cp)
        v += _bad_text(c.get("instructions"), f"{cp}.instructions", required=False, max_len=2000)
    elif t in ("ESCALATE", "CLOSE_CONVERSATION"):
        v += _unknown_keys(c, ("reason",), cp)
        v += _bad_text(c.get("reason"), f"{cp}.reason", required=False, max_len=500)
    elif t == "END":
        v += _unknown_keys(c, (), cp)
    elif t == "RANDOMIZER":
        v += _unknown_keys(c, ("paths",), cp)
        paths = c.get("paths")
        if not isinstance(paths, list) or not 2 <= len(paths) <= 10:
            v.append(FieldViolation(f"{cp}.paths", "must be a list of 2 to 10 paths"))
        else:
            seen: set[str] = set()
            total = 0
            for i, p in enumerate(paths):
                pp = f"{cp}.paths[{i}]"
                if not isinstance(p, dict):
                    v.append(FieldViolation(pp, "must be an object"))
                    continue
                v += _unknown_keys(p, ("branch", "weight"), pp)
                b = p.get("branch")
                if not isinstance(b, str) or not _BRANCH.match(b):
                    v.append(
                        FieldViolation(
                            f"{pp}.branch", "must be 1 to 64 characters of [A-Za-z0-9_.:-]"
                        )
                    )
                elif b in seen:
                    v.append(FieldViolation(f"{pp}.branch", "is a duplicate"))
                else:
                    seen.add(b)
                w = p.get("weight")
                if isinstance(w, float) and w.is_integer():
                    w = int(w)
                if not isinstance(w, int) or isinstance(w, bool) or not 1 <= w <= 100:
                    v.append(FieldViolation(f"{pp}.weight", "must be a whole number 1 to 100"))
                else:
                    total += w
            if not v and total != 100:
                v.append(
                    FieldViolation(f"{cp}.paths", f"weights must sum to 100 (they sum to {total})")
                )
    elif t == "START_FLOW":
        v += _unknown_keys(c, ("flow_id",), cp)
        fid = c.get("flow_id")
        if not (isinstance(fid, str) and _UUID.match(fid)):
            v.append(FieldViolation(f"{cp}.flow_id", "must be a UUID"))
    return v


def validate_definition(
    d: Definition, prefix: str = "", *, complete: bool = False
) -> list[FieldViolation]:
    """Every problem of a definition, each at its field (paths start with ``prefix``,
    e.g. "flow."). ``complete`` (activation) also requires a trigger type and at
    least one node; a draft may be empty. Checked: sizes; node ids well formed and
    unique; node types and configs; connections name existing nodes, a branch the
    source has, at most one connection per (node, branch), no duplicates; exactly
    one connection leaves the trigger; every node is reachable; every branch of a
    CONDITION / RANDOMIZER / WAIT_FOR_REPLY is connected; every cycle passes through
    a WAIT or WAIT_FOR_REPLY node."""
    v: list[FieldViolation] = []
    v += validate_trigger(d.trigger, f"{prefix}trigger")
    if complete and d.trigger.type == "UNSPECIFIED":
        v.append(FieldViolation(f"{prefix}trigger.type", "is required to activate"))
    if len(d.nodes) > MAX_NODES:
        return [*v, FieldViolation(f"{prefix}nodes", f"must hold at most {MAX_NODES} nodes")]
    if len(d.connections) > MAX_CONNECTIONS:
        return [
            *v,
            FieldViolation(
                f"{prefix}connections", f"must hold at most {MAX_CONNECTIONS} connections"
            ),
        ]
    if complete and not d.nodes:
        v.append(FieldViolation(f"{prefix}nodes", "a flow needs at least one node to activate"))
    by_id: dict[str, int] = {}
    for i, n in enumerate(d.nodes):
        np = f"{prefix}nodes[{i}]"
        if n.id == ENTRY or not _NODE_ID.match(n.id):
            v.append(
                FieldViolation(
                    f"{np}.id", 'must be 1 to 64 characters of [A-Za-z0-9_-], not "trigger"'
                )
            )
        elif n.id in by_id:
            v.append(FieldViolation(f"{np}.id", f"duplicates nodes[{by_id[n.id]}].id"))
        else:
            by_id[n.id] = i
        if n.type not in NODE_TYPES:
            v.append(
                FieldViolation(
                    f"{np}.type",
                    "is required" if n.type == "UNSPECIFIED" else "is not a known value",
                )
            )
        else:
            v += validate_node_config(n, np)
        v += _bad_text(n.name, f"{np}.name", required=False, max_len=MAX_NAME)
        if not (math.isfinite(n.x) and math.isfinite(n.y)):
            v.append(FieldViolation(f"{np}.position", "must be finite coordinates"))
    if not d.nodes and not d.connections:
        return v
    seen_edges: dict[tuple[str, str], int] = {}
    out: dict[str, list[str]] = {}
    entry_edges: list[int] = []
    for i, c in enumerate(d.connections):
        cp = f"{prefix}connections[{i}]"
        ok = True
        if c.from_node == ENTRY:
            entry_edges.append(i)
            if c.branch != DEFAULT:
                v.append(
                    FieldViolation(f"{cp}.branch", 'the trigger has only the "default" branch')
                )
                ok = False
        elif c.from_node not in by_id:
            v.append(FieldViolation(f"{cp}.from_node_id", "names no node of the flow"))
            ok = False
        else:
            src = d.nodes[by_id[c.from_node]]
            allowed = node_branches(src)
            if allowed is None:
                if not _BRANCH.match(c.branch):
                    v.append(
                        FieldViolation(
                            f"{cp}.branch", "must be 1 to 64 characters of [A-Za-z0-9_.:-]"
                        )
                    )
                    ok = False
            elif c.branch not in allowed:
                names = ", ".join(f'"{b}"' for b in sorted(allowed)) or "none"
                v.append(
                    FieldViolation(
                        f"{cp}.branch", f"{src.type} has no branch {c.branch!r} (branches: {names})"
                    )
                )
                ok = False
        if c.to_node not in by_id:
            v.append(FieldViolation(f"{cp}.to_node_id", "names no node of the flow"))
            ok = False
        key = (c.from_node, c.branch)
        if key in seen_edges:
            v.append(
                FieldViolation(
                    f"{cp}.branch",
                    f"duplicates connections[{seen_edges[key]}]"
                    " (one connection per node and branch)",
                )
            )
            ok = False
        else:
            seen_edges[key] = i
        if ok:
            out.setdefault(c.from_node, []).append(c.to_node)
    if len(entry_edges) != 1 and d.nodes:
        v.append(
            FieldViolation(
                f"{prefix}connections",
                f'exactly one connection must leave "trigger" (found {len(entry_edges)})',
            )
        )
    # Reachability from the trigger.
    reached: set[str] = set()
    stack = list(out.get(ENTRY, []))
    while stack:
        nid = stack.pop()
        if nid in reached:
            continue
        reached.add(nid)
        stack.extend(out.get(nid, []))
    for nid, i in by_id.items():
        if nid not in reached:
            v.append(FieldViolation(f"{prefix}nodes[{i}].id", "is not reachable from the trigger"))
    for nid, i in by_id.items():
        n = d.nodes[i]
        for b in sorted(required_branches(n)):
            if (nid, b) not in seen_edges:
                v.append(FieldViolation(f"{prefix}nodes[{i}]", f"branch {b!r} has no connection"))
    for nid in _cycle_nodes_without_wait(d, out, by_id):
        v.append(
            FieldViolation(
                f"{prefix}nodes[{by_id[nid]}].id",
                "is on a cycle that passes through no WAIT or WAIT_FOR_REPLY node",
            )
        )
    return v


def _cycle_nodes_without_wait(
    d: Definition, out: Mapping[str, list[str]], by_id: Mapping[str, int]
) -> list[str]:
    """Nodes on a cycle among non-waiting nodes (strongly connected components of
    the graph without WAIT / WAIT_FOR_REPLY nodes that hold a cycle), in node order."""
    keep = {nid for nid, i in by_id.items() if d.nodes[i].type not in WAITING_TYPES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    bad: set[str] = set()
    counter = 0
    for root in keep:
        if root in index:
            continue
        # Iterative Tarjan: (node, iterator over its successors).
        work: list[tuple[str, Iterable[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        work.append((root, iter([s for s in out.get(root, []) if s in keep])))
        while work:
            node, it = work[-1]
            advanced = False
            for succ in it:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on.add(succ)
                    work.append((succ, iter([s for s in out.get(succ, []) if s in keep])))
                    advanced = True
                    break
                if succ in on:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1 or node in out.get(node, []):
                    bad.update(comp)
    return sorted(bad, key=lambda n: by_id[n])


# ------------------------------------------------------------------ trigger matching


def normalize_text(text: str) -> str:
    return " ".join(text.split()).casefold()


def keyword_matches(config: Mapping[str, Any], text: str) -> bool:
    """Whether an inbound DM's ``text`` matches a KEYWORD trigger's config
    (case-insensitive; white space at the ends and runs inside ignored, except for
    "regex", which sees the text as sent)."""
    match = config.get("match", "contains")
    keywords = [k for k in config.get("keywords") or [] if isinstance(k, str) and k]
    if match == "regex":
        return any(_compiled(k).search(text) is not None for k in keywords)
    t = normalize_text(text)
    for k in keywords:
        kw = normalize_text(k)
        if not kw:
            continue
        if match == "exact" and t == kw:
            return True
        if match == "starts_with" and t.startswith(kw):
            return True
        if match == "contains" and kw in t:
            return True
    return False


def mention_matches(config: Mapping[str, Any], text: str, in_reply_to: str) -> bool:
    post_id = config.get("post_id")
    if post_id and post_id != in_reply_to:
        return False
    keywords = config.get("keywords") or []
    if not keywords:
        return True
    t = normalize_text(text)
    return any(normalize_text(k) in t for k in keywords if isinstance(k, str))


# ------------------------------------------------------------------ the step machine


class Graph:
    """A definition ready to run: nodes by id and the next node per (node, branch)."""

    def __init__(self, d: Definition) -> None:
        self.definition = d
        self.nodes = {n.id: n for n in d.nodes}
        self.edges = {(c.from_node, c.branch): c.to_node for c in d.connections}

    @property
    def entry(self) -> str | None:
        return self.edges.get((ENTRY, DEFAULT))

    def next(self, node_id: str, branch: str) -> str | None:
        return self.edges.get((node_id, branch))


def pick_path(paths: Sequence[Mapping[str, Any]], sticky_key: str) -> str:
    """A RANDOMIZER's branch for one contact: a stable hash of ``sticky_key`` (the
    flow, node and contact) picks a point in 0..99 on the weights' cumulative line,
    so the same contact always takes the same path and contacts split by weight."""
    point = int.from_bytes(hashlib.blake2b(sticky_key.encode(), digest_size=8).digest(), "big")
    point %= 100
    acc = 0
    for p in paths:
        acc += int(p["weight"])
        if point < acc:
            return str(p["branch"])
    return str(paths[-1]["branch"])


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def zone(name: str, fallback: str = "UTC") -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def wake_time(config: Mapping[str, Any], now: datetime, tz: ZoneInfo) -> datetime:
    """When a WAIT node started at ``now`` ends: after its duration, at its next time
    of day (on its weekdays) in ``tz``, or at its fixed time (now when it has passed)."""
    if "duration" in config:
        d = parse_duration(config["duration"]) or timedelta(0)
        return now + d
    if "until" in config:
        t = parse_time(config["until"]) or now
        return max(t, now)
    hh, mm = (int(x) for x in str(config["until_time"]).split(":"))
    weekdays = set(config.get("weekdays") or range(1, 8))
    local = now.astimezone(tz)
    for days in range(0, 8):
        day = (local + timedelta(days=days)).date()
        candidate = datetime(day.year, day.month, day.day, hh, mm, tzinfo=tz)
        if candidate > local and candidate.isoweekday() in weekdays:
            return candidate.astimezone(UTC)
    return now + timedelta(days=7)


def reply_branch(graph: Graph, node_id: str, quick_reply_metadata: str) -> str:
    """The branch a reply takes at a WAIT_FOR_REPLY node: the tapped quick reply's
    metadata when the node has a connection for it, else "replied"."""
    if quick_reply_metadata and graph.next(node_id, quick_reply_metadata) is not None:
        return quick_reply_metadata
    return "replied"


#: Outcomes of the AI assistant's queue (``worker/auto_reply.py``) that count as the
#: bot having answered: the ``ai_reply`` node's "default" branch.
AI_ANSWERED = frozenset({"REPLIED"})


def ai_reply_branch(outcome: str | None) -> str:
    """The branch an AI_REPLY step takes for its message's auto-reply outcome:
    "default" when the bot answered (REPLIED); "escalated" for everything else
    (ESCALATED, AWAY / AWAY_SENT out of hours, HUMANS when people have the
    conversation, SKIPPED when the assistant is off, None when nothing was queued)."""
    return DEFAULT if outcome in AI_ANSWERED else "escalated"


def may_enter(
    trigger: Trigger, previous: int, last_start: datetime | None, live: bool, now: datetime
) -> bool:
    """The re-entry policy: whether a contact with ``previous`` executions of the flow
    (the latest started at ``last_start``; ``live``: one still runs) may start
    another. Never while one is live."""
    if live:
        return False
    if previous == 0:
        return True
    if trigger.reentry == "ONCE":
        return False
    if trigger.reentry == "COOLDOWN" and last_start is not None:
        return now - last_start >= timedelta(seconds=trigger.reentry_cooldown_s)
    return True


def changed_tags_and_attributes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, list[str]]:
    """What a contact change did to its tags and attributes, as the ``contact.updated``
    event carries it for TAG_ADDED / TAG_REMOVED / ATTRIBUTE_CHANGED triggers:
    ``tags_added``, ``tags_removed``, ``attributes_changed`` (keys set, changed or
    removed). Only non-empty lists are returned."""
    old_tags, new_tags = list(before.get("tags") or []), list(after.get("tags") or [])
    old_attrs = dict(before.get("attributes") or {})
    new_attrs = dict(after.get("attributes") or {})
    out = {
        "tags_added": [t for t in new_tags if t not in old_tags],
        "tags_removed": [t for t in old_tags if t not in new_tags],
        "attributes_changed": sorted(
            k
            for k in set(old_attrs) | set(new_attrs)
            if old_attrs.get(k) != new_attrs.get(k) or (k in old_attrs) != (k in new_attrs)
        ),
    }
    return {k: v for k, v in out.items() if v}


def tag_trigger_matches(trigger: Trigger, payload: Mapping[str, Any]) -> bool:
    """Whether a ``contact.updated`` event's changes fire a TAG_ADDED, TAG_REMOVED or
    ATTRIBUTE_CHANGED trigger (tags compared lower-cased, as contacts store them)."""
    c = trigger.config
    if trigger.type == "TAG_ADDED":
        return str(c.get("tag", "")).strip().lower() in (payload.get("tags_added") or [])
    if trigger.type == "TAG_REMOVED":
        return str(c.get("tag", "")).strip().lower() in (payload.get("tags_removed") or [])
    if trigger.type == "ATTRIBUTE_CHANGED":
        return c.get("key") in (payload.get("attributes_changed") or [])
    return False
