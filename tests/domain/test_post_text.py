"""parse_post_text and extract_urls against twitter-text's own conformance cases (vendored in
data/), then the rules the suite does not cover: the limit parameter, emoji newer than
twitter-text's list, invalid and blank texts, UTF-16 ranges, case folding traps, and the
run-summing walk checked against a plain step-by-step walk on random texts."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mktx_grpc.domain import post_text
from mktx_grpc.domain.post_text import (
    INVALID_CHARACTERS,
    LONG_POST_MAX_WEIGHTED_LENGTH,
    V2,
    V3,
    CountingConfig,
    ParsedPostText,
    TextProblem,
    TextRange,
    UrlEntity,
    WeightRange,
    extract_urls,
    parse_post_text,
)

DATA = Path(__file__).parent / "data"


def _load(name: str) -> dict[str, Any]:
    with (DATA / name).open(encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


def _cases(name: str, *sections: str) -> list[Any]:
    tests = _load(name)["tests"]
    return [
        pytest.param(section, case, id=f"{section}[{i}] {case['description'][:60]}")
        for section in sections
        for i, case in enumerate(tests[section])
    ]


def as_twitter_text(r: ParsedPostText) -> dict[str, Any]:
    return {
        "weightedLength": r.weighted_length,
        "valid": r.valid,
        "permillage": r.permillage,
        "displayRangeStart": r.display_range.start,
        "displayRangeEnd": r.display_range.end,
        "validRangeStart": r.valid_range.start,
        "validRangeEnd": r.valid_range.end,
    }


# twitter-text's own runners count WeightedTweetsCounterTest with config v2 (no emoji
# parsing) and the other two sections with v3, the default.
CONFIG_FOR = {
    "WeightedTweetsCounterTest": V2,
    "WeightedTweetsWithDiscountedEmojiCounterTest": V3,
    "UnicodeDirectionalMarkerCounterTest": V3,
}


@pytest.mark.parametrize(
    ("section", "case"), _cases("twitter_text_validate.yml", *CONFIG_FOR.keys())
)
def test_weighted_length_conformance(section: str, case: dict[str, Any]) -> None:
    result = parse_post_text(case["text"], config=CONFIG_FOR[section])
    assert as_twitter_text(result) == case["expected"]
    assert result.remaining == 280 - case["expected"]["weightedLength"]


def test_conformance_data_is_all_there() -> None:
    # A truncated or mis-sliced data file would silently shrink the parametrised suite.
    counts = {s: len(c) for s, c in _load("twitter_text_validate.yml")["tests"].items()}
    assert counts == {
        "WeightedTweetsCounterTest": 20,
        "WeightedTweetsWithDiscountedEmojiCounterTest": 22,
        "UnicodeDirectionalMarkerCounterTest": 2,
    }
    urls = {s: len(c) for s, c in _load("twitter_text_extract_urls.yml")["tests"].items()}
    assert urls == {
        "urls": 91,
        "urls_with_indices": 10,
        "urls_with_directional_markers": 2,
        "tco_urls_with_params": 5,
    }


@pytest.mark.parametrize(
    ("section", "case"),
    _cases("twitter_text_extract_urls.yml", "urls", "tco_urls_with_params"),
)
def test_extract_urls_conformance(section: str, case: dict[str, Any]) -> None:
    assert [u.url for u in extract_urls(case["text"])] == case["expected"]


@pytest.mark.parametrize(
    ("section", "case"),
    _cases("twitter_text_extract_urls.yml", "urls_with_indices", "urls_with_directional_markers"),
)
def test_extract_urls_with_indices_conformance(section: str, case: dict[str, Any]) -> None:
    got = [{"url": u.url, "indices": [u.start, u.end]} for u in extract_urls(case["text"])]
    assert got == case["expected"]


@pytest.mark.parametrize(("section", "case"), _cases("twitter_text_tlds.yml", "country", "generic"))
def test_every_tld_conformance(section: str, case: dict[str, Any]) -> None:
    assert [u.url for u in extract_urls(case["text"])] == case["expected"]


def test_tld_lists_are_twitter_texts() -> None:
    lib = _load("twitter_text_tld_lib.yml")
    assert post_text._GENERIC_TLDS == frozenset(lib["generic"])
    assert post_text._COUNTRY_TLDS == frozenset(lib["country"])


# --- the limit ------------------------------------------------------------------------


def test_default_limit_is_280() -> None:
    fits = parse_post_text("x" * 280)
    assert (fits.valid, fits.weighted_length, fits.remaining, fits.over_by) == (True, 280, 0, 0)
    assert fits.permillage == 1000
    over = parse_post_text("x" * 300)
    assert (over.valid, over.reason, over.remaining, over.over_by) == (
        False,
        TextProblem.TOO_LONG,
        -20,
        20,
    )
    assert over.permillage == 1071
    assert over.valid_range == TextRange(0, 279)
    assert over.display_range == TextRange(0, 299)


def test_long_post_limit() -> None:
    text = "x" * 300
    r = parse_post_text(text, max_weighted_length=LONG_POST_MAX_WEIGHTED_LENGTH)
    assert (r.valid, r.reason, r.remaining, r.permillage) == (True, None, 24_700, 12)
    assert r.max_weighted_length == 25_000
    assert r.valid_range == TextRange(0, 299)

    full = parse_post_text("好" * 12_500, max_weighted_length=25_000)
    assert (full.valid, full.weighted_length, full.remaining) == (True, 25_000, 0)
    one_more = parse_post_text("好" * 12_500 + "!", max_weighted_length=25_000)
    assert (one_more.reason, one_more.over_by) == (TextProblem.TOO_LONG, 1)
    assert one_more.valid_range == TextRange(0, 12_499)


@pytest.mark.parametrize("limit", [0, -1, 25_001])
def test_limit_out_of_range_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="max_weighted_length"):
        parse_post_text("hello", max_weighted_length=limit)


def test_a_small_limit_counts_the_same_way() -> None:
    # Poll options are counted this way against 25.
    r = parse_post_text("Visit https://example.com/a/very/long/path now", max_weighted_length=25)
    assert (r.weighted_length, r.reason, r.over_by) == (33, TextProblem.TOO_LONG, 8)
    assert r.valid_range == TextRange(0, 5)  # "Visit " fits; the URL (23) would not


# --- empty, blank and invalid ---------------------------------------------------------


def test_empty_text() -> None:
    r = parse_post_text("")
    assert (r.valid, r.reason, r.weighted_length, r.permillage) == (
        False,
        TextProblem.EMPTY,
        0,
        0,
    )
    assert (r.display_range, r.valid_range) == (TextRange(0, 0), TextRange(0, 0))


@pytest.mark.parametrize("text", [" ", "   ", "\n\t\r ", "\x00"])
def test_blank_text_is_empty_as_xs_server_trims_it(text: str) -> None:
    r = parse_post_text(text)
    assert (r.valid, r.reason) == (False, TextProblem.EMPTY)
    assert r.weighted_length == len(text)  # still counted, as twitter-text counts it


@pytest.mark.parametrize("text", [" a ", "\u3000", "\u00a0", "\u200b"])
def test_text_with_anything_but_ascii_blanks_is_not_empty(text: str) -> None:
    assert parse_post_text(text).reason is None


@pytest.mark.parametrize("char", sorted(INVALID_CHARACTERS))
def test_invalid_characters(char: str) -> None:
    r = parse_post_text(f"ab{char}cd")
    assert (r.valid, r.reason, r.invalid_characters) == (
        False,
        TextProblem.INVALID_CHARACTERS,
        (char,),
    )
    assert r.weighted_length == 6  # U+FEFF..U+FFFF weigh 2
    assert r.valid_range == TextRange(0, 1)


def test_invalid_characters_are_listed_once_in_order() -> None:
    r = parse_post_text("a\uffffb\ufffe\uffffc\ufffe")
    assert r.invalid_characters == ("\uffff", "\ufffe")


def test_invalid_character_first_keeps_the_valid_range_at_zero() -> None:
    r = parse_post_text("\ufeff https://example.com")
    assert (r.reason, r.weighted_length, r.valid_range) == (
        TextProblem.INVALID_CHARACTERS,
        26,
        TextRange(0, 0),
    )


def test_invalid_characters_take_precedence_over_length() -> None:
    r = parse_post_text("x" * 290 + "\ufffe")
    assert r.reason is TextProblem.INVALID_CHARACTERS
    assert (r.over_by, r.valid_range) == (12, TextRange(0, 279))


@pytest.mark.parametrize("char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066"])
def test_directional_marks_are_valid_in_v3(char: str) -> None:
    # twitter-text 3 dropped U+202A..U+202E from its invalid list; its conformance requires it.
    r = parse_post_text(f"abc{char}def")
    assert (r.valid, r.weighted_length) == (True, 8)


# --- weights --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "weight"),
    [
        ("a", 1),
        ("é", 1),
        ("\u10ff", 1),
        ("\u1100", 2),  # first code point past the first range (Hangul Jamo)
        ("\u2000", 1),
        ("\u200d", 1),
        ("\u200e", 2),
        ("\u2010", 1),
        ("\u201f", 1),
        ("\u2020", 2),
        ("\u2032", 1),
        ("\u2037", 1),
        ("\u2038", 2),
        ("中", 2),
        ("한", 2),
        ("\U0001f600", 2),
        ("\ud800", 2),  # a lone surrogate is counted, not an error
    ],
)
def test_code_point_weights(char: str, weight: int) -> None:
    assert parse_post_text(char).weighted_length == weight


def test_nfc_normalisation_and_utf16_ranges() -> None:
    decomposed = "e\u0301"  # é as two code points
    r = parse_post_text(decomposed)
    assert (r.weighted_length, r.display_range, r.valid_range) == (
        1,
        TextRange(0, 1),
        TextRange(0, 1),
    )
    astral = parse_post_text("\U0001f637a")  # 😷 is two UTF-16 units
    assert (astral.weighted_length, astral.display_range) == (3, TextRange(0, 2))


def test_first_range_holding_a_code_point_decides_its_weight() -> None:
    overlapping = CountingConfig(
        scale=100,
        default_weight=200,
        transformed_url_length=23,
        ranges=(WeightRange(0, 127, 100), WeightRange(64, 255, 300)),
        emoji_parsing=False,
    )
    # "A" is in both ranges (the first wins: 1); "À" only in the second (3); "ā" in neither.
    assert parse_post_text("A", config=overlapping).weighted_length == 1
    assert parse_post_text("À", config=overlapping).weighted_length == 3
    assert parse_post_text("Aaā", config=overlapping).weighted_length == 4
    assert parse_post_text("AÀā" * 10, config=overlapping).weighted_length == 60


# --- emoji ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "v3", "v2"),
    [
        ("❤️‍🔥", 2, 7),  # Emoji 13.1, newer than twitter-text's list
        ("🐦‍🔥", 2, 5),  # Emoji 15.1
        ("🙂‍↔️", 2, 7),  # Emoji 15.1
        ("🧑🏽‍🦰", 2, 7),
        ("👨‍👩‍👧‍👦", 2, 11),
        ("🏴󠁧󠁢󠁳󠁣󠁴󠁿", 2, 14),  # tag sequence (Scotland)
        ("🇯🇵", 2, 4),
        ("🇦🇦", 4, 4),  # two regional indicators that are no flag
        ("#️⃣", 2, 5),
        ("1⃣", 2, 3),
        ("©️", 2, 3),
        ("©", 1, 1),  # text-style © is no emoji, as in twitter-text
        ("®", 1, 1),
        ("👍🏽👍🏽", 4, 8),
        ("a❤️‍🔥b", 4, 9),
    ],
)
def test_emoji_sequences_count_as_one(text: str, v3: int, v2: int) -> None:
    assert parse_post_text(text).weighted_length == v3
    assert parse_post_text(text, config=V2).weighted_length == v2


def test_emoji_ranges_and_limit_crossing_inside_a_sequence_run() -> None:
    family = "👨‍👩‍👧‍👦"  # 11 UTF-16 units, weight 2
    r = parse_post_text(family * 141)
    assert (r.weighted_length, r.reason) == (282, TextProblem.TOO_LONG)
    assert r.valid_range == TextRange(0, 140 * 11 - 1)
    assert r.display_range == TextRange(0, 141 * 11 - 1)


# --- URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "weighted"),
    [
        ("https://example.com/" + "a" * 300, 23),
        ("example.com", 23),
        ("HTTPS://EXAMPLE.COM/PATH", 23),
        ("see example.com.", 28),  # the final period is not part of the URL
        ("example.invalidtld", 18),  # no such TLD: plain text
        ("foo/example.com", 15),  # a bare domain right after "/" is no URL
        ("foo-example.com", 23),  # one label: foo-example
        ("_example.com", 12),
        ("example.com:8080", 28),  # a bare domain's port is not part of its URL
        ("http://example.com:8080", 23),
        ("https://t.co/abc/def", 27),  # t.co URLs end after the slug
        ("https://t.co/" + "a" * 41, 54),  # a slug over 40 characters is no URL
        ("https://t.co/" + "a" * 40, 23),
        ("中文example.com中文", 31),  # the ASCII part of a bare domain is the URL
        ("http://中文.com", 23),
        ("https://a.com https://b.com https://c.com", 71),
        ("@example.com", 12),  # preceded by @: a mention, not a URL
        ("$example.com", 12),
    ],
)
def test_urls_weigh_23(text: str, weighted: int) -> None:
    assert parse_post_text(text).weighted_length == weighted


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("example.com:8080", [UrlEntity("example.com", 0, 11)]),
        ("http://example.com:8080/x", [UrlEntity("http://example.com:8080/x", 0, 25)]),
        ("https://t.co/abc/def", [UrlEntity("https://t.co/abc", 0, 16)]),
        ("中文example.co.jp/x y", [UrlEntity("example.co.jp/x", 2, 17)]),
        ("no dots here", []),
        ("http://xn--80ak6aa92e.com", [UrlEntity("http://xn--80ak6aa92e.com", 0, 25)]),
    ],
)
def test_extract_urls(text: str, urls: list[UrlEntity]) -> None:
    assert extract_urls(text) == urls


@pytest.mark.parametrize(
    ("text", "weighted"),
    [
        ("http://example.ſite", 19),  # ſ is no s to twitter-text (JavaScript /i)
        ("http://example.sıte", 19),
        # ı is a valid character before a URL, so it precedes the URL instead of starting it.
        ("ıexample.com", 24),
        ("ıhttp://example.com", 24),
    ],
)
def test_case_folding_follows_javascript(text: str, weighted: int) -> None:
    assert parse_post_text(text).weighted_length == weighted


def test_kelvin_sign_is_a_k_only_after_nfc() -> None:
    # NFC turns the Kelvin sign into "K" before counting, so .kim is a TLD to X; the
    # extractor alone, as twitter-text's, does not fold it.
    assert extract_urls("http://example.\u212aim") == []
    assert parse_post_text("http://example.\u212aim").weighted_length == 23


def test_url_length_limit() -> None:
    # 4,096 counting the protocol twice, as twitter-text measures it.
    path = "a" * (4096 - len("https://") * 2 - len("example.com/"))
    assert len(extract_urls(f"https://example.com/{path}")) == 1
    assert extract_urls(f"https://example.com/{path}a") == []


def test_label_length_is_measured_punycoded() -> None:
    ascii63 = "a" * 63
    assert len(extract_urls(f"http://{ascii63}.com")) == 1
    assert extract_urls(f"http://{ascii63}a.com") == []
    # 20 kana punycode to "xn--" + 22 = 26 characters: a URL; 60 to 66: none.
    assert len(extract_urls("http://" + "あ" * 20 + ".com")) == 1
    assert extract_urls("http://" + "あ" * 60 + ".com") == []


# --- the walk, against a plain step-by-step walk ---------------------------------------


def step_by_step(text: str, limit: int, config: CountingConfig) -> tuple[int, int]:
    """(weighted length, valid range end): twitter-text's loop, one step at a time."""
    import unicodedata

    normalized = unicodedata.normalize("NFC", text)
    entities: dict[int, tuple[int, int]] = {}
    if config.emoji_parsing:
        for start, end in post_text._emoji_spans(normalized):
            entities[start] = (end - start, config.default_weight)
    for u in extract_urls(normalized):
        entities[u.start] = (len(u.url), config.transformed_url_length * config.scale)
    weight, i, i16, valid, valid_end = 0, 0, 0, True, 0
    while i < len(normalized):
        if i in entities:
            n, w = entities[i]
        else:
            n, cp = 1, ord(normalized[i])
            w = next((r.weight for r in config.ranges if r.start <= cp <= r.end), 200)
        step = normalized[i : i + n]
        weight += w
        valid = valid and not any(ch in INVALID_CHARACTERS for ch in step)
        i16 += len(step.encode("utf-16-le", "surrogatepass")) // 2
        if valid and weight <= limit * config.scale:
            valid_end = i16 - 1
        i += n
    offset = len(text.encode("utf-16-le", "surrogatepass")) // 2 - i16
    return weight // config.scale, valid_end + offset


