"""User lookups in user context: the connected account itself, others by id or name.

All are GETs, so every transient failure (transport errors, timeouts, 5xx) is
retried within the deadline (see :mod:`mktx_grpc.x.transport`); a lookup has no
side effect, so an :class:`XUnavailable` can simply be retried later. A revoked
or invalid token raises :class:`XAuthError` (``revoked=True`` when X said so), an
unknown user :class:`XNotFound`.
"""

from __future__ import annotations

from .context import CallContext
from .models import XUser
from .transport import response_data

__all__ = ["DEFAULT_USER_FIELDS", "UserLookups"]

DEFAULT_USER_FIELDS = "id,name,username,profile_image_url,verified,public_metrics"


class UserLookups(CallContext):
    """``GET /2/users/...`` with the fields the project stores."""

    async def me(self, *, deadline: float | None = None) -> XUser:
        """``GET /2/users/me``. A revoked token raises XAuthError(revoked=True)."""
        resp = await self._call(
            "GET", "/2/users/me", params={"user.fields": DEFAULT_USER_FIELDS}, deadline=deadline
        )
        return XUser.from_json(response_data(resp))

    async def user(self, user_id: str, *, deadline: float | None = None) -> XUser:
        """``GET /2/users/:id``. Unknown id raises XNotFound."""
        resp = await self._call(
            "GET",
            f"/2/users/{user_id}",
            params={"user.fields": DEFAULT_USER_FIELDS},
            deadline=deadline,
        )
        return XUser.from_json(response_data(resp))

    async def user_by_username(self, username: str, *, deadline: float | None = None) -> XUser:
        """``GET /2/users/by/username/:username``. Unknown name raises XNotFound."""
        resp = await self._call(
            "GET",
            f"/2/users/by/username/{username}",
            params={"user.fields": DEFAULT_USER_FIELDS},
            deadline=deadline,
        )
        return XUser.from_json(response_data(resp))
