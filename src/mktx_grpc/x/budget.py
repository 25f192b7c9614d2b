"""The DM budget hook called before every DM send."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["DmBudget"]


@runtime_checkable
class DmBudget(Protocol):
    """Spends one unit of a sending account's DM allowance.

    ``acquire`` is awaited before each send, with the account key given to
    ``XClient.as_user`` (or the credentials' fingerprint). It returns when the send
    may proceed and raises ``XRateLimited`` (with ``reset_at``) when the allowance
    is spent; the send is then not attempted. A unit is spent even if the send
    later fails: X counts attempts, not successes.
    """

    async def acquire(self, account_key: str) -> None: ...
