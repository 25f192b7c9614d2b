"""core/fetch.py: media fetched over real https from a local server; the SSRF guard
(private addresses refused unless allowed, no redirects, no plain http), size caps
while streaming, and failures that never repeat the URL."""

from __future__ import annotations

import pytest
from media_server import GIF, JPEG, MP4, body

from mktx_grpc.core.fetch import FetchError, MediaFetcher, is_public_address


def _cap(n: int):
    return lambda head: n


@pytest.fixture
async def fetcher(media_server):
    f = MediaFetcher(allow_private=True, ca_file=media_server.ca_file, timeout=5.0)
    yield f
    await f.aclose()


async def test_fetch_streams_the_body_into_a_file(fetcher, media_server):
    data = body(JPEG, 300_000)
    url = media_server.add("/a.jpg", data, content_type="image/jpeg")
    got = await fetcher.fetch(url, _cap(5 * 1024 * 1024))
    try:
        assert got.size == len(data) and got.head == data[:64]
        assert got.file is not None and got.file.read() == data
    finally:
        got.close()


async def test_probe_reads_the_head_and_trusts_content_length(fetcher, media_server):
    data = body(MP4, 2_000_000)
    url = media_server.add("/v.mp4", data)
    got = await fetcher.probe(url, _cap(512 * 1024 * 1024))
    assert got.file is None and got.size == len(data) and got.head == data[:64]
    # Without a Content-Length the body is counted.
    url = media_server.add("/v-chunked.mp4", data, chunked=True)
    got = await fetcher.probe(url, _cap(512 * 1024 * 1024))
    assert got.size == len(data)


async def test_the_cap_is_decided_from_the_head_and_enforced_while_streaming(
    fetcher,
    media_server,
):
    big_gif = body(GIF, 70_000)
    url = media_server.add("/big.gif", big_gif, chunked=True)

    def cap(head: bytes) -> int:
        return 50_000 if head.startswith(b"GIF") else 10**9

    with pytest.raises(FetchError, match="larger than 50,000 bytes"):
        await fetcher.fetch(url, cap)
    # A declared length over the cap is refused before the body is read.
    url = media_server.add("/big2.gif", big_gif)
    with pytest.raises(FetchError, match="larger than 50,000 bytes"):
        await fetcher.probe(url, cap)


@pytest.mark.parametrize(
    ("path", "route", "message"),
    [
        ("/missing", None, "HTTP 404"),
        ("/moved", {"status": 302, "location": "https://127.0.0.1/x"}, "redirects"),
        ("/empty", {"content": b""}, "empty"),
        ("/oops", {"status": 500}, "HTTP 500"),
    ],
)
async def test_failures_are_fetch_errors_without_the_url(
    fetcher,
    media_server,
    path,
    route,
    message,
):
    if route is not None:
        media_server.add(path, **route)
    url = media_server.base_url + path + "?token=s3cret"
    with pytest.raises(FetchError, match=message) as info:
        await fetcher.fetch(url, _cap(1000))
    assert "s3cret" not in str(info.value) and "localhost" not in str(info.value)


async def test_plain_http_and_credentials_in_urls_are_refused(fetcher):
    with pytest.raises(FetchError, match="https"):
        await fetcher.fetch("http://localhost/a.jpg", _cap(1000))
    with pytest.raises(FetchError, match="user name or password"):
        await fetcher.fetch("https://user:pw@localhost/a.jpg", _cap(1000))


async def test_an_untrusted_certificate_is_refused(media_server):
    url = media_server.add("/t.jpg", body(JPEG, 1000))
    f = MediaFetcher(allow_private=True, timeout=5.0)  # the test CA is not trusted
    try:
        with pytest.raises(FetchError, match="https"):
            await f.fetch(url, _cap(10_000))
    finally:
        await f.aclose()


async def test_private_and_loopback_addresses_are_refused_outside_the_sandbox(
    media_server,
):
    url = media_server.add("/ssrf.jpg", body(JPEG, 1000))
    f = MediaFetcher(allow_private=False, ca_file=media_server.ca_file, timeout=5.0)
    try:
        for target in (url, url.replace("localhost", "127.0.0.1")):
            with pytest.raises(FetchError, match="private or reserved address"):
                await f.fetch(target, _cap(10_000))
    finally:
        await f.aclose()
    assert media_server.hits.get("/ssrf.jpg", 0) == 0  # not even connected


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # CGNAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),  # multicast
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:8.8.8.8", True),
        ("2002:7f00:1::1", False),  # 6to4 around 127.0.0.1
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(address) is public
