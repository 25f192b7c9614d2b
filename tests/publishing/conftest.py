"""Fixtures of the publishing tests: the local HTTPS media server (media_server.py),
trusted by the service under test."""

from __future__ import annotations

import pytest
from media_server import *  # noqa: F403 - pytest collects fixtures from this namespace
from media_server import MediaServer

from mktx_grpc.core.config import Settings


@pytest.fixture
def settings(settings: Settings, media_server: MediaServer) -> Settings:
    """The root settings, trusting the media server's test CA."""
    return settings.replace(media_ca_file=media_server.ca_file)
