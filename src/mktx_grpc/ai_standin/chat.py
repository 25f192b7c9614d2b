"""Chat completions: checking a request as OpenAI does, and building the answer.

Unscripted answers come from the request itself (see :mod:`.intents` for the
convention): a tool call when a tool is demanded or fits, else JSON for a
``json_schema``/``json_object`` response format, else text (the intent reply, or
the hand-off summary when the system prompt carries ``<summarize/>``).

Under ``tool_choice: "auto"`` (the default when tools are given) a tool is called
when its name equals the routed intent's name, or when its name and description
score at least the confidence floor against the last user message; never right
after a ``tool`` message, which gets a text answer quoting the tool's result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .config import ModelSpec, StandinConfig
from .errors import OpenAIError, invalid_request, invalid_type, missing_param, model_not_found
from .intents import (
    Analysis,
    SlotSpec,
    analyse,
    cached_context,
    extract_slots,
    message_text,
    similarity,
)
from .schema import (
    analysis_field,
    instance_for,
    mismatching_instance,
    schema_error,
    strict_schema_problem,
)
from .state import Script
from .tokens import count_message_tokens, count_tokens, tokenize

__all__ = ["ChatAnswer", "ChatRequest", "answer_chat", "completion_body", "parse_chat_request"]

# Every top-level parameter the openai package can send to /v1/chat/completions.
KNOWN_PARAMS = frozenset(
    """audio frequency_penalty function_call functions logit_bias logprobs
    max_completion_tokens max_tokens messages metadata modalities model moderation n
    parallel_tool_calls prediction presence_penalty prompt_cache_key prompt_cache_options
    prompt_cache_retention reasoning_effort response_format safety_identifier seed
    service_tier stop store stream stream_options temperature tool_choice tools
    top_logprobs top_p user verbosity web_search_options""".split()
)
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(slots=True)
class ChatRequest:
    """A checked chat completion request."""

    model: ModelSpec
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    user: str | None = None

    @property
    def schema(self) -> dict[str, Any] | None:
        rf = self.response_format or {}
        if rf.get("type") != "json_schema":
            return None
        schema = rf["json_schema"].get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return message_text(m.get("content"))
        return ""

    @property
    def system_text(self) -> str:
        return "\n".join(
            message_text(m.get("content"))
            for m in self.messages
            if m.get("role") in ("system", "developer")
        )


@dataclass(slots=True)
class ChatAnswer:
    """What the assistant says: content or tool calls, finish reason and usage."""

    content: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    refusal: str | None = None
    analysis: Analysis | None = None
    problems: list[str] = field(default_factory=list)  # malformed convention blocks

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def message(self) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "role": "assistant",
            "content": self.content,
            "refusal": self.refusal,
            "annotations": [],
        }
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        return msg


# -- checking the request --------------------------------------------------------------


def _number(body: Mapping[str, Any], key: str, lo: float, hi: float) -> None:
    if key not in body or body[key] is None:
        return
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(key, "a decimal", value)
    if value < lo:
        raise invalid_request(
            f"Invalid '{key}': decimal below minimum value. Expected a value >= {lo:g}, "
            f"but got {value:g} instead.",
            key,
            "decimal_below_min_value",
        )
    if value > hi:
        raise invalid_request(
            f"Invalid '{key}': decimal above maximum value. Expected a value <= {hi:g}, "
            f"but got {value:g} instead.",
            key,
            "decimal_above_max_value",
        )


def _positive_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(key, "an integer", value)
    if value < 1:
        raise invalid_request(
            f"Invalid '{key}': integer below minimum value. Expected a value >= 1, "
            f"but got {value} instead.",
            key,
            "integer_below_min_value",
        )
    return value


def _check_content(content: Any, where: str, role: str) -> None:
    if isinstance(content, str):
        return
    if content is None:
        raise missing_param(f"{where}.content")
    if not isinstance(content, list):
        raise invalid_type(f"{where}.content", "one of a string or array of objects", content)
    if not content:
        raise invalid_request(f"Invalid '{where}.content': empty array.", f"{where}.content")
    for j, part in enumerate(content):
        pwhere = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(pwhere, "an object", part)
        kind = part.get("type")
        if kind not in PART_TYPES or (role != "user" and kind not in ("text", "refusal")):
            allowed = PART_TYPES if role == "user" else ("text", "refusal")
            raise invalid_request(
                f"Invalid value: '{kind}'. Supported values are: "
                + ", ".join(f"'{t}'" for t in allowed)
                + ".",
                f"{pwhere}.type",
                "invalid_value",
            )
        if kind == "text" and not isinstance(part.get("text"), str):
            raise missing_param(f"{pwhere}.text")
        if kind == "image_url" and not isinstance((part.get("image_url") or {}).get("url"), str):
            raise missing_param(f"{pwhere}.image_url.url")


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise missing_param("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise invalid_request("[] is too short - 'messages'", "messages", "empty_array")
    pending: dict[str, int] = {}  # tool_call_id -> index of the assistant message
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise invalid_type(where, "an object", msg)
        role = msg.get("role")
        if role is None:
            raise missing_param(f"{where}.role")
        if role not in ROLES:
            raise invalid_request(
                f"Invalid value: '{role}'. Supported values are: "
                "'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
                f"{where}.role",
                "invalid_value",
            )
        if role != "tool" and pending:
            first = min(pending.values())
            raise invalid_request(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                "response messages: " + ", ".join(sorted(pending)),
                f"messages[{first}].role",
            )
        if role == "assistant":
            calls = msg.get("tool_calls")
            if calls is not None:
                if not isinstance(calls, list):
                    raise invalid_type(f"{where}.tool_calls", "an array", calls)
                for j, call in enumerate(calls):
                    if not isinstance(call, dict) or not isinstance(call.get("id"), str):
                        raise missing_param(f"{where}.tool_calls[{j}].id")
                    pending[call["id"]] = i
            if msg.get("content") is not None or not calls:
                if msg.get("content") is None and msg.get("function_call") is None:
                    raise missing_param(f"{where}.content")
                if msg.get("content") is not None:
                    _check_content(msg["content"], where, role)
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str):
                raise missing_param(f"{where}.tool_call_id")
            if call_id not in pending:
                raise invalid_request(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"{where}.role",
                )
            del pending[call_id]
            _check_content(msg.get("content"), where, role)
        elif role == "function":
            if not isinstance(msg.get("name"), str):
                raise missing_param(f"{where}.name")
        else:
            _check_content(msg.get("content"), where, role)
    if pending:
        first = min(pending.values())
        raise invalid_request(
            "An assistant message with 'tool_calls' must be followed by tool messages "
            "responding to each 'tool_call_id'. The following tool_call_ids did not have "
            "response messages: " + ", ".join(sorted(pending)),
            f"messages[{first}].role",
        )
    return messages


#: What :func:`_schema_complaint` found, keyed by the schema's content (its JSON, key
#: order kept: the strict check names the first offending key) and strictness.
#: Checking a schema against the 2020-12 metaschema costs ~10 ms; a client sends the
#: same few schemas on every request, so each is checked once. Bounded, oldest out.
_SCHEMA_CHECKS: dict[tuple[str, bool], str | None] = {}
_SCHEMA_CHECKS_MAX = 256


def _schema_key(schema: Any) -> str | None:
    """A key naming ``schema``'s JSON content, for the caches here; None when it is
    not JSON (never from a request body): no caching.

    Written by orjson (a fraction of json.dumps's CPU), except where orjson could
    make two contents one key: it writes NaN and infinities as null, so a key with
    a null value in it is json.dumps's (which keeps NaN apart from null)."""
    try:
        key = orjson.dumps(schema)
    except TypeError:  # a non-string key, an integer past 64 bits: json.dumps decides
        key = b":null"
    if b":null" in key or b"[null" in key or b",null" in key or key == b"null":
        try:
            return json.dumps(schema, separators=(",", ":"), allow_nan=True)
        except (TypeError, ValueError):
            return None
    return key.decode()


#: The prompt tokens a response format costs (its JSON with sorted keys, counted),
#: by :func:`_schema_key`: the same format comes on every request. Bounded.
_FORMAT_TOKENS: dict[str, int] = {}


def _format_tokens(rf: dict[str, Any]) -> int:
    key = _schema_key(rf)
    if key is not None and key in _FORMAT_TOKENS:
        return _FORMAT_TOKENS[key]
    n = count_tokens(json.dumps(rf, sort_keys=True))
    if key is not None:
        if len(_FORMAT_TOKENS) >= _SCHEMA_CHECKS_MAX:
            _FORMAT_TOKENS.pop(next(iter(_FORMAT_TOKENS)), None)
        _FORMAT_TOKENS[key] = n
    return n


def _schema_complaint(schema: Any, strict: bool) -> str | None:
    """Why ``schema`` is refused (invalid, or not strict when ``strict``), or None."""
    problem = schema_error(schema)
    if problem is None and strict and isinstance(schema, Mapping):
        problem = strict_schema_problem(schema)
    return problem


def _check_schema(schema: Any, strict: bool, what: str, param: str) -> None:
    key = _schema_key(schema)
    if key is None:
        problem = _schema_complaint(schema, strict)
    elif (key, strict) in _SCHEMA_CHECKS:
        problem = _SCHEMA_CHECKS[key, strict]
    else:
        problem = _schema_complaint(schema, strict)
        if len(_SCHEMA_CHECKS) >= _SCHEMA_CHECKS_MAX:
            _SCHEMA_CHECKS.pop(next(iter(_SCHEMA_CHECKS)), None)
        _SCHEMA_CHECKS[key, strict] = problem
    if problem is not None:
        raise invalid_request(f"Invalid schema for {what}: {problem}", param, "invalid_json_schema")


def _check_response_format(rf: Any, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    if rf is None:
        return None
    if not isinstance(rf, dict):
        raise invalid_type("response_format", "an object", rf)
    kind = rf.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise invalid_request(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', "
            "and 'json_schema'.",
            "response_format.type",
            "invalid_value",
        )
    if kind == "json_object":
        text = " ".join(message_text(m.get("content")) for m in messages)
        if "json" not in text.lower():
            raise invalid_request(
                "'messages' must contain the word 'json' in some form, to use "
                "'response_format' of type 'json_object'.",
                "messages",
            )
    if kind == "json_schema":
        js = rf.get("json_schema")
        if not isinstance(js, dict):
            raise missing_param("response_format.json_schema")
        name = js.get("name")
        if name is None:
            raise missing_param("response_format.json_schema.name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise invalid_request(
                "Invalid 'response_format.json_schema.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                "response_format.json_schema.name",
                "invalid_value",
            )
        if "schema" in js:
            _check_schema(
                js["schema"],
                js.get("strict") is True,
                f"response_format '{name}'",
                "response_format",
            )
    return rf


def _check_tools(tools: Any, tool_choice: Any) -> list[dict[str, Any]]:
    if tools is None:
        if tool_choice is not None:
            raise invalid_request(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                "are specified.",
                "tool_choice",
            )
        return []
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    if not tools:
        raise invalid_request("[] is too short - 'tools'", "tools", "empty_array")
    names: list[str] = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid_type(where, "an object", tool)
        if tool.get("type") != "function":
            raise invalid_request(
                f"Invalid value: '{tool.get('type')}'. Supported values are: 'function'.",
                f"{where}.type",
                "invalid_value",
            )
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise missing_param(f"{where}.function")
        name = fn.get("name")
        if name is None:
            raise missing_param(f"{where}.function.name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise invalid_request(
                f"Invalid '{where}.function.name': string does not match pattern. Expected a "
                "string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"{where}.function.name",
                "invalid_value",
            )
        if "parameters" in fn:
            _check_schema(
                fn["parameters"],
                fn.get("strict") is True,
                f"function '{name}'",
                f"{where}.function.parameters",
            )
        names.append(name)
    if isinstance(tool_choice, str):
        if tool_choice not in ("none", "auto", "required"):
            raise invalid_request(
                f"Invalid value: '{tool_choice}'. Supported values are: 'none', 'auto', "
                "and 'required'.",
                "tool_choice",
                "invalid_value",
            )
    elif isinstance(tool_choice, dict):
        chosen = (tool_choice.get("function") or {}).get("name")
        if tool_choice.get("type") != "function" or not isinstance(chosen, str):
            raise missing_param("tool_choice.function.name")
        if chosen not in names:
            raise invalid_request(
                f"Invalid value for 'tool_choice': tool '{chosen}' is not in 'tools'.",
                "tool_choice",
            )
    elif tool_choice is not None:
        raise invalid_type("tool_choice", "one of a string or object", tool_choice)
    return tools


def parse_chat_request(body: Mapping[str, Any], config: StandinConfig) -> ChatRequest:
    """Check ``body`` as OpenAI would and return it typed.

    Raises :class:`OpenAIError`: 400 ``invalid_request_error`` naming the parameter
    (unknown parameter, missing or mistyped field, out-of-range value, ``n`` other
    than 1, bad schema), or 404 ``model_not_found``.
    """
    for key in body:
        if key not in KNOWN_PARAMS:
            raise invalid_request(f"Unrecognized request argument supplied: {key}", key)
    model_id = body.get("model")
    if model_id is None:
        raise missing_param("model")
    if not isinstance(model_id, str):
        raise invalid_type("model", "a string", model_id)
    messages = _check_messages(body.get("messages"))
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    n = body.get("n")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise invalid_type("n", "an integer", n)
        if n != 1:
            raise invalid_request(
                f"Unsupported value: 'n' does not support {n} with this model. Only the "
                "default (1) value is supported.",
                "n",
                "unsupported_value",
            )
    limits = [v for v in (_positive_int(body, "max_tokens"),) if v is not None]
    limits += [v for v in (_positive_int(body, "max_completion_tokens"),) if v is not None]
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise invalid_request(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
            )
        if not isinstance(options, dict):
            raise invalid_type("stream_options", "an object", options)
    stop = body.get("stop")
    stops: list[str]
    if stop is None:
        stops = []
    elif isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        stops = list(stop)
    else:
        raise invalid_type("stop", "one of a string or array of up to 4 strings", stop)
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise invalid_type("user", "a string", user)
    rf = _check_response_format(body.get("response_format"), messages)
    tools = _check_tools(body.get("tools"), body.get("tool_choice"))
    model = config.model(model_id)
    if model is None:
        raise model_not_found(model_id)
    if model.kind != "chat":
        raise OpenAIError(
            404,
            "This is not a chat model and thus not supported in the v1/chat/completions endpoint.",
            param="model",
        )
    return ChatRequest(
        model=model,
        messages=messages,
        stream=bool(stream),
        include_usage=bool((options or {}).get("include_usage")),
        max_tokens=min(limits) if limits else None,
        stop=stops,
        response_format=rf,
        tools=tools,
        tool_choice=body.get("tool_choice"),
        user=user,
    )


# -- answering -------------------------------------------------------------------------


def _slot_type(name: str, schema: Mapping[str, Any]) -> str | None:
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or ())
    fmt, n = schema.get("format"), name.lower()
    words = set(re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()))
    if "email" in n or fmt == "email":
        return "email"
    if "phone" in n or "mobile" in n:
        return "phone"
    if n in ("order", "orderid") or ("order" in words and words & {"id", "number", "ref", "no"}):
        return "order_id"
    if "date" in n or fmt == "date" or n == "day":
        return "date"
    if "integer" in types or "number" in types:
        return "number"
    if "enum" in schema:
        return "choice"
    if "string" in types:
        return "text"
    return None


