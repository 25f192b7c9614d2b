"""The model's answer is checked first by plain type and membership tests
(domain.ai._plain_check) and only sent to the full JSON schema validator when those
do not accept it. The plain check must never accept what the schema refuses, and
must accept the ordinary answers (or it saves nothing)."""

from __future__ import annotations

import itertools
import json

from mktx_grpc.domain import ai as d

BOOK = d.IntentDef(
    "book_table",
    slots=(d.SlotDef("date", "date"), d.SlotDef("party_size", "number")),
)
SETTINGS = d.Settings(enabled=True, intents=(BOOK, d.IntentDef("talk")))
GOOD = {
    "intent": "book_table",
    "confidence": 0.9,
    "slots": {"date": "2030-01-02", "party_size": None},
    "missing_slots": ["party_size"],
    "reply": "For how many?",
    "escalate": False,
}
VALUES = [
    None, True, False, 0, 1, -1, 0.5, 1.5, float("nan"), "", "x", "book_table", "other",
    "talk", "unknown", [], ["a"], [1], {}, {"date": None}, {"date": "x", "party_size": "4"},
    {"date": 1, "party_size": None}, {"date": None, "party_size": None, "extra": None},
]  # fmt: skip


def _variants():
    yield GOOD
    for key, value in itertools.product(GOOD, VALUES):
        yield {**GOOD, key: value}
    for key in GOOD:
        yield {k: v for k, v in GOOD.items() if k != key}
    yield {**GOOD, "extra": 1}
    yield [GOOD]
    yield "text"


def test_the_plain_check_never_accepts_what_the_schema_refuses():
    schema = d.output_schema(SETTINGS)
    validator, plain = d._checks(schema)
    assert plain is not None
    accepted = 0
    for data in _variants():
        if plain(data):
            accepted += 1
            assert validator.is_valid(data), data
    assert accepted > 10  # ordinary answers take the plain path
    assert plain(GOOD) and plain({**GOOD, "intent": None}) and plain({**GOOD, "confidence": 1})


def test_verdicts_and_problems_are_the_full_validators():
    schema = d.output_schema(SETTINGS)
    for data in _variants():
        content = json.dumps(data)
        try:
            d.parse_answer(content, schema)
            ok = True
        except d.MalformedOutput as exc:
            ok = False
            if str(exc).startswith("schema:"):
                assert not d._checks(schema)[0].is_valid(data)
        valid = d._checks(schema)[0].is_valid(data)
        # parse_answer may refuse more (NUL, length) but never accepts less.
        assert not ok or valid, data


def test_one_schema_object_per_set_of_intents_and_other_schemas_use_the_validator():
    assert d.output_schema(SETTINGS) is d.output_schema(d.Settings(intents=SETTINGS.intents))
    assert d.output_schema(SETTINGS) is not d.output_schema(d.DEFAULT_SETTINGS)
    # A schema of another shape (an intent named "other") has no plain check.
    odd = d.output_schema(d.Settings(intents=(d.IntentDef("other"), BOOK)))
    assert d._checks(odd)[1] is None
    assert d.parse_answer(json.dumps(GOOD), odd).intent == "book_table"
    custom = {"type": "object", "properties": {"reply": {"type": "string"}}}
    assert d._checks(custom)[1] is None
