"""Helpers for the browser tests and the screenshot script: run the real app under uvicorn in a
background thread and drive Debian's headless Chromium through Playwright's sync API.

Playwright's own browser downloads are never used: ``CHROMIUM`` (``/usr/bin/chromium``, the
Debian package that ``make browser`` installs) is passed as ``executable_path``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = os.environ.get("BINGAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 15.0,
                  alive: threading.Thread | None = None) -> None:
    """Block until ``host:port`` accepts TCP connections (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive.is_alive():
            raise RuntimeError("the server thread exited before it accepted connections")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout}s")


@contextlib.contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a daemon thread; yield its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        wait_for_port(host, port, alive=thread)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def launch_chromium(playwright):
    """Debian's Chromium, headless, with nothing that talks to the network on its own."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


def login(page, staff_no: str, password: str) -> None:
    """Fill and submit the login form on whatever login page ``page`` shows."""
    page.fill("input[name=staff_no]", staff_no)
    page.fill("input[name=password]", password)
    page.click("form.auth button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