PIECES = [
    "a",
    "b ",
    ". ",
    "中",
    "é",
    "e\u0301",
    "\U0001f637",
    "👨‍👩‍👧‍👦",
    "❤️‍🔥",
    "1⃣",
    "\ufffe",
    " https://example.com/x ",
    " example.org ",
    " t.co/abc ",
    "\u202a",
    "\n",
]


@pytest.mark.parametrize("seed", range(200))
def test_walk_matches_step_by_step(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 160)))
    limit = rng.choice([1, 25, 100, 280])
    config = rng.choice([V2, V3])
    r = parse_post_text(text, max_weighted_length=limit, config=config)
    assert (r.weighted_length, r.valid_range.end) == step_by_step(text, limit, config)


# --- the URL match driver, against twitter-text's expression tried everywhere ------------

URL_PIECES = [
    "a",
    "x1",
    "_",
    "-",
    ".",
    ". ",
    "/",
    "@",
    "#",
    "$",
    " ",
    "中",
    "é",
    "ı",
    "http://",
    "https://",
    "HTTPS://",
    "t.co/",
    "xn--",
    "com",
    "co",
    "jp",
    ".com",
    ".co.jp",
    ":80",
    "?q=1",
    "(a)",
    "\u202a",
    "\ufffe",
    "＠",
    "😀",
    "\u3002",
    "ab_cd",
    "foo-bar",
]


