"""Helpers shared by the sandbox tests: tweepy pointed at the sandbox, and types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import tweepy
from requests.adapters import HTTPAdapter

from mktx_grpc.sandbox import SandboxServer

Bearer = Callable[[str], Awaitable[dict[str, str]]]


class ForwardToSandbox(HTTPAdapter):
    """tweepy hard-codes https://api.twitter.com: forward its calls to the sandbox,
    keeping the Host and scheme it signed (the way a reverse proxy would)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self._target = urlsplit(base_url)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        original = urlsplit(request.url or "")
        request.headers["Host"] = original.netloc
        request.headers["X-Forwarded-Proto"] = original.scheme
        request.url = urlunsplit(
            original._replace(scheme=self._target.scheme, netloc=self._target.netloc)
        )
        return super().send(request, *args, **kwargs)


def tweepy_client(sandbox: SandboxServer, **auth: str) -> tweepy.Client:
    client = tweepy.Client(**auth)  # type: ignore[arg-type]
    client.session.mount("https://api.twitter.com/", ForwardToSandbox(sandbox.base_url))
    return client
