"""What servicers and background loops share in one process."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from psycopg_pool import AsyncConnectionPool

from .ai.client import ModelClient, make_model_client
from .core.config import Settings
from .core.crypto import TokenCipher
from .core.fetch import MediaFetcher
from .core.pagination import PageTokens
from .store.budget import DbDmBudget
from .x.access import XAccess, make_x_client


@dataclass
class Deps:
    settings: Settings
    pool: AsyncConnectionPool
    page_tokens: PageTokens
    cipher: TokenCipher
    #: X calls as connected accounts (credentials, DM budget, error mapping).
    xaccess: XAccess = field(repr=False)
    #: Fetches post media from merchants' URLs (https only; private addresses
    #: refused unless X is the local sandbox).
    media: MediaFetcher = field(repr=False, default_factory=MediaFetcher)
    #: The AI model client (openai AsyncOpenAI behind a circuit breaker).
    model: ModelClient = field(repr=False, default_factory=lambda: make_model_client(Settings()))


def make_deps(
    settings: Settings, pool: AsyncConnectionPool, *, media_http: httpx.AsyncClient | None = None
) -> Deps:
    """Everything a process shares. Close it with :func:`close_deps`."""
    cipher = TokenCipher(settings.encryption_key)
    x = make_x_client(settings, DbDmBudget(pool))
    return Deps(
        settings=settings,
        pool=pool,
        page_tokens=PageTokens(settings.page_token_key),
        cipher=cipher,
        xaccess=XAccess(
            x, cipher, pool, media_http=media_http, max_media_bytes=settings.max_media_bytes
        ),
        media=MediaFetcher(
            allow_private=settings.x_sandbox, ca_file=settings.media_ca_file or None
        ),
        model=make_model_client(settings),
    )


async def close_deps(deps: Deps) -> None:
    """Close what make_deps opened (the X client's HTTP connections); not the pool."""
    await deps.xaccess.x.aclose()
    await deps.media.aclose()
    await deps.model.aclose()
