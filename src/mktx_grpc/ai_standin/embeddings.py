"""Deterministic embeddings: a signed, hashed bag of words and character trigrams.

Each feature of the normalised text (every word, weight 1, and every character
trigram of the padded text, weight 0.5) is hashed with BLAKE2b into one of
``dimensions`` buckets with a hash-chosen sign; the vector is then L2-normalised.
Texts that share words and spellings share buckets, so their cosine similarity is
high; unrelated texts land near 0. Token-id inputs hash their ids and id pairs.
The same input always gives the same vector, in every process.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
import unicodedata
from collections.abc import Sequence

__all__ = ["embed_text", "embed_tokens", "to_base64"]

_WORD = re.compile(r"\w+")


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _add(vec: list[float], feature: str, weight: float) -> None:
    h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
    vec[h % len(vec)] += weight if (h >> 63) & 1 else -weight


def _unit(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        # Text with no features (only whitespace) still gets a unit vector.
        vec[0] = 1.0
        return vec
    return [v / norm for v in vec]


def embed_text(text: str, dimensions: int) -> list[float]:
    """The unit vector of ``text`` in ``dimensions`` dimensions (``dimensions`` >= 1)."""
    vec = [0.0] * dimensions
    norm = _normalise(text)
    words = _WORD.findall(norm)
    for word in words:
        _add(vec, "w:" + word, 1.0)
    padded = f" {' '.join(words)} "
    for i in range(len(padded) - 2):
        _add(vec, "c:" + padded[i : i + 3], 0.5)
    return _unit(vec)


def embed_tokens(tokens: Sequence[int], dimensions: int) -> list[float]:
    """The unit vector of a token-id input."""
    vec = [0.0] * dimensions
    for i, token in enumerate(tokens):
        _add(vec, f"t:{token}", 1.0)
        if i:
            _add(vec, f"p:{tokens[i - 1]}:{token}", 0.5)
    return _unit(vec)


def to_base64(vector: Sequence[float]) -> str:
    """OpenAI's ``encoding_format: "base64"``: little-endian float32s, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
