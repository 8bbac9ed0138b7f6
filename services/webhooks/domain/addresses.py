"""Which addresses a delivery may reach (decision 0026, SSRF): only global unicast addresses, unless the
allow-list (``PIPELINES_WEBHOOKS_ALLOW``: CIDRs and host names, comma-separated) admits them.

Refused: loopback, link-local (169.254/16 with the cloud metadata address, fe80::/10), private (RFC 1918, ULA
fc00::/7), shared address space (CGNAT 100.64/10), unspecified, multicast, reserved and documentation ranges, and
IPv4-mapped or NAT64 forms of any of these: what ``ipaddress`` does not call global. A host is checked on every
address it resolves to (one refused address refuses the URL), at creation and again before each delivery, which then
connects to the address it checked (no second lookup a rebinding DNS server could answer otherwise)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ALLOW_ENTRIES = 100


@dataclass(frozen=True)
class AllowList:
    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, setting: str) -> AllowList:
        networks: list[Network] = []
        hosts: set[str] = set()
        parts = [p.strip() for p in setting.split(",") if p.strip()]
        if len(parts) > MAX_ALLOW_ENTRIES:
            raise ValueError(f"PIPELINES_WEBHOOKS_ALLOW holds at most {MAX_ALLOW_ENTRIES} entries")
        for part in parts:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                hosts.add(part.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def admits(self, host: str, address: Address) -> bool:
        return host.lower().rstrip(".") in self.hosts or any(address in n for n in self.networks)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded(address: Address) -> list[Address]:
    """The IPv4 addresses inside an IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96), 6to4 or Teredo address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    inner: list[Address] = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        inner.extend(address.teredo)
    if address in _NAT64:
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return inner


@functools.lru_cache(maxsize=4096)  # pure (what an address is); memoised: every attempt checks its addresses
def public(address: Address) -> bool:
    return all(a.is_global and not a.is_multicast for a in (address, *_embedded(address)))


def refused(host: str, addresses: Iterable[Address], allow: AllowList) -> list[Address]:
    """The addresses among ``addresses`` a delivery to ``host`` may not reach."""
    return [a for a in addresses if not (public(a) or allow.admits(host, a))]
