"""``bingan sane scan``: scan with a SANE scanner straight into a record."""

from __future__ import annotations

import click

from bingan.core.cli import pass_rt
from bingan.hooks.types import Runtime
from bingan_scan_sane.settings import SaneSettings


@click.group("sane")
def sane() -> None:
    """SANE 扫描仪（scanimage）：平板或自动进纸器扫描。"""


@sane.command("scan")
@click.option("--admission", required=True, help="住院号或病案条码")
@click.option("--device", help="SANE 设备名（scanimage -L 列出；测试设备为 test）")
@click.option("--resolution", type=int, help="分辨率 DPI（默认取设置，300）")
@click.option("--mode", help="Color / Gray / Lineart（默认取设置）")
@click.option("--adf", is_flag=True, help="从自动进纸器连续扫描所有纸张")
@click.option("--option", "extra", multiple=True, help="传给 scanimage 的其他选项，可多次给出")
@click.option("--batch", "batch_id", type=int, help="记入此批次")
@click.option("--process", is_flag=True, help="接收后在本进程立即处理")
@pass_rt
def scan_cmd(rt: Runtime, admission, device, resolution, mode, adf, extra, batch_id,
             process) -> None:
    """用 SANE 扫描仪（scanimage）扫描并存入指定病案。"""
    from bingan.core import audit
    from bingan.core.tasks import run_until_idle
    from bingan_capture.ingest import TASK_KIND, CaptureError, receive
    from bingan_scan_sane.scan import scan

    who = audit.Actor.cli()
    try:
        with rt.sessions() as s:
            from bingan_capture.ingest import resolve_admission

            adm = resolve_admission(s, admission)  # fail before scanning paper
            if adf:  # fragile, torn or pasted-up paper is not fed through the feeder
                from bingan_capture.conditions import ConditionError, check_feeder

                try:
                    check_feeder(s, adm.id)
                except ConditionError as exc:
                    raise click.ClickException(f"{exc}；去掉 --adf 用平板逐页扫描") from exc
        pages = scan(rt.settings(SaneSettings), device=device, resolution=resolution, mode=mode,
                     adf=adf, extra=tuple(extra))
        for name, data in pages:
            with rt.sessions() as s, s.begin():
                got = receive(s, rt, data, name, "sane", admission_no=admission,
                              batch_id=batch_id, by=who.staff_no, actor=who)
            click.echo(f"✓ {name}：采集 #{got.capture_id}，{got.frames} 页")
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from exc
    if process:
        click.echo(f"已处理 {run_until_idle(rt, kinds=[TASK_KIND])} 个采集任务")
