"""``bingan fhir c0032``: one admission's front page as a WS/T 500 C0032 CDA document."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("fhir")
def fhir_group() -> None:
    """FHIR 接口与互联互通共享文档。"""


@fhir_group.command("c0032")
@click.argument("admission_no")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="写入文件（默认输出到屏幕）")
@click.pass_obj
def c0032(obj, admission_no: str, output: Path | None) -> None:
    """导出一个住院的病案首页共享文档（WS/T 500 C0032，CDA R2 XML），记入审计日志。"""
    from bingan.core import audit
    from bingan.core.staff import department_names
    from bingan_fhir.cda import admission_by_no, front_page_xml

    rt = obj.rt
    with rt.sessions() as s, s.begin():
        adm = admission_by_no(s, admission_no)
        if adm is None or adm.discharged_at is None:
            raise click.ClickException(f"住院号 {admission_no} 不存在或尚未出院")
        data = front_page_xml(s, rt, adm, department_names(s))
        audit.record(s, rt, "cda.export", actor=audit.Actor.cli(), mrn=adm.patient.mrn,
                     admission_no=adm.admission_no,
                     detail={"document": "C0032", "size": len(data), "via": "cli"})
    if output:
        output.write_bytes(data)
        click.echo(f"已写入 {output}（{len(data)} 字节）")
    else:
        click.echo(data.decode("utf-8"), nl=False)
