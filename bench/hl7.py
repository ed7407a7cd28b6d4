"""HL7 ADT over MLLP: sustained messages/s of the listener on one core, and ACK latency.

The listener runs in its own process pinned to CPU 0 (``os.sched_setaffinity``), on a fresh
bingan database (SQLite in a temp folder, or ``--db URL``) with a small hospital; the senders
run here, pinned to the other core(s). Each of ``--connections`` MLLP connections sends
admission/discharge pairs (A01 then A03 for a new stay, each with a DG1) in lockstep (send,
wait for the ACK), as an interface engine does. Every ACK must be AA. The same run measures a
floor: the same asyncio MLLP stack answering AA without any processing (parse + ACK), so the
difference is what validation, the database write and the audit cost.

    .venv/bin/python bench/hl7.py [--messages 2000] [--connections 4] [--db URL]

Messages are built with hl7apy beforehand (not timed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# this file is named hl7.py: keep its folder off the path so `import hl7` finds python-hl7
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "integrations" / "hl7v2" / "tests"))


def _pin(cpus: set[int]) -> None:
    try:
        os.sched_setaffinity(0, cpus & os.sched_getaffinity(0) or os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass


def serve(home: str, db: str, port: int, floor: bool) -> None:
    """The listener process (``_serve``): prints READY when it accepts connections."""
    _pin({0})
    if floor:
        from bingan_hl7v2.mapping import build_ack, parse_header
        from hl7.mllp import start_hl7_server

        async def on_client(reader, writer):
            try:
                while True:
                    block = await reader.readblock()
                    h = parse_header(block.decode())
                    writer.writeblock(build_ack(h, "AA", "ok", receiving_app="BINGAN",
                                                control_id="X", tz=dt.timezone.utc).encode())
                    await writer.drain()
            except asyncio.IncompleteReadError:
                writer.close()

        async def main():
            server = await start_hl7_server(on_client, "127.0.0.1", port)
            print("READY", flush=True)
            async with server:
                await server.serve_forever()
        asyncio.run(main())
        return
    from bingan_hl7v2.server import start
    from support import build_test_runtime

    rt = build_test_runtime(Path(home), db, enabled=["hl7v2"])

    async def main():
        server = await start(rt, "127.0.0.1", port)
        print("READY", flush=True)
        async with server:
            await server.serve_forever()
    asyncio.run(main())


def prepare(home: Path, db: str) -> None:
    from bingan.core.migrate import upgrade
    from bingan.core.staff import add_department, add_staff, ensure_builtin_roles
    from support import build_test_runtime

    rt = build_test_runtime(home, db, enabled=["hl7v2"])
    upgrade(rt)
    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s, rt)
        add_department(s, "1001", "心血管内科")
        add_staff(s, "D0001", "陈志远", None, "1001", ["physician"])
        add_staff(s, "D0002", "王芳", None, "1001", ["physician"])
    rt.close()


def messages(n_pairs: int, connections: int) -> list[list[str]]:
    from hl7util import adt

    per: list[list[str]] = [[] for _ in range(connections)]
    for i in range(n_pairs):
        conn = per[i % connections]
        day = 1 + i % 28
        adm = f"ZY2026{i:08d}"
        mrn = f"{500000 + i:08d}"
        conn.append(adt("A01", mrn=mrn, adm=adm, admit_at=f"202602{day:02d}080000",
                        event_at=f"202602{day:02d}080000",
                        diagnoses=[("I20.000", "不稳定型心绞痛", "F")]))
        conn.append(adt("A03", mrn=mrn, adm=adm, admit_at=f"202602{day:02d}080000",
                        discharge_at=f"202603{day:02d}090000", disposition="1",
                        event_at=f"202603{day:02d}090000",
                        diagnoses=[("I20.000", "不稳定型心绞痛", "F")]))
    return per


def drive(port: int, per_conn: list[list[str]]) -> tuple[float, list[float], int]:
    """Send every connection's messages in lockstep; returns (seconds, latencies, non-AA)."""
    latencies: list[float] = []
    bad = [0]
    lock = threading.Lock()

    def one(msgs: list[str]) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        buf = b""
        mine = []
        for m in msgs:
            t = time.perf_counter()
            sock.sendall(b"\x0b" + m.encode() + b"\x1c\r")
            while b"\x1c\r" not in buf:
                buf += sock.recv(65536)
            block, _, buf = buf.partition(b"\x1c\r")
            mine.append(time.perf_counter() - t)
            if b"MSA|AA|" not in block:
                with lock:
                    bad[0] += 1
        sock.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=one, args=(m,)) for m in per_conn]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, bad[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(label: str, home: Path, db: str, per_conn, floor: bool) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "_serve", str(home), db, str(port),
                             "1" if floor else "0"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "BINGAN_HOME": str(home)})
    try:
        assert proc.stdout.readline().strip() == "READY"
        seconds, lat, bad = drive(port, per_conn)
    finally:
        proc.terminate()
        proc.wait(10)
    n = len(lat)
    lat.sort()
    p = lambda q: lat[min(n - 1, int(q * n))] * 1000
    print(f"{label:<34} {n:>6} msgs {n / seconds:>8.1f} msg/s   ACK p50 {p(0.5):6.1f} ms  "
          f"p95 {p(0.95):6.1f} ms  p99 {p(0.99):6.1f} ms  mean {statistics.mean(lat) * 1000:6.1f}"
          f" ms  not AA: {bad}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1")
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000, help="messages in all (A01+A03 pairs)")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--db", help="database URL (default: SQLite in a temp folder)")
    args = ap.parse_args()
    _pin(set(range(1, os.cpu_count() or 2)) or {0})
    per_conn = messages(args.messages // 2, args.connections)
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"({os.cpu_count()} cores; listener pinned to CPU 0, senders to the rest)")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db = args.db or f"sqlite:///{home / 'bench.sqlite3'}"
        prepare(home, db)
        run("floor: MLLP parse + AA, no work", home, db, per_conn, floor=True)
        run(f"hl7v2 listener ({db.split(':', 1)[0]})", home, db, per_conn, floor=False)
    print(f"load average after:  {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