def schema_slots(schema: Any) -> list[SlotSpec]:
    """Slots guessed from a schema's top-level properties (name, type, format, enum),
    so a tool's arguments or a flat answer get values from the conversation even
    without an ``<intents>`` block. Properties that mean analysis fields are skipped."""
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        return []
    slots = []
    for name, sub in schema["properties"].items():
        if analysis_field(name) is not None or not isinstance(sub, Mapping):
            continue
        kind = _slot_type(name, sub)
        if kind is not None:
            values = tuple(str(v) for v in sub.get("enum") or ())
            slots.append(SlotSpec(name=name, type=kind, values=values))
    return slots


def _known(req: ChatRequest, analysis: Analysis, schema: Any) -> dict[str, Any]:
    guessed: dict[str, Any] = {}
    slots = schema_slots(schema)
    if slots:
        today = cached_context(req.system_text).today
        for m in req.messages:
            if m.get("role") == "user":
                text = message_text(m.get("content"))
                guessed.update(extract_slots(text, slots, today=today))
    return {**guessed, **analysis.slots, **analysis.as_dict()}


def _pick_tool(req: ChatRequest, analysis: Analysis, floor: float) -> dict[str, Any] | None:
    choice = req.tool_choice
    if not req.tools or choice == "none":
        return None
    if req.messages[-1].get("role") == "tool" and not isinstance(choice, dict):
        return None
    fns: list[dict[str, Any]] = [t["function"] for t in req.tools]
    if isinstance(choice, dict):
        return next(f for f in fns if f["name"] == choice["function"]["name"])
    if analysis.intent is not None:
        for fn in fns:
            if fn["name"].lower() == analysis.intent.lower():
                return fn
    text = req.last_user_text
    scored = [
        (similarity(text, f"{fn['name'].replace('_', ' ')} {fn.get('description', '')}"), i)
        for i, fn in enumerate(fns)
    ]
    best_score, best_i = max(scored)
    if choice == "required" or best_score >= floor:
        return fns[best_i]
    return None


