"""Contact rules that need no I/O: tags, attributes, identity fields.

Tags are trimmed, lowercased and de-duplicated: 1 to 64 characters, no commas or
control characters, at most 100 per contact. Attribute keys match
``^[A-Za-z][A-Za-z0-9_]{0,63}$``; values are strings (up to 1,000 characters),
numbers or booleans; at most 100 keys and 16 KB (as compact JSON) per contact.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from ..core.errors import FieldViolation
from .like import like_escape

MAX_TAG = 64
MAX_TAGS = 100
MAX_TAGS_PER_REQUEST = 50
MAX_ATTRIBUTE_KEYS = 100
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_ATTRIBUTE_STRING = 1_000
MAX_DISPLAY_NAME = 50
MAX_QUERY = 200

_X_USER_ID = re.compile(r"^[0-9]{1,19}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# BCP 47 language tag, the common subset: language, optional script, region, variants.
_LANGUAGE = re.compile(
    r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$"
)

SOURCE_INBOUND_MESSAGE = "INBOUND_MESSAGE"
SOURCE_NEW_FOLLOWER = "NEW_FOLLOWER"
SOURCE_MENTION = "MENTION"
SOURCE_IMPORT = "IMPORT"
SOURCE_MANUAL = "MANUAL"


def normalize_tag(tag: str) -> str:
    return tag.strip().lower()


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Trim, lowercase and de-duplicate, keeping first-seen order; drops empty tags."""
    seen: dict[str, None] = {}
    for t in tags:
        t = normalize_tag(t)
        if t:
            seen.setdefault(t, None)
    return list(seen)


def tag_problem(tag: str) -> str | None:
    """Why a (raw) tag is unacceptable, or None."""
    t = normalize_tag(tag)
    if not t:
        return "must not be empty"
    if len(t) > MAX_TAG:
        return f"must be at most {MAX_TAG} characters"
    if "," in t:
        return "must not contain commas"
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in t):
        return "must not contain control characters"
    return None


def validate_tags(tags: Iterable[str], field: str = "tags") -> list[FieldViolation]:
    """Per-tag problems (``tags[i]``) and the per-contact limit, on the raw list."""
    tags = list(tags)
    v = [
        FieldViolation(f"{field}[{i}]", problem)
        for i, t in enumerate(tags)
        if (problem := tag_problem(t)) is not None
    ]
    if len(normalize_tags(tags)) > MAX_TAGS:
        v.append(FieldViolation(field, f"at most {MAX_TAGS} tags per contact"))
    return v


def attribute_value_problem(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return (
            None
            if value == value and value not in (float("inf"), float("-inf"))
            else ("must be a finite number")
        )
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTE_STRING:
            return f"must be at most {MAX_ATTRIBUTE_STRING} characters"
        return None
    if value is None:
        return "must not be null"
    return "must be a string, number or boolean"


def attribute_key_problem(key: str) -> str | None:
    if not _ATTRIBUTE_KEY.match(key):
        return "key must match ^[A-Za-z][A-Za-z0-9_]{0,63}$"
    return None


def attributes_size(attributes: Mapping[str, Any]) -> int:
    return len(json.dumps(attributes, separators=(",", ":"), ensure_ascii=False).encode())


def validate_attributes(
    attributes: Mapping[str, Any], field: str = "attributes", *, allow_null: bool = False
) -> list[FieldViolation]:
    """Key and value rules for each entry (``attributes.<key>``) and the totals."""
    v: list[FieldViolation] = []
    for key, value in attributes.items():
        path = f"{field}.{key}"
        problem = attribute_key_problem(key)
        if problem is None and not (allow_null and value is None):
            problem = attribute_value_problem(value)
        if problem is not None:
            v.append(FieldViolation(path, problem))
    if not allow_null:
        v += check_attribute_totals(attributes, field)
    return v


def check_attribute_totals(
    attributes: Mapping[str, Any], field: str = "attributes"
) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    if len(attributes) > MAX_ATTRIBUTE_KEYS:
        v.append(FieldViolation(field, f"at most {MAX_ATTRIBUTE_KEYS} keys"))
    if attributes_size(attributes) > MAX_ATTRIBUTES_BYTES:
        v.append(FieldViolation(field, f"must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON"))
    return v


def merge_attributes(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level merge: a key with a value sets it, a key with None removes it."""
    out = dict(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def integral(value: Any) -> Any:
    """Struct numbers arrive as floats; store whole numbers as ints (``3`` not ``3.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_identity(
    *,
    x_user_id: str,
    username: str,
    display_name: str,
    profile_image_url: str,
    require_x_user_id: bool = True,
) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    if not x_user_id:
        if require_x_user_id:
            v.append(FieldViolation("x_user_id", "is required"))
    elif not _X_USER_ID.match(x_user_id):
        v.append(FieldViolation("x_user_id", "must be 1 to 19 digits"))
    if username and not _USERNAME.match(username.removeprefix("@")):
        v.append(FieldViolation("username", "must match ^[A-Za-z0-9_]{1,15}$"))
    if len(display_name) > MAX_DISPLAY_NAME:
        v.append(FieldViolation("display_name", f"must be at most {MAX_DISPLAY_NAME} characters"))
    if profile_image_url and (
        not profile_image_url.startswith("https://") or len(profile_image_url) > 2048
    ):
        v.append(FieldViolation("profile_image_url", "must be an https URL"))
    return v


def validate_profile(*, time_zone: str, language: str) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    if time_zone and time_zone not in _time_zones():
        v.append(FieldViolation("time_zone", "must be an IANA time zone such as Europe/Berlin"))
    if language and not _LANGUAGE.match(language):
        v.append(FieldViolation("language", "must be a BCP 47 language tag such as en or pt-BR"))
    return v


#: Shorter search terms match the start of the username or display name: a trigram
#: index cannot serve them, and a substring scan of a large contact list takes seconds.
MIN_SUBSTRING_SEARCH = 3


def _search_term(query: str) -> str:
    """The term without a leading "@", with LIKE wildcards escaped to match literally."""
    return like_escape(query.strip().removeprefix("@").strip())


def search_pattern(query: str) -> str | None:
    """The ILIKE substring pattern for a ListContacts search, or None when there is no
    search or the term is shorter than MIN_SUBSTRING_SEARCH (see search_prefix).

    A leading "@" is ignored; LIKE wildcards in the text match literally.
    """
    q = query.strip().removeprefix("@").strip()
    if len(q) < MIN_SUBSTRING_SEARCH:
        return None
    return f"%{_search_term(query)}%"


def search_prefix(query: str) -> str | None:
    """For a term of one or two characters, the lowercase LIKE prefix pattern matched
    against ``lower(username)`` and ``lower(display_name)``; otherwise None."""
    q = query.strip().removeprefix("@").strip()
    if not q or len(q) >= MIN_SUBSTRING_SEARCH:
        return None
    return f"{_search_term(query).lower()}%"
