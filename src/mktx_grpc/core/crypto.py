"""Encryption of OAuth tokens at rest: AES-256-GCM with a random 96-bit nonce.

Stored form: ``version byte (1) || nonce (12) || ciphertext+tag``. The row's
purpose (for example ``b"account:<id>:access"``) is bound as associated data, so a
ciphertext copied into another row or column fails to decrypt.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class TokenCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("encryption key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "TokenCipher(<key hidden>)"

    def encrypt(self, plaintext: str, purpose: bytes) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), purpose)

    def decrypt(self, blob: bytes, purpose: bytes) -> str:
        """Raises ValueError when the blob is corrupt, from another key, or another row."""
        if not blob or blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext format")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], purpose).decode()
        except InvalidTag:
            raise ValueError("ciphertext does not authenticate") from None
