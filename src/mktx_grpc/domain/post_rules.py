"""The rules X applies to a post or a thread, checked before anything is sent. Pure.

Each ``check_*`` function returns every :class:`~mktx_grpc.core.errors.FieldViolation` it
finds (empty when all is well), with paths such as ``parts[2].text``,
``parts[0].media[4]`` and ``parts[1].poll.options[0]``, ready for ``InvalidArgument``.
Messages never repeat a URL, which may carry secrets.

The rules:

- A thread has 1 to :data:`MAX_THREAD_PARTS` (25) parts, each a post replying to the
  one before. X's API sets no limit of its own on a reply chain; 25 is the most X's
  composer takes in one thread, so a thread that passes here can also be edited there.
- Text is counted as X counts it (:func:`~mktx_grpc.domain.post_text.parse_post_text`)
  against the account's limit (280, or up to 25,000 for long posts). It may be empty
  only in a part that has media.
- Media: up to 4 images, or exactly 1 GIF, or exactly 1 video, never mixed. Images are
  at most 5 MiB, GIFs 15 MiB, videos 512 MiB (X's upload limits, in bytes). The kind is
  sniffed from the first bytes (JPEG, PNG, WEBP, GIF, MP4, MOV), never taken from a
  declared content type. Media fetched from a URL must be fetched over https.
- A poll has 2 to 4 options of 1 to 25 characters, counted as X counts, and lasts 5 to
  10,080 minutes (7 days). Media, a poll and a quoted post exclude each other.

A rule whose input is not known yet is not checked: a :class:`Media` without ``head``
gets no kind or mixing check (unless the client ``declared`` its kind, which is then
checked as if sniffed), one without ``size_bytes`` no size check. Check again once the
media has been fetched; content of another kind than the one declared is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from ..core.errors import FieldViolation
from .post_text import STANDARD_MAX_WEIGHTED_LENGTH, ParsedPostText, TextProblem, parse_post_text

__all__ = [
    "MAX_GIF_BYTES",
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_THREAD_PARTS",
    "MAX_VIDEO_BYTES",
    "POLL_MAX_MINUTES",
    "POLL_MAX_OPTIONS",
    "POLL_MIN_MINUTES",
    "POLL_MIN_OPTIONS",
    "POLL_OPTION_MAX_WEIGHTED_LENGTH",
    "SNIFF_BYTES",
    "Media",
    "MediaKind",
    "MediaType",
    "Poll",
    "PostPart",
    "check_media",
    "check_media_url",
    "check_part",
    "check_poll",
    "check_text",
    "check_thread",
    "sniff_media_type",
]

MAX_THREAD_PARTS: Final = 25
MAX_IMAGES: Final = 4
MAX_IMAGE_BYTES: Final = 5 * 1024 * 1024
MAX_GIF_BYTES: Final = 15 * 1024 * 1024
MAX_VIDEO_BYTES: Final = 512 * 1024 * 1024
POLL_MIN_OPTIONS: Final = 2
POLL_MAX_OPTIONS: Final = 4
POLL_OPTION_MAX_WEIGHTED_LENGTH: Final = 25
POLL_MIN_MINUTES: Final = 5
POLL_MAX_MINUTES: Final = 10_080
SNIFF_BYTES: Final = 64
""":func:`sniff_media_type` reads at most this many leading bytes."""


class MediaKind(StrEnum):
    """How X treats a media file: the limits and mixing rules differ by kind."""

    IMAGE = "IMAGE"
    GIF = "GIF"
    VIDEO = "VIDEO"


@dataclass(frozen=True, slots=True)
class MediaType:
    kind: MediaKind
    mime_type: str


_MAX_BYTES: Final = {
    MediaKind.IMAGE: MAX_IMAGE_BYTES,
    MediaKind.GIF: MAX_GIF_BYTES,
    MediaKind.VIDEO: MAX_VIDEO_BYTES,
}
_KIND_NAME: Final = {
    MediaKind.IMAGE: "an image",
    MediaKind.GIF: "a GIF",
    MediaKind.VIDEO: "a video",
}

_JPEG: Final = MediaType(MediaKind.IMAGE, "image/jpeg")
_PNG: Final = MediaType(MediaKind.IMAGE, "image/png")
_WEBP: Final = MediaType(MediaKind.IMAGE, "image/webp")
_GIF: Final = MediaType(MediaKind.GIF, "image/gif")
_MP4: Final = MediaType(MediaKind.VIDEO, "video/mp4")
_MOV: Final = MediaType(MediaKind.VIDEO, "video/quicktime")

# ISO base media brands of MP4 video files; audio-only brands (M4A, M4B, ...) are absent on
# purpose, as X takes no audio files.
_MP4_BRANDS: Final = frozenset(
    [
        *(b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1"),
        *(b"M4V ", b"M4VH", b"M4VP", b"MSNV", b"dash", b"mmp4"),
    ]
)
_AUDIO_BRANDS: Final = frozenset([b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "])
# QuickTime files written before the ftyp box existed start with one of these atoms.
_QUICKTIME_ATOMS: Final = frozenset([b"moov", b"mdat", b"wide"])


def sniff_media_type(head: bytes) -> MediaType | None:
    """The media type of a file from its first bytes, or None when X would not take it.

    Recognises JPEG, PNG, WEBP and GIF by their signatures, MP4 and MOV by the ISO base
    media ``ftyp`` box (its major and compatible brands) or a leading QuickTime atom.
    Pass at least the first :data:`SNIFF_BYTES` bytes when the file has that many; fewer
    can only make the answer None. Never raises.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _GIF
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _WEBP
    if len(head) >= 12 and head[4:8] == b"ftyp":
        major = head[8:12]
        if major in _AUDIO_BRANDS:
            return None
        box_end = min(int.from_bytes(head[0:4], "big"), len(head), SNIFF_BYTES)
        brands = {major} | {head[i : i + 4] for i in range(16, box_end - 3, 4)}
        if major == b"qt  ":
            return _MOV
        if brands & _MP4_BRANDS:
            return _MP4
        if b"qt  " in brands:
            return _MOV
        return None
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return _MOV
    return None


