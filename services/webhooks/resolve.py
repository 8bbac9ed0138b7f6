"""A subscription URL checked and its host resolved (decision 0026): at creation and before each delivery.

``target(url, allow)`` answers the address to connect to (the first of the host's addresses, all checked) or raises:
``UnresolvableError`` when the host has no address, ``AddressRefusedError`` when any address is not public and not
admitted by the allow-list. A URL's shape is checked by ``parse``: http or https, a host, no user info, no fragment,
at most ``MAX_URL_CHARS``; plain http only to a host the allow-list admits (a test receiver, a local bridge)."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from services.webhooks.domain.addresses import Address, AllowList, refused
from services.webhooks.domain.errors import AddressRefusedError, InvalidSubscriptionError, UnresolvableError

MAX_URL_CHARS = 2000
RESOLVE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Target:
    url: SplitResult
    host: str
    port: int
    address: Address

    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host (the request's Host header and TLS name stay the
        host's): the connection goes where the check looked."""
        ip = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return self.url._replace(netloc=f"{ip}:{self.port}").geturl()


# pure (a URL's shape), memoised as it runs before every attempt; no address is kept: ``target`` resolves the host
# and checks its addresses anew each time
@functools.lru_cache(maxsize=1024)
def parse(url: str) -> SplitResult:
    def bad(why: str) -> InvalidSubscriptionError:
        return InvalidSubscriptionError(f"url: {why}", field="url")

    if len(url) > MAX_URL_CHARS:
        raise bad(f"at most {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise bad("no spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise bad(str(exc)) from exc
    if parts.scheme not in ("http", "https"):
        raise bad("http or https only")
    if not parts.hostname:
        raise bad("a host is needed")
    if parts.username is not None or parts.password is not None:
        raise bad("no user info (put credentials in the signature, not the URL)")
    if parts.fragment:
        raise bad("no fragment")
    return parts


async def _addresses(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise UnresolvableError(f"url: {host!r} does not resolve ({exc})", field="url") from exc
    found: list[Address] = []
    for *_, sockaddr in infos:
        a = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if a not in found:
            found.append(a)
    if not found:
        raise UnresolvableError(f"url: {host!r} has no address", field="url")
    return found


async def target(url: str, allow: AllowList) -> Target:
    parts = parse(url)
    host = str(parts.hostname)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _addresses(host, port)
    if bad := refused(host, addresses, allow):
        raise AddressRefusedError(
            f"url: {host} resolves to {', '.join(map(str, bad[:4]))}: loopback, link-local, private or reserved "
            "addresses are refused (PIPELINES_WEBHOOKS_ALLOW admits chosen ones)",
            field="url",
        )
    if parts.scheme == "http" and not all(allow.admits(host, a) for a in addresses):
        raise InvalidSubscriptionError("url: https only (plain http only to a host the allow-list admits)", field="url")
    return Target(parts, host, port, addresses[0])
