"""``bingan hl7 listen | send | log``."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import click
from bingan_hl7v2.settings import Hl7Settings



@click.group("hl7")
def hl7_group() -> None:
    """HL7 v2 ADT 接口（MLLP）。"""


@hl7_group.command("listen")
@click.option("--host", help="监听地址（默认取 plugins.toml hl7v2.host）")
@click.option("--port", type=int, help="端口（默认取 plugins.toml hl7v2.port，2575）")
@click.pass_obj
def listen(obj, host: str | None, port: int | None) -> None:
    """接收 HIS 的 ADT 消息（A01 A02 A03 A08 A11 A13 A40），逐条回复 ACK。Ctrl+C 停止。"""
    from bingan.core.migrate import pending

    from bingan_hl7v2.server import serve_forever

    rt = obj.rt
    behind = pending(rt)
    if behind:
        raise click.ClickException("数据库尚未迁移，请先运行 `bingan db upgrade`。")
    cfg = rt.settings(Hl7Settings)

    def ready(server) -> None:
        addrs = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets)
        click.echo(f"HL7 MLLP 监听 {addrs}；允许来源：{', '.join(cfg.allow_from)}")

    try:
        asyncio.run(serve_forever(rt, host, port, ready=ready))
    except KeyboardInterrupt:
        click.echo("已停止。")


@hl7_group.command("send")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=2575, show_default=True)
@click.option("--encoding", default="utf-8", show_default=True)
def send(files, host: str, port: int, encoding: str) -> None:
    """把 HL7 消息文件（每个文件一条，段间换行）经 MLLP 发送并显示 ACK（联调用）。"""
    with socket.create_connection((host, port), timeout=30) as sock:
        buf = b""
        for name in files:
            text = Path(name).read_text(encoding=encoding).replace("\r\n", "\r")
            text = text.replace("\n", "\r").strip("\r") + "\r"
            sock.sendall(b"\x0b" + text.encode(encoding) + b"\x1c\r")
            while b"\x1c\r" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise click.ClickException("对方关闭了连接")
                buf += chunk
            block, _, buf = buf.partition(b"\x1c\r")
            ack = block.lstrip(b"\x0b").decode(encoding, errors="replace")
            msa = next((s for s in ack.split("\r") if s.startswith("MSA")), "")
            click.echo(f"{name}: {msa}")


@hl7_group.command("log")
@click.option("--status", type=click.Choice(["applied", "ignored", "parked", "rejected"]))
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def show_log(obj, status: str | None, limit: int) -> None:
    """最近收到的消息及其处理结果（拒收的消息可看原文：--status rejected）。"""
    from sqlalchemy import select

    from bingan_hl7v2.models import STATUS_LABELS, Hl7Message

    with obj.rt.sessions() as s:
        q = select(Hl7Message).order_by(Hl7Message.id.desc()).limit(limit)
        if status:
            q = q.where(Hl7Message.status == status)
        for m in s.scalars(q):
            click.echo(f"{m.received_at.astimezone(obj.rt.tz):%Y-%m-%d %H:%M:%S} {m.event:<4} "
                       f"{m.control_id:<20} {m.ack_code} {STATUS_LABELS.get(m.status, m.status)} "
                       f"{m.admission_no or ''} {m.ack_text[:120]}")
            if status == "rejected" and m.raw:
                click.echo("    " + m.raw.replace("\r", "\n    ")[:2000])
