"""AnalyticsService: report requests in, rollup reads (store/analytics.py), report
messages out. Definitions live in domain/analytics.py and analytics.proto."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from typing import Any
from uuid import UUID

import grpc

from mktx.v1 import analytics_pb2 as A
from mktx.v1 import analytics_pb2_grpc

from ..core.context import current_principal
from ..core.errors import NotFound
from ..deps import Deps
from ..domain import analytics_days as days
from ..domain.schedule import zone
from ..mapping import analytics as mapping
from ..mapping.analytics import ReportArgs, bucket_times, by_key, duration_stats, ratio
from ..mapping.common import from_ts, ts
from ..store import Row
from ..store import analytics as store
from ..store import analytics_days as days_store

TOP_TAGS = 10
DEFAULT_MAX_POSTS = 50


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def _args(self, request: Any, *, series: bool = True) -> ReportArgs:
        """The report's merchant, account (NOT_FOUND unless it is the merchant's),
        period, zone and granularity; the request is validated already."""
        merchant = current_principal().merchant_id
        account = UUID(request.account_id) if request.account_id else None
        if account is not None and not await store.account_exists(merchant, account):
            raise NotFound("account", request.account_id)
        name = await store.time_zone(merchant)
        tz = zone(name)
        if tz is None:
            name, tz = "UTC", zone("UTC")
        assert tz is not None
        gran = mapping.GRANULARITY_FROM_PROTO[request.granularity] if series else "DAY"
        return ReportArgs(
            merchant_id=merchant,
            account_id=account,
            start=from_ts(request.period.start_time, "period.start_time"),
            end=from_ts(request.period.end_time, "period.end_time"),
            time_zone=name,
            tz=tz,
            granularity=gran,
        )

    async def _days(
        self, args: ReportArgs, prefixes: tuple[str, ...], ps: tuple[float, ...], *, overview: bool
    ) -> tuple[dict[date, Row], days.Combined, dict[str, dict[str, float]]] | None:
        """The period from day rows (whole local days) and the episodes of its partly
        covered days; None when the day rows cannot serve it (no whole day in the
        period, or cut in another zone than the merchant's current one)."""
        rollup_zone, _ = await days_store.zones(args.merchant_id)
        if rollup_zone != args.time_zone:
            return None
        sp = days.split(args.start, args.end, args.tz)
        if sp is None:
            return None
        rows = await days_store.day_rows(
            args.merchant_id, args.account_id, sp.first_day, sp.last_day, overview=overview
        )
        spans = [s for s in ((args.start, sp.inner_start), (sp.inner_end, args.end)) if s[0] < s[1]]
        eps = await days_store.edge_episodes(args.merchant_id, args.account_id, spans)
        edges = [
            days.day_row(d, eps, args.tz, within=(args.start, args.end))
            for d in days.edge_days(args.start, args.end, sp, args.tz)
        ]
        comb = days.Combined.of(rows, edges, prefixes, ps)
        wanted = comb.wanted()
        slices = (
            await days_store.slices(
                args.merchant_id, args.account_id, sp.first_day, sp.last_day, wanted
            )
            if wanted
            else {}
        )
        by_day = {r["day"]: r for r in (*rows, *edges)}
        return by_day, comb, comb.stats(slices)

    async def GetOverview(
        self, request: A.GetOverviewRequest, context: grpc.aio.ServicerContext
    ) -> A.Overview:
        args = await self._args(request, series=False)
        d = await self._days(args, ("frt",), (0.5,), overview=True)
        if d is None:
            o = await store.read_one("overview", args.params())
        else:
            by_day, comb, st = d
            o = dict(await days_store.overview_rest(args.params()))
            res_n = sum(r["res_stat"][0] for r in by_day.values())
            res_sum = math.fsum(r["res_stat"][1] for r in by_day.values())
            o.update(
                opened=int(comb.counts["opened"]),
                open=int(comb.counts["open"]),
                pending=int(comb.counts["pending"]),
                closed=int(comb.counts["closed"]),
                frt_mean=st["frt"]["mean"],
                frt_median=st["frt"]["0.5"],
                resolution_mean=res_sum / res_n if res_n else 0.0,
            )
        return A.Overview(
            time_zone=args.time_zone,
            period=request.period,
            contacts=A.ContactsOverview(
                total=o["contacts_total"],
                new_contacts=o["contacts_new"],
                active=o["contacts_active"],
            ),
            conversations=A.ConversationsOverview(
                total=o["opened"],
                open=o["open"],
                pending=o["pending"],
                closed=o["closed"],
                first_response_mean_seconds=float(o["frt_mean"]),
                first_response_median_seconds=float(o["frt_median"]),
                resolution_mean_seconds=float(o["resolution_mean"]),
            ),
            campaigns=A.CampaignsOverview(
                active=o["campaigns_active"],
                completed=o["campaigns_completed"],
                messages_sent=int(o["campaigns_sent"]),
            ),
            automation=A.AutomationOverview(
                active_flows=o["active_flows"],
                executions_started=o["executions_started"],
                executions_completed=o["executions_completed"],
            ),
            posts=A.PostsOverview(
                published=o["posts_published"],
                impressions=int(o["impressions"]),
                engagements=int(o["engagements"]),
            ),
        )

    async def GetContactAnalytics(
        self, request: A.GetContactAnalyticsRequest, context: grpc.aio.ServicerContext
    ) -> A.ContactAnalytics:
        args = await self._args(request)
        p = args.params()
        totals = await store.read_one("contact_totals", p)
        active = await store.read_one("active_contacts", p)
        new_rows = await store.read("new_contacts_series", p)
        new_by_key: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in new_rows:
            new_by_key[r["key"]].append(r)
        active_by = by_key(await store.read("active_contacts_series", p))
        opt_by = by_key(await store.read("opt_outs_series", p))
        tags = await store.read("top_tags", args.params(limit=TOP_TAGS))
        series = [
            A.ContactBucket(
                **bucket_times(b),
                new_contacts=mapping.source_counts(new_by_key.get(b.key, [])),
                active=int(active_by[b.key]["n"]) if b.key in active_by else 0,
                opted_out=int(opt_by[b.key]["n"]) if b.key in opt_by else 0,
            )
            for b in args.buckets()
        ]
        return A.ContactAnalytics(
            time_zone=args.time_zone,
            granularity=mapping.GRANULARITY_TO_PROTO[args.granularity],
            new_contacts=mapping.source_counts(new_rows),
            active=active["active"],
            opted_out=totals["opted_out"],
            top_tags=[A.TagCount(tag=t["tag"], contacts=t["n"]) for t in tags],
            series=series,
        )

    async def GetConversationAnalytics(
        self, request: A.GetConversationAnalyticsRequest, context: grpc.aio.ServicerContext
    ) -> A.ConversationAnalytics:
        args = await self._args(request)
        p = args.params()
        d = await self._days(
            args, tuple(x for x, _, _ in days.DURATIONS), (0.5, 0.9), overview=False
        )
        if d is None:
            t = await store.read_one("conversation_report", p)
        else:
            t = _report_from_days(d[1], d[2])
        frt = {k[4:]: v for k, v in t.items() if k.startswith("frt_")}
        res = {k[4:]: v for k, v in t.items() if k.startswith("res_")}
        bot = {k[4:]: v for k, v in t.items() if k.startswith("bot_")}
        if d is not None and args.granularity == "DAY":
            opened_by, frt_by, res_by = _series_from_days(d[0])
        else:
            opened_by = by_key(await store.read("episodes_opened_series", p))
            frt_by = by_key(await store.read("first_response_series", p))
            res_by = by_key(await store.read("resolution_series", p))
        if d is not None:
            assignees = days.assignees(d[0].values())
        else:
            assignees = await store.read("per_assignee", p)
        series = []
        for b in args.buckets():
            f, r = frt_by.get(b.key), res_by.get(b.key)
            series.append(
                A.ConversationBucket(
                    **bucket_times(b),
                    opened=int(opened_by[b.key]["n"]) if b.key in opened_by else 0,
                    resolved=int(r["n"]) if r is not None else 0,
                    first_response=duration_stats(f),
                    first_response_business_hours=duration_stats(f, "bh_"),
                    resolution=duration_stats(r),
                    resolution_business_hours=duration_stats(r, "bh_"),
                )
            )
        return A.ConversationAnalytics(
            time_zone=args.time_zone,
            granularity=mapping.GRANULARITY_TO_PROTO[args.granularity],
            opened=t["opened"],
            resolved=res["n"],
            first_response=duration_stats(frt),
            first_response_business_hours=duration_stats(frt, "bh_"),
            resolution=duration_stats(res),
            resolution_business_hours=duration_stats(res, "bh_"),
            bot=A.BotStats(
                conversations=bot["n"],
                first_response=duration_stats(bot),
                handled_mean_seconds=float(bot["handled_mean"]),
                resolved_by_bot=res["bot_only"],
            ),
            bot_resolved_share=ratio(res["bot_only"], res["n"]),
            escalation_rate=ratio(t["escalated"], t["bot_involved"]),
            assignees=[
                A.AssigneeStats(
                    assignee_user_id=a["assignee_user_id"],
                    opened=a["opened"],
                    resolved=a["resolved"],
                    responded=a["responded"],
                    first_response_mean_seconds=float(a["first_response_mean"]),
                    resolution_mean_seconds=float(a["resolution_mean"]),
                )
                for a in assignees
            ],
            series=series,
        )

    async def GetCampaignAnalytics(
        self, request: A.GetCampaignAnalyticsRequest, context: grpc.aio.ServicerContext
    ) -> A.CampaignAnalytics:
        args = await self._args(request)
        campaign = UUID(request.campaign_id) if request.campaign_id else None
        if campaign is not None and not await store.campaign_exists(args.merchant_id, campaign):
            raise NotFound("campaign", request.campaign_id)
        rows = by_key(await store.read("campaign_series", args.params(campaign_id=campaign)))
        total = A.CampaignReportCounts()
        series = []
        for b in args.buckets():
            c = mapping.campaign_counts(rows.get(b.key))
            for f in ("sent", "delivered", "read", "replied", "failed"):
                setattr(total, f, getattr(total, f) + getattr(c, f))
            series.append(
                A.CampaignReportBucket(**bucket_times(b), counts=c, rates=mapping.campaign_rates(c))
            )
        return A.CampaignAnalytics(
            time_zone=args.time_zone,
            granularity=mapping.GRANULARITY_TO_PROTO[args.granularity],
            campaign_id=request.campaign_id,
            counts=total,
            rates=mapping.campaign_rates(total),
            series=series,
        )

    async def GetAutomationAnalytics(
        self, request: A.GetAutomationAnalyticsRequest, context: grpc.aio.ServicerContext
    ) -> A.AutomationAnalytics:
        args = await self._args(request)
        p = args.params()
        counts = await store.read_one("automation_counts", p)
        per_flow: dict[UUID, dict[Any, dict[str, Any]]] = defaultdict(dict)
        names: dict[UUID, str] = {}
        for r in await store.read("automation_series", p):
            per_flow[r["flow_id"]][r["key"]] = r
            names[r["flow_id"]] = r["name"]
        funnel: dict[UUID, list[A.FlowNodeFunnel]] = defaultdict(list)
        for r in await store.read("automation_funnel", p):
            funnel[r["flow_id"]].append(
                A.FlowNodeFunnel(
                    node_id=r["node_id"],
                    entered=r["entered"],
                    completed=r["completed"],
                    failed=r["failed"],
                )
            )
        flows = []
        buckets = args.buckets()
        for flow_id in sorted(per_flow, key=lambda f: (names[f], str(f))):
            rows = per_flow[flow_id]
            fa = A.FlowAnalytics(flow_id=str(flow_id), name=names[flow_id])
            for b in buckets:
                got = rows.get(b.key)
                fb = A.FlowBucket(**bucket_times(b))
                if got is not None:
                    fb.started, fb.completed = got["started"], got["completed"]
                    fb.failed = got["failed"]
                fa.series.append(fb)
                fa.started += fb.started
                fa.completed += fb.completed
                fa.failed += fb.failed
            fa.funnel.extend(funnel.get(flow_id, []))
            flows.append(fa)
        return A.AutomationAnalytics(
            time_zone=args.time_zone,
            granularity=mapping.GRANULARITY_TO_PROTO[args.granularity],
            active_flows=counts["active_flows"],
            started=counts["started"],
            completed=counts["completed"],
            failed=counts["failed"],
            flows=flows,
        )

    async def GetPostAnalytics(
        self, request: A.GetPostAnalyticsRequest, context: grpc.aio.ServicerContext
    ) -> A.PostAnalytics:
        args = await self._args(request)
        p = args.params()
        gains = by_key(await store.read("post_readings", p))
        published = await store.read_one("posts_published_count", p)
        posts = await store.read(
            "posts_published", args.params(limit=request.max_posts or DEFAULT_MAX_POSTS)
        )
        series = []
        for b in args.buckets():
            g = gains.get(b.key)
            series.append(
                A.PostBucket(
                    **bucket_times(b),
                    impressions=int(g["impressions"] or 0) if g else 0,
                    engagements=int(g["engagements"] or 0) if g else 0,
                )
            )
        return A.PostAnalytics(
            time_zone=args.time_zone,
            granularity=mapping.GRANULARITY_TO_PROTO[args.granularity],
            published=published["n"],
            impressions=sum(s.impressions for s in series),
            engagements=sum(s.engagements for s in series),
            posts=[
                A.PostStats(
                    post_id=str(r["id"]),
                    publish_time=ts(r["published_at"]),
                    impressions=r["impressions"],
                    engagements=r["engagements"],
                )
                for r in posts
            ],
            series=series,
        )


def _report_from_days(comb: days.Combined, st: dict[str, dict[str, float]]) -> Row:
    """conversation_report's row from day rows."""
    c = comb.counts
    t: Row = {k: int(c[k]) for k in ("opened", "bot_involved", "escalated")}
    t.update(frt_n=int(c["frt_n"]), res_n=int(c["res_n"]), res_bot_only=int(c["res_bot_only"]))
    t["bot_n"] = int(c["bot_n"])
    for prefix, _, _ in days.DURATIONS:
        s = st[prefix]
        # frt_bh -> frt's "bh_" keys, as the statement names them.
        head, _, tail = prefix.partition("_")
        key = f"{head}_{tail}_" if tail else f"{head}_"
        t[f"{key}mean"], t[f"{key}median"], t[f"{key}p90"] = s["mean"], s["0.5"], s["0.9"]
    n = c["bot_handled_n"]
    t["bot_handled_mean"] = c["bot_handled_sum"] / n if n else 0.0
    return t


def _day_stats(row: Row, prefix: str, n: str) -> Row:
    out: Row = {"n": row[n]}
    for key, p in (("", prefix), ("bh_", f"{prefix}_bh")):
        st = row[f"{p}_stat"]
        out[f"{key}mean"] = st[1] / st[0] if st[0] else 0.0
        out[f"{key}median"], out[f"{key}p90"] = st[2], st[3]
    return out


def _series_from_days(
    by_day: dict[date, Row],
) -> tuple[dict[date, Row], dict[date, Row], dict[date, Row]]:
    """The daily series rows (opened, first response, resolution) from day rows."""
    opened = {k: {"n": r["opened"]} for k, r in by_day.items()}
    frt = {k: _day_stats(r, "frt", "frt_n") for k, r in by_day.items()}
    res = {k: _day_stats(r, "res", "res_n") for k, r in by_day.items()}
    return opened, frt, res
