"""What servicers and background loops share in one process."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from .config import Settings
from .crypto import TokenCipher
from .pagination import PageTokens


@dataclass
class Deps:
    settings: Settings
    pool: AsyncConnectionPool
    page_tokens: PageTokens
    cipher: TokenCipher
