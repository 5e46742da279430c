"""The fetcher's address policy (SECURITY.md §4): which IP addresses a partner's metadata URL may
lead to. Every address in a block that the IANA special-purpose registries call not globally
reachable is refused, by the name of the smallest such block, unless an allow-list holds it.

:mod:`metadata.fetch` resolves a host once, judges every answer with :func:`forbidden`, and
connects only to an address judged here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Address", "Network", "forbidden", "literal"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _Block:
    """A row of the address policy: a block never fetched from, and why."""

    network: Network
    what: str
    """What an address in it is, as a message says it: "a loopback address"."""
    rfc: str
    """Where the block is defined."""

    def describe(self) -> str:
        return f"{self.what} ({self.network}, {self.rfc})"


def _block(network: str, what: str, rfc: str) -> _Block:
    return _Block(ipaddress.ip_network(network), what, rfc)


# Every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890, RFC 8190) whose
# "Globally Reachable" is False or N/A, checked against the registries as updated in 2025, plus multicast
# and site-local. An address in several blocks is refused in the name of the smallest. Rows the
# registries call globally reachable are fetched from, except where a refused block holds them: the PCP,
# TURN and DNS-SD anycast addresses in 192.0.0.0/24 and 2001::/23 answer from a box near the caller
# (our own NAT gateway), and 2001::/23's AMT, AS112, ORCHIDv2 and DET rows host no metadata.
# 64:ff9b::/96 is globally reachable there, yet refused: a NAT64 gateway of ours would translate
# 64:ff9b::7f00:1 to its own 127.0.0.1 (RFC 6052 §3.1 forbids non-global IPv4 in it; not every
# gateway enforces that). 6to4 (2002::/16) is refused whole rather than judged by the IPv4 address
# in it: RFC 7526 deprecated the relays, and the packet goes to whichever relay is nearest, perhaps
# one inside our network, so the embedded address says nothing about where it ends up.
_SPECIAL_PURPOSE: tuple[_Block, ...] = (
    _block("0.0.0.0/8", "an address of \"this network\", never a destination", "RFC 791 §3.2"),
    _block("0.0.0.0/32", "the unspecified address", "RFC 1122 §3.2.1.3"),
    _block("10.0.0.0/8", "a private address", "RFC 1918"),
    _block("100.64.0.0/10", "a carrier-grade NAT address (shared address space)", "RFC 6598"),
    _block("127.0.0.0/8", "a loopback address", "RFC 1122 §3.2.1.3"),
    _block("169.254.0.0/16", "a link-local address (where cloud metadata services live)", "RFC 3927"),
    _block("172.16.0.0/12", "a private address", "RFC 1918"),
    _block("192.0.0.0/24", "an IETF protocol assignment", "RFC 6890 §2.1"),
    _block("192.0.0.0/29", "an IPv4 service continuity address (DS-Lite)", "RFC 7335"),
    _block("192.0.0.8/32", "the IPv4 dummy address", "RFC 7600"),
    _block("192.0.0.170/32", "a NAT64/DNS64 discovery address", "RFC 8880, RFC 7050 §2.2"),
    _block("192.0.0.171/32", "a NAT64/DNS64 discovery address", "RFC 8880, RFC 7050 §2.2"),
    _block("192.0.2.0/24", "a documentation address (TEST-NET-1)", "RFC 5737"),
    _block("192.88.99.0/24", "a 6to4 relay anycast address (deprecated)", "RFC 7526"),
    _block("192.168.0.0/16", "a private address", "RFC 1918"),
    _block("198.18.0.0/15", "a benchmarking address", "RFC 2544"),
    _block("198.51.100.0/24", "a documentation address (TEST-NET-2)", "RFC 5737"),
    _block("203.0.113.0/24", "a documentation address (TEST-NET-3)", "RFC 5737"),
    _block("224.0.0.0/4", "a multicast address", "RFC 5771"),
    _block("240.0.0.0/4", "a reserved address", "RFC 1112 §4"),
    _block("255.255.255.255/32", "the limited broadcast address", "RFC 8190, RFC 919 §7"),
    _block("::/128", "the unspecified address", "RFC 4291"),
    _block("::1/128", "a loopback address", "RFC 4291"),
    _block("::ffff:0:0/96", "an IPv4-mapped address", "RFC 4291 §2.5.5.2"),
    _block("64:ff9b::/96", "a NAT64 address (well-known prefix)", "RFC 6052"),
    _block("64:ff9b:1::/48", "a NAT64 address (local-use prefix)", "RFC 8215"),
    _block("100::/64", "a discard-only address", "RFC 6666"),
    _block("2001::/23", "an IETF protocol assignment", "RFC 2928"),
    _block("2001::/32", "a Teredo address", "RFC 4380, RFC 8190"),
    _block("2001:2::/48", "a benchmarking address", "RFC 5180"),
    _block("2001:10::/28", "a deprecated ORCHID address", "RFC 4843"),
    _block("2001:db8::/32", "a documentation address", "RFC 3849"),
    _block("2002::/16", "a 6to4 address", "RFC 3056"),
    _block("3fff::/20", "a documentation address", "RFC 9637"),
    _block("5f00::/16", "a segment routing (SRv6) SID", "RFC 9602"),
    _block("fc00::/7", "a unique local IPv6 address", "RFC 4193"),
    _block("fe80::/10", "a link-local address", "RFC 4291"),
    _block("fec0::/10", "a site-local IPv6 address (deprecated but still routed inside some networks)", "RFC 3879"),
    _block("ff00::/8", "a multicast address", "RFC 4291 §2.7"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
"""The only IPv6 space allocated for global unicast (RFC 4291 §2.4; IANA IPv6 Address Space)."""


def literal(host: str) -> Address | None:
    """`host` as an IP address when it is an IP literal, else None (a name to resolve)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def forbidden(address: Address, allowed: tuple[Network, ...]) -> str | None:
    """Why `address` must not be fetched from, or None when it may be."""
    if any(address in network for network in allowed):
        return None
    blocks = [block for block in _SPECIAL_PURPOSE if address in block.network]
    if not blocks:
        if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
            return f"an address outside {_GLOBAL_UNICAST}, the only IPv6 space for global unicast (RFC 4291 §2.4)"
        return None
    block = max(blocks, key=lambda b: b.network.prefixlen)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # SECURITY.md §4 refuses every IPv4-mapped address, not only those of private IPv4
        # addresses: no public service is reached through one, and stacks treat them unevenly.
        why = forbidden(address.ipv4_mapped, allowed) or "which is never fetched from"
        return f"the IPv4-mapped form of {address.ipv4_mapped} ({block.network}, {block.rfc}), {why}"
    return block.describe() + _embedded(address)


def _embedded(address: Address) -> str:
    """The IPv4 address a transition address carries, for the message: where it would lead."""
    if not isinstance(address, ipaddress.IPv6Address):
        return ""
    if address.sixtofour is not None:
        return f", wrapping {address.sixtofour}"
    if address.teredo is not None:
        return f", wrapping {address.teredo[1]} behind the Teredo server {address.teredo[0]}"
    if address in _NAT64:
        return f", translated to {ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)}"
    return ""
