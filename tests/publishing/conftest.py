"""Fixtures of the publishing tests: the local HTTPS media server (media_server.py)."""

from media_server import *  # noqa: F403 - pytest collects fixtures from this namespace
