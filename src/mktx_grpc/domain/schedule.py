"""Weekly schedules in an IANA time zone (business hours, campaign send windows)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..core.errors import FieldViolation

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


def parse_hhmm(value: str) -> int | None:
    """Minutes since midnight for "HH:MM" (00:00 to 24:00), or None when malformed."""
    if not _HHMM.match(value):
        return None
    h, m = value.split(":")
    return int(h) * 60 + int(m)


def zone(name: str) -> ZoneInfo | None:
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class Schedule:
    """Open spans per ISO weekday (1 = Monday) in minutes since local midnight."""

    tz: ZoneInfo
    spans: dict[int, list[tuple[int, int]]]

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        return any(s <= minute < e for s, e in self.spans.get(local.isoweekday(), ()))

    def next_open(self, at: datetime) -> datetime | None:
        """The first moment at or after ``at`` when the schedule is open (minute
        resolution), or None when it is never open."""
        if not any(self.spans.values()):
            return None
        local = at.astimezone(self.tz).replace(second=0, microsecond=0)
        for day in range(8):
            date = (local + timedelta(days=day)).date()
            for start, end in sorted(self.spans.get(date.isoweekday(), ())):
                base = datetime(date.year, date.month, date.day, tzinfo=self.tz)
                begin = base + timedelta(minutes=start)
                finish = base + timedelta(minutes=end)
                if finish <= local:
                    continue
                return max(begin, local)
        return None


def validate_weekly_schedule(sched: object, field: str) -> list[FieldViolation]:
    """Check a ``mktx.v1.WeeklySchedule``: zone, unique days, well-formed spans."""
    v: list[FieldViolation] = []
    tz_name: str = sched.time_zone  # type: ignore[attr-defined]
    if zone(tz_name) is None:
        v.append(FieldViolation(f"{field}.time_zone", "must be an IANA time zone"))
    seen: set[int] = set()
    for i, day in enumerate(sched.days):  # type: ignore[attr-defined]
        path = f"{field}.days[{i}]"
        if day.day == 0 or day.day > 7:
            v.append(FieldViolation(f"{path}.day", "must be a day of the week"))
        elif day.day in seen:
            v.append(FieldViolation(f"{path}.day", "appears more than once"))
        seen.add(day.day)
        spans: list[tuple[int, int]] = []
        for j, r in enumerate(day.ranges):
            start, end = parse_hhmm(r.start), parse_hhmm(r.end)
            if start is None or start == 24 * 60:
                v.append(FieldViolation(f"{path}.ranges[{j}].start", "must be HH:MM"))
            if end is None:
                v.append(FieldViolation(f"{path}.ranges[{j}].end", "must be HH:MM or 24:00"))
            if start is not None and end is not None:
                if end <= start:
                    v.append(FieldViolation(f"{path}.ranges[{j}]", "end must be after start"))
                else:
                    spans.append((start, end))
        spans.sort()
        for a, b in itertools.pairwise(spans):
            if b[0] < a[1]:
                v.append(FieldViolation(f"{path}.ranges", "spans overlap"))
                break
    return v


def schedule_from_proto(sched: object) -> Schedule:
    """Build a Schedule from a validated ``WeeklySchedule``."""
    tz = zone(sched.time_zone)  # type: ignore[attr-defined]
    assert tz is not None
    spans: dict[int, list[tuple[int, int]]] = {}
    for day in sched.days:  # type: ignore[attr-defined]
        spans[day.day] = sorted(
            (parse_hhmm(r.start) or 0, parse_hhmm(r.end) or 0) for r in day.ranges
        )
    return Schedule(tz, spans)
