"""Day rollups of conversation episodes (sql/migrations/0019_analytics_days.sql): which
local days a period covers whole, one day's row from its episodes, and exact
percentiles over many days from their bucketed, sorted values. No I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from .analytics import DAY, bucket_key, local_midnight

#: The day row of every account of the merchant together.
ALL_ACCOUNTS = UUID(int=0)

#: The durations a day row keeps values of: (prefix, the episode's value column, the
#: instant column whose local day the value belongs to).
DURATIONS: tuple[tuple[str, str, str], ...] = (
    ("frt", "first_response_s", "first_human_reply_at"),
    ("frt_bh", "first_response_bh_s", "first_human_reply_at"),
    ("res", "resolution_s", "resolved_at"),
    ("res_bh", "resolution_bh_s", "resolved_at"),
    ("bot", "bot_response_s", "first_bot_reply_at"),
)

#: Value buckets: 0 holds values below 1 s, bucket b >= 1 holds [RATIO**(b-1), RATIO**b)
#: seconds, the last everything above. They only narrow where an exact rank is
#: looked for; no figure is computed from them.
RATIO = 1.25
BUCKETS = 96
_LOG = math.log(RATIO)

#: The episode columns a day row is computed from.
EPISODE_FIELDS = (
    "account_id",
    "assignee_user_id",
    "status",
    "opened_at",
    "first_human_reply_at",
    "resolved_at",
    "first_bot_reply_at",
    "first_response_s",
    "first_response_bh_s",
    "resolution_s",
    "resolution_bh_s",
    "bot_response_s",
    "bot_handled_s",
    "bot_replied",
    "escalated",
    "bot_only",
)


def value_bucket(v: float) -> int:
    if v < 1.0:
        return 0
    return min(BUCKETS - 1, 1 + int(math.log(v) / _LOG))


def percentile_cont(values: Sequence[float], p: float) -> float:
    """PostgreSQL's percentile_cont over ascending ``values`` (0 when empty)."""
    if not values:
        return 0.0
    pos = p * (len(values) - 1)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(values[lo])
    return float(values[lo] + (pos - lo) * (values[hi] - values[lo]))


def cumulative(values: Sequence[float]) -> list[int]:
    """``cum[b]`` (0-based here, 1-based in SQL) = values in buckets below ``b``, for b
    in 0..BUCKETS; ``values`` ascending, so bucket b's values are values[cum[b]:cum[b+1]]."""
    counts = [0] * BUCKETS
    for v in values:
        counts[value_bucket(v)] += 1
    out = [0]
    for c in counts:
        out.append(out[-1] + c)
    return out


def stat(values: Sequence[float]) -> list[float]:
    """[count, sum, median, p90] of ascending ``values``; the sum is exact (fsum), so
    it does not depend on the order rows were read in."""
    return [
        float(len(values)),
        math.fsum(values),
        percentile_cont(values, 0.5),
        percentile_cont(values, 0.9),
    ]


def day_of(at: datetime, tz: ZoneInfo) -> date:
    return bucket_key(at, DAY, tz)


