"""What servicers and background loops share in one process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from psycopg_pool import AsyncConnectionPool

from .config import Settings
from .crypto import TokenCipher
from .pagination import PageTokens

if TYPE_CHECKING:
    from .xaccess import XAccess


@dataclass
class Deps:
    settings: Settings
    pool: AsyncConnectionPool
    page_tokens: PageTokens
    cipher: TokenCipher
    #: X calls as connected accounts (credentials, DM budget, error mapping).
    xaccess: XAccess = field(repr=False)
