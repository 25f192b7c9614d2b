"""How the assistant tells the stand-in a merchant's intents, and how the stand-in
answers from them with no model: the *intent convention*.

The AI client writes these blocks anywhere in a ``system`` (or ``developer``)
message; several system messages are read as one text. Tags are case-insensitive,
each block holds JSON, and a block that is not valid JSON is ignored (the request
log records why) rather than failing the request::

    <intents>
    [{"name": "order_status",
      "description": "Customer asks where their order is",
      "examples": ["where is my order", "has my parcel shipped yet"],
      "slots": [{"name": "order_id", "type": "order_id"},
                {"name": "email", "type": "email", "required": false}]},
     {"name": "talk_to_human", "examples": ["can I speak to a person"]}]
    </intents>
    <slots>{"email": "ann@example.com"}</slots>      already known; optional
    <handoff_intents>["talk_to_human"]</handoff_intents>  optional
    <confidence_floor>0.45</confidence_floor>          optional; default 0.4
    <today>2025-03-14</today>                           optional; anchors "tomorrow"
    <summarize/>                                        optional: write a hand-off summary

Only ``name`` is required in an intent; ``slots[].type`` is one of ``number``,
``email``, ``phone``, ``date``, ``order_id``, ``choice`` (with ``values``) and
``text`` (free text after a cue: ``cues`` or, by default, the slot's name,
"because", "regarding", "about"); an unknown type is read as ``text``. A slot is
required unless it says ``"required": false``; ``prompt`` overrides the question
asked for it.

What the stand-in does with them (:func:`analyse`):

- It scores the last user message against each intent's examples, its
  description (weight 0.85) and its name's words (weight 0.7). Text is
  normalised (case, accents, punctuation, crude plural/verb endings, stop words,
  numbers and ids dropped); a score is ``0.7 * words + 0.3 * trigram cosine`` where
  *words* is ``(2 * share of the example's words found + share of the message's
  words matched) / 3``. The best intent's score is the confidence, in [0, 1]: a
  near-copy of an example scores about 1, unrelated text near 0.
- If the last message scores below the floor but fills a slot of the intent an
  earlier user message scored above the floor for (the customer answering the
  assistant's question), that intent continues with the earlier confidence.
- Slots come from the user messages since that intent began (later ones win,
  then the ``<slots>`` block fills gaps). Emails, order ids (``#1234``,
  ``A-1234``, "order 1234"), phone numbers and dates are found first and masked,
  so a number slot never picks up an order id's digits. Dates come out ISO
  (``YYYY-MM-DD``); "today", "tomorrow", weekdays and "March 3" count from
  ``<today>`` or the current UTC date; ``a/b/yyyy`` is month/day unless a > 12.
- ``escalate`` is true for a hand-off intent or when nothing reaches the floor.
  Otherwise the reply asks for the first missing required slot, or confirms.
- The hand-off summary is three lines: the intent and confidence; the slots found
  (or the first message); the last message and whether a human is needed.

This module does no I/O; the HTTP app calls it.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = [
    "DEFAULT_FLOOR",
    "Analysis",
    "AssistantContext",
    "IntentSpec",
    "SlotSpec",
    "analyse",
    "cached_context",
    "extract_slots",
    "message_text",
    "parse_context",
    "similarity",
]

DEFAULT_FLOOR = 0.4
SLOT_TYPES = frozenset({"number", "email", "phone", "date", "order_id", "choice", "text"})
DEFAULT_TEXT_CUES = ("because", "regarding", "about")
_DESCRIPTION_WEIGHT = 0.85
_NAME_WEIGHT = 0.7


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """One slot an intent needs: a name, a type from :data:`SLOT_TYPES`, and options."""

    name: str
    type: str = "text"
    required: bool = True
    cues: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    prompt: str | None = None

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").replace("-", " ")


@dataclass(frozen=True, slots=True)
class IntentSpec:
    """One merchant intent: name, description, examples and slots."""

    name: str
    description: str = ""
    examples: tuple[str, ...] = ()
    slots: tuple[SlotSpec, ...] = ()

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").replace("-", " ")


@dataclass(slots=True)
class AssistantContext:
    """What the system messages carried, per the convention in the module docstring."""

    intents: list[IntentSpec] = field(default_factory=list)
    known_slots: dict[str, Any] = field(default_factory=dict)
    handoff_intents: set[str] = field(default_factory=set)
    summarize: bool = False
    floor: float = DEFAULT_FLOOR
    today: date | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def has_intents(self) -> bool:
        return bool(self.intents)


@dataclass(slots=True)
class Analysis:
    """The stand-in's reading of a conversation: what structured answers are filled from."""

    intent: str | None
    confidence: float
    slots: dict[str, Any]
    missing_slots: list[str]
    escalate: bool
    reason: str  # no_intents | handoff_intent | low_confidence | missing_slots | complete
    reply: str
    summary: str
    scores: dict[str, float]
    last_user_message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "confidence": self.confidence,
            "slots": dict(self.slots),
            "missing_slots": list(self.missing_slots),
            "escalate": self.escalate,
            "reason": self.reason,
            "reply": self.reply,
            "summary": self.summary,
        }


