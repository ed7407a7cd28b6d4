"""``bingan records import FILE [--dry-run] [--rejected FILE.xlsx]`` and ``bingan records
template FILE`` (an empty front-page file with every column)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group("records")
def records_group() -> None:
    """住院病案首页：文件导入与模板。"""


@records_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="只校验，不写入")
@click.option("--rejected", "rejected_path", type=click.Path(dir_okay=False, path_type=Path),
              help="把有问题的行写入此 Excel 文件（默认：原文件名加“_问题行.xlsx”）")
@click.option("--limit", default=200, show_default=True, help="屏幕上最多列出的问题数")
@click.pass_obj
def import_cmd(obj, file: Path, dry_run: bool, rejected_path: Path | None, limit: int) -> None:
    """导入病案首页文件（xlsx / csv，卫统4-1 列名）；有问题的行列出（行、列、原因），其余行照常导入。"""
    from bingan.core import audit

    from bingan_admission_import.reader import estimate_rows
    from bingan_admission_import.service import import_file

    rt = obj.rt
    estimate = estimate_rows(file)
    label = "校验" if dry_run else "导入"
    with click.progressbar(length=estimate or 1, label=f"{label} {file.name}",
                           file=sys.stderr, show_pos=True) as bar:
        def progress(done: int) -> None:
            bar.update(done - bar.pos)

        report = import_file(rt, file, actor=audit.Actor.cli(), dry_run=dry_run,
                             progress=progress)
    click.echo(report.summary())
    if report.unknown_headers:
        click.echo("未识别的列（已忽略）：" + "、".join(report.unknown_headers))
    for line in report.lines(limit):
        click.echo("  " + line)
    if report.rejected:
        out = rejected_path or file.with_name(file.stem + "_问题行.xlsx")
        out.write_bytes(report.rejected_xlsx())
        click.echo(f"问题行已写入 {out}（改正后可直接再次导入）")
    if report.refused:
        sys.exit(2)
    if report.rejected:
        sys.exit(1)


@records_group.command("template")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def template_cmd(file: Path) -> None:
    """写出一个只有表头的病案首页导入模板（xlsx）。"""
    from bingan_admission_import.export import write_rows

    file.write_bytes(write_rows([]))
    click.echo(f"已写出模板 {file}")
