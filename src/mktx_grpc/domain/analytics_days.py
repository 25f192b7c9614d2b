"""Day rollups of conversation episodes (sql/migrations/0019_analytics_days.sql): which
local days a period covers whole, one day's row from its episodes, and exact
percentiles over many days from their bucketed, sorted values. No I/O."""

from __future__ import annotations

import bisect
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


def micros(v: float) -> int:
    """A duration in whole microseconds: per-assignee and bot-handled sums are kept as
    integers so that subtracting an episode's old value and adding its new one gives
    exactly what summing the day's episodes afresh gives."""
    return round(v * 1_000_000)


_COUNT_NAMES = (
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


#: The per-assignee arrays of a day row, in DayWork.per's order.
ASSIGNEE_COLUMNS = ("a_opened", "a_resolved", "a_frt_n", "a_frt_us", "a_res_n", "a_res_us", "a_n")


@dataclass
class DayWork:
    """One day row while episodes are added to or taken out of it: counts, each
    duration's values (ascending), the bot-handled microseconds and per assignee
    [opened, resolved, frt_n, frt_us, res_n, res_us, episodes counted]."""

    counts: dict[str, int]
    vals: dict[str, list[float]]
    handled_us: int
    per: dict[str, list[int]]

    @classmethod
    def empty(cls) -> DayWork:
        return cls(dict.fromkeys(_COUNT_NAMES, 0), {p: [] for p, _, _ in DURATIONS}, 0, {})

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> DayWork:
        """From a stored day row: every column but the values, which are read only for
        the durations an episode change adds to or takes out of (``{D}_vals`` None or
        absent: not read; :meth:`apply` must not touch that duration)."""
        per = {
            name: [
                int(row["a_opened"][i]),
                int(row["a_resolved"][i]),
                int(row["a_frt_n"][i]),
                int(row["a_frt_us"][i]),
                int(row["a_res_n"][i]),
                int(row["a_res_us"][i]),
                int(row["a_n"][i]),
            ]
            for i, name in enumerate(row["assignees"])
        }
        return cls(
            {k: int(row[k]) for k in _COUNT_NAMES},
            {
                p: list(row[f"{p}_vals"])
                for p, _, _ in DURATIONS
                if row.get(f"{p}_vals") is not None
            },
            int(row["bot_handled_us"]),
            per,
        )

    @staticmethod
    def durations_of(ep: dict[str, Any], day: date, tz: ZoneInfo) -> set[str]:
        """The durations whose values episode row ``ep`` has on ``day``."""
        return {
            prefix
            for prefix, col, when in DURATIONS
            if ep[col] is not None and ep[when] is not None and day_of(ep[when], tz) == day
        }

    def is_empty(self) -> bool:
        """No episode counts on the day (each one that does adds to one of these)."""
        c = self.counts
        return c["opened"] + c["frt_n"] + c["res_n"] + c["bot_n"] == 0

    def apply(
        self,
        ep: dict[str, Any],
        day: date,
        tz: ZoneInfo,
        sign: int = 1,
        within: tuple[datetime, datetime] | None = None,
    ) -> bool:
        """Add (``sign`` 1) or take out (-1) what episode row ``ep`` counts on ``day``
        (with ``within``, only what happened inside that span). False when a value to
        take out is not there (the row does not hold that episode: recompute it)."""
        lo, hi = within if within is not None else (None, None)

        def on_day(at: datetime | None) -> bool:
            if at is None or day_of(at, tz) != day:
                return False
            return lo is None or (lo <= at < hi)  # type: ignore[operator]

        c = self.counts
        opened_here = on_day(ep["opened_at"])
        resolved_here = on_day(ep["resolved_at"])
        responded_here = on_day(ep["first_human_reply_at"])
        bot_here = on_day(ep["first_bot_reply_at"])
        if opened_here or resolved_here or responded_here:
            a = self.per.setdefault(ep["assignee_user_id"], [0, 0, 0, 0, 0, 0, 0])
            a[6] += sign
            a[0] += sign * opened_here
            if resolved_here:
                a[1] += sign
                if ep["resolution_s"] is not None:
                    a[4] += sign
                    a[5] += sign * micros(float(ep["resolution_s"]))
            if responded_here and ep["first_response_s"] is not None:
                a[2] += sign
                a[3] += sign * micros(float(ep["first_response_s"]))
            if a[6] == 0:
                del self.per[ep["assignee_user_id"]]
        if opened_here:
            c["opened"] += sign
            status = ep["status"]
            if status == "OPEN":
                c["open"] += sign
            elif status in ("PENDING", "SNOOZED"):
                c["pending"] += sign
            elif status == "CLOSED":
                c["closed"] += sign
            if ep["bot_replied"]:
                c["bot_involved"] += sign
                if ep["escalated"]:
                    c["escalated"] += sign
        if responded_here:
            c["frt_n"] += sign
        if resolved_here:
            c["res_n"] += sign
            if ep["bot_only"]:
                c["res_bot_only"] += sign
        if bot_here:
            c["bot_n"] += sign
            if ep["bot_handled_s"] is not None:
                c["bot_handled_n"] += sign
                self.handled_us += sign * micros(float(ep["bot_handled_s"]))
        ok = True
        for prefix, col, when in DURATIONS:
            if ep[col] is None or not on_day(ep[when]):
                continue
            v = float(ep[col])
            vals = self.vals[prefix]
            if sign > 0:
                bisect.insort(vals, v)
            else:
                i = bisect.bisect_left(vals, v)
                if i < len(vals) and vals[i] == v:
                    del vals[i]
                else:
                    ok = False
        return ok

    def row(self, day: date) -> dict[str, Any]:
        """The day row's columns (after merchant and account); a duration whose values
        were not read has None for its values, cumulative counts and stat."""
        row: dict[str, Any] = dict(self.counts)
        row["bot_handled_us"] = self.handled_us
        for prefix, _, _ in DURATIONS:
            v = self.vals.get(prefix)
            row[f"{prefix}_vals"] = v
            row[f"{prefix}_cum"] = None if v is None else cumulative(v)
            row[f"{prefix}_stat"] = None if v is None else stat(v)
        names = sorted(self.per)
        row["assignees"] = names
        for i, col in enumerate(ASSIGNEE_COLUMNS):
            row[col] = [self.per[n][i] for n in names]
        row["day"] = day
        return row


def day_row(
    day: date,
    episodes: Iterable[dict[str, Any]],
    tz: ZoneInfo,
    within: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """One day row (columns of analytics_episode_days after merchant and account) from
    the episodes that count on ``day`` (others are ignored); with ``within``, only
    what happened inside that span counts (a period's part of a day). The same
    additions the consumer makes one episode at a time (:class:`DayWork`)."""
    work = DayWork.empty()
    for ep in episodes:
        work.apply(ep, day, tz, 1, within)
    return work.row(day)


def assignees(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """per_assignee's rows (opened, resolved, responded, means) from day rows: an
    assignee is listed when an episode of theirs counts in one of the days."""
    acc: dict[str, list[int]] = {}
    for r in rows:
        for i, name in enumerate(r["assignees"]):
            a = acc.setdefault(name, [0] * len(ASSIGNEE_COLUMNS))
            for j, col in enumerate(ASSIGNEE_COLUMNS):
                a[j] += int(r[col][i])
    return [
        {
            "assignee_user_id": name,
            "opened": a[0],
            "resolved": a[1],
            "responded": a[2],
            "first_response_mean": a[3] / 1e6 / a[2] if a[2] else 0.0,
            "resolution_mean": a[5] / 1e6 / a[4] if a[4] else 0.0,
        }
        for name, a in sorted(acc.items())
        if a[6]
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
        n = dict.fromkeys(prefixes, 0)
        parts: dict[str, list[float]] = {p: [] for p in prefixes}
        cum = {p: [0] * (BUCKETS + 1) for p in prefixes}
        handled_us = 0
        edge_vals: dict[str, list[float]] = {p: [] for p in prefixes}
        for r in (*rows, *edges):
            for k in _COUNTS:
                if k in r:
                    counts[k] += r[k]
            handled_us += int(r.get("bot_handled_us", 0))
            for p in prefixes:
                st = r[f"{p}_stat"]
                n[p] += int(st[0])
                parts[p].append(float(st[1]))
                for i, c in enumerate(r[f"{p}_cum"]):
                    cum[p][i] += c
        for r in edges:
            for p in prefixes:
                edge_vals[p].extend(r[f"{p}_vals"])
        counts["bot_handled_sum"] = handled_us / 1e6
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
