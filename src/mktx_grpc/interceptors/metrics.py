"""Counts every RPC for Prometheus: calls and latency by method and status code,
and the calls in flight by method (``core.metrics``).

Second in the chain, after logging: the latency includes every stage below it.
Kept cheap because it runs on every call: the labelled children are looked up once
per method (and code), and a call only adds to plain numbers (two dict lookups, a
bisect, a few additions; no lock, no file write), which ``core.metrics.flush_all``
publishes every second and before every scrape.
"""

from __future__ import annotations

import time

import grpc

from ..core import metrics as core_metrics
from ._outcome import outcome_code
from .stage import Observer


class MetricsInterceptor(Observer):
    """See the module docstring. ``metrics`` defaults to the process's."""

    def __init__(self, metrics: core_metrics.ProcessMetrics | None = None) -> None:
        m = metrics or core_metrics.get()
        self._calls = m.rpc_calls
        self._duration = m.rpc_duration
        self._in_flight_metric = m.rpc_in_flight
        self._in_flight: dict[str, core_metrics.DeferredGauge] = {}
        #: (method, code) -> (calls, duration), counted in plain numbers.
        self._outcomes: dict[
            tuple[str, str], tuple[core_metrics.DeferredCounter, core_metrics.DeferredHistogram]
        ] = {}

    def start(
        self, context: grpc.aio.ServicerContext, method_name: str
    ) -> tuple[float, core_metrics.DeferredGauge]:
        flight = self._in_flight.get(method_name)
        if flight is None:
            flight = self._in_flight[method_name] = core_metrics.DeferredGauge(
                self._in_flight_metric.labels(method_name)
            )
        flight.value += 1
        return time.perf_counter(), flight

    def finish(
        self,
        state: tuple[float, core_metrics.DeferredGauge],
        context: grpc.aio.ServicerContext,
        method_name: str,
        exc: BaseException | None,
    ) -> None:
        start, flight = state
        self._done(method_name, outcome_code(context, exc), start, flight)

    def _done(
        self, method_name: str, code: str, start: float, flight: core_metrics.DeferredGauge
    ) -> None:
        elapsed = time.perf_counter() - start
        flight.value -= 1
        key = (method_name, code)
        outcome = self._outcomes.get(key)
        if outcome is None:
            outcome = self._outcomes[key] = (
                core_metrics.DeferredCounter(self._calls.labels(method_name, code)),
                core_metrics.DeferredHistogram(self._duration.labels(method_name, code)),
            )
        outcome[0].inc()
        outcome[1].observe(elapsed)
