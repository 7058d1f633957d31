"""URLs as a client is given them, without `urllib.parse`.

Why: importing `urllib.parse` (with the `ipaddress` module it pulls in)
costs ~10 M instructions, 3 % of a whole `vroom term` run, to split one
`scheme://host:port/path` the user typed. This reads the same parts
`urlsplit` does for those URLs: the scheme and host lower-cased, userinfo
and fragment dropped, `[v6]` literals unbracketed, the port checked.
"""

from __future__ import annotations

from typing import NamedTuple


class URL(NamedTuple):
    scheme: str
    host: str
    """"" when the URL has none (callers pick a default)."""
    port: int | None
    path: str
    query: str


def split_url(url: str) -> URL:
    """The parts of `scheme://[user@]host[:port][/path][?query][#fragment]`;
    ValueError for a malformed authority or port."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"{url!r} is not a URL (scheme://host...)")
    rest = rest.partition("#")[0]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, rest = rest[:cut], rest[cut:]
    path, _, query = rest.partition("?")
    netloc = netloc.rpartition("@")[2]
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0 or (netloc[end + 1 :] and not netloc[end + 1 :].startswith(":")):
            raise ValueError(f"bad IPv6 address in {url!r}")
        host, port_text = netloc[1:end], netloc[end + 2 :]
    else:
        if "]" in netloc:
            raise ValueError(f"bad address in {url!r}")
        host, _, port_text = netloc.partition(":")
    port = None
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            raise ValueError(f"bad port {port_text!r} in {url!r}")
        port = int(port_text)
    return URL(scheme.lower(), host.lower(), port, path, query)


__all__ = ["URL", "split_url"]
