"""The sidecar's HTTP contract: CRC, signature, size, shape, durability, dedupe,
health and metrics, over real HTTP to uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from webhook_helpers import (
    FAST,
    Account,
    Db,
    Sidecar,
    StartSidecar,
    dm_delivery,
    dm_event,
    encode,
    new_x_id,
    sign,
    wait_for,
)

from mktx_grpc.deps import Deps
from mktx_grpc.webhooks.app import create_webhook_app
from mktx_grpc.webhooks.metrics import WebhookMetrics
from mktx_grpc.x.signatures import crc_response_token


async def test_crc_answers_with_the_consumer_secret(sidecar: Sidecar) -> None:
    resp = await sidecar.http.get(sidecar.webhook_url, params={"crc_token": "challenge-123"})
    assert resp.status_code == 200
    assert resp.json() == {"response_token": crc_response_token(sidecar.secret, "challenge-123")}
    assert resp.json()["response_token"].startswith("sha256=")


async def test_crc_without_token_is_400(sidecar: Sidecar) -> None:
    assert (await sidecar.http.get(sidecar.webhook_url)).status_code == 400
    resp = await sidecar.http.get(sidecar.webhook_url, params={"crc_token": ""})
    assert resp.status_code == 400


async def test_bad_signature_is_401_and_stores_nothing(
    sidecar: Sidecar, account: Account, q: Db
) -> None:
    payload = dm_delivery(account.x_user_id, dm_event(new_x_id(), account.x_user_id))
    resp = await sidecar.post(payload, secret="not-the-consumer-secret")
    assert resp.status_code == 401
    # A valid signature over a different body does not pass either.
    body = encode(payload)
    headers = sign(sidecar.secret, body + b" ")
    resp = await sidecar.http.post(sidecar.webhook_url, content=body, headers=headers)
    assert resp.status_code == 401
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 0
    assert await q.value("SELECT count(*) FROM contacts") == 0
    assert sidecar.metrics.rejected["bad_signature"] == 2


async def test_missing_signature_is_401(sidecar: Sidecar, account: Account, q: Db) -> None:
    body = encode(dm_delivery(account.x_user_id, dm_event(new_x_id(), account.x_user_id)))
    resp = await sidecar.http.post(
        sidecar.webhook_url, content=body, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 401
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 0
    assert sidecar.metrics.rejected["missing_signature"] == 1


async def test_oversize_body_is_413(start_sidecar: StartSidecar, account: Account, q: Db) -> None:
    sc = await start_sidecar(max_body_bytes=2048)
    big = dm_delivery(account.x_user_id, dm_event(new_x_id(), account.x_user_id, "x" * 4096))
    resp = await sc.post(big)  # signed correctly, but too large
    assert resp.status_code == 413
    # Without Content-Length (chunked), the streamed body is counted.
    body = encode(big)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    resp = await sc.http.post(sc.webhook_url, content=chunks(), headers=sign(sc.secret, body))
    assert resp.status_code == 413
    # Just under the limit is fine.
    small = dm_delivery(account.x_user_id, dm_event(new_x_id(), account.x_user_id, "hi"))
    assert (await sc.post(small)).status_code == 200
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 1
    assert sc.metrics.rejected["too_large"] == 2


async def test_malformed_bodies_are_400(sidecar: Sidecar, q: Db) -> None:
    for body, reason in [
        (b"{not json", "bad_json"),
        (b"\xff\xfe\x00", "bad_json"),
        (b"[1, 2]", "bad_payload"),
        (b'{"direct_message_events": []}', "bad_payload"),  # no for_user_id
    ]:
        resp = await sidecar.post(body)
        assert resp.status_code == 400, body
        assert sidecar.metrics.rejected[reason] >= 1
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 0


async def test_delivery_is_durable_before_200(sidecar: Sidecar, account: Account, q: Db) -> None:
    events = [dm_event(new_x_id(), account.x_user_id, f"m{i}") for i in range(3)]
    resp = await sidecar.post(dm_delivery(account.x_user_id, *events))
    assert resp.status_code == 200
    assert resp.json() == {"recorded": 3, "new": 3}
    # Read right after the 200, from another connection: all three rows are there.
    rows = await q.all("SELECT event_key, for_user_id, event_type, payload FROM webhook_inbox")
    assert sorted(r["event_key"] for r in rows) == sorted(
        f"{account.x_user_id}:dm:{e['id']}" for e in events
    )
    for r in rows:
        assert r["for_user_id"] == account.x_user_id
        assert r["event_type"] == "direct_message_events"
        sender = r["payload"]["event"]["message_create"]["sender_id"]
        assert set(r["payload"]["users"]) == {sender, account.x_user_id}


async def test_same_payload_twice_gives_one_message(
    sidecar: Sidecar, account: Account, q: Db
) -> None:
    payload = dm_delivery(account.x_user_id, dm_event(new_x_id(), account.x_user_id, "once"))
    first = await sidecar.post(payload)
    second = await sidecar.post(payload)
    assert first.json()["new"] == 1 and second.json()["new"] == 0
    await wait_for(
        lambda: q.value("SELECT count(*) FROM webhook_inbox WHERE processed_at IS NOT NULL"),
        what="processing",
    )
    third = await sidecar.post(payload)  # after processing, too
    assert third.status_code == 200 and third.json()["new"] == 0
    await sidecar.processor.wait_idle()
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 1
    assert await q.value("SELECT count(*) FROM messages") == 1
    assert await q.value("SELECT message_count FROM conversations") == 1
    assert sidecar.metrics.duplicates == 2


async def test_unhandled_kinds_are_counted_not_stored(
    sidecar: Sidecar, account: Account, q: Db
) -> None:
    payload = {
        "for_user_id": account.x_user_id,
        "direct_message_indicate_typing_events": [{"created_timestamp": "1", "sender_id": "5"}],
    }
    resp = await sidecar.post(payload)
    assert resp.status_code == 200 and resp.json() == {"recorded": 0, "new": 0}
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 0
    assert sidecar.metrics.unhandled["direct_message_indicate_typing_events"] == 1


async def test_healthz(sidecar: Sidecar) -> None:
    resp = await sidecar.http.get(f"{sidecar.url}/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


async def test_metrics_exposition(sidecar: Sidecar, account: Account, q: Db) -> None:
    payload = dm_delivery(account.x_user_id, dm_event(new_x_id(), account.x_user_id))
    assert (await sidecar.post(payload)).status_code == 200
    assert (await sidecar.post(payload)).status_code == 200
    assert (await sidecar.post(payload, secret="wrong")).status_code == 401
    await wait_for(
        lambda: q.value("SELECT count(*) FROM webhook_inbox WHERE processed_at IS NOT NULL"),
        what="processing",
    )
    await sidecar.processor.wait_idle()
    resp = await sidecar.http.get(f"{sidecar.url}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    # Parsed as Prometheus does (prometheus-client's text parser).
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    samples = {
        (smp.name, tuple(sorted(smp.labels.items()))): smp.value
        for f in families.values()
        for smp in f.samples
    }
    assert samples[("mktx_webhook_requests_total", ())] == 3
    assert (
        samples[("mktx_webhook_events_received_total", (("type", "direct_message_events"),))] == 1
    )
    assert samples[("mktx_webhook_events_duplicate_total", ())] == 1
    assert samples[("mktx_webhook_rejected_total", (("reason", "bad_signature"),))] == 1
    assert samples[("mktx_webhook_events_processed_total", (("outcome", "PROCESSED"),))] == 1
    assert samples[("mktx_webhook_events_failed_total", ())] == 0
    assert samples[("mktx_webhook_processing_lag_seconds_count", ())] == 1
    assert samples[("mktx_webhook_processing_lag_seconds_bucket", (("le", "+Inf"),))] == 1
    assert samples[("mktx_webhook_inbox_pending", ())] == 0
    assert families["mktx_webhook_processing_lag_seconds"].type == "histogram"


async def test_without_lifespan_processing_starts_on_first_delivery(
    deps: Deps, settings: object, account: Account, q: Db
) -> None:
    """``serve`` runs uvicorn with lifespan off; ASGITransport has no lifespan either."""
    app = create_webhook_app(
        deps, "sandbox-consumer-secret", options=FAST, metrics=WebhookMetrics()
    )
    payload = encode(dm_delivery(account.x_user_id, dm_event(new_x_id(), account.x_user_id)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sidecar"
    ) as http:
        resp = await http.post(
            "/webhooks/twitter", content=payload, headers=sign("sandbox-consumer-secret", payload)
        )
        assert resp.status_code == 200
        await wait_for(lambda: q.value("SELECT count(*) FROM messages"), what="message")
    await app.state.processor.stop()


async def test_empty_consumer_secret_refuses_everything(deps: Deps, q: Db) -> None:
    app = create_webhook_app(deps, "", options=FAST, metrics=WebhookMetrics())
    body = b'{"for_user_id": "1"}'
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sidecar"
    ) as http:
        resp = await http.post("/webhooks/twitter", content=body, headers=sign("", body))
        assert resp.status_code == 401
        resp = await http.get("/webhooks/twitter", params={"crc_token": "t"})
        assert resp.status_code == 503
    assert await q.value("SELECT count(*) FROM webhook_inbox") == 0


def test_options_come_from_settings_when_present() -> None:
    from types import SimpleNamespace

    from mktx_grpc.webhooks.options import IngestOptions

    opts = IngestOptions.from_settings(
        SimpleNamespace(webhook_reopen_window=60.0, webhook_max_body_bytes=10, unrelated=1)
    )
    assert opts.reopen_window == 60.0 and opts.max_body_bytes == 10
    assert opts.claim_delay == IngestOptions().claim_delay
    assert IngestOptions.from_settings(object()) == IngestOptions()
