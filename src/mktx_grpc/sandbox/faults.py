"""Injected faults: the global before-processing set and per-route rules.

Before-processing kinds act before the handler runs: ``error`` (a 5xx problem) and
``rate_limit`` (X's 429 with reset headers) answer without running it (nothing is
stored); ``timeout`` delays it (read the request, sleep ``seconds``, then process
normally: the client's read timeout fires first when ``seconds`` exceeds it, and the
DM or post is stored all the same once the sleep ends, as X may act on a request its
client gave up on).

After-processing kinds run the handler first, so the DM or post is stored and
visible in lookups, timelines and the admin read-back, then: ``accept_then_error``
answers a 5xx instead of the real response, ``accept_then_drop`` closes the
connection without any answer, ``accept_then_stall`` holds the answer for
``seconds`` (past the client's timeout) before sending it.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["AFTER_KINDS", "BEFORE_KINDS", "FAULT_KINDS", "FaultRule", "Faults"]

BEFORE_KINDS = ("error", "rate_limit", "timeout")
AFTER_KINDS = ("accept_then_error", "accept_then_drop", "accept_then_stall")
FAULT_KINDS = BEFORE_KINDS + AFTER_KINDS


@dataclass
class Faults:
    """The global faults, hitting every API route (kept for the tests that set
    these attributes directly): the next ``rate_limit_next`` calls get a 429, then
    the next ``error_next`` calls a 5xx of ``error_status``; ``latency`` seconds
    are slept before every call."""

    rate_limit_next: int = 0
    rate_limit_reset_after: float = 1.0
    error_next: int = 0
    error_status: int = 503
    latency: float = 0.0


@dataclass
class FaultRule:
    """One per-route fault. ``route`` matches a route's endpoint name
    (``"POST /2/tweets"``) or handler name (``"create_post"``); ``path`` is a
    glob over the request path (``"/2/dm_conversations/*"``); ``method`` narrows
    either. ``after`` matching requests go through untouched first (to hit, say,
    the third post of a thread); then ``count`` is how many more requests it hits
    (None: unlimited) and each hit happens with ``probability``."""

    id: str
    kind: str
    route: str | None = None
    path: str | None = None
    method: str | None = None
    status: int = 503
    count: int | None = 1
    probability: float = 1.0
    seconds: float = 30.0
    reset_after: float = 1.0
    after: int = 0
    hits: int = 0

    def validate(self) -> None:
        """Raises ValueError for an unknown kind, no target or bad numbers."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if not self.route and not self.path:
            raise ValueError("route or path is required")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0 and 1")
        if self.count is not None and self.count < 0:
            raise ValueError("count must not be negative")
        if self.kind in ("error", "accept_then_error") and not 500 <= self.status <= 599:
            raise ValueError("status must be a 5xx")
        if self.seconds < 0 or self.reset_after < 0 or self.after < 0:
            raise ValueError("seconds, reset_after and after must not be negative")

    def matches(self, method: str, endpoint: str, handler: str, path: str) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.method and self.method.upper() != method:
            return False
        if self.route and self.route not in (endpoint, handler):
            return False
        return not (self.path and not fnmatch.fnmatchcase(path, self.path))

    def take(self, rng: random.Random) -> bool:
        """Roll the dice; on a hit spend one of ``count``. Caller holds the lock."""
        if self.after > 0:
            self.after -= 1
            return False
        if self.probability < 1.0 and rng.random() >= self.probability:
            return False
        if self.count is not None:
            self.count -= 1
        self.hits += 1
        return True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
