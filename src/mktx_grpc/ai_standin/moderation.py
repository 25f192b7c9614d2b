"""Deterministic moderation from per-category phrase lists.

A category is flagged when one of its phrases occurs in the input on word
boundaries (case, accents and punctuation normalised away). A flagged category
scores ``0.9`` plus ``0.03`` per extra hit (at most ``0.99``); an unflagged one a
tiny hash-derived score below ``0.001``, so scores differ by input but never
cross a threshold. ``flagged`` is true when any category is. Scripted results
(the admin API) replace this per input.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from .config import MODERATION_CATEGORIES

__all__ = ["IMAGE_CATEGORIES", "moderate_text", "scripted_result"]

# Categories omni-moderation also scores for images.
IMAGE_CATEGORIES = frozenset(
    {
        "self-harm",
        "self-harm/intent",
        "self-harm/instructions",
        "sexual",
        "violence",
        "violence/graphic",
    }
)


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.findall(r"[a-z0-9]+", plain.replace("'", "")))


def _baseline(text: str, category: str) -> float:
    h = hashlib.blake2b(f"{category}\0{text}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "big") % 1000 / 1_000_000 + 1e-6


def _applied(has_text: bool, has_image: bool) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cat in MODERATION_CATEGORIES:
        kinds = ["text"] if has_text or not has_image else []
        if has_image and cat in IMAGE_CATEGORIES:
            kinds.append("image")
        out[cat] = kinds
    return out


def moderate_text(
    text: str, words: Mapping[str, Sequence[str]], *, has_image: bool = False
) -> dict[str, Any]:
    """One moderation result (``flagged``, ``categories``, ``category_scores``,
    ``category_applied_input_types``) for ``text``."""
    norm = f" {_normalise(text)} "
    categories: dict[str, bool] = {}
    scores: dict[str, float] = {}
    for cat in MODERATION_CATEGORIES:
        hits = sum(norm.count(f" {p} ") for p in (_normalise(w) for w in words.get(cat, ())) if p)
        categories[cat] = hits > 0
        scores[cat] = min(0.99, 0.9 + 0.03 * (hits - 1)) if hits else _baseline(text, cat)
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": _applied(bool(text), has_image),
    }


def scripted_result(script: Mapping[str, Any], text: str) -> dict[str, Any]:
    """A result from an admin script: ``categories`` (names or ``{name: bool}``) and
    optional ``category_scores`` and ``flagged`` overrides."""
    raw = script.get("categories") or ()
    chosen = {k for k, v in raw.items() if v} if isinstance(raw, Mapping) else {str(c) for c in raw}
    given_scores: Mapping[str, Any] = script.get("category_scores") or {}
    categories = {cat: cat in chosen for cat in MODERATION_CATEGORIES}
    scores = {
        cat: float(given_scores.get(cat, 0.95 if categories[cat] else _baseline(text, cat)))
        for cat in MODERATION_CATEGORIES
    }
    flagged = script.get("flagged")
    return {
        "flagged": bool(flagged) if flagged is not None else any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": _applied(True, False),
    }
