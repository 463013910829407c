"""The `fetch` sandbox global: one HTTP request through the runtime's `HttpClient`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from plugin_runtime.backends import HttpClient, HttpResponse

DEFAULT_TIMEOUT_SECONDS = 10.0  # per request when the plugin gives none
MAX_TIMEOUT_SECONDS = 30.0  # no request may outlive a plugin call's default time limit
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class FetchResponse:
    """What `fetch` returns: `status`, `ok`, `status_text`, `headers`, `json()`, `text()`."""

    __slots__ = ("_body", "headers", "ok", "status", "status_text")

    def __init__(self, response: HttpResponse) -> None:
        self.status = response.status
        self.ok = 200 <= response.status < 300
        self.status_text = response.status_text
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self._body = response.body

    def text(self) -> str:
        return self._body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return json.loads(self._body)


def _encode_body(body: Any, headers: dict[str, str]) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    # a dict or list is sent as JSON, the common case of webhook plugins
    headers.setdefault("content-type", "application/json")
    return json.dumps(body).encode()


def _check_url(url: Any) -> str:
    if not isinstance(url, str):
        raise ValueError(f"fetch: url must be a string, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"fetch: {url!r} is not an http(s) URL")
    return url


def make_fetch(client: HttpClient) -> Callable[..., FetchResponse]:
    """The `fetch` function plugins call. Network failures raise ConnectionError or
    TimeoutError, an unusable URL ValueError; HTTP error statuses are responses."""

    def fetch(
        url: str,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> FetchResponse:
        verb = str(method).upper()
        if verb not in _METHODS:
            raise ValueError(f"fetch: unsupported method {method!r}")
        sent = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        payload = _encode_body(body, sent)
        limit = min(float(timeout or DEFAULT_TIMEOUT_SECONDS), MAX_TIMEOUT_SECONDS)
        response = client.request(verb, _check_url(url), headers=sent, body=payload, timeout=limit)
        return FetchResponse(response)

    return fetch
