"""JSON Schema work for structured output and tool arguments.

- :func:`instance_for` builds a value that validates against a schema, filling the
  fields it recognises (intent, confidence, slots, reply, escalate, summary, …, by
  the names in :data:`FIELD_ALIASES`) from the stand-in's analysis and giving every
  other required field a minimal valid value. It handles ``type`` (single or list),
  ``enum``, ``const``, ``anyOf``/``oneOf``/``allOf``, nullable fields, local
  ``$ref`` (``#/$defs/…``, recursion included), string formats and lengths, number
  bounds and array sizes. ``pattern`` cannot be honoured in general; a pattern the
  filled value misses is reported by :func:`validation_errors`.
- :func:`strict_schema_problem` applies OpenAI's rules for ``strict: true``
  schemas (every object closes ``additionalProperties`` and requires all its keys).
- :func:`mismatching_instance` turns a valid value into one that does not validate:
  the ``schema_mismatch`` fault.

Validation itself is ``jsonschema``'s (draft 2020-12), never hand-written here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

__all__ = [
    "FIELD_ALIASES",
    "analysis_field",
    "instance_for",
    "mismatching_instance",
    "schema_error",
    "strict_schema_problem",
    "validation_errors",
]

# Property names (normalised: lower case, non-alphanumerics as "_") that mean one
# of the analysis fields; the AI client may call its fields any of these.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "intent": ("intent", "intent_name", "detected_intent", "category", "classification"),
    "confidence": ("confidence", "score", "probability", "certainty", "intent_confidence"),
    "slots": ("slots", "entities", "parameters", "slot_values", "extracted_slots", "fields"),
    "missing_slots": ("missing_slots", "missing", "missing_fields", "needed_slots"),
    "reply": (
        "reply",
        "response",
        "message",
        "answer",
        "text",
        "content",
        "reply_text",
        "suggested_reply",
    ),
    "escalate": (
        "escalate",
        "handoff",
        "hand_off",
        "needs_human",
        "escalation",
        "human_handoff",
        "should_escalate",
    ),
    "reason": ("reason", "rationale", "explanation", "escalation_reason"),
    "summary": ("summary", "handoff_summary", "conversation_summary"),
}
_ALIAS_TO_FIELD = {alias: key for key, aliases in FIELD_ALIASES.items() for alias in aliases}
_MISSING: Any = object()
_MAX_DEPTH = 8
_NON_NULL_TYPES = ("object", "array", "string", "number", "integer", "boolean")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def analysis_field(name: str) -> str | None:
    """The analysis field a property called ``name`` means, if any."""
    return _ALIAS_TO_FIELD.get(_norm(name))


def schema_error(schema: Any) -> str | None:
    """Why ``schema`` is not a valid JSON Schema, or None if it is."""
    if not isinstance(schema, Mapping | bool):
        return "schema must be a JSON object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return str(exc.message)
    return None


def validation_errors(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every way ``value`` fails ``schema`` (empty when it validates)."""
    validator = Draft202012Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in validator.iter_errors(value)
    ]


def strict_schema_problem(schema: Mapping[str, Any]) -> str | None:
    """OpenAI's strict-mode complaint about ``schema`` in its words, or None.

    Strict schemas must have an object at the root, and every object in them must
    set ``additionalProperties: false`` and list every property in ``required``.
    """
    if schema.get("type") != "object" or "anyOf" in schema:
        got = schema.get("type", "anyOf" if "anyOf" in schema else None)
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'."
    return _strict_walk(schema, ())


