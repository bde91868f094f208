"""Which IP addresses a caller-supplied URL may reach: the special-purpose ranges (private,
loopback, link-local, documentation, multicast... and the IPv6 forms that embed an IPv4
address), the reason an address is refused, and the operator's allowlist of networks
(``FRAMEGATE_ALLOW_PRIVATE_NETWORKS``). ``safe_fetch`` applies these to every hop."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Characters of the legacy inet_aton() IPv4 spellings (2130706433, 0x7f000001, 0177.0.0.1,
# 127.1). inet_aton() itself ignores anything after whitespace, so the whole host must match.
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")


def _v4(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def _v6(cidr: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(cidr)


# IANA special-purpose ranges, listed explicitly because ``is_global`` differs between Python
# patch releases (3.11.7 reports 224.0.0.1 as global, for instance).
_IPV4_SPECIAL: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_v4("0.0.0.0/8"), "an unspecified ('this network') address"),
    (_v4("10.0.0.0/8"), "a private address"),
    (_v4("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_v4("127.0.0.0/8"), "a loopback address"),
    (_v4("169.254.0.0/16"), "a link-local address"),
    (_v4("172.16.0.0/12"), "a private address"),
    (_v4("192.0.0.0/24"), "a reserved (IETF protocol assignment) address"),
    (_v4("192.0.2.0/24"), "a documentation address"),
    (_v4("192.88.99.0/24"), "a reserved (6to4 relay anycast) address"),
    (_v4("192.168.0.0/16"), "a private address"),
    (_v4("198.18.0.0/15"), "a benchmarking address"),
    (_v4("198.51.100.0/24"), "a documentation address"),
    (_v4("203.0.113.0/24"), "a documentation address"),
    (_v4("224.0.0.0/4"), "a multicast address"),
    (_v4("240.0.0.0/4"), "a reserved address"),
)

_IPV6_SPECIAL: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_v6("::/128"), "an unspecified address"),
    (_v6("::1/128"), "a loopback address"),
    (_v6("100::/64"), "a discard-only address"),
    # Teredo (2001::/32) is handled before this table; the rest of 2001::/23 is protocol
    # infrastructure, refused whatever the running Python's ``is_global`` says about it.
    (_v6("2001::/23"), "a reserved (IETF protocol assignment) address"),
    (_v6("2001:db8::/32"), "a documentation address"),
    (_v6("3fff::/20"), "a documentation address"),
    (_v6("fc00::/7"), "a unique-local address"),
    (_v6("fe80::/10"), "a link-local address"),
    (_v6("fec0::/10"), "a site-local address"),
    (_v6("ff00::/8"), "a multicast address"),
)

_IPV6_GLOBAL_UNICAST = _v6("2000::/3")
_IPV4_TRANSLATED = _v6("::ffff:0:0:0/96")
_NAT64_WELL_KNOWN = _v6("64:ff9b::/96")
_NAT64_LOCAL_USE = _v6("64:ff9b:1::/48")
_SIX_TO_FOUR = _v6("2002::/16")
_TEREDO = _v6("2001::/32")
_IPV4_COMPATIBLE = _v6("::/96")


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """Parse a comma-separated CIDR list such as ``"10.0.0.0/8, fd00::/8"``.

    A bare address means just that address. Host bits set (``10.0.0.1/8``) are an error rather
    than silently widened, since an allowlist is the one place a typo opens the network up.
    """
    networks: list[IPNetwork] = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(
                f"invalid network {entry!r} in the allowlist: {exc}. "
                "Use CIDR notation such as 10.0.0.0/8 or fd00::/8."
            ) from exc
    return tuple(networks)


def as_address(ip: IPAddress | str) -> IPAddress:
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    # An IPv4-mapped address is the IPv4 address itself on a dual-stack socket.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _ipv4_refusal(ip: ipaddress.IPv4Address) -> str | None:
    for network, reason in _IPV4_SPECIAL:
        if ip in network:
            return reason
    if not ip.is_global:
        return "not a globally routable address"
    return None


def _embedded(kind: str, *inner: ipaddress.IPv4Address) -> str | None:
    for v4 in inner:
        reason = _ipv4_refusal(v4)
        if reason is not None:
            return f"{kind} address embedding {v4}, {reason}"
    return None


def _ipv6_refusal(ip: ipaddress.IPv6Address) -> str | None:
    # Forms that carry an IPv4 address are judged by that address: translators and tunnels
    # deliver the traffic to it, so ``64:ff9b::7f00:1`` is as much loopback as 127.0.0.1.
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_TRANSLATED:
        return _embedded("an IPv4-translated", low32)
    if ip in _NAT64_WELL_KNOWN:
        return _embedded("a NAT64", low32)
    if ip in _NAT64_LOCAL_USE:
        # The prefix length (and so where the IPv4 address sits) is chosen per site.
        return "a local-use NAT64 address"
    if ip in _SIX_TO_FOUR and ip.sixtofour is not None:
        return _embedded("a 6to4", ip.sixtofour)
    if ip in _TEREDO and ip.teredo is not None:
        server, client = ip.teredo
        return _embedded("a Teredo", server, client)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return _embedded("an IPv4-compatible", low32)
    for network, reason in _IPV6_SPECIAL:
        if ip in network:
            return reason
    if ip not in _IPV6_GLOBAL_UNICAST:
        return "a reserved address"
    if not ip.is_global:
        return "not a globally routable address"
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``None`` when it is)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_refusal(ip)
    return _ipv6_refusal(ip)


def in_allowlist(ip: IPAddress, allow_networks: Iterable[IPNetwork]) -> bool:
    # ``in`` across address families compares raw integers, so the version check matters.
    return any(ip.version == net.version and ip in net for net in allow_networks)


def is_address_allowed(ip: IPAddress | str, allow_networks: Iterable[IPNetwork] = ()) -> bool:
    """True when ``ip`` is globally routable or inside one of ``allow_networks``."""
    address = as_address(ip)
    return in_allowlist(address, allow_networks) or refusal_reason(address) is None


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address of an inet_aton() spelling (``2130706433``, ``0x7f000001``, ``127.1``)."""
    if not _LEGACY_IPV4.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return legacy_ipv4(host)