def day_span(d: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return local_midnight(d, tz), local_midnight(d + timedelta(days=1), tz)


def episode_days(ep: dict[str, Any], tz: ZoneInfo) -> set[date]:
    """The local days an episode row counts in (opened, responded, resolved, bot)."""
    out = {day_of(ep["opened_at"], tz)}
    for col in ("first_human_reply_at", "resolved_at", "first_bot_reply_at"):
        if ep.get(col) is not None:
            out.add(day_of(ep[col], tz))
    return out


def day_row(
    day: date,
    episodes: Iterable[dict[str, Any]],
    tz: ZoneInfo,
    within: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """One day row (columns of analytics_episode_days after merchant and account) from
    the episodes that count on ``day`` (others are ignored); with ``within``, only
    what happened inside that span counts (a period's part of a day)."""
    lo, hi = within if within is not None else (None, None)

    def on_day(at: datetime | None) -> bool:
        if at is None or day_of(at, tz) != day:
            return False
        return lo is None or (lo <= at < hi)  # type: ignore[operator]

    row: dict[str, Any] = dict.fromkeys(
        (
            "opened",
            "open",
            "pending",
            "closed",
            "bot_involved",
            "escalated",
            "frt_n",
            "res_n",
            "res_bot_only",
            "bot_n",
            "bot_handled_n",
        ),
        0,
    )
    vals: dict[str, list[float]] = {p: [] for p, _, _ in DURATIONS}
    handled: list[float] = []
    # assignee -> [opened, resolved, frt_n, frt values, res_n, res values]
    per: dict[str, list[Any]] = {}
    for ep in episodes:
        opened_here = on_day(ep["opened_at"])
        resolved_here = on_day(ep["resolved_at"])
        responded_here = on_day(ep["first_human_reply_at"])
        if opened_here or resolved_here or responded_here:
            a = per.setdefault(ep["assignee_user_id"], [0, 0, 0, [], 0, []])
            a[0] += opened_here
            if resolved_here:
                a[1] += 1
                if ep["resolution_s"] is not None:
                    a[4] += 1
                    a[5].append(float(ep["resolution_s"]))
            if responded_here and ep["first_response_s"] is not None:
                a[2] += 1
                a[3].append(float(ep["first_response_s"]))
        if opened_here:
            row["opened"] += 1
            status = ep["status"]
            if status == "OPEN":
                row["open"] += 1
            elif status in ("PENDING", "SNOOZED"):
                row["pending"] += 1
            elif status == "CLOSED":
                row["closed"] += 1
            if ep["bot_replied"]:
                row["bot_involved"] += 1
                if ep["escalated"]:
                    row["escalated"] += 1
        if on_day(ep["first_human_reply_at"]):
            row["frt_n"] += 1
        if on_day(ep["resolved_at"]):
            row["res_n"] += 1
            if ep["bot_only"]:
                row["res_bot_only"] += 1
        if on_day(ep["first_bot_reply_at"]):
            row["bot_n"] += 1
            if ep["bot_handled_s"] is not None:
                handled.append(float(ep["bot_handled_s"]))
        for prefix, col, when in DURATIONS:
            if ep[col] is not None and on_day(ep[when]):
                vals[prefix].append(float(ep[col]))
    handled.sort()
    row["bot_handled_n"] = len(handled)
    row["bot_handled_sum"] = math.fsum(handled)
    for prefix, v in vals.items():
        v.sort()
        row[f"{prefix}_vals"] = v
        row[f"{prefix}_cum"] = cumulative(v)
        row[f"{prefix}_stat"] = stat(v)
    names = sorted(per)
    row["assignees"] = names
    row["a_opened"] = [per[n][0] for n in names]
    row["a_resolved"] = [per[n][1] for n in names]
    row["a_frt_n"] = [per[n][2] for n in names]
    row["a_frt_sum"] = [math.fsum(sorted(per[n][3])) for n in names]
    row["a_res_n"] = [per[n][4] for n in names]
    row["a_res_sum"] = [math.fsum(sorted(per[n][5])) for n in names]
    row["day"] = day
    return row


def assignees(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """per_assignee's rows (opened, resolved, responded, means) from day rows."""
    acc: dict[str, list[Any]] = {}
    for r in rows:
        for i, name in enumerate(r["assignees"]):
            a = acc.setdefault(name, [0, 0, 0, [], 0, []])
            a[0] += r["a_opened"][i]
            a[1] += r["a_resolved"][i]
            a[2] += r["a_frt_n"][i]
            a[3].append(r["a_frt_sum"][i])
            a[4] += r["a_res_n"][i]
            a[5].append(r["a_res_sum"][i])
    return [
        {
            "assignee_user_id": name,
            "opened": a[0],
            "resolved": a[1],
            "responded": a[2],
            "first_response_mean": math.fsum(a[3]) / a[2] if a[2] else 0.0,
            "resolution_mean": math.fsum(a[5]) / a[4] if a[4] else 0.0,
        }
        for name, a in sorted(acc.items())
    ]


@dataclass(frozen=True, slots=True)
class Split:
    """A period as the local days it covers whole (read from day rows) and the
    instants outside them (read from episode rows): [start, inner_start) and
    [inner_end, end)."""

    first_day: date
    last_day: date
    inner_start: datetime
    inner_end: datetime


def split(start: datetime, end: datetime, tz: ZoneInfo) -> Split | None:
    """The whole local days inside [start, end), or None when there is none."""
    d = day_of(start, tz)
    if local_midnight(d, tz) < start:
        d += timedelta(days=1)
    # The day holding ``end`` begins at or before it and is not inside the period,
    # so the last whole day is the one before it.
    last = day_of(end, tz) - timedelta(days=1)
    if last < d:
        return None
    return Split(d, last, local_midnight(d, tz), local_midnight(last + timedelta(days=1), tz))


def locate(cum: Sequence[int], rank: int) -> tuple[int, int]:
    """The bucket holding the ``rank``-th (0-based) smallest value under cumulative
    counts ``cum`` (length BUCKETS + 1), and the rank within that bucket."""
    lo, hi = 0, BUCKETS - 1
    while lo < hi:  # first bucket b with cum[b + 1] > rank
        mid = (lo + hi) // 2
        if cum[mid + 1] > rank:
            hi = mid
        else:
            lo = mid + 1
    return lo, rank - cum[lo]


def needed_ranks(n: int, ps: Sequence[float]) -> list[int]:
    """The ranks percentile_cont reads for each of ``ps`` over ``n`` values."""
    out: set[int] = set()
    for p in ps:
        pos = p * (n - 1)
        out.add(math.floor(pos))
        out.add(math.ceil(pos))
    return sorted(out)


def interpolate(n: int, p: float, by_rank: dict[int, float]) -> float:
    """percentile_cont from the values at the ranks :func:`needed_ranks` named."""
    if n == 0:
        return 0.0
    pos = p * (n - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi:
        return by_rank[lo]
    return by_rank[lo] + (pos - lo) * (by_rank[hi] - by_rank[lo])


def edge_days(start: datetime, end: datetime, sp: Split, tz: ZoneInfo) -> list[date]:
    """The partly covered days at either end of a split period."""
    out = []
    if start < sp.inner_start:
        out.append(day_of(start, tz))
    if sp.inner_end < end:
        out.append(day_of(end, tz))
    return out


_COUNTS = (
    "opened",
    "open",
    "pending",
    "closed",
    "bot_involved",
    "escalated",
    "frt_n",
    "res_n",
    "res_bot_only",
    "bot_n",
    "bot_handled_n",
)


@dataclass
class Combined:
    """Whole-day rows (their values not read) and edge rows (with values) added up:
    counts, and per duration the value count, exact sum and summed cumulative
    bucket counts. :meth:`wanted` names the buckets whose values the percentiles
    need; :meth:`report` computes the figures once those are read."""

    counts: dict[str, float]
    n: dict[str, int]
    sums: dict[str, float]
    cum: dict[str, list[int]]
    edge_vals: dict[str, list[float]]
    ps: tuple[float, ...] = (0.5, 0.9)

    @classmethod
    def of(
        cls,
        rows: Sequence[dict[str, Any]],
        edges: Sequence[dict[str, Any]],
        prefixes: Sequence[str],
        ps: tuple[float, ...] = (0.5, 0.9),
    ) -> Combined:
        counts: dict[str, float] = dict.fromkeys(_COUNTS, 0)
        counts["bot_handled_sum"] = 0.0
        n = dict.fromkeys(prefixes, 0)
        parts: dict[str, list[float]] = {p: [] for p in prefixes}
        cum = {p: [0] * (BUCKETS + 1) for p in prefixes}
        handled: list[float] = []
        edge_vals: dict[str, list[float]] = {p: [] for p in prefixes}
        for r in (*rows, *edges):
            for k in _COUNTS:
                if k in r:
                    counts[k] += r[k]
            if "bot_handled_sum" in r:
                handled.append(float(r["bot_handled_sum"]))
            for p in prefixes:
                st = r[f"{p}_stat"]
                n[p] += int(st[0])
                parts[p].append(float(st[1]))
                for i, c in enumerate(r[f"{p}_cum"]):
                    cum[p][i] += c
        for r in edges:
            for p in prefixes:
                edge_vals[p].extend(r[f"{p}_vals"])
        counts["bot_handled_sum"] = math.fsum(handled)
        sums = {p: math.fsum(v) for p, v in parts.items()}
        return cls(counts, n, sums, cum, edge_vals, ps)

    def wanted(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for p, n in self.n.items():
            if n:
                ranks = needed_ranks(n, self.ps)
                out[p] = sorted({locate(self.cum[p], r)[0] for r in ranks})
        return out

    def stats(
        self, slices: dict[tuple[str, int], tuple[float, float, list[float] | None]]
    ) -> dict[str, dict[str, float]]:
        """Per duration {count, mean, p50, p90...}: mean from the sums, percentiles
        from the values of the buckets :meth:`wanted` named (``slices``: the whole
        days' values there; the edges' come from their rows)."""
        out: dict[str, dict[str, float]] = {}
        for p, n in self.n.items():
            res: dict[str, float] = {"count": float(n), "mean": self.sums[p] / n if n else 0.0}
            by_rank: dict[int, float] = {}
            if n:
                sorted_bucket: dict[int, list[float]] = {}
                for r in needed_ranks(n, self.ps):
                    b, within = locate(self.cum[p], r)
                    if b not in sorted_bucket:
                        edge = [v for v in self.edge_vals[p] if value_bucket(v) == b]
                        got = slices.get((p, b))
                        if got is None:
                            vals = []
                        elif got[2] is None:  # every whole-day value there is the same
                            vals = [got[0]] * (self.cum[p][b + 1] - self.cum[p][b] - len(edge))
                        else:
                            vals = list(got[2])
                        vals.extend(edge)
                        vals.sort()
                        sorted_bucket[b] = vals
                    by_rank[r] = float(sorted_bucket[b][within])
            for q in self.ps:
                res[str(q)] = interpolate(n, q, by_rank)
            out[p] = res
        return out
