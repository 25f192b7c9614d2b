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
``mktx_grpc.metrics``).

Per-call cost: ``prometheus-client`` takes a lock and, in multiprocess mode, writes
to a memory-mapped file on every increment (a histogram observation is two), about
15 µs per RPC for its five updates on this project's box. What happens on every
RPC is therefore counted in plain numbers on the event loop (:class:`Deferred`
objects: no lock, no label lookup) and added to the ``prometheus-client`` metrics
by :func:`flush_all`: every second (the pool's sampler), before every scrape, and
when the pool closes. Another process's counts reach a scrape at most a second
late. ``bench/metrics_cost.py`` measures what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
import weakref
from bisect import bisect_left
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
#: Seconds between samples of the pool's size, use and queue (and flushes of the
#: deferred per-call counts).
POOL_SAMPLE_INTERVAL = 1.0


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
            "Connections the database pools hold (sampled every second).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.pool_in_use = Gauge(
            "mktx_db_pool_connections_in_use",
            "Pooled connections lent out (sampled every second).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.pool_waiting = Gauge(
            "mktx_db_pool_requests_waiting",
            "Requests queued for a pooled connection (sampled every second).",
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
        self.analytics_conversations = Counter(
            "mktx_analytics_conversations",
            "Conversations the analytics-rollups consumer brought up to date, by path: "
            "extended (its live episode, from the new messages alone) or recomputed "
            "(every episode, from its whole history).",
            ["path"],
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


class Deferred:
    """Something counted in plain numbers that :func:`flush_all` publishes."""

    __slots__ = ("__weakref__",)

    def __init__(self) -> None:
        _deferred.add(self)

    def flush(self) -> None:
        raise NotImplementedError


_deferred: weakref.WeakSet[Deferred] = weakref.WeakSet()


def flush_all() -> None:
    """Publish every deferred count of this process (see the module docstring)."""
    for item in list(_deferred):
        item.flush()


class DeferredHistogram(Deferred):
    """Observations of one histogram child kept as plain numbers until flushed.

    ``observe`` costs a bisect and three additions. On flush they are added to the
    child's sum and bucket values: ``prometheus-client`` has no public call to add
    several observations at once, so this uses its ``_sum``/``_buckets`` value
    objects (the ones ``Histogram.observe`` increments); tests/test_metrics.py checks
    the published numbers exactly.
    """

    __slots__ = ("_bounds", "_buckets", "_child", "_sum")

    def __init__(self, child: Any) -> None:
        super().__init__()
        self._child = child
        self._bounds: list[float] = list(child._upper_bounds[:-1])  # without +Inf
        self._buckets = [0] * (len(self._bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._buckets[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def flush(self) -> None:
        if not any(self._buckets):
            return
        child = self._child
        for i, n in enumerate(self._buckets):
            if n:
                child._buckets[i].inc(n)
                self._buckets[i] = 0
        child._sum.inc(self._sum)
        self._sum = 0.0


class DeferredCounter(Deferred):
    """Increments of one counter child kept as a plain number until flushed."""

    __slots__ = ("_child", "_n")

    def __init__(self, child: Any) -> None:
        super().__init__()
        self._child = child
        self._n = 0

    def inc(self) -> None:
        self._n += 1

    def flush(self) -> None:
        if self._n:
            self._child.inc(self._n)
            self._n = 0


class DeferredGauge(Deferred):
    """A gauge child's value kept as a plain number; published when it changed."""

    __slots__ = ("_child", "_published", "value")

    def __init__(self, child: Any) -> None:
        super().__init__()
        self._child = child
        self.value = 0
        self._published = 0

    def flush(self) -> None:
        if self.value != self._published:
            self._child.set(self.value)
            self._published = self.value


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

    flush_all()
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
        self._wait = DeferredHistogram(get().pool_wait)
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
        flush_all()
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
            flush_all()
            await asyncio.sleep(POOL_SAMPLE_INTERVAL)
