"""Per-route faults, before processing and after accepting ("accept, then fail")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sandbox_helpers import Bearer

from mktx_grpc.sandbox import SandboxServer
from mktx_grpc.x import OAuth1Credentials, XClient, XOutcomeUnknown


def _rule(admin: Any, **body: Any) -> dict[str, Any]:
    return admin("POST", "/faults/rules", body)  # type: ignore[no-any-return]


async def test_error_rule_hits_only_its_route_and_only_count_times(
    http: httpx.AsyncClient, make_user: Callable[..., str], bearer: Bearer, admin: Any
) -> None:
    auth = await bearer(make_user())
    rule = _rule(admin, route="POST /2/tweets", kind="error", status=502, count=2)
    assert (await http.get("/2/users/me", headers=auth)).status_code == 200
    statuses = [
        (await http.post("/2/tweets", json={"text": f"t{i}"}, headers=auth)).status_code
        for i in range(3)
    ]
    assert statuses == [502, 502, 201]
    listed = admin("GET", "/faults")["rules"]
    assert listed[0]["id"] == rule["id"] and listed[0]["hits"] == 2 and listed[0]["count"] == 0
    # by handler name and by path glob, narrowed by method
    _rule(admin, route="users_me", kind="rate_limit", reset_after=30)
    limited = await http.get("/2/users/me", headers=auth)
    assert limited.status_code == 429 and int(limited.headers["x-rate-limit-reset"]) > 0
    _rule(admin, path="/2/users/*", method="GET", kind="error", count=None)
    assert (await http.get("/2/users/me", headers=auth)).status_code == 503
    assert (
        await http.post("/2/tweets", json={"text": "still fine"}, headers=auth)
    ).status_code == 201
    admin("DELETE", "/faults")
    assert (await http.get("/2/users/me", headers=auth)).status_code == 200


async def test_bad_rules_are_refused(http: httpx.AsyncClient) -> None:
    for body in (
        {"kind": "error"},  # no target
        {"route": "POST /2/tweets", "kind": "explode"},
        {"route": "POST /2/tweets", "kind": "error", "status": 404},
        {"route": "POST /2/tweets", "kind": "error", "probability": 2},
    ):
        resp = await http.post("/_sandbox/faults/rules", json=body)
        assert resp.status_code == 400, body
    assert (await http.delete("/_sandbox/faults/rules/nope")).status_code == 404


async def test_probability_uses_the_seeded_generator(
    sandbox: SandboxServer,
    http: httpx.AsyncClient,
    make_user: Callable[..., str],
    bearer: Bearer,
    admin: Any,
) -> None:
    import random

    from mktx_grpc.sandbox import SandboxConfig, SandboxState

    assert SandboxState(SandboxConfig(fault_seed=7)).rng.random() == random.Random(7).random()
    sandbox.state.rng = random.Random(7)
    gen = random.Random(7)
    expected = [gen.random() for _ in range(20)]
    auth = await bearer(make_user())
    _rule(admin, route="GET /2/users/me", kind="error", count=None, probability=0.5)
    got = [(await http.get("/2/users/me", headers=auth)).status_code for _ in range(20)]
    assert got == [503 if r < 0.5 else 200 for r in expected]
    assert 0 < got.count(503) < 20


async def test_accept_then_error_stores_the_post(
    sandbox: SandboxServer,
    http: httpx.AsyncClient,
    make_user: Callable[..., str],
    bearer: Bearer,
    admin: Any,
) -> None:
    me = make_user()
    auth = await bearer(me)
    _rule(admin, route="create_post", kind="accept_then_error", status=500)
    resp = await http.post("/2/tweets", json={"text": "did it post?"}, headers=auth)
    assert resp.status_code == 500
    assert resp.json()["status"] == 500 and "location" not in resp.headers
    # X kept it: visible in the timeline, lookups and the admin read-back.
    timeline = (await http.get(f"/2/users/{me}/tweets", headers=auth)).json()
    assert [p["text"] for p in timeline["data"]] == ["did it post?"]
    post_id = timeline["data"][0]["id"]
    assert (await http.get(f"/2/tweets/{post_id}", headers=auth)).json()["data"]["id"] == post_id
    assert [p["id"] for p in admin("GET", f"/posts?author_id={me}")["data"]] == [post_id]
    # and a retry of the same text is now X's duplicate refusal
    again = await http.post("/2/tweets", json={"text": "did it post?"}, headers=auth)
    assert again.status_code == 403


async def test_accept_then_error_is_an_unknown_outcome_and_the_dm_is_sent_once(
    sandbox: SandboxServer,
    x: XClient,
    make_user: Callable[..., str],
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
    admin: Any,
) -> None:
    """What exactly-once code must survive: X stored the DM and answered 503. The
    client used to retry the POST and send it again; now it reports that the outcome
    is unknown, sends nothing more, and the DM is there to be found by a lookup."""
    a, b = make_user(), make_user()
    user = x.as_user(await connect_oauth1(a))
    _rule(
        admin,
        route="POST /2/dm_conversations/with/:participant_id/messages",
        kind="accept_then_error",
    )
    with pytest.raises(XOutcomeUnknown) as err:
        await user.send_dm(b, text="once, please")
    assert err.value.status == 503
    sent = sandbox.state.sent_dms(a)
    assert [d.text for d in sent] == ["once, please"]
    page = await user.dm_events(participant_id=b)
    assert [e.id for e in page.events] == [sent[0].id]


async def test_accept_then_drop_closes_without_an_answer(
    sandbox: SandboxServer,
    http: httpx.AsyncClient,
    x: XClient,
    make_user: Callable[..., str],
    bearer: Bearer,
    connect_oauth1: Callable[[str], Awaitable[OAuth1Credentials]],
    admin: Any,
) -> None:
    a, b = make_user(), make_user()
    auth = await bearer(a)
    _rule(admin, path="/2/dm_conversations/with/*/messages", kind="accept_then_drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(
            f"/2/dm_conversations/with/{b}/messages", json={"text": "lost?"}, headers=auth
        )
    assert [d.text for d in sandbox.state.sent_dms(a)] == ["lost?"]
    events = (await http.get(f"/2/dm_conversations/with/{b}/dm_events", headers=auth)).json()
    assert [e["text"] for e in events["data"]] == ["lost?"]
    # the project's client reports the outcome as unknown and does not resend a POST
    _rule(admin, path="/2/dm_conversations/with/*/messages", kind="accept_then_drop")
    user = x.as_user(await connect_oauth1(a))
    with pytest.raises(XOutcomeUnknown):
        await user.send_dm(b, text="dropped again")
    assert [d.text for d in sandbox.state.sent_dms(a)] == ["lost?", "dropped again"]
    # the server itself is fine afterwards
    assert (await http.get("/2/users/me", headers=auth)).status_code == 200


async def test_accept_then_stall_outlasts_the_client_timeout(
    sandbox: SandboxServer, make_user: Callable[..., str], bearer: Bearer, admin: Any
) -> None:
    me = make_user()
    auth = await bearer(me)
    _rule(admin, route="POST /2/tweets", kind="accept_then_stall", seconds=30)
    async with httpx.AsyncClient(base_url=sandbox.base_url, timeout=0.5) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post("/2/tweets", json={"text": "slow ack"}, headers=auth)
        # the post exists although its answer never came
        assert [p.text for p in sandbox.state.iter_posts(me)] == ["slow ack"]
        assert (await impatient.get("/2/users/me", headers=auth)).status_code == 200


async def test_before_processing_timeout_stores_nothing_until_it_ends(
    sandbox: SandboxServer, make_user: Callable[..., str], bearer: Bearer, admin: Any
) -> None:
    me = make_user()
    auth = await bearer(me)
    _rule(admin, route="POST /2/tweets", kind="timeout", seconds=30)
    async with httpx.AsyncClient(base_url=sandbox.base_url, timeout=0.3) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post("/2/tweets", json={"text": "never seen"}, headers=auth)
    assert list(sandbox.state.iter_posts(me)) == []
