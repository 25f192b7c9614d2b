"""post_rules: media sniffing from real file headers, media count/mixing/size limits, https
media URLs, polls, thread length, and the exact field paths and messages of each violation."""

from __future__ import annotations

import struct
import zlib

import pytest

from mktx_grpc.core.errors import FieldViolation, InvalidArgument
from mktx_grpc.domain.post_rules import (
    MAX_GIF_BYTES,
    MAX_IMAGE_BYTES,
    MAX_THREAD_PARTS,
    MAX_VIDEO_BYTES,
    Media,
    MediaKind,
    MediaType,
    Poll,
    PostPart,
    check_media_url,
    check_poll,
    check_text,
    check_thread,
    sniff_media_type,
)


def png_1x1() -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


PNG = png_1x1()
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00C\x00"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88"
MP4 = ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41")
MOV = ftyp(b"qt  ", b"qt  ")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (JPEG, MediaType(MediaKind.IMAGE, "image/jpeg")),
        (PNG, MediaType(MediaKind.IMAGE, "image/png")),
        (WEBP, MediaType(MediaKind.IMAGE, "image/webp")),
        (GIF, MediaType(MediaKind.GIF, "image/gif")),
        (b"GIF87a\x01\x00\x01\x00", MediaType(MediaKind.GIF, "image/gif")),
        (MP4, MediaType(MediaKind.VIDEO, "video/mp4")),
        (ftyp(b"mp42", b"mp42", b"isom"), MediaType(MediaKind.VIDEO, "video/mp4")),
        # a vendor's major brand, MP4 by its compatible brands
        (ftyp(b"XAVC", b"XAVC", b"mp42", b"iso2"), MediaType(MediaKind.VIDEO, "video/mp4")),
        (MOV, MediaType(MediaKind.VIDEO, "video/quicktime")),
        (ftyp(b"XYZ1", b"qt  "), MediaType(MediaKind.VIDEO, "video/quicktime")),
        (
            b"\x00\x00\x00\x08wide\x00\x01\x00\x00mdat",
            MediaType(MediaKind.VIDEO, "video/quicktime"),
        ),
    ],
)
def test_sniffs_the_types_x_takes(head: bytes, expected: MediaType) -> None:
    assert sniff_media_type(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff\xd8",  # a JPEG signature cut short
        b"%PDF-1.7\n",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"BM6\x00\x00\x00\x00\x00",  # BMP
        b"II*\x00\x08\x00\x00\x00",  # TIFF
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a RIFF that is no WEBP
        ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"),  # audio-only MP4
        ftyp(b"heic", b"mif1", b"heic"),  # HEIC image
        b"\x1aE\xdf\xa3\x93B\x82\x88matroska",  # WebM/Matroska
        b"GIF90a",
    ],
)
def test_refuses_other_content(head: bytes) -> None:
    assert sniff_media_type(head) is None


def image(size: int = 1000) -> Media:
    return Media(url="https://cdn.example.com/a.png", size_bytes=size, head=PNG)


def gif(size: int = 1000) -> Media:
    return Media(url="https://cdn.example.com/a.gif", size_bytes=size, head=GIF)


def video(size: int = 1000) -> Media:
    return Media(url="https://cdn.example.com/a.mp4", size_bytes=size, head=MP4)


# --- threads and text -----------------------------------------------------------------


def test_a_valid_thread_has_no_violations() -> None:
    parts = [
        PostPart("Our spring sale starts now 🌸 https://shop.example.com/spring"),
        PostPart("", media=[image(), image(), image(), image()]),
        PostPart("Which colour next?", poll=Poll(["Red", "Blue", "Green"], 1440)),
        PostPart("Watch the film", media=[video()]),
        PostPart("x" * 280),
    ]
    assert check_thread(parts) == []


def test_thread_length() -> None:
    assert check_thread([]) == [FieldViolation("parts", "needs at least 1 part")]
    assert check_thread([PostPart("hi")] * MAX_THREAD_PARTS) == []
    assert check_thread([PostPart("hi")] * 26) == [
        FieldViolation("parts", "a thread has at most 25 parts, not 26")
    ]


def test_too_long_text_names_the_part_and_how_far_over() -> None:
    parts = [PostPart("fine"), PostPart("fine too"), PostPart("好" * 150)]
    assert check_thread(parts) == [
        FieldViolation(
            "parts[2].text", "is 300 characters as X counts them, 20 over the limit of 280"
        )
    ]


def test_long_post_limit_is_the_accounts() -> None:
    text = "word " * 1000  # 5,000
    assert check_thread([PostPart(text)], max_weighted_length=25_000) == []
    assert check_thread([PostPart(text)]) == [
        FieldViolation(
            "parts[0].text", "is 5,000 characters as X counts them, 4,720 over the limit of 280"
        )
    ]
    with pytest.raises(ValueError, match="max_weighted_length"):
        check_thread([PostPart(text)], max_weighted_length=30_000)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_text_is_required_without_media(text: str) -> None:
    assert check_thread([PostPart(text)]) == [FieldViolation("parts[0].text", "is required")]
    assert check_thread([PostPart(text, media=[image()])]) == []


