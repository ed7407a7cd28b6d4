"""Client IP and computer name resolution."""

from __future__ import annotations

import socket
import time

from bingan.core.web import client


def test_forwarded_for_only_from_trusted_proxies():
    trusted = ["127.0.0.1", "10.0.0.0/8"]
    assert client.client_ip("127.0.0.1", "172.16.5.9", trusted) == "172.16.5.9"
    # a chain through two trusted hops: the first untrusted address from the right
    assert client.client_ip("10.0.0.2", "1.2.3.4, 172.16.5.9, 10.0.0.7", trusted) == "172.16.5.9"
    # an untrusted peer cannot claim an address
    assert client.client_ip("172.16.9.9", "8.8.8.8", trusted) == "172.16.9.9"
    # garbage in the header falls back to the peer
    assert client.client_ip("127.0.0.1", "not-an-ip", trusted) == "127.0.0.1"
    assert client.client_ip(None, "1.2.3.4", trusted) is None


def test_reverse_dns_times_out_and_caches(monkeypatch):
    calls = []

    def slow(ip):
        calls.append(ip)
        time.sleep(0.5)
        return ("never.example", [], [ip])

    monkeypatch.setattr(socket, "gethostbyaddr", slow)
    client._cache.clear()
    t = time.monotonic()
    assert client.reverse_dns("192.0.2.10", 50) is None
    assert time.monotonic() - t < 0.3
    assert client.reverse_dns("192.0.2.10", 50) is None  # cached: no second lookup
    assert calls == ["192.0.2.10"]

    monkeypatch.setattr(socket, "gethostbyaddr", lambda ip: ("ward3-pc07", [], [ip]))
    assert client.reverse_dns("192.0.2.11", 200) == "ward3-pc07"
    client._cache.clear()


def test_computer_header_only_from_trusted_launchers(monkeypatch):
    monkeypatch.setattr(socket, "gethostbyaddr", lambda ip: ("dns-name", [], [ip]))
    client._cache.clear()
    args = dict(trusted_launchers=["10.1.1.0/24"], trusted_proxies=["127.0.0.1"], timeout_ms=100)
    assert client.computer_name("10.1.1.5", "NURSE-PC", "10.1.1.5", **args) == "NURSE-PC"
    assert client.computer_name("10.9.9.9", "FAKE", "10.9.9.9", **args) == "dns-name"
    # issue 9 M4: through a trusted proxy the client's own header is only a claim ...
    assert client.computer_name("127.0.0.1", "FAKE", "10.9.9.9", **args) == "FAKE（自称）"
    # ... and the proxy's own header (configured, set and stripped by the proxy) is a fact
    assert client.computer_name("127.0.0.1", "FAKE", "10.9.9.9", proxy_value="WS-12",
                                **args) == "WS-12"
    # the proxy's header from a peer that is no proxy counts for nothing
    assert client.computer_name("10.9.9.9", None, "10.9.9.9", proxy_value="WS-12",
                                **args) == "dns-name"
    client._cache.clear()
