"""The AI assistant's rules, without I/O: settings and their defaults, the
structured-output schema and its validation, the prompt, escalation, sessions with
expiry, slot filling, the agent's summary and the daily token budget.

The model client is ``ai/client.py``; the workflows that read and write the
session around a model call are ``operations/ai.py`` (RPCs) and
``worker/auto_reply.py`` (the auto-reply loop).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema

#: The seed's MaxContextItems: the model sees at most this many items of a session.
MAX_CONTEXT_ITEMS = 10
MAX_TEXT = 10_000
MAX_DETAIL = 500
#: The outbox type of the AIEscalationRequested event (WatchConversations: ESCALATED).
AI_ESCALATION_REQUESTED = "conversation.escalated"

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_HANDOFF = "Thanks! A member of our team will get back to you shortly."
DEFAULT_AWAY = (
    "Thanks for your message! We are away right now and will reply as soon as we are back."
)
DEFAULT_SESSION_TIMEOUT = 1800

SLOT_TYPES = ("text", "number", "email", "phone", "date", "order_id")
NAME_RE = re.compile(r"^[a-z0-9_]{1,64}$")

# Escalation reasons (the proto's EscalationReason names without the prefix).
LOW_CONFIDENCE = "LOW_CONFIDENCE"
HUMAN_REQUESTED = "HUMAN_REQUESTED"
SENSITIVE_TOPIC = "SENSITIVE_TOPIC"
CANNOT_ANSWER = "CANNOT_ANSWER"
KEYWORD = "KEYWORD"
MODERATION_FLAGGED = "MODERATION_FLAGGED"
MALFORMED_OUTPUT = "MALFORMED_OUTPUT"
MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
MANUAL = "MANUAL"


@dataclass(frozen=True)
class SlotDef:
    name: str
    type: str = "text"
    required: bool = True
    prompt: str = ""


@dataclass(frozen=True)
class IntentDef:
    name: str
    description: str = ""
    examples: tuple[str, ...] = ()
    slots: tuple[SlotDef, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "examples": list(self.examples),
            "slots": [
                {"name": s.name, "type": s.type, "required": s.required, "prompt": s.prompt}
                for s in self.slots
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IntentDef:
        return cls(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            examples=tuple(str(e) for e in data.get("examples", ())),
            slots=tuple(
                SlotDef(
                    name=str(s["name"]),
                    type=str(s.get("type") or "text"),
                    required=bool(s.get("required", True)),
                    prompt=str(s.get("prompt", "")),
                )
                for s in data.get("slots", ())
            ),
        )


#: Used while the merchant has defined no intents of their own.
BUILTIN_INTENTS: tuple[IntentDef, ...] = (
    IntentDef("greeting", "The contact says hello", ("hi", "hello there", "good morning")),
    IntentDef(
        "question",
        "A general question about the business",
        ("do you ship abroad", "what are your opening hours", "do you have this in stock"),
    ),
    IntentDef(
        "order_status",
        "The contact asks where their order is",
        ("where is my order", "has my parcel shipped yet", "order status"),
        (SlotDef("order_id", "order_id", True, "Could you tell me your order number?"),),
    ),
    IntentDef("pricing", "The contact asks about prices", ("how much is it", "what does it cost")),
    IntentDef(
        "complaint",
        "The contact is unhappy about something",
        ("this is terrible", "I am not happy with my purchase", "it arrived broken"),
    ),
    IntentDef(
        "human_request",
        "The contact wants to talk to a person",
        ("can I talk to a person", "I want a human", "let me speak to an agent"),
    ),
)


#: The system prompt's opening when the merchant set none.
DEFAULT_SYSTEM_PROMPT = "You are a helpful customer-service assistant for a business on X."
#: Longest extra instructions (an automation ai_reply step's) added to the prompt.
MAX_INSTRUCTIONS = 2000


def with_instructions(settings: Settings, instructions: str) -> Settings:
    """``settings`` whose system prompt ends with ``instructions`` (an automation
    ai_reply step's extra prompt); unchanged when there are none."""
    extra = instructions.strip()[:MAX_INSTRUCTIONS]
    if not extra:
        return settings
    return replace(
        settings, system_prompt=f"{settings.system_prompt or DEFAULT_SYSTEM_PROMPT}\n{extra}"
    )


@dataclass(frozen=True)
class Settings:
    """A merchant's AI settings (``ai_settings``); :data:`DEFAULT_SETTINGS` when none."""

    enabled: bool = False
    model: str = DEFAULT_MODEL
    temperature: float = 0.3
    max_tokens: int = 512
    escalation_threshold: float = 0.6
    system_prompt: str = ""
    business_hours_aware: bool = True
    escalation_keywords: tuple[str, ...] = ()
    handoff_message: str = DEFAULT_HANDOFF
    after_hours_message: str = DEFAULT_AWAY
    intents: tuple[IntentDef, ...] = ()
    handoff_intents: tuple[str, ...] = ()
    daily_token_budget: int = 0
    session_timeout_seconds: int = DEFAULT_SESSION_TIMEOUT
    moderation_enabled: bool = True
    #: None while never stored (all defaults).
    updated_at: datetime | None = None
    version: int = 0

    @property
    def effective_intents(self) -> tuple[IntentDef, ...]:
        return self.intents or BUILTIN_INTENTS

    @property
    def effective_handoff_intents(self) -> tuple[str, ...]:
        if self.handoff_intents:
            return self.handoff_intents
        return () if self.intents else ("human_request",)

    def intent(self, name: str | None) -> IntentDef | None:
        return next((i for i in self.effective_intents if i.name == name), None)


DEFAULT_SETTINGS = Settings()


def settings_from_row(row: Mapping[str, Any] | None) -> Settings:
    if row is None:
        return DEFAULT_SETTINGS
    return Settings(
        enabled=row["enabled"],
        model=row["model"],
        temperature=round(float(row["temperature"]), 4),
        max_tokens=row["max_tokens"],
        escalation_threshold=round(float(row["escalation_threshold"]), 4),
        system_prompt=row["system_prompt"],
        business_hours_aware=row["respect_business_hours"],
        escalation_keywords=tuple(row["escalation_keywords"]),
        handoff_message=row["handoff_message"],
        after_hours_message=row["after_hours_message"],
        intents=tuple(IntentDef.from_json(i) for i in row["intents"]),
        handoff_intents=tuple(row["handoff_intents"]),
        daily_token_budget=row["daily_token_budget"],
        session_timeout_seconds=row["session_timeout_seconds"],
        moderation_enabled=row["moderation_enabled"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def settings_columns(s: Settings) -> dict[str, Any]:
    """The ``ai_settings`` columns of ``s`` (for the upsert)."""
    return {
        "enabled": s.enabled,
        "model": s.model,
        "temperature": s.temperature,
        "max_tokens": s.max_tokens,
        "escalation_threshold": s.escalation_threshold,
        "system_prompt": s.system_prompt,
        "respect_business_hours": s.business_hours_aware,
        "escalation_keywords": list(s.escalation_keywords),
        "handoff_message": s.handoff_message,
        "after_hours_message": s.after_hours_message,
        "intents": [i.to_json() for i in s.intents],
        "handoff_intents": list(s.handoff_intents),
        "daily_token_budget": s.daily_token_budget,
        "session_timeout_seconds": s.session_timeout_seconds,
        "moderation_enabled": s.moderation_enabled,
    }


def with_changes(s: Settings, changes: Mapping[str, Any]) -> Settings:
    return replace(s, **changes)


# ------------------------------------------------------------------ sessions


@dataclass(frozen=True)
class ContextItem:
    role: str  # "user" | "assistant"
    text: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "text": self.text, "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContextItem:
        return cls(str(data["role"]), str(data["text"]), datetime.fromisoformat(data["at"]))


@dataclass(frozen=True)
class Session:
    """The assistant's memory of one conversation (``ai_sessions``)."""

    context: tuple[ContextItem, ...] = ()
    current_intent: str = ""
    missing_slots: tuple[str, ...] = ()
    slots: Mapping[str, str] = field(default_factory=dict)
    intents: tuple[dict[str, Any], ...] = ()
    summary: str = ""
    started_at: datetime | None = None
    last_activity_at: datetime | None = None
    expires_at: datetime | None = None
    escalated: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    away_sent_for: str = ""

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def session_from_row(row: Mapping[str, Any] | None) -> Session:
    if row is None:
        return Session()
    return Session(
        context=tuple(ContextItem.from_json(c) for c in row["context"]),
        current_intent=row["current_intent"],
        missing_slots=tuple(row["missing_slots"]),
        slots={str(k): str(v) for k, v in row["slots"].items()},
        intents=tuple(row["intents"]),
        summary=row["summary"],
        started_at=row["session_started_at"],
        last_activity_at=row["last_activity_at"],
        expires_at=row["expires_at"],
        escalated=row["escalated"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        away_sent_for=row["away_sent_for"],
    )


def fresh_if_expired(session: Session, settings: Settings, now: datetime) -> Session:
    """The session a new message at ``now`` continues: ``session`` itself, or, once it
    expired, a fresh one (no context, no intent) that keeps the slots still valid
    (declared by one of the merchant's intents, with a value of the slot's type)."""
    if not session.expired(now) and session.started_at is not None:
        return session
    declared = {s.name: s for i in settings.effective_intents for s in i.slots}
    kept = {
        k: v
        for k, v in session.slots.items()
        if k in declared and normalise_slot(declared[k].type, v) is not None
    }
    return replace(
        session,
        context=(),
        current_intent="",
        missing_slots=(),
        slots=kept,
        started_at=now,
        expires_at=None,
    )


def trim_context(items: Sequence[ContextItem]) -> tuple[ContextItem, ...]:
    return tuple(items[-MAX_CONTEXT_ITEMS:])


# ------------------------------------------------------------------ slots

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]{6,20}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ORDER = re.compile(r"^#?[A-Za-z]{0,3}-?\d{3,12}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def normalise_slot(type_: str, value: Any) -> str | None:
    """``value`` as a slot of ``type_`` (stripped text), or None when it is not one."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or len(text) > 500 or "\x00" in text:
        return None
    checks = {
        "number": _NUMBER,
        "email": _EMAIL,
        "phone": _PHONE,
        "date": _DATE,
        "order_id": _ORDER,
    }
    pattern = checks.get(type_)
    if pattern is not None and not pattern.match(text):
        return None
    if type_ == "date":
        try:
            datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            return None
    return text


def merge_slots(
    settings: Settings, known: Mapping[str, str], found: Mapping[str, Any]
) -> dict[str, str]:
    """``known`` with the valid, declared slots of ``found`` on top."""
    declared = {s.name: s for i in settings.effective_intents for s in i.slots}
    out = dict(known)
    for name, value in found.items():
        slot = declared.get(name)
        if slot is None:
            continue
        norm = normalise_slot(slot.type, value)
        if norm is not None:
            out[name] = norm
    return out


def missing_slots(intent: IntentDef | None, slots: Mapping[str, str]) -> tuple[str, ...]:
    if intent is None:
        return ()
    return tuple(s.name for s in intent.slots if s.required and s.name not in slots)


def ask_for(intent: IntentDef, slot_name: str) -> str:
    slot = next(s for s in intent.slots if s.name == slot_name)
    return slot.prompt or f"Could you tell me the {slot_name.replace('_', ' ')}?"


# ------------------------------------------------------------------ structured output


def output_schema(settings: Settings) -> dict[str, Any]:
    """The JSON schema the model answers in (``response_format`` json_schema,
    strict): every object closed and every property required, as strict mode asks.
    One object per set of intents (do not modify it): its checks are compiled once
    (:func:`parse_answer`)."""
    names = tuple(i.name for i in settings.effective_intents)
    slot_names = tuple(sorted({s.name for i in settings.effective_intents for s in i.slots}))
    key = (names, slot_names)
    schema = _SCHEMAS.get(key)
    if schema is None:
        if len(_SCHEMAS) > 1024:
            _SCHEMAS.clear()
        schema = _SCHEMAS[key] = _output_schema(list(names), list(slot_names))
    return schema


_SCHEMAS: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[str, Any]] = {}


def _output_schema(names: list[str], slot_names: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["intent", "confidence", "slots", "missing_slots", "reply", "escalate"],
        "properties": {
            "intent": {"type": ["string", "null"], "enum": [*names, "other", None]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "slots": {
                "type": "object",
                "additionalProperties": False,
                "required": list(slot_names),
                "properties": {n: {"type": ["string", "null"]} for n in slot_names},
            },
            "missing_slots": {"type": "array", "items": {"type": "string"}},
            # No maxLength: OpenAI's strict mode refuses string length keywords; the
            # length is checked in parse_answer instead.
            "reply": {"type": "string"},
            "escalate": {"type": "boolean"},
        },
    }


_VALIDATORS: dict[str, Any] = {}
#: Per schema object: (the schema itself, its validator, its plain check or None).
#: Holding the schema keeps its id from being reused while the entry lives.
_BY_OBJECT: dict[int, tuple[Mapping[str, Any], Any, Any]] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    """A compiled validator per distinct schema (``jsonschema.validate`` re-checks the
    schema itself on every call, which cost milliseconds per message)."""
    key = json.dumps(schema, sort_keys=True)
    v = _VALIDATORS.get(key)
    if v is None:
        if len(_VALIDATORS) > 1024:
            _VALIDATORS.clear()
        cls = jsonschema.validators.validator_for(schema)
        v = _VALIDATORS[key] = cls(schema)
    return v


def _plain_check(schema: Mapping[str, Any]) -> Any:
    """For a schema of exactly :func:`output_schema`'s shape, a function that says
    True only for data the schema certainly accepts (plain type and membership
    checks, microseconds); None for any other schema. It never says True for data
    the schema refuses; a False only sends the data to the full validator, which
    gives the verdict and the problem's wording."""
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return None
    intent = props.get("intent")
    slots = props.get("slots")
    if not isinstance(intent, Mapping) or not isinstance(slots, Mapping):
        return None
    enum = intent.get("enum")
    slot_names = slots.get("required")
    if not isinstance(enum, list) or not isinstance(slot_names, list):
        return None
    names = [n for n in enum if isinstance(n, str) and n != "other"]
    if len(names) != len(enum) - 2 or not all(isinstance(n, str) for n in slot_names):
        return None
    if json.dumps(_output_schema(names, slot_names), sort_keys=True) != json.dumps(
        schema, sort_keys=True
    ):
        return None
    allowed = frozenset(enum) - {None}
    keys = frozenset(schema["required"])
    slot_keys = frozenset(slot_names)

    def check(data: Any) -> bool:
        if type(data) is not dict or data.keys() != keys:
            return False
        i = data["intent"]
        if i is not None and (type(i) is not str or i not in allowed):
            return False
        c = data["confidence"]
        if type(c) not in (int, float) or not 0 <= c <= 1:
            return False
        found = data["slots"]
        if type(found) is not dict or found.keys() != slot_keys:
            return False
        if not all(v is None or type(v) is str for v in found.values()):
            return False
        missing = data["missing_slots"]
        if type(missing) is not list or not all(type(m) is str for m in missing):
            return False
        return type(data["reply"]) is str and type(data["escalate"]) is bool

    return check


def _checks(schema: Mapping[str, Any]) -> tuple[Any, Any]:
    """The validator and the plain check of ``schema``, cached per schema object
    (:func:`output_schema` hands out one object per set of intents) and per content."""
    entry = _BY_OBJECT.get(id(schema))
    if entry is None or entry[0] is not schema:
        if len(_BY_OBJECT) > 1024:
            _BY_OBJECT.clear()
        entry = _BY_OBJECT[id(schema)] = (schema, _validator(schema), _plain_check(schema))
    return entry[1], entry[2]


@dataclass(frozen=True)
class Answer:
    """The model's validated answer to one message."""

    intent: str | None
    confidence: float
    slots: Mapping[str, Any]
    reply: str
    escalate: bool


class MalformedOutput(ValueError):
    """The model's output is not JSON, or fails the schema."""


def parse_answer(content: str | None, schema: Mapping[str, Any]) -> Answer:
    """Validate the model's ``content`` against ``schema``. Raises MalformedOutput
    with the first problem; a reply that fails here is never sent."""
    if not content:
        raise MalformedOutput("empty output")
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise MalformedOutput(f"not JSON: {exc}") from None
    validator, plain = _checks(schema)
    if plain is None or not plain(data):
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is not None:
            raise MalformedOutput(f"schema: {error.message}")
    reply = data["reply"]
    if "\x00" in reply:
        raise MalformedOutput("reply holds a NUL character")
    if len(reply) > MAX_TEXT:
        raise MalformedOutput(f"reply is longer than {MAX_TEXT} characters")
    return Answer(
        intent=data["intent"] if data["intent"] != "other" else None,
        confidence=float(data["confidence"]),
        slots={k: v for k, v in data["slots"].items() if v is not None},
        reply=reply.strip(),
        escalate=bool(data["escalate"]),
    )


# ------------------------------------------------------------------ prompt


def build_messages(
    settings: Settings,
    *,
    contact: Mapping[str, Any],
    context: Sequence[ContextItem],
    text: str,
    known_slots: Mapping[str, str],
    today: datetime,
) -> list[dict[str, str]]:
    """The chat messages for one inbound ``text``: the system prompt with the
    merchant's intents (the ``<intents>`` convention the stand-in reads too), the
    contact's profile, the known slots, then at most the last
    :data:`MAX_CONTEXT_ITEMS` context items and the new message."""
    intents = [i.to_json() for i in settings.effective_intents]
    system = "\n".join(
        [
            settings.system_prompt or DEFAULT_SYSTEM_PROMPT,
            "Classify the customer's last message into one of the intents, extract slot "
            "values, and write a short reply. Answer in JSON following the schema. Ask for "
            "a missing required slot. Set escalate when a human must take over.",
            f"<intents>{json.dumps(intents)}</intents>",
            f"<handoff_intents>{json.dumps(list(settings.effective_handoff_intents))}"
            "</handoff_intents>",
            f"<slots>{json.dumps(dict(known_slots))}</slots>",
            f"<today>{today.date().isoformat()}</today>",
            f"<contact>{json.dumps(dict(contact), default=str)}</contact>",
        ]
    )
    msgs = [{"role": "system", "content": system}]
    for item in trim_context(context)[-(MAX_CONTEXT_ITEMS - 1) :]:
        msgs.append({"role": item.role, "content": item.text})
    msgs.append({"role": "user", "content": text})
    return msgs


def summary_messages(
    settings: Settings, context: Sequence[ContextItem], text: str
) -> list[dict[str, str]]:
    """Messages asking the model for the agent's 2-3 line hand-off summary."""
    intents = [i.to_json() for i in settings.effective_intents]
    msgs = [
        {
            "role": "system",
            "content": "Summarise this conversation for the human agent who takes over, "
            f"in 2 to 3 short lines.\n<intents>{json.dumps(intents)}</intents>\n<summarize/>",
        }
    ]
    for item in trim_context(context):
        msgs.append({"role": item.role, "content": item.text})
    msgs.append({"role": "user", "content": text})
    return msgs


def clean_summary(text: str | None) -> str | None:
    """The model's summary cut to 3 non-empty lines, or None when unusable."""
    if not text or "\x00" in text:
        return None
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][:3]
    return "\n".join(lines)[:2000] if lines else None


def template_summary(
    *, intent: str | None, confidence: float, slots: Mapping[str, str], text: str, reason: str
) -> str:
    """The hand-off summary built without the model (it is down, or over budget)."""
    known = ", ".join(f"{k}={v}" for k, v in sorted(slots.items())) or "none"
    last = text if len(text) <= 200 else text[:197] + "..."
    return "\n".join(
        [
            f"Intent: {intent or 'unknown'} (confidence {confidence:.2f}).",
            f"Known details: {known}.",
            f'Last message: "{last}" - needs a human ({reason.lower().replace("_", " ")}).',
        ]
    )


# ------------------------------------------------------------------ escalation


@dataclass(frozen=True)
class Decision:
    escalate: bool
    reason: str = ""
    detail: str = ""


def keyword_in(settings: Settings, text: str) -> str | None:
    """The first escalation keyword in ``text`` (case-insensitive, on word
    boundaries), or None."""
    lowered = text.casefold()
    for kw in settings.escalation_keywords:
        k = kw.casefold().strip()
        if k and re.search(rf"(?<!\w){re.escape(k)}(?!\w)", lowered):
            return kw
    return None


def decide(settings: Settings, answer: Answer) -> Decision:
    """Whether a validated answer escalates, and why (first rule that applies)."""
    if answer.intent is not None and answer.intent in settings.effective_handoff_intents:
        return Decision(True, HUMAN_REQUESTED, f"intent {answer.intent} hands off to a human")
    if answer.confidence < settings.escalation_threshold:
        return Decision(
            True,
            LOW_CONFIDENCE,
            f"confidence {answer.confidence:.2f} is below the threshold "
            f"{settings.escalation_threshold:.2f}",
        )
    if answer.escalate:
        return Decision(True, CANNOT_ANSWER, "the model asked for a human")
    if not answer.reply:
        return Decision(True, CANNOT_ANSWER, "the model gave no reply")
    return Decision(False)


def continue_intent(session: Session, answer: Answer, slots: Mapping[str, str]) -> Answer:
    """A low-scoring message that fills a slot the session was asking for continues
    the session's intent (the slot-filling turn "#4321" after "your order id?")."""
    if not session.current_intent or not session.missing_slots:
        return answer
    if answer.intent not in (None, session.current_intent):
        return answer
    if not any(name in slots for name in session.missing_slots):
        return answer
    return replace(answer, intent=session.current_intent, confidence=max(answer.confidence, 0.99))


# ------------------------------------------------------------------ budget


def next_utc_midnight(now: datetime) -> datetime:
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def budget_spent(settings: Settings, used_today: int) -> bool:
    return settings.daily_token_budget > 0 and used_today >= settings.daily_token_budget


# ------------------------------------------------------------------ streaming


class ReplyExtractor:
    """Pulls the ``reply`` string out of the model's JSON as it streams in, so the
    reply's text can be relayed before the object is complete. ``feed`` returns the
    reply text decoded from the new piece (possibly empty)."""

    _KEY = re.compile(r'"reply"\s*:\s*"')

    def __init__(self) -> None:
        self._buf = ""
        self._pos: int | None = None  # index just after the opening quote
        self._done = False
        self._escape = ""

    def feed(self, piece: str) -> str:
        self._buf += piece
        if self._done:
            return ""
        if self._pos is None:
            m = self._KEY.search(self._buf)
            if m is None:
                return ""
            self._pos = m.end()
        out: list[str] = []
        i = self._pos
        buf = self._buf
        while i < len(buf):
            ch = buf[i]
            if self._escape:
                self._escape += ch
                if self._escape.startswith("\\u"):
                    if len(self._escape) < 6:
                        i += 1
                        continue
                try:
                    out.append(json.loads(f'"{self._escape}"'))
                except ValueError:
                    pass
                self._escape = ""
            elif ch == "\\":
                self._escape = "\\"
            elif ch == '"':
                self._done = True
                i += 1
                break
            else:
                out.append(ch)
            i += 1
        self._pos = i
        return "".join(out)