# Chains of labels, "_" and "-" where the driver's reasoning about later starts applies.
CHAIN_PIECES = ["a", "b", "_", "-", ".", ".", "com", "co", "jp", "x", "http://", "https://"]
CHAIN_PIECES += ["中", "1", " ", "/", "xn--", "net", ".."]


@pytest.mark.parametrize("pieces", [URL_PIECES, CHAIN_PIECES], ids=["mixed", "chains"])
@pytest.mark.parametrize("seed", range(300))
def test_url_driver_finds_what_finditer_finds(seed: int, pieces: list[str]) -> None:
    rng = random.Random(seed)
    raw = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 80)))
    s = raw.translate(post_text._CASE_NEUTRAL)  # as extract_urls prepares its subject
    everywhere = [(m.span(), m.groups()) for m in post_text._URL_RE.finditer(s)]
    driven = [(m.span(), m.groups()) for m in post_text._url_matches(s)]
    assert driven == everywhere


class CountingPattern:
    """Wraps a compiled expression to count match attempts, the cost the driver bounds."""

    def __init__(self, pattern: Any) -> None:
        self.pattern, self.calls = pattern, 0

    def match(self, s: str, pos: int = 0, endpos: int = sys.maxsize) -> Any:
        self.calls += 1
        return self.pattern.match(s, pos, endpos)