def test_invalid_characters_and_length_are_both_reported() -> None:
    assert check_text("x" * 285 + "\ufeff\ufffe", "post.text") == [
        FieldViolation("post.text", "contains characters X does not accept: U+FEFF, U+FFFE"),
        FieldViolation("post.text", "is 289 characters as X counts them, 9 over the limit of 280"),
    ]


def test_urls_count_23_in_thread_text() -> None:
    text = "x" * 256 + " https://example.com/" + "p" * 500  # 257 + 23 = 280
    assert check_thread([PostPart(text)]) == []
    assert check_thread([PostPart(text + "!")]) == [
        FieldViolation(
            "parts[0].text", "is 281 characters as X counts them, 1 over the limit of 280"
        )
    ]


# --- media ----------------------------------------------------------------------------


def test_at_most_four_images() -> None:
    five = [image() for _ in range(5)]
    assert check_thread([PostPart("look", media=five)]) == [
        FieldViolation("parts[0].media[4]", "a post has at most 4 images")
    ]
    six = [image() for _ in range(6)]
    fields = [v.field for v in check_thread([PostPart("look", media=six)])]
    assert fields == ["parts[0].media[4]", "parts[0].media[5]"]


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        (
            [image(), video()],
            [
                FieldViolation(
                    "parts[0].media[1]", "a video must be the only media of a post, which has 2"
                )
            ],
        ),
        (
            [gif(), gif()],
            [
                FieldViolation(
                    "parts[0].media[0]", "a GIF must be the only media of a post, which has 2"
                ),
                FieldViolation(
                    "parts[0].media[1]", "a GIF must be the only media of a post, which has 2"
                ),
            ],
        ),
        (
            [gif(), image(), image(), image(), image()],
            [
                FieldViolation(
                    "parts[0].media[0]", "a GIF must be the only media of a post, which has 5"
                )
            ],
        ),
        ([gif()], []),
        ([video()], []),
    ],
)
def test_gif_and_video_stand_alone(media: list[Media], expected: list[FieldViolation]) -> None:
    assert check_thread([PostPart("x", media=media)]) == expected


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (image(MAX_IMAGE_BYTES), None),
        (
            image(MAX_IMAGE_BYTES + 1),
            "is 5,242,881 bytes; an image is at most 5,242,880 bytes (5 MiB)",
        ),
        (gif(MAX_GIF_BYTES), None),
        (gif(MAX_GIF_BYTES + 1), "is 15,728,641 bytes; a GIF is at most 15,728,640 bytes (15 MiB)"),
        (video(MAX_VIDEO_BYTES), None),
        (
            video(MAX_VIDEO_BYTES + 1),
            "is 536,870,913 bytes; a video is at most 536,870,912 bytes (512 MiB)",
        ),
        # the kind not known yet: only the largest limit applies
        (Media(url="https://cdn.example.com/x", size_bytes=MAX_IMAGE_BYTES * 2), None),
        (
            Media(url="https://cdn.example.com/x", size_bytes=MAX_VIDEO_BYTES + 1),
            "is 536,870,913 bytes; media are at most 536,870,912 bytes (512 MiB)",
        ),
        (image(0), "is empty"),
        (image(-1), "has a negative size"),
    ],
)
def test_size_limits_by_kind(item: Media, message: str | None) -> None:
    expected = [FieldViolation("parts[0].media[0]", message)] if message else []
    assert check_thread([PostPart("x", media=[item])]) == expected


def test_kind_comes_from_the_content_not_the_name() -> None:
    pdf_named_jpg = Media(url="https://cdn.example.com/photo.jpg", size_bytes=9, head=b"%PDF-1.7\n")
    assert check_thread([PostPart("x", media=[pdf_named_jpg])]) == [
        FieldViolation(
            "parts[0].media[0]", "is not a JPEG, PNG, WEBP, GIF, MP4 or MOV file (by its content)"
        )
    ]
    # a video named .png is a video, and so must stand alone
    video_named_png = Media(url="https://cdn.example.com/a.png", size_bytes=100, head=MP4)
    assert [v.field for v in check_thread([PostPart("x", media=[image(), video_named_png])])] == [
        "parts[0].media[1]"
    ]