def _tool_reply(req: ChatRequest) -> str:
    last = req.messages[-1]
    call_id = last.get("tool_call_id")
    name = "the tool"
    for m in req.messages:
        for call in m.get("tool_calls") or ():
            if call.get("id") == call_id:
                name = str((call.get("function") or {}).get("name") or name)
    result = " ".join(message_text(last.get("content")).split())
    return f"{name} returned: {result[:300]}"


def _truncate(text: str, limit: int | None, stops: Sequence[str]) -> tuple[str, bool]:
    for stop in stops:
        at = text.find(stop)
        if stop and at >= 0:
            text = text[:at]
    if limit is not None:
        pieces = tokenize(text)
        if len(pieces) > limit:
            return "".join(pieces[:limit]), True
    return text, False


def _tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def answer_chat(
    req: ChatRequest,
    *,
    script: Script | None,
    new_id: Any,
    schema_mismatch: bool = False,
) -> ChatAnswer:
    """The assistant's answer to ``req``: from ``script`` when one matched, else
    worked out from the request. ``new_id(prefix)`` names tool calls.
    ``schema_mismatch`` makes structured content and tool arguments fail their schema.
    """
    ctx = cached_context(req.system_text)
    analysis = analyse(req.messages, ctx)
    prompt_tokens = count_message_tokens(req.messages, req.tools)
    if req.response_format is not None:
        prompt_tokens += _format_tokens(req.response_format)
    content: str | None = None
    refusal: str | None = None
    calls: list[dict[str, Any]] = []
    finish = "stop"
    usage_override: Mapping[str, Any] = {}
    schema = req.schema

    if script is not None:
        reply = script.reply
        if "tool_calls" in reply:
            for call in reply["tool_calls"]:
                calls.append(
                    _tool_call(
                        str(call.get("id") or new_id("call")),
                        str(call["name"]),
                        call.get("arguments", {}),
                    )
                )
            finish = "tool_calls"
        if "json" in reply:
            value = reply["json"]
            if schema_mismatch and schema is not None:
                value = mismatching_instance(value, schema)
            content = json.dumps(value)
        elif "content" in reply:
            content = reply["content"]
        if "refusal" in reply:
            refusal = str(reply["refusal"])
            content = None
        finish = str(reply.get("finish_reason") or finish)
        usage_override = reply.get("usage") or {}
    else:
        tool = _pick_tool(req, analysis, ctx.floor)
        if tool is not None:
            params = tool.get("parameters") or {"type": "object", "properties": {}}
            args = instance_for(params, _known(req, analysis, params))
            if schema_mismatch:
                args = mismatching_instance(args, params)
            calls.append(_tool_call(new_id("call"), tool["name"], args))
            finish = "tool_calls"
        else:
            known = _known(req, analysis, schema)
            text = _tool_reply(req) if req.messages[-1].get("role") == "tool" else None
            if text is not None:
                known["reply"] = text
            elif ctx.summarize:
                text = analysis.summary
                known["reply"] = text
            else:
                text = analysis.reply
            if schema is not None:
                value = instance_for(schema, known)
                if schema_mismatch:
                    value = mismatching_instance(value, schema)
                content = json.dumps(value)
            elif (req.response_format or {}).get("type") == "json_object":
                value = analysis.as_dict() | {"reply": text}
                content = json.dumps("schema_mismatch" if schema_mismatch else value)
            else:
                content = text

    truncated = False
    if content is not None:
        content, truncated = _truncate(content, req.max_tokens, req.stop)
    completion = count_tokens(content or refusal or "")
    for call in calls:
        fn = call["function"]
        if req.max_tokens is not None:
            fn["arguments"], cut = _truncate(fn["arguments"], req.max_tokens, ())
            truncated = truncated or cut
        completion += count_tokens(fn["name"]) + count_tokens(fn["arguments"])
    if truncated:
        finish = "length"
    return ChatAnswer(
        content=content if (content is not None or not calls) else None,
        tool_calls=calls,
        finish_reason=finish,
        prompt_tokens=int(usage_override.get("prompt_tokens", prompt_tokens)),
        completion_tokens=int(usage_override.get("completion_tokens", completion)),
        refusal=refusal,
        analysis=analysis,
        problems=list(ctx.problems),
    )


