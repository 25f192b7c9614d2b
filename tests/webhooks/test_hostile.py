"""Hostile deliveries (issue 13 §4): no input answers 500, no signed delivery is
unstorable (so none is redelivered for ever), and slow clients are cut off. Over
real HTTP and raw sockets to uvicorn with the production configuration."""

from __future__ import annotations

import asyncio
import json

import pytest
from webhook_helpers import (
    Account,
    Db,
    Sidecar,
    StartSidecar,
    dm_delivery,
    dm_event,
    encode,
    new_x_id,
)

from mktx_grpc.webhooks.body import MAX_DEPTH, BadBody, parse_body


@pytest.mark.parametrize(
    "header",
    [
        "sha256=é".encode(),  # UTF-8 bytes
        b"sha256=\xff\xfe\x80",  # not UTF-8 at all
        "sha256=日本".encode(),
    ],
)
async def test_non_ascii_signature_is_401(
    sidecar: Sidecar, account: Account, q: Db, header: bytes
) -> None:
    body = encode(dm_delivery(account.x_user_id, dm_event(new_x_id(), account.x_user_id)))
    resp = await sidecar.http.post(
        sidecar.webhook_url,
        content=body,
        headers={"content-type": "application/json", "x-twitter-webhooks-signature": header},
    )
    assert resp.status_code == 401
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 0
    assert sidecar.metrics.rejected["bad_signature"] == 1


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 980, 5000, 100_000])
async def test_deeply_nested_signed_body_is_400(sidecar: Sidecar, q: Db, depth: int) -> None:
    inner = "[" * depth + "]" * depth
    body = f'{{"for_user_id":"1","direct_message_events":{inner}}}'.encode()
    resp = await sidecar.post(body)
    assert resp.status_code == 400
    assert resp.json() == {"error": "body is nested too deeply"}
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 0
    assert sidecar.metrics.rejected["too_deep"] == 1


async def test_nesting_up_to_the_limit_is_accepted(sidecar: Sidecar, q: Db) -> None:
    # The delivery object is level 1, the events array level 2.
    inner = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    body = f'{{"for_user_id":"1","follow_events":[{inner}]}}'.encode()
    assert (await sidecar.post(body)).status_code == 200
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 1


def _dm_with_text(account: Account, text_json: str) -> tuple[bytes, str]:
    """A signed-ready DM delivery whose message text is the raw JSON ``text_json``."""
    event_id = new_x_id()
    payload = dm_delivery(account.x_user_id, dm_event(event_id, account.x_user_id, "PLACEHOLDER"))
    raw = json.dumps(payload, separators=(",", ":"))
    assert raw.count('"PLACEHOLDER"') == 1
    return raw.replace('"PLACEHOLDER"', text_json).encode(), event_id


@pytest.mark.parametrize(
    ("text_json", "reason"),
    [
        ('"\\ud800"', "lone UTF-16 surrogate"),
        ('"a\\udfffb"', "lone UTF-16 surrogate"),
        ('"nul \\u0000 here"', "NUL character"),
        ("NaN", "NaN or Infinity"),
        ("Infinity", "NaN or Infinity"),
        ("-Infinity", "NaN or Infinity"),
        ("1e999", "NaN or Infinity"),
    ],
)
async def test_unstorable_signed_delivery_is_kept_as_bytes_dead_and_200(
    sidecar: Sidecar, account: Account, q: Db, text_json: str, reason: str
) -> None:
    body, _ = _dm_with_text(account, text_json)
    resp = await sidecar.post(body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"recorded": 1, "new": 1, "dead": 1}
    rows = await q.all(
        "SELECT for_user_id, event_type, payload, raw_body, outcome, processed_at,"
        " last_error FROM webhook_inbox"
    )
    assert len(rows) == 1
    row = rows[0]
    assert bytes(row["raw_body"]) == body  # exactly as received
    assert row["payload"] is None
    assert row["outcome"] == "DEAD"
    assert row["processed_at"] is not None
    assert reason in row["last_error"]
    assert row["for_user_id"] == account.x_user_id
    assert row["event_type"] == "unstorable"
    assert sidecar.metrics.unstorable == 1
    # X redelivers the same bytes: answered 200, nothing new.
    again = await sidecar.post(body)
    assert again.status_code == 200
    assert again.json()["new"] == 0
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 1
    # Nothing was applied.
    assert await q.value("SELECT count(*) FROM messages") == 0


async def test_unstorable_for_user_id_is_not_copied_into_the_row(sidecar: Sidecar, q: Db) -> None:
    body = b'{"for_user_id":"12\\u00003","follow_events":[]}'
    resp = await sidecar.post(body)
    assert resp.status_code == 200
    row = await q.one("SELECT for_user_id, raw_body FROM webhook_inbox")
    assert row is not None
    assert row["for_user_id"] == ""
    assert bytes(row["raw_body"]) == body


