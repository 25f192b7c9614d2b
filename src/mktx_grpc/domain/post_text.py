"""X's weighted post length, counted as twitter-text v3 counts it. Pure: no I/O.

:func:`parse_post_text` is twitter-text's ``parseTweet`` with the v3 configuration
(``config/v3.json``): the text is NFC-normalised; every URL that twitter-text's extractor
finds (with or without ``https://``, bare domains only with a TLD from its list, t.co links
cut after their slug) weighs 23; an emoji sequence (ZWJ family, skin tone, flag, keycap,
tag sequence) weighs 200, that is one emoji; any other code point weighs 100 in the v3
ranges (U+0000–U+10FF, U+2000–U+200D, U+2010–U+201F, U+2032–U+2037) and 200 elsewhere
(CJK, emoji); weights are divided by the scale 100. The result carries what twitter-text
returns (weighted length, validity, permillage, display and valid ranges) plus the
remaining count and, when invalid, why.

It follows twitter-text's JavaScript implementation, whose behaviour is all in its own
code (the Java one leans on the JDK's IDN), and passes every case of twitter-text's
conformance suite for weighted counting and URL extraction (``tests/domain/data``). It
finds the same URLs as twitter-text's expressions but in linear time, where those are
quadratic on some long texts (see ``_url_matches``). Where the choice was open:

- Emoji sequences come from the ``emoji`` package (Unicode's emoji-test.txt, qualified or
  not), so sequences newer than twitter-text's own list (Emoji 12), such as ❤️‍🔥, also
  count as one emoji, as v3's emoji parsing intends.
- Only U+FFFE, U+FEFF and U+FFFF make a text invalid: twitter-text 3 dropped U+202A–U+202E
  from that list, and its conformance cases require directional marks to be valid.
- Text that is empty or only ASCII spaces and control characters is invalid (EMPTY), as
  twitter-text's Java parser (the server-side one) decides; the JavaScript one counts it.
- The TLD list is twitter-text's last published one (IANA, March 2020), because it decides
  which bare domains X links, and so counts as 23.

Known divergence from twitter-text's Java extractor, which X's servers may run: the Java
one also rejects Unicode domains containing General Punctuation (U+2000–U+206F), ``"`` or
a backtick, and measures the 4,096-character URL limit slightly differently. Both pass
the same conformance suite.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Final, TypeAlias

import emoji

__all__ = [
    "INVALID_CHARACTERS",
    "LONG_POST_MAX_WEIGHTED_LENGTH",
    "STANDARD_MAX_WEIGHTED_LENGTH",
    "V2",
    "V3",
    "CountingConfig",
    "ParsedPostText",
    "TextProblem",
    "TextRange",
    "UrlEntity",
    "WeightRange",
    "extract_urls",
    "parse_post_text",
]

STANDARD_MAX_WEIGHTED_LENGTH: Final = 280
"""``maxWeightedTweetLength`` of twitter-text v3: the limit of an ordinary account."""

LONG_POST_MAX_WEIGHTED_LENGTH: Final = 25_000
"""The longest limit X offers (Premium long posts); :func:`parse_post_text` accepts no more."""

INVALID_CHARACTERS: Final = frozenset("\ufffe\ufeff\uffff")
"""Characters X refuses in a post (twitter-text 3's list)."""


@dataclass(frozen=True, slots=True)
class WeightRange:
    """Code points ``start``..``end`` (inclusive) weigh ``weight``."""

    start: int
    end: int
    weight: int


@dataclass(frozen=True, slots=True)
class _Weigher:
    """Sums code point weights of a run using one character class per non-default weight."""

    default: int
    classes: tuple[tuple[int, re.Pattern[str]], ...]
    ranges: tuple[WeightRange, ...]
    known: dict[str, int]  # weights of emoji sequences seen, a bounded set

    def weigh_emoji(self, sequence: str) -> int:
        weight = self.known.get(sequence)
        if weight is None:
            weight = self.known[sequence] = self.weigh(sequence)
        return weight

    def weigh(self, run: str) -> int:
        total = self.default * len(run)
        for weight, cls in self.classes:
            hits = len(run) - len(cls.sub("", run))
            total += (weight - self.default) * hits
        return total

    def weigh_char(self, ch: str) -> int:
        cp = ord(ch)
        for r in self.ranges:
            if r.start <= cp <= r.end:
                return r.weight
        return self.default


def _make_weigher(ranges: tuple[WeightRange, ...], default_weight: int) -> _Weigher:
    # The first range holding a code point decides its weight, so later ranges lose the
    # parts earlier ones cover before they are grouped by weight.
    taken: list[tuple[int, int]] = []
    by_weight: dict[int, list[tuple[int, int]]] = {}
    for r in ranges:
        pieces = [(r.start, r.end)]
        for lo, hi in taken:
            pieces = [p for a, b in pieces for p in ((a, min(b, lo - 1)), (max(a, hi + 1), b))]
            pieces = [(a, b) for a, b in pieces if a <= b]
        taken.append((r.start, r.end))
        if r.weight != default_weight:
            by_weight.setdefault(r.weight, []).extend(pieces)
    classes = tuple(
        # "+": sub() then removes each run of such characters at once, not one by one.
        (w, re.compile("[" + "".join(f"{_esc(a)}-{_esc(b)}" for a, b in spans) + "]+"))
        for w, spans in by_weight.items()
        if spans
    )
    return _Weigher(default_weight, classes, ranges, {})


def _esc(cp: int) -> str:
    return f"\\U{cp:08x}"


@dataclass(frozen=True, slots=True)
class CountingConfig:
    """One of twitter-text's ``config/v*.json`` files, without the limit (a parameter here).

    A code point weighs the ``weight`` of the first range holding it, else
    ``default_weight``; a URL weighs ``transformed_url_length * scale``; with
    ``emoji_parsing`` an emoji sequence weighs ``default_weight``.
    """

    scale: int
    default_weight: int
    transformed_url_length: int
    ranges: tuple[WeightRange, ...]
    emoji_parsing: bool
    _weigher: _Weigher = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_weigher", _make_weigher(self.ranges, self.default_weight))


_RANGES: Final = (
    WeightRange(0, 4351, 100),
    WeightRange(8192, 8205, 100),
    WeightRange(8208, 8223, 100),
    WeightRange(8242, 8247, 100),
)

V3: Final = CountingConfig(
    scale=100, default_weight=200, transformed_url_length=23, ranges=_RANGES, emoji_parsing=True
)
"""twitter-text's ``config/v3.json``: what X counts today."""

V2: Final = CountingConfig(
    scale=100, default_weight=200, transformed_url_length=23, ranges=_RANGES, emoji_parsing=False
)
"""twitter-text's ``config/v2.json`` (each code point of an emoji sequence counted apart)."""


class TextProblem(StrEnum):
    """Why a text is not valid; the first that applies, in this order."""

    EMPTY = "EMPTY"
    """No text, or only ASCII spaces and control characters."""
    INVALID_CHARACTERS = "INVALID_CHARACTERS"
    """Holds U+FFFE, U+FEFF or U+FFFF (see ``ParsedPostText.invalid_characters``)."""
    TOO_LONG = "TOO_LONG"
    """The weighted length is over the limit."""


@dataclass(frozen=True, slots=True)
class TextRange:
    """Inclusive ``start``..``end`` offsets in UTF-16 code units of the text as given.

    UTF-16 because that is how twitter-text reports them, so JavaScript, Java and Swift
    clients can slice with them directly. An empty text has the range 0..0.
    """

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ParsedPostText:
    """What :func:`parse_post_text` found; the first five fields are twitter-text's."""

    weighted_length: int
    """The length X counts, to compare with ``max_weighted_length``."""
    valid: bool
    """Non-empty, within the limit and free of invalid characters."""
    permillage: int
    """``weighted_length`` per mille of ``max_weighted_length``, rounded down (may pass 1000)."""
    display_range: TextRange
    """The whole text."""
    valid_range: TextRange
    """The longest prefix that fits the limit and holds no invalid character."""
    max_weighted_length: int
    """The limit this text was counted against."""
    reason: TextProblem | None
    """Why the text is not valid; None when it is."""
    invalid_characters: tuple[str, ...]
    """The distinct invalid characters in the text, in order of first appearance."""

    @property
    def remaining(self) -> int:
        """``max_weighted_length - weighted_length``; negative when the text is too long."""
        return self.max_weighted_length - self.weighted_length

    @property
    def over_by(self) -> int:
        """How far over the limit the text is; 0 when it fits."""
        return max(0, -self.remaining)


@dataclass(frozen=True, slots=True)
class UrlEntity:
    """A URL as twitter-text's extractor reports it.

    ``start``/``end`` are code point offsets into the text given to :func:`extract_urls`
    (the NFC form, in :func:`parse_post_text`). ``url`` is normally ``text[start:end]``;
    for a bare domain inside non-ASCII text it is the ASCII domain plus the path, as
    twitter-text reports it.
    """

    url: str
    start: int
    end: int


def parse_post_text(
    text: str,
    *,
    max_weighted_length: int = STANDARD_MAX_WEIGHTED_LENGTH,
    config: CountingConfig = V3,
) -> ParsedPostText:
    """Count ``text`` as X does and say whether it fits ``max_weighted_length``.

    ``max_weighted_length`` is 280 for ordinary accounts, up to
    :data:`LONG_POST_MAX_WEIGHTED_LENGTH` for accounts allowed long posts; the result's
    ``remaining``, ``permillage`` and validity are relative to it.

    Never raises for any text (including lone surrogates); raises ``ValueError`` when
    ``max_weighted_length`` is not between 1 and 25,000.
    """
    if not 1 <= max_weighted_length <= LONG_POST_MAX_WEIGHTED_LENGTH:
        raise ValueError(
            f"max_weighted_length must be 1..{LONG_POST_MAX_WEIGHTED_LENGTH},"
            f" not {max_weighted_length}"
        )
    # ASCII is its own NFC form, and the common case.
    ascii_only = text.isascii()
    normalized = text if ascii_only else unicodedata.normalize("NFC", text)

    # start -> (length in code points, weight, is an emoji)
    entities: dict[int, tuple[int, int, bool]] = {}
    if config.emoji_parsing and not ascii_only:
        for start, end in _emoji_spans(normalized):
            entities[start] = (end - start, config.default_weight, True)
    url_weight = config.transformed_url_length * config.scale
    for u in extract_urls(normalized):
        # A URL wins over an emoji starting at the same place, as in twitter-text.
        entities[u.start] = (len(u.url), url_weight, False)

    invalid = _INVALID_RE.search(normalized)
    first_invalid = invalid.start() if invalid else len(normalized)
    limit = max_weighted_length * config.scale
    weigher = config._weigher
    text16 = len(text) if ascii_only else _utf16_len(text)
    normalized16 = text16 if ascii_only else _utf16_len(normalized)

    # The steps twitter-text takes over entities; one inside an earlier one is never seen.
    # The total is every code point's weight, with each entity's traded for its own.
    steps: list[tuple[int, int, int]] = []
    covered = 0
    total = weigher.weigh(normalized)
    for start in sorted(entities):
        if start >= covered:
            length, entity_weight, is_emoji = entities[start]
            length = min(length, len(normalized) - start)
            steps.append((start, length, entity_weight))
            covered = start + length
            span = normalized[start:covered]
            total += entity_weight - (
                weigher.weigh_emoji(span) if is_emoji else weigher.weigh(span)
            )
    if total <= limit and first_invalid == len(normalized):
        # All of it fits: no need to find where the limit is crossed.
        return _result(
            text,
            normalized,
            total // config.scale,
            max_weighted_length,
            None,
            max(normalized16 - 1, 0),
            text16,
            normalized16,
        )

    valid_end16 = _last_fitting_unit(normalized, steps, weigher, limit, first_invalid)
    return _result(
        text,
        normalized,
        total // config.scale,
        max_weighted_length,
        invalid,
        valid_end16,
        text16,
        normalized16,
    )


def _last_fitting_unit(
    normalized: str,
    steps: Sequence[tuple[int, int, int]],
    weigher: _Weigher,
    limit: int,
    first_invalid: int,
) -> int:
    """The UTF-16 offset twitter-text reports as the valid range's end.

    twitter-text walks the text one step at a time (an entity or a code point) and keeps
    the offset of the last unit of the last step that still fits the limit, before any
    invalid character; 0 if none does. Weights are positive and an invalid character
    stays seen, so the walk stops at the first step that fails, and a plain run between
    entities that fits whole is taken at once.
    """
    weight = pos = pos16 = last = 0
    for start, length, entity_weight in (*steps, (len(normalized), 0, 0)):
        if start > pos:
            run = normalized[pos:start]
            run_weight, run16 = weigher.weigh(run), _utf16_len(run)
            if weight + run_weight > limit or start > first_invalid:
                for i, ch in enumerate(run, start=pos):
                    weight += weigher.weigh_char(ch)
                    if weight > limit or i >= first_invalid:
                        return last
                    pos16 += 2 if ord(ch) > 0xFFFF else 1
                    last = pos16 - 1
            weight, pos, pos16, last = weight + run_weight, start, pos16 + run16, pos16 + run16 - 1
        if length == 0:  # the end
            return last
        weight += entity_weight
        if weight > limit or start >= first_invalid:
            return last
        pos, pos16 = start + length, pos16 + _utf16_len(normalized[start : start + length])
        last = pos16 - 1
    return last


def _result(
    text: str,
    normalized: str,
    weighted: int,
    max_weighted_length: int,
    invalid: re.Match[str] | None,
    valid_end16: int,
    text16: int,
    normalized16: int,
) -> ParsedPostText:
    invalid_chars = tuple(dict.fromkeys(_INVALID_RE.findall(normalized))) if invalid else ()
    reason: TextProblem | None = None
    if weighted == 0 or _BLANK_RE.fullmatch(normalized):
        reason = TextProblem.EMPTY
    elif invalid_chars:
        reason = TextProblem.INVALID_CHARACTERS
    elif weighted > max_weighted_length:
        reason = TextProblem.TOO_LONG
    return ParsedPostText(
        weighted_length=weighted,
        valid=reason is None,
        # Float arithmetic on purpose: twitter-text computes it so, and rounding must agree.
        permillage=math.floor((weighted / max_weighted_length) * 1000),
        display_range=TextRange(0, text16 - 1 if text16 else 0),
        # twitter-text shifts the end by the length NFC removed, however it was removed.
        valid_range=TextRange(0, valid_end16 + text16 - normalized16),
        max_weighted_length=max_weighted_length,
        reason=reason,
        invalid_characters=invalid_chars,
    )


def extract_urls(text: str) -> list[UrlEntity]:
    """The URLs twitter-text's ``extractUrlsWithIndices`` finds in ``text``, in order.

    With ``http://``/``https://`` any domain ending in a listed TLD or ``xn--`` label is
    taken; without, only the ASCII (and Latin-accented) part of the domain, and not after
    ``-``, ``_``, ``.`` or ``/``. A domain label longer than 63 characters once
    punycode-encoded, or a URL over 4,096 characters, is no URL. A ``t.co`` link ends
    after its slug and query, and one whose slug is over 40 characters is no URL.
    """
    if "." not in text:
        return []
    # Python folds ı, İ, ſ and the Kelvin sign onto ASCII letters when ignoring case, and
    # JavaScript does not; swap them for letters of the same classes that fold nowhere.
    subject = text.translate(_CASE_NEUTRAL) if _CASE_TRAPS.search(text) else text
    urls: list[UrlEntity] = []
    for m in _url_matches(subject):
        before, protocol, path = m.group(1), m.group(3), m.group(6)
        start, end = m.span(2)
        url, domain = text[start:end], text[m.start(4) : m.end(4)]
        if not _is_valid_url(url, protocol or "https://", domain, m.group(4)):
            continue
        if not protocol:
            if before in ("-", "_", ".", "/"):
                continue
            last: UrlEntity | None = None
            search_from = 0
            for a in _ascii_domains(subject, m.start(4), m.end(4)):
                ascii_domain = text[a.start() : a.end()]
                at = domain.find(ascii_domain, search_from)
                search_from = at + len(ascii_domain)
                last = UrlEntity(ascii_domain, start + at, start + search_from)
                urls.append(last)
            if last is None:
                continue
            if path is not None:
                urls[-1] = UrlEntity(url.replace(domain, last.url, 1), last.start, end)
        else:
            tco = _TCO_RE.match(subject, start, end)
            if tco:
                if len(tco.group(1)) > _MAX_TCO_SLUG_LENGTH:
                    continue
                url, end = text[start : tco.end()], tco.end()
            urls.append(UrlEntity(url, start, end))
    return urls


# --- URL extraction -------------------------------------------------------------------
# The expressions below follow twitter-text's (js/src/regexp/), class by class. They run
# with IGNORECASE, as twitter-text's do with /i.

_MAX_URL_LENGTH: Final = 4096
_MAX_TCO_SLUG_LENGTH: Final = 40
_MAX_DOMAIN_LABEL_LENGTH: Final = 63

_PUNCT: Final = r"!'#%&()*+,\\./:;<=>?@\[\]\^{|}~$"  # with "-" and "_" added where they are
_SPACES: Final = r"\t-\r \x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_INVALID: Final = r"\ufffe\ufeff\uffff"
_DIRECTIONAL: Final = r"\u202a-\u202e\u061c\u200e\u200f\u2066-\u2069"
_LATIN_ACCENTS: Final = (
    r"\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b\u0263"
    r"\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC: Final = r"\u0400-\u04ff"

_NOT_IN_DOMAIN: Final = _SPACES + _INVALID + _DIRECTIONAL
_DOMAIN_CHAR: Final = rf"[^{_PUNCT}\-_{_NOT_IN_DOMAIN}]"
# (?:[_-]|C)* in twitter-text; one class matches the same and backtracks the same.
_SUBDOMAIN: Final = rf"(?:(?:{_DOMAIN_CHAR}[^{_PUNCT}{_NOT_IN_DOMAIN}]*)?{_DOMAIN_CHAR}\.)"
_DOMAIN_NAME: Final = rf"(?:(?:{_DOMAIN_CHAR}[^{_PUNCT}_{_NOT_IN_DOMAIN}]*)?{_DOMAIN_CHAR}\.)"
_PUNYCODE: Final = r"(?:xn--[\-0-9a-z]+)"
_TLD_END: Final = r"(?=[^0-9a-zA-Z@+\-]|\Z)"

_PATH_CHAR: Final = rf"[a-z{_CYRILLIC}0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&{_LATIN_ACCENTS}]"
_BALANCED_PARENS: Final = rf"\((?:{_PATH_CHAR}+|(?:{_PATH_CHAR}*\({_PATH_CHAR}+\){_PATH_CHAR}*))\)"
_PATH_END: Final = rf"(?:[+\-a-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]|(?:{_BALANCED_PARENS}))"
_PATH: Final = (
    rf"(?:(?:{_PATH_CHAR}*(?:{_BALANCED_PARENS}{_PATH_CHAR}*)*{_PATH_END})|(?:@{_PATH_CHAR}+/))"
)
_QUERY: Final = r"\?[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*[a-z0-9\-_&=#/]"
_PRECEDING: Final = rf"(?:[^A-Za-z0-9@\uff20$#\uff03{_INVALID}]|[{_DIRECTIONAL}]|^)"

_CASE_TRAPS: Final = re.compile("[\u0130\u0131\u017f\u212a]")
_CASE_NEUTRAL: Final = str.maketrans(
    {"\u0130": "\u0101", "\u0131": "\u0101", "\u017f": "\u0101", "\u212a": "\u212e"}
)


_Trie: TypeAlias = "dict[str, _Trie]"


def _trie_pattern(words: Iterable[str]) -> str:
    """An alternation matching the same words, longest first, as a prefix tree.

    twitter-text lists its TLDs longest-first where one is a prefix of another; a tree
    tries the same candidates in the same order without testing each word in turn.
    """
    trie: _Trie = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: _Trie) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if "" in node:
            alts.append("")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(trie)


# twitter-text 3.1.0's TLD lists (conformance/tld_lib.yml; Apache-2.0, Copyright 2011
# Twitter, Inc.), which it took from IANA in March 2020. Data, kept as published.
_GENERIC_TLDS: Final = frozenset(
    """
aaa aarp abarth abb abbott abbvie abc able abogado abudhabi academy accenture accountant
accountants aco active actor adac ads adult aeg aero aetna afamilycompany afl africa agakhan
agency aig aigo airbus airforce airtel akdn alfaromeo alibaba alipay allfinanz allstate ally
alsace alstom americanexpress americanfamily amex amfam amica amsterdam analytics android
anquan anz aol apartments app apple aquarelle arab aramco archi army arpa art arte asda asia
associates athleta attorney auction audi audible audio auspost author auto autos avianca aws
axa azure baby baidu banamex bananarepublic band bank bar barcelona barclaycard barclays
barefoot bargains baseball basketball bauhaus bayern bbc bbt bbva bcg bcn beats beauty beer
bentley berlin best bestbuy bet bharti bible bid bike bing bingo bio biz black blackfriday
blanco blockbuster blog bloomberg blue bms bmw bnl bnpparibas boats boehringer bofa bom bond
boo book booking boots bosch bostik boston bot boutique box bradesco bridgestone broadway
broker brother brussels budapest bugatti build builders business buy buzz bzh cab cafe cal
call calvinklein cam camera camp cancerresearch canon capetown capital capitalone car
caravan cards care career careers cars cartier casa case caseih cash casino cat catering
catholic cba cbn cbre cbs ceb center ceo cern cfa cfd chanel channel charity chase chat
cheap chintai chloe christmas chrome chrysler church cipriani circle cisco citadel citi
citic city cityeats claims cleaning click clinic clinique clothing cloud club clubmed coach
codes coffee college cologne com comcast commbank community company compare computer comsec
condos construction consulting contact contractors cooking cookingchannel cool coop corsica
country coupon coupons courses cpa credit creditcard creditunion cricket crown crs cruise
cruises csc cuisinella cymru cyou dabur dad dance data date dating datsun day dclk dds deal
dealer deals degree delivery dell deloitte delta democrat dental dentist desi design dev dhl
diamonds diet digital direct directory discount discover dish diy dnp docs doctor dodge dog
doha domains doosan dot download drive dtv dubai duck dunlop duns dupont durban dvag dvr
earth eat eco edeka edu education email emerck energy engineer engineering enterprises epost
epson equipment ericsson erni esq estate esurance etisalat eurovision eus events everbank
exchange expert exposed express extraspace fage fail fairwinds faith family fan fans farm
farmers fashion fast fedex feedback ferrari ferrero fiat fidelity fido film final finance
financial fire firestone firmdale fish fishing fit fitness flickr flights flir florist
flowers flsmidth fly foo food foodnetwork football ford forex forsale forum foundation fox
free fresenius frl frogans frontdoor frontier ftr fujitsu fujixerox fun fund furniture
futbol fyi gal gallery gallo gallup game games gap garden gay gbiz gdn gea gent genting
george ggee gift gifts gives giving glade glass gle global globo gmail gmbh gmo gmx godaddy
gold goldpoint golf goo goodhands goodyear goog google gop got gov grainger graphics gratis
green gripe grocery group guardian gucci guge guide guitars guru hair hamburg hangout haus
hbo hdfc hdfcbank health healthcare help helsinki here hermes hgtv hiphop hisamitsu hitachi
hiv hkt hockey holdings holiday homedepot homegoods homes homesense honda honeywell horse
hospital host hosting hot hoteles hotels hotmail house how hsbc htc hughes hyatt hyundai ibm
icbc ice icu ieee ifm iinet ikano imamat imdb immo immobilien inc industries infiniti info
ing ink institute insurance insure int intel international intuit investments ipiranga irish
iselect ismaili ist istanbul itau itv iveco iwc jaguar java jcb jcp jeep jetzt jewelry jio
jlc jll jmp jnj jobs joburg jot joy jpmorgan jprs juegos juniper kaufen kddi kerryhotels
kerrylogistics kerryproperties kfh kia kim kinder kindle kitchen kiwi koeln komatsu kosher
kpmg kpn krd kred kuokgroup kyoto lacaixa ladbrokes lamborghini lamer lancaster lancia
lancome land landrover lanxess lasalle lat latino latrobe law lawyer lds lease leclerc
lefrak legal lego lexus lgbt liaison lidl life lifeinsurance lifestyle lighting like lilly
limited limo lincoln linde link lipsy live living lixil llc llp loan loans locker locus loft
lol london lotte lotto love lpl lplfinancial ltd ltda lundbeck lupin luxe luxury macys
madrid maif maison makeup man management mango map market marketing markets marriott
marshalls maserati mattel mba mcd mcdonalds mckinsey med media meet melbourne meme memorial
men menu meo merckmsd metlife miami microsoft mil mini mint mit mitsubishi mlb mls mma mobi
mobile mobily moda moe moi mom monash money monster montblanc mopar mormon mortgage moscow
moto motorcycles mov movie movistar msd mtn mtpc mtr museum mutual mutuelle nab nadex nagoya
name nationwide natura navy nba nec net netbank netflix network neustar new newholland news
next nextdirect nexus nfl ngo nhk nico nike nikon ninja nissan nissay nokia
northwesternmutual norton now nowruz nowtv nra nrw ntt nyc obi observer off office okinawa
olayan olayangroup oldnavy ollo omega one ong onion onl online onyourside ooo open oracle
orange org organic orientexpress origins osaka otsuka ott ovh page pamperedchef panasonic
panerai paris pars partners parts party passagens pay pccw pet pfizer pharmacy phd philips
phone photo photography photos physio piaget pics pictet pictures pid pin ping pink pioneer
pizza place play playstation plumbing plus pnc pohl poker politie porn post pramerica praxi
press prime pro prod productions prof progressive promo properties property protection pru
prudential pub pwc qpon quebec quest qvc racing radio raid read realestate realtor realty
recipes red redstone redumbrella rehab reise reisen reit reliance ren rent rentals repair
report republican rest restaurant review reviews rexroth rich richardli ricoh rightathome
ril rio rip rmit rocher rocks rodeo rogers room rsvp rugby ruhr run rwe ryukyu saarland safe
safety sakura sale salon samsclub samsung sandvik sandvikcoromant sanofi sap sapo sarl sas
save saxo sbi sbs sca scb schaeffler schmidt scholarships school schule schwarz science
scjohnson scor scot search seat secure security seek select sener services ses seven sew sex
sexy sfr shangrila sharp shaw shell shia shiksha shoes shop shopping shouji show showtime
shriram silk sina singles site ski skin sky skype sling smart smile sncf soccer social
softbank software sohu solar solutions song sony soy space spiegel sport spot spreadbetting
srl srt stada staples star starhub statebank statefarm statoil stc stcgroup stockholm
storage store stream studio study style sucks supplies supply support surf surgery suzuki
swatch swiftcover swiss sydney symantec systems tab taipei talk taobao target tatamotors
tatar tattoo tax taxi tci tdk team tech technology tel telecity telefonica temasek tennis
teva thd theater theatre tiaa tickets tienda tiffany tips tires tirol tjmaxx tjx tkmaxx
tmall today tokyo tools top toray toshiba total tours town toyota toys trade trading
training travel travelchannel travelers travelersinsurance trust trv tube tui tunes tushu
tvs ubank ubs uconnect unicom university uno uol ups vacations vana vanguard vegas ventures
verisign vermögensberater vermögensberatung versicherung vet viajes video vig viking villas
vin vip virgin visa vision vista vistaprint viva vivo vlaanderen vodka volkswagen volvo vote
voting voto voyage vuelos wales walmart walter wang wanggou warman watch watches weather
weatherchannel webcam weber website wed wedding weibo weir whoswho wien wiki williamhill win
windows wine winners wme wolterskluwer woodside work works world wow wtc wtf xbox xerox
xfinity xihuan xin xperia xxx xyz yachts yahoo yamaxun yandex yodobashi yoga yokohama you
youtube yun zappos zara zero zip zippo zone zuerich дети католик ком москва онлайн орг рус
сайт קום ابوظبي اتصالات ارامكو العليان بازار بيتك شبكة عرب كاثوليك كوم موبايلي موقع همراه
कॉम नेट संगठन คอม みんな クラウド グーグル コム ストア セール ファッション ポイント 世界
中信 中文网 企业 佛山 信息 健康 八卦 公司 公益 商城 商店 商标 嘉里 嘉里大酒店 在线 大众汽车
大拿 天主教 娱乐 家電 工行 广东 微博 慈善 我爱你 手机 手表 招聘 政务 政府 新闻 时尚 書籍
机构 淡马锡 游戏 点看 珠宝 移动 组织机构 网址 网店 网站 网络 联通 诺基亚 谷歌 购物 通販 集团
電訊盈科 飞利浦 食品 餐厅 香格里拉 닷넷 닷컴 삼성
""".split()
)
_COUNTRY_TLDS: Final = frozenset(
    """
ac ad ae af ag ai al am an ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn bo
bq br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm
do dz ec ee eg eh er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs
gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp
kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mf mg mh mk ml mm mn mo mp mq mr ms
mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps
pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st su sv sx sy sz
tc td tf tg th tj tk tl tm tn to tp tr tt tv tw tz ua ug uk um us uy uz va vc ve vg vi vn vu
wf ws ye yt za zm zw ελ ευ бг бел ею мкд мон рф срб укр қаз հայ الاردن البحرين الجزائر
السعودية المغرب امارات ایران بارت بھارت تونس سودان سورية عراق عمان فلسطين قطر مصر مليسيا
موريتانيا پاکستان ڀارت भारत भारतम् भारोत বাংলা ভারত ভাৰত ਭਾਰਤ ભારત ଭାରତ இந்தியா இலங்கை
சிங்கப்பூர் భారత్ ಭಾರತ ഭാരതം ලංකා ไทย ລາວ გე 中国 中國 台湾 台灣 新加坡 澳門 香港 한국
""".split()
)

_GTLD: Final = rf"(?:(?:{_trie_pattern(_GENERIC_TLDS)}){_TLD_END})"
_CCTLD: Final = rf"(?:(?:{_trie_pattern(_COUNTRY_TLDS)}){_TLD_END})"
# A TLD or punycode label starts with one of these; checking that first spares trying each
# branch of the TLD trees against, say, a space. It only ever rules out a failing branch.
_TLD_FIRST: Final = "".join(sorted({t[0] for t in _GENERIC_TLDS | _COUNTRY_TLDS} | {"x"}, key=ord))
_TLD: Final = rf"(?=[{re.escape(_TLD_FIRST)}])(?:{_GTLD}|{_CCTLD}|{_PUNYCODE})"
_DOMAIN: Final = rf"(?:{_SUBDOMAIN}*{_DOMAIN_NAME}{_TLD})"

# Groups: 1 preceding character, 2 URL, 3 protocol, 4 domain, 5 port, 6 path, 7 query.
_URL_RE: Final = re.compile(
    rf"({_PRECEDING})((https?://)?({_DOMAIN})(?::([0-9]+))?(/{_PATH}*)?({_QUERY})?)",
    re.IGNORECASE,
)
# The same with no subdomains, for where _url_matches knows none can match.
_URL_NAME_FIRST_RE: Final = re.compile(
    rf"({_PRECEDING})((https?://)?({_DOMAIN_NAME}{_TLD})(?::([0-9]+))?(/{_PATH}*)?({_QUERY})?)",
    re.IGNORECASE,
)
_ASCII_DOMAIN_RE: Final = re.compile(
    rf"(?:(?:[\-a-z0-9{_LATIN_ACCENTS}]+)\.)+{_TLD}", re.IGNORECASE
)
_ASCII_LABEL_CHAR: Final = rf"[\-a-z0-9{_LATIN_ACCENTS}]"
_ASCII_LABEL_CHAR_RE: Final = re.compile(_ASCII_LABEL_CHAR, re.IGNORECASE)
_ASCII_LABELS_RE: Final = re.compile(
    rf"{_ASCII_LABEL_CHAR}+(?:\.{_ASCII_LABEL_CHAR}+)*", re.IGNORECASE
)
_TCO_RE: Final = re.compile(rf"https?://t\.co/([a-z0-9]+)(?:{_QUERY})?", re.IGNORECASE)
_DOMAIN_SEPARATORS: Final = re.compile("[\u3002\uff0e\uff61]")


# Where a URL can start: the character before it may precede a URL (the first part of
# _PRECEDING), it is a domain character, and either a protocol starts there or the run of
# domain characters (with "-" and "_") from there ends in "." (no label ends elsewhere).
_LABEL_RUN: Final = rf"[^{_PUNCT}{_NOT_IN_DOMAIN}]"
_CANNOT_PRECEDE: Final = rf"A-Za-z0-9@\uff20$#\uff03{_INVALID}"
_LABEL_RUN_RE: Final = re.compile(rf"{_LABEL_RUN}+")
_DOMAIN_START_RE: Final = re.compile(rf"(?<![{_CANNOT_PRECEDE}]){_DOMAIN_CHAR}")
_CANNOT_PRECEDE_RE: Final = re.compile(rf"[{_CANNOT_PRECEDE}]")
_DOMAIN_CHAR_RE: Final = re.compile(_DOMAIN_CHAR)


def _url_matches(s: str) -> Iterator[re.Match[str]]:
    """The matches of ``_URL_RE.finditer(s)``, found without trying hopeless positions.

    twitter-text's expression, tried at every position, takes quadratic time on a long
    run of domain characters that is no domain (CJK text, say: each start rescans the
    run) and on a long chain of labels (each start's subdomains rescan the chain). Here
    it is tried only where a URL can start (see above), and an attempt tells about the
    starts after it in its chain of labels (runs one "." apart, each ending, and the
    next starting, with a domain character, so each could be a subdomain):

    - a start whose first label could be a subdomain there cannot match that way:
      if the attempt failed, the same split after the attempt's own labels would have
      matched it; if it matched, the expression, which takes the split with the most
      subdomains, would have taken that one;
    - so a start can only match with its first label as the domain name right before a
      TLD. A label with "_" cannot be that, so only starts after a run's last "_" are
      left, and in a run without "_" none (its whole label would have served too).

    Those starts are tried with ``_URL_NAME_FIRST_RE``, the expression without the
    subdomains, which gives the same match there and costs only the label. Tests hold
    this to ``finditer``, match for match, and count the attempts.
    """
    first = _URL_RE.match(s)  # at 0 the URL may also start at 0, with nothing before it
    if first:
        yield first
    q = first.end() + 1 if first else 2  # next URL start to try; the match starts at q - 1
    protocols = _protocol_starts(s)
    runs = _dotted_runs(s)
    run_starts = [start for start, _ in runs]
    chain: list[int] = []  # chain number of each run
    for r, (start, _end) in enumerate(runs):
        linked = (
            r > 0
            and runs[r - 1][1] + 1 == start
            and _is_domain_char(s[start])
            and _is_domain_char(s[runs[r - 1][1] - 1])
        )
        chain.append(chain[-1] if linked else r)
    tried_from: dict[int, int] = {}  # chain -> first run of it where a start was tried

    def tried(r: int) -> None:
        tried_from.setdefault(chain[r], r)

    pi = ri = 0
    while True:
        while pi < len(protocols) and protocols[pi] < q:
            pi += 1
        while ri < len(runs) and runs[ri][1] <= q:
            ri += 1
        in_run = None
        name_first = False
        if ri < len(runs):
            run_start, run_end = runs[ri]
            lowest = max(q, run_start)
            name_first = tried_from.get(chain[ri], ri + 1) <= ri
            if name_first:
                last_underscore = s.rfind("_", run_start, run_end)
                if last_underscore < 0:
                    ri += 1
                    continue
                lowest = max(lowest, last_underscore + 1)
            found = _DOMAIN_START_RE.search(s, lowest, run_end)
            if found is None:
                ri += 1  # not q = run_end: a protocol may start before this run
                continue
            in_run = found.start()
        at_protocol = protocols[pi] if pi < len(protocols) else None
        if in_run is None and at_protocol is None:
            return
        if at_protocol is not None and (in_run is None or at_protocol < in_run):
            m = _URL_RE.match(s, at_protocol - 1)
            # A domain starting with "-" or "_" could not have been a subdomain: no news.
            domain_start = s.index("//", at_protocol) + 2
            r = bisect_left(run_starts, domain_start)
            if r < len(runs) and run_starts[r] == domain_start and _is_domain_char(s[domain_start]):
                tried(r)
            if m:
                yield m
            q = m.end() + 1 if m else at_protocol + 1
            continue
        assert in_run is not None
        m = (_URL_NAME_FIRST_RE if name_first else _URL_RE).match(s, in_run - 1)
        tried(ri)
        if m:
            yield m
            q = m.end() + 1
        else:
            q = s.rfind("_", in_run, run_end) + 1 or run_end


def _ascii_domains(s: str, pos: int = 0, endpos: int | None = None) -> Iterator[re.Match[str]]:
    """``_ASCII_DOMAIN_RE.finditer(s, pos, endpos)``, in linear time.

    Tried at every position, that expression is quadratic on a long chain of ASCII
    labels with no TLD after it. A start that fails rules out every later start in the
    same stretch of labels one "." apart, which could only match with labels the failed
    start could have taken too; so the search goes on after that stretch.
    """
    end = len(s) if endpos is None else endpos
    while True:
        start = _ASCII_LABEL_CHAR_RE.search(s, pos, end)
        if start is None:
            return
        m = _ASCII_DOMAIN_RE.match(s, start.start(), end)
        if m:
            yield m
            pos = m.end()
        else:
            stretch = _ASCII_LABELS_RE.match(s, start.start(), end)
            assert stretch is not None  # it starts with a label character
            pos = stretch.end()


def _dotted_runs(s: str) -> list[tuple[int, int]]:
    """Each maximal run of label characters (domain characters, "-", "_") ending in ".",
    found from the dots backwards (through the reversed text) rather than from every
    position forwards."""
    runs: list[tuple[int, int]] = []
    reversed_s = ""
    i = s.find(".", 1)
    while i >= 0:
        if not reversed_s:
            reversed_s = s[::-1]
        run = _LABEL_RUN_RE.match(reversed_s, len(s) - i)
        if run:
            runs.append((i - (run.end() - run.start()), i))
        i = s.find(".", i + 1)
    return runs


def _protocol_starts(s: str) -> list[int]:
    """Where ``http://`` or ``https://`` (any case) starts after a character that may
    precede a URL. Searched as "://" then read backwards: far faster than IGNORECASE."""
    starts = []
    i = s.find("://")
    while i >= 0:
        for n in (5, 4):  # "https" before "http", as the expression tries them
            start = i - n
            if start >= 1 and s[start:i].lower() == "https"[:n] and _can_precede(s[start - 1]):
                starts.append(start)
                break
        i = s.find("://", i + 3)
    return starts


def _is_domain_char(ch: str) -> bool:
    return _DOMAIN_CHAR_RE.match(ch) is not None


def _can_precede(ch: str) -> bool:
    return _CANNOT_PRECEDE_RE.match(ch) is None


def _is_valid_url(url: str, protocol: str, domain: str, matched_domain: str) -> bool:
    """twitter-text's ``isValidUrl``: every label 1..63 once punycoded, URL ≤ 4,096.

    As in twitter-text, the length checked is the protocol plus the URL as written
    (which already holds the protocol when there is one). ``matched_domain`` is
    ``domain`` as the expressions saw it (see ``_CASE_NEUTRAL``).
    """
    if domain.startswith("xn--") and next(_ascii_domains(matched_domain), None) is None:
        return False
    if domain.isascii() and "\x7f" not in domain:  # nothing to encode
        if max(map(len, domain.split("."))) > _MAX_DOMAIN_LABEL_LENGTH:
            return False
    else:
        for label in domain.split("."):
            if not 1 <= _punycoded_length(label) <= _MAX_DOMAIN_LABEL_LENGTH:
                return False
    return len(protocol) + _utf16_len(url) <= _MAX_URL_LENGTH


def _punycoded_length(label: str) -> int:
    """Length of ``label`` as the punycode library twitter-text uses encodes it.

    That library leaves labels of U+0000..U+007E alone, splits on the ideographic and
    full-width full stops, and encodes each piece that needs it as ``xn--`` + RFC 3492.
    """
    pieces = _DOMAIN_SEPARATORS.split(label)
    total = len(pieces) - 1
    for piece in pieces:
        if all(ch <= "\x7e" for ch in piece):
            total += len(piece)
        else:
            try:
                total += 4 + len(piece.encode("punycode"))
            except UnicodeError:  # lone surrogates: no domain
                return 0
    return total


# --- weights, emoji, helpers -----------------------------------------------------------

_INVALID_RE: Final = re.compile(f"[{_INVALID}]")
# twitter-text's Java parser trims with String.trim(): code points up to U+0020.
_BLANK_RE: Final = re.compile(r"[\x00-\x20]*")


def _utf16_len(s: str) -> int:
    if s.isascii():
        return len(s)
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


@cache
def _emoji_index() -> tuple[frozenset[str], dict[str, tuple[int, ...]], re.Pattern[str]]:
    """Every emoji sequence of two or more code points, by its first code point.

    One code point needs no entity: it weighs what its code point weighs, which is what
    twitter-text gives it too (its list holds ©, ® only with U+FE0F, like this rule).
    """
    sequences = frozenset(unicodedata.normalize("NFC", e) for e in emoji.EMOJI_DATA if len(e) > 1)
    lengths: dict[str, set[int]] = {}
    for s in sequences:
        lengths.setdefault(s[0], set()).add(len(s))
    by_first = {ch: tuple(sorted(ls, reverse=True)) for ch, ls in lengths.items()}
    # Only a filter (each hit is looked up in by_first): the BMP characters exactly, which
    # re tests with a bitmap, and one span for the astral ones, since re tests astral
    # ranges one by one.
    bmp = [ch for ch in by_first if ord(ch) <= 0xFFFF]
    astral = [ord(ch) for ch in by_first if ord(ch) > 0xFFFF]
    starts = "".join(re.escape(ch) for ch in sorted(bmp))
    if astral:
        starts += f"{_esc(min(astral))}-{_esc(max(astral))}"
    return sequences, by_first, re.compile(f"[{starts}]")


def _emoji_spans(text: str) -> Sequence[tuple[int, int]]:
    """Start and end of each emoji sequence, scanning left to right, longest first."""
    sequences, by_first, starts = _emoji_index()
    spans: list[tuple[int, int]] = []
    resume = 0
    for m in starts.finditer(text):
        i = m.start()
        if i < resume:
            continue
        for n in by_first.get(text[i], ()):
            if text[i : i + n] in sequences:
                spans.append((i, i + n))
                resume = i + n
                break
    return spans
