"""Which addresses a server (the task API, Flower) listens on, and whether only this machine
can reach them."""

from __future__ import annotations

import ipaddress
import socket

from platform_core.errors import PlatformError


def strip_brackets(address: str) -> str:
    return address[1:-1] if address.startswith("[") and address.endswith("]") else address


def bound_addresses(address: str, option: str = "--address") -> list[str]:
    """The addresses a server listens on for ``address``, resolved as Tornado and uvicorn
    bind them ("" is every address)."""
    family = socket.AF_UNSPEC if socket.has_ipv6 else socket.AF_INET
    try:
        infos = socket.getaddrinfo(address or None, 0, family, socket.SOCK_STREAM, 0,
                                   socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise PlatformError(f"{option} {address} cannot be resolved ({exc}); "
                            "give an IP address or a known host name") from None
    return sorted({str(info[4][0]) for info in infos})


def is_loopback(address: str, option: str = "--address") -> bool:
    """Whether every address a server would listen on for ``address`` is a loopback one."""
    found = bound_addresses(strip_brackets(address), option)
    return bool(found) and all(ipaddress.ip_address(a.partition("%")[0]).is_loopback
                               for a in found)
