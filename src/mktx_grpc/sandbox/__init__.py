"""The local X API sandbox: an in-memory emulator of the X endpoints the client uses."""

from __future__ import annotations

from .app import create_sandbox_app
from .config import SandboxConfig
from .server import DEFAULT_PORT, SandboxServer, ThreadedASGIServer, main
from .state import SandboxState

__all__ = [
    "DEFAULT_PORT",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "ThreadedASGIServer",
    "create_sandbox_app",
    "main",
]
