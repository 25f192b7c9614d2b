"""The stand-in's mutable state: scripted answers, fault rules, the request log.

One lock guards it all, because the HTTP handlers run on the server's thread while
tests and the admin API read and change it. Nothing awaits under the lock.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import StandinConfig

__all__ = [
    "FAILURE_KINDS",
    "FAULT_KINDS",
    "ROUTES",
    "FaultPlan",
    "FaultRule",
    "Script",
    "StandinState",
]

ROUTES = ("chat", "embeddings", "moderations", "models")
# A request meets at most one failure: the first rule (in order added) that fires.
FAILURE_KINDS = ("error", "rate_limit", "timeout")
# Answer faults change the body of an otherwise normal answer.
ANSWER_KINDS = ("malformed_json", "schema_mismatch")
# Modifiers add up: every one that fires applies.
MODIFIER_KINDS = ("latency", "slow_stream")
FAULT_KINDS = FAILURE_KINDS + ANSWER_KINDS + MODIFIER_KINDS


@dataclass(slots=True)
class Script:
    """A queued answer. ``remaining`` None means it never runs out."""

    id: str
    route: str
    reply: dict[str, Any]
    contains: str | None = None
    model: str | None = None
    remaining: int | None = 1
    used: int = 0

    def matches(self, route: str, model: str | None, text: str) -> bool:
        if route != self.route or (self.remaining is not None and self.remaining <= 0):
            return False
        if self.model is not None and self.model != model:
            return False
        return self.contains is None or self.contains.lower() in text.lower()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "match": {"contains": self.contains, "model": self.model},
            "remaining": self.remaining,
            "used": self.used,
            "reply": self.reply,
        }


@dataclass(slots=True)
class FaultRule:
    """A fault: ``count`` times (None: every time), each with ``probability``."""

    id: str
    kind: str
    route: str | None = None
    count: int | None = None
    probability: float = 1.0
    status: int = 500
    retry_after: float = 1.0
    quota: bool = False
    latency_ms: float = 0.0
    delay_ms: float = 0.0
    hang_seconds: float | None = None
    fired: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "route": self.route,
            "count": self.count,
            "probability": self.probability,
            "fired": self.fired,
        }
        if self.kind == "error":
            out["status"] = self.status
        elif self.kind == "rate_limit":
            out.update(retry_after=self.retry_after, quota=self.quota)
        elif self.kind == "latency":
            out["latency_ms"] = self.latency_ms
        elif self.kind == "slow_stream":
            out["delay_ms"] = self.delay_ms
        elif self.kind == "timeout":
            out["hang_seconds"] = self.hang_seconds
        return out


@dataclass(slots=True)
class FaultPlan:
    """The faults one request meets."""

    failure: FaultRule | None = None
    malformed_json: bool = False
    schema_mismatch: bool = False
    latency: float = 0.0  # seconds
    chunk_delay: float = 0.0  # seconds
    fired: list[str] = field(default_factory=list)


class StandinState:
    """Scripts, faults, settings and the request log of one stand-in."""

    def __init__(self, config: StandinConfig) -> None:
        self.lock = threading.RLock()
        self.initial_config = config.copy()
        self.config = config
        # Set when the server stops, so hanging requests give up at once.
        self.closing = threading.Event()
        self._reset_locked()

    def _reset_locked(self) -> None:
        self.config = self.initial_config.copy()
        self.scripts: list[Script] = []
        self.faults: list[FaultRule] = []
        self.log: deque[dict[str, Any]] = deque(maxlen=self.config.request_log_size)
        self.rng = random.Random(self.config.seed)
        self._ids: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.total_requests = 0

    def reset(self) -> None:
        """Back to the initial configuration with no scripts, faults or log."""
        with self.lock:
            self._reset_locked()

    def next_id(self, prefix: str) -> str:
        with self.lock:
            n = self._ids.get(prefix, 0) + 1
            self._ids[prefix] = n
            return f"{prefix}-standin{n:06d}"

    # -- scripts -----------------------------------------------------------------------

    def add_script(self, script: Script) -> Script:
        with self.lock:
            self.scripts.append(script)
            return script

    def take_script(self, route: str, model: str | None, text: str) -> Script | None:
        """Consume one use of the first script matching the request, if any."""
        with self.lock:
            for script in self.scripts:
                if script.matches(route, model, text):
                    script.used += 1
                    if script.remaining is not None:
                        script.remaining -= 1
                    return script
            return None

    def pending_scripts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [s.as_dict() for s in self.scripts if s.remaining is None or s.remaining > 0]

    # -- faults ------------------------------------------------------------------------

    def add_fault(self, rule: FaultRule) -> FaultRule:
        with self.lock:
            self.faults.append(rule)
            return rule

    def plan(self, route: str, *, streaming: bool = False) -> FaultPlan:
        """Decide (and consume) the faults a request on ``route`` meets; a
        ``slow_stream`` rule is only spent on a streaming request."""
        plan = FaultPlan()
        with self.lock:
            for rule in self.faults:
                if rule.route is not None and rule.route != route:
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.kind in FAILURE_KINDS and plan.failure is not None:
                    continue
                if rule.kind == "schema_mismatch" and route != "chat":
                    continue
                if rule.kind == "slow_stream" and not streaming:
                    continue
                if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                plan.fired.append(rule.id)
                if rule.kind in FAILURE_KINDS:
                    plan.failure = rule
                elif rule.kind == "malformed_json":
                    plan.malformed_json = True
                elif rule.kind == "schema_mismatch":
                    plan.schema_mismatch = True
                elif rule.kind == "latency":
                    plan.latency += rule.latency_ms / 1000
                elif rule.kind == "slow_stream":
                    plan.chunk_delay += rule.delay_ms / 1000
        return plan

    # -- request log -------------------------------------------------------------------

    def begin(self, route: str, method: str, path: str) -> dict[str, Any]:
        """Open a request-log entry and count the request as in flight."""
        with self.lock:
            self.total_requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            entry: dict[str, Any] = {
                "seq": self.total_requests,
                "route": route,
                "method": method,
                "path": path,
                "model": None,
                "body": None,
                "status": None,
                "faults": [],
                "script_id": None,
                "problems": [],
                "started": time.monotonic(),
                "finished": None,
            }
            self.log.append(entry)
            return entry

    def finish(self, entry: dict[str, Any], status: int) -> None:
        with self.lock:
            self.in_flight -= 1
            entry["status"] = status
            entry["finished"] = time.monotonic()

    def requests(self, route: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.log if route is None or e["route"] == route]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()
            self.max_in_flight = self.in_flight

    def stats(self) -> Mapping[str, int]:
        with self.lock:
            return {
                "requests": self.total_requests,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }
