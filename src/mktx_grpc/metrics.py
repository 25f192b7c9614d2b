"""``GET /metrics``: what an operator scrapes, from the sidecar (``serve``) or from
``mktx-grpc worker``'s own metrics port.

One scrape renders, in Prometheus text format:

- the counters of every process (``core.metrics``: gRPC calls, the connection pool,
  X calls), added up across ``serve --workers N``;
- the sidecar's webhook counters (``webhooks/metrics.py``);
- gauges read from the database now (``store/metrics.py``): campaign recipients
  due, the webhook inbox backlog and dead rows, each outbox consumer's lag and
  parked events, DM budget totals. These are database-wide: every target that
  serves ``/metrics`` reports the same values. ``mktx_metrics_database_up`` is 0
  (and the database gauges absent) when the database did not answer within 2 s.

The README's "Metrics" section lists every metric.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from .core import metrics as core_metrics
from .core.db import use_connection
from .deps import Deps
from .store import metrics as store
from .webhooks.metrics import WebhookMetrics
from .worker.consumer import stats as consumer_stats

log = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE", "scrape"]

CONTENT_TYPE = core_metrics.CONTENT_TYPE


class _Families:
    """A collector over metric families built before the scrape renders."""

    def __init__(self, families: list[Any]) -> None:
        self._families = families

    def collect(self) -> Iterator[Any]:
        yield from self._families


async def _database_families(deps: Deps) -> list[Any]:
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, help_: str, value: float) -> Any:
        return GaugeMetricFamily(name, help_, value=value)

    try:
        async with use_connection(deps.pool, wait=2.0):
            depths = await store.queue_depths()
            consumers = await store.consumer_positions()
            budget = await store.dm_budget_totals()
    except Exception:  # the rest of the scrape still renders
        log.warning("metrics: database gauges unavailable", exc_info=True)
        return [gauge("mktx_metrics_database_up", "Whether the database gauges could be read.", 0)]
    out = [
        gauge("mktx_metrics_database_up", "Whether the database gauges could be read.", 1),
        gauge(
            "mktx_campaign_recipients_due",
            "Campaign recipients of RUNNING campaigns ready to be sent now (all merchants).",
            depths["campaign_recipients_due"],
        ),
        gauge(
            "mktx_campaign_recipients_sending",
            "Campaign recipients claimed and being sent (or awaiting crash recovery).",
            depths["campaign_recipients_sending"],
        ),
        gauge(
            "mktx_outbound_dms_queued",
            "One-off DMs (flows, AI, hand-offs) queued in the outbound ledger, waiting or due.",
            depths["outbound_dms_queued"],
        ),
        gauge(
            "mktx_outbound_dms_due",
            "Queued one-off DMs ready to be sent now.",
            depths["outbound_dms_due"],
        ),
        gauge(
            "mktx_webhook_inbox_pending",
            "Inbox events not yet finished (all processes).",
            depths["inbox_pending"],
        ),
        gauge(
            "mktx_webhook_inbox_oldest_pending_age_seconds",
            "Age of the oldest unfinished inbox event (all processes).",
            depths["inbox_oldest_pending_age_seconds"],
        ),
        gauge(
            "mktx_webhook_inbox_dead",
            "Inbox events given up on after their last attempt (dead letters).",
            depths["inbox_dead"],
        ),
        gauge(
            "mktx_flow_timers_due",
            "Automation executions due to run a step now (timers fallen due, runs in progress).",
            depths["flow_timers_due"],
        ),
        gauge(
            "mktx_flow_executions_waiting",
            "Automation executions parked on a WAIT or WAIT_FOR_REPLY node.",
            depths["flow_executions_waiting"],
        ),
    ]
    newest = int(depths["newest_event_id"])
    lag_events = GaugeMetricFamily(
        "mktx_outbox_consumer_lag_events",
        "Outbox events past the consumer's cursor (by id).",
        labels=["consumer"],
    )
    lag_seconds = GaugeMetricFamily(
        "mktx_outbox_consumer_lag_seconds",
        "Age of the oldest outbox event the consumer has not passed (0: caught up).",
        labels=["consumer"],
    )
    parked = GaugeMetricFamily(
        "mktx_outbox_consumer_parked_events",
        "Events the consumer gave up on (parked dead letters).",
        labels=["consumer"],
    )
    retrying = GaugeMetricFamily(
        "mktx_outbox_consumer_retrying_events",
        "Events the consumer's handler failed on and is retrying.",
        labels=["consumer"],
    )
    for row in consumers:
        name = [row["consumer"]]
        lag_events.add_metric(name, max(0, newest - int(row["last_event_id"])))
        lag_seconds.add_metric(name, float(row["lag_seconds"]))
        parked.add_metric(name, row["parked"])
        retrying.add_metric(name, row["retrying"])
    out += [lag_events, lag_seconds, parked, retrying]
    # What this process's own consumer passes saw (worker/consumer.stats): an event
    # past the cursor whose transaction is still open holds the consumer back.
    held = GaugeMetricFamily(
        "mktx_outbox_consumer_held_seconds",
        "How long the consumer has waited on an unsettled event (an open transaction), "
        "as seen by this process's last pass.",
        labels=["consumer"],
    )
    for consumer, result in sorted(consumer_stats(deps.pool).items()):
        waited = result.held_seconds if result.held_event_id is not None else 0.0
        held.add_metric([consumer], waited)
    out.append(held)
    out += [
        gauge(
            "mktx_dm_budget_accounts",
            "ACTIVE accounts (each has a DM budget).",
            budget["accounts"],
        ),
        gauge(
            "mktx_dm_budget_remaining",
            "DMs the ACTIVE accounts' budgets allow now, in total.",
            budget["remaining"],
        ),
        gauge(
            "mktx_dm_budget_exhausted_accounts",
            "ACTIVE accounts with no DM left in their budget now.",
            budget["exhausted"],
        ),
    ]
    return out


async def scrape(deps: Deps, webhook_metrics: WebhookMetrics | None = None) -> bytes:
    """The exposition text for ``deps``'s process (see the module docstring)."""
    if isinstance(deps.pool, core_metrics.InstrumentedPool):
        deps.pool.sample()
    extra: list[Any] = [_Families(await _database_families(deps))]
    if webhook_metrics is not None:
        extra.append(webhook_metrics)
    return core_metrics.exposition(extra)
