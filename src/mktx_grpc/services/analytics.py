"""AnalyticsService: report requests in, rollup reads (store/analytics.py), report
messages out. Definitions live in domain/analytics.py and analytics.proto."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

import grpc

from mktx.v1 import analytics_pb2 as A
from mktx.v1 import analytics_pb2_grpc

from ..core.context import current_principal
from ..core.errors import NotFound
from ..deps import Deps
from ..domain.schedule import zone
from ..mapping import analytics as mapping
from ..mapping.analytics import (
    ReportArgs,
    bucket_times,
    by_key,
    by_position,
    duration_stats,
    ratio,
)
from ..mapping.common import from_ts, keep_only, mask_tree, ts
from ..store import analytics as store

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

    async def GetOverview(
        self, request: A.GetOverviewRequest, context: grpc.aio.ServicerContext
    ) -> A.Overview:
        args = await self._args(request, series=False)
        rows = await store.overview_report(args.params())
        o, contacts = rows["overview"], rows["contact_totals"]
        return A.Overview(
            time_zone=args.time_zone,
            period=request.period,
            contacts=A.ContactsOverview(
                total=contacts["total"],
                new_contacts=contacts["new"],
                active=rows["active_contacts"]["active"],
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
        buckets = args.buckets()
        paths = list(request.read_mask.paths)
        rows = await store.contact_report(
            args.params(limit=TOP_TAGS, **mapping.bucket_bounds(args, buckets)),
            mapping.CONTACT_MASK.reads(paths),
        )
        new_rows = rows.get("new_contacts_series", [])
        new_by_key: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in new_rows:
            new_by_key[r["key"]].append(r)
        active_at = by_position(rows.get("active_contacts_buckets", []))
        opt_by = by_key(rows.get("opt_outs_series", []))
        series = [
            A.ContactBucket(
                **bucket_times(b),
                new_contacts=mapping.source_counts(new_by_key.get(b.key, [])),
                active=int(active_at[i]["n"]) if i in active_at else 0,
                opted_out=int(opt_by[b.key]["n"]) if b.key in opt_by else 0,
            )
            for i, b in enumerate(buckets, 1)
        ]
        out = A.ContactAnalytics(
            time_zone=args.time_zone,
            granularity=mapping.GRANULARITY_TO_PROTO[args.granularity],
            new_contacts=mapping.source_counts(new_rows),
            active=rows["active_contacts"]["active"] if "active_contacts" in rows else 0,
            opted_out=rows["contact_totals"]["opted_out"] if "contact_totals" in rows else 0,
            top_tags=[A.TagCount(tag=t["tag"], contacts=t["n"]) for t in rows.get("top_tags", [])],
            series=series,
        )
        if paths:
            keep_only(out, mask_tree(paths))
        return out

    async def GetConversationAnalytics(
        self, request: A.GetConversationAnalyticsRequest, context: grpc.aio.ServicerContext
    ) -> A.ConversationAnalytics:
        args = await self._args(request)
        buckets = args.buckets()
        p = args.params(**mapping.bucket_bounds(args, buckets))
        paths = list(request.read_mask.paths)
        rows = await store.conversation_report(p, mapping.CONVERSATION_MASK.reads(paths))
        opened_at = by_position(rows.get("episodes_opened_buckets", []))
        frt_at = by_position(rows.get("first_response_buckets", []))
        res_at = by_position(rows.get("resolution_buckets", []))
        series = []
        for i, b in enumerate(buckets, 1):
            o, f, r = opened_at.get(i), frt_at.get(i), res_at.get(i)
            series.append(
                A.ConversationBucket(
                    **bucket_times(b),
                    opened=int(o["n"]) if o is not None else 0,
                    resolved=int(r["n"]) if r is not None else 0,
                    first_response=duration_stats(f),
                    first_response_business_hours=duration_stats(f, "bh_"),
                    resolution=duration_stats(r),
                    resolution_business_hours=duration_stats(r, "bh_"),
                )
            )
        bot_involved = sum(int(o["bot_involved"]) for o in opened_at.values())
        escalated = sum(int(o["escalated"]) for o in opened_at.values())
        out = A.ConversationAnalytics(
            time_zone=args.time_zone,
            granularity=mapping.GRANULARITY_TO_PROTO[args.granularity],
            opened=sum(int(o["n"]) for o in opened_at.values()),
            escalation_rate=ratio(escalated, bot_involved),
            assignees=[
                A.AssigneeStats(
                    assignee_user_id=a["assignee_user_id"],
                    opened=a["opened"],
                    resolved=a["resolved"],
                    responded=a["responded"],
                    first_response_mean_seconds=float(a["first_response_mean"]),
                    resolution_mean_seconds=float(a["resolution_mean"]),
                )
                for a in rows.get("per_assignee", [])
            ],
            series=series,
        )
        if (t := rows.get("conversation_totals")) is not None:
            frt = {k[4:]: v for k, v in t.items() if k.startswith("frt_")}
            res = {k[4:]: v for k, v in t.items() if k.startswith("res_")}
            bot = {k[4:]: v for k, v in t.items() if k.startswith("bot_")}
            out.resolved = res["n"]
            out.first_response.CopyFrom(duration_stats(frt))
            out.first_response_business_hours.CopyFrom(duration_stats(frt, "bh_"))
            out.resolution.CopyFrom(duration_stats(res))
            out.resolution_business_hours.CopyFrom(duration_stats(res, "bh_"))
            out.bot.CopyFrom(
                A.BotStats(
                    conversations=bot["n"],
                    first_response=duration_stats(bot),
                    handled_mean_seconds=float(bot["handled_mean"]),
                    resolved_by_bot=res["bot_only"],
                )
            )
            out.bot_resolved_share = ratio(res["bot_only"], res["n"])
        if paths:
            keep_only(out, mask_tree(paths))
        return out

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
