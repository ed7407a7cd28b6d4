"""The MLLP listener (python-hl7's asyncio streams): one ACK per message, in order per
connection; the database work runs in worker threads so many connections are served at once."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from concurrent.futures import ThreadPoolExecutor

from hl7.mllp import InvalidBlockError, start_hl7_server

from bingan_hl7v2.apply import handle
from bingan_hl7v2.mapping import build_ack
from bingan_hl7v2.settings import Hl7Settings

log = logging.getLogger("bingan.hl7v2")


def _allowed(peer: str | None, networks) -> bool:
    if peer is None:
        return False
    try:
        addr = ipaddress.ip_address(peer.split("%")[0])
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


async def start(rt, host: str | None = None, port: int | None = None):
    """Start listening; returns the asyncio server (``server.sockets[0]`` has the port)."""
    cfg = rt.settings(Hl7Settings)
    networks = [ipaddress.ip_network(n, strict=False) for n in cfg.allow_from]
    limit = cfg.max_message_kb * 1024
    # SQLite has one writer at a time: threads waiting on its lock only sleep in the busy
    # handler (tail latencies of a second); one worker applies messages one after another.
    # PostgreSQL takes several connections' messages at once.
    workers = 1 if rt.engine.dialect.name == "sqlite" else 4
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hl7")
    loop = asyncio.get_running_loop()

    async def on_client(reader, writer) -> None:
        peer_info = writer.get_extra_info("peername")
        peer = peer_info[0] if peer_info else None
        if not _allowed(peer, networks):
            log.warning("HL7 connection from %s refused (not in allow_from)", peer)
            writer.close()
            return
        try:
            while True:
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError:
                    break  # the peer closed the connection
                except (ValueError, InvalidBlockError) as exc:
                    why = ("消息超过大小上限" if isinstance(exc, ValueError)
                           else "MLLP 帧错误（缺少起始符 0x0B）")
                    writer.writeblock(build_ack(None, "AR", why,
                                                receiving_app=cfg.receiving_application,
                                                control_id="BAERR", tz=rt.tz).encode(cfg.encoding))
                    await writer.drain()
                    continue
                try:
                    text = block.decode(cfg.encoding)
                except UnicodeDecodeError:
                    ack = build_ack(None, "AR", f"消息不是 {cfg.encoding} 编码",
                                    receiving_app=cfg.receiving_application, control_id="BAERR",
                                    tz=rt.tz)
                else:
                    try:
                        _code, _why, ack = await loop.run_in_executor(pool, handle, rt, text,
                                                                      peer)
                    except Exception:  # never leave the sender without an answer
                        log.exception("HL7 message from %s failed", peer)
                        ack = build_ack(None, "AR", "系统内部错误，消息未处理，请稍后重发",
                                        receiving_app=cfg.receiving_application,
                                        control_id="BAERR", tz=rt.tz)
                writer.writeblock(ack.encode(cfg.encoding, errors="replace"))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return await start_hl7_server(on_client, host if host is not None else cfg.host,
                                  port if port is not None else cfg.port, limit=limit,
                                  encoding=cfg.encoding)


async def serve_forever(rt, host: str | None = None, port: int | None = None,
                        ready=None) -> None:
    server = await start(rt, host, port)
    if ready is not None:
        ready(server)
    async with server:
        await server.serve_forever()
