"""Folder layout, catalog index table (目录清单), offline package, CLI."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import zipfile

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bingan.core import audit
from bingan.core.models import AuditEvent
from bingan_archive import exporting

UTC = dt.timezone.utc
HEADERS = ["病案号", "住院号", "住院次数", "患者姓名", "出院日期", "页数", "文件大小（字节）",
           "SHA-256", "生成时间"]


def _three_records(w):
    """Two digitized records of one patient (visits 1 and 2) and one of another; one more
    record that is not digitized (failing page)."""
    a = w.admission(discharged=dt.datetime(2026, 5, 3, 2, 0, tzinfo=UTC))
    b = w.admission(admission_no="ZY202605000002", visit_no=2,
                    discharged=dt.datetime(2026, 5, 20, 17, 30, tzinfo=UTC))  # 05-21 in China
    c = w.admission(mrn="00654321", admission_no="ZY202605000003", name="李四",
                    discharged=dt.datetime(2026, 6, 1, 3, 0, tzinfo=UTC))
    d = w.admission(mrn="00777777", admission_no="ZY202605000004", name="王五", discharged=None)
    w.pages(a, [{"page_type": "病案首页"}, {"page_type": "出院记录"}])
    w.pages(b, [{"page_type": "病案首页"}])
    w.pages(c, [{"page_type": "病案首页"}, {}, {}])
    w.pages(d, [{"qc_status": "fail"}])
    for x in (a, b, c, d):
        w.build(x)
    return a, b, c, d


def _events(rt, action):
    with rt.sessions() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.seq)))
        s.expunge_all()
    return rows


def _read_catalog_csv(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def _check_catalog_matches_files(target, rows):
    """Every catalog row names a file in the layout whose size and SHA-256 it states."""
    files = sorted(p for p in target.rglob("*.pdf"))
    assert len(files) == len(rows)
    by_name = {}
    for p in files:
        data = p.read_bytes()
        by_name[p.relative_to(target).as_posix()] = (len(data), hashlib.sha256(data).hexdigest())
    for r in rows:
        mrn, visit, date = r[0], r[2], r[4].replace("-", "")
        rel = f"{mrn}/{mrn}_{visit}_{date}.pdf"
        assert by_name[rel] == (int(r[6]), r[7]), rel


def test_folder_layout_and_catalog(world, tmp_path):
    _three_records(world)
    target = tmp_path / "out"
    res = exporting.export(world.rt, "folders", target, actor=audit.Actor(staff_no="T01"))
    assert (res.records, res.written) == (3, 3)
    names = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert names == ["00123456/00123456_1_20260503.pdf", "00123456/00123456_2_20260521.pdf",
                     "00654321/00654321_1_20260601.pdf", "目录清单.csv", "目录清单.xlsx"]

    rows = _read_catalog_csv(target / "目录清单.csv")
    assert rows[0] == HEADERS
    body, totals = rows[1:-1], rows[-1]
    assert [r[:6] for r in body] == [
        ["00123456", "ZY202605000001", "1", "张三", "2026-05-03", "2"],
        ["00123456", "ZY202605000002", "2", "张三", "2026-05-21", "1"],
        ["00654321", "ZY202605000003", "1", "李四", "2026-06-01", "3"]]
    _check_catalog_matches_files(target, body)
    assert totals[:2] == ["合计", "3 份"] and totals[5] == "6"
    assert int(totals[6]) == sum(int(r[6]) for r in body)
    for r in body:
        dt.datetime.strptime(r[8], "%Y-%m-%d %H:%M:%S")

    wb = openpyxl.load_workbook(target / "目录清单.xlsx")  # cached formula values
    ws = wb.active
    xrows = [[c.value for c in row] for row in ws.iter_rows()]
    assert xrows[0] == HEADERS
    assert [[str(v) for v in r] for r in xrows[1:-1]] == body
    assert xrows[-1][0] == "合计" and ws.cell(len(xrows), 6).value == "=SUM(F2:F4)"
    wbv = openpyxl.load_workbook(target / "目录清单.xlsx", data_only=True)
    last = list(wbv.active.iter_rows(values_only=True))[-1]
    assert last[5] == 6 and last[6] == int(totals[6])

    (ev,) = _events(world.rt, "archive.export")
    detail = json.loads(ev.detail)
    assert ev.staff_no == "T01" and ev.outcome == "ok"
    assert (detail["layout"], detail["records"], detail["written"]) == ("folders", 3, 3)

    again = exporting.export(world.rt, "folders", target)  # re-run: nothing rewritten
    assert (again.records, again.written) == (3, 0)


def test_date_filter_and_all_documents(world, tmp_path):
    _three_records(world)
    res = exporting.export(world.rt, "folders", tmp_path / "may", start=dt.date(2026, 5, 21),
                           end=dt.date(2026, 5, 31))
    assert res.records == 1  # discharged 05-20 17:30 UTC is 05-21 in China
    assert (tmp_path / "may/00123456/00123456_2_20260521.pdf").is_file()
    every = exporting.export(world.rt, "folders", tmp_path / "all", digitized_only=False)
    assert every.records == 4  # the failing record's PDF too
    assert (tmp_path / "all/00777777/00777777_1_00000000.pdf").is_file()  # not discharged


def test_damaged_blob_stops_export(world, tmp_path):
    a, *_ = _three_records(world)
    from bingan.core import pages

    with world.rt.sessions() as s:
        doc = pages.latest_document(s, a)
    path = world.rt.store.path(doc.blob_sha256)
    os.chmod(path, 0o644)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x20
    path.write_bytes(bytes(raw))
    with pytest.raises(exporting.ExportError, match="已损坏"):
        exporting.export(world.rt, "folders", tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.pdf"))  # no damaged copy left behind
    assert not list((tmp_path / "out").rglob(".part-*"))
    (ev,) = _events(world.rt, "archive.export")
    assert ev.outcome == "failed"


def test_offline_package_and_zip(world, tmp_path):
    _three_records(world)
    target = tmp_path / "offline"
    res = exporting.export(world.rt, "offline", target, make_zip=True)
    html = (target / "index.html").read_text(encoding="utf-8")
    assert "<script type=\"module\"" not in html and "import(" not in html
    assert "fetch(" not in html and ".wasm" not in html
    start = html.index("var RECORDS = ") + len("var RECORDS = ")
    records = json.loads(html[start:html.index(";\n", start)])
    assert [r["href"] for r in records] == ["00123456/00123456_1_20260503.pdf",
                                            "00123456/00123456_2_20260521.pdf",
                                            "00654321/00654321_1_20260601.pdf"]
    for r in records:
        assert hashlib.sha256((target / r["href"]).read_bytes()).hexdigest() == r["sha256"]
    assert res.zip_path == str(tmp_path / "offline.zip")
    with zipfile.ZipFile(res.zip_path) as zf:
        assert zf.testzip() is None
        names = sorted(zf.namelist())
        assert "offline/index.html" in names and "offline/目录清单.xlsx" in names
        assert zf.read("offline/" + records[0]["href"]) == (target / records[0]["href"]).read_bytes()


def test_script_json_cannot_close_the_script():
    s = exporting.script_json([{"name": "</script><script>alert(1)</script>", "x": "\u2028"}])
    assert "</" not in s and "\u2028" not in s
    assert json.loads(s)[0]["name"].startswith("</script>")


def test_settings_file_name_is_validated():
    import msgspec

    from bingan_archive.settings import ArchiveSettings

    with pytest.raises(ValueError):
        ArchiveSettings(file_name="../{mrn}")
    with pytest.raises(ValueError):
        ArchiveSettings(file_name="{unknown}")
    with pytest.raises(ValueError):
        ArchiveSettings(default_dpi=5)
    assert msgspec.convert({"file_name": "{org_code}_{mrn}_{visit_no}"}, ArchiveSettings).file_name


def _cli(rt, *args):
    from bingan.core.cli import Ctx, build_cli

    obj = Ctx()
    obj._rt = rt
    return CliRunner().invoke(build_cli(rt), list(args), obj=obj)


def test_cli_build_export_status(world, tmp_path):
    a = world.admission()
    world.pages(a, [{"page_type": "病案首页"}])
    b = world.admission(mrn="00654321", admission_no="ZY202605000003", name="李四")
    world.pages(b, [{"qc_status": "fail"}])
    res = _cli(world.rt, "archive", "build")
    assert res.exit_code == 2 and "--all" in res.output
    res = _cli(world.rt, "archive", "build", "ZY999")
    assert res.exit_code == 1 and "不存在" in res.output
    res = _cli(world.rt, "archive", "build", "--all")
    assert res.exit_code == 0, res.output
    assert "共 2 份，新生成 PDF 2 份" in res.output and "ZY202605000003：第 1 页质检未通过" in res.output
    # the PDF's maker is the command line as audit names it (shown as 命令行), not "cli"
    from bingan.core.audit import actor_label
    from bingan.core.models import Document

    with world.rt.sessions() as s:
        makers = set(s.scalars(select(Document.created_by)))
    assert len(makers) == 1 and actor_label(makers.pop()) == "命令行"
    res = _cli(world.rt, "archive", "status")
    assert "已数字化 1" in res.output and "未通过（质检/返工） 1" in res.output
    res = _cli(world.rt, "archive", "export", "--layout", "folders", str(tmp_path / "f"),
               "--from", "2026-05-01", "--to", "2026-05-31")
    assert res.exit_code == 0, res.output
    assert "已导出 1 份病案" in res.output
    assert (tmp_path / "f/00123456/00123456_1_20260503.pdf").is_file()
    res = _cli(world.rt, "archive", "export", "--layout", "offline", str(tmp_path / "o"), "--zip")
    assert res.exit_code == 0 and (tmp_path / "o.zip").is_file(), res.output
    res = _cli(world.rt, "archive", "export", str(tmp_path / "x"), "--from", "2026-13-01")
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output
    res = _cli(world.rt, "archive", "export", "--layout", "folders", str(tmp_path / "y"), "--zip")
    assert res.exit_code == 2
    assert [e.staff_no.startswith("cli:") for e in _events(world.rt, "archive.export")] == [True, True]
