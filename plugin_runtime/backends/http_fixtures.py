"""An HttpClient answering from fixtures, for the authoring kit and tests.

A request with no fixture fails loudly: the plugin sees an error and the harness raises
`FetchFixtureMissingError` to the test after the call, even if the plugin caught it.
"""

from __future__ import annotations

import json as jsonlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from plugin_runtime.backends import HttpResponse
from plugin_runtime.errors import FetchFixtureMissingError


@dataclass(frozen=True)
class _Fixture:
    response: HttpResponse | None
    error: Literal["network", "invalid_url", "timeout"] | None


class HttpFixtures:
    """`h.http`: add fixtures with `add`; read what was sent in `requests`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.unmatched: list[str] = []
        self._fixtures: dict[tuple[str, str], list[_Fixture]] = {}
        self._lock = threading.Lock()

    def add(
        self,
        method: str,
        url: str,
        *,
        status: int = 200,
        json: Any = None,
        text: str | None = None,
        headers: Mapping[str, str] | None = None,
        status_text: str | None = None,
        error: Literal["network", "invalid_url", "timeout"] | None = None,
    ) -> None:
        """Answer `method url` with this response (or fail it with `error`).

        Several fixtures for the same request answer in the order added; the last one
        keeps answering, so `add(..., status=500)` then `add(..., status=200)` models a
        server that recovers.
        """
        response = None
        if error is None:
            body_headers = dict(headers or {})
            if json is not None:
                body = jsonlib.dumps(json).encode()
                body_headers.setdefault("content-type", "application/json")
            else:
                body = (text or "").encode()
            try:
                default_text = HTTPStatus(status).phrase
            except ValueError:
                default_text = ""
            response = HttpResponse(status, status_text or default_text, body_headers, body)
        key = (method.upper(), url)
        with self._lock:
            self._fixtures.setdefault(key, []).append(_Fixture(response, error))

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        body: bytes | None,
        timeout: float,
    ) -> HttpResponse:
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "url": url,
                    "headers": dict(headers or {}),
                    "body": body.decode("utf-8", errors="replace") if body is not None else None,
                }
            )
            queue = self._fixtures.get((method.upper(), url))
            if not queue:
                self.unmatched.append(f"{method} {url}")
                raise FetchFixtureMissingError(
                    f"no http fixture for {method} {url}; add one with "
                    f"h.http.add({method!r}, {url!r}, status=..., json=...)"
                )
            fixture = queue.pop(0) if len(queue) > 1 else queue[0]
        if fixture.error == "network":
            raise ConnectionError(f"connection to {url} failed (fixture)")
        if fixture.error == "timeout":
            raise TimeoutError(f"request to {url} timed out (fixture)")
        if fixture.error == "invalid_url":
            raise ValueError(f"{url!r} is not a usable URL (fixture)")
        assert fixture.response is not None
        return fixture.response
