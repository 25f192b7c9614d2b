"""Sidecar metrics in the Prometheus text exposition format (version 0.0.4).

Written by hand rather than with ``prometheus-client``: the sidecar needs a handful
of counters and one histogram, a per-app instance keeps tests independent (the
client library's default registry is process-global), and it adds no dependency.
Everything runs on one event loop, so plain integers suffice.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class WebhookMetrics:
    """Counters for one sidecar (or one retry worker).

    * ``received``: events newly recorded in the inbox, by type;
    * ``duplicates``: events already in the inbox (redelivery, replay);
    * ``unhandled``: event kinds present in deliveries but not recorded, by kind;
    * ``rejected``: refused requests, by reason (``bad_signature``,
      ``missing_signature``, ``too_large``, ``bad_json``, ``bad_payload``);
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

    def render(self, *, pending: int | None = None, oldest_pending_age: float | None = None) -> str:
        """The exposition text. ``pending``/``oldest_pending_age`` come from the inbox
        table (shared by every process), when the caller could read it."""
        out: list[str] = []

        def family(name: str, kind: str, help_: str, samples: Iterable[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{labels} {_fmt(value)}")

        def labelled(label: str, values: dict[str, int]) -> list[tuple[str, float]]:
            return [(f'{{{label}="{_escape(k)}"}}', v) for k, v in sorted(values.items())]

        family(
            "mktx_webhook_requests_total",
            "counter",
            "Webhook POST deliveries received.",
            [("", self.requests)],
        )
        family(
            "mktx_webhook_events_received_total",
            "counter",
            "Events newly recorded in the inbox, by X event type.",
            labelled("type", self.received),
        )
        family(
            "mktx_webhook_events_duplicate_total",
            "counter",
            "Events already in the inbox (redelivery or replay).",
            [("", self.duplicates)],
        )
        family(
            "mktx_webhook_events_unhandled_total",
            "counter",
            "Event kinds delivered but not recorded, by kind.",
            labelled("kind", self.unhandled),
        )
        family(
            "mktx_webhook_rejected_total",
            "counter",
            "Webhook requests refused, by reason.",
            labelled("reason", self.rejected),
        )
        family(
            "mktx_webhook_events_processed_total",
            "counter",
            "Inbox events finished, by outcome.",
            labelled("outcome", self.processed),
        )
        family(
            "mktx_webhook_events_failed_total",
            "counter",
            "Processing attempts that failed and were scheduled for retry.",
            [("", self.failed)],
        )
        family(
            "mktx_webhook_dm_runs_total",
            "counter",
            "Runs of inbound DMs applied set-based or fallen back to single events.",
            labelled("path", self.dm_runs),
        )
        cumulative, buckets = 0, []
        for bound, n in zip(LAG_BUCKETS, self._lag_counts, strict=True):
            cumulative += n
            buckets.append((f'_bucket{{le="{_fmt(bound)}"}}', float(cumulative)))
        buckets.append(('_bucket{le="+Inf"}', float(self._lag_count)))
        out.append(
            "# HELP mktx_webhook_processing_lag_seconds "
            "Seconds from receipt to finished processing."
        )
        out.append("# TYPE mktx_webhook_processing_lag_seconds histogram")
        for suffix, value in buckets:
            out.append(f"mktx_webhook_processing_lag_seconds{suffix} {_fmt(value)}")
        out.append(f"mktx_webhook_processing_lag_seconds_sum {_fmt(self._lag_sum)}")
        out.append(f"mktx_webhook_processing_lag_seconds_count {self._lag_count}")
        if pending is not None:
            family(
                "mktx_webhook_inbox_pending",
                "gauge",
                "Inbox events not yet finished (all processes).",
                [("", pending)],
            )
        if oldest_pending_age is not None:
            family(
                "mktx_webhook_inbox_oldest_pending_age_seconds",
                "gauge",
                "Age of the oldest unfinished inbox event (all processes).",
                [("", oldest_pending_age)],
            )
        return "\n".join(out) + "\n"


#: Counters shared by the sidecar and an in-process retry loop, so ``/metrics``
#: shows both.
DEFAULT_METRICS = WebhookMetrics()
