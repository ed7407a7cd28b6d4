"""``bingan archive ...``: build PDFs, export (folders, offline), exchange bags."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from sqlalchemy import select

from bingan.core.cli import pass_ctx


def _bar(total: int, label: str):
    return click.progressbar(length=total, label=label, show_pos=True, width=36)


@click.group("archive")
def archive() -> None:
    """归档：生成病案 PDF、按文件夹/离线包导出、BagIt 交换包。"""


@archive.command("build")
@click.argument("admission_nos", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="全部有页面的病案")
@pass_ctx
def build_cmd(ctx, admission_nos, all_) -> None:
    """生成（或更新）病案 PDF 并判定是否已完成数字化。"""
    from bingan.core.models import Admission, Page
    from bingan_archive import service

    rt = ctx.rt
    if bool(admission_nos) == bool(all_):
        raise click.UsageError("请给出住院号，或使用 --all（二者选一）")
    with rt.sessions() as s:
        if all_:
            ids = list(s.scalars(select(Page.admission_id).distinct().order_by(Page.admission_id)))
        else:
            ids = []
            for no in admission_nos:
                aid = s.scalar(select(Admission.id).where(Admission.admission_no == no))
                if aid is None:
                    raise click.ClickException(f"住院号 {no} 不存在")
                ids.append(aid)
    counts: dict[str, int] = {}
    built = 0
    problems = []
    # the command line as audit names it (cli:<user>, shown as 命令行), not a bare "cli"
    from bingan.core.audit import Actor

    who = Actor.cli().staff_no
    with _bar(len(ids), "生成 PDF") as bar:
        for aid in ids:
            o = service.build_one(rt, aid, created_by=who)
            counts[o.status] = counts.get(o.status, 0) + 1
            built += int(o.built)
            if o.status != "digitized":
                problems.append(f"{o.admission.admission_no}：{o.reason}")
            bar.update(1)
    from bingan_archive.models import STATUS_LABELS

    click.echo(f"共 {len(ids)} 份，新生成 PDF {built} 份；" + "，".join(
        f"{STATUS_LABELS.get(k, k)} {v}" for k, v in sorted(counts.items())))
    for p in problems[:50]:
        click.echo("  " + p)
    if len(problems) > 50:
        click.echo(f"  ……另有 {len(problems) - 50} 份未完成")


@archive.command("status")
@pass_ctx
def status_cmd(ctx) -> None:
    """数字化进度：已完成、页数不全、未通过（质检/返工）、未采集。"""
    from bingan_archive import service

    with ctx.rt.sessions() as s:
        c = service.status_counts(s)
    click.echo(f"病案 {c['total']} 份：已数字化 {c['digitized']}，页数不全 {c['incomplete']}，"
               f"未通过（质检/返工） {c['failing']}，未采集 {c['pending']}；PDF 版本共 {c['documents']} 个")


def _parse_date(_ctx, _param, value):
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"日期格式应为 YYYY-MM-DD：{value}") from exc


@archive.command("export")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@click.option("--layout", type=click.Choice(["folders", "offline"]), default="folders",
              show_default=True, help="folders：病案号文件夹；offline：另加离线浏览页 index.html")
@click.option("--from", "start", callback=_parse_date, help="出院日期起（YYYY-MM-DD）")
@click.option("--to", "end", callback=_parse_date, help="出院日期止（含）")
@click.option("--zip", "make_zip", is_flag=True, help="离线包另打包为 <目录>.zip")
@click.option("--all-documents", is_flag=True,
              help="导出所有已有 PDF 的病案（默认只导出已完成数字化的）")
@pass_ctx
def export_cmd(ctx, target, layout, start, end, make_zip, all_documents) -> None:
    """导出病案 PDF 与目录清单（文件夹结构或离线浏览包）。"""
    from bingan.core import audit
    from bingan_archive.exporting import ExportError, export

    if make_zip and layout != "offline":
        raise click.UsageError("--zip 只用于 --layout offline")
    if start and end and start > end:
        raise click.UsageError("--from 晚于 --to")
    try:
        res = export(ctx.rt, layout, target, start=start, end=end,
                     digitized_only=not all_documents, make_zip=make_zip,
                     actor=audit.Actor.cli(), progress_factory=_bar)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已导出 {res.records} 份病案（新写入 {res.written} 个文件，"
               f"共 {res.bytes / 1048576:.1f} MB）到 {res.target}")
    if res.zip_path:
        click.echo(f"压缩包：{res.zip_path}")


@archive.group("bag")
def bag_group() -> None:
    """BagIt（RFC 8493）交换包：与其他数字化系统交换病案。"""


@bag_group.command("export")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@click.option("--from", "start", callback=_parse_date, help="出院日期起（YYYY-MM-DD）")
@click.option("--to", "end", callback=_parse_date, help="出院日期止（含）")
@click.option("--all-documents", is_flag=True, help="导出所有已有 PDF 的病案")
@pass_ctx
def bag_export_cmd(ctx, target, start, end, all_documents) -> None:
    """把病案 PDF、页面图像与目录清单写成一个 BagIt 交换包（新文件夹）。"""
    from bingan.core import audit
    from bingan_archive.exporting import ExportError, export

    try:
        res = export(ctx.rt, "bag", target, start=start, end=end,
                     digitized_only=not all_documents, actor=audit.Actor.cli(),
                     progress_factory=_bar)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"交换包已写出并通过 BagIt 校验：{res.records} 份病案，{len(res.files)} 个文件，"
               f"{res.target}")


@bag_group.command("import")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_ctx
def bag_import_cmd(ctx, source) -> None:
    """校验并导入一个 BagIt 交换包；任何问题都会拒绝整个包，不写入任何内容。"""
    from bingan.core import audit
    from bingan_archive.bag import BagImportError, import_bag

    try:
        res = import_bag(ctx.rt, source, actor=audit.Actor.cli())
    except BagImportError as exc:
        click.echo(exc.report(), err=True)
        raise SystemExit(1) from exc
    click.echo(f"已导入 {res.records} 份病案：新增 {res.pages} 页、{res.documents} 个 PDF"
               f"（{res.skipped} 份页面已存在，未重复导入）")
