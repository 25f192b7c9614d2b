"""The process's Prometheus metrics (``prometheus-client``), and their exposition.

Metrics are counted where things happen: the gRPC interceptor
(``interceptors/metrics.py``), the connection pool (:class:`InstrumentedPool`), the
X transport (``x/transport.py``). They are created on first use by :func:`get`,
never at import, because ``prometheus-client`` decides at the first metric whether
it counts in memory or in per-process files:

- ``serve`` calls :func:`use_multiprocess_dir` before anything else, so every
  process of ``--workers N`` writes its counts to files in one directory (the
  library's multiprocess mode) and a scrape of the primary process adds them up;
- everywhere else (``mktx-grpc worker``, tests) they count in memory, in this
  module's own registry (the library's global default registry is left alone).

A scrape (:func:`exposition`) renders these together with collectors that read
state at scrape time (the webhook counters, database queue depths; see
``mktx_grpc.metrics``). Per-call costs are kept small: callers look up a labelled
child once and keep it, so a call pays for the increments only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg_pool import AsyncConnectionPool

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

__all__ = [
    "MULTIPROC_ENV",
    "InstrumentedPool",
    "ProcessMetrics",
    "exposition",
    "get",
    "multiprocess_dir",
    "use_multiprocess_dir",
]

#: The variable ``prometheus-client`` reads to count in per-process files.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds: gRPC call latency (sub-millisecond reads up to slow X-calling RPCs).
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
               10.0, 30.0)  # fmt: skip
#: Seconds: waiting for a pooled connection (zero almost always; seconds when starved).
POOL_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
#: Seconds: one HTTP exchange with X.
X_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Seconds between samples of the pool's size, use and queue.
POOL_SAMPLE_INTERVAL = 2.0


def use_multiprocess_dir(path: Path) -> None:
    """Count in files under ``path`` (created, emptied of a previous run's files), for
    this process and the processes it starts. Must run before the first metric
    exists; raises RuntimeError otherwise (the library's choice is already made)."""
    if "prometheus_client.values" in sys.modules:
        raise RuntimeError("use_multiprocess_dir must run before prometheus_client is imported")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def multiprocess_dir() -> Path | None:
    """The directory processes count in, or None when counting in memory."""
    raw = os.environ.get(MULTIPROC_ENV)
    return Path(raw) if raw else None


def mark_process_dead(pid: int) -> None:
    """Forget a stopped process's live gauges (in-flight calls, pool use)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class ProcessMetrics:
    """Every metric this process counts. Get the process's instance with :func:`get`."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        #: Where in-memory counts live (unused in multiprocess mode: files are read).
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rpc_calls = Counter(
            "mktx_grpc_calls",
            "gRPC calls finished, by full method name and status code.",
            ["method", "code"],
            registry=r,
        )
        self.rpc_duration = Histogram(
            "mktx_grpc_call_duration_seconds",
            "gRPC call latency in the server (interceptor chain included), by method and code.",
            ["method", "code"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self.rpc_in_flight = Gauge(
            "mktx_grpc_calls_in_flight",
            "gRPC calls being handled now (streams while open), by method.",
            ["method"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.pool_size = Gauge(
            "mktx_db_pool_connections",
            "Connections the database pools hold (sampled every 2 s).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.pool_in_use = Gauge(
            "mktx_db_pool_connections_in_use",
            "Pooled connections lent out (sampled every 2 s).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.pool_waiting = Gauge(
            "mktx_db_pool_requests_waiting",
            "Requests queued for a pooled connection (sampled every 2 s).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.pool_max = Gauge(
            "mktx_db_pool_max_connections",
            "The pools' maximum size (MKTX_POOL_MAX_SIZE per process).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.pool_wait = Histogram(
            "mktx_db_pool_wait_seconds",
            "Time spent waiting for a pooled connection.",
            buckets=POOL_WAIT_BUCKETS,
            registry=r,
        )
        self.x_requests = Counter(
            "mktx_x_requests",
            "HTTP exchanges with X (each attempt), by endpoint and outcome (ok, "
            "rate_limited, client_error, server_error, transport_error, breaker_open).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.x_rate_limited = Counter(
            "mktx_x_rate_limited",
            "429 answers from X, by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.x_duration = Histogram(
            "mktx_x_request_duration_seconds",
            "Duration of one HTTP exchange with X, by endpoint.",
            ["endpoint"],
            buckets=X_BUCKETS,
            registry=r,
        )
        self.x_breaker = Gauge(
            "mktx_x_breaker_state",
            "X circuit breaker per host as of the last call: 0 closed, 1 half-open, 2 open "
            "(the worst process).",
            ["host"],
            multiprocess_mode="max",
            registry=r,
        )


_metrics: ProcessMetrics | None = None


def get() -> ProcessMetrics:
    """This process's metrics, created on first use."""
    global _metrics
    if _metrics is None:
        _metrics = ProcessMetrics()
    return _metrics


class _RegistryCollector:
    """Yields another registry's metrics (registries do not nest)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Any]:
        return self._registry.collect()


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The Prometheus text of this process (every process's, in multiprocess mode)
    followed by ``extra`` collectors' metrics."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is not None:
        get()  # so this process's own files exist even before its first call
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_RegistryCollector(get().registry))
    for collector in extra:
        registry.register(collector)
    return bytes(generate_latest(registry))


class InstrumentedPool(AsyncConnectionPool):
    """A connection pool that times every wait for a connection and publishes its
    size, use and queue every :data:`POOL_SAMPLE_INTERVAL` seconds while open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wait = get().pool_wait
        self._sampler: asyncio.Task[None] | None = None
        self._published = (0, 0, 0, 0)

    # The three overrides keep psycopg_pool's signatures (timeout parameters included).
    async def getconn(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        start = time.perf_counter()
        conn = await super().getconn(timeout)
        self._wait.observe(time.perf_counter() - start)
        return conn

    async def open(self, wait: bool = False, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        await super().open(wait=wait, timeout=timeout)
        if self._sampler is None:
            self._sampler = asyncio.create_task(self._sample_forever(), name="pool-metrics")

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        self._publish((0, 0, 0, 0))
        await super().close(timeout)

    def sample(self) -> None:
        """Publish the pool's numbers now (a scrape calls this for its own process)."""
        s = self.get_stats()
        size = s.get("pool_size", 0)
        self._publish(
            (size, size - s.get("pool_available", 0), s.get("requests_waiting", 0), self.max_size)
        )

    def _publish(self, now: tuple[int, int, int, int]) -> None:
        # Gauges of several pools in one process add up: publish the difference.
        m = get()
        for gauge, before, after in zip(
            (m.pool_size, m.pool_in_use, m.pool_waiting, m.pool_max),
            self._published,
            now,
            strict=True,
        ):
            if after != before:
                gauge.inc(after - before)
        self._published = now

    async def _sample_forever(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(POOL_SAMPLE_INTERVAL)
