"""The sidecar's own counters, exposed through ``prometheus-client``.

Counted on plain integers of a :class:`WebhookMetrics` instance (everything runs on
one event loop; a per-app instance keeps tests independent) and turned into
Prometheus metric families only when scraped: a ``WebhookMetrics`` is a
``prometheus-client`` collector (``collect()``), registered by the scrape
(``mktx_grpc.metrics``). Only the primary ``serve`` process (or ``mktx-grpc
worker``'s retry loop) runs the sidecar's processing, so these need no
multiprocess files.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

__all__ = ["DEFAULT_METRICS", "LAG_BUCKETS", "WebhookMetrics"]

#: Histogram buckets (seconds) for receipt-to-processed lag.
LAG_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
)


class WebhookMetrics:
    """Counters for one sidecar (or one retry worker).

    * ``received``: events newly recorded in the inbox, by type;
    * ``duplicates``: events already in the inbox (redelivery, replay);
    * ``unhandled``: event kinds present in deliveries but not recorded, by kind;
    * ``rejected``: refused requests, by reason (``bad_signature``,
      ``missing_signature``, ``too_large``, ``slow_body``, ``bad_json``, ``too_deep``,
      ``bad_payload``, ``disconnected``);
    * ``unstorable``: signed deliveries recorded as received, DEAD at once, because
      jsonb cannot hold them (NUL, lone surrogates, NaN/Infinity);
    * ``processed``: finished events, by outcome (PROCESSED, IGNORED, DUPLICATE, DEAD);
    * ``failed``: processing attempts that failed and will be retried;
    * ``dm_runs``: runs of inbound DMs applied set-based, or fallen back to one
      event at a time (``set_based``, ``fallback``);
    * ``lag``: seconds from receipt to finished processing (histogram).
    """

    def __init__(self) -> None:
        self.requests = 0
        self.received: defaultdict[str, int] = defaultdict(int)
        self.duplicates = 0
        self.unstorable = 0
        self.unhandled: defaultdict[str, int] = defaultdict(int)
        self.rejected: defaultdict[str, int] = defaultdict(int)
        self.processed: defaultdict[str, int] = defaultdict(int)
        self.failed = 0
        self.dm_runs: defaultdict[str, int] = defaultdict(int)
        self._lag_counts = [0] * len(LAG_BUCKETS)
        self._lag_sum = 0.0
        self._lag_count = 0

    def observe_lag(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self._lag_sum += seconds
        self._lag_count += 1
        for i, bound in enumerate(LAG_BUCKETS):
            if seconds <= bound:
                self._lag_counts[i] += 1
                break

    def collect(self) -> Iterator[Any]:
        """The metric families (``prometheus-client`` collector protocol)."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        def counter(name: str, help_: str, value: int) -> Any:
            return CounterMetricFamily(name, help_, value=value)

        def labelled(name: str, help_: str, label: str, values: dict[str, int]) -> Any:
            family = CounterMetricFamily(name, help_, labels=[label])
            for key, value in sorted(values.items()):
                family.add_metric([key], value)
            return family

        yield counter("mktx_webhook_requests", "Webhook POST deliveries received.", self.requests)
        yield labelled(
            "mktx_webhook_events_received",
            "Events newly recorded in the inbox, by X event type.",
            "type",
            self.received,
        )
        yield counter(
            "mktx_webhook_events_duplicate",
            "Events already in the inbox (redelivery or replay).",
            self.duplicates,
        )
        yield counter(
            "mktx_webhook_deliveries_unstorable",
            "Signed deliveries jsonb cannot hold, kept as bytes and marked DEAD.",
            self.unstorable,
        )
        yield labelled(
            "mktx_webhook_events_unhandled",
            "Event kinds delivered but not recorded, by kind.",
            "kind",
            self.unhandled,
        )
        yield labelled(
            "mktx_webhook_rejected", "Webhook requests refused, by reason.", "reason", self.rejected
        )
        yield labelled(
            "mktx_webhook_events_processed",
            "Inbox events finished, by outcome.",
            "outcome",
            self.processed,
        )
        yield counter(
            "mktx_webhook_events_failed",
            "Processing attempts that failed and were scheduled for retry.",
            self.failed,
        )
        yield labelled(
            "mktx_webhook_dm_runs",
            "Runs of inbound DMs applied set-based or fallen back to single events.",
            "path",
            self.dm_runs,
        )
        cumulative, buckets = 0, []
        for bound, n in zip(LAG_BUCKETS, self._lag_counts, strict=True):
            cumulative += n
            buckets.append((repr(float(bound)), cumulative))
        buckets.append(("+Inf", self._lag_count))
        yield HistogramMetricFamily(
            "mktx_webhook_processing_lag_seconds",
            "Seconds from receipt to finished processing.",
            buckets=buckets,
            sum_value=self._lag_sum,
        )


#: Counters shared by the sidecar and an in-process retry loop, so ``/metrics``
#: shows both.
DEFAULT_METRICS = WebhookMetrics()