def completion_body(
    answer: ChatAnswer, req: ChatRequest, completion_id: str, created: int
) -> dict[str, Any]:
    """The ``chat.completion`` object for ``answer``."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": req.model.id,
        "choices": [
            {
                "index": 0,
                "message": answer.message(),
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": answer.usage(),
        "service_tier": "default",
        "system_fingerprint": "fp_standin",
    }


def stream_chunks(
    answer: ChatAnswer, req: ChatRequest, completion_id: str, created: int, chunk_tokens: int
) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects that stream ``answer``: a role chunk,
    content (or each tool call's header then argument pieces) ``chunk_tokens``
    tokens at a time, the finish chunk, and with ``include_usage`` a last chunk with
    no choices and the usage (every earlier chunk then carries ``usage: null``)."""
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": req.model.id,
        "service_tier": "default",
        "system_fingerprint": "fp_standin",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if req.include_usage:
            out["usage"] = None
        return out

    def pieces(text: str) -> list[str]:
        toks = tokenize(text)
        step = max(1, chunk_tokens)
        return ["".join(toks[i : i + step]) for i in range(0, len(toks), step)]

    chunks: list[dict[str, Any]] = []
    if answer.tool_calls:
        chunks.append(chunk({"role": "assistant", "content": None, "refusal": None}))
        for index, call in enumerate(answer.tool_calls):
            fn = call["function"]
            header = {"index": index, "id": call["id"], "type": "function"}
            header["function"] = {"name": fn["name"], "arguments": ""}
            chunks.append(chunk({"tool_calls": [header]}))
            for piece in pieces(fn["arguments"]):
                chunks.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
    elif answer.refusal is not None:
        chunks.append(chunk({"role": "assistant", "content": None, "refusal": ""}))
        chunks.extend(chunk({"refusal": p}) for p in pieces(answer.refusal))
    else:
        chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        chunks.extend(chunk({"content": p}) for p in pieces(answer.content or ""))
    chunks.append(chunk({}, answer.finish_reason))
    if req.include_usage:
        chunks.append({**base, "choices": [], "usage": answer.usage()})
    return chunks