async def test_unstorable_body_with_a_bad_signature_stores_nothing(
    sidecar: Sidecar, account: Account, q: Db
) -> None:
    body, _ = _dm_with_text(account, '"\\u0000"')
    resp = await sidecar.post(body, secret="wrong-secret")
    assert resp.status_code == 401
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 0


def test_parse_body_contract() -> None:
    assert parse_body(b'{"a": [1, 2.5, "x"]}').unstorable == ""
    assert parse_body(b'{"a": NaN}').value == {"a": None}
    assert "NUL" in parse_body(b'{"\\u0000": 1}').unstorable  # keys too
    for bad in (b"{", b"\xff", b"1" * 5000, b"[" * 10_000):
        with pytest.raises(BadBody):
            parse_body(bad)


# ------------------------------------------------------------------ slow clients


async def _open(sc: Sidecar) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = sc.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def _closed_by_server(reader: asyncio.StreamReader, *, within: float = 20.0) -> bytes:
    """Read until the server closes the connection; what it sent before closing.
    ``within`` only keeps a broken build from hanging the suite."""
    data = b""
    async with asyncio.timeout(within):
        while chunk := await reader.read(4096):
            data += chunk
    return data


async def test_slow_headers_are_cut_off(start_sidecar: StartSidecar) -> None:
    sc = await start_sidecar(receive_timeout=0.5)
    reader, writer = await _open(sc)
    writer.write(b"POST /webhooks/twitter HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()

    async def trickle() -> None:
        # One header byte at a time, each well inside any idle timeout.
        try:
            for b in b"X-Slow: " + b"a" * 1000:
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(0.05)
        except OSError:  # the server closed the connection
            pass

    task = asyncio.create_task(trickle())
    try:
        assert await _closed_by_server(reader) == b""  # cut off, no response at all
    finally:
        task.cancel()
        writer.close()


async def test_idle_connection_without_a_request_is_cut_off(start_sidecar: StartSidecar) -> None:
    sc = await start_sidecar(receive_timeout=0.5)
    reader, writer = await _open(sc)
    try:
        assert await _closed_by_server(reader) == b""
    finally:
        writer.close()


async def test_slow_body_gets_408(start_sidecar: StartSidecar, q: Db) -> None:
    sc = await start_sidecar(receive_timeout=0.5)
    reader, writer = await _open(sc)
    writer.write(
        b"POST /webhooks/twitter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"for_user_id":'
    )
    await writer.drain()
    try:
        response = await _closed_by_server(reader)
    finally:
        writer.close()
    assert response.startswith(b"HTTP/1.1 408 ")
    assert sc.metrics.rejected["slow_body"] == 1
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 0


async def test_a_complete_request_after_a_quick_start_is_served(
    start_sidecar: StartSidecar, account: Account, q: Db
) -> None:
    """The deadlines do not hurt ordinary clients, nor keep-alive reuse."""
    sc = await start_sidecar(receive_timeout=0.5)
    for _ in range(3):
        body = encode(dm_delivery(account.x_user_id, dm_event(new_x_id(), account.x_user_id)))
        assert (await sc.post(body)).status_code == 200
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 3


async def test_connections_beyond_the_limit_get_503(start_sidecar: StartSidecar) -> None:
    sc = await start_sidecar(receive_timeout=30.0, max_connections=3)
    held: list[asyncio.StreamWriter] = []
    try:
        for _ in range(3):
            _, writer = await _open(sc)
            writer.write(b"POST /webhooks/twitter HTTP/1.1\r\nHost: x\r\n")  # never finished
            await writer.drain()
            held.append(writer)
        # uvicorn's own refusal (plain text), not the app's database 503 (JSON). The
        # server registers accepted connections asynchronously: ask a few times.
        for _ in range(50):
            resp = await sc.http.get(f"{sc.url}/healthz")
            if resp.status_code == 503:
                break
            await asyncio.sleep(0.05)
        assert resp.status_code == 503
        assert resp.text == "Service Unavailable"
    finally:
        for w in held:
            w.close()
    # Once the held connections go, the sidecar serves again.
    for _ in range(50):
        resp = await sc.http.get(f"{sc.url}/healthz")
        if resp.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert resp.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        b"crc_token=%00",
        b"crc_token=%ff%fe",
        b"crc_token=%ed%a0%80",  # an encoded lone surrogate
        "crc_token=日本".encode(),
        b"crc_token=" + b"a" * 5000,
        b"crc_token=a&crc_token=b",
        b"%zz=1",
    ],
)
async def test_hostile_crc_queries_never_fail(sidecar: Sidecar, query: bytes) -> None:
    reader, writer = await _open(sidecar)
    writer.write(
        b"GET /webhooks/twitter?" + query + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    try:
        response = await _closed_by_server(reader)
    finally:
        writer.close()
    status = int(response.split(b" ", 2)[1])
    assert status in (200, 400), response[:200]
