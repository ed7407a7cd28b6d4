"""Who is on the other end: client IP (X-Forwarded-For only from trusted proxies) and computer
name (a header from a trusted launcher, else reverse DNS with a short timeout and a cache)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout

COMPUTER_HEADER = "x-bingan-computer"
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rdns")
_cache: dict[str, tuple[float, str | None]] = {}
_cache_lock = threading.Lock()
CACHE_SECONDS = 600


def _in(ip: str, networks: list[str]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for net in networks:
        try:
            if addr in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def trusted_peer(ip: str, networks: list[str]) -> bool:
    """Whether ``ip`` is in one of ``networks`` (``trusted_proxies``, ``trusted_launchers``)."""
    return _in(ip, networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: list[str]) -> str | None:
    """The client's address: walk X-Forwarded-For from the right while hops are trusted."""
    if peer is None:
        return None
    if not forwarded_for or not _in(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    ip = peer
    while hops and _in(ip, trusted_proxies):
        ip = hops.pop()
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return peer
    return ip


def reverse_dns(ip: str, timeout_ms: int) -> str | None:
    """Host name of ``ip`` or None; never waits longer than ``timeout_ms``; cached."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(ip)
        if hit and hit[0] > now:
            return hit[1]
    fut = _pool.submit(socket.gethostbyaddr, ip)
    try:
        name: str | None = fut.result(timeout=timeout_ms / 1000)[0]
    except (FutureTimeout, OSError):
        name = None
    with _cache_lock:
        _cache[ip] = (now + CACHE_SECONDS, name)
    return name


CLAIMED = "（自称）"


def computer_name(peer: str | None, header_value: str | None, ip: str | None,
                  trusted_launchers: list[str], trusted_proxies: list[str],
                  timeout_ms: int, proxy_value: str | None = None) -> str | None:
    """The computer name the audit log records.

    - A launcher on a trusted host (``trusted_launchers``) names it with X-Bingan-Computer.
    - Behind a trusted proxy, only the header the proxy itself sets (and strips from what
      clients send: ``[core] proxy_computer_header``) is taken as fact; an X-Bingan-Computer
      the proxy merely passed on came from the client and is recorded as claimed
      ("NK-WS-07（自称）").
    - Otherwise reverse DNS of the client address (short timeout, cached)."""
    if peer and _in(peer, trusted_launchers) and header_value:
        return header_value.strip()[:128]
    if peer and _in(peer, trusted_proxies):
        if proxy_value and proxy_value.strip():
            return proxy_value.strip()[:128]
        if header_value and header_value.strip():
            return header_value.strip()[:120] + CLAIMED
    if ip is None:
        return None
    return reverse_dns(ip, timeout_ms)
