"""Condition notes of the paper (issue 12): per batch and per record, from the list plus free
text; shown on the batch page and when the record is looked up for capture, steering the
source (a feeder refused for fragile paper), and in the batch report."""

from __future__ import annotations

import io

import openpyxl
from click.testing import CliRunner
from sqlalchemy import func, select

from bingan.core.cli import Ctx, build_cli
from bingan_capture.models import BatchCondition, RecordCondition
from webutil import csrf_token, events, login, make_staff, post_form, web_client
from bingan.core.models import Role


def _clerk(rt):
    make_staff(rt, "R0001", ["clerk"])
    with rt.sessions() as s, s.begin():
        role = s.scalar(select(Role).where(Role.name == "clerk"))
        role.permissions = sorted(set(role.permissions or [])
                                  | {"capture.operate", "capture.plan"})


def _count(rt, model) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_condition_notes_steer_the_source_and_reach_the_report(rt, cap, two_records):
    a, b = two_records
    _clerk(rt)
    with web_client(rt) as c:
        login(c, "R0001")
        r = c.post("/capture/batches", data={
            "_csrf_token": csrf_token(c), "name": "旧病案批", "start": "2026-05-11",
            "daily_pages": "3", "list_text": f"{a.admission_no}, 2\n{b.admission_no}, 3"},
            files={"list_file": ("", b"", "application/octet-stream")}, follow_redirects=False)
        url = r.headers["location"].split("?")[0]
        assert "尚未评估纸张状况" in c.get(url).text
        # the batch: yellowed paper; one record: torn sheets (the feeder would tear them)
        r = post_form(c, f"{url}/condition", {"flags": ["paper_yellowed", "bound_staples"],
                                              "note": "2015 年病案，装订夹锈蚀"})
        assert r.status_code in (302, 303)
        r = post_form(c, f"{url}/records/{a.admission_no}/condition",
                      {"flags": "torn", "note": "第 3 页撕裂已修补"})
        assert r.status_code in (302, 303)
        page = c.get(r.headers["location"]).text
        assert f"已保存 {a.admission_no} 的纸张状况" in page
        assert "纸张泛黄老化" in page and "有破损、撕裂或缺角" in page
        assert "第 3 页撕裂已修补" in page and "不要用自动进纸器" in page
        # bad input: a clear refusal and nothing written
        before = (_count(rt, BatchCondition), _count(rt, RecordCondition))
        r = post_form(c, f"{url}/records/{b.admission_no}/condition", {"flags": "burnt"})
        assert r.status_code == 400 and "未知的状况项：burnt" in r.text
        r = post_form(c, f"{url}/records/{b.admission_no}/condition",
                      {"flags": "torn", "note": "长" * 501})
        assert r.status_code == 400 and "状况说明过长" in r.text
        assert post_form(c, f"{url}/records/ZY209999999999/condition",
                         {"flags": "torn"}).status_code == 404
        assert (_count(rt, BatchCondition), _count(rt, RecordCondition)) == before

        # looked up for capture: the record's and its batch's notes, and where to capture it;
        # the department by its name (the upload and phone previews, the cover sheet)
        from bingan.core.models import Admission
        from bingan.core.staff import add_department

        with rt.sessions() as s, s.begin():
            add_department(s, "1001", "心血管内科一病区")
            s.get(Admission, a.id).discharge_department = "1001"
        got = c.get("/api/capture/lookup", params={"q": a.admission_no}).json()
        assert got["department"] == "心血管内科一病区"
        assert got["condition"] == ["订书钉、装订夹需拆除", "纸张泛黄老化", "有破损、撕裂或缺角"]
        assert got["condition_notes"] == ["第 3 页撕裂已修补", "批次“旧病案批”：2015 年病案，装订夹锈蚀"]
        assert got["feeder_advice"].startswith("有破损、撕裂或缺角：")
        other = c.get("/api/capture/lookup", params={"q": b.admission_no}).json()
        assert other["condition"] == ["订书钉、装订夹需拆除", "纸张泛黄老化"]
        assert other["feeder_advice"] is None  # yellowed paper may go through the feeder

        # the batch report lists them
        book = openpyxl.load_workbook(io.BytesIO(c.get(f"{url}/weekly.xlsx").content))
        rows = [[x.value for x in row] for row in book["纸张状况"].iter_rows(min_row=2)]
        assert rows[0][:6] == ["旧病案批", "（整批）", None, "订书钉、装订夹需拆除、纸张泛黄老化",
                               "2015 年病案，装订夹锈蚀", "否"]
        assert rows[1][:6] == ["旧病案批", a.admission_no, "张三", "有破损、撕裂或缺角",
                               "第 3 页撕裂已修补", "是"] and rows[1][6].endswith("（R0001）")
        check = {row[1].value: row[10].value for row in book["页数核对"].iter_rows(min_row=2)}
        assert "有破损、撕裂或缺角" in check[a.admission_no]
    assert len(events(rt, "capture.condition")) == 2

    # the scanner's feeder is refused for the torn record, before any paper moves
    obj = Ctx()
    obj._rt = rt
    res = CliRunner().invoke(build_cli(rt), ["sane", "scan", "--admission", a.admission_no,
                                             "--device", "test", "--adf"], obj=obj)
    assert res.exit_code != 0 and "不宜使用自动进纸器" in res.output
    assert "去掉 --adf" in res.output
