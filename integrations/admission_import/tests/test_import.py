"""Front-page import from the command line, on SQLite and PostgreSQL: bad rows reported with
row, column and reason, the others in; dry run writes nothing; bounded reading; the demo's
rows survive the layout both ways."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bingan.core.models import Admission, AuditEvent
from import_world import CN, DEPTS, good, hospital, rows, write_xlsx


def _cli(rt, *args):
    from bingan.core.cli import Ctx, build_cli

    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj)


def _count(rt, model, *where) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_import_reports_bad_rows_and_takes_the_rest(rt, tmp_path):
    hospital(rt)
    data, broken = rows(40, bad_every=5)  # 8 bad rows, one of each kind
    path = write_xlsx(tmp_path / "首页.xlsx", data)

    res = _cli(rt, "records", "import", str(path), "--dry-run")
    assert res.exit_code == 1, res.output
    assert "校验通过 32 行" in res.output and "有问题 8 行" in res.output
    assert _count(rt, Admission) == 0  # a dry run writes nothing

    res = _cli(rt, "records", "import", str(path))
    assert res.exit_code == 1, res.output
    assert "已导入 32 行（新增 32" in res.output
    for row, column in broken.items():
        assert f"第 {row} 行 {column}：" in res.output, (row, column, res.output)
    assert _count(rt, Admission) == 32
    assert _count(rt, AuditEvent, AuditEvent.action == "admission.upsert") == 32
    with rt.sessions() as s:
        a = s.scalar(select(Admission).where(Admission.admission_no == "ZY202500000000"))
        assert {x.role: x.staff_no for x in a.signers} == {"attending": "D0002",
                                                           "resident": "D0002"}
        assert a.discharge_department == "1002" and a.front_page["contact"]["relation"] == "配偶"
        assert a.total_cost == pytest.approx(12345.6)

    # the rejected rows, as they were, with the reasons, ready to fix and import again
    rejected = path.with_name("首页_问题行.xlsx")
    ws = load_workbook(rejected, read_only=True).worksheets[0]
    got = list(ws.iter_rows(values_only=True))
    assert got[0][:4] == ("原行号", "问题", "医疗机构名称", "组织机构代码")
    assert [r[0] for r in got[1:]] == sorted(broken)
    assert all(broken[r[0]] in r[1] for r in got[1:])

    # the same file again: nothing changes; the fixed rows go in
    res = _cli(rt, "records", "import", str(path))
    assert "无变化 32" in res.output
    fixed, _ = rows(40)
    write_xlsx(tmp_path / "fixed.xlsx", [fixed[r - 2] for r in broken])
    res = _cli(rt, "records", "import", str(tmp_path / "fixed.xlsx"))
    assert res.exit_code == 0, res.output
    assert _count(rt, Admission) == 40


def test_csv_in_gb18030_with_codes_for_headers(rt, tmp_path):
    hospital(rt)
    head = "BAH,ZYCS,ZYH,XM,XB,RYSJ,RYSJS,CYSJ,CYKB,LYFS,JBDM,ZYZD,ZZYS,ZGYS"
    lines = [head,
             ("00200001,1,ZY202600000001,赵六,1,2026-02-01,8,2026-02-09 10:00,心血管内科,1,"
             "I10,原发性高血压,陈志远(D0001),D0001"),
             "00200001,1,ZY202600000002,赵六,1,2026-02-11,8,,1001,,I10,原发性高血压,D0001,",
             "00200002,1,ZY202600000003,孙七,男,2026-02-01,8,2026-02-03,1001,1,I10,高血压,D9,"]
    path = tmp_path / "his.csv"
    path.write_bytes("\n".join(lines).encode("gb18030"))
    res = _cli(rt, "records", "import", str(path))
    assert res.exit_code == 1
    assert "第 3 行 住院次数：与第 2 行的病案号、住院次数相同" in res.output
    assert "第 4 行 主治医师：不是本院在职职工" in res.output
    with rt.sessions() as s:
        a = s.scalar(select(Admission).where(Admission.admission_no == "ZY202600000001"))
        assert a.admitted_at.hour == 0 and a.patient.sex == "M"  # 08:00 UTC+8
        assert a.front_page["attending_physician"] == "D0001"


def test_files_are_bounded_before_they_are_parsed(rt, tmp_path):
    from bingan_admission_import.reader import FileRefused, Limits, read_file

    hospital(rt)
    # a zip that inflates far beyond its size
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", "<a>" + " " * (30 * 1024 * 1024) + "</a>")
    with pytest.raises(FileRefused, match="解压后过大"):
        read_file(bomb, Limits(max_uncompressed=10 * 1024 * 1024))
    # declared rows over the limit: refused from the sheet's dimension, before any row
    data, _ = rows(12)
    path = write_xlsx(tmp_path / "many.xlsx", data)
    with pytest.raises(FileRefused, match="超过单次导入上限"):
        read_file(path, Limits(max_rows=10))
    not_xlsx = tmp_path / "x.xlsx"
    not_xlsx.write_bytes(b"PK\x03\x04 not really")
    res = _cli(rt, "records", "import", str(not_xlsx))
    assert res.exit_code == 2 and "文件损坏或不是 xlsx" in res.output
    no_cols = write_xlsx(tmp_path / "cols.xlsx", [])
    wb_path = tmp_path / "missing.csv"
    wb_path.write_text("姓名,病案号\n张三,00100001\n", encoding="utf-8")
    res = _cli(rt, "records", "import", str(wb_path))
    assert res.exit_code == 2 and "缺少必需的列：住院次数、住院号、入院时间" in res.output
    assert _cli(rt, "records", "import", str(no_cols)).exit_code == 0  # headers only: nothing
    assert _count(rt, Admission) == 0


def test_layout_round_trip_of_demo_front_pages():
    """Every demo admission written as a row and read back is the same admission."""
    import dataclasses

    from bingan.core.demo import build_admissions, data
    from bingan.core.frontpage import admission_to_row, row_to_admission

    names = {code: name for code, name, _k, _x in data.DEPARTMENTS}
    for a in build_admissions(CN)[:120]:
        parsed = row_to_admission(admission_to_row(a, names, tz=CN), tz=CN)
        assert not parsed.problems, parsed.problems
        b = parsed.admission
        assert b.admit_department == names[a.admit_department]
        b = dataclasses.replace(b, admit_department=a.admit_department,
                                discharge_department=a.discharge_department)
        want = dataclasses.replace(a, extra={k: v for k, v in a.extra.items() if v is not None})
        assert b == want, a.admission_no


def test_template_command(rt, tmp_path):
    res = _cli(rt, "records", "template", str(tmp_path / "t.xlsx"))
    assert res.exit_code == 0
    header = next(load_workbook(tmp_path / "t.xlsx", read_only=True).worksheets[0].iter_rows(
        values_only=True))
    assert header[:8] == ("医疗机构名称", "组织机构代码", "医疗付费方式", "健康卡号", "住院次数",
                          "病案号", "住院号", "姓名")
    assert "其他诊断编码15" in header and "麻醉医师7" in header
    assert len(DEPTS) == 2 and good(0).admission_no == "ZY202500000000"