def _strict_walk(node: Any, ctx: tuple[str, ...]) -> str | None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            if (found := _strict_walk(item, (*ctx, str(i)))) is not None:
                return found
        return None
    if not isinstance(node, Mapping):
        return None
    types = node.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    if is_object or "properties" in node:
        where = f"In context={ctx!r}"
        if node.get("additionalProperties") is not False:
            return f"{where}, 'additionalProperties' is required to be supplied and to be false."
        props = list((node.get("properties") or {}).keys())
        required = node.get("required")
        missing = [p for p in props if not isinstance(required, list) or p not in required]
        if missing:
            return (
                f"{where}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            if (found := _strict_walk(sub, (*ctx, key, name))) is not None:
                return found
    for key in ("items", "anyOf", "oneOf", "allOf"):
        if key in node and (found := _strict_walk(node[key], (*ctx, key))) is not None:
            return found
    return None


class _Filler:
    def __init__(self, root: Mapping[str, Any], now: datetime) -> None:
        self.root = root
        self.now = now
        self._defs = {k: root[k] for k in ("$defs", "definitions") if k in root}

    # -- helpers -----------------------------------------------------------------------

    def fits(self, value: Any, schema: Any) -> bool:
        if value is _MISSING:
            return False
        if isinstance(schema, Mapping):
            schema = {**self._defs, **schema}
        return bool(Draft202012Validator(schema).is_valid(value))

    def resolve(self, schema: Any, seen: int = 0) -> Any:
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < 32:
            ref = schema["$ref"]
            target: Any = self.root
            if ref != "#":
                if not ref.startswith("#/"):
                    return {}
                for part in ref[2:].split("/"):
                    part = part.replace("~1", "/").replace("~0", "~")
                    if not isinstance(target, Mapping) or part not in target:
                        return {}
                    target = target[part]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if isinstance(target, Mapping) else target
            seen += 1
        return schema

    @staticmethod
    def lookup(hint: Any, name: str) -> Any:
        if not isinstance(hint, Mapping):
            return _MISSING
        if name in hint:
            return hint[name]
        field = _ALIAS_TO_FIELD.get(_norm(name))
        if field is not None and field in hint:
            return hint[field]
        return _MISSING

    # -- generation --------------------------------------------------------------------

    def value(self, schema: Any, hint: Any, depth: int) -> Any:
        schema = self.resolve(schema)
        if schema is True or not isinstance(schema, Mapping):
            return None if hint is _MISSING else hint
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.enum(schema["enum"], hint)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.union(schema, key, hint, depth)
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                if isinstance(part, Mapping):
                    for k, v in part.items():
                        if k in ("properties",) and k in merged:
                            merged[k] = {**merged[k], **v}
                        elif k == "required" and k in merged:
                            merged[k] = [*merged[k], *v]
                        else:
                            merged[k] = v
            return self.value(merged, hint, depth)
        kind = self.pick_type(schema, hint, depth)
        if kind == "null":
            return None
        if kind == "object":
            return self.obj(schema, hint, depth)
        if kind == "array":
            return self.array(schema, hint, depth)
        if kind == "string":
            return self.string(schema, hint)
        if kind in ("number", "integer"):
            return self.number(schema, hint, integer=kind == "integer")
        if kind == "boolean":
            return self.boolean(hint)
        return None if hint is _MISSING else hint

    def pick_type(self, schema: Mapping[str, Any], hint: Any, depth: int) -> str | None:
        declared = schema.get("type")
        if declared is None:
            if "properties" in schema:
                return "object"
            if "items" in schema:
                return "array"
            return None
        types = [declared] if isinstance(declared, str) else list(declared)
        if "null" in types and (hint is None or hint is _MISSING or depth >= _MAX_DEPTH):
            return "null"
        for t in types:
            if t != "null" and self._hint_is(hint, t):
                return str(t)
        non_null = [t for t in types if t != "null"]
        return str(non_null[0]) if non_null else "null"

    @staticmethod
    def _hint_is(hint: Any, kind: str) -> bool:
        if hint is _MISSING or hint is None:
            return False
        return {
            "object": isinstance(hint, Mapping),
            "array": isinstance(hint, list | tuple),
            "string": isinstance(hint, str),
            "boolean": isinstance(hint, bool),
            "integer": isinstance(hint, int) and not isinstance(hint, bool),
            "number": isinstance(hint, int | float) and not isinstance(hint, bool),
        }.get(kind, False)

    def enum(self, options: list[Any], hint: Any) -> Any:
        if not options:
            return None
        if hint is not _MISSING:
            if hint in options:
                return hint
            text = _norm(str(hint)) if hint is not None else ""
            for option in options:
                if isinstance(option, str) and _norm(option) == text and text:
                    return option
            for fallback in ("unknown", "other", "none", "unclear", "fallback"):
                for option in options:
                    if isinstance(option, str) and _norm(option) == fallback:
                        return option
            if hint is None and None in options:
                return None
        return options[0]

    def union(self, schema: Mapping[str, Any], key: str, hint: Any, depth: int) -> Any:
        branches = [self.resolve(b) for b in schema[key]]
        nulls = [b for b in branches if isinstance(b, Mapping) and b.get("type") == "null"]
        others = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
        # Unknown nullable fields stay null: the minimal value, and what a model says
        # when it has nothing to put there.
        if nulls and (hint is None or hint is _MISSING or depth >= _MAX_DEPTH or not others):
            return None
        if hint is not _MISSING:
            for branch in others:
                if self.fits(hint, branch):
                    return self.value(branch, hint, depth)
        candidate = self.value(others[0], hint, depth)
        if self.fits(candidate, others[0]) or not nulls:
            return candidate
        return None

    def obj(self, schema: Mapping[str, Any], hint: Any, depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        out: dict[str, Any] = {}
        for name, sub in props.items():
            sub_hint = self.lookup(hint, name)
            if name in required or sub_hint is not _MISSING:
                if name not in required and depth >= _MAX_DEPTH:
                    continue
                out[name] = self.value(sub, sub_hint, depth + 1)
        extra = schema.get("additionalProperties", True)
        if not props and isinstance(hint, Mapping) and extra is not False:
            for k, v in hint.items():
                out[str(k)] = self.value(extra, v, depth + 1) if isinstance(extra, Mapping) else v
        min_props = int(schema.get("minProperties") or 0)
        n = 0
        while len(out) < min_props and extra is not False:
            out[f"field_{n}"] = self.value(extra, _MISSING, depth + 1) if extra else None
            n += 1
        return out

    def array(self, schema: Mapping[str, Any], hint: Any, depth: int) -> list[Any]:
        items = schema.get("items", {})
        prefix = schema.get("prefixItems") or []
        seq: list[Any]
        if isinstance(hint, list | tuple):
            seq = list(hint)
        elif isinstance(hint, Mapping):
            # A slots dict asked for as a list of {name, value} objects.
            seq = [{"name": k, "slot": k, "key": k, "value": v} for k, v in hint.items()]
        else:
            seq = []
        out = [
            self.value(prefix[i] if i < len(prefix) else items, h, depth + 1)
            for i, h in enumerate(seq)
        ]
        if depth < _MAX_DEPTH or schema.get("minItems"):
            while len(out) < max(int(schema.get("minItems") or 0), len(prefix)):
                sub = prefix[len(out)] if len(out) < len(prefix) else items
                out.append(self.value(sub, _MISSING, depth + 1))
        if "maxItems" in schema:
            out = out[: int(schema["maxItems"])]
        return out

    def string(self, schema: Mapping[str, Any], hint: Any) -> str:
        if hint is _MISSING or hint is None:
            fmt = schema.get("format")
            text = {
                "date": self.now.date().isoformat(),
                "date-time": self.now.isoformat().replace("+00:00", "Z"),
                "time": self.now.time().replace(microsecond=0).isoformat(),
                "email": "customer@example.com",
                "uuid": "00000000-0000-4000-8000-000000000000",
                "uri": "https://example.com/",
                "hostname": "example.com",
                "ipv4": "127.0.0.1",
            }.get(str(fmt), "")
        elif isinstance(hint, str):
            text = hint
        elif isinstance(hint, bool):
            text = "true" if hint else "false"
        elif isinstance(hint, int | float):
            text = str(hint)
        else:
            text = json.dumps(hint, sort_keys=True)
        min_len = int(schema.get("minLength") or 0)
        if len(text) < min_len:
            text = text + "x" * (min_len - len(text))
        if "maxLength" in schema:
            text = text[: int(schema["maxLength"])]
        return text

    @staticmethod
    def number(schema: Mapping[str, Any], hint: Any, *, integer: bool) -> int | float:
        value: float
        if isinstance(hint, int | float) and not isinstance(hint, bool):
            value = float(hint)
        elif isinstance(hint, str) and re.fullmatch(r"-?\d+(\.\d+)?", hint.strip()):
            value = float(hint)
        else:
            value = 0.0
        step = 1.0 if integer else 1e-6
        lo = schema.get("minimum")
        if schema.get("exclusiveMinimum") is not None:
            emin = float(schema["exclusiveMinimum"]) + step
            lo = emin if lo is None else max(float(lo), emin)
        hi = schema.get("maximum")
        if schema.get("exclusiveMaximum") is not None:
            emax = float(schema["exclusiveMaximum"]) - step
            hi = emax if hi is None else min(float(hi), emax)
        if lo is not None and value < float(lo):
            value = float(lo)
        if hi is not None and value > float(hi):
            value = float(hi)
        if integer:
            result = round(value)
            if lo is not None and result < float(lo):
                result += 1
            if hi is not None and result > float(hi):
                result -= 1
            return int(result)
        return value

    @staticmethod
    def boolean(hint: Any) -> bool:
        if isinstance(hint, bool):
            return hint
        if isinstance(hint, str):
            return hint.strip().lower() in ("true", "yes", "1")
        return False


def instance_for(
    schema: Mapping[str, Any], known: Mapping[str, Any], *, now: datetime | None = None
) -> Any:
    """A value for ``schema`` with the recognised fields taken from ``known``.

    ``known`` maps analysis fields (``intent``, ``confidence``, ``slots``, …) and,
    for flat schemas, slot names to values. The schema must be valid (see
    :func:`schema_error`); the result validates unless the schema uses a keyword
    this cannot satisfy, such as a ``pattern`` the filled value does not match.
    """
    filler = _Filler(schema, now or datetime.now(UTC).replace(microsecond=0))
    return filler.value(schema, known, 0)


def mismatching_instance(valid: Any, schema: Mapping[str, Any]) -> Any:
    """A JSON value like ``valid`` that fails ``schema`` (if any value can)."""
    candidates: list[Any] = []
    if isinstance(valid, dict):
        required = [r for r in schema.get("required") or () if r in valid]
        if required:
            candidates.append({k: v for k, v in valid.items() if k != required[0]})
        candidates.append({**valid, "standin_unexpected_field": True})
        candidates.append([valid])
    candidates += [{"standin_fault": "schema_mismatch"}, "schema_mismatch", None]
    for candidate in candidates:
        if not Draft202012Validator(schema).is_valid(candidate):
            return candidate
    return candidates[-1]