# -- parsing the convention ------------------------------------------------------------


def _block(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}\s*>(.*?)</{tag}\s*>", text, re.IGNORECASE | re.DOTALL)
    return m.group(1).strip() if m else None


def _json_block(text: str, tag: str, problems: list[str]) -> Any:
    raw = _block(text, tag)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        problems.append(f"<{tag}> is not valid JSON ({exc.msg} at {exc.pos})")
        return None


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str | int | float) and str(v))
    return ()


def _slot(raw: Any, problems: list[str]) -> SlotSpec | None:
    if isinstance(raw, str):
        return SlotSpec(name=raw)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        problems.append(f"slot {raw!r} has no name")
        return None
    kind = str(raw.get("type") or "text").lower()
    if kind in ("integer", "int", "float", "quantity", "amount"):
        kind = "number"
    elif kind not in SLOT_TYPES:
        kind = "text"
    prompt = raw.get("prompt")
    return SlotSpec(
        name=raw["name"],
        type=kind,
        required=raw.get("required", True) is not False,
        cues=_strings(raw.get("cues")),
        values=_strings(raw.get("values") or raw.get("enum")),
        prompt=prompt if isinstance(prompt, str) and prompt else None,
    )


def _intent(raw: Any, problems: list[str]) -> IntentSpec | None:
    if isinstance(raw, str) and raw:
        return IntentSpec(name=raw)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        problems.append(f"intent {raw!r} has no name")
        return None
    slots = [s for s in (_slot(r, problems) for r in raw.get("slots") or ()) if s is not None]
    description = raw.get("description")
    return IntentSpec(
        name=raw["name"],
        description=description if isinstance(description, str) else "",
        examples=_strings(raw.get("examples")),
        slots=tuple(slots),
    )


def parse_context(system_text: str) -> AssistantContext:
    """Read the convention's blocks from the system messages' text.

    Never raises: malformed blocks are skipped and described in ``problems``.
    """
    ctx = AssistantContext()
    problems = ctx.problems
    intents = _json_block(system_text, "intents", problems)
    if isinstance(intents, Mapping):
        intents = intents.get("intents")
    if isinstance(intents, list):
        ctx.intents = [i for i in (_intent(r, problems) for r in intents) if i is not None]
    elif intents is not None:
        problems.append("<intents> must hold a JSON list")
    slots = _json_block(system_text, "slots", problems)
    if isinstance(slots, Mapping):
        ctx.known_slots = {str(k): v for k, v in slots.items() if v not in (None, "")}
    handoff = _json_block(system_text, "handoff_intents", problems)
    ctx.handoff_intents = set(_strings(handoff))
    floor = _block(system_text, "confidence_floor")
    if floor is not None:
        try:
            ctx.floor = min(1.0, max(0.0, float(floor)))
        except ValueError:
            problems.append("<confidence_floor> is not a number")
    today = _block(system_text, "today")
    if today is not None:
        try:
            ctx.today = date.fromisoformat(today)
        except ValueError:
            problems.append("<today> is not an ISO date")
    ctx.summarize = bool(re.search(r"<summari[sz]e\s*/?>", system_text, re.IGNORECASE))
    return ctx


@functools.lru_cache(maxsize=256)
def cached_context(system_text: str) -> AssistantContext:
    """:func:`parse_context`, once per distinct system text (a merchant's intents
    come with every request). The result is shared between requests: read it, never
    change it."""
    return parse_context(system_text)