@pytest.mark.parametrize(
    ("text", "most_full", "most_name_first"),
    [
        ("故" * 5000 + " example.com", 3, 0),  # a long run that is no label
        ("故" * 5000 + ".x", 3, 0),  # a long label with no TLD after it
        ("故_" * 2500 + ".com", 3, 1),  # only the start after the last "_" is left
        ("a." * 2500 + "x", 3, 0),  # a long chain of labels with no TLD
        ("a.b_c." * 1000 + "com", 3, 1000),  # each "c" can only be a domain name
        ("a_b." + "com_x." * 1000, 3, 1000),  # each "x.com" matches, name first
        ("https://a." + "com_x." * 1000, 3, 1000),
        ("word. " * 1000, 1001, 0),  # separate labels: one cheap attempt each
    ],
)
def test_url_driver_tries_few_positions(
    monkeypatch: pytest.MonkeyPatch, text: str, most_full: int, most_name_first: int
) -> None:
    full = CountingPattern(post_text._URL_RE)
    name_first = CountingPattern(post_text._URL_NAME_FIRST_RE)
    monkeypatch.setattr(post_text, "_URL_RE", full)
    monkeypatch.setattr(post_text, "_URL_NAME_FIRST_RE", name_first)
    list(post_text._url_matches(text))
    # Tried at every position, the full expression would make ~5,000 attempts here, each
    # rescanning the run or the chain after it.
    assert full.calls <= most_full
    assert name_first.calls <= most_name_first


