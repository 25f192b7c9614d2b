"""Builds the process: pool, interceptors, servicers, health and reflection.

``GrpcApp`` is the production composition. Tests start the same object on port 0,
so they exercise the real interceptor chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from mktx.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    ai_pb2,
    ai_pb2_grpc,
    analytics_pb2,
    analytics_pb2_grpc,
    automation_pb2,
    automation_pb2_grpc,
    campaigns_pb2,
    campaigns_pb2_grpc,
    contacts_pb2,
    contacts_pb2_grpc,
    conversations_pb2,
    conversations_pb2_grpc,
    merchants_pb2,
    merchants_pb2_grpc,
    publishing_pb2,
    publishing_pb2_grpc,
    segments_pb2,
    segments_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
)

from .core.auth import TokenVerifier
from .core.db import DatabaseProbe, DatabaseState
from .deps import Deps
from .interceptors import (
    REFUSAL,
    AuthInterceptor,
    DecodeInterceptor,
    ErrorMappingInterceptor,
    GatedMethods,
    InterceptorChain,
    LoggingInterceptor,
    MetricsInterceptor,
    RateLimitInterceptor,
    UnitOfWorkInterceptor,
    ValidationInterceptor,
    chained_handler,
)
from .interceptors.drain import LongStreams
from .reflection import DocumentedReflectionServicer
from .services.accounts import AccountsServicer
from .services.ai import AIServicer
from .services.analytics import AnalyticsServicer
from .services.automation import AutomationServicer
from .services.campaigns import CampaignsServicer
from .services.contacts import ContactsServicer
from .services.conversations import ConversationsServicer
from .services.merchants import MerchantsServicer
from .services.publishing import PublishingServicer
from .services.segments import SegmentsServicer
from .services.templates import TemplatesServicer
from .services.unimplemented import complete

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceEntry:
    descriptor: ServiceDescriptor
    generated_base: type
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    implementation: Callable[[Deps], Any] | None


def _entry(pb2: Any, pb2_grpc: Any, name: str, impl: Callable[[Deps], Any] | None) -> ServiceEntry:
    return ServiceEntry(
        descriptor=pb2.DESCRIPTOR.services_by_name[name],
        generated_base=getattr(pb2_grpc, f"{name}Servicer"),
        add_to_server=getattr(pb2_grpc, f"add_{name}Servicer_to_server"),
        implementation=impl,
    )


#: Every service of the contract, with its implementation when it has one.
SERVICES: list[ServiceEntry] = [
    _entry(accounts_pb2, accounts_pb2_grpc, "AccountsService", AccountsServicer),
    _entry(templates_pb2, templates_pb2_grpc, "TemplatesService", TemplatesServicer),
    _entry(contacts_pb2, contacts_pb2_grpc, "ContactsService", ContactsServicer),
    _entry(
        conversations_pb2, conversations_pb2_grpc, "ConversationsService", ConversationsServicer
    ),
    _entry(segments_pb2, segments_pb2_grpc, "SegmentsService", SegmentsServicer),
    _entry(merchants_pb2, merchants_pb2_grpc, "MerchantsService", MerchantsServicer),
    _entry(campaigns_pb2, campaigns_pb2_grpc, "CampaignsService", CampaignsServicer),
    _entry(automation_pb2, automation_pb2_grpc, "AutomationService", AutomationServicer),
    _entry(ai_pb2, ai_pb2_grpc, "AIService", AIServicer),
    _entry(publishing_pb2, publishing_pb2_grpc, "PublishingService", PublishingServicer),
    _entry(analytics_pb2, analytics_pb2_grpc, "AnalyticsService", AnalyticsServicer),
]


class _ChainedRegistrar:
    """Receives a generated ``add_*_to_server`` call and registers its methods as
    generic handlers, each wrapped in the interceptor chain.

    Generic only: grpc.aio's accept loop keeps one pending request future per
    *registered* method and runs ``asyncio.wait`` over all of them for every RPC it
    accepts (with ~85 methods that was ~6% of GetTemplate's server CPU); generic
    handlers resolve the same methods through one pending future, and unknown methods
    still get UNIMPLEMENTED. Wrapped at registration: see ``chained_handler``.
    """

    def __init__(
        self,
        server: grpc.aio.Server,
        chain: InterceptorChain,
        streams: LongStreams,
        verifier: TokenVerifier,
    ) -> None:
        self._chain = chain
        self._streams = streams
        # One lookup for every service (see GatedMethods), registered once; methods
        # are added to it as the generated code registers them, before start.
        self._methods = GatedMethods(verifier.verify)
        server.add_generic_rpc_handlers((self._methods,))

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        # The generated code also calls add_registered_method_handlers with the same
        # methods; those are the ones registered (wrapped), so this is ignored.
        pass

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        wrapped = {
            name: chained_handler(self._chain, handler, f"/{service}/{name}", self._streams)
            for name, handler in handlers.items()
        }
        # Looked up through GatedMethods: calls without a valid token are refused unread.
        refusals = {
            name: chained_handler(self._chain, REFUSAL, f"/{service}/{name}") for name in handlers
        }
        self._methods.add(service, wrapped, refusals)


class GrpcApp:
    """The gRPC server with its interceptor chain, health and reflection.

    Lifecycle: ``await start()`` binds and serves; ``await stop()`` drains (see
    there). Health follows the database: a probe every ``health_interval`` seconds
    (on a connection of its own: a saturated pool is not an unreachable database)
    sets every service SERVING or NOT_SERVING. The pool belongs to the caller.
    """

    def __init__(self, deps: Deps, *, host: str, port: int) -> None:
        self.deps = deps
        self.health = HealthServicer()
        #: The health probe's finding, which calls consult (short pool waits when down).
        self.database = DatabaseState()
        self._probe = DatabaseProbe(str(deps.pool.conninfo))
        verifier = TokenVerifier(deps.settings)
        self.chain = InterceptorChain(
            [
                LoggingInterceptor(),
                *([MetricsInterceptor()] if deps.settings.metrics else []),
                ErrorMappingInterceptor(),
                DecodeInterceptor(),
                AuthInterceptor(verifier),
                RateLimitInterceptor(deps.settings, deps.pool),
                ValidationInterceptor(),
                UnitOfWorkInterceptor(
                    deps.pool,
                    wait_max=deps.settings.db_wait_max,
                    database=self.database,
                    coalesce_reads=deps.settings.coalesce_reads,
                ),
            ]
        )
        self.server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 1),
                ("grpc.max_receive_message_length", deps.settings.grpc_max_receive_bytes),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ],
        )
        names = [
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ]
        # Every method, ours and health and reflection alike, goes through the chain
        # (see _ChainedRegistrar).
        self.streams = LongStreams()
        generic_only: Any = _ChainedRegistrar(self.server, self.chain, self.streams, verifier)
        for entry in SERVICES:
            impl_cls = entry.implementation or entry.generated_base
            cls = complete(impl_cls, entry.generated_base, entry.descriptor)  # type: ignore[arg-type]
            servicer = cls(deps) if entry.implementation else cls()
            entry.add_to_server(servicer, generic_only)
            names.append(entry.descriptor.full_name)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, generic_only)
        # What enable_server_reflection does for an aio server, minus registration,
        # with the contract's comments (see reflection.py).
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            DocumentedReflectionServicer(names), generic_only
        )
        self.service_names = names
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"could not bind gRPC to {host}:{port}")
        self._monitor: asyncio.Task[None] | None = None
        self._healthy = False

    async def start(self) -> None:
        await self.server.start()
        self._healthy = self.database.reachable = await self._db_ok()
        await self._set_health(self._healthy)
        self._monitor = asyncio.create_task(self._watch_db(), name="health-db-monitor")
        log.debug("gRPC listening on port %d", self.port)

    async def stop(self, grace: float, drain_delay: float = 0.0) -> None:
        """Drain, in the order balancers and clients can see:

        1. health answers NOT_SERVING at once (Check, and every open Watch);
        2. for ``drain_delay`` seconds the listener stays open and calls are served
           as usual, so a balancer polling Check takes the instance out;
        3. then the listener closes (new calls are refused), open response streams
           (Watch, WatchConversations) end with UNAVAILABLE so their clients
           reconnect elsewhere, and in-flight unary calls get ``grace`` seconds;
        4. it returns as soon as nothing is in flight.
        """
        await self.health.enter_graceful_shutdown()
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if drain_delay > 0:
            log.info("draining: NOT_SERVING for %.1fs before closing the listener", drain_delay)
            await asyncio.sleep(drain_delay)
        stopping = asyncio.create_task(self.server.stop(grace), name="grpc-stop")
        # Let the server stop accepting first, so an ended stream's client cannot
        # reconnect here; streams that start after this are refused by the chain.
        await asyncio.sleep(0)
        self.streams.end_all()
        await stopping
        await self._probe.close()

    async def _db_ok(self) -> bool:
        within = max(0.2, min(1.0, self.deps.settings.health_interval * 2))
        return await self._probe.ok(within)

    async def _set_health(self, ok: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ok
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def _watch_db(self) -> None:
        interval = self.deps.settings.health_interval
        while True:
            await asyncio.sleep(interval)
            ok = await self._db_ok()
            if ok != self._healthy:
                log.warning("database %s", "reachable again" if ok else "unreachable")
                self.database.reachable = ok
                await self._set_health(ok)
                self._healthy = ok
