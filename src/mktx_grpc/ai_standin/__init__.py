"""A local OpenAI-compatible stand-in: chat completions, embeddings, moderations and
models over OpenAI's wire protocol, deterministic and needing no model or key, with
an admin API for scripted answers, faults and the request log. See README.md here
and :mod:`.intents` for the convention the AI client uses to pass intents."""

from __future__ import annotations

from .app import create_standin_app
from .config import DEFAULT_API_KEY, ModelSpec, StandinConfig
from .server import AIStandinServer, main
from .state import StandinState

__all__ = [
    "DEFAULT_API_KEY",
    "AIStandinServer",
    "ModelSpec",
    "StandinConfig",
    "StandinState",
    "create_standin_app",
    "main",
]