def message_text(content: Any) -> str:
    """A message's text: the string itself, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"]
            for p in content
            if isinstance(p, Mapping) and p.get("type", "text") == "text" and "text" in p
        )
    return ""


# -- scoring ---------------------------------------------------------------------------

_STOP = frozenset(
    """a an the i im i'm me my mine we our us you your yours it its is are was were be been
    am do does did to of in on at for with and or but so if then than this that these those
    there here can could would should will shall may might must please pls hi hello hey
    thanks thank just want wanna like need get got have has had some any what whats how
    when where which who whom why also very really about up out into from by as not no yes
    ok okay know tell let""".split()
)
_WORD = re.compile(r"[a-z0-9']+")


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_WORD.findall(stripped.replace("'", "")))


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    # "arrive" and "arrived" must meet: drop a final e after the other endings.
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def _content_words(text: str) -> list[str]:
    return [
        _stem(w)
        for w in _normalise(text).split()
        if w not in _STOP and not any(c.isdigit() for c in w)
    ]


def _trigrams(words: Sequence[str]) -> Counter[str]:
    padded = f" {' '.join(words)} "
    return Counter(padded[i : i + 3] for i in range(len(padded) - 2))


@dataclass(frozen=True, slots=True)
class _Features:
    """What :func:`similarity` needs of one text, computed once per distinct text."""

    words: frozenset[str]
    trigrams: Counter[str]  # never mutated once built
    norm2: int  # sum of the squared trigram counts


@functools.lru_cache(maxsize=8192)
def _features(text: str) -> _Features | None:
    """The text's content words and trigrams, or None when it has no content words.
    Keyed by the text itself: a merchant's examples, descriptions and intent names
    arrive with every request, so each is normalised once, not once per request."""
    words = _content_words(text)
    if not words:
        return None
    grams = _trigrams(words)
    return _Features(frozenset(words), grams, sum(v * v for v in grams.values()))


def similarity(message: str, example: str) -> float:
    """How well ``message`` matches ``example``, in [0, 1] (see the module docstring)."""
    m, e = _features(message), _features(example)
    if m is None or e is None:
        return 0.0
    shared = len(m.words & e.words)
    words = (2 * shared / len(e.words) + shared / len(m.words)) / 3
    a, b = m.trigrams, e.trigrams
    if len(b) < len(a):
        a, b = b, a
    dot = sum(v * b[k] for k, v in a.items() if k in b)
    cosine = dot / math.sqrt(m.norm2 * e.norm2)
    return min(1.0, 0.7 * words + 0.3 * cosine)


def _intent_score(message: str, intent: IntentSpec) -> float:
    best = max((similarity(message, ex) for ex in intent.examples), default=0.0)
    if intent.description:
        best = max(best, _DESCRIPTION_WEIGHT * similarity(message, intent.description))
    return max(best, _NAME_WEIGHT * similarity(message, intent.label))


# -- slot extraction -------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ORDER = re.compile(
    r"#\s?\d{3,}\b|\b[A-Za-z]{1,3}-\d{3,}\b"
    r"|\border\s*(?:no\.?|number|num|id)?\s*:?\s*(#?\s?\d{3,})\b",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?<![\w#-])\+?\d[\d ().-]{5,}\d(?![\w-])")
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for m in names
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DATE = re.compile(
    r"\b(?P<iso>(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2}))\b"
    r"|\b(?P<slash>(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<sy>\d{4}))\b"
    rf"|\b(?P<dm>(?P<dd>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon1>{_MONTH_RE})\b(?:\s+(?P<y1>\d{{4}}))?)"
    rf"|\b(?P<md>(?P<mon2>{_MONTH_RE})\s+(?P<dd2>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y2>\d{{4}}))?)"
    r"|\b(?P<rel>today|tomorrow|yesterday)\b"
    rf"|\b(?P<wd>{'|'.join(_WEEKDAYS)})\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\d)")
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}
_NUMBER_WORD = re.compile(rf"\b({'|'.join(_NUMBER_WORDS)})\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?\n]")


def _date_value(m: re.Match[str], today: date) -> str | None:
    try:
        if m.group("iso"):
            return date(int(m["y"]), int(m["m"]), int(m["d"])).isoformat()
        if m.group("slash"):
            a, b = int(m["a"]), int(m["b"])
            month, day = (b, a) if a > 12 else (a, b)
            return date(int(m["sy"]), month, day).isoformat()
        if m.group("dm") or m.group("md"):
            mon = _MONTHS[(m["mon1"] or m["mon2"]).lower()]
            day = int(m["dd"] or m["dd2"])
            year = m["y1"] or m["y2"]
            return date(int(year) if year else today.year, mon, day).isoformat()
        if m.group("rel"):
            offset = {"today": 0, "tomorrow": 1, "yesterday": -1}[m["rel"].lower()]
            return (today + timedelta(days=offset)).isoformat()
        if m.group("wd"):
            target = _WEEKDAYS.index(m["wd"].lower())
            ahead = (target - today.weekday()) % 7 or 7
            return (today + timedelta(days=ahead)).isoformat()
    except ValueError:  # 31 February and the like
        return None
    return None


def _order_value(m: re.Match[str]) -> str:
    return (m.group(1) or m.group(0)).replace(" ", "").upper()


def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _entities(text: str, today: date) -> tuple[dict[str, list[Any]], str]:
    """Every email, order id, phone and date in ``text`` (in order), and the text
    with them blanked out for the weaker extractors."""
    found: dict[str, list[Any]] = {"email": [], "order_id": [], "phone": [], "date": []}
    spans: list[tuple[int, int]] = []
    masked = text
    for kind, pattern in (("email", _EMAIL), ("order_id", _ORDER), ("date", _DATE)):
        for m in pattern.finditer(masked):
            value: Any = m.group(0)
            if kind == "order_id":
                value = _order_value(m)
            elif kind == "date":
                value = _date_value(m, today)
                if value is None:
                    continue
            found[kind].append(value)
            spans.append(m.span())
        masked = _mask(text, spans)
    for m in _PHONE.finditer(masked):
        digits = re.sub(r"\D", "", m.group(0))
        if 7 <= len(digits) <= 15:
            found["phone"].append(("+" if m.group(0).startswith("+") else "") + digits)
            spans.append(m.span())
    return found, _mask(text, spans)


def _numbers(masked: str) -> list[int | float]:
    hits: list[tuple[int, int | float]] = []
    for m in _NUMBER.finditer(masked):
        raw = m.group(0)
        hits.append((m.start(), float(raw) if "." in raw else int(raw)))
    for m in _NUMBER_WORD.finditer(masked):
        hits.append((m.start(), _NUMBER_WORDS[m.group(1).lower()]))
    return [v for _, v in sorted(hits, key=lambda h: h[0])]


def _after_cue(text: str, cues: Sequence[str]) -> str | None:
    best: tuple[int, str] | None = None
    for cue in cues:
        m = re.search(rf"\b{re.escape(cue)}\b\s*(?:is|was|:)?\s*", text, re.IGNORECASE)
        if m is None:
            continue
        rest = text[m.end() :]
        end = _SENTENCE_END.search(rest)
        value = (rest[: end.start()] if end else rest).strip(" ,;:-")
        if len(value) >= 2 and (best is None or m.start() < best[0]):
            best = (m.start(), value)
    return best[1] if best else None


def _choice(text: str, values: Sequence[str]) -> str | None:
    norm = f" {_normalise(text)} "
    hits = [(norm.find(f" {_normalise(v)} "), v) for v in values if _normalise(v)]
    hits = [h for h in hits if h[0] >= 0]
    return min(hits)[1] if hits else None


def extract_slots(
    text: str, slots: Sequence[SlotSpec], *, today: date | None = None
) -> dict[str, Any]:
    """Typed values for ``slots`` found in ``text``; slots not found are absent.

    Several slots of one type take that type's matches in order of appearance.
    """
    today = today or datetime.now(UTC).date()
    found, masked = _entities(text, today)
    numbers = _numbers(masked)
    taken: Counter[str] = Counter()
    out: dict[str, Any] = {}
    for slot in slots:
        value: Any = None
        if slot.type in found or slot.type == "number":
            pool: list[Any] = numbers if slot.type == "number" else found[slot.type]
            if taken[slot.type] < len(pool):
                value = pool[taken[slot.type]]
                taken[slot.type] += 1
        elif slot.type == "choice":
            value = _choice(text, slot.values)
        else:
            value = _after_cue(text, slot.cues or (slot.label, *DEFAULT_TEXT_CUES))
        if value is not None:
            out[slot.name] = value
    return out


# -- the analysis ----------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _show(value: Any) -> str:
    return str(value)


def _best(
    message: str, intents: Sequence[IntentSpec]
) -> tuple[IntentSpec | None, dict[str, float]]:
    scores = {i.name: round(_intent_score(message, i), 3) for i in intents}
    best = max(intents, key=lambda i: scores[i.name], default=None)
    return best, scores


def _asked_for(slot: SlotSpec, assistant_text: str) -> bool:
    return _normalise(slot.label) in _normalise(assistant_text)


def analyse(messages: Sequence[Mapping[str, Any]], ctx: AssistantContext) -> Analysis:
    """Route the conversation's last user message to one of ``ctx.intents``.

    ``messages`` are chat messages (``role``, ``content``). Never raises on odd
    input: with no intents or no user message it returns ``reason="no_intents"``
    and a plain acknowledgement.
    """
    turns = [(str(m.get("role")), message_text(m.get("content"))) for m in messages]
    user_idx = [i for i, (role, _) in enumerate(turns) if role == "user"]
    last_user = turns[user_idx[-1]][1] if user_idx else ""
    today = ctx.today or datetime.now(UTC).date()
    if not ctx.has_intents:
        reply = f'Stand-in reply to: "{_clip(last_user, 200)}"' if last_user else "Stand-in reply."
        summary = _summary(None, 0.0, {}, False, [t for r, t in turns if r == "user"])
        return Analysis(None, 0.0, {}, [], False, "no_intents", reply, summary, {}, last_user)

    best, scores = _best(last_user, ctx.intents)
    confidence = scores[best.name] if best else 0.0
    start = user_idx[-1] if user_idx else len(turns)
    if best is not None and confidence < ctx.floor:
        # The customer may be answering the assistant's question: continue the
        # intent an earlier message scored for if this message fills one of its slots.
        for i in reversed(user_idx[:-1]):
            earlier, earlier_scores = _best(turns[i][1], ctx.intents)
            if earlier is None or earlier_scores[earlier.name] < ctx.floor:
                continue
            prior_assistant = " ".join(t for r, t in turns[i:] if r == "assistant")
            fills = extract_slots(last_user, earlier.slots, today=today)
            asked_text = [
                s for s in earlier.slots if s.type == "text" and _asked_for(s, prior_assistant)
            ]
            if fills or asked_text:
                best, confidence, start = earlier, earlier_scores[earlier.name], i
            break

    user_texts = [t for r, t in turns if r == "user"]
    if best is None or confidence < ctx.floor:
        reply = "I'm not sure I understood that, so I'm passing you to a member of our team."
        summary = _summary(None, confidence, {}, True, user_texts)
        return Analysis(
            None, confidence, {}, [], True, "low_confidence", reply, summary, scores, last_user
        )

    slots: dict[str, Any] = {}
    last_assistant = ""
    for role, text in turns[start:]:
        if role == "assistant":
            last_assistant = text
        elif role == "user":
            slots.update(extract_slots(text, best.slots, today=today))
            for s in best.slots:
                # A bare answer to the assistant's question about a free-text slot.
                if (
                    s.type == "text"
                    and s.name not in slots
                    and last_assistant
                    and _asked_for(s, last_assistant)
                ):
                    slots[s.name] = text.strip()
    for s in best.slots:
        if s.name not in slots and s.name in ctx.known_slots:
            slots[s.name] = ctx.known_slots[s.name]
    missing = [s.name for s in best.slots if s.required and s.name not in slots]

    if best.name in ctx.handoff_intents:
        escalate, reason = True, "handoff_intent"
        reply = "I'm handing you over to a member of our team; they will reply here shortly."
    elif missing:
        escalate, reason = False, "missing_slots"
        slot = next(s for s in best.slots if s.name == missing[0])
        reply = slot.prompt or f"Could you tell me the {slot.label}?"
    else:
        escalate, reason = False, "complete"
        details = ", ".join(
            f"{s.label} {_show(slots[s.name])}" for s in best.slots if s.name in slots
        )
        reply = f"Thanks, I can help with {best.label}." + (
            f" I have: {details}." if details else ""
        )
    summary = _summary(best, confidence, slots, escalate, user_texts)
    return Analysis(
        best.name, confidence, slots, missing, escalate, reason, reply, summary, scores, last_user
    )


def _summary(
    intent: IntentSpec | None,
    confidence: float,
    slots: Mapping[str, Any],
    escalate: bool,
    user_texts: Sequence[str],
) -> str:
    first = intent.label if intent else "unclear"
    lines = [f"Customer intent: {first} (confidence {confidence:.2f})."]
    if slots:
        lines.append(
            "Details: "
            + ", ".join(f"{k.replace('_', ' ')} {_show(v)}" for k, v in slots.items())
            + "."
        )
    elif len(user_texts) > 1:
        lines.append(f'First message: "{_clip(user_texts[0], 120)}"')
    last = _clip(user_texts[-1], 160) if user_texts else ""
    lines.append(
        f'Last message: "{last}"' + (" Needs a human." if escalate else " No hand-off needed.")
    )
    return "\n".join(lines)
