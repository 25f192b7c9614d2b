"""A sandbox that survives restarts (state file) and explains itself (GET /_sandbox)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from xfixtures import ALL_SCOPES

from mktx_grpc.sandbox import DEFAULT_PORT, SandboxConfig, SandboxServer
from mktx_grpc.sandbox.admin import ADMIN_API
from mktx_grpc.sandbox.persistence import FORMAT, FORMAT_VERSION
from mktx_grpc.sandbox.receiver import WebhookReceiver
from mktx_grpc.x import OAuth1Credentials, OAuth2Credentials, XClient, new_pkce, new_state

README = Path(__file__).resolve().parents[2] / "src" / "mktx_grpc" / "sandbox" / "README.md"


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "sandbox-state.json"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(SandboxConfig().consumer_secret).start()
    yield r
    r.stop()


def _start(state_file: Path) -> SandboxServer:
    return SandboxServer(SandboxConfig(state_file=state_file, save_debounce=0.05)).start()


async def _connect(x: XClient, uid: str) -> tuple[OAuth1Credentials, str, str]:
    """OAuth 1.0a and OAuth 2.0 (with refresh) credentials for ``uid``."""
    rt = await x.oauth1_request_token("https://merchant.example/cb")
    async with httpx.AsyncClient() as browser:
        loc = (await browser.get(x.oauth1_authorize_url(rt) + f"&sandbox_user_id={uid}")).headers[
            "location"
        ]
        verifier = httpx.URL(loc).params["oauth_verifier"]
        at = await x.oauth1_access_token(rt, verifier)
        pkce, st = new_pkce(), new_state()
        redirect = "https://merchant.example/oauth2/cb"
        url = x.oauth2_authorize_url(
            redirect_uri=redirect, scopes=ALL_SCOPES, state=st, code_challenge=pkce.challenge
        )
        code = httpx.URL(
            (await browser.get(url + f"&sandbox_user_id={uid}")).headers["location"]
        ).params["code"]
    token = await x.oauth2_exchange_code(
        code=code, redirect_uri=redirect, code_verifier=pkce.verifier
    )
    assert token.refresh_token
    return OAuth1Credentials(at.token, at.token_secret), token.access_token, token.refresh_token


async def test_tokens_webhooks_and_content_survive_a_real_restart(
    state_file: Path, receiver: WebhookReceiver
) -> None:
    first = _start(state_file)
    try:
        uid = "1700000000000000777"
        other = "1700000000000000778"
        first.state.add_user(uid, "persist_me", "Persist Me", description="kept")
        first.state.add_user(other, "persist_you", "Persist You")
        async with XClient(first.x_config(backoff_base=0.01)) as x:
            creds1, access, refresh = await _connect(x, uid)
            user = x.as_user(creds1)
            hook = await x.as_app().register_webhook(receiver.url)
            assert await user.subscribe(hook.id)
            dm = await user.send_dm(other, text="before the restart")
            post = await user.create_post("survivor")
            media = await user.upload_media(
                b"\x89PNG" + os.urandom(64), media_type="image/png", media_category="tweet_image"
            )
    finally:
        first.stop()
    assert state_file.exists() and not state_file.with_name(state_file.name + ".tmp").exists()
    saved = json.loads(state_file.read_text())
    assert saved["format"] == FORMAT and saved["version"] == FORMAT_VERSION

    second = _start(state_file)
    try:
        assert second.restored
        async with XClient(second.x_config(backoff_base=0.01)) as x:
            me = await x.as_user(creds1).me()  # OAuth 1.0a token still valid
            assert me.id == uid
            assert (await x.as_user(OAuth2Credentials(access)).me()).id == uid
            rotated = await x.oauth2_refresh(refresh)  # refresh token still usable once
            assert rotated.access_token != access
            hooks = await x.as_app().list_webhooks()
            assert [h.id for h in hooks] == [hook.id]
            assert await x.as_user(creds1).is_subscribed(hook.id)
            page = await x.as_user(creds1).dm_events(participant_id=other)
            assert [e.id for e in page.events] == [dm.dm_event_id]
            got = await x.as_user(creds1).get_posts([post.id])
            assert [p.text for p in got] == ["survivor"]
            # media ids stay usable for posts, and new ids keep growing
            again = await x.as_user(creds1).create_post("with media", media_ids=[media.id])
            assert int(again.id) > int(post.id)
        assert second.state.users[uid].description == "kept"
        # the restored subscription still delivers
        second.state.add_dm(other, uid, "after", None, source="inbound", principal=None)
        receiver.wait_for(lambda ds: any(b"after" in d.body for d in ds))
    finally:
        second.stop()


async def test_rate_windows_survive_a_restart(state_file: Path) -> None:
    first = _start(state_file)
    uid = "1700000000000000779"
    first.state.add_user(uid, "windowed", "W")
    token = first.state.new_access_token(uid)
    first.state.take("GET /2/users/me", uid)
    first.state.take("GET /2/users/me", uid)
    first.stop()
    second = _start(state_file)
    try:
        decision = second.state.take("GET /2/users/me", uid)
        assert decision.headers["x-rate-limit-remaining"] == "72"  # 75 - 3
        assert second.state.oauth1_tokens[token.token].user_id == uid
    finally:
        second.stop()


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"format": FORMAT, "version": FORMAT_VERSION + 1}),
        json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "users": [{"nope": 1}]}),
        json.dumps(["a", "list"]),
    ],
)
def test_unusable_state_file_starts_fresh_with_a_warning(
    state_file: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    state_file.write_text(content)
    with caplog.at_level(logging.WARNING, logger="mktx_grpc.sandbox.persistence"):
        server = _start(state_file)
    try:
        assert not server.restored
        assert "starting fresh" in caplog.text
        assert set(server.state.users) == {u[0] for u in SandboxConfig().seed_users}
        assert state_file.with_name(state_file.name + ".corrupt").read_text() == content
        assert httpx.get(f"{server.base_url}/_sandbox/health").json() == {"ok": True}
    finally:
        server.stop()
    # the fresh world was saved over it, and loads next time
    again = _start(state_file)
    try:
        assert again.restored
    finally:
        again.stop()


def test_index_lists_the_admin_api_users_and_consent(sandbox: SandboxServer) -> None:
    index = httpx.get(f"{sandbox.base_url}/_sandbox").json()
    routes = {(r["method"], r["path"]) for r in index["admin_api"]}
    assert routes == {(r.method, r.path) for r in ADMIN_API}
    assert all(r["description"] for r in index["admin_api"])
    rules = next(r for r in index["admin_api"] if r["path"] == "/_sandbox/faults/rules")
    assert {"route", "path", "kind", "count", "probability"} <= set(rules["body"])
    assert [u["username"] for u in index["seeded_users"]] == [
        "sandbox_merchant",
        "sandbox_customer",
    ]
    assert "sandbox_user_id" in index["consent"]
    # every declared route answers (no 404/405 from the router)
    for r in ADMIN_API:
        if r.method == "GET" and "{" not in r.path:
            assert httpx.get(sandbox.base_url + r.path).status_code == 200, r.path
    names = {e["endpoint"] for e in httpx.get(f"{sandbox.base_url}/_sandbox/routes").json()["data"]}
    assert {"POST /2/tweets", "GET /2/users/by", "POST /2/dm_conversations"} <= names


def test_readme_documents_every_admin_route() -> None:
    text = README.read_text()
    for r in ADMIN_API:
        row = re.compile(rf"^\| `{r.method}` \| `{re.escape(r.path)}` \|", re.MULTILINE)
        assert row.search(text), f"README lacks {r.method} {r.path}"
    assert str(DEFAULT_PORT) in text


def test_cli_serves_on_the_default_port_and_keeps_state(tmp_path: Path) -> None:
    """``mktx-grpc x-sandbox`` with --state-file: SIGTERM saves, a restart restores."""
    exe = Path(sys.executable).with_name("mktx-grpc")
    state = tmp_path / "cli-state.json"

    def run() -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            [str(exe), "x-sandbox", "--port", "0", "--state-file", str(state)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"X sandbox on (http://\S+) ", line)
        assert match, line
        return proc, match.group(1)

    proc, base = run()
    try:
        created = httpx.post(f"{base}/_sandbox/users", json={"username": "cli_kept"})
        assert created.status_code == 201
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    proc, base = run()
    try:
        names = [u["username"] for u in httpx.get(f"{base}/_sandbox/users").json()["data"]]
        assert "cli_kept" in names
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    help_text = subprocess.run(
        [str(exe), "x-sandbox", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert f"default {DEFAULT_PORT}" in help_text


def test_changes_are_saved_soon_without_a_stop(state_file: Path) -> None:
    server = _start(state_file)
    try:
        resp = httpx.post(f"{server.base_url}/_sandbox/users", json={"username": "saved_soon"})
        assert resp.status_code == 201
        give_up = time.monotonic() + 10
        names: list[str] = []
        while time.monotonic() < give_up:
            if state_file.exists():
                names = [u["username"] for u in json.loads(state_file.read_text())["users"]]
                if "saved_soon" in names:
                    break
            time.sleep(0.02)
        assert "saved_soon" in names
    finally:
        server.stop()
