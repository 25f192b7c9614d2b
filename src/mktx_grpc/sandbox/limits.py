"""X's per-endpoint rate limits for each access tier, and the windows that count them.

Sources, transcribed by hand:

- free, basic, pro: the per-tier table of X's "Rate limits" page (docs.x.com
  ``x-api/fundamentals/rate-limits``, last version with tier columns, Dec 2025). An
  empty cell there means the tier has no access to the endpoint; the sandbox then
  answers X's 403 ``client-forbidden`` problem.
- enterprise: X publishes no numbers ("custom, per contract"). The sandbox uses the
  per-endpoint defaults X published after it dropped tiers (same page, 2026), which
  are at least Pro's.
- Endpoints missing from the tier table (media, webhooks) take the 2026 numbers in
  every tier; the Account Activity subscription endpoints have no published limits
  and fall back to ``UNPUBLISHED`` (900/15 min).

Deliberate deviation: for ``POST /2/dm_conversations/with/:participant_id/messages``
the Pro column reads "1440 / 24 h per user" only, while its two sibling send
endpoints and the 2026 table say "15 / 15 min, 1,440 / 24 h per user"; the sandbox
applies the latter to all three (and counts them as one bucket, X's DM send cap).

A *user* window is counted per user for user-context calls; an *app* window is
counted for the app across all callers. App-only (bearer) calls count against the
app windows. User-context calls count against the user windows and against any
24-hour app window (X's ``x-app-limit-24hour-*`` daily caps).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DM_SEND_GROUP",
    "H24",
    "M15",
    "UNPUBLISHED",
    "EndpointLimits",
    "Window",
    "limits_for",
    "published_table",
]

M15 = 900
H24 = 86400

Window = tuple[int, int]  # (requests, window seconds)


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    user: tuple[Window, ...] = ()
    app: tuple[Window, ...] = ()


def _l(user: tuple[Window, ...] = (), app: tuple[Window, ...] = ()) -> EndpointLimits:
    return EndpointLimits(user, app)


NA = None  # not available in that tier
UNPUBLISHED = _l(((900, M15),), ((900, M15),))
DM_SEND_GROUP = "dm_send"

_DM_SEND_PRO = _l(((15, M15), (1440, H24)), ((1440, H24),))
_DM_SEND_BASIC = _l(((1, H24),), ((1, H24),))

# endpoint -> tier -> limits (None: the tier cannot call it)
_TABLE: dict[str, dict[str, EndpointLimits | None]] = {
    "GET /2/users/me": {
        "free": _l(((25, H24),)),
        "basic": _l(((250, H24),)),
        "pro": _l(((75, M15),)),
        "enterprise": _l(((75, M15),)),
    },
    "GET /2/users": {
        "free": _l(((1, H24),), ((1, H24),)),
        "basic": _l(((100, H24),), ((500, H24),)),
        "pro": _l(((900, M15),), ((300, M15),)),
        "enterprise": _l(((900, M15),), ((300, M15),)),
    },
    "GET /2/users/:id": {
        "free": _l(((1, H24),), ((1, H24),)),
        "basic": _l(((100, H24),), ((500, H24),)),
        "pro": _l(((900, M15),), ((300, M15),)),
        "enterprise": _l(((900, M15),), ((300, M15),)),
    },
    "GET /2/users/by": {
        "free": _l(((1, H24),), ((1, H24),)),
        "basic": _l(((100, H24),), ((500, H24),)),
        "pro": _l(((900, M15),), ((300, M15),)),
        "enterprise": _l(((900, M15),), ((300, M15),)),
    },
    "GET /2/users/by/username/:username": {
        "free": _l(((3, M15),), ((3, M15),)),
        "basic": _l(((100, H24),), ((500, H24),)),
        "pro": _l(((900, M15),), ((300, M15),)),
        "enterprise": _l(((900, M15),), ((300, M15),)),
    },
    "GET /2/users/:id/tweets": {
        "free": _l(((1, M15),), ((1, M15),)),
        "basic": _l(((5, M15),), ((10, M15),)),
        "pro": _l(((900, M15),), ((1500, M15),)),
        "enterprise": _l(((900, M15),), ((10000, M15),)),
    },
    "GET /2/tweets": {
        "free": _l(((1, M15),), ((1, M15),)),
        "basic": _l(((15, M15),), ((15, M15),)),
        "pro": _l(((900, M15),), ((450, M15),)),
        "enterprise": _l(((5000, M15),), ((3500, M15),)),
    },
    "GET /2/tweets/:id": {
        "free": _l(((1, M15),), ((1, M15),)),
        "basic": _l(((15, M15),), ((15, M15),)),
        "pro": _l(((900, M15),), ((450, M15),)),
        "enterprise": _l(((900, M15),), ((450, M15),)),
    },
    "POST /2/tweets": {
        "free": _l(((17, H24),), ((17, H24),)),
        "basic": _l(((100, H24),), ((1667, H24),)),
        "pro": _l(((100, M15),), ((10000, H24),)),
        "enterprise": _l(((100, M15),), ((10000, H24),)),
    },
    "DELETE /2/tweets/:id": {
        "free": _l(((17, H24),), ((17, H24),)),
        "basic": _l(((5, M15),)),
        "pro": _l(((50, M15),)),
        "enterprise": _l(((50, M15),)),
    },
    "GET /2/dm_events": {
        "free": NA,
        "basic": _l(((1, H24),)),
        "pro": _l(((15, M15),)),
        "enterprise": _l(((15, M15),)),
    },
    "GET /2/dm_events/:id": {
        "free": NA,
        "basic": _l(((5, H24),)),
        "pro": _l(((15, M15),)),
        "enterprise": _l(((15, M15),)),
    },
    "GET /2/dm_conversations/:dm_conversation_id/dm_events": {
        "free": NA,
        "basic": _l(((1, H24),)),
        "pro": _l(((15, M15),)),
        "enterprise": _l(((15, M15),)),
    },
    "GET /2/dm_conversations/with/:participant_id/dm_events": {
        "free": NA,
        "basic": _l(((1, H24),)),
        "pro": _l(((15, M15),)),
        "enterprise": _l(((15, M15),)),
    },
    "POST /2/dm_conversations": {
        "free": NA,
        "basic": _DM_SEND_BASIC,
        "pro": _DM_SEND_PRO,
        "enterprise": _DM_SEND_PRO,
    },
    "POST /2/dm_conversations/:dm_conversation_id/messages": {
        "free": NA,
        "basic": _DM_SEND_BASIC,
        "pro": _DM_SEND_PRO,
        "enterprise": _DM_SEND_PRO,
    },
    "POST /2/dm_conversations/with/:participant_id/messages": {
        "free": NA,
        "basic": _DM_SEND_BASIC,
        "pro": _DM_SEND_PRO,
        "enterprise": _DM_SEND_PRO,
    },
}

# Not on the tier table: the 2026 per-endpoint numbers apply in every tier.
_EVERY_TIER: dict[str, EndpointLimits] = {
    "POST /2/media/upload": _l(((500, M15),), ((50000, H24),)),
    "GET /2/media/upload": _l(((1000, M15),), ((100000, H24),)),
    "POST /2/media/upload/initialize": _l(((1875, M15),), ((180000, H24),)),
    "POST /2/media/upload/:id/append": _l(((1875, M15),), ((180000, H24),)),
    "POST /2/media/upload/:id/finalize": _l(((1875, M15),), ((180000, H24),)),
    "POST /2/media/metadata": _l(((500, M15),), ((50000, H24),)),
    "POST /2/webhooks": _l(app=((450, M15),)),
    "GET /2/webhooks": _l(app=((450, M15),)),
    "PUT /2/webhooks/:webhook_id": _l(app=((450, M15),)),
    "DELETE /2/webhooks/:webhook_id": _l(app=((450, M15),)),
}

# Endpoints that share one count (X's DM send cap is per user, not per route).
GROUPS: dict[str, str] = {
    "POST /2/dm_conversations": DM_SEND_GROUP,
    "POST /2/dm_conversations/:dm_conversation_id/messages": DM_SEND_GROUP,
    "POST /2/dm_conversations/with/:participant_id/messages": DM_SEND_GROUP,
}


def published_table(endpoint: str, tier: str) -> EndpointLimits | None:
    """X's published limits for ``endpoint`` ("METHOD /path/:param") in ``tier``;
    None when the tier has no access. Unknown endpoints get ``UNPUBLISHED``."""
    if endpoint in _TABLE:
        return _TABLE[endpoint][tier]
    return _EVERY_TIER.get(endpoint, UNPUBLISHED)


def _replace(windows: tuple[Window, ...], limit: int | None, length: int) -> tuple[Window, ...]:
    if limit is None:
        return windows
    kept = tuple(w for w in windows if w[1] != length)
    return tuple(sorted((*kept, (limit, length)), key=lambda w: w[1]))


def limits_for(
    endpoint: str,
    tier: str,
    *,
    dm_15min: int | None = None,
    dm_24h: int | None = None,
    post_15min: int | None = None,
    default_15min: int | None = None,
) -> EndpointLimits | None:
    """The limits in force: the tier's published ones with the overrides applied
    (each replaces the per-user window of its length, or adds one;
    ``default_15min`` also replaces a 15-minute app window)."""
    base = published_table(endpoint, tier)
    if base is None:
        return None
    user, app = base.user, base.app
    if GROUPS.get(endpoint) == DM_SEND_GROUP:
        user = _replace(_replace(user, dm_15min, M15), dm_24h, H24)
    elif endpoint == "POST /2/tweets":
        user = _replace(user, post_15min, M15)
    else:
        user = _replace(user, default_15min, M15)
        if app:
            app = _replace(app, default_15min, M15)
    return EndpointLimits(user, app)
