"""The search pages over HTTP: permission, each tab, htmx fragments, sorting and paging links,
saved queries, batch upload, the full-text tab, exports (content and audit). Both backends."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import unquote

import openpyxl
import pytest
from sqlalchemy import select

from bingan.hooks import hookimpl
from bingan.hooks.types import FulltextHit

from webutil import csrf_token, events, login, make_staff, nav_labels, post_form, web_client


def _roles(rt) -> None:
    from bingan.core.models import Role
    from bingan.core.staff import ensure_builtin_roles

    with rt.sessions() as s, s.begin():
        ensure_builtin_roles(s)
        s.add(Role(name="searcher", label="检索员", permissions=["search.use"]))
        s.add(Role(name="exporter", label="检索导出", permissions=["search.use",
                                                                "search.export"]))


@pytest.fixture
def client(request, rt):
    if "recs" in request.fixturenames:  # the data replaces the database: load it first
        request.getfixturevalue("recs")
    _roles(rt)
    make_staff(rt, "S001", ["searcher"], name="检索员甲")
    make_staff(rt, "E001", ["exporter"], name="导出员乙")
    make_staff(rt, "N001", ["physician"], name="无权限丙")
    with web_client(rt) as c:
        yield c


def _nos(html: str) -> list[str]:
    return re.findall(r'<tr class="hit" data-admission="([^"]+)"', html)


def test_search_needs_the_permission(rt, client):
    login(client, "N001")
    for url in ("/search/simple", "/search/combined", "/search/batch", "/search/fulltext",
                "/api/search/fields"):
        r = client.get(url, follow_redirects=False)
        assert r.status_code == 403, url
    r = client.post("/api/search/simple", json={"name": "张"},
                    headers={"x-csrftoken": csrf_token(client)})
    assert r.status_code == 403
    assert "病案检索" not in nav_labels(client.get("/").text)  # no menu entry either
    denied = events(rt, "page.denied")
    assert denied and all(e.staff_no == "N001" for e in denied)
    assert not events(rt, "search.simple")


def test_simple_search_page_htmx_sort_and_pages(rt, recs, client):
    login(client, "S001")
    assert "病案检索" in nav_labels(client.get("/").text)
    page = client.get("/search/simple")
    assert page.status_code == 200 and "简单检索" in page.text and "全文检索" in page.text
    r = client.get("/search/simple", params={"icd": "K35"})
    assert r.status_code == 200
    want = {x.admission_no for x in recs if any(d[1].startswith("K35") for d in x.diagnoses)}
    assert "共 <strong>%d</strong> 条" % len(want) in r.text
    assert 'href="/records/' in r.text
    # htmx: only the result block, with a percent-encoded pushed URL
    r = client.get("/search/simple", params={"name": "单", "page": "1"},
                   headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    push = r.headers["HX-Push-Url"]
    assert push.isascii() and unquote(push).startswith("/search/simple?name=单")
    # sort links and pages
    r = client.get("/search/simple", params={"discharged_from": "2023-01-01",
                                             "discharged_to": "2024-12-31", "sort": "mrn",
                                             "desc": "0"})
    nos = _nos(r.text)
    by_no = {x.admission_no: x for x in recs}
    assert [by_no[n].mrn for n in nos] == sorted(by_no[n].mrn for n in nos)
    assert "sort=mrn&amp;desc=1" in r.text  # clicking again flips the order
    ev = events(rt, "search.simple")[-1]
    assert ev.staff_no == "S001" and ev.client_ip == "127.0.0.1" and ev.computer_name
    assert '"sort": "mrn"' in ev.detail and '"shown"' in ev.detail
    bad = client.get("/search/simple", params={"admitted_from": "2023-13-01"})
    assert bad.status_code == 400 and "日期格式" in bad.text
    assert events(rt, "search.simple")[-1].outcome == "failed"
    assert client.get("/search/simple", params={"name": "z", "page": "x"}).status_code == 400
    # search shows front-page index data only; it never writes a record view
    from bingan.core.models import AuditEvent

    with rt.sessions() as s:
        actions = set(s.scalars(select(AuditEvent.action)))
    assert "record.view" not in actions and not any(a.startswith("access.") for a in actions)


def test_combined_builder_rows_saved_queries(rt, recs, client):
    login(client, "S001")
    page = client.get("/search/combined")
    assert page.status_code == 200 and "添加条件组" in page.text
    row = client.get("/search/combined/row", params={"g0.r5.field": "discharge_way"},
                     headers={"HX-Request": "true"})
    assert 'name="g0.r5.op"' in row.text and "死亡" in row.text  # choices of the field
    row = client.get("/search/combined/row", params={"g0.r5.field": "admitted_at",
                                                     "g0.r5.op": "between"})
    assert row.text.count('type="date"') == 2
    new = client.get("/search/combined/row", params={"g": "3", "r": "77"})
    assert 'name="g3.r77.field"' in new.text
    grp = client.get("/search/combined/group", params={"g": "4"})
    assert 'name="g4.mode"' in grp.text
    form = {"run": "1", "mode": "and",
            "g0.mode": "or", "g0.r0.field": "diagnosis_code", "g0.r0.op": "prefix",
            "g0.r0.value": "K35", "g0.r1.field": "operation_code", "g0.r1.op": "prefix",
            "g0.r1.value": "81",
            "g1.not": "1", "g1.r0.field": "discharge_way", "g1.r0.op": "eq", "g1.r0.value": "1"}
    r = client.get("/search/combined", params=form)
    assert r.status_code == 200
    want = {x.admission_no for x in recs
            if (any(d[1].startswith("K35") for d in x.diagnoses)
                or any(o["code"].startswith("81") for o in x.operations))
            and x.discharge_way != "1"}
    assert set(_nos(r.text)) == want and want
    assert "且 非（离院方式 等于 1医嘱离院）" in r.text
    # the same query as JSON wins over rows
    q = json.dumps({"type": "cond", "field": "mrn", "op": "eq", "value": recs[0].mrn})
    r = client.get("/search/combined", params={"q": q, "g0.r0.field": "sex",
                                               "g0.r0.value": "F", "run": "1"})
    assert set(_nos(r.text)) == {x.admission_no for x in recs if x.mrn == recs[0].mrn}
    # save, list, load, run, delete
    r = post_form(client, "/search/saved", {**form, "save_name": "阑尾或髋，非医嘱离院外",
                                            "save_shared": "1"})
    assert r.status_code in (302, 303)
    saved_id = int(r.headers["location"].split("saved=")[1])
    page = client.get(r.headers["location"])
    assert "阑尾或髋，非医嘱离院外" in page.text and 'value="K35"' in page.text
    run = client.get("/search/combined", params={"saved": saved_id, "run": "1"})
    assert set(_nos(run.text)) == want
    bad = post_form(client, "/search/saved", {"save_name": "坏", "g0.r0.field": "nope",
                                             "g0.r0.value": "1"})
    assert bad.status_code == 400
    from bingan_search.models import SavedQuery

    with rt.sessions() as s:  # a refused query stores nothing
        assert s.scalars(select(SavedQuery.name)).all() == ["阑尾或髋，非医嘱离院外"]
    # another user sees the shared query but cannot delete it
    with web_client(rt) as other:
        login(other, "E001")
        assert "阑尾或髋" in other.get("/search/combined").text
        r = post_form(other, f"/search/saved/{saved_id}/delete", headers={"HX-Request": "true"})
        assert "只能删除自己保存的查询" in r.text
    r = post_form(client, f"/search/saved/{saved_id}/delete")
    assert r.status_code in (302, 303)
    assert "阑尾或髋" not in client.get("/search/combined").text
    assert [e.action for e in events(rt) if e.action.startswith("search.saved")] == [
        "search.saved.save", "search.saved.delete"]


def test_batch_page_paste_and_upload(rt, recs, client):
    login(client, "S001")
    assert client.get("/search/batch").status_code == 200
    numbers = f"{recs[0].admission_no}\nZY209900000001\n{recs[1].admission_no}"
    r = post_form(client, "/search/batch", {"text": numbers, "kind": "admission_no"})
    assert r.status_code == 200
    assert _nos(r.text) == [recs[0].admission_no, recs[1].admission_no]
    assert "ZY209900000001" in r.text.split('id="not-found"')[1]
    wb = openpyxl.Workbook()
    wb.active.append(["住院号"])
    wb.active.append([recs[2].admission_no])
    wb.active.append(["ZY209900000002"])
    buf = io.BytesIO()
    wb.save(buf)
    tok = csrf_token(client)
    r = client.post("/search/batch", data={"kind": "auto", "text": "", "_csrf_token": tok},
                    files={"file": ("号码.xlsx", buf.getvalue(),
                                    "application/vnd.openxmlformats-officedocument."
                                    "spreadsheetml.sheet")},
                    headers={"x-csrftoken": tok})
    assert r.status_code == 200, r.text
    assert _nos(r.text) == [recs[2].admission_no]
    assert "ZY209900000002" in r.text.split('id="not-found"')[1]
    ev = events(rt, "search.batch")[-1]
    assert "file:号码.xlsx" in ev.detail
    r = client.post("/search/batch", data={"kind": "auto", "_csrf_token": tok},
                    files={"file": ("坏.xlsx", b"PK\x03\x04broken", "application/zip")},
                    headers={"x-csrftoken": tok})
    assert r.status_code == 400 and "无法读取 Excel" in r.text
    assert events(rt, "search.batch")[-1].outcome == "failed"
    # page turn of the htmx result keeps the numbers (state form)
    assert len(recs) > 50  # more than one page of 50
    many = "\n".join(x.admission_no for x in reversed(recs))
    r = post_form(client, "/search/batch", {"numbers": many, "kind": "auto", "page": "2",
                                            "sort": "admission_no", "desc": "0"},
                  headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    assert _nos(r.text) == sorted(x.admission_no for x in recs)[50:]
    assert "第 2 / 2 页" in r.text


class _Backend:
    """A full-text backend registered as a plugin (the real ones live in another plugin)."""

    def __init__(self, adm_id: int) -> None:
        self.adm_id = adm_id
        self.calls: list[tuple[str, int, int]] = []

    @hookimpl
    def search_fulltext(self, query, limit, offset):
        self.calls.append((query, limit, offset))
        hits = [FulltextHit(self.adm_id, None, 1.0 - i / 100, f"病程记录：{query}术后第{i}天 <b>")
                for i in range(25)]
        return hits[offset:offset + limit]


def _dept_pairs(rt):
    from bingan.core.staff import department_names

    with rt.sessions() as s:
        return list(department_names(s).items())


def test_highlight_turns_backend_marks_into_plain_marks():
    from bingan_search.web import highlight

    assert str(highlight("术后«阑尾炎»复查 <b>", "阑尾炎")) == "术后<mark>阑尾炎</mark>复查 &lt;b&gt;"
    assert str(highlight("术后阑尾炎复查", "阑尾炎")) == "术后<mark>阑尾炎</mark>复查"
    assert str(highlight("«未闭合", "x")) == "未闭合"


def test_fulltext_tab_without_and_with_a_backend(rt, recs, client):
    login(client, "S001")
    r = client.get("/search/fulltext", params={"q": "阑尾炎"})
    if rt.pm.hook.search_fulltext(rt=rt, query="x", limit=1, offset=0, admissions=None) is None:
        assert "全文检索未启用" in r.text
    backend = _Backend(recs[0].id)
    rt.pm.register(backend, name="test-fulltext")
    try:
        # S001 may not read the record: its hits are not shown (this backend ignores the
        # admissions filter, so the search decides hit by hit)
        r = client.get("/search/fulltext", params={"q": "阑尾炎"})
        assert "<mark>" not in r.text and recs[0].admission_no not in r.text
        assert "没有找到" in r.text  # a refused record neither shows nor counts
        import datetime as dt

        from bingan.core.grants import create_grant
        from bingan.core.models import utcnow

        with rt.sessions() as s, s.begin():
            create_grant(s, rt, staff_no="S001", actions=["view"],
                         deadline=utcnow() + dt.timedelta(days=1),
                         admission_no=recs[0].admission_no, reason="测试")
        r = client.get("/search/fulltext", params={"q": "阑尾炎"})
        # one line for the record, its first five pages' snippets under it, and a total
        assert r.text.count("ft-record") == 1 and "共 <b>1</b> 份病案、25 页" in r.text
        assert r.text.count("<mark>阑尾炎</mark>") == 5 and "另有 20 页" in r.text
        assert "&lt;b&gt;" in r.text  # snippets are escaped
        assert "«" not in r.text and "»" not in r.text
        assert f"/records/{recs[0].admission_no}?hl=" in r.text
        # filters: a department or a discharge range the record is outside of
        other = next(c for c, _ in _dept_pairs(rt) if c != recs[0].discharge_department)
        r2 = client.get("/search/fulltext", params={"q": "阑尾炎", "department": other},
                        headers={"HX-Request": "true"})
        assert "没有找到" in r2.text and "所选出院日期、科室范围内" in r2.text
        r3 = client.get("/search/fulltext", params={"q": "阑尾炎", "discharged_from": "2024-02-01",
                                                    "discharged_to": "2024-01-01"})
        assert r3.status_code == 400 and "结束日期早于开始日期" in r3.text
        r4 = client.get("/search/fulltext", params={"q": ""}, headers={"HX-Request": "true"})
        assert "请输入要检索的文字" in r4.text
        ev = events(rt, "search.fulltext")[-2]
        assert '"enabled": true' in ev.detail and '"records": 0' in ev.detail
    finally:
        rt.pm.unregister(name="test-fulltext")


def test_export_xlsx_and_csv_are_audited(rt, recs, client):
    login(client, "S001")
    crit = json.dumps({"icd": "K35"})
    r = post_form(client, "/search/export", {"kind": "simple", "criteria": crit,
                                             "format": "xlsx"})
    assert r.status_code == 403  # search.use alone does not export
    assert "导出 Excel" not in client.get("/search/simple", params={"icd": "K35"}).text
    with web_client(rt) as c:
        login(c, "E001")
        page = c.get("/search/simple", params={"icd": "K35"})
        assert "导出 Excel" in page.text
        r = post_form(c, "/search/export", {"kind": "simple", "criteria": crit,
                                            "format": "xlsx", "sort": "mrn", "desc": "0"})
        assert r.status_code == 200
        assert "filename*=UTF-8''" in r.headers["content-disposition"]
        ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
        rows = list(ws.iter_rows(values_only=True))
        assert rows[0][:5] == ("病案号", "姓名", "性别", "年龄", "住院号")
        want = sorted((x.mrn, x.id, x.admission_no) for x in recs
                      if any(d[1].startswith("K35") for d in x.diagnoses))
        assert [row[4] for row in rows[1:]] == [w[2] for w in want]
        main = {x.admission_no: next((d for d in x.diagnoses if d[0] == "main"), None)
                for x in recs}
        for row in rows[1:]:
            dx = main[row[4]]
            assert (row[9], row[10]) == ((dx[1], dx[2]) if dx else (None, None))
        ev = events(rt, "search.export")[-1]
        assert ev.staff_no == "E001" and f'"rows": {len(want)}' in ev.detail
        assert want[0][2] in ev.detail  # the exported admissions are named
        q = json.dumps({"type": "cond", "field": "sex", "op": "eq", "value": "F"})
        r = post_form(c, "/search/export", {"kind": "combined", "criteria": q, "format": "csv"})
        text = r.content.decode("utf-8-sig")
        assert text.splitlines()[0].startswith("病案号,姓名,性别")
        assert len(text.strip().splitlines()) - 1 == sum(x.sex == "F" for x in recs)
        r = post_form(c, "/search/export", {"kind": "batch", "numbers": f"{recs[0].admission_no}"
                                            "\nZY209900000001", "format": "xlsx"})
        rows = list(openpyxl.load_workbook(io.BytesIO(r.content)).active.iter_rows(
            values_only=True))
        assert rows[0][:2] == ("检索号码", "结果")
        assert [(x[0], x[1]) for x in rows[1:]] == [(recs[0].admission_no, "找到"),
                                                   ("ZY209900000001", "未找到")]
        bad = post_form(c, "/search/export", {"kind": "combined", "criteria": "{bad",
                                              "format": "xlsx"})
        assert bad.status_code == 400
        bad = post_form(c, "/search/export", {"kind": "simple", "criteria": crit,
                                              "format": "pdf"})
        assert bad.status_code == 400
    assert [e.outcome for e in events(rt, "search.export")][-2:] == ["failed", "failed"]
