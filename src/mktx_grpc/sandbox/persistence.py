"""Keeping the sandbox's world in a JSON file across restarts.

What is kept: users and the consent user, OAuth 1.0a request and access tokens,
OAuth 2.0 access and refresh tokens (with their expiry and rotation state),
webhooks and subscriptions, DMs and group conversations, posts with their
metrics, media records (sizes, states and alt text; never bytes), the Account
Activity log replay needs (last 24 h), rate-limit windows and the sandbox clock
offset. What is not: authorization codes (they live 30 s), OAuth 1.0a nonces,
webhook delivery records, the request log and injected faults.

Saving is atomic (write ``<file>.tmp``, fsync, rename) so a crash mid-save leaves
the previous file. A file that cannot be read, is not JSON or has another format
version is moved aside to ``<file>.corrupt`` with a warning, and the sandbox starts
fresh; it never refuses to start because of its state file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

from .state import (
    ActivityRecord,
    ConversationRecord,
    DmRecord,
    FakeUser,
    MediaRecord,
    OAuth1Token,
    OAuth2Grant,
    PostRecord,
    Principal,
    SandboxState,
    WebhookRecord,
    _Window,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "StatePersister", "dump_state", "load_state"]

log = logging.getLogger("mktx_grpc.sandbox.persistence")

FORMAT = "mktx-x-sandbox-state"
FORMAT_VERSION = 1

T = TypeVar("T")


def _build(cls: type[T], data: dict[str, Any]) -> T:
    """A dataclass from a dict, ignoring keys the class does not have."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def _principal(data: dict[str, Any] | None) -> Principal | None:
    return _build(Principal, data) if data else None


def dump_state(state: SandboxState) -> dict[str, Any]:
    """A JSON-ready snapshot of what survives a restart (see the module doc)."""
    with state.lock:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "clock_offset": state.clock_offset,
            "last_ms": state._last_ms,
            "next_consent_user_id": state.next_consent_user_id,
            "users": [asdict(u) for u in state.users.values()],
            "oauth1_tokens": [asdict(t) for t in state.oauth1_tokens.values()],
            "oauth2_grants": [asdict(g) for g in state.oauth2_grants.values()],
            "webhooks": [asdict(w) for w in state.webhooks.values()],
            "subscriptions": {k: sorted(v) for k, v in state.subscriptions.items()},
            "conversations": [asdict(c) for c in state.conversations.values()],
            "dms": [asdict(d) for d in state.dms],
            "posts": [asdict(p) for p in state.posts.values()],
            "media": [asdict(m) for m in state.media.values()],
            "activity": [asdict(a) for a in state.activity],
            "windows": [
                {"scope": k[0], "bucket": k[1], "length": k[2], **asdict(w)}
                for k, w in state._windows.items()
            ],
        }


def load_state(state: SandboxState, data: dict[str, Any]) -> None:
    """Replace ``state``'s world with a snapshot from :func:`dump_state`.

    Raises ValueError (or KeyError/TypeError) for a snapshot of another format or
    version or with malformed records; ``state`` is then left unchanged.
    """
    if data.get("format") != FORMAT or data.get("version") != FORMAT_VERSION:
        raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} file")
    users = {u["id"]: _build(FakeUser, u) for u in data["users"]}
    tokens = {t["token"]: _build(OAuth1Token, t) for t in data["oauth1_tokens"]}
    grants = {}
    for g in data["oauth2_grants"]:
        grant = _build(OAuth2Grant, g)
        grant.scopes = tuple(grant.scopes)
        grants[grant.token] = grant
    hooks = {w["id"]: _build(WebhookRecord, w) for w in data["webhooks"]}
    subs = {k: set(v) for k, v in data["subscriptions"].items()}
    convs = {c["id"]: _build(ConversationRecord, c) for c in data["conversations"]}
    dms = []
    for d in data["dms"]:
        rec = _build(DmRecord, d)
        rec.principal = _principal(d.get("principal"))
        dms.append(rec)
    posts = {}
    for p in data["posts"]:
        post = _build(PostRecord, p)
        post.principal = _principal(p.get("principal"))
        posts[post.id] = post
    media = {}
    for m in data["media"]:
        rec_m = _build(MediaRecord, m)
        rec_m.chunks = {int(k): int(v) for k, v in m.get("chunks", {}).items()}
        media[rec_m.id] = rec_m
    activity = [_build(ActivityRecord, a) for a in data["activity"]]
    windows = {
        (w["scope"], w["bucket"], int(w["length"])): _Window(float(w["start"]), int(w["count"]))
        for w in data["windows"]
    }
    with state.lock:
        state.clock_offset = float(data["clock_offset"])
        state._last_ms = int(data["last_ms"])
        state.next_consent_user_id = data.get("next_consent_user_id")
        state.users = users
        state.oauth1_tokens = tokens
        state.oauth2_grants = grants
        state.webhooks = hooks
        state.subscriptions = subs
        state.conversations = convs
        state.dms = dms
        state.posts = posts
        state.media = media
        state.activity = activity
        state._windows = windows
        state.seed()


class StatePersister:
    """Loads the state file once, then saves it on a daemon thread: at most
    ``debounce`` seconds after the last change, and once more on :meth:`stop`."""

    def __init__(self, state: SandboxState, path: Path | str, *, debounce: float = 0.5) -> None:
        self._state = state
        self.path = Path(path)
        self._debounce = debounce
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._saved_version = -1
        self._save_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sandbox-state", daemon=True)

    def load(self) -> bool:
        """Load the file if there is one. True when state was restored; a broken
        file is moved aside with a warning and False returned."""
        if not self.path.exists():
            return False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            load_state(self._state, data)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            log.warning(
                "sandbox state file %s unusable (%s: %s); starting fresh, old file kept as %s",
                self.path,
                type(exc).__name__,
                exc,
                aside,
            )
            try:
                os.replace(self.path, aside)
            except OSError:
                pass
            return False
        with self._state.lock:
            self._saved_version = self._state.version
        log.info("sandbox state loaded from %s", self.path)
        return True

    def start(self) -> None:
        self._state.on_change = self._dirty.set
        self._thread.start()

    def stop(self) -> None:
        """Stop the saver thread and write a final snapshot."""
        self._stop.set()
        self._dirty.set()
        self._thread.join(timeout=10)
        self.save()

    def save(self) -> bool:
        """Write the state now if it changed since the last save. Returns whether a
        file was written; I/O errors are logged, never raised."""
        with self._save_lock:
            with self._state.lock:
                version = self._state.version
                if version == self._saved_version and self.path.exists():
                    return False
                snapshot = dump_state(self._state)
            tmp = self.path.with_name(self.path.name + ".tmp")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with tmp.open("w", encoding="utf-8") as fh:
                    json.dump(snapshot, fh, separators=(",", ":"))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except OSError as exc:
                log.warning("could not save sandbox state to %s: %s", self.path, exc)
                return False
            self._saved_version = version
            return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            # Debounce: a burst of requests becomes one write.
            self._stop.wait(self._debounce)
            self._dirty.clear()
            self.save()
