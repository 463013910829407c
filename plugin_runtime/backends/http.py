"""The real HttpClient behind `fetch`, with the egress policy plugins are held to.

Only `http` and `https` to public addresses: the host name is resolved here, every
address it resolves to must be public (not loopback, private, link-local, shared,
multicast or reserved, IPv4 or IPv6, an IPv4-mapped IPv6 address judged as the IPv4 it
maps), and the connection goes to the address that was checked (pinned), so a second,
different DNS answer cannot send it elsewhere. Redirects are followed here, at most
`MAX_REDIRECTS`, each one checked the same way. The whole request, redirects included,
ends within `timeout`. An install that needs plugins to reach internal services lists
them in `allowed` (host names, addresses or networks such as `10.1.0.0/16`).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urljoin, urlsplit

from plugin_runtime.backends import HttpResponse

MAX_RESPONSE_BYTES = 20 * 1024 * 1024  # a plugin reading more than this is a bug or an attack
MAX_REDIRECTS = 5
USER_AGENT = "posthog-plugin-server (python)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class EgressRefused(ConnectionError):
    """The request would reach an address plugins may not reach."""


class EgressPolicy:
    """Which destinations `fetch` may reach: public addresses, plus `allowed` ones."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._hosts: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in (e.strip() for e in allowed):
            if not entry:
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.lower().rstrip("."))

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of `host` the request may connect to, or EgressRefused."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ConnectionError(f"cannot resolve {host!r}: {exc}") from None
        found = [str(info[4][0]) for info in infos]
        if host.lower().rstrip(".") in self._hosts:
            return found
        refused = [a for a in found if not self._permitted(ipaddress.ip_address(a))]
        if refused:
            raise EgressRefused(
                f"fetch may not reach {host!r}: it resolves to {refused[0]}, which is not a "
                "public address (an operator can allow it with FETCH_ALLOWED_HOSTS)"
            )
        return found

    def _permitted(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self._networks):
            return True
        return address.is_global and not address.is_multicast


class UrllibHttpClient:
    """Blocking, bounded HTTP for plugin threads; HTTP error statuses are responses, only
    transport failures (and the egress policy) raise."""

    def __init__(self, *, allowed_hosts: Iterable[str] = ()) -> None:
        self.policy = EgressPolicy(allowed_hosts)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        body: bytes | None,
        timeout: float,
    ) -> HttpResponse:
        """Send one request. Raises TimeoutError when it takes longer than `timeout`,
        ConnectionError when the server cannot (or may not) be reached, ValueError for a
        bad URL."""
        deadline = time.monotonic() + timeout
        sent = {"user-agent": USER_AGENT, **(headers or {})}
        for _ in range(MAX_REDIRECTS + 1):
            response, location = self._once(method, url, sent, body, deadline, timeout)
            if location is None:
                return response
            url = urljoin(url, location)
            if response.status == 303 or (response.status in (301, 302) and method != "HEAD"):
                method, body = ("GET" if method != "HEAD" else method), None
                sent = {k: v for k, v in sent.items() if k.lower() != "content-type"}
        raise ConnectionError(f"request to {url} was redirected more than {MAX_REDIRECTS} times")

    def _once(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        deadline: float,
        timeout: float,
    ) -> tuple[HttpResponse, str | None]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"{url!r} is not a usable URL: {exc}") from None
        address = self.policy.addresses(parts.hostname, port)[0]
        conn = _connection(
            parts.scheme, parts.hostname, port, address, _left(deadline, url, timeout)
        )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            location = resp.getheader("location") if resp.status in _REDIRECTS else None
            data = _read(resp, conn, deadline, url, timeout) if location is None else b""
            return HttpResponse(
                resp.status, resp.reason or "", dict(resp.getheaders()), data
            ), location
        except TimeoutError as exc:
            raise TimeoutError(f"request to {url} timed out after {timeout:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, ConnectionError):
                raise
            raise ConnectionError(f"request to {url} failed: {exc}") from exc
        finally:
            conn.close()


def _left(deadline: float, url: str, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"request to {url} timed out after {timeout:g} s")
    return left


def _connection(
    scheme: str, host: str, port: int, address: str, timeout: float
) -> http.client.HTTPConnection:
    if scheme == "https":
        return _PinnedHTTPS(host, port, address=address, timeout=timeout)
    return _PinnedHTTP(host, port, address=address, timeout=timeout)


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # certificate and SNI for the host name, not the address
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _read(
    resp: http.client.HTTPResponse,
    conn: http.client.HTTPConnection,
    deadline: float,
    url: str,
    timeout: float,
) -> bytes:
    data = bytearray()
    while True:
        if conn.sock is not None:
            conn.sock.settimeout(_left(deadline, url, timeout))
        chunk = resp.read1(_CHUNK) if hasattr(resp, "read1") else resp.read(_CHUNK)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > MAX_RESPONSE_BYTES:
            raise ConnectionError(f"response is larger than {MAX_RESPONSE_BYTES} bytes")
