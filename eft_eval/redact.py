"""Keep credentials out of what we write: URLs without `user:password@`, command lines without them.

`--base-url http://user:secret@host/v1` is a common way to reach a judge behind basic auth; the
URL works for the request, but run.json, results.json and lock files record it, so they get it
without its userinfo. A URL that cannot be split (a port out of range, a broken IPv6 host) is
one line naming it, still without its userinfo.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from eft_eval.errors import EFTEvalError

# scheme://userinfo@ anywhere in a string (a URL inside `--base-url=...`, for instance). Up to the
# authority's last `@`, as urlsplit reads it: a password may hold an unencoded `@`.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


def split_url(url: str) -> SplitResult:
    """`urlsplit(url)`, its port checked; a URL it cannot read is an `EFTEvalError` without credentials."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port that is not a number from 0 to 65535)
    except ValueError as error:
        shown = _USERINFO.sub(r"\g<scheme>", url)
        why = _without_secrets(str(error), url)
        raise EFTEvalError(f"{shown!r} is not a usable URL ({why}); check --base-url or $OPENAI_BASE_URL") from None
    return parts


def _without_secrets(message: str, url: str) -> str:
    """`message` with the userinfo of `url` replaced by `***` (urlsplit's messages may quote the
    netloc, which holds it whole)."""
    found = _USERINFO.search(url)
    userinfo = url[found.end("scheme"):found.end() - 1] if found else ""
    return message.replace(userinfo, "***") if userinfo else message


def url_without_userinfo(url: str | None) -> str | None:
    """`url` with any `user:password@` removed (None stays None)."""
    if not url:
        return url
    parts = split_url(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit(parts._replace(netloc=netloc))


def client_url_and_headers(url: str | None) -> tuple[str | None, dict[str, str]]:
    """(URL without userinfo, headers) for the `openai` client: `user:password@` becomes HTTP basic auth.

    Kept in the URL, the credentials break aiohttp (our judge client) ("Cannot combine AUTHORIZATION
    header with ... credentials encoded in URL", on every request); httpx used them as basic auth,
    replacing the bearer key. The header does the same for every transport.
    """
    if not url:
        return url, {}
    parts = split_url(url)
    if parts.username is None and parts.password is None:
        return url, {}
    token = base64.b64encode(f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()).decode()
    return url_without_userinfo(url), {"Authorization": f"Basic {token}"}


def redacted_argv(argv: Sequence[str]) -> list[str]:
    """A command line fit for a file: URLs lose their userinfo, `--api-key VALUE` loses its value."""
    redacted: list[str] = []
    hide_next = False
    for argument in argv:
        if hide_next:
            redacted.append("***")
            hide_next = False
            continue
        if argument in ("--api-key", "--openai-api-key"):
            hide_next = True
        elif argument.startswith(("--api-key=", "--openai-api-key=")):
            argument = argument.split("=", 1)[0] + "=***"
        redacted.append(_USERINFO.sub(r"\g<scheme>", argument))
    return redacted


__all__ = ["client_url_and_headers", "redacted_argv", "split_url", "url_without_userinfo"]
