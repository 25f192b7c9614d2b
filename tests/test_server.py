"""The server composition: auth, error mapping, health, reflection, logging, shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from helpers import expect_error

from mktx.v1 import (
    ai_pb2,
    ai_pb2_grpc,
    automation_pb2,
    automation_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
)
from mktx_grpc.core.auth import TokenVerifier, mint_token
from mktx_grpc.core.db import make_pool
from mktx_grpc.core.logs import JsonFormatter
from mktx_grpc.deps import close_deps, make_deps
from mktx_grpc.server import GrpcApp

UNAUTH = grpc.StatusCode.UNAUTHENTICATED


def get_req():
    return templates_pb2.GetTemplateRequest(id=str(uuid.uuid4()))


@pytest.fixture
def templates(api):
    return templates_pb2_grpc.TemplatesServiceStub(api.channel)


async def test_missing_token_is_unauthenticated(templates):
    await expect_error(templates.GetTemplate(get_req()), UNAUTH, "MISSING_CREDENTIALS")


async def test_wrong_scheme_is_unauthenticated(templates, api, merchant):
    md = [("authorization", f"Basic {api.token(merchant)}")]
    await expect_error(templates.GetTemplate(get_req(), metadata=md), UNAUTH, "INVALID_TOKEN")


async def test_forged_token_is_unauthenticated(templates, merchant):
    forged = jwt.encode(
        {"merchant_id": str(merchant), "sub": "x", "exp": int(time.time()) + 60},
        "not-the-server-secret-0123456789abcdef",
        algorithm="HS256",
    )
    md = [("authorization", f"Bearer {forged}")]
    await expect_error(templates.GetTemplate(get_req(), metadata=md), UNAUTH, "INVALID_TOKEN")


async def test_alg_none_token_is_unauthenticated(templates, merchant):
    unsigned = jwt.encode(
        {"merchant_id": str(merchant), "exp": int(time.time()) + 60}, None, algorithm="none"
    )
    md = [("authorization", f"Bearer {unsigned}")]
    await expect_error(templates.GetTemplate(get_req(), metadata=md), UNAUTH, "INVALID_TOKEN")


async def test_expired_token_is_unauthenticated(templates, api, merchant):
    expired = mint_token(api.settings, merchant, ttl_seconds=-120)
    md = [("authorization", f"Bearer {expired}")]
    await expect_error(templates.GetTemplate(get_req(), metadata=md), UNAUTH, "TOKEN_EXPIRED")


async def test_token_without_merchant_is_unauthenticated(templates, api):
    token = jwt.encode(
        {"sub": "x", "exp": int(time.time()) + 60}, api.settings.jwt_secret, algorithm="HS256"
    )
    md = [("authorization", f"Bearer {token}")]
    await expect_error(templates.GetTemplate(get_req(), metadata=md), UNAUTH, "INVALID_TOKEN")


def test_rs256_tokens_verify_with_public_key(settings):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rs_settings = settings.replace(jwt_public_key=public_pem)
    merchant = uuid.uuid4()
    token = mint_token(rs_settings, merchant, private_key=private_pem)
    assert TokenVerifier(rs_settings).verify(token).merchant_id == merchant
    # An HS256 token signed with the public key text (algorithm confusion) is refused.
    hs = jwt.encode(
        {"merchant_id": str(merchant), "exp": int(time.time()) + 60},
        settings.jwt_secret,
        algorithm="HS256",
    )
    with pytest.raises(Exception, match="invalid token"):
        TokenVerifier(rs_settings).verify(hs)


async def test_health_is_public_and_serving(api):
    health = health_pb2_grpc.HealthStub(api.channel)
    resp = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    resp = await health.Check(health_pb2.HealthCheckRequest(service="mktx.v1.TemplatesService"))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_every_service(api):
    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="mktx.v1.TemplatesService"
        )

    responses = [r async for r in stub.ServerReflectionInfo(requests())]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {
        "mktx.v1.AccountsService",
        "mktx.v1.TemplatesService",
        "mktx.v1.ContactsService",
        "mktx.v1.ConversationsService",
        "mktx.v1.SegmentsService",
        "mktx.v1.CampaignsService",
        "mktx.v1.AutomationService",
        "mktx.v1.AIService",
        "grpc.health.v1.Health",
    } <= names
    assert responses[1].file_descriptor_response.file_descriptor_proto


async def test_unimplemented_rpcs_carry_error_info():
    # Every service is implemented now; the mechanism stays for RPCs added to the
    # contract before their servicer: a servicer without the method raises the domain
    # error, which the error interceptor turns into UNIMPLEMENTED + ErrorInfo.
    from mktx_grpc.core.errors import Unimplemented
    from mktx_grpc.services.unimplemented import complete

    class Partial(automation_pb2_grpc.AutomationServiceServicer):
        pass

    service = automation_pb2.DESCRIPTOR.services_by_name["AutomationService"]
    done = complete(Partial, automation_pb2_grpc.AutomationServiceServicer, service)
    with pytest.raises(Unimplemented) as raised:
        await done().GetFlow(automation_pb2.GetFlowRequest(), None)
    assert raised.value.metadata == {"method": "mktx.v1.AutomationService/GetFlow"}


async def test_automation_and_ai_are_served_and_require_authentication(api, merchant):
    md = api.auth(merchant)
    automation = automation_pb2_grpc.AutomationServiceStub(api.channel)
    await expect_error(
        automation.GetFlow(automation_pb2.GetFlowRequest(id=str(uuid.uuid4())), metadata=md),
        grpc.StatusCode.NOT_FOUND,
    )
    ai = ai_pb2_grpc.AIServiceStub(api.channel)
    settings = await ai.GetAISettings(ai_pb2.GetAISettingsRequest(), metadata=md)
    assert settings.etag
    await expect_error(
        automation.GetFlow(automation_pb2.GetFlowRequest(id=str(uuid.uuid4()))), UNAUTH
    )
    await expect_error(ai.GetAISettings(ai_pb2.GetAISettingsRequest()), UNAUTH)


async def test_unexpected_error_is_internal_without_internals(api, templates, merchant, db, caplog):
    # Break the schema under the running server: the query fails inside psycopg.
    await db.execute("ALTER TABLE templates RENAME TO templates_gone")
    with caplog.at_level(logging.ERROR, logger="mktx_grpc.errors"):
        err = await expect_error(
            templates.GetTemplate(get_req(), metadata=api.auth(merchant)),
            grpc.StatusCode.INTERNAL,
            "INTERNAL",
        )
    assert "templates" not in err.message and "Traceback" not in err.message
    assert err.message.startswith("internal error (request id ")
    # The traceback went to the log instead, tagged with the same request id.
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and err.info.metadata["request_id"] in logged[0].getMessage()


async def test_failed_write_rolls_back(api, templates, merchant, db):
    """A write that fails after its first statement leaves nothing behind."""
    md = api.auth(merchant)
    # Make the request-id bookkeeping (the create's last statement) fail.
    await db.execute(
        "ALTER TABLE idempotency_keys ADD CONSTRAINT no_resources CHECK (resource_id IS NULL)"
    )
    req = templates_pb2.CreateTemplateRequest(
        template=templates_pb2.Template(
            name="rollback", type=templates_pb2.TEMPLATE_TYPE_TEXT, content="x"
        ),
        request_id="r-1",
    )
    await expect_error(templates.CreateTemplate(req, metadata=md), grpc.StatusCode.INTERNAL)
    count = await (await db.execute("SELECT count(*) FROM templates")).fetchone()
    keys = await (await db.execute("SELECT count(*) FROM idempotency_keys")).fetchone()
    assert (count[0], keys[0]) == (0, 0)


async def test_one_structured_log_line_per_rpc(api, templates, merchant, caplog):
    md = [*api.auth(merchant), ("x-request-id", "req-abc-123")]
    with caplog.at_level(logging.INFO, logger="mktx_grpc.rpc"):
        await expect_error(templates.GetTemplate(get_req(), metadata=md), grpc.StatusCode.NOT_FOUND)
    lines = [r for r in caplog.records if r.name == "mktx_grpc.rpc"]
    assert len(lines) == 1
    record = json.loads(JsonFormatter().format(lines[0]))
    assert record["rpc_method"] == "/mktx.v1.TemplatesService/GetTemplate"
    assert record["code"] == "NOT_FOUND"
    assert record["merchant_id"] == str(merchant)
    assert record["request_id"] == "req-abc-123"
    assert record["duration_ms"] >= 0


async def test_graceful_shutdown_drains_and_reports_not_serving(settings):
    pool = make_pool(settings.database_url, min_size=1, max_size=4)
    await pool.open(wait=True)
    deps = make_deps(settings, pool)
    app = GrpcApp(deps, host="127.0.0.1", port=0)
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    health = health_pb2_grpc.HealthStub(channel)
    templates = templates_pb2_grpc.TemplatesServiceStub(channel)
    md = [("authorization", f"Bearer {mint_token(settings, uuid.uuid4())}")]
    try:
        assert (
            await health.Check(health_pb2.HealthCheckRequest())
        ).status == health_pb2.HealthCheckResponse.SERVING
        # An in-flight RPC (held by a lock on the row it needs) must finish during the grace.
        created = await templates.CreateTemplate(
            templates_pb2.CreateTemplateRequest(
                template=templates_pb2.Template(
                    name="t", type=templates_pb2.TEMPLATE_TYPE_TEXT, content="x"
                )
            ),
            metadata=md,
        )
        async with pool.connection() as locker, locker.transaction():
            await locker.execute("SELECT 1 FROM templates WHERE id = %s FOR UPDATE", (created.id,))
            in_flight = asyncio.ensure_future(
                templates.DeleteTemplate(
                    templates_pb2.DeleteTemplateRequest(id=created.id), metadata=md
                )
            )
            await asyncio.sleep(0.2)
            stopping = asyncio.ensure_future(app.stop(grace=5))
            status = None
            for _ in range(50):
                status = app.health._server_status.get("")
                if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
                await asyncio.sleep(0.02)
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert not in_flight.done()
        await in_flight  # completed successfully once the lock was released
        await stopping
    finally:
        await channel.close()
        await close_deps(deps)
        await pool.close()


def test_every_implemented_rpc_is_in_the_method_table():
    """Per-method facts live in one table; an implemented RPC missing from it would
    silently run without a database connection or validation."""
    from mktx_grpc.methods import METHODS
    from mktx_grpc.server import SERVICES

    missing = [
        f"/{e.descriptor.full_name}/{m.name}"
        for e in SERVICES
        if e.implementation is not None
        for m in e.descriptor.methods
        if f"/{e.descriptor.full_name}/{m.name}" not in METHODS
    ]
    assert missing == []
    implemented = {e.descriptor.full_name for e in SERVICES if e.implementation}
    stale = [name for name in METHODS if name.split("/")[1] not in implemented]
    assert stale == []
