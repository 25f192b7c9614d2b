"""A local HTTPS server for media fetched by the publishing tests: a throw-away CA
(trustme) signs a certificate for localhost, the service trusts it through
``Settings.media_ca_file``, and tests register what each path answers."""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

# The first bytes of files of each kind (see domain/post_rules.sniff_media_type).
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(52)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(56)
GIF = b"GIF89a" + bytes(58)
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(40)


def body(head: bytes, size: int) -> bytes:
    """A file of ``size`` bytes starting with ``head``."""
    return head + os.urandom(max(0, size - len(head)))


@dataclass
class Route:
    status: int = 200
    content: bytes = b""
    content_type: str = "application/octet-stream"
    #: Send no Content-Length (the body ends with the connection).
    chunked: bool = False
    location: str = ""
    #: Seconds to wait before answering.
    delay: float = 0.0


@dataclass
class MediaServer:
    base_url: str
    ca_file: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def add(self, path: str, content: bytes = b"", **kw: object) -> str:
        """Serve ``content`` at ``path``; returns its https URL."""
        self.routes[path] = Route(content=content, **kw)  # type: ignore[arg-type]
        return self.base_url + path


def _handler(server: MediaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            server.hits[path] = server.hits.get(path, 0) + 1
            route = server.routes.get(path)
            if route is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.delay:
                time.sleep(route.delay)
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", route.location)
            self.send_header("Content-Type", route.content_type)
            if route.chunked:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(len(route.content)))
            self.end_headers()
            try:
                self.wfile.write(route.content)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@pytest.fixture(scope="session")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_file = Path(tmp_path_factory.mktemp("media-ca")) / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    state = MediaServer(base_url="", ca_file=str(ca_file))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    state.base_url = f"https://localhost:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
