"""One POST per judgment: the chat-completions call of the OpenAI REST API over one aiohttp session.

Why not `openai.AsyncOpenAI`: its per-request pipeline (option models, httpx request and header
objects, response models) cost about 0.45 ms of CPU per request, three times the HTTP exchange
itself; at hundreds of requests a second the client, not the server, set the pace, and more
requests in flight made it slower (measured by `eft-eval bench judge`). The call is the documented
REST request (`POST {base_url}/chat/completions`, bearer key, JSON body), sent as openai sends it:
same headers (`OpenAI-Organization`/`OpenAI-Project` from the environment), proxies from the
environment, and TLS that trusts what openai's client trusts (the system's CAs, `SSL_CERT_FILE` /
`SSL_CERT_DIR`, and certifi's bundle). `openai` still does the preflight and the Batch API.
A certificate the client cannot verify, or a URL it cannot use, stops the run with one line: no
retry can fix them.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from eft_eval.errors import EFTEvalError
from eft_eval.redact import client_url_and_headers

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class HTTPStatusFailure(Exception):
    """The server answered with a status other than 2xx; `str()` is the server's own message."""

    def __init__(self, status_code: int, reason: str, message: str, headers: Mapping[str, str]) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason
        self.headers = headers  # for Retry-After (case-insensitive: aiohttp's CIMultiDict)


class ConnectionFailure(Exception):
    """No answer: the connection was refused or dropped, or the request timed out."""


class ChatCompletionsClient:
    """`await client.post(body)` -> the response body of one chat completion, or one of the two errors.

    The session (and its pool of `max_connections` keep-alive connections) is made on first use,
    inside the running event loop, and closed by `aclose()`.
    """

    def __init__(self, base_url: str | None, api_key: str, timeout: float, max_connections: int) -> None:
        # `http://user:password@host` becomes a basic-auth header, so `self.url` holds no credentials.
        url, auth_headers = client_url_and_headers(base_url or DEFAULT_BASE_URL)
        assert url is not None
        parts = urlsplit(url)  # the path goes before a query (`...?api-version=...`), not after it
        self.url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions"))
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                        "Accept": "application/json", "User-Agent": _user_agent(), **_organization_headers(),
                        **auth_headers}
        self.timeout = timeout
        self.max_connections = max_connections
        # HTTPS_PROXY & co. and NO_PROXY, as openai's client honours them; looked up once, not per
        # request (aiohttp's trust_env asks a thread for it on every request).
        self.proxy = _environment_proxy(self.url)
        self._session: Any = None

    def _open(self) -> Any:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.max_connections, ssl=_ssl_context())
        return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def post(self, body: dict[str, Any]) -> bytes:
        import aiohttp

        if self._session is None:
            self._session = self._open()
        try:
            async with self._session.post(self.url, data=json.dumps(body).encode(), headers=self.headers,
                                          proxy=self.proxy) as response:
                content: bytes = await response.read()
                if not 200 <= response.status < 300:
                    raise HTTPStatusFailure(response.status, response.reason or "", _error_message(content),
                                            response.headers)
                return content
        except asyncio.TimeoutError:
            raise ConnectionFailure(f"no answer within {self.timeout:g} s (--timeout)") from None
        except aiohttp.ClientConnectorCertificateError as error:  # other TLS errors may pass: retried
            raise EFTEvalError(
                f"cannot verify the judge server's certificate at {self.url} "
                f"({error.certificate_error}); if it uses a private certificate authority, point SSL_CERT_FILE "
                "at its certificate"
            ) from None
        except aiohttp.InvalidURL as error:
            raise EFTEvalError(f"cannot send a judge request: {error} is not a usable URL (check --base-url and "
                               "the *_PROXY variables)") from None
        except aiohttp.ClientError as error:
            raise ConnectionFailure(f"{type(error).__name__}: {error}") from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def rename_max_tokens(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with `max_tokens` renamed `max_completion_tokens`: newer OpenAI models refuse the old name
    (a 400 that names the new one), live and in batches alike."""
    if "max_tokens" not in body:
        return body
    renamed = {k: v for k, v in body.items() if k != "max_tokens"}
    renamed["max_completion_tokens"] = body["max_tokens"]
    return renamed


def _error_message(content: bytes) -> str:
    """The `error.message` of an OpenAI-style error body, else the body's first 300 characters."""
    text = content.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    error = data.get("error", data) if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else text[:300]


def _environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`), unless
    `NO_PROXY` exempts it."""
    import urllib.request

    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and "://" not in proxy:  # `HTTPS_PROXY=proxy.corp:3128` means http://, as httpx reads it
        proxy = "http://" + proxy
    return proxy or None


def _organization_headers() -> dict[str, str]:
    """What `openai.OpenAI()` adds from the environment."""
    names = {"OpenAI-Organization": "OPENAI_ORG_ID", "OpenAI-Project": "OPENAI_PROJECT_ID"}
    return {header: os.environ[name] for header, name in names.items() if os.environ.get(name)}


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"eft-eval/{version('eft-eval')}"
    except PackageNotFoundError:
        return "eft-eval"


def _ssl_context() -> Any:
    """The system's CAs (OpenSSL's defaults, so `SSL_CERT_FILE` / `SSL_CERT_DIR` count) plus
    certifi's bundle when installed: every authority some version of openai's client trusts."""
    import ssl

    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(certifi.where())
    except (ImportError, OSError):
        pass
    return context