@dataclass(frozen=True, slots=True)
class Media:
    """One media item of a post, as far as it is known.

    ``url`` is where it is fetched from (None when its bytes were given directly);
    ``size_bytes`` and ``head`` (its first bytes, see :data:`SNIFF_BYTES`) once known;
    ``declared`` the kind the client said it is, if any.
    """

    url: str | None = None
    size_bytes: int | None = None
    head: bytes | None = None
    declared: MediaKind | None = None


@dataclass(frozen=True, slots=True)
class Poll:
    options: Sequence[str]
    duration_minutes: int


@dataclass(frozen=True, slots=True)
class PostPart:
    """One post: of a thread, or the only one."""

    text: str = ""
    media: Sequence[Media] = ()
    poll: Poll | None = None
    quote_post_id: str | None = None
    """The post this one quotes, if any."""


def check_thread(
    parts: Sequence[PostPart],
    *,
    max_weighted_length: int = STANDARD_MAX_WEIGHTED_LENGTH,
    path: str = "parts",
) -> list[FieldViolation]:
    """Every violation in a thread of ``parts`` (a single post is a thread of one).

    ``max_weighted_length`` is the account's text limit. All parts are checked, also
    beyond :data:`MAX_THREAD_PARTS`, so one answer lists everything to fix. Raises
    ``ValueError`` only for a ``max_weighted_length`` outside 1..25,000.
    """
    violations: list[FieldViolation] = []
    if not parts:
        violations.append(FieldViolation(path, "needs at least 1 part"))
    elif len(parts) > MAX_THREAD_PARTS:
        violations.append(
            FieldViolation(path, f"a thread has at most {MAX_THREAD_PARTS} parts, not {len(parts)}")
        )
    for i, part in enumerate(parts):
        violations += check_part(part, f"{path}[{i}]", max_weighted_length=max_weighted_length)
    return violations


def check_part(
    part: PostPart, path: str, *, max_weighted_length: int = STANDARD_MAX_WEIGHTED_LENGTH
) -> list[FieldViolation]:
    """Every violation in one post: its text, media and poll, and how they combine."""
    violations = check_text(
        part.text,
        f"{path}.text",
        max_weighted_length=max_weighted_length,
        required=not part.media,
    )
    violations += check_media(part.media, f"{path}.media")
    if part.poll is not None:
        if part.media:
            violations.append(
                FieldViolation(f"{path}.poll", "a post has a poll or media, not both")
            )
        violations += check_poll(part.poll, f"{path}.poll")
    if part.quote_post_id is not None and (part.media or part.poll is not None):
        violations.append(
            FieldViolation(f"{path}.quote_post_id", "a post quoting another has no media or poll")
        )
    return violations


def check_text(
    text: str,
    path: str,
    *,
    max_weighted_length: int = STANDARD_MAX_WEIGHTED_LENGTH,
    required: bool = True,
) -> list[FieldViolation]:
    """The text's violations: blank when ``required``, invalid characters, too long.

    A too-long text's message gives its weighted length, the limit and how far over it
    is, e.g. ``is 305 characters as X counts them, 25 over the limit of 280``.
    """
    parsed = parse_post_text(text, max_weighted_length=max_weighted_length)
    return _text_violations(parsed, path, required=required)