def test_unfetched_media_get_only_the_checks_their_facts_allow() -> None:
    unfetched = [Media(url=f"https://cdn.example.com/{i}") for i in range(4)]
    assert check_thread([PostPart("x", media=unfetched)]) == []
    assert [v.field for v in check_thread([PostPart("x", media=[*unfetched, Media()])])] == [
        "parts[0].media[4]"
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://cdn.example.com/a.png", None),
        ("HTTPS://cdn.example.com/a.png", None),
        ("https://cdn.example.com:8443/a.png?sig=abc", None),
        ("http://cdn.example.com/a.png", "must be an https URL"),
        ("ftp://cdn.example.com/a.png", "must be an https URL"),
        ("//cdn.example.com/a.png", "must be an https URL"),
        ("cdn.example.com/a.png", "must be an https URL"),
        ("https:///a.png", "must name a host"),
        ("https://user:s3cret@cdn.example.com/a.png", "must not carry a user name or password"),
        ("https://token@cdn.example.com/a.png", "must not carry a user name or password"),
        ("https://cdn.example.com/a b.png", "must not contain spaces or control characters"),
        ("https://cdn.example.com/a.png\n", "must not contain spaces or control characters"),
        ("https://cdn.example.com:99999/a.png", "is not a valid URL"),
        ("https://[::1/a.png", "is not a valid URL"),
    ],
)
def test_media_urls(url: str, problem: str | None) -> None:
    assert check_media_url(url) == problem


def test_media_url_violations_name_the_url_field_and_never_quote_it() -> None:
    secret = "https://user:s3cret@cdn.example.com/a.png"
    violations = check_thread([PostPart("x", media=[image(), Media(url=secret, head=PNG)])])
    assert violations == [
        FieldViolation("parts[0].media[1].url", "must not carry a user name or password")
    ]
    assert all("s3cret" not in v.description for v in violations)


# --- polls ----------------------------------------------------------------------------


def test_poll_options_count() -> None:
    assert check_poll(Poll(["Yes"], 60), "poll") == [
        FieldViolation("poll.options", "needs 2 to 4 options, not 1")
    ]
    assert check_poll(Poll(["a", "b", "c", "d", "e"], 60), "poll") == [
        FieldViolation("poll.options", "needs 2 to 4 options, not 5")
    ]
    assert check_poll(Poll(["a", "b", "c", "d"], 60), "poll") == []


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("a" * 25, None),
        ("a" * 26, "is 26 characters as X counts them, 1 over the limit of 25"),
        ("好" * 12, None),  # 24
        ("好" * 13, "is 26 characters as X counts them, 1 over the limit of 25"),
        ("🇯🇵 Japan 🇯🇵", None),  # 2 + 7 + 2 = 11
        ("https://example.com/" + "a" * 60, None),  # a URL is 23
        ("", "is required"),
        ("   ", "is required"),
        ("ok\ufffe", "contains characters X does not accept: U+FFFE"),
    ],
)
def test_poll_options_are_counted_as_x_counts(option: str, message: str | None) -> None:
    expected = [FieldViolation("parts[1].poll.options[0]", message)] if message else []
    parts = [PostPart("first"), PostPart("Pick one", poll=Poll([option, "other"], 60))]
    assert check_thread(parts) == expected


@pytest.mark.parametrize(
    ("minutes", "ok"),
    [(5, True), (10_080, True), (4, False), (10_081, False), (0, False), (-5, False)],
)
def test_poll_duration(minutes: int, ok: bool) -> None:
    violations = check_poll(Poll(["a", "b"], minutes), "parts[0].poll")
    if ok:
        assert violations == []
    else:
        assert violations == [
            FieldViolation(
                "parts[0].poll.duration_minutes",
                f"must be 5 to 10,080 minutes (7 days), not {minutes:,}",
            )
        ]


def test_a_poll_excludes_media_and_needs_text() -> None:
    assert check_thread([PostPart("Vote", media=[image()], poll=Poll(["a", "b"], 60))]) == [
        FieldViolation("parts[0].poll", "a post has a poll or media, not both")
    ]
    assert check_thread([PostPart("", poll=Poll(["a", "b"], 60))]) == [
        FieldViolation("parts[0].text", "is required")
    ]


def test_a_quote_excludes_media_and_polls() -> None:
    assert check_thread([PostPart("So true", quote_post_id="1460323737035677698")]) == []
    quoting = FieldViolation(
        "parts[0].quote_post_id", "a post quoting another has no media or poll"
    )
    assert check_thread([PostPart("So true", media=[image()], quote_post_id="1")]) == [quoting]
    assert check_thread([PostPart("Vote", poll=Poll(["a", "b"], 60), quote_post_id="1")]) == [
        quoting
    ]


def test_every_violation_of_a_thread_comes_back_at_once() -> None:
    parts = [
        PostPart("x" * 281, media=[Media(url="http://cdn.example.com/a.png", head=PNG), gif()]),
        PostPart("", poll=Poll(["only one"], 2)),
    ]
    violations = check_thread(parts)
    assert [v.field for v in violations] == [
        "parts[0].text",
        "parts[0].media[0].url",
        "parts[0].media[1]",
        "parts[1].text",
        "parts[1].poll.options",
        "parts[1].poll.duration_minutes",
    ]
    error = InvalidArgument(violations)
    assert error.reason == "VALIDATION_ERROR"
    assert error.violations == violations
