"""The egress policy of `fetch`, against local listeners only."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from plugin_runtime.backends.http import EgressRefused, UrllibHttpClient


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        target = self.server.redirect_to  # type: ignore[attr-defined]
        if target is not None:
            self.send_response(302)
            self.send_header("location", target)
            self.end_headers()
            return
        body = b"inside"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(host: str, redirect_to: str | None = None) -> Iterator[str]:
    httpd = HTTPServer((host, 0), _Handler)
    httpd.redirect_to = redirect_to  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"{host}:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def inside() -> Iterator[str]:
    """A server on loopback: an internal service plugins must not reach."""
    yield from _serve("127.0.0.1")


def _get(client: UrllibHttpClient, url: str, timeout: float = 2.0) -> bytes:
    return client.request("GET", url, headers=None, body=None, timeout=timeout).body


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "2130706433",  # decimal
        "0x7f000001",  # hexadecimal
        "0177.0.0.1",  # octal
        "127.1",  # short form
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "0.0.0.0",
    ],
)
def test_loopback_is_refused_in_every_encoding(inside: str, host: str) -> None:
    port = inside.rpartition(":")[2]
    with pytest.raises(EgressRefused, match="not a public address"):
        _get(UrllibHttpClient(), f"http://{host}:{port}/")


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata service
        "100.64.0.1",  # shared address space
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "[fc00::1]",
        "[fe80::1]",
        "[ff02::1]",
    ],
)
def test_private_link_local_multicast_and_reserved_ranges_are_refused(address: str) -> None:
    # refused before any packet is sent: nothing listens there, and nothing is tried
    with pytest.raises(EgressRefused):
        _get(UrllibHttpClient(), f"http://{address}/")


def test_allowlist_opens_a_named_internal_host(inside: str) -> None:
    assert _get(UrllibHttpClient(allowed_hosts=["127.0.0.1"]), f"http://{inside}/") == b"inside"
    assert _get(UrllibHttpClient(allowed_hosts=["127.0.0.0/8"]), f"http://{inside}/") == b"inside"


def test_redirect_from_an_allowed_host_to_loopback_is_refused(inside: str) -> None:
    for front in _serve("127.0.0.2", redirect_to=f"http://{inside}/"):
        client = UrllibHttpClient(allowed_hosts=["127.0.0.2"])
        with pytest.raises(EgressRefused):
            _get(client, f"http://{front}/")


def test_redirect_to_a_non_http_scheme_is_refused() -> None:
    for front in _serve("127.0.0.2", redirect_to="file:///etc/passwd"):
        client = UrllibHttpClient(allowed_hosts=["127.0.0.2"])
        with pytest.raises(ValueError, match="not an http"):
            _get(client, f"http://{front}/")


def test_a_server_that_never_answers_costs_at_most_the_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    port = listener.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            _get(UrllibHttpClient(allowed_hosts=["127.0.0.1"]), f"http://127.0.0.1:{port}/", 0.5)
        assert time.monotonic() - started < 1.5
    finally:
        listener.close()