def _text_violations(parsed: ParsedPostText, path: str, *, required: bool) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    if parsed.reason is TextProblem.EMPTY:
        if required:
            violations.append(FieldViolation(path, "is required"))
        return violations
    if parsed.invalid_characters:
        names = ", ".join(f"U+{ord(c):04X}" for c in parsed.invalid_characters)
        violations.append(FieldViolation(path, f"contains characters X does not accept: {names}"))
    if parsed.over_by:
        violations.append(
            FieldViolation(
                path,
                f"is {parsed.weighted_length:,} characters as X counts them,"
                f" {parsed.over_by:,} over the limit of {parsed.max_weighted_length:,}",
            )
        )
    return violations


def check_media(media: Sequence[Media], path: str) -> list[FieldViolation]:
    """The media list's violations: count, mixing, each item's type, size and URL.

    Paths name the item: ``<path>[4]`` for the fifth image of a post, ``<path>[0].url``
    for a URL that is not https.
    """
    violations: list[FieldViolation] = []
    kinds: list[MediaKind | None] = []
    for i, item in enumerate(media):
        item_path = f"{path}[{i}]"
        if item.url is not None:
            problem = check_media_url(item.url)
            if problem:
                violations.append(FieldViolation(f"{item_path}.url", problem))
        sniffed = sniff_media_type(item.head) if item.head is not None else None
        if item.head is not None and sniffed is None:
            violations.append(
                FieldViolation(
                    item_path, "is not a JPEG, PNG, WEBP, GIF, MP4 or MOV file (by its content)"
                )
            )
        if sniffed and item.declared and sniffed.kind is not item.declared:
            violations.append(
                FieldViolation(
                    item_path,
                    f"is {_KIND_NAME[sniffed.kind]} by its content,"
                    f" not {_KIND_NAME[item.declared]} as declared",
                )
            )
        kind = sniffed.kind if sniffed else item.declared
        kinds.append(kind)
        if item.size_bytes is not None:
            problem = _size_problem(item.size_bytes, kind)
            if problem:
                violations.append(FieldViolation(item_path, problem))

    singles = [k for k in kinds if k in (MediaKind.GIF, MediaKind.VIDEO)]
    for i, kind in enumerate(kinds):
        if kind in (MediaKind.GIF, MediaKind.VIDEO) and len(media) > 1:
            violations.append(
                FieldViolation(
                    f"{path}[{i}]",
                    f"{_KIND_NAME[kind]} must be the only media of a post, which has {len(media)}",
                )
            )
        elif i >= MAX_IMAGES and not singles:
            violations.append(
                FieldViolation(f"{path}[{i}]", f"a post has at most {MAX_IMAGES} images")
            )
    return violations


def _size_problem(size: int, kind: MediaKind | None) -> str | None:
    if size < 0:
        return "has a negative size"
    if size == 0:
        return "is empty"
    limit = _MAX_BYTES[kind] if kind else MAX_VIDEO_BYTES
    if size > limit:
        what = f"{_KIND_NAME[kind]} is" if kind else "media are"
        return f"is {size:,} bytes; {what} at most {limit:,} bytes ({limit // (1024 * 1024)} MiB)"
    return None


def check_media_url(url: str) -> str | None:
    """Why ``url`` cannot be a media source, or None: it must be https, with a host and
    no user name or password. The answer never quotes the URL."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number up to 65535
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() != "https":
        return "must be an https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    return None


def check_poll(poll: Poll, path: str) -> list[FieldViolation]:
    """The poll's violations: option count, each option's length, the duration."""
    violations: list[FieldViolation] = []
    if not POLL_MIN_OPTIONS <= len(poll.options) <= POLL_MAX_OPTIONS:
        violations.append(
            FieldViolation(
                f"{path}.options",
                f"needs {POLL_MIN_OPTIONS} to {POLL_MAX_OPTIONS} options, not {len(poll.options)}",
            )
        )
    for i, option in enumerate(poll.options):
        parsed = parse_post_text(option, max_weighted_length=POLL_OPTION_MAX_WEIGHTED_LENGTH)
        violations += _text_violations(parsed, f"{path}.options[{i}]", required=True)
    if not POLL_MIN_MINUTES <= poll.duration_minutes <= POLL_MAX_MINUTES:
        violations.append(
            FieldViolation(
                f"{path}.duration_minutes",
                f"must be {POLL_MIN_MINUTES} to {POLL_MAX_MINUTES:,} minutes (7 days),"
                f" not {poll.duration_minutes:,}",
            )
        )
    return violations
