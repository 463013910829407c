"""The real HttpClient behind `fetch`: blocking urllib, bounded by a timeout.

Plugin code runs on plugin threads, so a blocking client is the right shape; HTTP error
statuses are responses, only transport failures raise.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Mapping

from plugin_runtime.backends import HttpResponse

MAX_RESPONSE_BYTES = 20 * 1024 * 1024  # a plugin reading more than this is a bug or an attack
USER_AGENT = "posthog-plugin-server (python)"


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    max_redirections = 5


class UrllibHttpClient:
    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_RedirectHandler())

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
        ConnectionError when the server cannot be reached, ValueError for a bad URL."""
        sent = {"user-agent": USER_AGENT, **(headers or {})}
        try:
            req = urllib.request.Request(url, data=body, headers=sent, method=method)
        except ValueError as exc:
            raise ValueError(f"{url!r} is not a usable URL: {exc}") from None
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                return HttpResponse(
                    resp.status, resp.reason or "", dict(resp.headers.items()), _read(resp)
                )
        except urllib.error.HTTPError as exc:
            return HttpResponse(exc.code, exc.reason or "", dict(exc.headers.items()), _read(exc))
        except TimeoutError as exc:
            raise TimeoutError(f"request to {url} timed out after {timeout:g} s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise TimeoutError(f"request to {url} timed out after {timeout:g} s") from exc
            raise ConnectionError(f"request to {url} failed: {exc.reason}") from exc
        except OSError as exc:
            raise ConnectionError(f"request to {url} failed: {exc}") from exc


def _read(resp: object) -> bytes:
    data = resp.read(MAX_RESPONSE_BYTES + 1)  # type: ignore[attr-defined]
    if len(data) > MAX_RESPONSE_BYTES:
        raise ConnectionError(f"response is larger than {MAX_RESPONSE_BYTES} bytes")
    return bytes(data)
