"""domain/automation.py without I/O: graph validation (every rule, each at its
field), trigger matching (RE2), the randomizer's split and stickiness, wake times."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from mktx_grpc.domain import automation as d

TID = str(uuid.uuid4())


def node(nid: str, type_: str, **config) -> d.Node:
    return d.Node(id=nid, type=type_, config=config)


def conn(a: str, b: str, branch: str = "default") -> d.Connection:
    return d.Connection(a, b, branch)


def welcome() -> d.Definition:
    return d.Definition(
        trigger=d.Trigger(type="NEW_FOLLOWER"),
        nodes=[
            node("hello", "SEND_MESSAGE", text="Hi {{first_name|there}}!"),
            node("pause", "WAIT", duration="86400s"),
            node("follow_up", "SEND_MESSAGE", template_id=TID),
            node("done", "END"),
        ],
        connections=[
            conn("trigger", "hello"),
            conn("hello", "pause"),
            conn("pause", "follow_up"),
            conn("follow_up", "done"),
        ],
    )


def fields(defn: d.Definition, **kw) -> dict[str, str]:
    return {v.field: v.description for v in d.validate_definition(defn, **kw)}


def test_a_good_flow_is_valid_and_round_trips_through_json():
    defn = welcome()
    assert fields(defn, complete=True) == {}
    again = d.Definition.from_json(defn.to_json())
    assert again == defn
    assert d.references(defn, "flow.").template_ids == [("flow.nodes[2].config.template_id", TID)]


def test_an_empty_draft_is_fine_but_cannot_activate():
    assert fields(d.Definition()) == {}
    got = fields(d.Definition(), complete=True)
    assert set(got) == {"trigger.type", "nodes"}


def test_every_graph_problem_is_reported_at_its_field():
    defn = d.Definition(
        trigger=d.Trigger(type="NEW_FOLLOWER"),
        nodes=[
            node("a", "SEND_MESSAGE", text="hi"),
            node("a", "END"),  # duplicate id
            node("trigger", "END"),  # reserved id
            node("cond", "CONDITION", reply_contains="yes"),  # false branch missing
            node("lonely", "END"),  # unreachable
            node("bad", "UNSPECIFIED"),
        ],
        connections=[
            conn("trigger", "a"),
            conn("a", "cond"),
            conn("a", "ghost"),  # duplicate branch, dangling target
            conn("cond", "a", "true"),
            conn("cond", "a", "maybe"),  # a branch CONDITION does not have
            conn("nowhere", "a"),  # dangling source
        ],
    )
    got = fields(defn)
    assert "nodes[1].id" in got and "duplicates nodes[0].id" in got["nodes[1].id"]
    assert "nodes[2].id" in got
    assert got["nodes[3]"] == "branch 'false' has no connection"
    assert got["nodes[4].id"] == "is not reachable from the trigger"
    assert got["nodes[5].type"] == "is required"
    assert "connections[2].to_node_id" in got and "connections[2].branch" in got
    assert "no branch 'maybe'" in got["connections[4].branch"]
    assert got["connections[5].from_node_id"] == "names no node of the flow"


def test_a_cycle_without_a_wait_is_rejected_and_one_through_a_wait_is_not():
    loop = d.Definition(
        trigger=d.Trigger(type="MANUAL"),
        nodes=[node("tag", "ADD_TAG", tags=["x"]), node("msg", "SEND_MESSAGE", text="again")],
        connections=[conn("trigger", "tag"), conn("tag", "msg"), conn("msg", "tag")],
    )
    got = fields(loop)
    assert "passes through no WAIT" in got["nodes[0].id"] and "nodes[1].id" in got
    loop.nodes.append(node("nap", "WAIT", duration="60s"))
    loop.connections[2] = conn("msg", "nap")
    loop.connections.append(conn("nap", "tag"))
    assert fields(loop) == {}


def test_exactly_one_entry_and_size_limits():
    defn = welcome()
    defn.connections.append(conn("trigger", "done"))
    assert "exactly one connection" in fields(defn)["connections"]
    big = d.Definition(nodes=[node(f"n{i}", "END") for i in range(201)])
    assert "at most 200" in fields(big)["nodes"]
    many = d.Definition(connections=[conn("trigger", "x")] * 401)
    assert "at most 400" in fields(many)["connections"]


@pytest.mark.parametrize(
    ("type_", "config", "field"),
    [
        ("SEND_MESSAGE", {}, "nodes[0].config.text"),
        ("SEND_MESSAGE", {"text": "a", "template_id": TID}, "nodes[0].config.text"),
        ("SEND_MESSAGE", {"template_id": "nope"}, "nodes[0].config.template_id"),
        ("SEND_MESSAGE", {"text": "nul\x00"}, "nodes[0].config.text"),
        ("SEND_MESSAGE", {"text": "x" * 10_001}, "nodes[0].config.text"),
        ("SEND_MESSAGE", {"text": "a", "media_url": "http://x/y.png"}, "nodes[0].config.media_url"),
        (
            "SEND_MESSAGE",
            {"text": "a", "quick_replies": [{"label": ""}]},
            "nodes[0].config.quick_replies[0].label",
        ),
        ("SEND_MESSAGE", {"text": "a", "colour": "red"}, "nodes[0].config.colour"),
        ("WAIT", {}, "nodes[0].config.duration"),
        ("WAIT", {"duration": "soon"}, "nodes[0].config.duration"),
        ("WAIT", {"duration": "0s"}, "nodes[0].config.duration"),
        ("WAIT", {"duration": "999999999s"}, "nodes[0].config.duration"),
        ("WAIT", {"until_time": "25:00"}, "nodes[0].config.until_time"),
        ("WAIT", {"until_time": "09:00", "weekdays": [0]}, "nodes[0].config.weekdays"),
        ("WAIT", {"until": "tomorrow"}, "nodes[0].config.until"),
        ("WAIT_FOR_REPLY", {}, "nodes[0].config.timeout"),
        ("CONDITION", {}, "nodes[0].config.conditions"),
        ("CONDITION", {"conditions": {"operator": "NOPE"}}, "nodes[0].config.conditions"),
        ("ADD_TAG", {"tags": []}, "nodes[0].config.tags"),
        ("REMOVE_TAG", {"tags": [""]}, "nodes[0].config.tags[0]"),
        ("SET_ATTRIBUTE", {"key": "bad key", "value": 1}, "nodes[0].config.key"),
        ("SET_ATTRIBUTE", {"key": "plan"}, "nodes[0].config.value"),
        ("SET_ATTRIBUTE", {"key": "plan", "value": {"a": 1}}, "nodes[0].config.value"),
        ("ASSIGN", {}, "nodes[0].config.assignee_user_id"),
        ("RANDOMIZER", {"paths": [{"branch": "a", "weight": 50}]}, "nodes[0].config.paths"),
        (
            "RANDOMIZER",
            {"paths": [{"branch": "a", "weight": 50}, {"branch": "b", "weight": 40}]},
            "nodes[0].config.paths",
        ),
        (
            "RANDOMIZER",
            {"paths": [{"branch": "a", "weight": 50}, {"branch": "a", "weight": 50}]},
            "nodes[0].config.paths[1].branch",
        ),
        (
            "RANDOMIZER",
            {"paths": [{"branch": "a", "weight": 0}, {"branch": "b", "weight": 100}]},
            "nodes[0].config.paths[0].weight",
        ),
        ("START_FLOW", {"flow_id": "x"}, "nodes[0].config.flow_id"),
        ("END", {"x": 1}, "nodes[0].config.x"),
    ],
)
def test_node_config_is_checked_per_type(type_, config, field):
    defn = d.Definition(
        trigger=d.Trigger(type="MANUAL"),
        nodes=[node("n", type_, **config)],
        connections=[conn("trigger", "n")],
    )
    assert field in fields(defn), fields(defn)


@pytest.mark.parametrize(
    ("trigger", "field"),
    [
        (d.Trigger(type="KEYWORD", config={}), "trigger.config.keywords"),
        (
            d.Trigger(type="KEYWORD", config={"keywords": ["a"], "match": "fuzzy"}),
            "trigger.config.match",
        ),
        (
            d.Trigger(type="KEYWORD", config={"keywords": ["(a"], "match": "regex"}),
            "trigger.config.keywords[0]",
        ),
        # Backreferences are not linear-time: RE2 refuses them.
        (
            d.Trigger(type="KEYWORD", config={"keywords": [r"(a)\1"], "match": "regex"}),
            "trigger.config.keywords[0]",
        ),
        (d.Trigger(type="KEYWORD", config={"keywords": ["x" * 201]}), "trigger.config.keywords[0]"),
        (d.Trigger(type="MENTION", config={"post_id": "abc"}), "trigger.config.post_id"),
        (d.Trigger(type="TAG_ADDED", config={}), "trigger.config.tag"),
        (d.Trigger(type="NEW_FOLLOWER", config={"x": 1}), "trigger.config.x"),
        (d.Trigger(type="UNKNOWN"), "trigger.type"),
        (d.Trigger(type="MANUAL", reentry="COOLDOWN"), "trigger.reentry_cooldown"),
        (d.Trigger(type="MANUAL", reentry="UNKNOWN"), "trigger.reentry"),
    ],
)
def test_trigger_config_is_checked(trigger, field):
    assert field in fields(d.Definition(trigger=trigger))


def test_keyword_matching_exact_contains_starts_with_and_regex():
    def m(match: str, *kw: str):
        return lambda text: d.keyword_matches({"match": match, "keywords": list(kw)}, text)

    assert m("exact", "Price")("  price ") and not m("exact", "price")("price?")
    assert m("contains", "price")("What's the PRICE of it") and not m("contains", "price")("cost")
    assert m("starts_with", "hi")("Hi there") and not m("starts_with", "hi")("oh hi")
    assert m("regex", r"order\s*#?\d{4,}")("where is ORDER #12345?")
    assert not m("regex", r"^\d+$")("12a")
    # A pattern that backtracking engines take exponential time on is instant in RE2.
    assert not m("regex", r"(a+)+$")("a" * 50_000 + "!")


def test_randomizer_split_matches_weights_and_is_sticky():
    paths = [
        {"branch": "a", "weight": 20},
        {"branch": "b", "weight": 30},
        {"branch": "c", "weight": 50},
    ]
    n = 6000
    picks = Counter(d.pick_path(paths, f"flow:node:{uuid.uuid4()}") for _ in range(n))
    expected = {"a": 0.2 * n, "b": 0.3 * n, "c": 0.5 * n}
    chi2 = sum((picks[k] - e) ** 2 / e for k, e in expected.items())
    # 2 degrees of freedom; alpha = 0.001 -> 13.82 (generous on purpose).
    assert chi2 < 13.82, (picks, chi2)
    key = f"flow:node:{uuid.uuid4()}"
    assert len({d.pick_path(paths, key) for _ in range(20)}) == 1


def test_wake_times():
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
    assert d.wake_time({"duration": "90s"}, now, d.zone("")) == now + timedelta(seconds=90)
    # 09:00 in Lisbon (UTC+0 in March) has passed today: tomorrow.
    got = d.wake_time({"until_time": "09:00"}, now, d.zone("Europe/Lisbon"))
    assert got == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    # 09:00 in New York (UTC-5) is still ahead today.
    got = d.wake_time({"until_time": "09:00"}, now, d.zone("America/New_York"))
    assert got == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    # Only on Fridays.
    got = d.wake_time({"until_time": "09:00", "weekdays": [5]}, now, d.zone("UTC"))
    assert got == datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
    past = d.wake_time({"until": "2020-01-01T00:00:00Z"}, now, d.zone("UTC"))
    assert past == now
    assert d.zone("Not/AZone", "Europe/Paris").key == "Europe/Paris"


def test_reentry_policy():
    now = datetime.now(UTC)
    every, once = d.Trigger(reentry="EVERY_TIME"), d.Trigger(reentry="ONCE")
    cool = d.Trigger(reentry="COOLDOWN", reentry_cooldown_s=3600)
    assert d.may_enter(every, 0, None, False, now) and d.may_enter(every, 3, now, False, now)
    assert not d.may_enter(every, 1, now, True, now)  # never two live at once
    assert d.may_enter(once, 0, None, False, now) and not d.may_enter(once, 1, now, False, now)
    assert not d.may_enter(cool, 1, now - timedelta(minutes=5), False, now)
    assert d.may_enter(cool, 1, now - timedelta(hours=2), False, now)


def test_validation_never_raises_on_arbitrary_configs():
    """Any JSON a client can put in a Struct gets violations, never an exception."""
    import random

    rng = random.Random(9)
    scalars = [None, True, 0, -1, 1.5, 1e308, "", "x", "\x00", "3600s", "09:00", "a" * 20_000, TID]

    def value(depth: int = 0):
        r = rng.random()
        if depth < 3 and r < 0.2:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        if depth < 3 and r < 0.4:
            keys = [
                "text",
                "template_id",
                "paths",
                "branch",
                "weight",
                "tags",
                "key",
                "value",
                "duration",
                "timeout",
                "conditions",
                "until_time",
                "weekdays",
                "flow_id",
                "keywords",
                "match",
                "operator",
                "nodes",
                "quick_replies",
                "label",
            ]
            return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 4))}
        return rng.choice(scalars)

    for _ in range(3000):
        t = rng.choice(d.NODE_TYPES)
        cfg = value()
        defn = d.Definition(
            trigger=d.Trigger(
                type=rng.choice(d.TRIGGER_TYPES), config=cfg if isinstance(cfg, dict) else {}
            ),
            nodes=[d.Node(id="n", type=t, config=cfg if isinstance(cfg, dict) else {"x": cfg})],
            connections=[conn("trigger", "n"), conn("n", "n", str(rng.choice(scalars)))],
        )
        assert isinstance(d.validate_definition(defn, complete=True), list)


def test_ai_reply_branch_is_default_only_when_the_bot_replied():
    assert d.ai_reply_branch("REPLIED") == "default"
    for outcome in ("ESCALATED", "AWAY", "AWAY_SENT", "HUMANS", "SKIPPED", "", None):
        assert d.ai_reply_branch(outcome) == "escalated"


@pytest.mark.parametrize(
    "tag",
    ["a,b", "vip\x07", "zero\u200bwidth", "x" * 65, "   ", "\t"],
)
def test_flow_tags_obey_the_contact_tag_rule(tag):
    """ADD_TAG / REMOVE_TAG tags and a TAG_ADDED trigger's tag are refused exactly
    when ContactsService refuses the tag (domain.contacts.validate_tags), with its
    reason, at the tag's own field."""
    from mktx_grpc.domain.contacts import validate_tags

    (contact_violation,) = validate_tags([tag])
    for type_ in ("ADD_TAG", "REMOVE_TAG"):
        defn = d.Definition(
            trigger=d.Trigger(type="MANUAL"),
            nodes=[node("n", type_, tags=["ok", tag])],
            connections=[conn("trigger", "n")],
        )
        assert fields(defn).get("nodes[0].config.tags[1]") == contact_violation.description
    defn = d.Definition(
        trigger=d.Trigger(type="TAG_ADDED", config={"tag": tag}),
        nodes=[node("n", "END")],
        connections=[conn("trigger", "n")],
    )
    assert fields(defn).get("trigger.config.tag") == contact_violation.description


@pytest.mark.parametrize("tag", ["x" * 64, "  Mixed Case  ", "ünïcode-ok", "a" * 51])
def test_flow_tags_the_contact_rule_accepts_are_accepted(tag):
    from mktx_grpc.domain.contacts import validate_tags

    assert validate_tags([tag]) == []
    defn = d.Definition(
        trigger=d.Trigger(type="TAG_ADDED", config={"tag": tag}),
        nodes=[node("n", "ADD_TAG", tags=[tag])],
        connections=[conn("trigger", "n")],
    )
    assert fields(defn) == {}
