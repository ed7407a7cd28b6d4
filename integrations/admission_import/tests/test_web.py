"""The record room's import page and the clerk's form, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bingan.core.models import Admission, AuditEvent
from import_world import hospital, rows, write_xlsx
from webutil import csrf_token, login, make_staff, post_form, web_client


def _wait(c, job_url: str, status: str, timeout: float = 60) -> str:
    end = time.time() + timeout
    while time.time() < end:
        html = c.get(job_url).text
        if f">{status}<" in html:
            return html
        time.sleep(0.2)
    raise AssertionError(f"job did not reach {status}: {html[:500]}")


def test_upload_check_confirm_and_rejected_rows(rt, tmp_path):
    hospital(rt)
    make_staff(rt, "R0001", ["records"])
    data, broken = rows(30, bad_every=10)
    path = write_xlsx(tmp_path / "三月出院.xlsx", data)
    with web_client(rt) as c:
        assert login(c, "R0001").status_code in (302, 303)
        page = c.get("/admissions/import")
        assert page.status_code == 200 and "病案首页文件导入" in page.text
        r = c.post("/admissions/import", files={"file": ("三月出院.xlsx", path.read_bytes())},
                   data={"_csrf_token": csrf_token(c)}, follow_redirects=False)
        assert r.status_code in (302, 303), r.text
        job = r.headers["location"]
        html = _wait(c, job, "已校验，待确认")
        assert "共 30 行：校验通过 27 行，有问题 3 行" in html
        assert "预览" in html and "ZY202500000000" in html
        for row, column in broken.items():
            assert f"第 {row} 行 {column}" in html
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Admission)) == 0
        r = post_form(c, f"{job}/run")
        assert r.status_code in (302, 303)
        html = _wait(c, job, "已完成")
        assert "已导入 27 行（新增 27" in html
        x = c.get(f"{job}/rejected.xlsx")
        assert x.status_code == 200 and "attachment" in x.headers["content-disposition"]
        (tmp_path / "r.xlsx").write_bytes(x.content)
        got = list(load_workbook(tmp_path / "r.xlsx", read_only=True).worksheets[0]
                   .iter_rows(values_only=True))
        assert [r[0] for r in got[1:]] == sorted(broken)
        # not a spreadsheet
        r = c.post("/admissions/import", files={"file": ("x.txt", b"hello")},
                   data={"_csrf_token": csrf_token(c)})
        assert r.status_code == 400 and "只支持 .xlsx 和 .csv" in r.text
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Admission)) == 27
        runs = s.scalars(select(AuditEvent.action).where(
            AuditEvent.action.like("admission_import.%")).order_by(AuditEvent.seq)).all()
        assert runs == ["admission_import.dry_run", "admission_import.run"]


FORM = {"mrn": "00400001", "name": "钱七", "sex": "2", "birth_date": "1980-02-03",
        "admission_no": "ZY202604000001", "admitted_at": "2026-04-01T09:30",
        "discharged_at": "2026-04-08T10:00", "admit_department": "1001",
        "discharge_department": "1001", "discharge_way": "1", "payment_method": "1",
        "main_dx_code": "I20.000", "main_dx_name": "不稳定型心绞痛", "main_dx_condition": "1",
        "op1_code": "88.5600", "op1_name": "冠状动脉造影", "op1_date": "2026-04-02",
        "op1_surgeon": "陈志远", "sig_attending": "D0001", "sig_resident": "王芳"}


def test_clerk_registers_and_corrects_an_admission(rt):
    hospital(rt)
    make_staff(rt, "R0001", ["records"])
    make_staff(rt, "C0001", ["clerk"])
    with web_client(rt) as c:
        assert login(c, "R0001").status_code in (302, 303)
        bad = dict(FORM, admitted_at="2026-04-09T09:30", main_dx_code="心绞痛", sig_attending="X")
        r = post_form(c, "/admissions/new", bad)
        assert r.status_code == 422
        for text in ("出院时间早于入院时间", "不是 ICD-10 编码", "不是本院在职职工"):
            assert text in r.text
        assert 'value="钱七"' in r.text  # what was typed stays in the form
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Admission)) == 0
        r = post_form(c, "/admissions/new", FORM)
        assert r.status_code in (302, 303) and r.headers["location"] == \
            "/admissions/ZY202604000001/edit?saved=1"
        page = c.get(r.headers["location"])
        assert "已保存" in page.text and re.search(r'name="main_dx_code"[^>]*value="I20.000"',
                                                  page.text)
        fix = dict(FORM, discharge_way="4")
        fix.pop("admission_no")
        r = post_form(c, "/admissions/ZY202604000001/edit", fix)
        assert r.status_code in (302, 303)
        # a name that differs from the one on file needs the box ticked
        r = post_form(c, "/admissions/ZY202604000001/edit", dict(fix, name="钱柒"))
        assert r.status_code == 422 and "病案号是否填错" in r.text
        r = post_form(c, "/admissions/ZY202604000001/edit", dict(fix, name="钱柒",
                                                                 correct_identity="1"))
        assert r.status_code in (302, 303)
    with rt.sessions() as s:
        a = s.scalar(select(Admission))
        assert (a.discharge_way, a.patient.name, a.visit_no) == ("4", "钱柒", 1)
        assert {x.role: x.staff_no for x in a.signers} == {"attending": "D0001",
                                                           "resident": "D0002"}
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "admission.upsert")).all()
        assert [e.staff_no for e in ev] == ["R0001"] * 3 and '"source": "clerk"' in ev[0].detail
    # a clerk may register, but opening a record shows its front page: the viewer's decision
    with web_client(rt) as c:
        assert login(c, "C0001").status_code in (302, 303)
        assert c.get("/admissions/new").status_code == 200
        assert c.get("/admissions/ZY202604000001/edit").status_code == 403