ASCII_PIECES = ["a", "b", "-", ".", ".", "com", "co", "jp", "x", "中", "1", "é", "..", "xn--"]
ASCII_PIECES += ["net", "_", "中国"]


@pytest.mark.parametrize("seed", range(300))
def test_ascii_domain_driver_finds_what_finditer_finds(seed: int) -> None:
    rng = random.Random(seed)
    s = "".join(rng.choice(ASCII_PIECES) for _ in range(rng.randint(0, 60)))
    pos = rng.randint(0, len(s))
    end = rng.randint(pos, len(s))
    everywhere = [m.span() for m in post_text._ASCII_DOMAIN_RE.finditer(s, pos, end)]
    assert [m.span() for m in post_text._ascii_domains(s, pos, end)] == everywhere


def test_ascii_domain_driver_tries_each_stretch_once(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = CountingPattern(post_text._ASCII_DOMAIN_RE)
    monkeypatch.setattr(post_text, "_ASCII_DOMAIN_RE", counting)
    # A bare domain in non-ASCII text: only its ASCII part ending in a TLD is the URL.
    assert extract_urls("a." * 2000 + "b中x.com") == [UrlEntity("x.com", 4002, 4007)]
    # Tried at every position, the 2,000 labels before 中 would take ~4,000 attempts.
    assert counting.calls == 2
