"""Property-based fuzz of the webhook sidecar (issue 13 §4), over real HTTP.

Random bytes, deep nesting, wrong types, missing fields and odd Unicode, each with
a valid, a wrong, a non-ASCII or no signature. Whatever arrives: never a 5xx, and
nothing stored unless the signature is valid. Fixed seed (``derandomize``) and a
bounded number of examples, so it is quick and repeatable in CI.

The sidecar runs under uvicorn, with the production configuration, in a thread of
its own (hypothesis drives a synchronous test)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webhook_helpers import FAST

from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import make_pool
from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.webhooks.app import create_webhook_app
from mktx_grpc.webhooks.server import sidecar_config
from mktx_grpc.x.signatures import webhook_signature


class _ThreadedSidecar:
    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.server: uvicorn.Server | None = None
        self.url = ""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced by start()
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        pool = make_pool(self.cfg.database_url, min_size=1, max_size=4)
        await pool.open(wait=True)
        deps = make_deps(self.cfg, pool)
        try:
            app = create_webhook_app(
                deps, self.cfg.x_consumer_secret, options=replace(FAST, max_body_bytes=65_536)
            )
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/twitter"
            self.server = uvicorn.Server(sidecar_config(app, app.state.options, lifespan="on"))
            task = asyncio.create_task(self.server.serve(sockets=[sock]))
            while not self.server.started and not task.done():
                await asyncio.sleep(0.01)
            self.ready.set()
            await task
            sock.close()
        finally:
            await close_deps(deps)
            await pool.close()

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(20), "sidecar did not start"
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def fuzz_target(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(webhook URL, consumer secret, database URL) of a sidecar in a thread."""
    sidecar = _ThreadedSidecar(settings)
    sidecar.start()
    try:
        yield sidecar.url, settings.x_consumer_secret, settings.database_url
    finally:
        sidecar.stop()


# ------------------------------------------------------------------ strategies

_ODD = [
    "\x00",
    "\ud800",
    "\udfff",
    "\ud83d",  # half of an emoji pair
    "\u2028",
    "\ufeff",
    "\u202e",
    "é",
    "𝕏",
    "\x1b[2J",
    "\\",
    '"',
    "%00",
    "'; DROP TABLE webhook_inbox; --",
]
_odd_text = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(_ODD)), max_size=4).map("".join)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _odd_text,
)
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_odd_text, inner, max_size=4)
    ),
    max_leaves=20,
)
_ids = st.one_of(st.just("2244994945"), _json)


def _event_like(kind: str) -> st.SearchStrategy[Any]:
    """Account Activity shaped objects with random, missing or wrong-typed fields."""
    fields = {
        "direct_message_events": {
            "type": st.just("message_create"),
            "id": _ids,
            "created_timestamp": _json,
            "message_create": st.fixed_dictionaries(
                {},
                optional={
                    "sender_id": _ids,
                    "target": st.one_of(_json, st.fixed_dictionaries({"recipient_id": _ids})),
                    "message_data": _json,
                },
            ),
        },
        "follow_events": {
            "type": st.sampled_from(["follow", "unfollow", "block"]),
            "source": _json,
            "target": _json,
            "created_timestamp": _json,
        },
        "direct_message_mark_read_events": {
            "sender_id": _ids,
            "last_read_event_id": _ids,
            "target": _json,
        },
        "tweet_create_events": {"id_str": _ids, "user": _json, "entities": _json, "text": _json},
        "user_event": {"revoke": _json},
    }[kind]
    return st.fixed_dictionaries({}, optional=fields)


_delivery = st.sampled_from(
    [
        "direct_message_events",
        "follow_events",
        "direct_message_mark_read_events",
        "tweet_create_events",
        "user_event",
    ]
).flatmap(
    lambda kind: st.fixed_dictionaries(
        {},
        optional={
            "for_user_id": _ids,
            kind: st.one_of(_json, st.lists(_event_like(kind), max_size=3), _event_like(kind)),
            "users": _json,
        },
    )
)


def _dumps(value: Any) -> bytes:
    # ensure_ascii keeps lone surrogates as \\ud800 escapes, as X's JSON would.
    return json.dumps(value, allow_nan=True).encode()


def _deep(depth: int, opener: str) -> bytes:
    if opener == "[":
        inner = "[" * depth + "]" * depth
    else:
        inner = '{"a":' * depth + "1" + "}" * depth
    return f'{{"for_user_id":"1","follow_events":{inner}}}'.encode()


_bodies = st.one_of(
    st.binary(max_size=512),
    _json.map(_dumps),
    _delivery.map(_dumps),
    st.tuples(st.integers(min_value=50, max_value=4000), st.sampled_from(["[", "{"])).map(
        lambda t: _deep(*t)
    ),
    # Valid JSON with a NUL, NaN or surrogate in an otherwise plausible delivery.
    st.sampled_from(['"\\u0000"', "NaN", "-Infinity", '"\\udc00"', "1e400"]).map(
        lambda v: f'{{"for_user_id":"1","follow_events":[{{"type":"follow","x":{v}}}]}}'.encode()
    ),
)
_signatures = st.sampled_from(["valid", "wrong", "non_ascii", "missing", "empty"])


def _count(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM webhook_inbox").fetchone()
        assert row is not None
        return int(row[0])


@settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies, signature=_signatures)
def test_sidecar_never_fails_and_stores_nothing_unsigned(
    fuzz_target: tuple[str, str, str], body: bytes, signature: str
) -> None:
    url, secret, database_url = fuzz_target
    headers: dict[str, Any] = {"content-type": "application/json"}
    if signature == "valid":
        headers["x-twitter-webhooks-signature"] = webhook_signature(secret, body)
    elif signature == "wrong":
        headers["x-twitter-webhooks-signature"] = webhook_signature(secret + "x", body)
    elif signature == "non_ascii":
        headers["x-twitter-webhooks-signature"] = "sha256=ä€".encode()
    elif signature == "empty":
        headers["x-twitter-webhooks-signature"] = ""
    before = _count(database_url)
    resp = httpx.post(url, content=body, headers=headers, timeout=20.0)
    assert resp.status_code < 500, (resp.status_code, resp.text, body[:200])
    if signature == "valid":
        assert resp.status_code in (200, 400), (resp.status_code, resp.text)
        if resp.status_code == 400:
            assert _count(database_url) == before
    else:
        assert resp.status_code == 401
        assert _count(database_url) == before
